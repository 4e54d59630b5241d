"""Transcoding end to end: a phone that speaks only Opus (baresip with just
its opus module) calls out through a trunk that speaks only PCMU (a Python
UA on 127.0.0.2 with its own RTP socket). Each side plays a tone; each must
hear the other's, through dialtone's Opus <-> PCMU transcoder, and the
call's recording must hold the two parties on its two channels.

A phone that speaks only G.722 and one that speaks only Opus hear each
other in wideband: tones above 4 kHz cross dialtone's G.722 <-> Opus path.
A PCMU trunk call blind-transferred to an Opus-only phone is transcoded
from then on.

Also: two parties with a codec in common are relayed untouched (no
transcoding, payload types renumbered per leg)."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from conftest import LOOPBACK, free_port, wait_bound
from siptool import (RtpPeer, SipUA, answer_call, dominant_frequency, place_call, rms,
                     ulaw_samples, ulaw_tone, wav_samples, write_tone_wav)

PW = "s3cret-pw"
TRUNK_IP = "127.0.0.2"
OPUS_ONLY = [m for m in ("opus",) if os.path.exists(f"/usr/lib/baresip/modules/{m}.so")]
G722_AND_OPUS = all(os.path.exists(f"/usr/lib/baresip/modules/{m}.so") for m in ("g722", "opus"))


def pcmu_sdp(ip: str, port: int) -> bytes:
    lines = ["v=0", f"o=carrier 1 1 IN IP4 {ip}", "s=-", f"c=IN IP4 {ip}", "t=0 0",
             f"m=audio {port} RTP/AVP 0", "a=rtpmap:0 PCMU/8000", "a=ptime:20", "a=sendrecv"]
    return ("\r\n".join(lines) + "\r\n").encode()


def rtpmaps(body: bytes) -> dict[int, str]:
    """payload type -> "encoding/rate" of the first m= line."""
    out: dict[int, str] = {}
    for line in body.decode(errors="replace").splitlines():
        if line.startswith("a=rtpmap:"):
            pt, _, enc = line[len("a=rtpmap:"):].partition(" ")
            out[int(pt)] = enc.strip()
    return out


@pytest.fixture
def switch(dialtone_factory):
    """A dialtone (default settings) with user alice and an
    outbound route 9... through the trunk "carrier" on 127.0.0.2, recorded."""
    d = dialtone_factory()
    trunk_port = free_port(host=TRUNK_IP)
    d.add_trunk("carrier", f"{TRUNK_IP}:{trunk_port}", inbound_ips=[TRUNK_IP])
    d.add_user("alice", PW)
    d.cli("route", "add", "--pattern", r"^9(\d+)$", "--trunk", "carrier", "--strip", "1", "--record")
    d.trunk_port = trunk_port
    return d


@pytest.mark.skipif(not OPUS_ONLY, reason="baresip's opus module is not installed")
def test_opus_phone_calls_pcmu_trunk_through_the_transcoder(switch, baresip, tmp_path):
    d = switch
    tone_alice = tmp_path / "tone1000.wav"
    write_tone_wav(tone_alice, 1000, seconds=30, rate=48000)
    alice = baresip("alice", PW, d.sip_port, play=tone_alice, record=True, codecs=("opus",))
    assert alice.wait_registered(), alice.log()

    with SipUA(TRUNK_IP, d.trunk_port, user="carrier") as trunk:
        rtp = RtpPeer(TRUNK_IP, pt=0)
        rtp.keep_payload = True
        seen: dict = {}

        def carrier():
            inv = trunk.wait_request("INVITE", 15)
            if inv is None:
                return
            seen["invite"] = inv
            offer = rtpmaps(inv.body)
            seen["offer"] = offer
            if 0 not in offer and "PCMU/8000" not in offer.values():
                trunk.reply(inv, 488, "Not Acceptable Here")
                return
            dlg = answer_call(trunk, inv, pcmu_sdp(TRUNK_IP, rtp.port))
            seen["dialog"] = dlg
            if dlg is None:
                return
            sdp = dlg.remote_sdp
            rtp.start((sdp.ip, sdp.port), payload=ulaw_tone(400))
            bye = trunk.wait_request("BYE", 20, call_id=dlg.call_id)
            if bye is not None:
                trunk.reply(bye, 200, "OK")
                seen["bye"] = bye

        t = threading.Thread(target=carrier, daemon=True)
        t.start()
        try:
            alice.dial(f"sip:9155512345@{LOOPBACK}:{d.sip_port}")
            assert alice.wait_log(r"Call established", 15), \
                f"alice's call was not established:\n{alice.log()}\ntrunk saw: {seen}"
            time.sleep(5)
            alice.hangup()
            t.join(10)
        finally:
            rtp.stop()

    # the offer the trunk got: alice's Opus first, then what dialtone can
    # transcode to, PCMU among them
    offer = seen.get("offer") or {}
    assert any(v.lower().startswith("opus/48000") for v in offer.values()), offer
    assert "PCMU/8000" in offer.values(), f"dialtone did not offer PCMU to the trunk: {offer}"
    assert "bye" in seen, "the trunk got no BYE when alice hung up"

    # the trunk heard alice's 1000 Hz tone, in PCMU
    assert rtp.payload_types.get(0, 0) > 100, f"the trunk got too little PCMU: {rtp}"
    assert set(rtp.payload_types) == {0}, f"the trunk got payload types it did not accept: {rtp}"
    samples = ulaw_samples(rtp.payloads)
    f, share = dominant_frequency(samples[8000:], 8000)
    assert abs(f - 1000) <= 20, f"the trunk heard {f} Hz ({share:.0%}), not alice's 1000 Hz"
    assert rms(samples[8000:]) > 0.05, "the trunk's audio is nearly silent"

    # alice heard the trunk's 400 Hz tone, decoded from Opus by her phone
    alice.heard_tone(400, 15, hi=4000)

    # the call record: both codecs, the jitter buffer's figures, the recording
    recs = d.wait_calls(1, timeout=10)
    rec = recs[0]
    assert rec.get("ended_at"), rec
    codecs = (rec.get("codecs") or "").lower()
    assert "opus/48000" in codecs and "pcmu/8000" in codecs, f"record codecs: {rec.get('codecs')}"
    stats = json.loads(rec["stats"]) if isinstance(rec["stats"], str) else rec["stats"]
    jitters = [leg.get("jitter") for leg in stats.values() if leg.get("jitter")]
    assert len(jitters) == 2, f"both transcoded legs should report jitter-buffer stats: {stats}"
    for j in jitters:
        assert j["played"] > 100, j

    path = rec.get("recording")
    assert path, f"the route records, but the call record has no recording: {rec}"
    wav = Path(path) if os.path.isabs(path) else d.workdir / path
    assert wav.exists(), f"{wav} does not exist"
    left, rate = wav_samples(wav, 0)
    right, _ = wav_samples(wav, 1)
    assert rate == 8000 and len(left) > 3 * rate, f"{wav}: {len(left) / rate:.2f} s at {rate} Hz"
    fl, _ = dominant_frequency(left, rate)
    fr, _ = dominant_frequency(right, rate)
    assert abs(fl - 1000) <= 20, f"left channel (alice) is {fl} Hz, not 1000"
    assert abs(fr - 400) <= 15, f"right channel (the trunk) is {fr} Hz, not 400"


@pytest.mark.skipif(not G722_AND_OPUS, reason="baresip's g722 or opus module is not installed")
def test_g722_phone_and_opus_phone_hear_each_other_in_wideband(switch, baresip, tmp_path):
    """alice's baresip has only its g722 module (spandsp's G.722), bob's only
    opus. dialtone offers bob G.722 plus what it transcodes, bob picks Opus,
    and the two legs meet at 16 kHz PCM: alice's 6 kHz tone reaches bob and
    bob's 5 kHz tone reaches alice, which no narrowband path could carry."""
    d = switch
    d.add_user("bob", PW)
    tone_a, tone_b = tmp_path / "tone6000.wav", tmp_path / "tone5000.wav"
    write_tone_wav(tone_a, 6000, seconds=30, rate=16000)
    write_tone_wav(tone_b, 5000, seconds=30, rate=48000)
    bob = baresip("bob", PW, d.sip_port, play=tone_b, record=True, answermode="auto", codecs=("opus",))
    alice = baresip("alice", PW, d.sip_port, play=tone_a, record=True, codecs=("g722",))
    assert bob.wait_registered() and alice.wait_registered(), alice.log() + bob.log()
    alice.dial(f"sip:bob@{LOOPBACK}:{d.sip_port}")
    assert alice.wait_log(r"Call established", 15), f"alice's call was not established:\n{alice.log()}"
    time.sleep(4)
    alice.hangup()
    assert bob.wait_log(r"terminated|session closed", 10), bob.log()
    time.sleep(0.5)

    bob.heard_tone(6000, 30, hi=8000)  # alice's, through G.722 and Opus
    a_samples, a_rate = alice.heard_tone(5000, 30)  # bob's
    assert a_rate == 16000, f"alice's G.722 decoder ran at {a_rate} Hz"
    assert rms(a_samples[a_rate:]) > 0.05, "alice's audio is nearly silent"

    rec = d.wait_calls(1, timeout=10)[0]
    codecs = (rec.get("codecs") or "").lower()
    assert "g722/8000" in codecs and "opus/48000" in codecs, f"record codecs: {rec.get('codecs')}"


@pytest.mark.skipif(not OPUS_ONLY, reason="baresip's opus module is not installed")
def test_blind_transfer_to_a_phone_of_another_codec(switch, sipp, baresip, tmp_path):
    """The PCMU trunk (a Python UA playing 400 Hz) calls alice, a SIPp phone
    that echoes RTP; after 1 s she REFERs the call to carol, whose baresip
    speaks only Opus and plays 1000 Hz. From then on dialtone transcodes
    PCMU <-> Opus between the trunk and carol: each hears the other."""
    d = switch
    number = "15551239001"
    d.add_user("carol", PW)
    d.add_number(number, "user:alice")
    tone = tmp_path / "tone1000.wav"
    write_tone_wav(tone, 1000, seconds=30, rate=48000)
    carol = baresip("carol", PW, d.sip_port, play=tone, record=True, answermode="auto", codecs=("opus",))
    assert carol.wait_registered(), carol.log()
    alice_port = free_port()
    reg = sipp("register.xml", d.sip_port, service="alice", password=PW, keys={"expires": 600},
               local_port=alice_port)
    assert reg.ok(), reg
    alice = sipp.start("refer_blind.xml", d.sip_port, service="alice", local_port=alice_port,
                       timeout=30, rtp_echo=True, duration_ms=1000,
                       keys={"target": f"sip:carol@{LOOPBACK}"})
    assert wait_bound(alice_port), alice.wait(1)

    with SipUA(TRUNK_IP, user="carrier") as trunk:
        rtp = RtpPeer(TRUNK_IP, pt=0)
        rtp.keep_payload = True
        try:
            call = place_call(trunk, (LOOPBACK, d.sip_port), f"sip:{number}@{LOOPBACK}:{d.sip_port}",
                              pcmu_sdp(TRUNK_IP, rtp.port))
            assert call.final is not None and call.final.code == 200, call.final
            assert rtpmaps(call.final.body).get(0) == "PCMU/8000", call.final.body
            rtp.start((call.remote_sdp.ip, call.remote_sdp.port), payload=ulaw_tone(400))
            assert carol.wait_log(r"Call established|answering call", 15), \
                f"carol never got the transferred call:\n{carol.log()}"
            heard_before = len(rtp.payloads)
            time.sleep(4)
            heard = rtp.payloads[heard_before:]
            call.bye()
        finally:
            rtp.stop()
    a = alice.wait()
    assert a.ok(), a  # 202, NOTIFYs ending in 200, her leg ended
    assert carol.wait_log(r"terminated|session closed", 10), carol.log()
    time.sleep(0.5)

    # the trunk, still in PCMU, hears carol's 1000 Hz from her Opus
    assert set(rtp.payload_types) == {0}, f"the trunk got payload types it did not accept: {rtp}"
    assert len(heard) > 150, f"the trunk got {len(heard)} packets after the transfer"
    samples = ulaw_samples(heard[50:])
    f, share = dominant_frequency(samples, 8000)
    assert abs(f - 1000) <= 20, f"after the transfer the trunk heard {f} Hz ({share:.0%}), not carol's 1000 Hz"
    # carol, in Opus, hears the trunk's 400 Hz
    carol.heard_tone(400, 15, hi=4000)


def test_shared_codec_is_relayed_untouched_with_per_leg_payload_types(switch):
    """Both sides speak PCMU; the phone numbers telephone-event 96, the
    trunk 101. Voice is relayed byte for byte; the event is renumbered."""
    d = switch
    with SipUA(LOOPBACK, user="alice") as phone, SipUA(TRUNK_IP, d.trunk_port, user="carrier") as trunk:
        reg = phone.register("alice", PW, (LOOPBACK, d.sip_port))
        assert reg is not None and reg.code == 200, reg
        rtp_phone, rtp_trunk = RtpPeer(LOOPBACK, pt=0), RtpPeer(TRUNK_IP, pt=0)
        rtp_trunk.keep_payload = True
        seen: dict = {}
        lines = ["v=0", f"o=alice 1 1 IN IP4 {LOOPBACK}", "s=-", f"c=IN IP4 {LOOPBACK}", "t=0 0",
                 f"m=audio {rtp_phone.port} RTP/AVP 0 96", "a=rtpmap:0 PCMU/8000",
                 "a=rtpmap:96 telephone-event/8000", "a=fmtp:96 0-15", "a=sendrecv"]
        offer = ("\r\n".join(lines) + "\r\n").encode()
        tone = ulaw_tone(500)

        def carrier():
            inv = trunk.wait_request("INVITE", 10)
            if inv is None:
                return
            seen["offer"] = rtpmaps(inv.body)
            ans = ["v=0", f"o=carrier 1 1 IN IP4 {TRUNK_IP}", "s=-", f"c=IN IP4 {TRUNK_IP}", "t=0 0",
                   f"m=audio {rtp_trunk.port} RTP/AVP 0 101", "a=rtpmap:0 PCMU/8000",
                   "a=rtpmap:101 telephone-event/8000", "a=sendrecv"]
            dlg = answer_call(trunk, inv, ("\r\n".join(ans) + "\r\n").encode())
            seen["dialog"] = dlg
            if dlg is not None:
                rtp_trunk.start()
                bye = trunk.wait_request("BYE", 15, call_id=dlg.call_id)
                if bye is not None:
                    trunk.reply(bye, 200, "OK")

        t = threading.Thread(target=carrier, daemon=True)
        t.start()
        try:
            call = place_call(phone, (LOOPBACK, d.sip_port), f"sip:9155512345@{LOOPBACK}:{d.sip_port}",
                              offer, credentials=("alice", PW))
            assert call.final is not None and call.final.code == 200, call.final
            answer = rtpmaps(call.final.body)
            # the phone's answer keeps the phone's numbering
            assert answer.get(0) == "PCMU/8000" and answer.get(96, "").startswith("telephone-event"), answer
            rtp_phone.start((call.remote_sdp.ip, call.remote_sdp.port), payload=tone)
            time.sleep(1.5)
            rtp_phone.send_dtmf(7, pt=96)
            time.sleep(1.0)
            call.bye()
            t.join(5)
        finally:
            rtp_phone.stop()
            rtp_trunk.stop()
    assert "PCMU/8000" in seen.get("offer", {}).values(), seen
    assert rtp_trunk.payload_types.get(0, 0) > 40, rtp_trunk
    assert rtp_trunk.payload_types.get(101, 0) >= 1, f"the event was not renumbered 96 -> 101: {rtp_trunk}"
    assert 96 not in rtp_trunk.payload_types, rtp_trunk
    # relayed, not transcoded: the phone's payload arrives byte for byte
    voice = [p for p in rtp_trunk.payloads if len(p) == 160]
    assert voice and all(p == tone for p in voice), "the PCMU payload was altered on a same-codec call"
    rec = d.wait_calls(1, timeout=10)[0]
    assert (rec.get("codecs") or "") == "PCMU/8000", rec.get("codecs")


def test_number_flag_records_a_relayed_inbound_call(switch):
    """`number record N on` (after `number add`) records the calls to that
    number: a trunk call to alice, both PCMU (relayed untouched), gives a
    stereo WAV with the trunk's 500 Hz on the left and alice's 1000 Hz on
    the right; calls to other numbers are not recorded."""
    d = switch
    d.add_number("+15550100", "user:alice")
    d.add_number("+15550199", "user:alice")
    d.cli("number", "record", "+15550100", "on")

    def call(number: str) -> None:
        with SipUA(LOOPBACK, user="alice") as phone, SipUA(TRUNK_IP, user="carrier") as trunk:
            reg = phone.register("alice", PW, (LOOPBACK, d.sip_port))
            assert reg is not None and reg.code == 200, reg
            rtp_trunk, rtp_phone = RtpPeer(TRUNK_IP, pt=0), RtpPeer(LOOPBACK, pt=0)
            answered: dict = {}

            def callee():
                inv = phone.wait_request("INVITE", 10)
                if inv is not None:
                    lines = ["v=0", f"o=alice 1 1 IN IP4 {LOOPBACK}", "s=-", f"c=IN IP4 {LOOPBACK}",
                             "t=0 0", f"m=audio {rtp_phone.port} RTP/AVP 0", "a=rtpmap:0 PCMU/8000",
                             "a=sendrecv"]
                    answered["dialog"] = answer_call(phone, inv, ("\r\n".join(lines) + "\r\n").encode())

            t = threading.Thread(target=callee, daemon=True)
            t.start()
            try:
                offer = pcmu_sdp(TRUNK_IP, rtp_trunk.port)  # a PCMU-only offer
                c = place_call(trunk, (LOOPBACK, d.sip_port), f"sip:{number}@{LOOPBACK}:{d.sip_port}", offer)
                t.join(12)
                assert c.final is not None and c.final.code == 200, c.final
                dlg = answered.get("dialog")
                assert dlg is not None, "alice never got the call"
                rtp_trunk.start((c.remote_sdp.ip, c.remote_sdp.port), payload=ulaw_tone(500))
                rtp_phone.start((dlg.remote_sdp.ip, dlg.remote_sdp.port), payload=ulaw_tone(1000))
                time.sleep(3)

                def phone_bye():
                    bye = phone.wait_request("BYE", 5, call_id=dlg.call_id)
                    if bye is not None:
                        phone.reply(bye, 200, "OK")

                tb = threading.Thread(target=phone_bye, daemon=True)
                tb.start()
                c.bye()
                tb.join(6)
            finally:
                rtp_trunk.stop()
                rtp_phone.stop()

    call("+15550100")
    rec = d.wait_calls(1, timeout=10)[0]
    path = rec.get("recording")
    assert path, f"the number records, but the call record has none: {rec}"
    wav = Path(path) if os.path.isabs(path) else d.workdir / path
    left, rate = wav_samples(wav, 0)
    right, _ = wav_samples(wav, 1)
    assert len(left) > 2 * rate, f"{wav}: {len(left) / rate:.2f} s"
    fl, _ = dominant_frequency(left, rate)
    fr, _ = dominant_frequency(right, rate)
    assert abs(fl - 500) <= 15, f"left channel (the trunk, the caller) is {fl} Hz, not 500"
    assert abs(fr - 1000) <= 20, f"right channel (alice) is {fr} Hz, not 1000"
    assert (rec.get("codecs") or "") == "PCMU/8000", rec.get("codecs")

    call("+15550199")
    recs = d.wait_calls(2, timeout=10)
    assert recs[0].get("recording") in (None, ""), f"an unflagged number was recorded: {recs[0]}"

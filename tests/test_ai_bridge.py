"""End-to-end tests of the AI media bridge: a call to a number routed to a
persona reaches a realtime model, here a scripted server speaking the
provider's exact wire protocol (tests/realtime_peer.py: OpenAI Realtime GA
and Gemini Live), which validates every message dialtone sends against the
official SDK types.

Cast (all on loopback):
  - the trunk "carrier" on 127.0.0.2: a Python user agent with its own RTP
    (tests/siptool.py) that calls the persona's number and plays a tone;
  - the persona "rec" (`persona add`), its number N_AGENT;
  - phones: baresip (alice, a real softphone that answers, plays a tone and
    records what it hears), Python user agents for the rest.

What the caller hears is read from the RTP payloads it receives (G.711
decoded, Goertzel); what the model heard is the audio the scripted server
got. Timing figures (barge-in to silence, per-hop latency) are printed and
measured properly in bench/ (BENCHMARKS.md): the assertions here are about
behaviour, with generous bounds."""

from __future__ import annotations

import json
import math
import struct
import threading
import time
import urllib.request
from contextlib import contextmanager

import pytest

from conftest import LOOPBACK, free_port, wait_until
from realtime_peer import RealtimeServer
from siptool import (RtpPeer, SipUA, answer_call, dominant_frequency, place_call, rms, sdp_offer,
                     ulaw_samples, ulaw_tone, write_tone_wav)

PW = "s3cret-pw"
TRUNK_IP = "127.0.0.2"
N_AGENT = "15550100"
KEY = "test-key-123"


def pcm16(freq: float, seconds: float, rate: int, amplitude: float = 0.5) -> bytes:
    n = int(seconds * rate)
    return b"".join(struct.pack("<h", int(amplitude * 32767 * math.sin(2 * math.pi * freq * i / rate)))
                    for i in range(n))


def pcm_samples(data: bytes) -> list[float]:
    return [v / 32768.0 for v in struct.unpack(f"<{len(data) // 2}h", data[: len(data) // 2 * 2])]


def loud(payload: bytes) -> bool:
    """A µ-law payload with audible content (not the silence dialtone sends
    while the agent says nothing)."""
    return rms(ulaw_samples([payload])) > 0.05


class AiPbx:
    """A dialtone with the carrier trunk, a persona "rec" on a scripted
    realtime server, and N_AGENT routed to it."""

    def __init__(self, factory, kind: str, *, mode: str = "normal", persona: tuple = (),
                 config: dict | None = None, env: dict[str, str] | None = None):
        self.server = RealtimeServer(kind, api_key=KEY, mode=mode).start()
        cfg = {"ai": {"connect_timeout_ms": 3000}}
        for k, v in (config or {}).items():
            cfg.setdefault(k, {}).update(v)
        self.d = factory(config=cfg, env={"TEST_AI_KEY": KEY, **(env or {})})
        self.kind = kind
        trunk_port = free_port(host=TRUNK_IP)
        self.d.add_trunk("carrier", f"{TRUNK_IP}:{trunk_port}", inbound_ips=[TRUNK_IP])
        self.d.cli("persona", "add", "rec", "--provider", kind, "--url", self.server.url,
                   "--api-key-env", "TEST_AI_KEY",
                   "--instructions", "You answer calls to {called_number}; the caller is {caller_number}.",
                   *persona)
        self.d.add_number(N_AGENT, "persona:rec")

    def close(self) -> None:
        self.server.stop()

    @contextmanager
    def caller(self, tone: float = 1000.0, payloads: tuple[int, ...] = (0, 101), expect: int = 200,
               from_uri: str | None = None):
        """A trunk call to the persona: (SipUA, Dialog, RtpPeer sending a
        µ-law tone and keeping what it receives)."""
        d = self.d
        with SipUA(TRUNK_IP, user="carrier") as ua:
            rtp = RtpPeer(TRUNK_IP, pt=0, max_seconds=60)
            rtp.keep_payload = True
            rtp.start(payload=ulaw_tone(tone))
            try:
                dlg = place_call(ua, (LOOPBACK, d.sip_port), f"sip:{N_AGENT}@{LOOPBACK}:{d.sip_port}",
                                 sdp_offer(TRUNK_IP, rtp.port, payloads=payloads), timeout=15,
                                 from_uri=from_uri)
                assert dlg.final is not None and dlg.final.code == expect, \
                    f"expected {expect}, got {dlg.final and dlg.final.first}"
                if expect == 200:
                    rtp.send_to((dlg.remote_sdp.ip, dlg.remote_sdp.port))
                yield ua, dlg, rtp
            finally:
                rtp.stop()

    def record(self, timeout: float = 10.0) -> dict:
        recs = self.d.wait_calls(1, timeout)
        assert recs and recs[0].get("ended_at"), f"no ended call record: {recs}"
        return recs[0]

    def metric(self, name: str) -> float | None:
        return self.d.metrics().get(name)


@pytest.fixture
def ai_pbx(dialtone_factory):
    made: list[AiPbx] = []

    def make(kind: str = "openai", **kw) -> AiPbx:
        p = AiPbx(dialtone_factory, kind, **kw)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()




def clean(conn) -> None:
    assert conn.validation_errors == [], "messages that do not validate against the SDK types:\n" + \
        "\n".join(conn.validation_errors)
    assert conn.protocol_errors == [], "\n".join(conn.protocol_errors)


def loud_since(rtp: RtpPeer, t0: float) -> list[tuple[float, bytes]]:
    return [(t, p) for t, p in zip(list(rtp.arrivals), list(rtp.payloads)) if t >= t0 and loud(p)]


# --------------------------------------------------------------------------
# audio both ways

def test_openai_g711_caller_audio_passes_through_and_agent_audio_is_paced(ai_pbx):
    p = ai_pbx("openai")
    with p.caller(tone=1000) as (ua, dlg, rtp):
        conn = p.server.wait_connection()
        assert conn.headers.get("authorization") == f"Bearer {KEY}"
        assert conn.input_format == ("pcmu", 8000) and conn.output_format == ("pcmu", 8000)
        instructions = conn.session.get("instructions", "")
        assert f"calls to {N_AGENT}" in instructions, instructions
        # The caller's G.711 reaches the model byte for byte.
        wait_until(lambda: len(conn.caller_audio()) >= 16000, 10, "2 s of caller audio at the model")
        audio = conn.caller_audio()
        assert ulaw_tone(1000) in audio, "the caller's payload did not arrive untouched"
        f, _ = dominant_frequency(ulaw_samples([audio[-8000:]]), 8000)
        assert abs(f - 1000) < 15, f
        # 3 s of agent audio, sent at once, reaches the phone at real time.
        t0 = time.monotonic()
        conn.say(ulaw_tone(500) * 150, chunk_ms=200)
        time.sleep(4.0)
        tone = loud_since(rtp, t0)
        assert 145 <= len(tone) <= 152, f"{len(tone)} packets of agent audio (3 s is 150)"
        span = tone[-1][0] - tone[0][0]
        gaps = [b[0] - a[0] for a, b in zip(tone, tone[1:])]
        print(f"agent audio: {len(tone)} packets over {span:.3f} s, largest gap {max(gaps) * 1000:.1f} ms")
        assert 2.8 <= span <= 3.4, f"150 packets must take 3 s at 50/s, took {span:.3f} s"
        assert max(gaps) < 0.1, f"a {max(gaps) * 1000:.0f} ms gap in the agent's audio"
        f, _ = dominant_frequency(ulaw_samples([p for _, p in tone]), 8000)
        assert abs(f - 500) < 15, f
        ua_bye = dlg.bye()
        assert ua_bye is not None and ua_bye.code == 200
    rec = p.record()
    assert rec["persona"] == "rec" and rec["outcome"] == "answered", rec
    assert rec["hangup_side"] == "caller", rec
    wait_until(lambda: conn.closed, 5, "the websocket to close after the caller hung up")
    clean(conn)
    assert p.d.wait_metric("dialtone_ai_calls_active", 0)["dialtone_ai_calls_active"] == 0


def test_barge_in_flushes_playout_and_truncates_at_what_was_played(ai_pbx):
    p = ai_pbx("openai")
    with p.caller() as (ua, dlg, rtp):
        conn = p.server.wait_connection()
        # Once the caller's audio reaches the model the call's audio port is
        # up: model audio sent before that can be lost (seen once in CI
        # under load; a race at answer time, not what this test is about).
        wait_until(lambda: len(conn.caller_audio()) > 0, 5, "caller audio at the model")
        t0 = time.monotonic()
        conn.say(ulaw_tone(500) * 500, item_id="item_agent_1", chunk_ms=200)  # 10 s
        wait_until(lambda: len(loud_since(rtp, t0)) >= 60, 5, "1.2 s of agent audio at the phone")
        t_speech = time.monotonic()
        conn.speech_started(item_id="item_caller_1", audio_start_ms=1000)
        time.sleep(1.5)
        heard = loud_since(rtp, t0)
        after = [t for t, _ in heard if t > t_speech]
        stop_ms = (max(after) - t_speech) * 1000 if after else 0.0
        print(f"barge-in: agent audio stopped {stop_ms:.1f} ms after speech_started was sent")
        assert stop_ms < 200, f"agent audio went on {stop_ms:.0f} ms after the caller spoke"
        trunc = conn.wait_message("conversation.item.truncate", timeout=5)
        assert trunc["item_id"] == "item_agent_1" and trunc["content_index"] == 0, trunc
        played_ms = len(heard) * 20
        assert abs(trunc["audio_end_ms"] - played_ms) <= 100, (trunc, played_ms)
        assert trunc["audio_end_ms"] <= conn.sent_audio_ms["item_agent_1"]
        # The agent talks again afterwards.
        t1 = time.monotonic()
        conn.say(ulaw_tone(500) * 25)
        wait_until(lambda: len(loud_since(rtp, t1)) >= 20, 5, "agent audio after the barge-in")
        dlg.bye()
    clean(conn)
    assert "dialtone_ai_barge_ins_total 1" in p.d.metrics_text()


def test_hangup_call_lets_the_last_words_play_then_sends_bye(ai_pbx):
    p = ai_pbx("openai")
    with p.caller() as (ua, dlg, rtp):
        conn = p.server.wait_connection()
        t0 = time.monotonic()
        conn.say(ulaw_tone(500) * 75, transcript="Goodbye and thank you for calling.")  # 1.5 s
        conn.function_call("hangup_call", {})
        bye = ua.wait_request("BYE", timeout=10)
        assert bye is not None, "no BYE after hangup_call"
        t_bye = time.monotonic()
        ua.reply(bye, 200, "OK")
        tone = loud_since(rtp, t0)
        assert len(tone) >= 70, f"the last words were cut: {len(tone)} of 75 packets played"
        assert tone[-1][0] <= t_bye
    rec = p.record()
    assert rec["hangup_cause"] == "agent hangup" and rec["hangup_side"] == "callee", rec
    lines = [(t["side"], t["text"]) for t in rec["transcript"]]
    assert ("agent", "Goodbye and thank you for calling.") in lines, rec["transcript"]
    clean(conn)


def test_model_audio_sent_before_the_call_is_answered_is_played_not_lost(ai_pbx):
    """The model speaks the moment its session is set up: dialtone answers
    the caller only then, so those first words reach the agent before the
    call's audio port exists; they must be kept and played, not dropped."""
    p = ai_pbx("openai")
    p.server.auto_answer = False
    sent = threading.Event()

    def model_speaks_at_once() -> None:
        conn = p.server.wait_connection(ready=False)
        conn.wait_message("session.update")
        conn.answer_setup(then_say=ulaw_tone(500) * 50)    # 1 s, at once
        sent.set()

    threading.Thread(target=model_speaks_at_once, daemon=True).start()
    with p.caller() as (ua, dlg, rtp):
        assert sent.wait(10), "the scripted model never spoke"
        wait_until(lambda: len(loud_since(rtp, 0)) >= 48, 5,
                   "the model's first second of audio at the caller")
    clean(p.server.wait_connection())


# --------------------------------------------------------------------------
# transfers

def test_transfer_call_bridges_the_caller_to_a_baresip_phone_and_closes_the_session(
        ai_pbx, baresip, tmp_path):
    p = ai_pbx("openai")
    d = p.d
    d.add_user("alice", PW)
    wav = tmp_path / "alice-600.wav"
    write_tone_wav(wav, 600, seconds=30)
    alice = baresip("alice", PW, d.sip_port, answermode="auto", play=wav, record=True)
    assert alice.wait_registered(), alice.log()
    with p.caller(tone=1000) as (ua, dlg, rtp):
        conn = p.server.wait_connection()
        wait_until(lambda: len(conn.caller_audio()) > 8000, 5, "caller audio at the model")
        conn.function_call("transfer_call", {"destination": "alice"})
        wait_until(lambda: conn.closed, 15, "the AI session to close once alice answered")
        t_bridged = time.monotonic()
        time.sleep(3.0)
        theirs = [p_ for t, p_ in zip(list(rtp.arrivals), list(rtp.payloads)) if t > t_bridged + 0.5]
        assert len(theirs) > 100, f"the caller got {len(theirs)} packets after the transfer"
        f, _ = dominant_frequency(ulaw_samples(theirs), 8000)
        assert abs(f - 600) < 15, f"the caller hears {f} Hz, not alice's 600 Hz"
        dlg.bye()
    alice.stop()
    alice.heard_tone(1000, 15, min_seconds=1.5)
    rec = p.record()
    assert rec["outcome"] == "answered", rec
    assert any(leg["label"] == "user:alice" for leg in rec["legs"]), rec["legs"]
    clean(conn)


def test_transfer_to_an_unregistered_user_fails_and_the_caller_stays_with_the_agent(ai_pbx):
    p = ai_pbx("openai")
    p.d.add_user("bob", PW)  # never registers
    with p.caller() as (ua, dlg, rtp):
        conn = p.server.wait_connection()
        cid = conn.function_call("transfer_call", {"destination": "bob"})
        out = conn.wait_function_output(cid, timeout=10)
        assert out == "transfer failed: unavailable (480)", out
        t0 = time.monotonic()
        conn.say(ulaw_tone(500) * 25)
        wait_until(lambda: len(loud_since(rtp, t0)) >= 20, 5, "the agent still talking to the caller")
        assert not conn.closed
        # A destination the model made up is a tool error it can read.
        cid = conn.function_call("transfer_call", {"destination": "no such place!"})
        assert "invalid arguments" in conn.wait_function_output(cid, timeout=5)
        cid = conn.function_call("transfer_call", {"where": "bob"})
        assert "destination" in conn.wait_function_output(cid, timeout=5)
        dlg.bye()
    clean(conn)
    assert 'dialtone_ai_tool_calls_total{tool="transfer_call",outcome="ok"} 1' in p.d.metrics_text()


# --------------------------------------------------------------------------
# other codecs, Gemini

@pytest.mark.parametrize("mediaenc", [None, "srtp-mand"], ids=["plain", "srtp"])
def test_an_opus_caller_works_as_well(ai_pbx, baresip, tmp_path, mediaenc):
    """A baresip caller speaking only Opus, in plain RTP and over SRTP
    (the agent's audio port behind dialtone's decryption and encryption)."""
    p = ai_pbx("openai")
    d = p.d
    d.add_user("carol", PW)
    wav = tmp_path / "carol-800.wav"
    write_tone_wav(wav, 800, seconds=30, rate=48000)
    carol = baresip("carol", PW, d.sip_port, play=wav, record=True, codecs=("opus",), mediaenc=mediaenc)
    assert carol.wait_registered(), carol.log()
    carol.dial(f"sip:{N_AGENT}@{LOOPBACK}:{d.sip_port}")
    conn = p.server.wait_connection(timeout=15)
    assert conn.input_format == ("pcm", 24000) and conn.output_format == ("pcm", 24000)
    wait_until(lambda: len(conn.caller_audio()) >= 2 * 24000 * 2, 10, "2 s of caller audio")
    heard = pcm_samples(conn.caller_audio()[-48000:])
    f, _ = dominant_frequency(heard, 24000, hi=4000)
    assert abs(f - 800) < 15, f"the model heard {f} Hz, not carol's 800 Hz"
    conn.say(pcm16(500, 3.0, 24000))
    time.sleep(3.5)
    carol.hangup()
    carol.stop()
    carol.heard_tone(500, 15, hi=4000, min_seconds=2.0)
    if mediaenc:
        assert "SRTP is Enabled" in carol.log(), carol.log()
    clean(conn)


def test_gemini_live_call(ai_pbx):
    p = ai_pbx("gemini")
    with p.caller(tone=1000) as (ua, dlg, rtp):
        conn = p.server.wait_connection()
        assert conn.headers.get("x-goog-api-key") == KEY
        assert conn.input_format == ("pcm", 16000) and conn.output_format == ("pcm", 24000)
        wait_until(lambda: len(conn.caller_audio()) >= 2 * 16000 * 2, 10, "2 s of caller audio")
        f, _ = dominant_frequency(pcm_samples(conn.caller_audio()[-32000:]), 16000, hi=4000)
        assert abs(f - 1000) < 15, f
        t0 = time.monotonic()
        conn.say(pcm16(500, 4.0, 24000))
        wait_until(lambda: len(loud_since(rtp, t0)) >= 50, 5, "1 s of agent audio")
        t_int = time.monotonic()
        conn.speech_started()  # Gemini: serverContent.interrupted
        time.sleep(1.0)
        after = [t for t, _ in loud_since(rtp, t0) if t > t_int + 0.2]
        assert not after, f"{len(after)} packets of agent audio after the interruption"
        tone = loud_since(rtp, t0)
        f, _ = dominant_frequency(ulaw_samples([p_ for _, p_ in tone]), 8000)
        assert abs(f - 500) < 15, f
        conn.function_call("hangup_call", {})
        bye = ua.wait_request("BYE", timeout=10)
        assert bye is not None
        ua.reply(bye, 200, "OK")
    clean(conn)


# --------------------------------------------------------------------------
# when the model is not there

def test_an_unreachable_model_sends_the_call_to_the_fallback(ai_pbx):
    """The model refuses the connection (HTTP 401): the caller reaches the
    persona's fallback, dave, and the record says why."""
    p = ai_pbx("openai", mode="reject_401", persona=("--fallback", "user:dave"))
    d = p.d
    d.add_user("dave", PW)
    with SipUA(LOOPBACK, user="dave") as phone:
        reg = phone.register("dave", PW, (LOOPBACK, d.sip_port))
        assert reg is not None and reg.code == 200, reg
        answered = {}

        def dave_answers():
            inv = phone.wait_request("INVITE", timeout=15)
            if inv is not None:
                answered["dlg"] = answer_call(phone, inv, sdp_offer(LOOPBACK, 40002))

        t = threading.Thread(target=dave_answers)
        t.start()
        with p.caller() as (ua, dlg, rtp):
            t.join(15)
            assert "dlg" in answered, "dave never got the fallback call"
            dlg.bye()
    rec = p.record()
    assert rec["outcome"] == "answered" and rec["callee"] == "user:dave", rec
    assert "401" in rec["stats"]["ai_failure"], rec["stats"]
    assert p.server.auth_failures == 0 and len(p.server.connections) == 0


def test_no_fallback_and_a_silent_model_answer_503(ai_pbx):
    p = ai_pbx("openai", mode="hang", config={"ai": {"connect_timeout_ms": 1000}})
    with p.caller(expect=503):
        pass
    rec = p.record()
    assert rec["outcome"] in ("unavailable", "failed"), rec
    assert "model unreachable" in rec["hangup_cause"], rec


# --------------------------------------------------------------------------
# keypad, idle, reconnect, transcripts, teardown

def test_caller_dtmf_reaches_the_model_as_text(ai_pbx):
    p = ai_pbx("openai")
    with p.caller() as (ua, dlg, rtp):
        conn = p.server.wait_connection()
        for digit in (1, 2, 11):  # 1, 2, #
            rtp.send_dtmf(digit)
            time.sleep(0.3)
        msg = conn.wait_message("conversation.item.create",
                                lambda m: m["item"].get("type") == "message", timeout=5)
        text = msg["item"]["content"][0]["text"]
        assert "12#" in text, text
        conn.wait_message("response.create", timeout=3)
        dlg.bye()
    clean(conn)


def test_idle_caller_is_reprompted_then_hung_up(ai_pbx):
    p = ai_pbx("openai", persona=("--idle-timeout-secs", "1"))
    with p.caller() as (ua, dlg, rtp):
        conn = p.server.wait_connection()
        msg = conn.wait_message("response.create", timeout=5)
        assert "still there" in json.dumps(msg), msg
        bye = ua.wait_request("BYE", timeout=6)
        assert bye is not None, "no BYE after the second idle period"
        ua.reply(bye, 200, "OK")
    rec = p.record()
    assert rec["hangup_cause"] == "idle timeout", rec
    clean(conn)


def test_a_dropped_connection_is_reconnected_with_the_conversation(ai_pbx):
    p = ai_pbx("openai")
    with p.caller() as (ua, dlg, rtp):
        conn = p.server.wait_connection()
        conn.caller_transcript("My name is Ann.")
        conn.say(ulaw_tone(500) * 25, transcript="Hello Ann, how can I help?")
        time.sleep(1.0)
        conn.drop()
        conn2 = p.server.wait_connection(1, timeout=10)
        said = conn2.wait_message("conversation.item.create",
                                  lambda m: m["item"].get("role") == "assistant", timeout=5)
        assert "Hello Ann" in json.dumps(said), said
        texts = json.dumps(conn2.messages("conversation.item.create"))
        assert "My name is Ann." in texts, texts
        t0 = time.monotonic()
        conn2.say(ulaw_tone(500) * 25)
        wait_until(lambda: len(loud_since(rtp, t0)) >= 20, 5, "agent audio after the reconnect")
        dlg.bye()
    rec = p.record()
    sides = [(t["side"], t["text"]) for t in rec["transcript"]]
    assert sides[:2] == [("caller", "My name is Ann."), ("agent", "Hello Ann, how can I help?")], sides
    shown = p.d.cli("calls", "show", rec["id"]).stdout
    assert "caller: My name is Ann." in shown and "agent: Hello Ann, how can I help?" in shown, shown
    clean(conn)
    clean(conn2)


def test_caller_hanging_up_mid_tool_tears_everything_down(ai_pbx):
    p = ai_pbx("openai")
    d = p.d
    d.add_user("erin", PW)
    with SipUA(LOOPBACK, user="erin") as erin:
        reg = erin.register("erin", PW, (LOOPBACK, d.sip_port))
        assert reg is not None and reg.code == 200, reg
        with p.caller() as (ua, dlg, rtp):
            conn = p.server.wait_connection()
            conn.function_call("transfer_call", {"destination": "erin"})
            inv = erin.wait_request("INVITE", timeout=10)
            assert inv is not None, "erin never rang"
            erin.reply(inv, 180, "Ringing", to_tag="erin1")
            assert dlg.bye().code == 200
            cancel = erin.wait_request("CANCEL", timeout=5)
            assert cancel is not None, "the ringing transfer target was not cancelled"
            erin.reply(cancel, 200, "OK")
            erin.reply(inv, 487, "Request Terminated", to_tag="erin1")
            wait_until(lambda: conn.closed, 5, "the websocket to close")
    assert d.wait_metric("dialtone_ai_calls_active", 0)["dialtone_ai_calls_active"] == 0
    assert d.wait_metric("dialtone_calls_active", 0)["dialtone_calls_active"] == 0
    assert d.wait_metric("dialtone_media_endpoints", 0)["dialtone_media_endpoints"] == 0
    rec = p.record()
    assert rec["hangup_side"] == "caller", rec
    clean(conn)


def test_a_transfer_target_silent_when_the_caller_hangs_up_is_cancelled_once_it_rings(ai_pbx):
    """RFC 3261 9.1: no CANCEL before a provisional; the ended call still owes one."""
    p = ai_pbx("openai")
    d = p.d
    d.add_user("erin", PW)
    with SipUA(LOOPBACK, user="erin") as erin:
        assert erin.register("erin", PW, (LOOPBACK, d.sip_port)).code == 200
        with p.caller() as (ua, dlg, rtp):
            conn = p.server.wait_connection()
            conn.function_call("transfer_call", {"destination": "erin"})
            inv = erin.wait_request("INVITE", timeout=10)
            assert inv is not None, "erin never rang"
            assert dlg.bye().code == 200
            assert d.wait_metric("dialtone_calls_active", 0)["dialtone_calls_active"] == 0
            assert erin.wait_request("CANCEL", timeout=0.5) is None, "CANCEL before any provisional"
            erin.reply(inv, 180, "Ringing", to_tag="erin2")
            cancel = erin.wait_request("CANCEL", timeout=5)
            assert cancel is not None, "the target rang after the call ended and was never cancelled"
            erin.reply(cancel, 200, "OK")
            erin.reply(inv, 487, "Request Terminated", to_tag="erin2")
    rec = p.record()
    assert rec["hangup_side"] == "caller", rec
    clean(conn)


def test_a_transfer_target_answering_after_the_caller_hung_up_is_released(ai_pbx):
    """A 2xx that comes after the call ended is ACKed and BYEd, not left open."""
    p = ai_pbx("openai")
    d = p.d
    d.add_user("erin", PW)
    with SipUA(LOOPBACK, user="erin") as erin:
        assert erin.register("erin", PW, (LOOPBACK, d.sip_port)).code == 200
        with p.caller() as (ua, dlg, rtp):
            conn = p.server.wait_connection()
            conn.function_call("transfer_call", {"destination": "erin"})
            inv = erin.wait_request("INVITE", timeout=10)
            assert inv is not None, "erin never rang"
            assert dlg.bye().code == 200
            assert d.wait_metric("dialtone_calls_active", 0)["dialtone_calls_active"] == 0
            erin.reply(inv, 200, "OK", to_tag="erin3", body=sdp_offer(LOOPBACK, 40010))
            assert erin.wait_request("ACK", timeout=5) is not None, "the late 2xx was not ACKed"
            bye = erin.wait_request("BYE", timeout=5)
            assert bye is not None, "the late answer was left connected to nobody"
            erin.reply(bye, 200, "OK")
    assert d.wait_metric("dialtone_media_endpoints", 0)["dialtone_media_endpoints"] == 0
    clean(conn)


def test_live_call_through_the_rest_api(ai_pbx):
    token = "t0ken-for-tests"
    p = ai_pbx("openai", config={"http": {"api_token": token}})

    def get(path):
        req = urllib.request.Request(f"http://{LOOPBACK}:{p.d.http_port}{path}")
        req.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    with p.caller() as (ua, dlg, rtp):
        conn = p.server.wait_connection()
        conn.caller_transcript("I need help with my order.")
        calls = wait_until(lambda: get("/api/v1/calls")["calls"], 5, "a live call")
        call = calls[0]
        assert call["persona"] == "rec" and call["state"] == "answered", call
        one = wait_until(lambda: (c := get(f"/api/v1/calls/{call['id']}")["call"])["transcript"] and c,
                         5, "the live transcript")
        assert one["transcript"][0]["text"] == "I need help with my order.", one
        dlg.bye()
    clean(conn)


# --------------------------------------------------------------------------
# greeting, false-interruption guard, fillers, session renewal

def test_the_agent_greets_first_while_the_caller_heard_ringing(ai_pbx):
    p = ai_pbx("openai", persona=("--greeting", "Thank you for calling Acme."))
    with p.caller() as (ua, dlg, rtp):
        assert any(r.code == 180 for r in dlg.provisionals), \
            "the caller must hear ringing while the model's websocket opens"
        conn = p.server.wait_connection()
        msg = conn.wait_message("response.create", timeout=5)
        assert "Thank you for calling Acme." in msg["response"]["instructions"], msg
        dlg.bye()
    clean(conn)


def test_a_short_noise_does_not_cut_the_agent_off_but_real_speech_does(ai_pbx):
    p = ai_pbx("openai", persona=("--barge-in-min-ms", "400"))
    with p.caller() as (ua, dlg, rtp):
        conn = p.server.wait_connection()
        td = conn.session["audio"]["input"]["turn_detection"]
        assert td["interrupt_response"] is False, "with a guard dialtone decides on interruptions"
        t0 = time.monotonic()
        say = conn.start_say(ulaw_tone(500) * 400, item_id="item_long", chunk_ms=200, pace=1.0)  # 8 s, live
        wait_until(lambda: len(loud_since(rtp, t0)) >= 25, 5, "agent audio at the phone")
        # A cough: 100 ms of "speech".
        conn.speech_started(item_id="cough")
        time.sleep(0.1)
        conn.speech_stopped()
        time.sleep(0.8)
        t_check = time.monotonic()
        wait_until(lambda: len(loud_since(rtp, t_check)) >= 20, 3, "the agent to go on after a cough")
        assert not conn.messages("conversation.item.truncate")
        # Real speech: cut off after the guard's 400 ms, by dialtone itself.
        t_speech = time.monotonic()
        conn.speech_started(item_id="speech")
        conn.wait_message("response.cancel", timeout=5)
        trunc = conn.wait_message("conversation.item.truncate", timeout=5)
        assert trunc["item_id"] == "item_long", trunc
        time.sleep(0.5)
        after = [t for t, _ in loud_since(rtp, t_speech) if t > t_speech + 0.7]
        assert not after, f"{len(after)} packets of agent audio after the guarded barge-in"
        say.wait(10)
        dlg.bye()
    clean(conn)


def test_a_slow_transfer_gets_a_filler_line(ai_pbx):
    p = ai_pbx("openai", config={"ai": {"filler_after_ms": 500}})
    d = p.d
    d.add_user("frank", PW)
    with SipUA(LOOPBACK, user="frank") as frank:
        reg = frank.register("frank", PW, (LOOPBACK, d.sip_port))
        assert reg is not None and reg.code == 200, reg
        with p.caller() as (ua, dlg, rtp):
            conn = p.server.wait_connection()
            cid = conn.function_call("transfer_call", {"destination": "frank"})
            inv = frank.wait_request("INVITE", timeout=10)
            assert inv is not None
            frank.reply(inv, 180, "Ringing", to_tag="f1")
            filler = conn.wait_message("response.create", timeout=5)
            assert "working on it" in filler["response"]["instructions"], filler
            frank.reply(inv, 486, "Busy Here", to_tag="f1")
            assert conn.wait_function_output(cid, timeout=10) == "transfer failed: busy (486)"
            dlg.bye()
    clean(conn)


def test_gemini_go_away_renews_the_session_with_its_resumption_handle(ai_pbx):
    p = ai_pbx("gemini")
    with p.caller() as (ua, dlg, rtp):
        conn = p.server.wait_connection()
        conn.resumption_update("handle-42")
        conn.go_away(30)
        conn2 = p.server.wait_connection(1, timeout=10)
        assert conn2.session.get("sessionResumption", {}).get("handle") == "handle-42", conn2.session
        wait_until(lambda: conn.closed, 10, "the old session to close once the new one took over")
        wait_until(lambda: len(conn2.caller_audio()) > 16000, 5, "caller audio on the new session")
        t0 = time.monotonic()
        conn2.say(pcm16(500, 1.0, 24000))
        wait_until(lambda: len(loud_since(rtp, t0)) >= 40, 5, "agent audio from the new session")
        dlg.bye()
    clean(conn)
    clean(conn2)
    assert "dialtone_ai_renewals_total 1" in p.d.metrics_text()


def test_an_openai_session_is_renewed_before_its_limit_with_the_conversation(ai_pbx):
    p = ai_pbx("openai", config={"ai": {"renew_after_secs": 4}})
    with p.caller() as (ua, dlg, rtp):
        conn = p.server.wait_connection()
        conn.caller_transcript("I would like a table for two.")
        conn2 = p.server.wait_connection(1, timeout=10)
        item = conn2.wait_message("conversation.item.create",
                                  lambda m: m["item"].get("role") == "user", timeout=5)
        assert "table for two" in json.dumps(item), item
        wait_until(lambda: conn.closed, 10, "the old session to close once the new one took over")
        t0 = time.monotonic()
        conn2.say(ulaw_tone(500) * 25)
        wait_until(lambda: len(loud_since(rtp, t0)) >= 20, 5, "agent audio from the renewed session")
        dlg.bye()
    clean(conn)
    clean(conn2)
    assert "dialtone_ai_renewals_total" in p.d.metrics_text()

"""End-to-end tests of dialtone as a B2BUA: calls from a trunk and between
registered phones, driven from outside with SIPp, baresip, a small Python
user agent with its own RTP (tests/siptool.py) and the dialtone CLI.

Cast (all on loopback):
  - the trunk "carrier": its SIPp binds 127.0.0.2, dialtone knows it by that
    source address (`trunk add carrier --inbound-ip 127.0.0.2`); calls from it
    need no authentication. Its host (127.0.0.2:PORT) is where calls routed
    out to it go.
  - phones on 127.0.0.1: users alice, bob, carol (dave exists but never
    registers), each a SIPp that first runs register.xml from a port and then
    a callee scenario (uas*.xml) on that same port: its registered contact.
  - numbers: 15551230001 -> user:bob, ...02 -> user:alice, ...03 -> user:carol,
    ...04 -> user:dave, ...05 -> persona:sales, ...06 -> queue:support.
  - a route ^9(\\d+)$, strip 1 -> carrier.

The SIPp scenarios are known good: tests/test_scenarios_calls.py runs each
one against SIPp and through Kamailio. Every wait is bounded.
"""

from __future__ import annotations

import json
import signal
import threading
import time

import pytest

from conftest import LOOPBACK, baresip_tone_call, free_port, header_values, received_messages, wait_bound
from siptool import (RtpPeer, SipUA, answer_call, parse_sdp, place_call, rtp_counts, sdp_offer)

PW = "s3cret-pw"
TRUNK_IP = "127.0.0.2"
RTP_LO, RTP_HI = 20000, 29999  # the test config's media.rtp_ports
N_BOB, N_ALICE, N_CAROL, N_DAVE, N_QUEUE = (f"1555123000{i}" for i in (1, 2, 3, 4, 6))


# --------------------------------------------------------------------------
# set-up

class Pbx:
    """A dialtone with the trunk, users, numbers and route above."""

    def __init__(self, d, sipp):
        self.d = d
        self.sipp = sipp
        self.trunk_port = free_port(host=TRUNK_IP)
        d.add_trunk("carrier", f"{TRUNK_IP}:{self.trunk_port}", inbound_ips=[TRUNK_IP])
        for u in ("alice", "bob", "carol", "dave"):
            d.add_user(u, PW)
        # A number can only route to a queue that exists.
        d.cli("queue", "add", "support", "--members", "dave", "--strategy", "ring-all")
        for n, target in ((N_BOB, "user:bob"), (N_ALICE, "user:alice"), (N_CAROL, "user:carol"),
                          (N_DAVE, "user:dave"), (N_QUEUE, "queue:support")):
            d.add_number(n, target)
        d.add_route(r"^9(\d+)$", "carrier", strip=1)

    @property
    def port(self) -> int:
        return self.d.sip_port

    def register(self, user: str, port: int | None = None, expires: int = 600) -> int:
        """register.xml for `user` from `port` (default: a free one): that
        port is then the user's contact. Returns the port."""
        port = port or free_port()
        r = self.sipp("register.xml", self.port, service=user, password=PW, keys={"expires": expires},
                      local_port=port)
        assert r.ok(), r
        return port

    def phone(self, user: str, scenario: str = "uas.xml", *, calls: int = 1, timeout: float = 20,
              rtp_echo: bool = True, **kw):
        """A registered SIPp phone running `scenario` in the background."""
        port = self.register(user)
        run = self.sipp.start(scenario, self.port, service=user, local_port=port, calls=calls,
                              timeout=timeout, rtp_echo=rtp_echo, **kw)
        assert wait_bound(port), run.wait(1)
        return run

    def trunk_call(self, scenario: str, number: str, *, background: bool = False, **kw):
        """A call from the trunk (SIPp on 127.0.0.2) to `number`."""
        kw.setdefault("timeout", 20)
        start = self.sipp.start if background else self.sipp
        return start(scenario, self.port, service=number, local_ip=TRUNK_IP, **kw)

    def record(self, count: int = 1, timeout: float = 10.0) -> dict:
        """The newest call record, once `count` records have ended."""
        recs = self.d.wait_calls(count, timeout)
        assert len([r for r in recs if r.get("ended_at")]) >= count, \
            f"expected {count} ended call record(s):\n{json.dumps(recs, indent=1)}"
        return recs[0]


@pytest.fixture
def pbx(dialtone, sipp) -> Pbx:
    return Pbx(dialtone, sipp)


def first(msgs: list[str], start: str) -> str | None:
    return next((m for m in msgs if m.startswith(start)), None)


def sdp_of(message: str):
    return parse_sdp(message.split("\n\n", 1)[1].encode()) if "\n\n" in message else None


def assert_anchored(sdp, what: str) -> None:
    """SDP that dialtone wrote: advertise_ip and a port of media.rtp_ports."""
    assert sdp is not None and sdp.ip == LOOPBACK, f"{what}: c= is not dialtone's 127.0.0.1: {sdp}"
    assert sdp.port is not None and RTP_LO <= sdp.port <= RTP_HI, \
        f"{what}: m= port {sdp and sdp.port} is not in rtp_ports {RTP_LO}-{RTP_HI}"


# --------------------------------------------------------------------------
# 1. trunk -> number -> registered phone, media through dialtone

def test_inbound_call_media_flows_through_dialtone(pbx):
    """A Python trunk and a Python phone, each with its own RTP socket, so
    that what crosses dialtone is counted exactly, both ways, and its source
    is known."""
    d = pbx.d
    with SipUA(LOOPBACK, user="bob") as phone, SipUA(TRUNK_IP, user="carrier") as trunk:
        reg = phone.register("bob", PW, (LOOPBACK, d.sip_port))
        assert reg is not None and reg.code == 200, reg
        rtp_trunk, rtp_phone = RtpPeer(TRUNK_IP, pt=0), RtpPeer(LOOPBACK, pt=0)
        try:
            answered: dict = {}

            def callee():
                inv = phone.wait_request("INVITE", 10)
                if inv is not None:
                    answered["invite"] = inv
                    answered["dialog"] = answer_call(phone, inv, sdp_offer(LOOPBACK, rtp_phone.port))

            t = threading.Thread(target=callee, daemon=True)
            t.start()
            call = place_call(trunk, (LOOPBACK, d.sip_port), f"sip:{N_BOB}@{LOOPBACK}:{d.sip_port}",
                              sdp_offer(TRUNK_IP, rtp_trunk.port), from_uri=f"sip:+15559870000@{TRUNK_IP}")
            t.join(12)
            inv = answered.get("invite")
            assert inv is not None, f"the phone got no INVITE; trunk saw: {call.final}"
            assert call.final is not None and call.final.code == 200, f"trunk's final response: {call.final}"
            assert answered.get("dialog") is not None, "the phone's 200 was never ACKed"
            leg_b = answered["dialog"]

            # a B2BUA: a new dialog towards the phone
            assert inv.get("Call-ID") != call.call_id, "the phone's INVITE reuses the trunk's Call-ID"
            assert inv.tag("From") != call.local_tag, "the phone's INVITE reuses the trunk's From tag"
            # SDP on both sides points at dialtone's own RTP ports
            offer_to_phone = parse_sdp(inv.body)
            answer_to_trunk = call.remote_sdp
            assert_anchored(offer_to_phone, "the offer the phone got")
            assert_anchored(answer_to_trunk, "the answer the trunk got")
            assert offer_to_phone.port != rtp_trunk.port and answer_to_trunk.port != rtp_phone.port

            # RTP both ways for 2 s, then a DTMF event (RFC 4733) from the trunk
            rtp_trunk.start((answer_to_trunk.ip, answer_to_trunk.port))
            rtp_phone.start((offer_to_phone.ip, offer_to_phone.port))
            time.sleep(2.0)
            rtp_trunk.send_dtmf(5)
            time.sleep(0.5)
            rtp_trunk.stop_sending()
            rtp_phone.stop_sending()
            time.sleep(0.3)

            for peer, name in ((rtp_phone, "phone"), (rtp_trunk, "trunk")):
                assert peer.received > 20, f"the {name} got {peer.received} RTP packets: {peer}"
                for (ip, port), n in peer.sources.items():
                    assert ip == LOOPBACK and RTP_LO <= port <= RTP_HI, \
                        f"the {name} got RTP from {ip}:{port}, not from dialtone's rtp_ports: {peer}"
            assert rtp_phone.payload_types.get(101, 0) >= 1, \
                f"the DTMF event (PT 101) did not reach the phone: {rtp_phone}"
            assert rtp_phone.payload_types.get(0, 0) > 20, rtp_phone

            # the trunk hangs up: the phone gets the BYE
            bye_seen: dict = {}

            def phone_bye():
                bye = phone.wait_request("BYE", 5, call_id=leg_b.call_id)
                if bye is not None:
                    bye_seen["bye"] = bye
                    phone.reply(bye, 200, "OK")

            t = threading.Thread(target=phone_bye, daemon=True)
            t.start()
            r = call.bye()
            t.join(6)
            assert r is not None and r.code == 200, f"BYE from the trunk answered {r}"
            assert "bye" in bye_seen, "the phone got no BYE after the trunk hung up"
        finally:
            rtp_trunk.stop()
            rtp_phone.stop()

    rec = pbx.record()
    assert rec["direction"] == "inbound", rec
    assert rec["outcome"] == "answered", rec
    assert rec["answered_at"] and rec["ended_at"] and rec["started_at"] <= rec["answered_at"] <= rec["ended_at"], rec
    assert rec["hangup_side"] == "caller", rec
    assert N_BOB in rec["to_uri"] or rec.get("callee") in ("bob", N_BOB), rec
    counts = rtp_counts(rec.get("stats"))
    assert counts and any(i > 0 for i, _ in counts) and any(o > 0 for _, o in counts), \
        f"the record's stats count no RTP: {rec.get('stats')}"


# --------------------------------------------------------------------------
# 2. the same with SIPp: pcap RTP echoed, BYE from the caller

def test_inbound_call_sipp_bye_from_caller(pbx):
    bob = pbx.phone("bob", "uas.xml")
    r = pbx.trunk_call("uac.xml", N_BOB, duration_ms=2000, sets={"rtp": "yes"})
    b = bob.wait()
    assert r.ok(), r
    assert b.ok(), b
    inv_b = first(received_messages(b.messages), "INVITE")
    sent_a = [m for m in r.messages.split("message sent")[1:] if "INVITE sip:" in m[:200]][0]
    assert header_values(inv_b, "Call-ID") != header_values(sent_a.split(":\n\n", 1)[1], "Call-ID")
    assert_anchored(sdp_of(inv_b), "the offer the phone got")
    assert_anchored(sdp_of(first(received_messages(r.messages), "SIP/2.0 200")), "the answer the trunk got")
    assert first(received_messages(b.messages), "BYE"), "the BYE did not reach the phone"
    rec = pbx.record()
    assert (rec["outcome"], rec["hangup_side"], rec["direction"]) == ("answered", "caller", "inbound"), rec
    assert rec["hangup_cause"] == "BYE", rec


# --------------------------------------------------------------------------
# 3. BYE from the callee

def test_bye_from_callee(pbx):
    bob = pbx.phone("bob", "uas_bye_from_callee.xml", duration_ms=1500)
    r = pbx.trunk_call("uac_bye_from_callee.xml", N_BOB)
    b = bob.wait()
    assert r.ok(), r
    assert b.ok(), b
    rec = pbx.record()
    assert (rec["outcome"], rec["hangup_side"]) == ("answered", "callee"), rec


# --------------------------------------------------------------------------
# 4. CANCEL before the answer

def test_cancel_before_answer(pbx):
    bob = pbx.phone("bob", "uas_ring_then_answer.xml")
    r = pbx.trunk_call("uac_cancel.xml", N_BOB)
    b = bob.wait()
    assert r.ok(), r  # 180 relayed, then 487 after our CANCEL
    assert received_messages(r.messages)[-1].startswith("SIP/2.0 487"), r
    assert b.ok(), b
    assert first(received_messages(b.messages), "CANCEL"), f"the CANCEL did not reach the phone\n{b}"
    rec = pbx.record()
    assert rec["outcome"] == "cancelled" and not rec.get("answered_at"), rec


# --------------------------------------------------------------------------
# 5. busy, and a user with no registration

def test_callee_busy(pbx):
    bob = pbx.phone("bob", "uas_busy.xml", rtp_echo=False)
    r = pbx.trunk_call("uac_reject.xml", N_BOB)
    assert r.ok(), r
    assert received_messages(r.messages)[-1].startswith("SIP/2.0 486"), r
    assert bob.wait().ok()
    rec = pbx.record()
    assert rec["outcome"] == "busy" and "486" in (rec.get("hangup_cause") or ""), rec


def test_unregistered_user_gets_480(pbx):
    r = pbx.trunk_call("uac_reject.xml", N_DAVE)
    assert r.ok(), r
    assert received_messages(r.messages)[-1].startswith("SIP/2.0 480"), r
    rec = pbx.record()
    assert rec["outcome"] == "unavailable", rec


def test_a_queue_with_no_member_online_answers_480(pbx):
    """Queue support's only member, dave, never registers: nobody to ring
    (queues ringing members: tests/test_tools.py)."""
    r = pbx.trunk_call("uac_reject.xml", N_QUEUE)
    assert r.ok(), r
    assert received_messages(r.messages)[-1].startswith("SIP/2.0 480"), r


# --------------------------------------------------------------------------
# 6. hold and resume (re-INVITE relayed, SDP rewritten)

def test_hold_and_resume(pbx):
    bob = pbx.phone("bob", "uas_hold_check.xml")
    r = pbx.trunk_call("uac_hold.xml", N_BOB, duration_ms=700)
    b = bob.wait()
    assert r.ok(), r  # the 200s: recvonly, then sendrecv
    assert b.ok(), b  # the re-INVITEs: sendonly, then not held
    invites = [m for m in received_messages(b.messages) if m.startswith("INVITE")]
    assert len(invites) == 3, [i.split("\n", 1)[0] for i in invites]
    for i in invites:
        assert_anchored(sdp_of(i), "an offer the phone got")
    assert [sdp_of(i).direction for i in invites] == ["sendrecv", "sendonly", "sendrecv"]
    oks = [m for m in received_messages(r.messages) if m.startswith("SIP/2.0 200") and "INVITE" in
           (header_values(m, "CSeq") or [""])[0]]
    assert [sdp_of(o).direction for o in oks] == ["sendrecv", "recvonly", "sendrecv"]


# --------------------------------------------------------------------------
# 7. forking: every contact of the user rings, the first 2xx wins

def test_fork_to_every_contact_first_answer_wins(pbx):
    ringing = pbx.phone("bob", "uas_ring_then_answer.xml")  # rings 3 s
    quick = pbx.phone("bob", "uas.xml")                     # answers at once
    assert len(pbx.d.bindings_of("bob")) == 2, pbx.d.registrations()
    r = pbx.trunk_call("uac.xml", N_BOB, duration_ms=1000)
    q, rg = quick.wait(), ringing.wait()
    assert r.ok(), r
    assert q.ok(), q
    assert rg.ok(), rg
    assert first(received_messages(rg.messages), "CANCEL"), \
        f"the phone that did not answer was not CANCELled\n{rg}"


# --------------------------------------------------------------------------
# 8. phone to phone: authentication, and what the callee hears

def test_phone_calls_user_after_digest_challenge(pbx):
    bob = pbx.phone("bob", "uas.xml")
    r = pbx.sipp("uac_auth.xml", pbx.port, service="alice", password=PW, keys={"dial": "bob"},
                 auth_uri=f"bob@{LOOPBACK}:{pbx.port}", duration_ms=1000, timeout=20)
    assert r.ok(), r
    got = received_messages(r.messages)
    assert first(got, "SIP/2.0 407"), "the phone's INVITE was not challenged"
    assert header_values(first(got, "SIP/2.0 407"), "Proxy-Authenticate"), first(got, "SIP/2.0 407")
    assert bob.wait().ok()
    rec = pbx.record()
    assert (rec["direction"], rec["outcome"]) == ("internal", "answered"), rec


def test_baresip_phones_hear_each_other(pbx, baresip, tmp_path):
    """alice's microphone is a 1000 Hz tone, bob's a 440 Hz one; bob records
    what he hears (sndfile): its dominant frequency must be alice's tone."""
    baresip_tone_call(baresip, tmp_path, PW, pbx.port)


# --------------------------------------------------------------------------
# 9. outbound routing and the authentication wall in front of trunks

def test_unauthenticated_invite_never_reaches_trunk(pbx):
    # the carrier's side: a SIPp callee on the trunk's host
    carrier = pbx.sipp.start("uas.xml", pbx.port, local_ip=TRUNK_IP, local_port=pbx.trunk_port,
                             timeout=25, rtp_echo=True)
    assert wait_bound(pbx.trunk_port, TRUNK_IP)
    with SipUA(LOOPBACK, user="mallory") as ua:
        call = place_call(ua, (LOOPBACK, pbx.port), f"sip:9155512345@{LOOPBACK}:{pbx.port}",
                          sdp_offer(LOOPBACK, 40000), timeout=5)
    assert call.final is not None and call.final.code == 407, f"unauthenticated INVITE got {call.final}"
    assert call.final.get("Proxy-Authenticate"), call.final
    time.sleep(1.0)
    assert not received_messages(carrier.msg.read_text(errors="replace") if carrier.msg.exists() else ""), \
        "the trunk received something from an unauthenticated call"

    # with credentials the same number goes out, the prefix stripped
    r = pbx.sipp("uac_auth.xml", pbx.port, service="alice", password=PW, keys={"dial": "9155512345"},
                 auth_uri=f"9155512345@{LOOPBACK}:{pbx.port}", duration_ms=500, timeout=15)
    c = carrier.wait()
    assert r.ok(), r
    assert c.ok(), c
    inv = first(received_messages(c.messages), "INVITE")
    assert inv.startswith("INVITE sip:155512345@"), inv.split("\n", 1)[0]
    assert_anchored(sdp_of(inv), "the offer the trunk got")
    rec = pbx.record()
    assert rec["direction"] == "outbound", rec


# --------------------------------------------------------------------------
# 10. transfers (REFER)

def test_blind_transfer(pbx):
    """The trunk calls alice; alice REFERs it to carol; carol gets the call
    and hears the trunk hang up at the end."""
    carol = pbx.phone("carol", "uas.xml", timeout=30)
    alice = pbx.phone("alice", "refer_blind.xml", duration_ms=1000, timeout=30,
                      keys={"target": f"sip:carol@{LOOPBACK}"})
    x = pbx.trunk_call("uac_transferee.xml", N_ALICE, timeout=30)
    a, c = alice.wait(), carol.wait()
    assert a.ok(), a  # 202, NOTIFY sipfrags ending in 200, her leg ended
    assert x.ok(), x  # stayed connected until it hung up
    assert c.ok(), c  # got the call, then the trunk's BYE
    notifies = [m for m in received_messages(a.messages) if m.startswith("NOTIFY")]
    assert notifies and notifies[-1].split("\n\n", 1)[1].startswith("SIP/2.0 200"), notifies
    assert first(received_messages(c.messages), "INVITE"), "carol never got the call"


def test_attended_transfer(pbx):
    """Two trunk calls reach alice; she REFERs the first with Replaces naming
    the second: the two trunk callers are bridged, both of alice's legs end.
    The first caller hangs up 8 s later and the second gets that BYE."""
    alice = pbx.phone("alice", "refer_attended.xml", calls=2, duration_ms=1500, timeout=40)
    x = pbx.trunk_call("uac_transferee.xml", N_ALICE, background=True, timeout=35)
    time.sleep(1.0)
    y = pbx.trunk_call("uac_bye_from_callee.xml", N_ALICE, background=True, timeout=35)
    xr, yr, ar = x.wait(), y.wait(), alice.wait()
    assert ar.ok(2), ar
    assert xr.ok(), xr
    assert yr.ok(), yr
    # both of alice's legs were ended (by dialtone or by her after the NOTIFY)
    assert len([m for m in ar.messages.split("message ")[1:] if "\nBYE sip:" in "\n" + m[:300]]) >= 2, ar
    # the second caller's BYE came from the first caller's hang-up, via the bridge
    assert first(received_messages(yr.messages), "BYE"), yr


# --------------------------------------------------------------------------
# 11. a short load with RTP

def test_call_load_with_rtp(pbx):
    calls = 100
    bob = pbx.phone("bob", "uas_load.xml", calls=calls, timeout=60, trace_msg=False)
    r = pbx.trunk_call("uac_load.xml", N_BOB, calls=calls, rate=20, limit=200, duration_ms=3000,
                       timeout=60, trace_msg=False)
    b = bob.wait()
    assert r.ok(calls), r
    assert b.ok(calls), b
    m = pbx.d.wait_metric("dialtone_calls_active", 0, timeout=10)
    assert m.get("dialtone_calls_active") == 0, m
    m = pbx.d.wait_metric("dialtone_media_endpoints", 0, timeout=10)
    assert m.get("dialtone_media_endpoints") == 0, m
    assert m.get("dialtone_calls_total", 0) >= calls, m
    recs = pbx.d.wait_calls(calls, timeout=15, limit=1000)
    answered = [x for x in recs if x.get("outcome") == "answered" and x.get("ended_at")]
    assert len(answered) == calls, f"{len(answered)} answered records of {len(recs)}"


# --------------------------------------------------------------------------
# 12. graceful shutdown during a call

def test_graceful_shutdown_ends_calls(pbx):
    bob = pbx.phone("bob", "uas.xml", timeout=30)
    x = pbx.trunk_call("uac_bye_from_callee.xml", N_BOB, background=True, timeout=30)
    m = pbx.d.wait_metric("dialtone_calls_active", 1, timeout=10)
    assert m.get("dialtone_calls_active") == 1, m
    time.sleep(0.5)
    rc = pbx.d.stop(signal.SIGTERM, timeout=15)
    assert rc == 0, f"dialtone exited {rc} on SIGTERM during a call ({pbx.d.stop_problem})"
    xr, br = x.wait(), bob.wait()
    assert xr.ok(), f"the caller got no BYE on shutdown\n{xr}"
    assert br.ok(), f"the callee got no BYE on shutdown\n{br}"
    recs = pbx.d.calls()
    assert recs and recs[0].get("hangup_cause") == "shutdown", recs[:1]
    assert recs[0].get("ended_at") and recs[0].get("hangup_side") == "system", recs[0]

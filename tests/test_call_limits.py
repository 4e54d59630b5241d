"""Calls that dialtone ends or routes on its own: the ring timeout (the
caller gets 480, the record says no_answer), the maximum call duration and
the RTP timeout (both parties get BYE), and a call out through a trunk that challenges the INVITE
(the trunk here is a second dialtone, acting as the carrier: it knows our
switch as user pbx1 and routes the number to its own registered phone)."""

from __future__ import annotations

import pytest

from conftest import received_messages
from test_calls import PW, TRUNK_IP, Pbx


def test_ring_timeout_gives_480_and_no_answer(dialtone_factory, sipp):
    pbx = Pbx(dialtone_factory(config={"calls": {"ring_timeout_secs": 1}}), sipp)
    ringer = pbx.phone("bob", "uas_ring_then_answer.xml", timeout=15)
    r = pbx.trunk_call("uac_reject.xml", "15551230001")
    assert r.ok(), r
    assert received_messages(r.messages)[-1].startswith("SIP/2.0 480"), r
    rec = pbx.record()
    assert rec["outcome"] == "no_answer", rec
    rung = ringer.wait(15)
    # The ringing phone was CANCELled, not left ringing.
    assert "CANCEL sip:" in rung.messages, rung.messages[-3000:]


@pytest.mark.parametrize("config,cause", [
    ({"calls": {"max_duration_secs": 1}}, "max duration"),
    # Neither SIPp party sends RTP: the media's watchdog tells the call.
    ({"media": {"rtp_timeout_secs": 1}}, "rtp timeout"),
], ids=["max_duration", "rtp_timeout"])
def test_the_switch_ends_the_call(dialtone_factory, sipp, config, cause):
    pbx = Pbx(dialtone_factory(config=config), sipp)
    callee = pbx.phone("bob", "uas.xml", timeout=15)
    r = pbx.trunk_call("uac_wait_bye.xml", "15551230001")
    assert r.ok(), r
    assert callee.wait(15).ok(), "the callee must get BYE too"
    rec = pbx.record()
    assert rec["hangup_cause"] == cause, rec
    assert rec["hangup_side"] == "system", rec


def test_outbound_trunk_challenge_is_answered(dialtone_factory, sipp):
    # The carrier: a dialtone that authenticates our switch as user pbx1 and
    # routes 5550100 to its phone carol.
    carrier = Pbx(dialtone_factory(), sipp)
    carrier.d.add_user("pbx1", "trunk-secret")
    carrier.d.add_number("5550100", "user:carol")
    carol = carrier.phone("carol", "uas.xml", timeout=20)
    # Our switch: calls from the SIPp trunk to 5550199 go out to the carrier.
    ours = dialtone_factory()
    ours.add_trunk("carrier", f"127.0.0.1:{carrier.port}", username="pbx1", password="trunk-secret",
                   inbound_ips=[TRUNK_IP])
    ours.add_number("5550100", "trunk:carrier")
    r = sipp("uac.xml", ours.sip_port, service="5550100", local_ip=TRUNK_IP, timeout=20)
    assert r.ok(), f"{r}\n--- ours ---\n{ours.log()}\n--- carrier ---\n{carrier.d.log()}"
    assert carol.wait(15).ok()
    theirs = carrier.record()
    assert theirs["outcome"] == "answered" and theirs["caller"], theirs
    assert theirs["direction"] == "internal", theirs  # an authenticated user, not a trunk
    rec = ours.wait_calls(1)[0]
    assert rec["outcome"] == "answered" and rec["direction"] == "inbound", rec

"""Self-test of the call scenarios (sipp-scenarios/uac*.xml, uas*.xml,
refer_*.xml, ...): SIPp against SIPp directly, and through Kamailio as a
record-routing, transaction-stateful proxy (bench/kamailio-proxy.cfg), where
the route set matters. When these pass and a dialtone test with the same
scenario fails, the fault is dialtone's, not the scenario's.

Where a scenario checks something (a direction attribute, a sipfrag, a
response code), it is also run where it must FAIL, so that a scenario that
passes anything is caught.

RTP: uac*.xml play SIPp's PCMA pcap with -set rtp yes, which needs root
(raw sockets); the tests run as root (CI does too).
"""

from __future__ import annotations

import time

import pytest

from conftest import LOOPBACK, free_port, header_values, received_messages, wait_bound

PW = "secret"


def callee(sipp, scenario, *, port=None, calls=1, timeout=20, target=None, **kw):
    """Start a SIPp callee in the background on `port` and wait until it is bound."""
    port = port or free_port()
    run = sipp.start(scenario, target, local_port=port, calls=calls, timeout=timeout, **kw)
    assert wait_bound(port), f"{scenario} did not bind {port}:\n{run.wait(1)}"
    return run


def hop(direct_port, proxy):
    return proxy.port if proxy else direct_port


def first(msgs, start):
    return next((m for m in msgs if m.startswith(start)), None)


@pytest.fixture(params=["direct", "proxied"])
def route(request):
    """"direct": SIPp to SIPp; "proxied": through Kamailio (see via())."""
    return request.param


def via(route, kamailio_proxy, uas_port):
    """None, or a Kamailio proxy in front of the callee at uas_port."""
    return kamailio_proxy(uas_port) if route == "proxied" else None


# -- basic call ---------------------------------------------------------------

def test_basic_call_with_rtp(sipp, kamailio_proxy, route):
    uas = callee(sipp, "uas.xml", rtp_echo=True, service="bob")
    proxy = via(route, kamailio_proxy, uas.local_port)
    r = sipp("uac.xml", hop(uas.local_port, proxy), service="bob", duration_ms=1500,
             sets={"rtp": "yes"}, timeout=15)
    u = uas.wait()
    assert r.ok(), r
    assert u.ok(), u
    sent_ack = [m for m in r.messages.split("message sent")[1:] if "\nACK " in m[:300]]
    if proxy:
        # the 200 carried Record-Route, so the ACK and BYE carry Route
        ok = first(received_messages(r.messages), "SIP/2.0 200")
        assert header_values(ok, "Record-Route"), ok
        assert sent_ack and "Route: <sip:127.0.0.1:%d" % proxy.port in sent_ack[0], sent_ack
        assert header_values(first(received_messages(u.messages), "BYE"), "Route") == [], \
            "the proxy must consume its own Route entry"


def test_uac_fails_when_rejected(sipp):
    uas = callee(sipp, "uas_busy.xml")
    r = sipp("uac.xml", uas.local_port, service="bob", duration_ms=500, timeout=5)
    assert r.rc != 0 and r.failed == 1, f"uac.xml must fail on a 486\n{r}"
    assert uas.wait().ok()


# -- busy / reject -----------------------------------------------------------

def test_busy(sipp, kamailio_proxy, route):
    uas = callee(sipp, "uas_busy.xml")
    proxy = via(route, kamailio_proxy, uas.local_port)
    r = sipp("uac_reject.xml", hop(uas.local_port, proxy), service="bob", timeout=10)
    assert r.ok(), r
    assert uas.wait().ok()
    assert received_messages(r.messages)[-1].startswith("SIP/2.0 486"), r


def test_reject_scenario_fails_on_answer(sipp):
    uas = callee(sipp, "uas.xml", timeout=6)
    r = sipp("uac_reject.xml", uas.local_port, service="bob", timeout=5)
    assert r.rc != 0 and r.failed == 1, f"uac_reject.xml must fail on a 200\n{r}"


# -- CANCEL ------------------------------------------------------------------

def test_cancel_while_ringing(sipp, kamailio_proxy, route):
    uas = callee(sipp, "uas_ring_then_answer.xml")
    proxy = via(route, kamailio_proxy, uas.local_port)
    r = sipp("uac_cancel.xml", hop(uas.local_port, proxy), service="bob", timeout=10)
    u = uas.wait()
    assert r.ok(), r
    assert u.ok(), u
    assert received_messages(r.messages)[-1].startswith("SIP/2.0 487"), r
    assert first(received_messages(u.messages), "CANCEL"), u


def test_ring_then_answer_answers(sipp):
    uas = callee(sipp, "uas_ring_then_answer.xml")
    t0 = time.monotonic()
    r = sipp("uac.xml", uas.local_port, service="bob", duration_ms=200, timeout=10)
    assert r.ok(), r
    assert time.monotonic() - t0 >= 3.0, "it must ring 3 s before answering"
    u = uas.wait()
    assert u.ok() and not first(received_messages(u.messages), "CANCEL"), u


def test_cancel_scenario_fails_when_answered(sipp):
    uas = callee(sipp, "uas.xml", timeout=6)
    r = sipp("uac_cancel.xml", uas.local_port, service="bob", timeout=5)
    assert r.rc != 0 and r.failed == 1, f"uac_cancel.xml must fail when answered at once\n{r}"


# -- BYE from the callee ----------------------------------------------------------

def test_bye_from_callee(sipp, kamailio_proxy, route):
    uas = callee(sipp, "uas_bye_from_callee.xml", duration_ms=1000, rtp_echo=True, target=None)
    proxy = via(route, kamailio_proxy, uas.local_port)
    r = sipp("uac_bye_from_callee.xml", hop(uas.local_port, proxy), service="bob",
             sets={"rtp": "yes"}, timeout=10)
    u = uas.wait()
    assert r.ok(), r
    assert u.ok(), u
    bye = first(received_messages(r.messages), "BYE")
    assert bye, r
    if proxy:  # the callee's BYE followed the route set through the proxy
        assert "Via: SIP/2.0/UDP 127.0.0.1:%d" % proxy.port in bye, bye


# -- hold / resume ----------------------------------------------------------

def test_hold_and_resume(sipp, kamailio_proxy, route):
    uas = callee(sipp, "uas_hold_check.xml")
    proxy = via(route, kamailio_proxy, uas.local_port)
    r = sipp("uac_hold.xml", hop(uas.local_port, proxy), service="bob", duration_ms=300, timeout=10)
    u = uas.wait()
    assert r.ok(), r
    assert u.ok(), u


def test_hold_scenarios_fail_without_hold(sipp):
    # the callee answers a hold re-INVITE sendrecv: uac_hold.xml must fail
    uas = callee(sipp, "uas.xml", timeout=6)
    r = sipp("uac_hold.xml", uas.local_port, service="bob", duration_ms=200, timeout=5)
    assert r.rc != 0 and r.failed == 1, f"uac_hold.xml must fail on a sendrecv answer\n{r}"
    # nobody puts the callee on hold: uas_hold_check.xml must fail
    uas = callee(sipp, "uas_hold_check.xml", timeout=5)
    r = sipp("uac.xml", uas.local_port, service="bob", duration_ms=200, timeout=5)
    u = uas.wait()
    assert u.rc != 0 and u.failed == 1, f"uas_hold_check.xml must fail without a hold\n{u}"


# -- digest-authenticated INVITE ----------------------------------------------------

def test_uac_auth_through_authenticating_proxy(sipp, kamailio_proxy):
    uas = callee(sipp, "uas.xml", service="bob")
    proxy = kamailio_proxy(uas.local_port, auth=True)
    dial = "9155512345"
    r = sipp("uac_auth.xml", proxy.port, service="alice", password=PW, keys={"dial": dial},
             auth_uri=f"{dial}@{LOOPBACK}:{proxy.port}", duration_ms=500, timeout=10)
    assert r.ok(), r
    assert uas.wait().ok()
    got = received_messages(r.messages)
    assert got[0].startswith("SIP/2.0 407") or got[1].startswith("SIP/2.0 407"), got[:2]
    # the callee got the dialled number in the Request-URI
    inv = first(received_messages(uas.wait().messages), "INVITE")
    assert inv.startswith(f"INVITE sip:{dial}@"), inv

    uas2 = callee(sipp, "uas.xml", service="bob", timeout=5)
    proxy2 = kamailio_proxy(uas2.local_port, auth=True)
    bad = sipp("uac_auth.xml", proxy2.port, service="alice", password="wrong", keys={"dial": dial},
               auth_uri=f"{dial}@{LOOPBACK}:{proxy2.port}", duration_ms=200, timeout=5)
    assert bad.rc != 0, f"uac_auth.xml must fail with a wrong password\n{bad}"


# -- REFER ----------------------------------------------------------------------

def test_blind_transfer_scenario(sipp, kamailio_proxy, route):
    """refer_blind.xml (the transferor) against uac_transferee.xml, which acts
    as the REFER recipient when nothing in between consumes the REFER."""
    alice = callee(sipp, "refer_blind.xml", service="alice", duration_ms=500,
                   keys={"target": f"sip:carol@{LOOPBACK}"})
    proxy = via(route, kamailio_proxy, alice.local_port)
    x = sipp("uac_transferee.xml", hop(alice.local_port, proxy), service="alice", timeout=15)
    a = alice.wait()
    assert x.ok(), x
    assert a.ok(), a
    refer = first(received_messages(x.messages), "REFER")
    assert refer and header_values(refer, "Refer-To") == [f"<sip:carol@{LOOPBACK}>"], refer
    notifies = [m for m in received_messages(a.messages) if m.startswith("NOTIFY")]
    assert [n.split("\n\n", 1)[1].strip() for n in notifies] == ["SIP/2.0 100 Trying", "SIP/2.0 200 OK"]


def test_attended_transfer_scenario(sipp):
    """refer_attended.xml takes two calls and REFERs the first caller with
    Replaces naming the second call; the first caller (uac_transferee.xml)
    plays the REFER recipient, the second (uac_bye_from_callee.xml) gets the
    transferor's BYE."""
    alice = callee(sipp, "refer_attended.xml", service="alice", calls=2, duration_ms=1000, timeout=30)
    x = sipp.start("uac_transferee.xml", alice.local_port, service="alice", timeout=20)
    time.sleep(0.8)
    y = sipp.start("uac_bye_from_callee.xml", alice.local_port, service="alice", timeout=25)
    xr, yr, ar = x.wait(), y.wait(), alice.wait()
    assert xr.ok(), xr
    assert yr.ok(), yr
    assert ar.ok(2), ar
    refer = first(received_messages(xr.messages), "REFER")
    y_invite = [m for m in ar.messages.split("message received")[1:] if "INVITE sip:" in m[:200]][1]
    y_callid = header_values(y_invite.split(":\n\n", 1)[1], "Call-ID")[0]
    refer_to = header_values(refer, "Refer-To")[0]
    assert "?Replaces=" + y_callid.replace("@", "%40") + "%3Bto-tag%3D" in refer_to, (refer_to, y_callid)
    assert "%3Bfrom-tag%3D" in refer_to, refer_to


def test_refer_scenario_fails_on_failed_transfer(sipp, tmp_path):
    """A final sipfrag that is not 2xx must fail refer_blind.xml."""
    from conftest import SCENARIOS
    failing = tmp_path / "uac_transferee_486.xml"
    failing.write_text((SCENARIOS / "uac_transferee.xml").read_text().replace(
        "      SIP/2.0 200 OK\n\n    ]]>", "      SIP/2.0 486 Busy Here\n\n    ]]>"))
    alice = callee(sipp, "refer_blind.xml", service="alice", duration_ms=300,
                   keys={"target": f"sip:carol@{LOOPBACK}"}, timeout=12)
    sipp(str(failing), alice.local_port, service="alice", timeout=12)
    a = alice.wait()
    assert a.rc != 0 and a.failed == 1, f"refer_blind.xml must fail on a 486 sipfrag\n{a}"


# -- a registered SIPp phone --------------------------------------------------------

def test_register_and_answer(sipp, kamailio):
    port = free_port()
    phone = sipp.start("register_and_answer.xml", kamailio.port, service="k-phone", password=PW,
                       keys={"expires": 60}, duration_ms=3000, local_port=port, ooc="uas.xml",
                       rtp_echo=True, timeout=15)
    assert wait_bound(port)
    time.sleep(0.5)  # registered by now
    r = sipp("uac.xml", port, service="k-phone", duration_ms=300, timeout=10)
    p = phone.wait()
    assert r.ok(), r
    assert p.ok(), p
    got = [m.split("\n", 1)[0] for m in received_messages(p.messages)]
    assert got[:2] == ["SIP/2.0 401 Unauthorized", "SIP/2.0 200 OK"], got
    assert any(g.startswith("INVITE ") for g in got) and any(g.startswith("BYE ") for g in got), got


# -- load ---------------------------------------------------------------------

def test_load_scenarios(sipp):
    uas = callee(sipp, "uas_load.xml", calls=40, rtp_echo=True, timeout=30, trace_msg=False)
    r = sipp("uac_load.xml", uas.local_port, service="bob", calls=40, rate=20, limit=100,
             duration_ms=1000, timeout=30, trace_msg=False)
    assert r.ok(40), r
    assert uas.wait().ok(40)

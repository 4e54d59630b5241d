"""Admission: who may place which call. Transfers are dialled with the
authority of the party that asked (a trunk's caller reaches the numbers
only: its REFER to an outbound number is refused and no INVITE leaves; a
user's REFER within its own permissions goes out), and the call limits
(`--max-calls`, `--max-cps` on users, trunks and accounts) refuse calls and
transfers over them: 403 for a user's or account's max_calls, 503 for a
trunk's, 503 with Retry-After for a rate; every refusal is counted in
/metrics and the counts go back to zero when calls end.

The cast is test_calls.py's Pbx: the trunk "carrier" on 127.0.0.2 (its host
is TRUNK_IP:trunk_port, so a SipUA bound there is both the trunk's caller
and where calls routed out to the trunk arrive), users alice, bob, carol,
dave (never registered: a call to him ends 480 at once), the route
^9(\\d+)$ -> carrier."""

from __future__ import annotations

import threading
import time

import pytest

from conftest import LOOPBACK, free_port, received_messages
from siptool import SipUA, answer_call, place_call, sdp_offer
from test_calls import N_ALICE, N_DAVE, PW, TRUNK_IP, Pbx

REFUSALS = "dialtone_call_limit_refusals_total"


@pytest.fixture
def pbx(dialtone, sipp) -> Pbx:
    return Pbx(dialtone, sipp)


LIMITED = "dialtone_call_limit_calls"


def refer(dlg, target: str, timeout: float = 5.0):
    """REFER in `dlg` to `target`; the final response."""
    data, cseq = dlg.request("REFER", extra=[f"Refer-To: <{target}>",
                                             f"Referred-By: <sip:{dlg.ua.user}@{dlg.ua.hostport}>"])
    return dlg.ua._transaction(data, dlg.next_hop(), dlg.call_id, cseq, "REFER", timeout)


def trunk_ua(pbx: Pbx) -> SipUA:
    """The trunk's side: calls from TRUNK_IP, on the port calls to the trunk go to."""
    return SipUA(TRUNK_IP, pbx.trunk_port, user="carrier")


def invites(ua: SipUA) -> list:
    return [m for m in ua.messages("in") if m.is_request and m.method == "INVITE"]


def refusals(m: dict, party: str, limit: str) -> float:
    return m.get(f'{REFUSALS}{{party="{party}",limit="{limit}"}}', 0)


# --------------------------------------------------------------------------
# transfer authority

def test_trunk_callers_refer_to_an_outbound_number_is_403_and_nothing_leaves(pbx):
    alice = pbx.phone("alice", "uas.xml", timeout=30)
    with trunk_ua(pbx) as ua:
        call = place_call(ua, (LOOPBACK, pbx.port), f"sip:{N_ALICE}@{LOOPBACK}:{pbx.port}",
                          sdp_offer(TRUNK_IP, free_port(host=TRUNK_IP)), timeout=10)
        assert call.final is not None and call.final.code == 200, f"the trunk's call: {call.final}"
        # An outbound number (route ^9 -> this very trunk), a user, a raw URI:
        # none is the trunk's to reach.
        for target in (f"sip:9155512345@{LOOPBACK}", f"sip:carol@{LOOPBACK}",
                       "sip:5550100@198.51.100.7"):
            r = refer(call, target)
            assert r is not None and r.code == 403, f"REFER to {target} answered {r}"
        time.sleep(1.0)
        assert not invites(ua), f"an INVITE left for the trunk: {invites(ua)[0]}"
        bye = call.bye()
        assert bye is not None and bye.code == 200, bye
    assert alice.wait().ok(), "alice's call must be intact and end with the trunk's BYE"
    rec = pbx.record()
    assert rec["outcome"] == "answered", rec


def test_users_refer_within_policy_goes_out(pbx):
    """The trunk calls alice; alice REFERs it to 9155512345, which her own
    permissions reach (the outbound route): the INVITE goes out to the
    trunk, 155512345, and the trunk's caller is connected to it."""
    alice = pbx.phone("alice", "refer_blind.xml", duration_ms=1000, timeout=30,
                      keys={"target": f"sip:9155512345@{LOOPBACK}"})
    with trunk_ua(pbx) as ua:
        # One socket plays both parts, one step after the other (SipUA's
        # waits are not for two threads at once): the call, then the
        # transfer's INVITE, which comes after alice's pause.
        call = place_call(ua, (LOOPBACK, pbx.port), f"sip:{N_ALICE}@{LOOPBACK}:{pbx.port}",
                          sdp_offer(TRUNK_IP, free_port(host=TRUNK_IP)), timeout=10)
        assert call.final is not None and call.final.code == 200, f"the trunk's call: {call.final}"
        inv = ua.wait_request("INVITE", 15)
        assert inv is not None, "the transfer's INVITE never reached the trunk"
        assert inv.get("Call-ID") != call.call_id
        assert inv.uri.startswith("sip:155512345@"), inv.first
        leg = answer_call(ua, inv, sdp_offer(TRUNK_IP, free_port(host=TRUNK_IP)))
        assert leg is not None, "the trunk's 200 was never ACKed"
        a = alice.wait()
        assert a.ok(), a  # 202, NOTIFYs ending in 200, her leg released
        # The caller hangs up: the transferred leg gets the BYE.
        r = call.bye()
        assert r is not None and r.code == 200, r
        b = ua.wait_request("BYE", 5, call_id=leg.call_id)
        assert b is not None, "the transferred leg got no BYE"
        ua.reply(b, 200, "OK")
    notifies = [m for m in received_messages(a.messages) if m.startswith("NOTIFY")]
    assert notifies and notifies[-1].split("\n\n", 1)[1].startswith("SIP/2.0 200"), notifies


# --------------------------------------------------------------------------
# call limits

def test_user_max_calls_refuses_a_second_call_while_the_first_is_up(pbx):
    out = pbx.d.cli("user", "update", "alice", "--max-calls", "1").stdout
    assert "max_calls=1" in out, out
    bob = pbx.phone("bob", "uas.xml", calls=2, timeout=40)
    first = pbx.sipp.start("uac_auth.xml", pbx.port, service="alice", password=PW, keys={"dial": "bob"},
                           auth_uri=f"bob@{LOOPBACK}:{pbx.port}", duration_ms=4000, timeout=20)
    party = f'dialtone_call_limit_party_calls{{party="user:alice"}}'
    m = pbx.d.wait_metric(party, 1, timeout=10)
    assert m.get(party) == 1, m
    time.sleep(0.5)
    # The second call (to carol, who is not registered: 480 if it were let
    # through) is refused by the limit.
    with SipUA(LOOPBACK, user="alice") as ua:
        second = place_call(ua, (LOOPBACK, pbx.port), f"sip:carol@{LOOPBACK}:{pbx.port}",
                            sdp_offer(LOOPBACK, free_port()), credentials=("alice", PW), timeout=8)
    assert second.final is not None and second.final.code == 403, f"second call: {second.final}"
    assert "Call Limit" in second.final.first, second.final.first
    r = first.wait()
    assert r.ok(), r
    m = pbx.d.wait_metric(LIMITED, 0, timeout=10)
    assert m.get(LIMITED) == 0, m
    assert refusals(m, "user", "max_calls") == 1, m
    # The first one ended: she may call again.
    again = pbx.sipp("uac_auth.xml", pbx.port, service="alice", password=PW, keys={"dial": "bob"},
                     auth_uri=f"bob@{LOOPBACK}:{pbx.port}", duration_ms=500, timeout=15)
    assert again.ok(), again
    assert bob.wait().ok(2)
    m = pbx.d.wait_metric(LIMITED, 0, timeout=10)
    assert m.get(LIMITED) == 0 and m.get("dialtone_calls_active") == 0, m


def test_trunk_max_cps_refuses_calls_above_the_rate(pbx):
    out = pbx.d.cli("trunk", "update", "carrier", "--max-cps", "2").stdout
    assert "max_cps=2" in out, out
    finals = []
    with SipUA(TRUNK_IP, user="carrier") as ua:
        for _ in range(8):
            c = place_call(ua, (LOOPBACK, pbx.port), f"sip:{N_DAVE}@{LOOPBACK}:{pbx.port}",
                           sdp_offer(TRUNK_IP, free_port(host=TRUNK_IP)), timeout=5)
            assert c.final is not None, "a call got no final response"
            finals.append(c.final)
        codes = [f.code for f in finals]
        # A second's worth (2) at once, then 503 until the bucket refills.
        assert codes[:2] == [480, 480], codes
        assert codes.count(503) >= 4 and set(codes) <= {480, 503}, codes
        for f in finals:
            if f.code == 503:
                assert "Rate Limit" in f.first, f.first
                assert int(f.get("Retry-After") or 0) >= 1, str(f)
        time.sleep(1.2)
        c = place_call(ua, (LOOPBACK, pbx.port), f"sip:{N_DAVE}@{LOOPBACK}:{pbx.port}",
                       sdp_offer(TRUNK_IP, free_port(host=TRUNK_IP)), timeout=5)
        assert c.final is not None and c.final.code == 480, f"after a second: {c.final}"
    m = pbx.d.metrics()
    assert refusals(m, "trunk", "max_cps") == codes.count(503), m
    assert m.get(LIMITED) == 0, m


def test_trunk_max_calls_is_503_while_its_call_is_up(pbx):
    pbx.d.cli("trunk", "update", "carrier", "--max-calls", "1")
    bob = pbx.phone("bob", "uas.xml", timeout=30)
    first = pbx.trunk_call("uac.xml", "15551230001", background=True, duration_ms=3000)
    m = pbx.d.wait_metric(LIMITED, 1, timeout=10)
    assert m.get(LIMITED) == 1, m
    with SipUA(TRUNK_IP, user="carrier") as ua:
        c = place_call(ua, (LOOPBACK, pbx.port), f"sip:{N_DAVE}@{LOOPBACK}:{pbx.port}",
                       sdp_offer(TRUNK_IP, free_port(host=TRUNK_IP)), timeout=5)
    assert c.final is not None and c.final.code == 503, f"second trunk call: {c.final}"
    assert "Trunk Call Limit" in c.final.first, c.final.first
    assert first.wait().ok(), "the first call is untouched"
    assert bob.wait().ok()
    m = pbx.d.wait_metric(LIMITED, 0, timeout=10)
    assert m.get(LIMITED) == 0, m
    assert refusals(m, "trunk", "max_calls") == 1, m


def test_a_refer_over_the_limit_is_refused_with_the_limit(pbx):
    """alice may place no calls (max_calls 0): her REFER of the trunk's call
    to carol is answered 403 Call Limit Reached, and the call goes on."""
    pbx.d.cli("user", "update", "alice", "--max-calls", "0")
    with SipUA(LOOPBACK, user="alice") as phone, trunk_ua(pbx) as ua:
        reg = phone.register("alice", PW, (LOOPBACK, pbx.port))
        assert reg is not None and reg.code == 200, reg
        got: dict = {}

        def answer():
            inv = phone.wait_request("INVITE", 10)
            if inv is not None:
                got["dialog"] = answer_call(phone, inv, sdp_offer(LOOPBACK, free_port()))

        t = threading.Thread(target=answer, daemon=True)
        t.start()
        call = place_call(ua, (LOOPBACK, pbx.port), f"sip:{N_ALICE}@{LOOPBACK}:{pbx.port}",
                          sdp_offer(TRUNK_IP, free_port(host=TRUNK_IP)), timeout=10)
        t.join(12)
        assert call.final is not None and call.final.code == 200, call.final
        leg = got.get("dialog")
        assert leg is not None, "alice never got the call"
        r = refer(leg, f"sip:carol@{LOOPBACK}")
        assert r is not None and r.code == 403 and "Call Limit" in r.first, f"REFER answered {r}"
        time.sleep(0.5)
        # Still connected: the trunk's BYE reaches alice.
        seen: dict = {}

        def bye():
            b = phone.wait_request("BYE", 5, call_id=leg.call_id)
            if b is not None:
                seen["bye"] = b
                phone.reply(b, 200, "OK")

        t = threading.Thread(target=bye, daemon=True)
        t.start()
        r = call.bye()
        t.join(6)
        assert r is not None and r.code == 200, r
        assert "bye" in seen, "alice's leg was not kept"
    m = pbx.d.metrics()
    assert refusals(m, "user", "max_calls") == 1, m
    assert m.get(LIMITED) == 0, m

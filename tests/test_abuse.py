"""Abuse limits at the front door (Kamailio's pike and fail2ban in spirit):
per-source request rates by method, the ban for repeated digest failures,
scanner user agents dropped, the TCP connection limit per source and the
slow-message timeout. Each drives an attacker from one loopback address and
checks that a legitimate phone on another address is still served, and that
/metrics counts what was refused. The attacker addresses are not trusted
here (abuse.trusted is emptied; by default loopback is trusted)."""

from __future__ import annotations

import secrets
import socket
import time

import pytest

from conftest import LOOPBACK
from siptool import SipClient, parse_response

PW = "abuse-pw-1"
ATTACKER = "127.0.0.5"
API_TOKEN = "test-token-0123456789"


def untrusted(**abuse) -> dict:
    return {"abuse": {"trusted": [], **abuse}}


def request(c: SipClient, method: str, *, ua: str = "dialtone-tests", user: str = "nobody") -> bytes:
    """A new out-of-dialog request (fresh branch and Call-ID: a new transaction)."""
    return "\r\n".join([
        f"{method} sip:{user}@{c.hostport} SIP/2.0",
        f"Via: SIP/2.0/{c.transport} {c.local_hostport};branch=z9hG4bK{secrets.token_hex(8)};rport",
        "Max-Forwards: 70",
        f"From: <sip:{user}@{c.hostport}>;tag={secrets.token_hex(4)}",
        f"To: <sip:{user}@{c.hostport}>",
        f"Call-ID: {secrets.token_hex(8)}@flood",
        f"CSeq: 1 {method}",
        f"Contact: <sip:{user}@{c.local_hostport}>",
        f"User-Agent: {ua}",
        "Content-Length: 0", "", ""]).encode()


def flood(c: SipClient, method: str, n: int, settle: float = 1.0) -> list[int]:
    """Sends n new requests at once; the final status each one got, if any
    (retransmissions of a final response, as of an INVITE's 407, count once)."""
    for _ in range(n):
        c.send_raw(request(c, method))
    finals: dict[str, int] = {}
    while (raw := c.recv_raw(settle)) is not None:
        if raw.startswith(b"SIP/2.0"):
            r = parse_response(raw)
            if r.code >= 200:
                finals.setdefault(r.get("Call-ID") or "", r.code)
    return list(finals.values())


@pytest.mark.parametrize("method,key", [
    ("REGISTER", "register"), ("INVITE", "invite"), ("OPTIONS", "options"), ("MESSAGE", "other"),
    # An unknown method is answered 501 by the parser, before any
    # transaction: it is limited all the same.
    ("FOOBAR", "other"),
])
def test_a_source_over_its_rate_gets_503_and_a_phone_elsewhere_is_served(dialtone_factory, method, key):
    d = dialtone_factory(config=untrusted(over_rate="503", **{f"{key}_rate": 2, f"{key}_burst": 5}))
    d.add_user("alice", PW)
    with SipClient(d.sip_port, bind_host=ATTACKER) as bad:
        codes = flood(bad, method, 30)
    limited = [c for c in codes if c == 503]
    served = [c for c in codes if c != 503]
    assert len(served) <= 6, f"the burst is 5 (plus at most one refill), got {codes}"
    if method == "FOOBAR":
        # Answered 501 by the parser while within the rate, then nothing
        # (no transaction exists to answer 503 from).
        assert len(codes) == len(served) and len(served) >= 5, codes
    else:
        assert len(limited) >= 20, f"the rest must be refused with 503: {codes}"
    with SipClient(d.sip_port) as phone:
        first, second = phone.register("alice", PW, d.domain)
        assert second is not None and second.code == 200, (first, second)
        assert phone.options() is not None
    m = d.metrics()
    assert m[f'dialtone_abuse_refused_total{{reason="rate",method="{key}"}}'] >= 20, m


def test_over_rate_silence_answers_nothing_and_retry_after_says_when(dialtone_factory):
    d = dialtone_factory(config=untrusted(invite_rate=1, invite_burst=2))
    with SipClient(d.sip_port, bind_host=ATTACKER) as bad:
        codes = flood(bad, "INVITE", 20)
    # The two in the burst are challenged (407); the rest get nothing.
    assert sorted(codes) == [407, 407], codes
    d2 = dialtone_factory(config=untrusted(invite_rate=0.2, invite_burst=1, over_rate="503"))
    with SipClient(d2.sip_port, bind_host=ATTACKER) as bad:
        bad.send_raw(request(bad, "INVITE"))
        bad.send_raw(request(bad, "INVITE"))
        got = [bad.recv_raw(2.0), bad.recv_raw(2.0)]
    refused = [parse_response(g) for g in got if g and g.startswith(b"SIP/2.0 503")]
    assert refused, got
    assert refused[0].get("Retry-After") in ("4", "5"), str(refused[0])


def test_loopback_is_trusted_by_default(dialtone_factory):
    d = dialtone_factory(config={"abuse": {"options_rate": 1, "options_burst": 1}})
    with SipClient(d.sip_port, bind_host="127.0.0.9") as c:
        codes = flood(c, "OPTIONS", 20)
    assert codes == [200] * 20, codes


def test_repeated_digest_failures_ban_the_source_for_every_request(dialtone_factory):
    d = dialtone_factory(config={"auth": {"max_failures": 3, "ban_secs": 600}, **untrusted()})
    d.add_user("bob", PW)
    with SipClient(d.sip_port, bind_host=ATTACKER) as bad:
        for _ in range(3):
            bad.register("bob", "wrong-" + PW, d.domain)
        # Banned: not only REGISTER, everything from there is refused.
        r = bad.options()
        assert r is not None and r.code == 403, r
        first, _ = bad.register("bob", PW, d.domain)
        assert first is not None and first.code == 403, first
    with SipClient(d.sip_port) as phone:
        first, second = phone.register("bob", PW, d.domain)
        assert second is not None and second.code == 200, (first, second)
    m = d.metrics()
    assert m["dialtone_abuse_banned_sources"] == 1, m
    assert m["dialtone_abuse_bans_total"] == 1, m
    assert m['dialtone_abuse_refused_total{reason="banned",method="options"}'] >= 1, m
    assert "source banned" in d.log()


def test_the_operator_lists_and_lifts_a_ban(dialtone_factory):
    from test_api import api
    d = dialtone_factory(config={"auth": {"max_failures": 2, "ban_secs": 600},
                                 "http": {"api_token": API_TOKEN}, **untrusted()})
    d.add_user("bob", PW)
    key = d.cli("apikey", "create", "--account", "acme").stdout.strip().splitlines()[-1]
    status, body = api(d, "GET", "/api/v1/bans", token=API_TOKEN)
    assert (status, body) == (200, {"bans": []}), body
    with SipClient(d.sip_port, bind_host=ATTACKER) as bad:
        for _ in range(2):
            bad.register("bob", "wrong-" + PW, d.domain)
        r = bad.options()
        assert r is not None and r.code == 403, r
        status, body = api(d, "GET", "/api/v1/bans", token=API_TOKEN)
        assert status == 200 and [b["address"] for b in body["bans"]] == [ATTACKER], body
        assert 590 <= body["bans"][0]["secondsLeft"] <= 600, body
        # An account's key neither sees nor lifts bans: they concern everyone.
        assert api(d, "GET", "/api/v1/bans", token=key)[0] == 403
        assert api(d, "DELETE", f"/api/v1/bans/{ATTACKER}", token=key)[0] == 403
        assert api(d, "DELETE", "/api/v1/bans/not-an-address", token=API_TOKEN)[0] == 400
        assert api(d, "DELETE", "/api/v1/bans/192.0.2.1", token=API_TOKEN)[0] == 404
        status, body = api(d, "DELETE", f"/api/v1/bans/{ATTACKER}", token=API_TOKEN)
        assert (status, body) == (200, {"address": ATTACKER, "lifted": True}), body
        # Served again at once, and its failures count from zero.
        r = bad.options()
        assert r is not None and r.code == 200, r
        first, second = bad.register("bob", PW, d.domain)
        assert second is not None and second.code == 200, (first, second)
    assert api(d, "GET", "/api/v1/bans", token=API_TOKEN)[1] == {"bans": []}
    assert "ban lifted" in d.log()


def test_scanner_user_agents_are_dropped(dialtone_factory):
    d = dialtone_factory()
    with SipClient(d.sip_port, bind_host=ATTACKER) as c:
        c.send_raw(request(c, "OPTIONS", ua="friendly-scanner"))
        assert c.recv_raw(1.0) is None, "a scanner got an answer"
        c.send_raw(request(c, "REGISTER", ua="sipvicious 0.3.4"))
        assert c.recv_raw(1.0) is None, "a scanner got an answer"
        assert c.options() is not None, "the same address with a phone's User-Agent is answered"
    m = d.metrics()
    assert m['dialtone_abuse_refused_total{reason="scanner",method="options"}'] == 1, m
    assert m['dialtone_abuse_refused_total{reason="scanner",method="register"}'] == 1, m
    d2 = dialtone_factory(config={"abuse": {"drop_scanners": False}})
    with SipClient(d2.sip_port) as c:
        c.send_raw(request(c, "OPTIONS", ua="friendly-scanner"))
        raw = c.recv_raw(2.0)
        assert raw is not None and raw.startswith(b"SIP/2.0 200"), raw


def closed_by_peer(s: socket.socket, timeout: float) -> bool:
    s.settimeout(timeout)
    try:
        while True:
            data = s.recv(4096)
            if not data:
                return True
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


def test_tcp_connections_per_source_are_limited(dialtone_factory):
    d = dialtone_factory(config=untrusted(tcp_max_per_source=3))
    held = []
    try:
        for _ in range(3):
            s = socket.create_connection((LOOPBACK, d.sip_port), source_address=(ATTACKER, 0))
            held.append(s)
        extra = socket.create_connection((LOOPBACK, d.sip_port), source_address=(ATTACKER, 0))
        held.append(extra)
        assert closed_by_peer(extra, 3.0), "a fourth connection from one source was kept"
        assert not closed_by_peer(held[0], 0.3), "the first three stay open"
        with SipClient(d.sip_port, transport="TCP") as phone:
            r = phone.options()
            assert r is not None and r.code == 200, r
    finally:
        for s in held:
            s.close()
    m = d.metrics()
    assert m["dialtone_tcp_refused_total"] == 1, m
    # The connections closed give their places back.
    time.sleep(0.5)
    with SipClient(d.sip_port, transport="TCP", bind_host=ATTACKER) as again:
        r = again.options()
        assert r is not None and r.code == 200, r


def test_a_message_not_finished_in_time_closes_the_connection(dialtone_factory):
    d = dialtone_factory(config={"abuse": {"tcp_message_timeout_secs": 2}})
    # A connection that never sends a byte, and one that starts a request
    # and trickles it (slowloris).
    silent = socket.create_connection((LOOPBACK, d.sip_port), source_address=(ATTACKER, 0))
    slow = socket.create_connection((LOOPBACK, d.sip_port), source_address=(ATTACKER, 0))
    try:
        t0 = time.monotonic()
        slow.sendall(b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.5:1;branch=z9hG4bK1\r\n")
        time.sleep(1.0)
        slow.sendall(b"Max-Forwards: 70\r\n")
        assert closed_by_peer(slow, 5.0), "a half-sent request held its connection"
        assert closed_by_peer(silent, 5.0), "a connection that sent nothing was kept"
        assert time.monotonic() - t0 < 4.5
        with SipClient(d.sip_port, transport="TCP") as phone:
            r = phone.options()
            assert r is not None and r.code == 200, r
            # A whole message in time is served, and the connection kept.
            time.sleep(2.5)
            r = phone.options()
            assert r is not None and r.code == 200, "an idle connection was closed too early"
    finally:
        silent.close()
        slow.close()
    assert d.metrics()["dialtone_tcp_timed_out_total"] == 2

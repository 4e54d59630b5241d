"""The SIP-account tools over MCP (sip_configure, sip_call, sip_status,
sip_statistics, sip_reset), against a real provider: a second dialtone
that registers the account with digest and routes the test call to a
SIPp phone that echoes RTP."""

from __future__ import annotations

import json

from test_calls import PW, Pbx
from test_mcp import call_tool_text, new_key


def test_sip_account_registers_and_a_test_call_comes_back_as_an_echo(dialtone_factory, sipp):
    provider = dialtone_factory()
    provider.add_user("acct", "acct-pw")
    pbx = Pbx(provider, sipp)
    provider.add_user("5550199", PW)
    echo = pbx.phone("5550199", "uas.xml", timeout=30)
    d = dialtone_factory()
    _, key = new_key(d)
    before = call_tool_text(d, key, "sip_status", {})
    assert "not configured" in before, before
    wrong = call_tool_text(d, key, "sip_configure", {
        "sipServer": "127.0.0.1", "port": provider.sip_port, "username": "acct",
        "password": "nope", "domain": "127.0.0.1"})
    assert wrong.startswith("error:") and "registration" in wrong, wrong
    ok = call_tool_text(d, key, "sip_configure", {
        "sipServer": "127.0.0.1", "port": provider.sip_port, "username": "acct",
        "password": "acct-pw", "domain": "127.0.0.1"})
    assert ok.startswith("registered acct@127.0.0.1"), ok
    assert provider.bindings_of("acct"), "the provider holds no binding for the account"
    assert "registered" in call_tool_text(d, key, "sip_status", {"detailed": True})
    bad = call_tool_text(d, key, "sip_call", {"phoneNumber": "555-0199", "duration": 0})
    assert "duration" in bad, bad
    out = call_tool_text(d, key, "sip_call", {"phoneNumber": "5550199", "duration": 3})
    assert "echo ok" in out and out.startswith("call answered"), out
    assert echo.wait(20).ok(), "the echo phone must see the test call and its BYE"
    stats = call_tool_text(d, key, "sip_statistics", {})
    assert stats.startswith("1 test call(s), 1 answered (100%), echo ok on 1"), stats
    rec = d.calls()[0]
    probe = rec["stats"]["probe"]
    assert probe["rtp_sent"] > 100 and probe["rtp_received"] > 100, probe
    reset = call_tool_text(d, key, "sip_reset", {})
    assert "reset" in reset, reset
    assert call_tool_text(d, key, "sip_statistics", {}).startswith("0 test call(s)")
    assert len(d.calls()) == 1, "sip_reset keeps the call records"
    assert json.loads(json.dumps(rec))["outcome"] == "answered"

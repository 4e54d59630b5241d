"""/api/v1/calls: call commands from outside, each answered with its real
outcome. A trunk call (SIPp on 127.0.0.2) reaches bob, a registered SIPp
phone; the API then holds, resumes and hangs up the callee. Bob's scenario
checks the directions in the re-INVITEs it gets, so a command that does
not really reach the phone fails the test."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

from test_calls import Pbx

TOKEN = "test-token-0123456789"


def api(d, method: str, path: str, body: dict | None = None, token: str | None = TOKEN):
    req = urllib.request.Request(f"http://127.0.0.1:{d.http_port}{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def live_call(d, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = api(d, "GET", "/api/v1/calls")
        assert status == 200, body
        if body["calls"]:
            return body["calls"][0]["id"]
        time.sleep(0.2)
    raise AssertionError("no live call appeared")


def test_api_is_off_without_a_token_and_refuses_a_wrong_one(dialtone_factory):
    off = dialtone_factory()
    assert api(off, "GET", "/api/v1/calls")[0] == 404
    on = dialtone_factory(config={"http": {"api_token": TOKEN}})
    assert api(on, "GET", "/api/v1/calls", token=None)[0] == 401
    assert api(on, "GET", "/api/v1/calls", token="wrong")[0] == 401
    assert api(on, "GET", "/api/v1/calls") == (200, {"calls": []})
    status, body = api(on, "POST", "/api/v1/calls/nope/hangup", {})
    assert status == 404, body


def test_hold_resume_and_hangup_commands_reach_the_phones(dialtone_factory, sipp):
    pbx = Pbx(dialtone_factory(config={"http": {"api_token": TOKEN}}), sipp)
    bob = pbx.phone("bob", "uas_hold_check.xml", timeout=25)
    caller = pbx.trunk_call("uac_wait_bye.xml", "15551230001", background=True, timeout=25)
    d = pbx.d
    call = live_call(d)
    # Bad arguments are refused before anything is sent.
    assert api(d, "POST", f"/api/v1/calls/{call}/hold", {"party": "nobody"})[0] == 400
    assert api(d, "POST", f"/api/v1/calls/{call}/hold", {"party": "callee"}) == (200, {"outcome": "done"})
    assert api(d, "POST", f"/api/v1/calls/{call}/resume", {"party": "callee"}) == (200, {"outcome": "done"})
    assert api(d, "POST", f"/api/v1/calls/{call}/hangup", {"cause": "operator"}) == (200, {"outcome": "done"})
    assert caller.wait(20).ok(), "the caller must get BYE"
    assert bob.wait(20).ok(), "bob must see sendonly, then sendrecv, then BYE"
    rec = pbx.record()
    assert rec["hangup_cause"] == "operator" and rec["hangup_side"] == "system", rec
    # The call is gone: commands now get 404.
    assert api(d, "POST", f"/api/v1/calls/{call}/hangup", {})[0] == 404


def test_listings_of_contacts_queues_leads_and_tools_are_scoped_by_key(dialtone_factory):
    d = dialtone_factory(config={"http": {"api_token": TOKEN}})
    d.add_user("bob", "pw-bob")
    d.cli("contact", "add", "Ann", "--number", "+15550100123", "--account", "acme")
    d.cli("contact", "add", "Zed", "--number", "+15550100999", "--account", "other")
    d.cli("queue", "add", "support", "--members", "bob", "--strategy", "ring-all")
    d.cli("persona", "add", "rec", "--provider", "openai", "--url", "ws://127.0.0.1:9/x",
          "--instructions", "hi", "--account", "acme")
    d.cli("tool", "add", "rec", "to_bob", "--kind", "transfer-user", "--user", "bob")
    acme = d.cli("apikey", "create", "--account", "acme").stdout.strip().splitlines()[-1]

    def get(path: str, token: str | None = None, key: str | None = None):
        req = urllib.request.Request(f"http://127.0.0.1:{d.http_port}{path}")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        if key:
            req.add_header("X-API-Key", key)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    status, body = get("/api/v1/contacts", token=TOKEN)
    assert status == 200 and sorted(c["name"] for c in body["contacts"]) == ["Ann", "Zed"], body
    status, body = get("/api/v1/contacts", key=acme)
    assert [c["name"] for c in body["contacts"]] == ["Ann"], body
    status, body = get("/api/v1/queues", token=TOKEN)
    assert [q["name"] for q in body["queues"]] == ["support"], body
    assert get("/api/v1/queues", key=acme)[1]["queues"] == [], "the queue is the default account's"
    status, body = get("/api/v1/personas/rec/tools", key=acme)
    assert status == 200 and [t["name"] for t in body["tools"]] == ["to_bob"], body
    assert get("/api/v1/leads", key=acme) == (200, {"leads": []})
    assert get("/api/v1/leads/nope", key=acme)[0] == 404
    assert get("/api/v1/contacts")[0] == 401

"""Outbound calls and the management tools, end to end: the hosted-platform
quick start driven by the official Python MCP client — list_assistants,
list_phone_numbers, create_call(assistantId, phoneNumberId, customer.number)
— against the real binary, a SIPp callee behind a trunk, and the scripted
realtime model (tests/realtime_peer.py).

Cast (all on loopback):
  - the trunk "carrier": a SIPp uas.xml on 127.0.0.2 that answers and echoes
    RTP (-rtp_echo), reached through the route ^\\+?1555123\\d+$;
  - the persona "rec" on the scripted OpenAI Realtime server; the number
    N_OUT routes to it and is the caller ID of the calls it places.

What is checked: the callee rings and answers, the model's audio reaches it
and comes back (the echo is what the model hears), the model's words are
the call's transcript and its hangup_call ends the call (the callee gets
BYE); get_call shows the call answered, then ended. A scheduled call fires
once, also across a restart in between; the CLI's `call create` fires; a
past time, a bad number, an unknown assistant are tool errors; cancelling
works. The REST door (create, scheduled calls, the OpenAPI document) and
the MCP Inspector CLI. Every wait is bounded."""

from __future__ import annotations

import json
import math
import time
from datetime import datetime, timedelta, timezone

import pytest

from conftest import LOOPBACK, free_port, received_messages, wait_until
from realtime_peer import RealtimeServer, decode_audio, tone
from test_api import api
from test_mcp import (_inspector_skip_reason, call_tool_text, inspector, new_key, run, session,
                      text_of)

TRUNK_IP = "127.0.0.2"
KEY = "test-key-outbound"
TOKEN = "test-token-0123456789"
N_OUT = "15550100"
CUSTOMER = "+15551230001"


def rfc3339(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))




def rms(samples: list[int]) -> float:
    return math.sqrt(sum(s * s for s in samples) / len(samples)) / 32768 if samples else 0.0


class OutPbx:
    """A dialtone with the carrier trunk, its route, the persona "rec" on a
    scripted realtime server, and N_OUT -> persona:rec."""

    def __init__(self, factory, sipp):
        self.sipp = sipp
        self.server = RealtimeServer("openai", api_key=KEY).start()
        self.d = factory(config={"ai": {"connect_timeout_ms": 3000},
                                 "http": {"api_token": TOKEN}},
                         env={"TEST_AI_KEY": KEY})
        self.trunk_port = free_port(host=TRUNK_IP)
        self.d.add_trunk("carrier", f"{TRUNK_IP}:{self.trunk_port}", inbound_ips=[TRUNK_IP])
        self.d.add_route(r"^\+?1555123\d+$", "carrier")
        self.d.cli("persona", "add", "rec", "--provider", "openai", "--url", self.server.url,
                   "--api-key-env", "TEST_AI_KEY",
                   "--instructions", "You call about order {order}; the number is {caller_number}.")
        self.d.add_number(N_OUT, "persona:rec")
        _, self.key = new_key(self.d)

    def callee(self, calls: int = 1, timeout: float = 40):
        """The customer: SIPp answering on the trunk's address, echoing RTP."""
        return self.sipp.start("uas.xml", None, local_ip=TRUNK_IP, local_port=self.trunk_port,
                               calls=calls, rtp_echo=True, timeout=timeout)

    def tool(self, name: str, args: dict) -> tuple[bool, dict | str]:
        """One management tool call over MCP: (ok, structured result or error text)."""
        async def go():
            async with session(self.d, self.key) as (s, _http, _notes):
                r = await s.call_tool(name, args)
                if r.is_error:
                    return False, text_of(r)
                # The same JSON as text, for clients that read only text.
                assert json.loads(text_of(r)) == r.structured_content, r
                return True, r.structured_content
        return run(go())

    def ok(self, name: str, args: dict) -> dict:
        good, result = self.tool(name, args)
        assert good, f"{name}: {result}"
        return result

    def talk_and_hang_up(self, conn, line: str) -> None:
        """The model speaks (its audio reaches the callee, whose echo it
        hears), then ends the call with hangup_call."""
        fmt = conn.output_format
        heard_before = len(conn.caller_audio())
        conn.say(tone(700, 1000, fmt), transcript=line)
        # The callee echoes what it receives: the model hears its own words.
        in_fmt = conn.input_format

        def echoed() -> bool:
            audio = conn.caller_audio()[heard_before:]
            return rms(decode_audio(audio, in_fmt)) > 0.02 if len(audio) > 8000 else False
        wait_until(echoed, 10, "the callee's echo of the model's audio at the model")
        conn.function_call("hangup_call", {})

    def close(self) -> None:
        self.server.stop()


@pytest.fixture
def out_pbx(dialtone_factory, sipp):
    p = OutPbx(dialtone_factory, sipp)
    yield p
    p.close()


def test_quick_start_an_assistant_calls_a_customer(out_pbx):
    p = out_pbx
    callee = p.callee()
    assistants = p.ok("list_assistants", {})["assistants"]
    rec = next(a for a in assistants if a["name"] == "rec")
    assert rec["provider"] == "openai" and rec["phoneNumbers"] == [N_OUT], rec
    numbers = p.ok("list_phone_numbers", {})["phoneNumbers"]
    number = next(n for n in numbers if n["phoneNumber"] == N_OUT)
    assert number["targetType"] == "assistant" and number["assistantId"] == rec["id"], number

    t0 = time.monotonic()
    created = p.ok("create_call", {
        "assistantId": rec["id"], "phoneNumberId": number["id"],
        "customer": {"number": CUSTOMER, "name": "Jeremy"},
        "assistantOverrides": {"variableValues": {"order": "A-17"}}})
    call_id = created["id"]
    assert created["status"] == "ringing" and created["call"]["direction"] == "outbound", created
    conn = p.server.wait_connection(timeout=10)
    instructions = conn.session.get("instructions", "")
    assert "order A-17" in instructions, instructions
    answered = wait_until(lambda: (c := p.ok("get_call", {"callId": call_id}))["status"]
                          == "in-progress" and c, 15, "the callee to answer")
    print(f"create_call to answered: {time.monotonic() - t0:.2f} s")
    assert answered["from"] == N_OUT and answered["to"] == CUSTOMER, answered
    assert answered["assistant"] == "rec" and answered["answeredAt"], answered
    assert any(l["label"].startswith("trunk:carrier") for l in answered["legs"]), answered

    p.talk_and_hang_up(conn, "Hello Jeremy, this is Acme about order A-17.")
    ended = wait_until(lambda: (c := p.ok("get_call", {"callId": call_id}))["status"]
                       == "ended" and c, 15, "the call to end")
    assert ended["outcome"] == "answered" and ended["endedReason"] == "agent hangup", ended
    assert ended["durationSeconds"] and ended["durationSeconds"] > 0.5, ended
    said = [(t["side"], t["text"]) for t in ended["transcript"]]
    assert ("agent", "Hello Jeremy, this is Acme about order A-17.") in said, ended
    result = callee.wait(20)
    assert result.ok(), result
    invites = [m for m in received_messages(result.messages) if m.startswith("INVITE")]
    assert len(invites) == 1 and f"sip:{N_OUT}@" in invites[0].split("\n\n")[0], invites
    listed = p.ok("list_calls", {"status": "ended"})["calls"]
    assert [c["id"] for c in listed] == [call_id], listed
    stats = p.ok("get_call_statistics", {})
    assert stats["total"] == 1 and stats["answered"] == 1 and stats["successRate"] == 1.0, stats
    assert [t["id"] for t in stats["byTrunk"]] == ["carrier"], stats


def test_a_scheduled_call_fires_once_across_a_restart(out_pbx):
    p = out_pbx
    callee = p.callee(timeout=60)
    at = datetime.now(timezone.utc) + timedelta(seconds=6)
    created = p.ok("create_call", {"assistantId": "rec", "phoneNumberId": N_OUT,
                                   "customer": {"number": CUSTOMER},
                                   "scheduledAt": rfc3339(at)})
    assert created["status"] == "scheduled" and created["call"] is None, created
    scheduled_id = created["id"]
    pending = p.ok("list_scheduled_calls", {"status": "pending"})["scheduledCalls"]
    assert [c["id"] for c in pending] == [scheduled_id], pending
    # The switch stops and starts again before the call is due: it is a row.
    assert p.d.stop() == 0
    p.d.start()
    conn = p.server.wait_connection(timeout=20)
    fired = wait_until(lambda: (c := p.ok("list_scheduled_calls", {})["scheduledCalls"][0])
                       ["callId"] and c, 10, "the scheduled call to be recorded as placed")
    assert fired["status"] == "fired", fired
    late = (parse_time(fired["firedAt"]) - parse_time(fired["scheduledAt"])).total_seconds()
    print(f"scheduled call fired {late * 1000:.0f} ms after its time")
    assert -0.05 <= late < 5, fired
    p.talk_and_hang_up(conn, "Good morning, as promised.")
    result = callee.wait(20)
    assert result.ok(), result
    # Once: one INVITE, one model session, one call.
    time.sleep(1.0)
    assert len([m for m in received_messages(result.messages) if m.startswith("INVITE")]) == 1
    assert len(p.server.connections) == 1
    ended = p.ok("get_call", {"callId": fired["callId"]})
    assert ended["status"] == "ended" and ended["outcome"] == "answered", ended


def test_call_create_from_the_cli_fires_within_a_second(out_pbx):
    p = out_pbx
    callee = p.callee()
    out = p.d.cli("call", "create", "--from-number", N_OUT, "--to", CUSTOMER,
                  "--persona", "rec", "--var", "order=B-2").stdout
    scheduled_id = out.split()[2]
    conn = p.server.wait_connection(timeout=10)
    assert "order B-2" in conn.session.get("instructions", "")
    rows = wait_until(lambda: [r for r in json.loads(p.d.cli("call", "list-scheduled", "--json")
                                                       .stdout) if r["callId"]], 5,
                      "the CLI's call to be placed")
    assert rows[0]["id"] == scheduled_id and rows[0]["status"] == "fired", rows
    late = (parse_time(rows[0]["firedAt"]) - parse_time(rows[0]["scheduledAt"])).total_seconds()
    print(f"`call create` fired {late * 1000:.0f} ms after it was stored")
    assert late < 1.0, rows
    p.talk_and_hang_up(conn, "Just checking in.")
    assert callee.wait(20).ok()
    # A time in the past, a missing persona, a cancelled call.
    past = rfc3339(datetime.now(timezone.utc) - timedelta(hours=1))
    cp = p.d.cli("call", "create", "--from-number", N_OUT, "--to", CUSTOMER, "--persona", "rec",
                 "--at", past, check=False)
    assert cp.returncode != 0 and "in the past" in cp.stderr, cp
    cp = p.d.cli("call", "create", "--from-number", N_OUT, "--to", CUSTOMER, "--persona", "ghost",
                 check=False)
    assert cp.returncode != 0 and "no assistant" in cp.stderr, cp
    later = rfc3339(datetime.now(timezone.utc) + timedelta(hours=1))
    later_id = p.d.cli("call", "create", "--from-number", N_OUT, "--to", CUSTOMER, "--persona",
                       "rec", "--at", later).stdout.split()[2]
    assert "cancelled" in p.d.cli("call", "cancel", later_id).stdout
    listed = p.d.cli("call", "scheduled").stdout
    assert f"{later_id}\tcancelled" in listed, listed


def test_bad_requests_are_tool_errors_and_cancel_works(dialtone):
    d = dialtone
    d.cli("persona", "add", "rec", "--provider", "openai", "--url", "ws://127.0.0.1:9/x",
          "--instructions", "hi")
    d.add_number(N_OUT, "persona:rec")
    _, key = new_key(d)
    _, other = new_key(d, "other")
    base = {"assistantId": "rec", "phoneNumberId": N_OUT, "customer": {"number": CUSTOMER}}
    past = rfc3339(datetime.now(timezone.utc) - timedelta(minutes=5))
    soon = rfc3339(datetime.now(timezone.utc) + timedelta(hours=2))

    def call(args: dict, k: str = key) -> str:
        return call_tool_text(d, k, "create_call", args)

    assert "in the past" in call({**base, "scheduledAt": past})
    assert call({**base, "scheduledAt": "next tuesday"}).startswith("error: invalid arguments")
    bad = call({**base, "customer": {"number": "call me maybe"}})
    assert bad.startswith("error: invalid arguments") and "not a phone number" in bad, bad
    assert "no assistant" in call({**base, "assistantId": "ghost"})
    assert "either assistantId" in call({**base, "userId": "bob"})
    assert "unknown field" in call({**base, "colour": "red"})
    # Another account sees neither the assistant nor the number.
    assert "no assistant" in call(base, other)
    assert "no phone number" in call({**base, "phoneNumberId": "+19990000"})
    created = json.loads(call({**base, "scheduledAt": soon}))
    sid = created["scheduledCall"]["id"]
    assert created["scheduledCall"]["status"] == "pending"
    assert "no scheduled call" in call_tool_text(d, other, "cancel_scheduled_call",
                                                 {"scheduledCallId": sid})
    done = json.loads(call_tool_text(d, key, "cancel_scheduled_call", {"scheduledCallId": sid}))
    assert done["status"] == "cancelled", done
    again = call_tool_text(d, key, "cancel_scheduled_call", {"id": sid})
    assert again.startswith("error:") and "cancelled" in again, again
    # Assistants: created, read, updated, refused and deleted through the tools.
    made = json.loads(call_tool_text(d, key, "create_assistant", {
        "name": "helper", "provider": "gemini", "url": "wss://h.example/ws",
        "systemPrompt": "You help.", "firstMessage": "Hi!"}))
    assert made["firstMessage"] == "Hi!" and made["timezone"] == "UTC", made
    assert "url" in call_tool_text(d, key, "update_assistant",
                                   {"assistantId": made["id"], "url": "http://x"})
    upd = json.loads(call_tool_text(d, key, "update_assistant",
                                    {"assistantId": "helper", "firstMessage": None}))
    assert upd["firstMessage"] is None, upd
    assert "no assistant" in call_tool_text(d, other, "get_assistant", {"assistantId": "helper"})
    assert "in use" in call_tool_text(d, key, "delete_assistant", {"assistantId": "rec"})
    gone = json.loads(call_tool_text(d, key, "delete_assistant", {"assistantId": "helper"}))
    assert gone == {"id": made["id"], "deleted": True}, gone


def test_rest_create_scheduled_calls_and_the_openapi_document(dialtone_factory):
    d = dialtone_factory(config={"http": {"api_token": TOKEN}})
    status, doc = api(d, "GET", "/api/v1/openapi.json", token=None)
    assert status == 200 and doc["openapi"].startswith("3."), doc
    for path in ("/api/v1/calls", "/api/v1/personas", "/api/v1/personas/{id}", "/api/v1/numbers",
                 "/api/v1/scheduled-calls", "/api/v1/tools", "/api/v1/statistics"):
        assert path in doc["paths"], sorted(doc["paths"])
    assert "post" in doc["paths"]["/api/v1/calls"]
    assert "CreateCall" in doc["components"]["schemas"]

    status, made = api(d, "POST", "/api/v1/personas", {
        "name": "rec", "provider": "openai", "url": "ws://127.0.0.1:9/x", "instructions": "hi"})
    assert status == 201 and made["name"] == "rec", made
    assert api(d, "POST", "/api/v1/personas", {"name": "rec", "provider": "openai",
                                                "url": "ws://x", "instructions": "hi"})[0] == 409
    d.add_number(N_OUT, "persona:rec")
    soon = rfc3339(datetime.now(timezone.utc) + timedelta(hours=1))
    status, created = api(d, "POST", "/api/v1/calls", {
        "assistantId": made["id"], "phoneNumberId": N_OUT, "customer": {"number": CUSTOMER},
        "scheduledAt": soon})
    assert status == 201 and created["status"] == "scheduled", created
    status, listed = api(d, "GET", "/api/v1/scheduled-calls?status=pending")
    assert [c["id"] for c in listed["scheduledCalls"]] == [created["id"]], listed
    past = rfc3339(datetime.now(timezone.utc) - timedelta(hours=1))
    status, body = api(d, "POST", "/api/v1/calls", {
        "assistantId": "rec", "customer": {"number": CUSTOMER}, "scheduledAt": past})
    assert status == 400 and "in the past" in body["error"], body
    status, cancelled = api(d, "DELETE", f"/api/v1/scheduled-calls/{created['id']}")
    assert status == 200 and cancelled["status"] == "cancelled", cancelled
    assert api(d, "DELETE", f"/api/v1/scheduled-calls/{created['id']}")[0] == 409
    assert api(d, "GET", "/api/v1/calls?status=ended") == (200, {"calls": []})
    assert api(d, "GET", "/api/v1/calls") == (200, {"calls": []})
    status, numbers = api(d, "GET", "/api/v1/numbers")
    assert [n["phoneNumber"] for n in numbers["phoneNumbers"]] == [N_OUT], numbers
    # An account's key: its own account only.
    _, key = new_key(d, "other")
    status, theirs = api(d, "GET", "/api/v1/personas", token=key)
    assert status == 200 and theirs == {"assistants": []}, theirs
    assert api(d, "GET", f"/api/v1/personas/{made['id']}", token=key)[0] == 404


@pytest.mark.skipif(_inspector_skip_reason() is not None, reason=str(_inspector_skip_reason()))
def test_the_inspector_cli_lists_and_calls_a_management_tool(dialtone, tmp_path):
    d = dialtone
    d.cli("persona", "add", "rec", "--provider", "openai", "--url", "ws://127.0.0.1:9/x",
          "--instructions", "hi")
    _, key = new_key(d)
    listed = inspector(d, key, "--method", "tools/list", tmp=tmp_path)
    assert listed.returncode == 0, listed
    tools = {t["name"]: t for t in json.loads(listed.stdout)["tools"]}
    assert {"list_assistants", "create_call", "get_call_statistics"} <= set(tools), sorted(tools)
    assert tools["list_assistants"]["annotations"]["readOnlyHint"] is True
    assert tools["delete_assistant"]["annotations"]["destructiveHint"] is True
    assert tools["create_call"]["annotations"]["openWorldHint"] is True
    called = inspector(d, key, "--method", "tools/call", "--tool-name", "list_assistants",
                       tmp=tmp_path)
    assert called.returncode == 0, called
    out = json.loads(called.stdout)
    assert [a["name"] for a in out["structuredContent"]["assistants"]] == ["rec"], out

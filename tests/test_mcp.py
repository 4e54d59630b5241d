"""The MCP server at /mcp, driven by outside MCP clients: the official Python
SDK (`mcp`, Streamable HTTP) and the MCP Inspector CLI, against the real
binary with SIPp and baresip phones (the Pbx of test_calls.py: the trunk on
127.0.0.2, users alice and bob, 15551230001 -> bob).

What is checked: API keys (missing, wrong, revoked: 401 with a JSON-RPC
error body; too many failures: 429), DNS-rebinding protection (Host and
Origin: 403), sessions and stateless requests, the context headers read on
every request (call_id, account_id), tools from the registry with their
annotations and schemas, hangup_call and transfer_call acting on live calls
(the phones see the BYE, the transferred caller hears the new party), tool
errors (another account's call looks exactly like an unknown one), and live
calls as resources, with a subscriber told when the call ends. Every wait is
bounded."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import ClientSession, MCPError
from mcp.client.streamable_http import streamable_http_client

from conftest import LOOPBACK, REPO
from test_api import api, live_call
from test_calls import N_BOB, PW, TRUNK_IP, Pbx

TOKEN = "test-token-0123456789"
ACCEPT = "application/json, text/event-stream"
INSPECTOR = REPO / "tests" / "node_modules" / ".bin" / "mcp-inspector"
TRANSFER_TOOLS = {"transfer_call", "hangup_call"}


# --------------------------------------------------------------------------
# helpers

def new_key(d, account: str = "default") -> tuple[str, str]:
    """`apikey create`: (key id, key). The key is the last line printed; the
    id is named on the first."""
    lines = d.cli("apikey", "create", "--account", account, "--name", "test").stdout.splitlines()
    return lines[0].split()[2], lines[-1].strip()


def mcp_url(d) -> str:
    return f"http://{LOOPBACK}:{d.http_port}/mcp"


def post(d, body: dict, headers: dict[str, str] | None = None) -> tuple[int, Any, str]:
    """A raw JSON-RPC POST to /mcp: (status, response headers, body text)."""
    req = urllib.request.Request(mcp_url(d), data=json.dumps(body).encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    req.add_header("Accept", ACCEPT)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def tools_list_request(n: int = 1) -> dict:
    return {"jsonrpc": "2.0", "id": n, "method": "tools/list"}


def run(coro, timeout: float = 60.0):
    """Runs an async client scenario, bounded."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


@contextlib.asynccontextmanager
async def session(d, key: str, **context: str):
    """An initialized MCP session with the key and context headers. Yields
    (session, http client, notifications): change `http.headers` to send
    other context headers on the next requests of the same session."""
    notes: list = []

    async def on_message(m) -> None:
        notes.append(m)

    headers = {"X-API-Key": key, **context}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(10, read=60)) as http:
        async with streamable_http_client(mcp_url(d), http_client=http) as (read, write):
            async with ClientSession(read, write, message_handler=on_message) as s:
                await s.initialize()
                yield s, http, notes


def text_of(result) -> str:
    return " ".join(c.text for c in result.content if getattr(c, "type", "") == "text")


def call_tool_text(d, key: str, name: str, args: dict, **context: str) -> str:
    """One tools/call over MCP; the text the tool answered (an error's
    message prefixed "error: ", as the in-call door tells a model)."""
    async def go() -> str:
        async with session(d, key, **context) as (s, _http, _notes):
            r = await s.call_tool(name, args)
            failed = getattr(r, "is_error", None) or getattr(r, "isError", False)
            return ("error: " if failed else "") + text_of(r)
    return run(go())


def updated_uris(notes: list) -> list[str]:
    out = []
    for n in notes:
        method = getattr(n, "method", None)
        if method == "notifications/resources/updated":
            out.append(str(n.params.uri))
    return out


async def wait_for(pred, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        await asyncio.sleep(0.1)
    return pred()


# --------------------------------------------------------------------------
# authentication and transport

def test_missing_wrong_and_revoked_keys_are_refused(dialtone):
    d = dialtone
    status, headers, body = post(d, tools_list_request())
    assert status == 401, body
    err = json.loads(body)
    assert err["jsonrpc"] == "2.0" and err["id"] is None, err
    assert err["error"]["code"] == -32001 and "API key" in err["error"]["message"], err
    assert "Bearer" in headers.get("WWW-Authenticate", ""), headers
    status, _, body = post(d, tools_list_request(), {"X-API-Key": "dtk_wrong"})
    assert status == 401 and json.loads(body)["error"]["code"] == -32001, body
    status, _, body = post(d, tools_list_request(), {"Authorization": "Bearer dtk_wrong"})
    assert status == 401, body

    # The Python SDK reads the JSON-RPC error of the 401.
    with pytest.raises(BaseExceptionGroup) as caught:
        run(_initialize_only(d, "dtk_wrong"))
    assert "invalid or revoked API key" in repr(caught.value), caught.value

    key_id, key = new_key(d)
    status, _, body = post(d, tools_list_request(), {"Authorization": f"Bearer {key}"})
    assert status == 200, body
    # The use is recorded (in the background, at most once a minute).
    deadline = time.monotonic() + 5
    while "never" in d.cli("apikey", "list").stdout and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "never" not in d.cli("apikey", "list").stdout
    d.cli("apikey", "revoke", key_id)
    status, _, body = post(d, tools_list_request(), {"X-API-Key": key})
    assert status == 401 and "revoked" in body, body
    assert "HTTP authentication failed" in d.log() and "127.0.0.1" in d.log()


async def _initialize_only(d, key: str) -> None:
    async with session(d, key):
        pass


def test_failures_from_one_address_are_rate_limited(dialtone):
    d = dialtone
    _, key = new_key(d)
    for i in range(10):
        status, _, body = post(d, tools_list_request(), {"X-API-Key": f"dtk_bad{i}"})
        assert status == 401, (i, body)
    status, headers, body = post(d, tools_list_request(), {"X-API-Key": "dtk_bad"})
    assert status == 429, body
    assert json.loads(body)["error"]["code"] == -32001 and headers.get("Retry-After"), (headers, body)
    # Refused without looking: a good key from that address waits as well.
    assert post(d, tools_list_request(), {"X-API-Key": key})[0] == 429


def test_host_and_origin_are_checked_and_configurable(dialtone_factory):
    d = dialtone_factory()
    _, key = new_key(d)
    auth = {"X-API-Key": key}
    assert post(d, tools_list_request(), auth)[0] == 200
    status, _, body = post(d, tools_list_request(), {**auth, "Host": "evil.example"})
    assert status == 403 and "Host" in body, body
    status, _, body = post(d, tools_list_request(), {**auth, "Origin": "http://evil.example"})
    assert status == 403 and "Origin" in body, body

    e = dialtone_factory(env={"DIALTONE_MCP__ALLOWED_HOSTS": '["mcp.example"]',
                              "DIALTONE_MCP__ALLOWED_ORIGINS": '["http://app.example:*"]'})
    _, key = new_key(e)
    auth = {"X-API-Key": key}
    assert post(e, tools_list_request(), auth)[0] == 403  # Host 127.0.0.1:PORT is not listed now
    host = {**auth, "Host": "mcp.example"}
    assert post(e, tools_list_request(), host)[0] == 200
    assert post(e, tools_list_request(), {**host, "Origin": "http://app.example:3000"})[0] == 200
    assert post(e, tools_list_request(), {**host, "Origin": "http://evil.example"})[0] == 403

    off = dialtone_factory(env={"DIALTONE_MCP__ENABLED": "false"})
    assert post(off, tools_list_request(), auth)[0] == 404


def test_a_stateless_request_needs_no_initialize(dialtone):
    """tools/list POSTed alone (no initialize, no Mcp-Session-Id) is answered
    with plain JSON; sessions are for clients that initialize."""
    d = dialtone
    _, key = new_key(d)
    status, headers, body = post(d, tools_list_request(7), {"X-API-Key": key,
                                                             "MCP-Protocol-Version": "2025-11-25"})
    assert status == 200, body
    assert headers.get("Content-Type", "").startswith("application/json"), headers
    assert "Mcp-Session-Id" not in headers, headers
    reply = json.loads(body)
    assert reply["id"] == 7 and reply["result"]["tools"], reply
    # The same without a protocol version header (2025-03-26 is assumed).
    status, _, body = post(d, tools_list_request(8), {"X-API-Key": key})
    assert status == 200 and json.loads(body)["id"] == 8, body
    # initialize opens a session.
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "raw", "version": "1"}}}
    status, headers, body = post(d, init, {"X-API-Key": key})
    assert status == 200 and headers.get("Mcp-Session-Id"), (headers, body)


def test_the_rest_api_takes_account_keys_without_an_operator_token(dialtone):
    d = dialtone
    _, key = new_key(d)
    assert api(d, "GET", "/api/v1/calls", token=None)[0] == 404  # the API is off...
    assert api(d, "GET", "/api/v1/calls", token="not-a-key")[0] == 404
    assert api(d, "GET", "/api/v1/calls", token="dtk_wrong")[0] == 401  # ...but for keys
    assert api(d, "GET", "/api/v1/calls", token=key) == (200, {"calls": []})
    assert _rest(d, "GET", "/api/v1/calls", key) == (200, {"calls": []})
    assert _rest(d, "GET", "/api/v1/calls", "dtk_wrong")[0] == 401
    assert _rest(d, "POST", "/api/v1/calls/nope/hangup", key, {})[0] == 404


# --------------------------------------------------------------------------
# tools

def test_call_bound_tools_are_listed_with_a_call_context(dialtone):
    d = dialtone
    _, key = new_key(d)

    async def scenario():
        async with session(d, key) as (s, http, _):
            plain = {t.name: t for t in (await s.list_tools()).tools}
            # The same session, with a call in the next request's headers.
            http.headers["call_id"] = "some-call"
            bound = {t.name: t for t in (await s.list_tools()).tools}
            del http.headers["call_id"]
            http.headers["X-Call-Id"] = "some-call"
            dashed = {t.name for t in (await s.list_tools()).tools}
            return plain, bound, dashed

    plain, bound, dashed = run(scenario())
    assert plain and not TRANSFER_TOOLS & set(plain), sorted(plain)
    assert TRANSFER_TOOLS <= set(bound) and TRANSFER_TOOLS <= dashed, sorted(bound)
    assert set(plain) <= set(bound)
    for name in TRANSFER_TOOLS:
        a = bound[name].annotations
        assert a.destructive_hint is True and a.read_only_hint is False, (name, a)
        assert a.open_world_hint is True, (name, a)
        assert bound[name].input_schema["type"] == "object", bound[name]
        assert bound[name].output_schema["type"] == "object", bound[name]
    assert bound["hangup_call"].annotations.idempotent_hint is True
    assert bound["transfer_call"].input_schema["required"] == ["destination"]
    assert "outcome" in bound["transfer_call"].output_schema["properties"]


@pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")  # resources/subscribe: see README
def test_hangup_call_ends_a_live_call_and_tells_the_subscriber(dialtone_factory, sipp):
    """A trunk call to bob, found through the REST API with the account's
    key. Another account's key sees nothing of it: its hangup_call gets the
    very error an unknown id gets. The owner's hangup_call sends BYE to both
    phones, and its subscription to call://ID reports the end."""
    pbx = Pbx(dialtone_factory(config={"http": {"api_token": TOKEN}}), sipp)
    d = pbx.d
    _, key = new_key(d)
    _, other = new_key(d, "other")
    bob = pbx.phone("bob", "uas.xml", timeout=30)
    caller = pbx.trunk_call("uac_wait_bye.xml", N_BOB, background=True, timeout=30)
    call = live_call(d)
    assert api(d, "GET", "/api/v1/calls", token=None)[0] == 401
    status, body = _rest(d, "GET", "/api/v1/calls", key)
    assert status == 200 and [c["id"] for c in body["calls"]] == [call], body
    assert _rest(d, "GET", "/api/v1/calls", other) == (200, {"calls": []})
    assert _rest(d, "POST", f"/api/v1/calls/{call}/hangup", other, {})[0] == 404

    async def scenario():
        uri = f"call://{call}"
        async with session(d, other, call_id=call) as (s, http, _):
            assert (await s.list_resources()).resources == []
            foreign = await s.call_tool("hangup_call", {})
            http.headers["call_id"] = "no-such-call-id"
            unknown = await s.call_tool("hangup_call", {})
            with pytest.raises(MCPError):
                await s.read_resource(uri)
        assert foreign.is_error and unknown.is_error, (foreign, unknown)
        assert text_of(foreign) == f"no such call: {call}", foreign
        assert text_of(unknown) == "no such call: no-such-call-id", unknown
        assert call in {c["id"] for c in _rest(d, "GET", "/api/v1/calls", key)[1]["calls"]}

        async with session(d, key, call_id=call) as (s, http, notes):
            listed = {str(r.uri): r for r in (await s.list_resources()).resources}
            assert uri in listed and "15551230001" in (listed[uri].description or ""), listed
            read = await s.read_resource(uri)
            snap = json.loads(read.contents[0].text)
            assert snap["id"] == call and snap["state"] == "answered", snap
            assert read.contents[0].mime_type == "application/json"
            await s.subscribe_resource(uri)

            bad = await s.call_tool("hangup_call", {"bogus": 1})
            assert bad.is_error and "bogus" in text_of(bad), bad
            with pytest.raises(MCPError) as e:
                await s.call_tool("no_such_tool", {})
            assert e.value.error.code == -32602 and "no_such_tool" in e.value.error.message
            http.headers["account_id"] = "other"
            with pytest.raises(MCPError) as e:
                await s.call_tool("hangup_call", {})
            assert "no access to account" in e.value.error.message, e.value.error
            http.headers["account_id"] = "default"  # its own account, by name

            done = await s.call_tool("hangup_call", {})
            assert not done.is_error, done
            assert done.structured_content == {"outcome": "ended", "call_id": call}, done
            assert await wait_for(lambda: uri in updated_uris(notes)), notes
            with pytest.raises(MCPError):
                await s.read_resource(uri)

    run(scenario())
    assert caller.wait(20).ok(), "the caller must get BYE"
    assert bob.wait(20).ok(), "bob must get BYE"
    rec = pbx.record()
    assert rec["hangup_cause"] == "hangup_call", rec


def _rest(d, method: str, path: str, key: str, body: dict | None = None):
    req = urllib.request.Request(f"http://{LOOPBACK}:{d.http_port}{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    req.add_header("X-API-Key", key)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def test_transfer_call_rings_a_phone_and_bridges_the_caller(dialtone_factory, sipp, baresip,
                                                             tmp_path):
    """The trunk (a Python UA playing 400 Hz) calls bob, a SIPp phone that
    echoes RTP. transfer_call over MCP sends the caller to alice, a baresip
    that answers at once and plays 1000 Hz: the tool answers "transferred",
    bob gets BYE, and the trunk hears alice while alice hears the trunk."""
    from siptool import RtpPeer, SipUA, dominant_frequency, place_call, ulaw_samples, ulaw_tone
    from siptool import write_tone_wav
    from test_transcoding import pcmu_sdp

    pbx = Pbx(dialtone_factory(), sipp)
    d = pbx.d
    _, key = new_key(d)
    tone = tmp_path / "tone1000.wav"
    write_tone_wav(tone, 1000, seconds=30)
    alice = baresip("alice", PW, d.sip_port, play=tone, record=True, answermode="auto")
    assert alice.wait_registered(), alice.log()
    bob = pbx.phone("bob", "uas.xml", timeout=40)

    with SipUA(TRUNK_IP, user="carrier") as trunk:
        rtp = RtpPeer(TRUNK_IP, pt=0)
        rtp.keep_payload = True
        try:
            call = place_call(trunk, (LOOPBACK, d.sip_port), f"sip:{N_BOB}@{LOOPBACK}:{d.sip_port}",
                              pcmu_sdp(TRUNK_IP, rtp.port))
            assert call.final is not None and call.final.code == 200, call.final
            rtp.start((call.remote_sdp.ip, call.remote_sdp.port), payload=ulaw_tone(400))

            async def transfer():
                # The trunk leg's SIP Call-ID names the call as well as dialtone's id.
                async with session(d, key, call_id=call.call_id) as (s, _, _):
                    return await s.call_tool("transfer_call", {"destination": "alice"})

            result = run(transfer())
            assert not result.is_error and text_of(result) == "transferred", result
            assert result.structured_content["outcome"] == "transferred", result
            heard_before = len(rtp.payloads)
            time.sleep(4)
            heard = rtp.payloads[heard_before:]
            call.bye()
        finally:
            rtp.stop()
    assert bob.wait(20).ok(), "bob must get BYE once the caller is transferred"
    assert alice.wait_log(r"terminated|session closed", 10), alice.log()
    assert len(heard) > 150, f"the trunk got {len(heard)} packets after the transfer"
    f, share = dominant_frequency(ulaw_samples(heard[50:]), 8000)
    assert abs(f - 1000) <= 20, f"after the transfer the trunk heard {f} Hz ({share:.0%})"
    alice.heard_tone(400, 15)


# --------------------------------------------------------------------------
# the MCP Inspector CLI

def _inspector_skip_reason() -> str | None:
    if shutil.which("node") is None or shutil.which("npx") is None:
        return "node/npx are not installed: the MCP Inspector CLI cannot run here"
    if not INSPECTOR.exists():
        return f"the MCP Inspector CLI is not installed at {INSPECTOR}: run scripts/setup.sh"
    return None


def inspector(d, key: str, *args: str, tmp: Path) -> subprocess.CompletedProcess:
    cmd = ["npx", "--no-install", "mcp-inspector", "--cli", mcp_url(d), "--transport", "http",
           "--header", f"X-API-Key: {key}", *args]
    # Its catalog and state go to $HOME/.mcp-inspector: keep them in the test's tmp dir.
    env = {**os.environ, "HOME": str(tmp)}
    try:
        return subprocess.run(cmd, cwd=REPO / "tests", env=env, capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"the inspector took over 60 s: {e.stdout}\n{e.stderr}") from None


@pytest.mark.skipif(_inspector_skip_reason() is not None, reason=str(_inspector_skip_reason()))
def test_the_inspector_cli_lists_and_calls_tools(dialtone, tmp_path):
    d = dialtone
    _, key = new_key(d)
    listed = inspector(d, key, "--method", "tools/list", tmp=tmp_path)
    assert listed.returncode == 0, listed
    names = {t["name"] for t in json.loads(listed.stdout)["tools"]}
    assert names and not TRANSFER_TOOLS & names, names
    bound = inspector(d, key, "--header", "call_id: inspector-call", "--method", "tools/list",
                      tmp=tmp_path)
    assert bound.returncode == 0, bound
    assert TRANSFER_TOOLS <= {t["name"] for t in json.loads(bound.stdout)["tools"]}, bound.stdout
    # The round trip: the header reaches the registry, whose answer comes back as a tool error.
    called = inspector(d, key, "--header", "call_id: inspector-call", "--method", "tools/call",
                       "--tool-name", "hangup_call", tmp=tmp_path)
    assert called.returncode != 0, called
    assert '"isError": true' in called.stdout and "no such call: inspector-call" in called.stdout, \
        called
    # A wrong key's 401 (with WWW-Authenticate) makes it want OAuth, which it
    # cannot do without a terminal: it stops and says so.
    refused = inspector(d, "dtk_wrong", "--method", "tools/list", tmp=tmp_path)
    assert refused.returncode != 0 and "auth_required" in refused.stderr, refused


def test_the_six_global_tools_and_the_personas_own_with_a_persona_context(dialtone):
    d = dialtone
    d.cli("persona", "add", "rec", "--provider", "openai", "--url", "ws://127.0.0.1:9/x",
          "--instructions", "hi")
    d.add_user("bob", "pw-bob")
    d.cli("tool", "add", "rec", "to_bob", "--kind", "transfer-user", "--user", "bob")
    d.cli("tool", "add", "rec", "crm", "--kind", "api-request", "--url", "http://127.0.0.1:9/{id}",
          "--var", "id:number")
    _, key = new_key(d)

    async def scenario():
        async with session(d, key, persona_id="rec", call_id="c1") as (s, http, _):
            names = {t.name for t in (await s.list_tools()).tools}
            del http.headers["call_id"]
            no_call = {t.name for t in (await s.list_tools()).tools}
            # create_lead over MCP: the number comes from the context.
            http.headers["caller_id_number"] = "(555) 010-0123"
            first = await s.call_tool("create_lead", {"name": "Ann", "intent": "quote"})
            second = await s.call_tool("create_lead", {"name": "Ann", "intent": "again"})
            return names, no_call, text_of(first), text_of(second)

    names, no_call, first, second = run(scenario())
    six = {"transfer_call", "hangup_call", "is_office_open", "lookup_contact",
           "check_user_availability", "create_lead"}
    assert six | {"to_bob", "crm"} == names, sorted(names)
    assert no_call == names - {"transfer_call", "hangup_call", "to_bob"}, sorted(no_call)
    assert first.startswith("lead created") and second.startswith("case added"), (first, second)
    leads = json.loads(d.cli("leads", "list", "--json").stdout)
    assert len(leads) == 1 and leads[0]["phone_number"] == "+15550100123", leads

"""The MCP server's other doors, driven by outside MCP clients against the real
binary: `dialtone mcp-stdio` (a stdio server proxying to a running switch's
/mcp) under the Python SDK's stdio client, and the legacy HTTP+SSE transport
(`GET /sse`, `POST /sse/message?sessionId=…`) under the SDK's SSE client and
the MCP Inspector CLI.

What is checked: each door initializes, lists the registry's tools and calls
one, with the context headers reaching the registry (a persona's
is_office_open answers "no office hours" — a tool error that proves the round
trip); over SSE the context is read per POST, the GET's headers serving as
defaults. A wrong or missing key is a clean JSON-RPC error on stdio (the proxy
keeps serving), and on SSE the same 401/403/404 answers /mcp gives, a session
being usable only by its own account and gone once its stream closes. Every
wait is bounded; only loopback is used."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import httpx2
import pytest
from mcp import ClientSession, MCPError
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.shared._httpx_utils import create_mcp_http_client

from conftest import LOOPBACK, REPO, dialtone_bin, free_port
from test_mcp import _inspector_skip_reason, new_key, text_of

NO_HOURS = "no office hours are configured for rec"
CALL_BOUND = {"transfer_call", "hangup_call"}


def run(coro, timeout: float = 60.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def add_persona(d, name: str = "rec") -> None:
    d.cli("persona", "add", name, "--provider", "openai", "--url", "ws://127.0.0.1:9/x",
          "--instructions", "hi")


def is_error(result) -> bool:
    return bool(getattr(result, "is_error", None) or getattr(result, "isError", False))


# --------------------------------------------------------------------------
# dialtone mcp-stdio

def stdio_params(d, *args: str, key: str | None) -> StdioServerParameters:
    env = {"DIALTONE_API_KEY": key} if key is not None else {}
    return StdioServerParameters(command=str(dialtone_bin()),
                                 args=["--config", str(d.config_path), "mcp-stdio", *args],
                                 env=env)


def test_mcp_stdio_proxies_initialize_list_and_call(dialtone, tmp_path):
    d = dialtone
    add_persona(d)
    _, key = new_key(d)
    errlog = (tmp_path / "stdio.err").open("w+")

    async def scenario():
        params = stdio_params(d, "--header", "persona_id: rec", key=key)
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as s:
                init = await s.initialize()
                tools = {t.name: t for t in (await s.list_tools()).tools}
                office = await s.call_tool("is_office_open", {})
                with pytest.raises(MCPError) as unknown:
                    await s.call_tool("no_such_tool", {})
                # Concurrent requests each get their own answer.
                many = await asyncio.gather(*(s.list_tools() for _ in range(5)))
                return init, tools, office, unknown.value, many

    init, tools, office, unknown, many = run(scenario())
    assert init.server_info.name == "dialtone", init
    assert {"is_office_open", "lookup_contact", "create_lead"} <= set(tools), sorted(tools)
    assert not CALL_BOUND & set(tools), sorted(tools)
    assert tools["is_office_open"].input_schema["type"] == "object"
    # The persona header went through the proxy to the registry and back.
    assert is_error(office) and NO_HOURS in text_of(office), office
    assert unknown.error.code == -32602 and "no_such_tool" in unknown.error.message, unknown
    assert all({t.name for t in m.tools} == set(tools) for m in many)
    errlog.seek(0)
    err = errlog.read()
    assert "panicked" not in err, err


def test_mcp_stdio_takes_an_explicit_url_and_key_variable(dialtone):
    d = dialtone
    add_persona(d)
    _, key = new_key(d)
    url = f"http://{LOOPBACK}:{d.http_port}/mcp"
    params = StdioServerParameters(
        command=str(dialtone_bin()),
        args=["mcp-stdio", "--url", url, "--api-key-env", "MY_DIALTONE_KEY",
              "--header", "persona_id: rec", "--header", "call_id: c-1"],
        env={"MY_DIALTONE_KEY": key}, cwd=str(d.workdir))

    async def scenario():
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as s:
                await s.initialize()
                names = {t.name for t in (await s.list_tools()).tools}
                hangup = await s.call_tool("hangup_call", {})
                return names, hangup

    names, hangup = run(scenario())
    assert CALL_BOUND <= names, sorted(names)
    assert is_error(hangup) and "no such call: c-1" in text_of(hangup), hangup


def test_mcp_stdio_answers_a_refused_key_with_a_json_rpc_error(dialtone):
    d = dialtone

    async def refused(key: str | None) -> tuple[MCPError, MCPError]:
        async with stdio_client(stdio_params(d, key=key)) as (read, write):
            async with ClientSession(read, write) as s:
                with pytest.raises(MCPError) as first:
                    await s.initialize()
                # The proxy is still there and answers the next request too.
                with pytest.raises(MCPError) as second:
                    await s.send_ping()
                return first.value, second.value

    wrong, again = run(refused("dtk_wrong"))
    for e in (wrong, again):
        assert e.error.code == -32001, e.error
        assert "refused the API key" in e.error.message, e.error
        assert "invalid or revoked API key" in e.error.message, e.error
    missing, _ = run(refused(None))
    assert missing.error.code == -32001, missing.error
    assert "DIALTONE_API_KEY" in missing.error.message and "not set" in missing.error.message, \
        missing.error


def test_mcp_stdio_says_when_the_switch_is_unreachable(tmp_path):
    # Nothing listens there; no config file in cwd: the built-in defaults.
    url = f"http://{LOOPBACK}:{free_port()}/mcp"
    params = StdioServerParameters(command=str(dialtone_bin()), args=["mcp-stdio", "--url", url],
                                   env={"DIALTONE_API_KEY": "dtk_any"}, cwd=str(tmp_path))

    async def scenario() -> MCPError:
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as s:
                with pytest.raises(MCPError) as e:
                    await s.initialize()
                return e.value

    e = run(scenario())
    assert e.error.code == -32000 and "cannot reach dialtone" in e.error.message, e.error


def test_mcp_stdio_opens_a_new_session_when_the_switch_restarts(dialtone):
    d = dialtone
    add_persona(d)
    _, key = new_key(d)

    async def scenario():
        params = stdio_params(d, "--header", "persona_id: rec", key=key)
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as s:
                await s.initialize()
                before = {t.name for t in (await s.list_tools()).tools}
                await asyncio.to_thread(restart, d)
                # The old session id is unknown to the new process (404):
                # the proxy initializes again and retries.
                after = {t.name for t in (await s.list_tools()).tools}
                office = await s.call_tool("is_office_open", {})
                return before, after, office

    before, after, office = run(scenario())
    assert before and before == after, (before, after)
    assert is_error(office) and NO_HOURS in text_of(office), office


def restart(d) -> None:
    assert d.stop() == 0, d.log()
    d.close_files()
    d.start()


def test_mcp_stdio_frames_lines_and_refuses_garbage(dialtone):
    """Raw newline-delimited JSON: a bad line gets a parse error (id null),
    blank lines are ignored, every answer is one line on stdout."""
    d = dialtone
    _, key = new_key(d)
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "raw", "version": "1"}}}
    lines = [json.dumps(init), "", "this is not json",
             json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}),
             json.dumps({"jsonrpc": "2.0", "id": "two", "method": "tools/list"})]
    cp = subprocess.run([str(dialtone_bin()), "--config", str(d.config_path), "mcp-stdio"],
                        input="\n".join(lines) + "\n", capture_output=True, text=True,
                        timeout=30, env={**os.environ, "DIALTONE_API_KEY": key})
    assert cp.returncode == 0, cp
    out = [json.loads(line) for line in cp.stdout.splitlines()]
    by_id = {json.dumps(m.get("id")): m for m in out}
    assert by_id["1"]["result"]["serverInfo"]["name"] == "dialtone", out
    assert by_id["null"]["error"]["code"] == -32700, out
    assert by_id['"two"']["result"]["tools"], out
    assert len(out) == 3, out


# --------------------------------------------------------------------------
# the legacy HTTP+SSE transport

def sse_url(d) -> str:
    return f"http://{LOOPBACK}:{d.http_port}/sse"


def http_get(url: str, headers: dict[str, str]) -> tuple[int, str]:
    """A GET that must be refused (a granted one would stream forever)."""
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, ""
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def http_post(url: str, body: dict, headers: dict[str, str]) -> tuple[int, str]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_the_sse_client_initializes_lists_and_calls(dialtone):
    d = dialtone
    add_persona(d)
    _, key = new_key(d)
    clients: list[httpx2.AsyncClient] = []

    def factory(headers=None, timeout=None, auth=None):
        c = create_mcp_http_client(headers=headers, timeout=timeout, auth=auth)
        clients.append(c)
        return c

    async def scenario():
        headers = {"X-API-Key": key, "persona_id": "rec"}
        async with sse_client(sse_url(d), headers=headers, httpx_client_factory=factory) as (r, w):
            async with ClientSession(r, w) as s:
                init = await s.initialize()
                plain = {t.name for t in (await s.list_tools()).tools}
                office = await s.call_tool("is_office_open", {})
                # Context headers are read per POST: a call id now...
                clients[0].headers["call_id"] = "sse-call"
                bound = {t.name for t in (await s.list_tools()).tools}
                hangup = await s.call_tool("hangup_call", {})
                # ...and the GET's persona still applies where a POST names none.
                del clients[0].headers["persona_id"]
                still = await s.call_tool("is_office_open", {})
                return init, plain, office, bound, hangup, still

    init, plain, office, bound, hangup, still = run(scenario())
    assert init.server_info.name == "dialtone", init
    assert {"is_office_open", "lookup_contact"} <= plain and not CALL_BOUND & plain, sorted(plain)
    assert is_error(office) and NO_HOURS in text_of(office), office
    assert CALL_BOUND <= bound, sorted(bound)
    assert is_error(hangup) and "no such call: sse-call" in text_of(hangup), hangup
    assert is_error(still) and NO_HOURS in text_of(still), still


def test_sse_refusals_and_session_lifetime(dialtone_factory):
    d = dialtone_factory(env={"DIALTONE_MCP__ALLOWED_ORIGINS": '["http://app.example:*"]'})
    _, key = new_key(d)
    _, other = new_key(d, "other")

    status, body = http_get(sse_url(d), {})
    assert status == 401, body
    err = json.loads(body)
    assert err["jsonrpc"] == "2.0" and err["error"]["code"] == -32001, err
    assert "API key" in err["error"]["message"], err
    assert http_get(sse_url(d), {"X-API-Key": "dtk_wrong"})[0] == 401
    assert http_get(sse_url(d), {"Authorization": "Bearer dtk_wrong"})[0] == 401
    status, body = http_get(sse_url(d), {"X-API-Key": key, "Host": "evil.example"})
    assert status == 403 and "Host" in body, body
    status, body = http_get(sse_url(d), {"X-API-Key": key, "Origin": "http://evil.example"})
    assert status == 403 and "Origin" in body, body
    msg_url = f"http://{LOOPBACK}:{d.http_port}/sse/message?sessionId=nope"
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    assert http_post(msg_url, ping, {"X-API-Key": key})[0] == 404

    async def scenario():
        async with httpx2.AsyncClient(timeout=httpx2.Timeout(10)) as http:
            async with http.stream("GET", sse_url(d), headers={
                    "X-API-Key": key, "Origin": "http://app.example:3000"}) as resp:
                assert resp.status_code == 200, resp
                assert resp.headers["content-type"].startswith("text/event-stream")
                lines = resp.aiter_lines()
                endpoint = None
                while endpoint is None:
                    line = await asyncio.wait_for(anext(lines), 10)
                    if line.startswith("data:"):
                        endpoint = line[5:].strip()
                assert endpoint.startswith("/sse/message?sessionId="), endpoint
                url = f"http://{LOOPBACK}:{d.http_port}{endpoint}"
                # Each POST is authenticated too, and only the session's account may use it.
                refused = await http.post(url, json=ping)
                foreign = await http.post(url, json=ping, headers={"X-API-Key": other})
                garbage = await http.post(url, content=b"{not json",
                                          headers={"X-API-Key": key})
                init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                        "params": {"protocolVersion": "2024-11-05", "capabilities": {},
                                   "clientInfo": {"name": "raw", "version": "1"}}}
                accepted = await http.post(url, json=init, headers={"X-API-Key": key})
                answer = None
                while answer is None:
                    line = await asyncio.wait_for(anext(lines), 10)
                    if line.startswith("data:"):
                        answer = json.loads(line[5:])
        return url, refused, foreign, garbage, accepted, answer

    url, refused, foreign, garbage, accepted, answer = run(scenario())
    assert refused.status_code == 401, refused.text
    assert foreign.status_code == 404, foreign.text
    assert garbage.status_code == 400 and "-32700" in garbage.text, garbage.text
    assert accepted.status_code == 202, accepted.text
    assert answer["id"] == 1 and answer["result"]["serverInfo"]["name"] == "dialtone", answer
    # The stream is closed: the session goes with it.
    deadline = time.monotonic() + 10
    while http_post(url, ping, {"X-API-Key": key})[0] != 404 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert http_post(url, ping, {"X-API-Key": key})[0] == 404


def test_sse_streams_end_at_shutdown(dialtone):
    """An open SSE stream does not hold the switch up: SIGTERM stops it
    promptly."""
    d = dialtone
    _, key = new_key(d)

    async def hold_open_then_stop() -> float:
        async with httpx2.AsyncClient(timeout=httpx2.Timeout(10, read=30)) as http:
            async with http.stream("GET", sse_url(d), headers={"X-API-Key": key}) as resp:
                assert resp.status_code == 200
                lines = resp.aiter_lines()
                await asyncio.wait_for(anext(lines), 10)
                t0 = time.monotonic()
                rc = await asyncio.to_thread(d.stop)
                return rc, time.monotonic() - t0

    rc, took = run(hold_open_then_stop())
    assert rc == 0, d.log()
    assert took < 8, f"shutdown took {took:.1f} s with an SSE stream open"


# --------------------------------------------------------------------------
# the MCP Inspector CLI over SSE

def inspector_sse(d, key: str, *args: str, tmp: Path) -> subprocess.CompletedProcess:
    cmd = ["npx", "--no-install", "mcp-inspector", "--cli", sse_url(d), "--transport", "sse",
           "--header", f"X-API-Key: {key}", *args]
    env = {**os.environ, "HOME": str(tmp)}
    try:
        return subprocess.run(cmd, cwd=REPO / "tests", env=env, capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"the inspector took over 60 s: {e.stdout}\n{e.stderr}") from None


@pytest.mark.skipif(_inspector_skip_reason() is not None, reason=str(_inspector_skip_reason()))
def test_the_inspector_cli_lists_and_calls_tools_over_sse(dialtone, tmp_path):
    d = dialtone
    add_persona(d)
    _, key = new_key(d)
    listed = inspector_sse(d, key, "--method", "tools/list", tmp=tmp_path)
    assert listed.returncode == 0, listed
    names = {t["name"] for t in json.loads(listed.stdout)["tools"]}
    assert "is_office_open" in names and not CALL_BOUND & names, names
    called = inspector_sse(d, key, "--header", "persona_id: rec", "--method", "tools/call",
                           "--tool-name", "is_office_open", tmp=tmp_path)
    assert called.returncode != 0, called
    assert '"isError": true' in called.stdout and NO_HOURS in called.stdout, called

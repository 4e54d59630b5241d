"""End-to-end tests of a persona's external MCP servers: a company's own
MCP servers (here a small CRM, tests/mcp_crm_server.py, built with the
pinned Python SDK) whose tools dialtone offers to the persona's model
mid-call as SERVER__TOOL, beside its own tools.

Cast (all on loopback): the AiPbx of tests/test_ai_bridge.py (trunk on
127.0.0.2, persona "rec" on a scripted realtime server, its number); the
CRM served over Streamable HTTP and over the older HTTP+SSE transport (each
refusing requests without `Authorization: Bearer <token>`), or run by
dialtone itself as a stdio child process. The token reaches dialtone only
through its environment: the persona's header says ${CRM_TOKEN}."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import LOOPBACK, free_port, wait_bound
from test_ai_bridge import AiPbx, clean, wait_until

TOKEN = "crm-t0ken-for-tests"
SERVER = Path(__file__).parent / "mcp_crm_server.py"


class CrmServer:
    """tests/mcp_crm_server.py in a child process on 127.0.0.1."""

    def __init__(self, transport: str, log: Path, token: str | None = TOKEN):
        self.port = free_port()
        self.log = log
        path = "/mcp" if transport == "http" else "/sse"
        self.url = f"http://{LOOPBACK}:{self.port}{path}"
        cmd = [sys.executable, str(SERVER), transport, str(self.port), "--log", str(log)]
        if token:
            cmd += ["--token", token]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if not wait_bound(self.port, LOOPBACK, timeout=15.0, udp=False):
            self.stop()
            err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
            raise AssertionError(f"the {transport} MCP server did not listen on {self.port}:\n{err}")

    def calls(self) -> list[dict]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def crm(tmp_path):
    started: list[CrmServer] = []

    def start(transport: str, **kw) -> CrmServer:
        s = CrmServer(transport, tmp_path / f"crm-{transport}-{len(started)}.log", **kw)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


@pytest.fixture
def mcp_pbx(dialtone_factory):
    made: list[AiPbx] = []

    def make(kind: str = "openai", **kw) -> AiPbx:
        p = AiPbx(dialtone_factory, kind, **kw)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


def tool_names(conn) -> list[str]:
    """The functions offered in the session setup (OpenAI session.update,
    Gemini setup)."""
    names = []
    for t in conn.session.get("tools", []):
        if "name" in t:
            names.append(t["name"])
        names += [d["name"] for d in t.get("functionDeclarations", [])]
    return names


def ask(conn, name: str, args: dict, timeout: float = 10.0) -> str:
    return conn.wait_function_output(conn.function_call(name, args), timeout=timeout)


def stats_of(rec: dict) -> dict:
    stats = rec.get("stats") or {}
    return json.loads(stats) if isinstance(stats, str) else stats


@pytest.mark.parametrize("kind", ["openai", "gemini"])
def test_the_tools_of_http_and_sse_servers_are_offered_and_called_mid_call(mcp_pbx, crm, kind):
    http, sse = crm("http"), crm("sse")
    p = mcp_pbx(kind, env={"CRM_TOKEN": TOKEN})
    d = p.d
    d.cli("persona", "mcp", "add", "rec", "crm", "--url", http.url, "--transport", "http",
          "--header", "Authorization: Bearer ${CRM_TOKEN}")
    d.cli("persona", "mcp", "add", "rec", "legacy", "--url", sse.url, "--transport", "sse",
          "--header", "Authorization: Bearer ${CRM_TOKEN}", "--allow", "crm_lookup",
          "--timeout-ms", "5000")
    listed = d.cli("persona", "mcp", "list", "rec").stdout
    assert listed.splitlines()[0].split("\t")[:4] == ["crm", "http", http.url, "*"], listed
    assert listed.splitlines()[1].split("\t")[:5] == ["legacy", "sse", sse.url, "crm_lookup",
                                                     "5000 ms"], listed
    shown = json.loads(d.cli("persona", "mcp", "list", "rec", "--json").stdout)
    assert shown[0]["headers"] == [{"name": "Authorization",
                                    "env": [{"name": "CRM_TOKEN", "set": True}]}], shown
    with p.caller() as (ua, dlg, rtp):
        conn = p.server.wait_connection()
        names = tool_names(conn)
        for want in ("crm__crm_lookup", "crm__crm_notes", "legacy__crm_lookup",
                     "transfer_call", "hangup_call"):
            assert want in names, names
        assert "legacy__crm_notes" not in names, names
        assert ask(conn, "crm__crm_lookup", {"customer_id": "C-42"}) == "customer C-42: gold customer"
        assert ask(conn, "legacy__crm_lookup", {"customer_id": "C-7"}) == "customer C-7: gold customer"
        assert ask(conn, "crm__crm_notes", {"customer_id": "C-42"}) == "notes for C-42: prefers mornings"
        dlg.bye()
    assert http.calls() == [{"tool": "crm_lookup", "customer_id": "C-42"},
                            {"tool": "crm_notes", "customer_id": "C-42"}]
    assert sse.calls() == [{"tool": "crm_lookup", "customer_id": "C-7"}]
    rec = p.record()
    assert "mcp_failures" not in stats_of(rec), rec
    assert TOKEN not in d.log()
    clean(conn)


def test_servers_that_cannot_be_reached_leave_the_call_working_and_are_recorded(mcp_pbx, crm):
    sse = crm("sse")
    closed = free_port()  # nobody listens there
    p = mcp_pbx("openai", env={"CRM_TOKEN": TOKEN})
    d = p.d
    d.cli("persona", "mcp", "add", "rec", "crm", "--url", f"http://{LOOPBACK}:{closed}/mcp",
          "--header", "Authorization: Bearer ${CRM_TOKEN}")
    d.cli("persona", "mcp", "add", "rec", "wrong_token", "--url", sse.url, "--transport", "sse",
          "--header", "Authorization: Bearer nope")
    d.cli("persona", "mcp", "add", "rec", "no_env", "--url", sse.url, "--transport", "sse",
          "--header", "Authorization: Bearer ${CRM_TOKEN_NOT_SET_ANYWHERE}")
    t0 = time.monotonic()
    with p.caller() as (ua, dlg, rtp):
        answered = time.monotonic() - t0
        conn = p.server.wait_connection()
        names = tool_names(conn)
        assert "transfer_call" in names and "is_office_open" in names, names
        assert not [n for n in names if "__" in n], names
        # A built-in tool still goes to dialtone's registry (which answers).
        out = ask(conn, "is_office_open", {})
        assert "office hours" in out, out
        dlg.bye()
    assert answered < 8, f"the call took {answered:.1f} s to answer"
    rec = p.record()
    failures = {f["server"]: f["reason"] for f in stats_of(rec).get("mcp_failures", [])}
    assert set(failures) == {"crm", "wrong_token", "no_env"}, rec
    assert failures["crm"].startswith("the MCP handshake failed: cannot connect"), failures
    assert "401" in failures["wrong_token"], failures
    assert failures["no_env"] == ("environment variable CRM_TOKEN_NOT_SET_ANYWHERE "
                                  "(used in header Authorization) is not set"), failures
    assert all("nope" not in r and TOKEN not in r for r in failures.values()), failures
    warnings = [line for line in re.sub(r"\x1b\[[0-9;]*m", "", d.log()).splitlines()
                if "WARN" in line and "MCP server unavailable" in line]
    for server, reason in failures.items():
        assert any(f"server={server} " in w and reason in w for w in warnings), \
            f"no warning names {server}:\n" + "\n".join(warnings)
    assert sse.calls() == []
    clean(conn)


def test_a_stdio_server_runs_for_the_call_and_is_gone_after_it(mcp_pbx, tmp_path):
    log = tmp_path / "crm-stdio.log"
    p = mcp_pbx("openai")
    command = shlex.join([sys.executable, str(SERVER), "stdio", "--log", str(log)])
    p.d.cli("persona", "mcp", "add", "rec", "files", "--transport", "stdio", "--command", command,
            "--allow", "crm_notes")
    with p.caller() as (ua, dlg, rtp):
        conn = p.server.wait_connection()
        names = tool_names(conn)
        assert "files__crm_notes" in names and "files__crm_lookup" not in names, names
        assert ask(conn, "files__crm_notes", {"customer_id": "C-9"}) == "notes for C-9: prefers mornings"
        pids = [c["pid"] for c in map(json.loads, log.read_text().splitlines()) if c["tool"] == "started"]
        assert len(pids) == 1, log.read_text()
        dlg.bye()

    def gone() -> bool:
        try:
            os.kill(pids[0], 0)
        except ProcessLookupError:
            return True
        # A zombie is gone too: it only waits for its parent to read its status.
        try:
            return Path(f"/proc/{pids[0]}/stat").read_text().split(")")[-1].split()[0] == "Z"
        except OSError:
            return True

    wait_until(gone, 10, "the stdio MCP server to exit after the call")
    clean(conn)

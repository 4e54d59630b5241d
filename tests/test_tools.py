"""The tools an AI calls, through the LLM door: a scripted realtime model
inside a live call (tests/realtime_peer.py) calls them as functions, and
the answers it gets back are checked, together with what really happened
(leads in the database, an HTTP request received, phones ringing). The
MCP door reaches the same registry (tests/test_mcp.py, and
test_same_answers_through_both_doors below).

Cast: the AiPbx of tests/test_ai_bridge.py (trunk on 127.0.0.2, persona
"rec", its number), callers presenting +15550100123."""

from __future__ import annotations

import datetime
import http.server
import json
import threading
import time

import pytest

from conftest import LOOPBACK
from siptool import SipUA, answer_call, sdp_offer
from test_ai_bridge import PW, AiPbx, clean, wait_until

CALLER = "+15550100123"


@pytest.fixture
def tools_pbx(dialtone_factory):
    made: list[AiPbx] = []

    def make(**kw) -> AiPbx:
        p = AiPbx(dialtone_factory, "openai", **kw)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


def ask(conn, name: str, args: dict, timeout: float = 10.0) -> str:
    """The model calls `name`; what it is told."""
    return conn.wait_function_output(conn.function_call(name, args), timeout=timeout)


def noon_zone() -> str:
    """An Etc/GMT zone where it is around noon now, so that ranges around
    12:00 are 'now' whatever the time of the run."""
    hour = datetime.datetime.now(datetime.timezone.utc).hour
    offset = 12 - hour  # local = utc + offset; Etc/GMT-N is UTC+N
    return "UTC" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


def local_weekday(zone: str) -> str:
    hour = datetime.datetime.now(datetime.timezone.utc).hour
    local = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=12 - hour)
    return ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][local.weekday()]


def test_create_lead_twice_from_one_number_gives_one_lead_with_two_cases(tools_pbx):
    p = tools_pbx()
    with p.caller(from_uri=f"sip:{CALLER}@{LOOPBACK}") as (ua, dlg, rtp):
        conn = p.server.wait_connection()
        first = ask(conn, "create_lead", {"name": "Ann Smith", "intent": "wants a quote"})
        assert first.startswith("lead created"), first
        second = ask(conn, "create_lead", {"name": "Ann Smith", "intent": "follow-up",
                                            "classification": "customer", "summary": "called back"})
        assert second.startswith("case added"), second
        bad = ask(conn, "create_lead", {"name": "Ann", "intent": "x", "classification": "vip"})
        assert "lead, customer, spam, other" in bad, bad
        dlg.bye()
    leads = json.loads(p.d.cli("leads", "list", "--json").stdout)
    assert len(leads) == 1 and leads[0]["phone_number"] == CALLER, leads
    shown = json.loads(p.d.cli("leads", "show", leads[0]["id"], "--json").stdout)
    cases = shown["cases"]
    assert [c["intent"] for c in cases] == ["wants a quote", "follow-up"], shown
    assert cases[1]["classification"] == "customer" and cases[0]["persona"] == "rec", shown
    clean(conn)


def test_is_office_open_gives_each_of_its_four_answers(tools_pbx):
    p = tools_pbx()
    zone = noon_zone()
    day = local_weekday(zone)
    with p.caller() as (ua, dlg, rtp):
        conn = p.server.wait_connection()
        assert "no office hours" in ask(conn, "is_office_open", {})
        days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        other = days[(days.index(day) + 1) % 7]
        p.d.cli("hours", "set", "rec", "--tz", zone, f"--{day}", "08:00-11:00,11:00-13:30",
                f"--{other}", "09:00-17:00")
        assert ask(conn, "is_office_open", {}) == "Office is currently open"
        p.d.cli("hours", "set", "rec", f"--{day}", "07:00-08:00,14:00-18:00")
        assert ask(conn, "is_office_open", {}) == "Office is currently closed"
        p.d.cli("hours", "set", "rec", f"--{day}", "00:00-24:00")
        assert ask(conn, "is_office_open", {}) == "Office is open 24 hours today"
        p.d.cli("hours", "set", "rec", f"--{day}", "closed")
        assert ask(conn, "is_office_open", {}) == "Office is closed today"
        dlg.bye()
    clean(conn)


def test_lookup_contact_finds_a_number_stored_in_another_format(tools_pbx):
    p = tools_pbx()
    p.d.cli("contact", "add", "Ann Smith", "--number", "(555) 010-0123", "--company", "Acme")
    with p.caller() as (ua, dlg, rtp):
        conn = p.server.wait_connection()
        found = ask(conn, "lookup_contact", {"phone_number": "+15550100123"})
        assert "Ann Smith" in found and "Acme" in found, found
        missing = ask(conn, "lookup_contact", {"phone_number": "555 010 9999"})
        assert missing == "no contact found for +15550109999", missing
        junk = ask(conn, "lookup_contact", {"phone_number": "hello"})
        assert "not a phone number" in junk, junk
        dlg.bye()
    clean(conn)


def test_check_user_availability_says_which(tools_pbx):
    p = tools_pbx()
    d = p.d
    d.add_user("bob", PW)
    with p.caller() as (ua, dlg, rtp):
        conn = p.server.wait_connection()
        assert "no phone is registered" in ask(conn, "check_user_availability", {"user_id": "bob"})
        with SipUA(LOOPBACK, user="bob") as bob:
            assert bob.register("bob", PW, (LOOPBACK, d.sip_port)).code == 200
            assert ask(conn, "check_user_availability", {"user_id": "bob"}) == "bob is available"
            d.cli("user", "dnd", "bob", "on")
            assert "do not disturb" in ask(conn, "check_user_availability", {"user_id": "bob"})
        assert "no user" in ask(conn, "check_user_availability", {"user_id": "nobody"})
        dlg.bye()
    clean(conn)


class _Crm(http.server.BaseHTTPRequestHandler):
    seen: list[tuple[str, str | None]] = []

    def do_GET(self):  # noqa: N802 (the stdlib's name)
        _Crm.seen.append((self.path, self.headers.get("X-Token")))
        body = json.dumps({"customer": 7, "status": "gold"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def test_an_api_request_tool_calls_a_local_server_with_its_placeholders_filled(tools_pbx):
    srv = http.server.ThreadingHTTPServer((LOOPBACK, 0), _Crm)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        p = tools_pbx(env={"CRM_TOKEN": "s3cr3t"})
        port = srv.server_address[1]
        p.d.cli("tool", "add", "rec", "crm_lookup", "--kind", "api-request",
                "--url", f"http://{LOOPBACK}:{port}/customers/{{id}}?via={{channel}}",
                "--header", "X-Token: ${CRM_TOKEN}", "--var", "id:number:the customer number",
                "--var", "channel:options:web|phone", "--description", "Look up a customer")
        with p.caller() as (ua, dlg, rtp):
            conn = p.server.wait_connection()
            names = [t["name"] for t in conn.session.get("tools", [])]
            assert "crm_lookup" in names and "transfer_call" in names, names
            out = ask(conn, "crm_lookup", {"id": 7, "channel": "phone"})
            assert out.startswith("HTTP 200") and '"gold"' in out, out
            assert _Crm.seen[-1] == ("/customers/7?via=phone", "s3cr3t"), _Crm.seen
            bad = ask(conn, "crm_lookup", {"id": 7, "channel": "fax"})
            assert "web, phone" in bad, bad
            dlg.bye()
        clean(conn)
    finally:
        srv.shutdown()


def _ringing_phone(d, user: str, answer: bool):
    """A registered Python phone that rings (180) and answers or not."""
    ua = SipUA(LOOPBACK, user=user)
    assert ua.register(user, PW, (LOOPBACK, d.sip_port)).code == 200
    state = {"rang": 0, "answered": False}

    def run():
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            inv = ua.wait_request("INVITE", timeout=0.5)
            if inv is None:
                continue
            state["rang"] += 1
            if answer:
                state["answered"] = answer_call(ua, inv, sdp_offer(LOOPBACK, 40100)) is not None
                return
            ua.reply(inv, 180, "Ringing", to_tag=f"t{state['rang']}")
            cancel = ua.wait_request("CANCEL", timeout=10)
            if cancel is not None:
                ua.reply(cancel, 200, "OK")
                ua.reply(inv, 487, "Request Terminated", to_tag=f"t{state['rang']}")

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return ua, state, t


def test_a_queue_rings_its_members_by_strategy(tools_pbx):
    """Round-robin with a 2 s timeout: the member whose turn it is rings
    first and does not answer, the next one answers; the caller is
    transferred to them."""
    p = tools_pbx()
    d = p.d
    for u in ("bob", "carol", "dave"):
        d.add_user(u, PW)
    d.cli("queue", "add", "support", "--members", "bob,carol,dave", "--strategy", "round-robin",
          "--timeout", "2")
    d.cli("user", "dnd", "dave", "on")
    bob, bob_state, bt = _ringing_phone(d, "bob", answer=False)
    carol, carol_state, ct = _ringing_phone(d, "carol", answer=True)
    try:
        with p.caller() as (ua, dlg, rtp):
            conn = p.server.wait_connection()
            conn.function_call("transfer_call", {"destination": "queue:support"})
            # Answered: the caller is bridged to carol and the session closes.
            wait_until(lambda: conn.closed, 20, "the queue transfer to complete")
            assert bob_state["rang"] == 1 and carol_state["answered"], (bob_state, carol_state)
            dlg.bye()
    finally:
        bob.close()
        carol.close()
    clean(conn)


def test_same_answers_through_both_doors(tools_pbx):
    """lookup_contact asked by the model in a call and by an MCP client
    gives the same answer: one registry."""
    mcp_door = pytest.importorskip("test_mcp")
    p = tools_pbx()
    p.d.cli("contact", "add", "Ann Smith", "--number", "(555) 010-0123")
    key = p.d.cli("apikey", "create", "--account", "default").stdout.strip().splitlines()[-1]
    with p.caller() as (ua, dlg, rtp):
        conn = p.server.wait_connection()
        ai = ask(conn, "lookup_contact", {"phone_number": "+15550100123"})
        via_mcp = mcp_door.call_tool_text(p.d, key, "lookup_contact", {"phone_number": "+15550100123"})
        assert ai == via_mcp, (ai, via_mcp)
        dlg.bye()
    clean(conn)

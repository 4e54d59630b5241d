"""End-to-end tests of the CLI for what the MCP server uses: `apikey
create|list|revoke`, `hours set|show|clear`, `user dnd` and the dnd column of
`user list`, and `leads list|show` — against the real binary and its own
SQLite database (the `dialtone` fixture: a running switch, so the CLI works
beside it as it would in production).

What they show: a key is printed once, alone on the last line, and only its
prefix is ever listed or stored in clear; revoked keys stay listed; office
hours round-trip with split shifts, all-day opening and closure days, and
every bad time, range, date, zone or name is refused with a message that says
what is allowed, changing nothing; do-not-disturb switches per user; leads
written by the switch are listed and shown with their cases in order.
"""

from __future__ import annotations

import json
import re
import sqlite3

URL = "wss://api.openai.com/v1/realtime"
KEY = re.compile(r"^dtk_[A-Za-z0-9]{40}$")
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def refused(d, *args: str) -> str:
    """Runs a command that must fail; returns its stderr."""
    cp = d.cli(*args, check=False)
    assert cp.returncode != 0, f"`{' '.join(args)}` succeeded:\n{cp.stdout}"
    return cp.stderr


def db_rows(d, sql: str, params: tuple = ()) -> list[tuple]:
    db = sqlite3.connect(d.workdir / "dialtone.db", timeout=10)
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


def add_persona(d, name: str) -> None:
    d.cli("persona", "add", name, "--provider", "openai", "--url", URL,
          "--instructions", "You are the receptionist.")


# --------------------------------------------------------------------------
# apikey

def create_key(d, *args: str) -> tuple[str, str]:
    """`apikey create ARGS`: (the key from the last line, the whole output)."""
    out = d.cli("apikey", "create", *args).stdout
    lines = out.splitlines()
    assert len(lines) >= 2, out
    assert KEY.match(lines[-1]), f"last line is not a key:\n{out}"
    assert lines[-1] not in "\n".join(lines[:-1]), "the key is printed once"
    return lines[-1], out


def key_lines(d) -> list[list[str]]:
    return [line.split("\t") for line in d.cli("apikey", "list").stdout.splitlines()]


def test_apikey_create_list_revoke(dialtone):
    assert dialtone.cli("apikey", "list").stdout == ""
    key, out = create_key(dialtone, "--account", "acme", "--name", "claude desktop")
    assert "acme" in out and "only" in out, out
    other, _ = create_key(dialtone, "--account", "acme")
    assert other != key

    # The account was created on the way.
    assert db_rows(dialtone, "SELECT name FROM accounts WHERE name = 'acme'") == [("acme",)]

    lines = key_lines(dialtone)
    assert len(lines) == 2, lines
    listing = dialtone.cli("apikey", "list").stdout
    assert key not in listing and other not in listing
    by_prefix = {line[1]: line for line in lines}
    first = by_prefix[key[:12] + "…"]
    second = by_prefix[other[:12] + "…"]
    assert len(first) == 7, first
    key_id, _, label, account, created, last_used, revoked = first
    assert (label, account, last_used, revoked) == ("claude desktop", "acme", "never", "-")
    assert RFC3339.match(created), created
    assert second[2] == "-", second

    # Only the hash is stored.
    rows = db_rows(dialtone, "SELECT * FROM api_keys")
    assert len(rows) == 2
    assert key not in repr(rows) and key[12:] not in repr(rows) and other not in repr(rows)

    out = dialtone.cli("apikey", "revoke", key_id).stdout
    assert "revoked" in out and key_id in out, out
    revoked_line = next(line for line in key_lines(dialtone) if line[0] == key_id)
    assert RFC3339.match(revoked_line[6]), revoked_line
    assert len(key_lines(dialtone)) == 2, "a revoked key stays listed"
    assert "already revoked" in refused(dialtone, "apikey", "revoke", key_id)
    err = refused(dialtone, "apikey", "revoke", "no-such-key")
    assert "no API key no-such-key" in err and "apikey list" in err, err


def test_apikey_refuses_bad_input(dialtone):
    assert "--account" in refused(dialtone, "apikey", "create")
    assert "--account" in refused(dialtone, "apikey", "create", "--account", "")
    assert "revoke" in refused(dialtone, "apikey", "revoke")
    assert dialtone.cli("apikey", "list").stdout == ""


# --------------------------------------------------------------------------
# hours

def hours(d, name: str) -> dict:
    return json.loads(d.cli("hours", "show", name, "--json").stdout)


def test_hours_set_show_clear(dialtone):
    add_persona(dialtone, "receptionist")
    text = dialtone.cli("hours", "show", "receptionist").stdout
    assert "no office hours configured" in text and "timezone  UTC" in text, text
    assert hours(dialtone, "receptionist")["configured"] is False

    out = dialtone.cli(
        "hours", "set", "receptionist", "--tz", "Europe/Berlin",
        "--mon", "09:00-12:00,13:00-17:00", "--tue", "09:00-12:00, 13:00-17:00",
        "--wed", "09:00-12:00", "--thu", "08:00-12:00,12:00-18:30", "--fri", "09:00-15:00",
        "--sat", "closed", "--sun", "",
        "--closed-on", "2026-12-26", "--closed-on", "2026-12-25").stdout
    assert "updated" in out, out
    shown = hours(dialtone, "receptionist")
    assert shown == {
        "persona": "receptionist",
        "timezone": "Europe/Berlin",
        "configured": True,
        "weekly": {
            "monday": ["09:00-12:00", "13:00-17:00"],
            "tuesday": ["09:00-12:00", "13:00-17:00"],
            "wednesday": ["09:00-12:00"],
            "thursday": ["08:00-12:00", "12:00-18:30"],
            "friday": ["09:00-15:00"],
            "saturday": [],
            "sunday": [],
        },
        "closures": ["2026-12-25", "2026-12-26"],
    }
    text = dialtone.cli("hours", "show", "receptionist").stdout
    for expected in ("timezone  Europe/Berlin", "Monday    09:00-12:00, 13:00-17:00",
                     "Saturday  closed", "Sunday    closed",
                     "closures  2026-12-25, 2026-12-26"):
        assert expected in text, f"{expected!r} missing from:\n{text}"
    persona = json.loads(dialtone.cli("persona", "show", "receptionist", "--json").stdout)
    assert persona["timezone"] == "Europe/Berlin"

    # A day option replaces that day only; closures come and go.
    dialtone.cli("hours", "set", "receptionist", "--wed", "00:00-24:00",
                 "--sat", "10:00-13:00", "--open-on", "2026-12-26",
                 "--closed-on", "2027-01-01")
    shown = hours(dialtone, "receptionist")
    assert shown["weekly"]["wednesday"] == ["00:00-24:00"]
    assert shown["weekly"]["saturday"] == ["10:00-13:00"]
    assert shown["weekly"]["monday"] == ["09:00-12:00", "13:00-17:00"]
    assert shown["closures"] == ["2026-12-25", "2027-01-01"]
    assert shown["timezone"] == "Europe/Berlin"

    out = dialtone.cli("hours", "clear", "receptionist").stdout
    assert "cleared" in out, out
    assert hours(dialtone, "receptionist")["configured"] is False
    assert "no office hours configured" in dialtone.cli("hours", "show", "receptionist").stdout

    # Removing the persona removes its hours.
    dialtone.cli("hours", "set", "receptionist", "--mon", "09:00-17:00",
                 "--closed-on", "2026-12-25")
    dialtone.cli("persona", "remove", "receptionist")
    assert db_rows(dialtone, "SELECT COUNT(*) FROM office_hours") == [(0,)]
    assert db_rows(dialtone, "SELECT COUNT(*) FROM office_closures") == [(0,)]


def test_hours_bad_input_is_refused_and_changes_nothing(dialtone):
    add_persona(dialtone, "receptionist")
    dialtone.cli("hours", "set", "receptionist", "--mon", "09:00-17:00",
                 "--closed-on", "2026-12-25")
    before = hours(dialtone, "receptionist")

    cases = [
        (["--mon", "09:00-25:00"], ["--mon", "25:00", "HH:MM"]),
        (["--tue", "9:00-17:00"], ["--tue", "HH:MM"]),
        (["--wed", "17:00-09:00"], ["--wed", "open before it closes"]),
        (["--thu", "09:00-09:00"], ["--thu", "open before it closes"]),
        (["--fri", "09:00-13:00,12:00-17:00"], ["--fri", "overlap"]),
        (["--sat", "13:00-17:00,09:00-12:00"], ["--sat", "out of order"]),
        (["--sun", "09:00"], ["--sun", "HH:MM-HH:MM"]),
        (["--mon", "24:00-24:00"], ["--mon", "00:00 to 23:59"]),
        (["--closed-on", "2026-02-30"], ["--closed-on", "YYYY-MM-DD"]),
        (["--closed-on", "25.12.2026"], ["--closed-on", "YYYY-MM-DD"]),
        (["--open-on", "2026-13-01"], ["--open-on", "YYYY-MM-DD"]),
        (["--closed-on", "2026-12-24", "--open-on", "2026-12-24"], ["both"]),
        (["--tz", "Mars/Olympus"], ["--tz", "IANA time zone"]),
        ([], ["nothing to set", "--mon"]),
        # A valid change alongside a bad one is not applied either.
        (["--tue", "09:00-12:00", "--wed", "nine to five"], ["--wed"]),
    ]
    for args, expected in cases:
        err = refused(dialtone, "hours", "set", "receptionist", *args)
        for word in expected:
            assert word in err, f"{args}: {word!r} missing from: {err}"
    assert hours(dialtone, "receptionist") == before

    for command in (["hours", "set", "ghost", "--mon", "09:00-17:00"], ["hours", "show", "ghost"],
                    ["hours", "clear", "ghost"]):
        err = refused(dialtone, *command)
        assert "no persona ghost" in err, err


# --------------------------------------------------------------------------
# user dnd

def dnd_column(d) -> dict[str, str]:
    lines = [line.split("\t") for line in d.cli("user", "list").stdout.splitlines()]
    assert all(len(line) == 5 for line in lines), lines  # ..., dnd, srtp=
    return {line[0]: line[3] for line in lines}


def test_user_dnd(dialtone):
    dialtone.add_user("1001", "secret")
    dialtone.add_user("1002", "secret")
    assert dnd_column(dialtone) == {"1001": "-", "1002": "-"}
    assert dialtone.users() == ["1001", "1002"], "the first column is still the username"

    out = dialtone.cli("user", "dnd", "1001", "on").stdout
    assert "1001" in out and "on" in out, out
    assert dnd_column(dialtone) == {"1001": "dnd", "1002": "-"}
    dialtone.cli("user", "dnd", "1001", "on")
    assert dnd_column(dialtone) == {"1001": "dnd", "1002": "-"}
    dialtone.cli("user", "dnd", "1001", "off")
    assert dnd_column(dialtone) == {"1001": "-", "1002": "-"}

    assert "no user ghost" in refused(dialtone, "user", "dnd", "ghost", "on")
    err = refused(dialtone, "user", "dnd", "1001", "maybe")
    assert "on" in err and "off" in err, err


# --------------------------------------------------------------------------
# leads

T0 = 1_790_000_000  # unix seconds, 2026


def seed_leads(d) -> None:
    """Two leads as the switch's create_lead tool would have written them."""
    db = sqlite3.connect(d.workdir / "dialtone.db", timeout=10)
    try:
        with db:
            db.execute("INSERT INTO accounts (id, name, created_at) VALUES ('acc-t', 'acme', ?)",
                       (T0,))
            db.execute("INSERT INTO leads (id, account_id, phone_number, name, created_at, "
                       "updated_at) VALUES ('lead-1', 'acc-t', '+15550100', 'Zoë Müller', ?, ?)",
                       (T0, T0 + 600))
            db.execute("INSERT INTO leads (id, account_id, phone_number, name, created_at, "
                       "updated_at) VALUES ('lead-2', 'acc-t', '+15550101', 'Bob', ?, ?)",
                       (T0 + 60, T0 + 60))
            cases = [
                ("case-1", "lead-1", 1, "quote", "lead", "Wants 40 chairs.",
                 "Call back after 3 pm.\nAsk for the fax.", "call-1", "receptionist", T0),
                ("case-2", "lead-1", 2, "delivery date", "customer", None, None, None, None,
                 T0 + 600),
                ("case-3", "lead-2", 1, "cold call", "spam", None, None, "call-3",
                 "receptionist", T0 + 60),
            ]
            db.executemany(
                "INSERT INTO lead_cases (id, lead_id, seq, intent, classification, summary, "
                "notes, call_id, persona, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                cases)
    finally:
        db.close()


def test_leads_list_and_show(dialtone):
    assert dialtone.cli("leads", "list").stdout == ""
    assert json.loads(dialtone.cli("leads", "list", "--json").stdout) == []
    err = refused(dialtone, "leads", "show", "lead-1")
    assert "no lead lead-1" in err and "leads list" in err, err

    seed_leads(dialtone)
    lines = [line.split("\t") for line in dialtone.cli("leads", "list").stdout.splitlines()]
    assert [line[:4] for line in lines] == [
        ["lead-1", "+15550100", "Zoë Müller", "2 cases"],
        ["lead-2", "+15550101", "Bob", "1 case"],
    ], lines
    assert all(RFC3339.match(line[4]) for line in lines), lines

    listed = json.loads(dialtone.cli("leads", "list", "--json").stdout)
    assert [(lead["id"], lead["cases"], lead["account"]) for lead in listed] == [
        ("lead-1", 2, "acme"), ("lead-2", 1, "acme")]

    text = dialtone.cli("leads", "show", "lead-1").stdout
    for expected in ("+15550100", "Zoë Müller", "acme", "quote", "lead", "Wants 40 chairs.",
                     "Call back after 3 pm.", "Ask for the fax.", "call-1", "receptionist",
                     "delivery date", "customer"):
        assert expected in text, f"{expected!r} missing from:\n{text}"
    assert text.index("quote") < text.index("delivery date"), "cases oldest first"

    one = json.loads(dialtone.cli("leads", "show", "lead-1", "--json").stdout)
    assert (one["phone_number"], one["name"], one["account"]) == ("+15550100", "Zoë Müller",
                                                                  "acme")
    assert [c["id"] for c in one["cases"]] == ["case-1", "case-2"]
    assert one["cases"][0] == {
        "id": "case-1", "intent": "quote", "classification": "lead",
        "summary": "Wants 40 chairs.", "notes": "Call back after 3 pm.\nAsk for the fax.",
        "call_id": "call-1", "persona": "receptionist", "created_at": T0,
    }
    assert one["cases"][1]["summary"] is None

"""End-to-end tests of the persona CLI (`dialtone persona add|update|list|
show|remove`) and of `calls show`, against the real binary and its own
SQLite database (the `dialtone` fixture: a running switch, so the CLI works
beside it as it would in production).

What they show: a persona round-trips through add/list/show/update/remove
with the documented defaults; every invalid setting is refused with a message
that says what is wrong and what is allowed, and nothing is stored; no output
ever contains a provider key, even when its variable is set; numbers cannot
route to a persona that does not exist, and a persona cannot be removed
while a number routes to it; `calls show` prints one record in full with its
transcript, and refuses an unknown id.
"""

from __future__ import annotations

import json
import sqlite3

import pytest

URL = "wss://api.openai.com/v1/realtime"
SECRET = "sk-test-THIS-MUST-NEVER-BE-PRINTED-1234567890"
UNSET_VAR = "DIALTONE_PERSONA_TEST_NEVER_SET_KEY"  # conftest drops DIALTONE_* from the env


def add(d, name: str, *extra: str, check: bool = True, env: dict | None = None):
    args = ["persona", "add", name, "--provider", "openai", "--url", URL]
    if not any(a.startswith("--instructions") for a in extra):
        args += ["--instructions", "You are the receptionist."]
    return d.cli(*args, *extra, check=check, env=env)


def show(d, name: str, env: dict | None = None) -> dict:
    return json.loads(d.cli("persona", "show", name, "--json", env=env).stdout)


def names(d) -> list[str]:
    return [line.split("\t")[0] for line in d.cli("persona", "list").stdout.splitlines()]


def refused(d, *args: str, env: dict | None = None) -> str:
    """Runs a command that must fail; returns its stderr."""
    cp = d.cli(*args, check=False, env=env)
    assert cp.returncode != 0, f"`{' '.join(args)}` succeeded:\n{cp.stdout}"
    return cp.stderr


# --------------------------------------------------------------------------
# add / list / show / update / remove

def test_round_trip(dialtone, tmp_path):
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("Hallo {contact_name}, es ist {time} am {date}.\n"
                      "Anrufer {caller_number} hat {called_number} gewählt.\n")
    out = dialtone.cli(
        "persona", "add", "receptionist", "--provider", "gemini",
        "--url", "ws://127.0.0.1:9/live", "--model", "gemini-live-x", "--voice", "Puck",
        "--instructions-file", str(prompt), "--greeting", "Praxis Müller, guten Tag!",
        "--account", "praxis", "--api-key-env", "PRAXIS_GEMINI_KEY",
        "--timezone", "Europe/Berlin", "--turn-detection", "semantic_vad",
        "--vad-threshold", "0.65", "--vad-prefix-padding-ms", "300", "--vad-silence-ms", "500",
        "--vad-eagerness", "high", "--barge-in-min-ms", "250", "--max-duration-secs", "600",
        "--idle-timeout-secs", "20", "--fallback", "user:1001",
    ).stdout
    assert "persona receptionist added" in out, out
    add(dialtone, "after-hours")

    p = show(dialtone, "receptionist")
    assert p["name"] == "receptionist" and p["account"] == "praxis"
    assert (p["provider"], p["url"], p["model"], p["voice"]) == \
        ("gemini", "ws://127.0.0.1:9/live", "gemini-live-x", "Puck")
    # The variables are kept verbatim for the switch to fill per call.
    assert p["instructions"] == prompt.read_text()
    assert p["greeting"] == "Praxis Müller, guten Tag!"
    assert (p["api_key_env"], p["api_key_env_is_default"]) == ("PRAXIS_GEMINI_KEY", False)
    assert (p["timezone"], p["turn_detection"], p["vad_threshold"], p["vad_prefix_padding_ms"],
            p["vad_silence_ms"], p["vad_eagerness"]) == \
        ("Europe/Berlin", "semantic_vad", 0.65, 300, 500, "high")
    assert (p["barge_in_min_ms"], p["max_duration_secs"], p["idle_timeout_secs"]) == (250, 600, 20)
    assert p["fallback"] == "user:1001"
    assert p["transcription_model"] == "default", "gemini: any non-null model turns it on"

    # The defaults of add.
    d = show(dialtone, "after-hours")
    assert d["account"] == "default"
    assert (d["model"], d["voice"], d["greeting"], d["fallback"]) == (None, None, None, None)
    assert (d["api_key_env"], d["api_key_env_is_default"]) == ("OPENAI_API_KEY", True)
    assert (d["timezone"], d["turn_detection"]) == ("UTC", "server_vad")
    assert (d["vad_threshold"], d["vad_prefix_padding_ms"], d["vad_silence_ms"],
            d["vad_eagerness"]) == (None, None, None, None)
    assert (d["barge_in_min_ms"], d["max_duration_secs"], d["idle_timeout_secs"]) == (0, 0, 30)
    assert d["transcription_model"] == "gpt-4o-mini-transcribe"

    # list: name, provider, model or "default", voice or "default", account name; by name.
    lines = [line.split("\t") for line in dialtone.cli("persona", "list").stdout.splitlines()]
    assert lines == [["after-hours", "openai", "default", "default", "default"],
                     ["receptionist", "gemini", "gemini-live-x", "Puck", "praxis"]]

    # show (text): every field, the instructions in full.
    text = dialtone.cli("persona", "show", "receptionist").stdout
    for expected in ("provider:", "gemini", "Europe/Berlin", "semantic_vad", "user:1001",
                     "PRAXIS_GEMINI_KEY (not set)", "Praxis Müller, guten Tag!",
                     "Hallo {contact_name}, es ist {time} am {date}.",
                     "Anrufer {caller_number} hat {called_number} gewählt."):
        assert expected in text, f"{expected!r} missing from:\n{text}"

    # update: given options replace, --clear-… unset, the rest is kept.
    out = dialtone.cli("persona", "update", "receptionist", "--instructions", "Be brief.",
                       "--clear-greeting", "--clear-fallback", "--clear-model", "--clear-voice",
                       "--timezone", "America/New_York", "--vad-threshold", "0.3",
                       "--no-transcription", "--account", "default").stdout
    assert "persona receptionist updated" in out, out
    u = show(dialtone, "receptionist")
    assert (u["instructions"], u["greeting"], u["fallback"], u["model"], u["voice"]) == \
        ("Be brief.", None, None, None, None)
    assert (u["timezone"], u["vad_threshold"], u["transcription_model"], u["account"]) == \
        ("America/New_York", 0.3, None, "default")
    assert (u["provider"], u["url"], u["vad_eagerness"], u["barge_in_min_ms"]) == \
        ("gemini", "ws://127.0.0.1:9/live", "high", 250), "not given: kept"
    assert u["created_at"] == p["created_at"] and u["updated_at"] >= p["updated_at"]
    dialtone.cli("persona", "update", "receptionist", "--greeting", "Hi!", "--clear-vad")
    v = show(dialtone, "receptionist")
    assert v["greeting"] == "Hi!"
    assert (v["vad_threshold"], v["vad_prefix_padding_ms"], v["vad_silence_ms"],
            v["vad_eagerness"]) == (None, None, None, None)

    assert "nothing to update" in refused(dialtone, "persona", "update", "receptionist")
    assert "no persona ghost" in refused(dialtone, "persona", "update", "ghost", "--voice", "x")
    assert "already exists" in add(dialtone, "receptionist", check=False).stderr

    out = dialtone.cli("persona", "remove", "receptionist").stdout
    assert "persona receptionist removed" in out, out
    assert names(dialtone) == ["after-hours"]
    assert "no persona receptionist" in refused(dialtone, "persona", "remove", "receptionist")
    assert "no persona receptionist" in refused(dialtone, "persona", "show", "receptionist")


# --------------------------------------------------------------------------
# validation: each refused with a clear message, nothing stored

@pytest.mark.parametrize("args, message", [
    (["--provider", "anthropic"], ["anthropic", "openai", "gemini"]),
    (["--url", "https://api.openai.com/v1/realtime"], ["ws://", "wss://"]),
    (["--url", "wss://"], ["ws://", "wss://"]),
    (["--instructions-file", "/nonexistent/prompt.txt"], ["/nonexistent/prompt.txt", "cannot read"]),
    (["--timezone", "Mars/Olympus_Mons"], ["Mars/Olympus_Mons", "IANA"]),
    (["--fallback", "trunk:carrier"], ["trunk:carrier", "user:NAME", "number:N", "queue:NAME"]),
    (["--fallback", "number:12ab"], ["number:12ab", "number:N"]),
    (["--vad-threshold", "1.5"], ["1.5", "0.0", "1.0"]),
    (["--turn-detection", "push_to_talk"], ["push_to_talk", "server_vad", "semantic_vad", "none"]),
    (["--vad-eagerness", "eager"], ["eager", "low", "medium", "high", "auto"]),
    (["--instructions", ""], ["--instructions", "empty"]),
], ids=["provider", "url-scheme", "url-no-host", "instructions-file-missing", "timezone",
        "fallback-kind", "fallback-number", "vad-threshold", "turn-detection", "eagerness",
        "instructions-empty"])
def test_invalid_settings_are_refused(dialtone, args, message):
    base = ["persona", "add", "bad", "--provider", "openai", "--url", URL,
            "--instructions", "Hello."]
    # The option under test replaces its default above.
    flag = args[0]
    if flag in base:
        i = base.index(flag)
        del base[i:i + 2]
    if flag == "--instructions-file":
        i = base.index("--instructions")
        del base[i:i + 2]
    err = refused(dialtone, *base, *args)
    for m in message:
        assert m in err, f"{m!r} missing from:\n{err}"
    assert names(dialtone) == []


def test_both_instruction_flags_refused(dialtone, tmp_path):
    prompt = tmp_path / "p.txt"
    prompt.write_text("Hello.")
    err = refused(dialtone, "persona", "add", "bad", "--provider", "openai", "--url", URL,
                  "--instructions", "Hi.", "--instructions-file", str(prompt))
    assert "--instructions" in err and "--instructions-file" in err, err
    assert "cannot be used with" in err, err
    assert names(dialtone) == []


def test_missing_or_empty_instructions_refused(dialtone, tmp_path):
    err = refused(dialtone, "persona", "add", "bad", "--provider", "openai", "--url", URL)
    assert "--instructions TEXT or --instructions-file FILE" in err, err
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    err = refused(dialtone, "persona", "add", "bad", "--provider", "openai", "--url", URL,
                  "--instructions-file", str(empty))
    assert "is empty" in err, err
    assert "needs --url" in refused(dialtone, "persona", "add", "bad", "--provider", "openai",
                                    "--instructions", "x")
    assert "needs --provider" in refused(dialtone, "persona", "add", "bad", "--url", URL,
                                         "--instructions", "x")
    assert names(dialtone) == []


def test_bad_names_and_update_values_refused(dialtone):
    for bad in ("has space", "a/b", "x" * 65):
        assert "invalid persona name" in add(dialtone, bad, check=False).stderr
    add(dialtone, "ok")
    err = refused(dialtone, "persona", "update", "ok", "--timezone", "Nowhere/City")
    assert "Nowhere/City" in err, err
    err = refused(dialtone, "persona", "update", "ok", "--url", "http://x")
    assert "ws://" in err, err
    err = refused(dialtone, "persona", "update", "ok", "--greeting", "x", "--clear-greeting")
    assert "cannot be used with" in err, err
    assert show(dialtone, "ok")["timezone"] == "UTC", "nothing changed"


# --------------------------------------------------------------------------
# keys: never stored, never printed

def test_show_never_prints_the_key(dialtone):
    env = {"OPENAI_API_KEY": SECRET, "MY_AGENT_KEY": SECRET}
    add(dialtone, "default-key", env=env)
    add(dialtone, "own-key", "--api-key-env", "MY_AGENT_KEY", env=env)
    add(dialtone, "unset-key", "--api-key-env", UNSET_VAR, env=env)

    outputs = []  # stdout of: show, show --json for each, then list
    for name in ("default-key", "own-key", "unset-key"):
        for extra in ([], ["--json"]):
            cp = dialtone.cli("persona", "show", name, *extra, env=env)
            assert SECRET not in cp.stderr and "THIS-MUST-NEVER" not in cp.stderr, cp.stderr
            outputs.append(cp.stdout)
    cp = dialtone.cli("persona", "list", env=env)
    outputs.append(cp.stdout + cp.stderr)
    for out in outputs:
        assert SECRET not in out and "THIS-MUST-NEVER" not in out, out

    assert "OPENAI_API_KEY (set)" in outputs[0], outputs[0]
    assert "MY_AGENT_KEY (set)" in outputs[2], outputs[2]
    assert f"{UNSET_VAR} (not set)" in outputs[4], outputs[4]
    assert (json.loads(outputs[3])["api_key_set"], json.loads(outputs[5])["api_key_set"]) == \
        (True, False)
    # Without the variable in the environment: not set.
    no_env = dialtone.cli("persona", "show", "own-key").stdout
    assert "MY_AGENT_KEY (not set)" in no_env, no_env

    # The key pasted where the variable's NAME belongs: refused, and not echoed.
    cp = add(dialtone, "pasted", "--api-key-env", SECRET, check=False)
    assert cp.returncode != 0
    assert "NAME of the environment variable" in cp.stderr, cp.stderr
    assert SECRET not in cp.stdout + cp.stderr

    # And the database holds no key.
    db = sqlite3.connect(dialtone.workdir / "dialtone.db")
    try:
        rows = db.execute("SELECT * FROM personas").fetchall()
    finally:
        db.close()
    assert len(rows) == 3 and SECRET not in repr(rows)


# --------------------------------------------------------------------------
# numbers and personas

def test_number_to_a_missing_persona_is_refused(dialtone):
    err = refused(dialtone, "number", "add", "+15550100", "--to", "persona:ghost")
    assert "no such persona" in err, err
    assert dialtone.cli("number", "list").stdout.strip() == ""
    add(dialtone, "ghost")
    dialtone.add_number("+15550100", "persona:ghost")
    assert "persona:ghost" in dialtone.cli("number", "list").stdout


def test_remove_is_refused_while_a_number_routes_to_it(dialtone):
    add(dialtone, "receptionist")
    dialtone.add_number("+15550100", "persona:receptionist")
    dialtone.add_number("+15550199", "persona:receptionist")
    err = refused(dialtone, "persona", "remove", "receptionist")
    assert "+15550100" in err and "+15550199" in err, err
    assert names(dialtone) == ["receptionist"]
    dialtone.cli("number", "remove", "+15550100")
    dialtone.cli("number", "remove", "+15550199")
    dialtone.cli("persona", "remove", "receptionist")
    assert names(dialtone) == []


# --------------------------------------------------------------------------
# calls show

def test_calls_show_unknown_id_is_an_error(dialtone):
    err = refused(dialtone, "calls", "show", "no-such-call")
    assert "no call no-such-call" in err, err
    assert "no call no-such-call" in refused(dialtone, "calls", "show", "no-such-call", "--json")


def test_calls_show_prints_the_record_and_its_transcript(dialtone):
    # A finished AI call, as the switch would have recorded it.
    transcript = [
        {"side": "agent", "text": "Praxis Müller, guten Tag!", "at_ms": 400},
        {"side": "caller", "text": "I'd like an appointment.", "at_ms": 3_250},
        {"side": "agent", "text": "Tomorrow at ten?", "at_ms": 75_900},
    ]
    t0 = 1_700_000_000_000
    db = sqlite3.connect(dialtone.workdir / "dialtone.db", timeout=10)
    try:
        with db:
            db.execute(
                "INSERT INTO calls (id, node, direction, from_uri, to_uri, caller, callee, "
                "started_at, answered_at, ended_at, outcome, hangup_cause, hangup_side, codecs, "
                "legs, stats, recording, persona, transcript) VALUES "
                "(?, 'node-x', 'inbound', 'sip:+15550100@carrier', 'sip:+15550199@dialtone', "
                "'+15550100', '+15550199', ?, ?, ?, 'answered', 'BYE', 'caller', 'PCMU/8000', "
                "?, NULL, NULL, 'receptionist', ?)",
                ("call-ai-1", t0, t0 + 100, t0 + 80_100,
                 json.dumps([{"label": "caller"}, {"label": "persona:receptionist"}]),
                 json.dumps(transcript)))
    finally:
        db.close()

    text = dialtone.cli("calls", "show", "call-ai-1").stdout
    for expected in ("call-ai-1", "inbound", "+15550100", "+15550199", "answered", "BYE",
                     "80s", "PCMU/8000", "receptionist", "persona:receptionist",
                     "[00:00] agent: Praxis Müller, guten Tag!",
                     "[00:03] caller: I'd like an appointment.",
                     "[01:15] agent: Tomorrow at ten?"):
        assert expected in text, f"{expected!r} missing from:\n{text}"

    one = json.loads(dialtone.cli("calls", "show", "call-ai-1", "--json").stdout)
    assert (one["persona"], one["transcript"]) == ("receptionist", transcript)
    listed = [c for c in dialtone.calls() if c["id"] == "call-ai-1"]
    assert len(listed) == 1 and listed[0] == one
    line = next(line for line in dialtone.cli("calls", "list").stdout.splitlines()
                if line.startswith("call-ai-1"))
    assert line.endswith("persona:receptionist"), line

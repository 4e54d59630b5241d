"""End-to-end tests of the CLI for the data the MCP tools work on: account
settings (`account set|list`), contacts (`contact add|import|list|remove`),
queues (`queue add|list|show|members|remove`) and personas' own tools
(`tool add|list|show|remove`), against the real binary and its own SQLite
database (the `dialtone` fixture: a running switch beside the CLI).

What they show: numbers are kept as written and normalised to E.164 in the
account's region; a CSV and a vCard import report every row they skip and
why, and importing twice adds nothing; a queue needs existing users, cannot
be removed while a number routes to it, and a number cannot route to a
missing queue; each tool kind round-trips, secrets stay `${ENV}` references
(shown as set or not, never expanded), and every invalid tool is refused
with a message saying what is wrong, storing nothing.
"""

from __future__ import annotations

import json

import pytest


def refused(d, *args: str) -> str:
    """Runs a command that must fail; returns its stderr."""
    cp = d.cli(*args, check=False)
    assert cp.returncode != 0, f"`{' '.join(args)}` succeeded:\n{cp.stdout}"
    return cp.stderr


def contacts(d, *extra: str) -> list[dict]:
    return json.loads(d.cli("contact", "list", "--json", *extra).stdout)


def accounts(d) -> dict[str, list[str]]:
    return {line.split("\t")[0]: line.split("\t")
            for line in d.cli("account", "list").stdout.splitlines()}


def persona(d, name: str = "receptionist") -> None:
    d.cli("persona", "add", name, "--provider", "openai", "--url", "wss://127.0.0.1:9/rt",
          "--instructions", "You answer calls.")


# --------------------------------------------------------------------------
# accounts

def test_account_region_and_contact_url(dialtone):
    out = dialtone.cli("account", "set", "acme", "--region", "de", "--contact-url",
                       "https://crm.example/lookup?phone={phone_number}").stdout
    assert "account acme: region DE" in out, out
    row = accounts(dialtone)["acme"]
    assert row[1:3] == ["DE", "https://crm.example/lookup?phone={phone_number}"], row

    # Refused values leave nothing behind (not even a new account).
    err = refused(dialtone, "account", "set", "newco", "--region", "XX")
    assert "unknown region" in err and "GB" in err, err
    for url, why in (("https://crm.example/lookup", "{phone_number}"),
                     ("ftp://crm.example/{phone_number}", "http:// or https://"),
                     ("https://crm.example/{phone_number}/{name}", "unknown placeholder")):
        err = refused(dialtone, "account", "set", "newco", "--contact-url", url)
        assert why in err, err
    assert "newco" not in accounts(dialtone)

    dialtone.cli("account", "set", "acme", "--clear-contact-url")
    assert accounts(dialtone)["acme"][1:3] == ["DE", "-"]
    # Without options: created with the defaults.
    dialtone.cli("account", "set", "plain")
    assert accounts(dialtone)["plain"][1:3] == ["US", "-"]


# --------------------------------------------------------------------------
# contacts

def test_contact_add_list_remove(dialtone):
    out = dialtone.cli("contact", "add", "Alice Example", "--number", "(555) 010-0123",
                       "--number", "+44 20 7946 0958", "--company", "Example Corp",
                       "--email", "alice@example.com").stdout
    assert "contact Alice Example added" in out and "+15550100123,+442079460958" in out, out
    dialtone.cli("account", "set", "berlin", "--region", "DE")
    dialtone.cli("contact", "add", "Büro", "--number", "030 123456", "--account", "berlin")

    everyone = contacts(dialtone)
    assert [c["name"] for c in everyone] == ["Alice Example", "Büro"]
    alice = everyone[0]
    assert alice["numbers"] == [{"number": "(555) 010-0123", "e164": "+15550100123"},
                                {"number": "+44 20 7946 0958", "e164": "+442079460958"}]
    assert (alice["company"], alice["email"], alice["account"]) == \
        ("Example Corp", "alice@example.com", "default")
    berlin = contacts(dialtone, "--account", "berlin")
    assert [(c["name"], c["numbers"][0]["e164"]) for c in berlin] == [("Büro", "+4930123456")]
    text = dialtone.cli("contact", "list", "--account", "default").stdout.splitlines()
    assert len(text) == 1 and text[0].split("\t")[:3] == \
        [alice["id"], "Alice Example", "+15550100123,+442079460958"], text

    # What cannot be a contact.
    assert "not a phone number" in refused(dialtone, "contact", "add", "Ext", "--number", "1001")
    assert "no name" in refused(dialtone, "contact", "add", " ", "--number", "5550100123")
    assert "not an email" in refused(dialtone, "contact", "add", "E", "--number", "5550100123",
                                     "--email", "nope")
    assert "--number" in refused(dialtone, "contact", "add", "Nobody")
    assert "no account ghost" in refused(dialtone, "contact", "list", "--account", "ghost")

    assert f"contact {alice['id']} removed" in dialtone.cli("contact", "remove", alice["id"]).stdout
    assert "no contact" in refused(dialtone, "contact", "remove", alice["id"])
    assert [c["name"] for c in contacts(dialtone)] == ["Büro"]


def test_import_csv_reports_skipped_rows(dialtone, tmp_path):
    csv_file = tmp_path / "book.csv"
    csv_file.write_text(
        "\ufeffName,Phone,Company,E-mail\r\n"
        '"Doe, Jane","(555) 010-0123; 555.010.0124","Acme ""Labs""",jane@example.com\r\n'
        ",555 010 0100,Nobody Inc,\r\n"
        "Junk,call me maybe,,\r\n"
        "No Number,,,\r\n"
        "\r\n"
        "Bob,1-555-010-0199,,\r\n",
        encoding="utf-8")
    out = dialtone.cli("contact", "import", str(csv_file)).stdout
    assert "imported 2 contact(s) into account default (region US)" in out, out
    assert "skipped 3:" in out, out
    assert "row 3: no name" in out, out
    assert 'row 4: "call me maybe" is not a phone number' in out, out
    assert "row 5: no phone number" in out, out
    got = {c["name"]: c for c in contacts(dialtone)}
    assert set(got) == {"Doe, Jane", "Bob"}
    jane = got["Doe, Jane"]
    assert [n["e164"] for n in jane["numbers"]] == ["+15550100123", "+15550100124"]
    assert (jane["company"], jane["email"]) == ('Acme "Labs"', "jane@example.com")

    # Again: every row is a duplicate now.
    out = dialtone.cli("contact", "import", str(csv_file)).stdout
    assert "imported 0 contact(s)" in out and "in the address book already" in out, out
    assert len(contacts(dialtone)) == 2

    bad = tmp_path / "bad.csv"
    bad.write_text("name,mobile\nA,5550100123\n")
    err = refused(dialtone, "contact", "import", str(bad))
    assert "no number column" in err and "mobile" in err, err
    bad.write_text("who,phone\nA,5550100123\n")
    assert "no name column" in refused(dialtone, "contact", "import", str(bad))
    assert "reading" in refused(dialtone, "contact", "import", str(tmp_path / "missing.csv"))


def test_import_vcard(dialtone, tmp_path):
    dialtone.cli("account", "set", "london", "--region", "GB")
    vcf = tmp_path / "people.vcf"
    vcf.write_text(
        "BEGIN:VCARD\r\nVERSION:3.0\r\nN:Doe;Jane;;;\r\nFN:Jane Doe\r\n"
        "ORG:Acme\\, Inc.;Research\r\nTEL;TYPE=WORK,VOICE:020 7946 0958\r\n"
        "item1.TEL;TYPE=cell:+44 7700\r\n 900123\r\nEMAIL;TYPE=INTERNET:jane@example.com\r\n"
        "END:VCARD\r\n"
        "BEGIN:VCARD\nVERSION:4.0\nN:Smith;John;;;\n"
        "TEL;VALUE=uri;TYPE=\"voice,home\":tel:+1-555-010-0199\nEND:VCARD\n"
        "BEGIN:VCARD\nVERSION:4.0\nFN:Nobody\nEMAIL:nobody@example.com\nEND:VCARD\n",
        encoding="utf-8")
    out = dialtone.cli("contact", "import", str(vcf), "--account", "london").stdout
    assert "imported 2 contact(s) into account london (region GB)" in out, out
    assert "card 3: no phone number" in out, out
    got = {c["name"]: c for c in contacts(dialtone, "--account", "london")}
    assert set(got) == {"Jane Doe", "John Smith"}
    assert [n["e164"] for n in got["Jane Doe"]["numbers"]] == ["+442079460958", "+447700900123"]
    assert got["Jane Doe"]["company"] == "Acme, Inc."
    assert [n["e164"] for n in got["John Smith"]["numbers"]] == ["+15550100199"]


# --------------------------------------------------------------------------
# queues

def test_queue_add_list_show_members_remove(dialtone):
    for u in ("1001", "1002", "1003"):
        dialtone.add_user(u, "pw")
    out = dialtone.cli("queue", "add", "support", "--members", "1001,1002",
                       "--strategy", "round-robin", "--timeout", "20",
                       "--fallback", "user:1003").stdout
    assert "queue support added (round-robin, 2 member(s), 20 s)" in out, out
    dialtone.cli("queue", "add", "sales", "--members", "1003", "--strategy", "ring-all")
    lines = [line.split("\t") for line in dialtone.cli("queue", "list").stdout.splitlines()]
    assert lines == [["sales", "ring-all", "30s", "1003", "-", "default"],
                     ["support", "round-robin", "20s", "1001,1002", "user:1003", "default"]]

    # A number can route to an existing queue only.
    err = refused(dialtone, "number", "add", "+15550101", "--to", "queue:ghost")
    assert "no such queue" in err, err
    dialtone.add_number("+15550100", "queue:support")

    shown = json.loads(dialtone.cli("queue", "show", "support", "--json").stdout)
    assert (shown["strategy"], shown["timeout_secs"], shown["fallback"]) == \
        ("round-robin", 20, "user:1003")
    assert [m["username"] for m in shown["members"]] == ["1001", "1002"]
    assert shown["numbers"] == ["+15550100"]
    text = dialtone.cli("queue", "show", "support").stdout
    assert "round-robin" in text and "+15550100" in text and "never" in text, text

    out = dialtone.cli("queue", "members", "support", "1003,1001").stdout
    assert "members 1003,1001" in out, out
    assert "1009" in refused(dialtone, "queue", "members", "support", "1001,1009")
    assert "no queue ghost" in refused(dialtone, "queue", "members", "ghost", "1001")

    err = refused(dialtone, "queue", "remove", "support")
    assert "+15550100" in err and "support" in err, err
    dialtone.cli("number", "remove", "+15550100")
    assert "queue support removed" in dialtone.cli("queue", "remove", "support").stdout
    assert "no queue support" in refused(dialtone, "queue", "remove", "support")
    assert "no queue support" in refused(dialtone, "queue", "show", "support")


@pytest.mark.parametrize("args,message", [
    (["--members", "1001,1009", "--strategy", "ring-all"], '["1009"]'),
    (["--members", "1001,1001", "--strategy", "ring-all"], "given twice"),
    (["--members", "1001", "--strategy", "random"], "invalid value 'random'"),
    (["--members", "1001", "--strategy", "ring-all", "--timeout", "0"], "--timeout"),
    (["--members", "1001", "--strategy", "ring-all", "--fallback", "queue:other"],
     "user:NAME, number:N or persona:NAME"),
    (["--members", "1001", "--strategy", "ring-all", "--fallback", "persona:ghost"],
     "no such persona"),
    (["--members", "1001", "--strategy", "ring-all", "--fallback", "number:abc"], "digits"),
])
def test_invalid_queues_are_refused(dialtone, args, message):
    dialtone.add_user("1001", "pw")
    err = refused(dialtone, "queue", "add", "support", *args)
    assert message in err, err
    assert dialtone.cli("queue", "list").stdout.strip() == ""


def test_queue_name_is_unique(dialtone):
    dialtone.add_user("1001", "pw")
    dialtone.cli("queue", "add", "support", "--members", "1001", "--strategy", "longest-idle")
    err = refused(dialtone, "queue", "add", "support", "--members", "1001",
                  "--strategy", "ring-all")
    assert "already exists" in err, err
    assert "invalid queue name" in refused(dialtone, "queue", "add", "a b", "--members", "1001",
                                           "--strategy", "ring-all")


# --------------------------------------------------------------------------
# persona tools

def test_tool_kinds_round_trip(dialtone):
    persona(dialtone)
    dialtone.add_user("1001", "pw")
    dialtone.cli("queue", "add", "support", "--members", "1001", "--strategy", "ring-all")

    out = dialtone.cli("tool", "add", "receptionist", "to_alice", "--kind", "transfer-user",
                       "--user", "1001").stdout
    assert "tool to_alice added to persona receptionist (transfer-user: user:1001)" in out, out
    dialtone.cli("tool", "add", "receptionist", "to-support", "--kind", "transfer-queue",
                 "--queue", "support", "--description", "Send billing questions to support")
    dialtone.cli(
        "tool", "add", "receptionist", "lookup_order", "--kind", "api-request",
        "--url", "https://shop.example/api/orders/{order_id}?lang={lang}",
        "--method", "post",
        "--header", "Authorization: Bearer ${SHOP_TOKEN}",
        "--header", "X-Note: {note}",
        "--body", '{"express": {express}}',
        "--var", "order_id:number:The order number: digits only",
        "--var", "lang:options:en|de:The caller's language",
        "--var", "note:text",
        "--var", "express:options:true|false",
        "--optional", "note", "--timeout-ms", "3000",
        "--description", "Look up an order by its number")

    rows = [line.split("\t") for line in dialtone.cli("tool", "list", "receptionist")
            .stdout.splitlines()]
    assert [r[:3] for r in rows] == [
        ["lookup_order", "api-request",
         "POST https://shop.example/api/orders/{order_id}?lang={lang}"],
        ["to-support", "transfer-queue", "queue:support"],
        ["to_alice", "transfer-user", "user:1001"],
    ]
    assert rows[2][3] == "Transfer the caller to 1001"  # the default description
    assert rows[1][3] == "Send billing questions to support"

    t = json.loads(dialtone.cli("tool", "show", "receptionist", "lookup_order", "--json").stdout)
    assert (t["kind"], t["method"], t["timeout_ms"], t["body"]) == \
        ("api-request", "POST", 3000, '{"express": {express}}')
    assert t["headers"] == [{"name": "Authorization", "value": "Bearer ${SHOP_TOKEN}"},
                            {"name": "X-Note", "value": "{note}"}]
    assert t["variables"][0] == {"name": "order_id", "type": "number", "required": True,
                                 "description": "The order number: digits only", "options": None}
    assert t["variables"][1]["options"] == ["en", "de"]
    assert t["variables"][2]["required"] is False
    schema = t["input_schema"]
    assert schema["required"] == ["order_id", "lang", "express"]
    assert schema["properties"]["lang"] == {"type": "string", "enum": ["en", "de"],
                                            "description": "The caller's language"}
    assert t["env"] == [{"name": "SHOP_TOKEN", "set": False}]

    # The secret lives in the environment: shown as set, never expanded.
    secret = "shop-secret-NEVER-PRINTED"
    for extra in ([], ["--json"]):
        cp = dialtone.cli("tool", "show", "receptionist", "lookup_order", *extra,
                          env={"SHOP_TOKEN": secret})
        assert secret not in cp.stdout + cp.stderr
    text = dialtone.cli("tool", "show", "receptionist", "lookup_order",
                        env={"SHOP_TOKEN": secret}).stdout
    assert "SHOP_TOKEN (set)" in text and "Bearer ${SHOP_TOKEN}" in text, text

    assert "tool to_alice of persona receptionist removed" in \
        dialtone.cli("tool", "remove", "receptionist", "to_alice").stdout
    assert "has no tool to_alice" in refused(dialtone, "tool", "remove", "receptionist", "to_alice")
    assert "has no tool to_alice" in refused(dialtone, "tool", "show", "receptionist", "to_alice")

    # The queue a tool transfers to cannot go away under it.
    err = refused(dialtone, "queue", "remove", "support")
    assert "receptionist/to-support" in err, err
    # Removing the persona removes its tools.
    dialtone.cli("persona", "remove", "receptionist")
    persona(dialtone)
    assert dialtone.cli("tool", "list", "receptionist").stdout.strip() == ""
    dialtone.cli("queue", "remove", "support")


API = ["--kind", "api-request"]


@pytest.mark.parametrize("name,args,message", [
    ("t", ["--kind", "transfer-user"], "needs --user"),
    ("t", ["--kind", "transfer-user", "--user", "ghost"], "no such user"),
    ("t", ["--kind", "transfer-queue", "--queue", "ghost"], "no such queue"),
    ("t", ["--kind", "transfer-user", "--user", "1001", "--url", "https://a.example/"],
     "--url is for --kind api-request"),
    ("t", ["--kind", "api-request", "--user", "1001", "--url", "https://a.example/"],
     "--user and --queue are for the transfer kinds"),
    ("hangup_call", ["--kind", "transfer-user", "--user", "1001"], "global tool"),
    ("lookup_contact", ["--kind", "transfer-user", "--user", "1001"], "global tool"),
    ("bad.name", ["--kind", "transfer-user", "--user", "1001"], "invalid tool name"),
    ("t", API, "needs --url"),
    ("t", API + ["--url", "ftp://a.example/{v}", "--var", "v:text"], "http:// or https://"),
    ("t", API + ["--url", "https://{v}.example/", "--var", "v:text"],
     "the host must be written out"),
    ("t", API + ["--url", "https://a.example/{v}"], "{v}, which is not a declared variable"),
    ("t", API + ["--url", "https://a.example/", "--var", "v:text"],
     '"v" is declared but not used'),
    ("t", API + ["--url", "https://a.example/{v}", "--var", "v:bogus"], 'unknown type "bogus"'),
    ("t", API + ["--url", "https://a.example/{v}", "--var", "v"], "expected NAME:text"),
    ("t", API + ["--url", "https://a.example/{v}", "--var", "v:options"], "list the options"),
    ("t", API + ["--url", "https://a.example/{v}", "--var", "v:options:a||b"], "empty option"),
    ("t", API + ["--url", "https://a.example/{v}", "--var", "v:text", "--var", "v:number"],
     "declared twice"),
    ("t", API + ["--url", "https://a.example/{v}", "--var", "v:text", "--optional", "w"],
     "there is no --var w"),
    ("t", API + ["--url", "https://a.example/", "--header", "NoColon"], "'Name: value'"),
    ("t", API + ["--url", "https://a.example/", "--header", "Bad Name: x"],
     "invalid header name"),
    ("t", API + ["--url", "https://a.example/", "--header", "X-Key: ${KEY"], "not closed"),
    ("t", API + ["--url", "https://a.example/", "--method", "TRACE"], "--method TRACE"),
    ("t", API + ["--url", "https://a.example/", "--method", "GET", "--body", "x"],
     "GET request has no body"),
    ("t", API + ["--url", "https://a.example/", "--timeout-ms", "0"], "out of range"),
    ("t", API + ["--url", "https://a.example/", "--description", " "], "description"),
])
def test_invalid_tools_are_refused(dialtone, name, args, message):
    persona(dialtone)
    dialtone.add_user("1001", "pw")
    err = refused(dialtone, "tool", "add", "receptionist", name, *args)
    assert message in err, err
    assert dialtone.cli("tool", "list", "receptionist").stdout.strip() == ""


def test_tool_names_are_per_persona(dialtone):
    persona(dialtone, "first")
    persona(dialtone, "second")
    dialtone.add_user("1001", "pw")
    transfer = ["--kind", "transfer-user", "--user", "1001"]
    dialtone.cli("tool", "add", "first", "to_desk", *transfer)
    assert "already has a tool to_desk" in refused(dialtone, "tool", "add", "first", "to_desk",
                                                   *transfer)
    dialtone.cli("tool", "add", "second", "to_desk", *transfer)
    assert "no persona ghost" in refused(dialtone, "tool", "add", "ghost", "t", *transfer)
    assert "no persona ghost" in refused(dialtone, "tool", "list", "ghost")

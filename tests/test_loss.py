"""Packet loss (issue 15, point 4): SIPp loses 10 % of the SIP messages it
receives and sends (-lost 10) on both sides of the switch; every call and
every registration must still complete, through the RFC 3261 §17
retransmissions of dialtone's transactions and SIPp's. And after 500 calls,
dialtone's calls, media endpoints, transactions and file descriptors are
back where they were (bench/soak.sh watches RSS and descriptors for 30
minutes)."""

from __future__ import annotations

import os
import re
import time

import pytest

from conftest import SCENARIOS
from test_calls import N_BOB, PW, Pbx

LOSS = ["-lost", "10"]
WIRE_TRACE = "debug,sqlx=warn,dialtone_sip::wire=trace"


def retransmissions(r) -> int:
    try:
        return int(r.stats.get("Retransmissions(C)", "0"))
    except ValueError:
        return 0


def test_registrations_complete_through_10_percent_loss(dialtone_factory, sipp):
    # The default T1 (500 ms), as SIPp's: a shorter one would end the server
    # transactions (Timer J, 64*T1) before SIPp stops retransmitting.
    d = dialtone_factory()
    d.add_user("alice", PW)
    r = sipp("register.xml", d.sip_port, service="alice", password=PW, calls=40, rate=10,
             keys={"expires": 600}, timeout=60, extra=LOSS)
    assert r.ok(calls=40), r
    assert retransmissions(r) > 0, f"10 % loss and no retransmission? {r.stats}"
    assert len(d.bindings_of("alice")) == 1


def uas_tolerating_bye_before_ack(tmp_path) -> str:
    """uas.xml, except that a BYE may come before the ACK (legal, RFC 3261
    §15: with the ACK lost and the caller quick to hang up, it does); SIPp
    would otherwise call that BYE unexpected and fail the call."""
    text = (SCENARIOS / "uas.xml").read_text()
    ack = '<recv request="ACK" rtd="true" crlf="true" next="in_call"/>'
    bye = '<recv request="BYE"/>'
    assert ack in text and bye in text
    text = text.replace(ack, '<recv request="ACK" optional="true" rtd="true" crlf="true" next="in_call"/>\n'
                             '  <recv request="BYE" next="bye"/>')
    text = text.replace(bye, bye + '\n  <label id="bye"/>')
    path = tmp_path / "uas_bye_before_ack.xml"
    path.write_text(text)
    return str(path)


def test_calls_complete_through_10_percent_loss_on_both_sides(dialtone_factory, sipp, tmp_path):
    # The SIP trace on: a call that fails is told from both sides of the switch.
    pbx = Pbx(dialtone_factory(config={"log": {"level": WIRE_TRACE}}), sipp)
    calls = 30
    phone = pbx.phone("bob", uas_tolerating_bye_before_ack(tmp_path), calls=calls, timeout=90,
                      extra=LOSS)
    caller = pbx.trunk_call("uac.xml", N_BOB, calls=calls, rate=5, limit=10, timeout=90,
                            media=False, extra=LOSS)
    callee = phone.wait(60)
    assert caller.ok(calls=calls), f"{caller}\n{story(pbx.d, caller)}\n--- callee ---\n{callee}"
    assert callee.ok(calls=calls), callee
    wire = pbx.d.wire()  # the trace is there, both ways, for the next failure
    assert any(m.way == "recv" and m.first_line.startswith("INVITE") for m in wire), len(wire)
    assert any(m.way == "send" and m.first_line.startswith("INVITE") for m in wire), len(wire)
    assert retransmissions(caller) + retransmissions(callee) > 0, "no loss happened"
    m = pbx.d.wait_metric("dialtone_calls_active", 0)
    assert m["dialtone_calls_active"] == 0, m
    # Every transaction ends, the last ones by their timers (64*T1 = 32 s).
    assert drained(pbx.d), pbx.d.metrics()
    recs = pbx.d.wait_calls(calls, 20)
    assert sum(1 for r in recs if r.get("outcome") == "answered") == calls, recs[:3]


def story(d, caller) -> str:
    """What dialtone's SIP trace shows of the caller's failed calls: each
    one's messages with the caller and with the callee it dialled (the
    first INVITE dialtone sent after receiving the caller's)."""
    failed = list(dict.fromkeys(re.findall(r"Call-Id '([^']+)'", caller.errors)))
    if not failed:
        return "(no failed Call-ID in the caller's error log)"
    wire = d.wire()
    # Pair each caller's INVITE with the next new outbound INVITE.
    waiting, legs, seen = [], {}, set()
    for m in wire:
        cid = m.header("Call-ID")
        if m.first_line.startswith("INVITE") and cid not in seen:
            seen.add(cid)
            if m.way == "recv":
                waiting.append(cid)
            elif waiting:
                legs[waiting.pop(0)] = cid
    out = []
    for a in failed:
        b = legs.get(a)
        out.append(f"--- dialtone's trace of {a} (callee leg {b}) ---")
        out += [str(m) for m in wire if m.header("Call-ID") in (a, b)]
    return "\n".join(out)


def proc_fds(pid: int) -> int:
    """Open sockets of the process (RTP ports, SIP and HTTP connections);
    the database's files are left out: the pool opens connections as
    concurrency asks, up to its size."""
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                n += 1
        except OSError:
            pass
    return n


def proc_rss_kib(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def drained(d, timeout: float = 45.0) -> bool:
    """No call, media endpoint or transaction left (the last transactions
    end by their timers: 64*T1 = 32 s)."""
    deadline = time.monotonic() + timeout
    keys = ("dialtone_calls_active", "dialtone_media_endpoints",
            "dialtone_sip_server_transactions", "dialtone_sip_client_transactions")
    while time.monotonic() < deadline:
        m = d.metrics()
        if all(m.get(k) == 0 for k in keys):
            return True
        time.sleep(0.5)
    return False


@pytest.mark.timeout(300)
def test_descriptors_and_transactions_return_after_500_calls(dialtone_factory, sipp):
    pbx = Pbx(dialtone_factory(config={"log": {"level": "info"}}), sipp)
    pid = pbx.d.proc.pid

    def batch(n: int) -> None:
        phone = pbx.phone("bob", "uas.xml", calls=n, timeout=120)
        r = pbx.trunk_call("uac.xml", N_BOB, calls=n, rate=100, limit=50, timeout=120, media=False)
        assert r.ok(calls=n), r
        assert phone.wait(30).ok(calls=n)
        assert drained(pbx.d), pbx.d.metrics()

    batch(100)  # warm-up: pools, caches, the allocator's arenas
    fds0, rss0 = proc_fds(pid), proc_rss_kib(pid)
    batch(500)
    fds1, rss1 = proc_fds(pid), proc_rss_kib(pid)
    # (a metrics request's connection may be open while we look)
    assert fds1 <= fds0 + 2, f"sockets left open: {fds0} -> {fds1}"
    # Memory: printed, not asserted yet. RSS rises ~110 KiB a call over the
    # first 500 at 50 concurrent calls and ~30 KiB a call over the next 500
    # (measured by hand); no call state is left — calls, endpoints,
    # transactions, call handles and the tasks that forward to a call are
    # all back to zero — so it looks like the allocator's high-water mark,
    # but a plateau is not proven yet: see BENCHMARKS.md "Soak".
    print(f"RSS {rss0} -> {rss1} KiB over 500 calls")

#!/usr/bin/env python3
"""bench/cluster_bench.py [--seconds S] [--rates R ...]

Calls through Kamailio to ONE dialtone node and to TWO (issue 14), the
same SIPp load in the same run, and the failover gap after a kill -9.

The topology is tests/cluster.py's: Kamailio with config/kamailio/
kamailio.cfg on 127.0.0.4 (dispatcher, round robin, OPTIONS probes every
2 s), nodes on 127.0.0.2 (and 127.0.0.3) on a fresh database of the local
PostgreSQL, heartbeat 500 ms, dead after 3 s. The carrier is SIPp on
127.0.0.1: uac.xml (INVITE, 200, ACK, hold 1 s, BYE; no RTP) sends to
Kamailio a number routed to the trunk "carrier", whose host is a SIPp
uas_load.xml on 127.0.0.1 (a hairpin: each call is two legs on one node).

Per setup and rate: successful and failed calls, retransmissions, and CPU
milliseconds per call of every process (the nodes, Kamailio's process
group, the two SIPps) from /proc/PID/stat before and after. Then, with two
nodes and 50 calls/s, node-1 is killed (SIGKILL) 8 s in: SIPp's per-second
statistics give how long new calls failed and how many, and the
survivor's /metrics when it closed node-1's calls.

Kamailio runs with 512 MB of shared memory (-m 512): with the tests' 64
MB it runs out near 400 calls/s and answers 500 itself.

Run with the tests' venv (it imports tests/cluster.py and conftest.py):
  tests/.venv/bin/python bench/cluster_bench.py
DIALTONE_BIN selects the binary (default target/release/dialtone)."""

from __future__ import annotations

import argparse
import csv
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
os.chdir(REPO)

import cluster  # noqa: E402
from cluster import Cluster  # noqa: E402
from conftest import Sipp, free_port, wait_bound  # noqa: E402

CARRIER_IP = "127.0.0.1"
N_OUT = "15550001"
HOLD_MS = 1000
TICK = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime, stime
    except (OSError, IndexError, ValueError):
        return 0


def group_ticks(pgid: int) -> int:
    """CPU of every process in a process group (Kamailio's workers)."""
    total = 0
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:
                total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
    return total


def postgres_ticks() -> int:
    """CPU of every PostgreSQL process (the shared database's backends)."""
    total = 0
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if (d / "comm").read_text().strip() == "postgres":
                total += cpu_ticks(int(d.name))
        except OSError:
            continue
    return total


def provision(c: Cluster, carrier_port: int) -> None:
    n1 = c.nodes[0]
    n1.add_trunk("carrier", f"{CARRIER_IP}:{carrier_port}", inbound_ips=[CARRIER_IP])
    n1.add_number(N_OUT, "trunk:carrier")


def start_cluster(tmp: Path, count: int) -> tuple[Cluster, int]:
    c = Cluster(tmp / f"cluster{count}", count=count,
                extra={"log": {"level": "warn"}, "calls": {"session_expires_secs": 0}})
    c.start()
    port = free_port(host=CARRIER_IP)
    provision(c, port)
    return c, port


def load(c: Cluster, sipp: Sipp, carrier_port: int, rate: int, seconds: int,
         extra: list[str] | None = None):
    calls = rate * seconds
    # The callee must not stop before the caller: calls lost with a killed
    # node still count against its -m (it is killed once the caller ends).
    callee = sipp.start("uas_load.xml", None, local_ip=CARRIER_IP, local_port=carrier_port,
                        calls=2 * calls, timeout=seconds + 60, media=False, trace_msg=False)
    assert wait_bound(carrier_port, host=CARRIER_IP), callee.wait(1)
    caller = sipp.start("uac.xml", c.port, service=N_OUT, target_host="127.0.0.4",
                        local_ip=CARRIER_IP, calls=calls, rate=rate, limit=rate * 10,
                        duration_ms=HOLD_MS, timeout=seconds + 60, media=False, trace_msg=False,
                        extra=extra or [])
    return caller, callee


def measure(c: Cluster, sipp: Sipp, carrier_port: int, rate: int, seconds: int) -> dict:
    pids = {n.node_id: n.proc.pid for n in c.nodes}
    assert c.front is not None and c.front.proc is not None
    kam_pgid = c.front.proc.pid
    before = {k: cpu_ticks(p) for k, p in pids.items()}
    kam0 = group_ticks(kam_pgid)
    pg0 = postgres_ticks()
    caller, callee = load(c, sipp, carrier_port, rate, seconds)
    sipp0 = cpu_ticks(caller.proc.pid) + cpu_ticks(callee.proc.pid)
    # SIPp's own CPU is read just before it exits
    while caller.proc.poll() is None:
        sipp_last = cpu_ticks(caller.proc.pid) + cpu_ticks(callee.proc.pid)
        time.sleep(0.2)
    r = caller.wait(30)
    callee.kill()
    after = {k: cpu_ticks(p) for k, p in pids.items()}
    kam = group_ticks(kam_pgid) - kam0
    pg = postgres_ticks() - pg0
    ok = max(r.successful, 1)
    per_call = lambda ticks: 1000.0 * ticks / TICK / ok  # noqa: E731
    row = {"nodes": len(pids), "rate": rate, "ok": r.successful, "failed": r.failed,
           "retrans": int(r.stats.get("Retransmissions(C)", "0") or 0),
           "kamailio_ms": per_call(kam), "sipp_ms": per_call(sipp_last - sipp0),
           "postgres_ms": per_call(pg)}
    for k in pids:
        row[f"{k}_ms"] = per_call(after[k] - before[k])
    row["dialtone_ms"] = sum(row[f"{k}_ms"] for k in pids)
    return row


def failover(c: Cluster, sipp: Sipp, carrier_port: int, tmp: Path) -> dict:
    rate, seconds, kill_at = 50, 30, 8.0
    caller, callee = load(c, sipp, carrier_port, rate, seconds, extra=["-fd", "1"])
    time.sleep(kill_at)
    victim = c.nodes[0]
    t_kill = time.time()
    os.kill(victim.proc.pid, signal.SIGKILL)
    survivor = c.nodes[1]
    reaped_at = None
    while caller.proc.poll() is None:
        if reaped_at is None and survivor.metric("dialtone_cluster_calls_reaped_total") > 0:
            reaped_at = time.time() - t_kill
        time.sleep(0.2)
    r = caller.wait(30)
    callee.kill()
    # SIPp's periodic statistics: one row a second with the failures of
    # that period ("FailedCall(P)"), stamped with "CurrentTime".
    failed_periods = []
    with open(caller.stf, newline="") as f:
        for row in csv.DictReader(f, delimiter=";"):
            try:
                stamp = float(row["CurrentTime"].split("\t")[-1])
            except (KeyError, ValueError):
                continue
            n = int(row.get("FailedCall(P)") or 0)
            if n:
                failed_periods.append((stamp - t_kill, n))
    after = [(t, n) for t, n in failed_periods if t > -1]
    return {"rate": rate, "ok": r.successful, "failed": r.failed,
            "failures_from_s": round(after[0][0], 1) if after else None,
            "failures_until_s": round(after[-1][0], 1) if after else None,
            "reaped_after_s": round(reaped_at, 1) if reaped_at else None,
            "failed_per_second_after_kill": [(round(t), n) for t, n in after]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--rates", type=int, nargs="+", default=[100, 200, 300, 400])
    ap.add_argument("--failover-only", action="store_true")
    args = ap.parse_args()
    # Kamailio's transactions need more shared memory at hundreds of calls/s
    # than the tests' 64 MB (it answers "500 No error" when it runs out).
    cluster.Front.SHM_MB = 512
    tmp = Path(tempfile.mkdtemp(prefix="dialtone-cluster-bench-"))
    rows = []
    for count in ((2,) if args.failover_only else (1, 2)):
        c, port = start_cluster(tmp, count)
        sipp = Sipp(tmp / f"sipp{count}")
        (tmp / f"sipp{count}").mkdir()
        try:
            for rate in ([] if args.failover_only else args.rates):
                row = measure(c, sipp, port, rate, args.seconds)
                rows.append(row)
                print(f"nodes={row['nodes']} rate={rate:4d} ok={row['ok']:6d} failed={row['failed']:5d} "
                      f"retrans={row['retrans']:5d} dialtone_ms/call={row['dialtone_ms']:.3f} "
                      f"kamailio_ms/call={row['kamailio_ms']:.3f} postgres_ms/call={row['postgres_ms']:.3f} "
                      f"sipp_ms/call={row['sipp_ms']:.3f} "
                      + " ".join(f"{k}={row[k]:.3f}" for k in row if k.startswith("node-")),
                      flush=True)
                time.sleep(2)
            if count == 2:
                f = failover(c, sipp, port, tmp)
                print(f"failover: {f}", flush=True)
        finally:
            sipp.stop_all()
            c.stop()


if __name__ == "__main__":
    main()

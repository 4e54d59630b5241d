#!/usr/bin/env python3
"""Registration load against a registrar on loopback: SIPp's
sipp-scenarios/register_load.xml at RATE registrations/s for SECONDS, over
distinct users, with the target's CPU time measured. Run it through
bench/register_load.sh (same arguments); see --help.

What it prints (and writes to OUT/summary.json):
  - registrations attempted / successful / failed, retransmissions
  - achieved rate (successful registrations per second of the run)
  - registration time (REGISTER -> 401 -> REGISTER -> 200, SIPp's call length):
    the mean (1 ms resolution) and a histogram in ms
  - UDP datagrams the kernel dropped on full socket buffers (host-wide counter,
    SIPp's and the target's sockets alike)
  - the target's CPU time during the run (utime+stime of the process and all its
    descendants, from /proc/PID/stat) and CPU microseconds per successful
    registration; SIPp's own CPU time too (it shares the 2 cores)

Loopback only: the target is 127.0.0.1 or ::1, nothing else is accepted.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCENARIO = REPO / "sipp-scenarios" / "register_load.xml"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- CPU accounting ---------------------------------------------------------

def _stat(pid: int) -> tuple[int, int] | None:
    """(ppid, utime+stime in ticks) of a process (all its threads), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    rest = s[s.rindex(")") + 2:].split()  # fields after "pid (comm)"
    ppid = int(rest[1])
    utime, stime = int(rest[11]), int(rest[12])
    return ppid, utime + stime


def process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = _stat(int(d))
            if st:
                children.setdefault(st[0], []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_ticks(root: int) -> int:
    total = 0
    for p in process_tree(root):
        st = _stat(p)
        if st:
            total += st[1]
    return total


def context_switches(root: int) -> int:
    """Context switches (voluntary and not) of every thread of the tree so
    far: the task hand-offs a message costs show up here (a thread that
    parks on a futex and is woken again switches twice)."""
    total = 0
    for p in process_tree(root):
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tids:
            try:
                with open(f"/proc/{p}/task/{t}/status") as f:
                    for line in f:
                        if "ctxt_switches:" in line:
                            total += int(line.split()[-1])
            except (OSError, ValueError):
                continue
    return total


def udp_rcvbuf_errors() -> int | None:
    """Host-wide count of UDP datagrams dropped for a full receive buffer
    (/proc/net/snmp Udp: RcvbufErrors, IPv4 + IPv6)."""
    total, found = 0, False
    for path, key in (("/proc/net/snmp", "Udp:"), ("/proc/net/snmp6", "Udp6RcvbufErrors")):
        try:
            lines = open(path).read().splitlines()
        except OSError:
            continue
        if key == "Udp:":
            rows = [l.split() for l in lines if l.startswith("Udp:")]
            if len(rows) >= 2 and "RcvbufErrors" in rows[0]:
                total += int(rows[1][rows[0].index("RcvbufErrors")])
                found = True
        else:
            for l in lines:
                if l.startswith(key):
                    total += int(l.split()[1])
                    found = True
    return total if found else None


def free_local_port(host: str) -> int:
    """A UDP+TCP-free port in 15000-19999 for SIPp's own socket (not 5060:
    that is where a registrar under test usually listens)."""
    import random
    import socket
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(200):
        p = random.randint(15000, 19999)
        try:
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                with socket.socket(fam, kind) as s:
                    s.bind((host, p))
            return p
        except OSError:
            continue
    sys.exit("no free local port")


def _exe(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


def pid_by_port(port: int) -> int | None:
    """The process listening on the port (UDP first, then TCP), climbing to the
    top of a tree of processes of the same executable: e.g. Kamailio's main
    process, whose workers and TCP process hold the sockets."""
    for proto in ("-lunpH", "-ltnpH"):
        try:
            out = subprocess.run(["ss", proto, f"sport = :{port}"], capture_output=True, text=True,
                                 timeout=10).stdout
        except (OSError, subprocess.TimeoutExpired):
            return None
        pids = sorted({int(p) for p in re.findall(r"pid=(\d+)", out)})
        if pids:
            pid = pids[0]
            exe = _exe(pid)
            while True:
                st = _stat(pid)
                if not st or st[0] <= 1 or _exe(st[0]) != exe:
                    return pid
                pid = st[0]
    return None


# --- users -------------------------------------------------------------------

def user_names(n: int, prefix: str) -> list[str]:
    width = max(5, len(str(n)))
    return [f"{prefix}{i:0{width}d}" for i in range(1, n + 1)]


def write_csv(path: Path, users: list[str], password: str) -> None:
    with open(path, "w") as f:
        f.write("SEQUENTIAL\n")
        for u in users:
            f.write(f"{u};{password}\n")


def provision_dialtone(binary: str, config: str, users: list[str], password: str) -> None:
    """Create the users in dialtone, one `user add` process each (2 at a time),
    skipping those that exist. There is no bulk CLI yet: this costs one process
    start plus one DB transaction per user."""
    t0 = time.monotonic()
    listed = subprocess.run([binary, "--config", config, "user", "list"], capture_output=True,
                            text=True, timeout=120)
    if listed.returncode != 0:
        sys.exit(f"`dialtone user list` failed:\n{listed.stderr}")
    have = {line.split()[0] for line in listed.stdout.splitlines() if line.strip()}
    todo = [u for u in users if u not in have]
    log(f"provisioning {len(todo)} users in dialtone ({len(users) - len(todo)} exist already)")

    def add(u: str) -> str | None:
        cp = subprocess.run([binary, "--config", config, "user", "add", u, "--password", password],
                            capture_output=True, text=True, timeout=60)
        return None if cp.returncode == 0 else f"{u}: {cp.stderr.strip()}"

    with ThreadPoolExecutor(max_workers=2) as ex:
        errors = [e for e in ex.map(add, todo) if e]
    dt = time.monotonic() - t0
    if errors:
        sys.exit("user add failed:\n" + "\n".join(errors[:10]))
    if todo:
        log(f"provisioned {len(todo)} users in {dt:.1f} s ({dt / len(todo) * 1000:.1f} ms each)")


# --- the run -------------------------------------------------------------------

def parse_stats(path: Path) -> dict[str, str]:
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f, delimiter=";"))
    except FileNotFoundError:
        return {}
    return dict(zip(rows[0], rows[-1])) if len(rows) >= 2 else {}


def duration_ms(v: str) -> float | None:
    """SIPp's HH:MM:SS:uuuuuu (or HH:MM:SS) -> ms."""
    parts = v.split(":")
    try:
        if len(parts) == 4:
            h, m, s, us = (int(x) for x in parts)
            return ((h * 60 + m) * 60 + s) * 1000 + us / 1000
        if len(parts) == 3:
            h, m, s = (int(x) for x in parts)
            return ((h * 60 + m) * 60 + s) * 1000.0
    except ValueError:
        return None
    return None


def main() -> int:
    ap = argparse.ArgumentParser(
        prog="bench/register_load.sh",
        description="Authenticated REGISTER load on a loopback registrar, with its CPU cost.",
        epilog="Example: bench/register_load.sh 5070 1000 10 --pid $(cat /tmp/kam-bench/kamailio.pid)")
    ap.add_argument("port", type=int, help="the registrar's SIP port")
    ap.add_argument("rate", type=float, help="registrations per second")
    ap.add_argument("seconds", type=float, help="duration of the load")
    ap.add_argument("--host", default="127.0.0.1", help="127.0.0.1 (default) or ::1")
    ap.add_argument("--transport", default="u1", choices=["u1", "t1", "un", "tn"],
                    help="SIPp -t (default u1: UDP, one socket)")
    ap.add_argument("--users", type=int, default=None,
                    help="distinct users (default: rate*seconds, at most 20000; the CSV wraps "
                         "around, i.e. re-registers users, when there are more calls than users)")
    ap.add_argument("--prefix", default="load", help="user name prefix (default load)")
    ap.add_argument("--password", default="secret", help="every user's password (default secret)")
    ap.add_argument("--expires", type=int, default=3600)
    ap.add_argument("--pid", type=int, default=None,
                    help="the target's PID (default: found by its listening port with ss)")
    ap.add_argument("--limit", type=int, default=None,
                    help="SIPp -l: max registrations in progress (default max(200, rate/2))")
    ap.add_argument("--buff-size", type=int, default=4 * 1024 * 1024,
                    help="SIPp -buff_size, its socket buffers (default 4 MiB; the kernel caps it "
                         "at net.core.rmem_max)")
    ap.add_argument("--provision-dialtone", metavar="CONFIG", default=None,
                    help="first create the users with `dialtone --config CONFIG user add`")
    ap.add_argument("--dialtone-bin", default=os.environ.get("DIALTONE_BIN", str(REPO / "target/release/dialtone")))
    ap.add_argument("--out", default=None, help="output dir (default bench/out/<time>-<port>-<rate>)")
    a = ap.parse_args()

    if a.host not in ("127.0.0.1", "::1"):
        sys.exit("loopback only: --host must be 127.0.0.1 or ::1")
    if not (0 < a.rate <= 100000) or not (0 < a.seconds <= 600):
        sys.exit("rate must be in (0, 100000] and seconds in (0, 600]")
    if shutil.which("sipp") is None:
        sys.exit("sipp not found (scripts/setup.sh installs it)")

    calls = max(1, int(round(a.rate * a.seconds)))
    nusers = a.users or min(calls, 20000)
    out = Path(a.out) if a.out else REPO / "bench" / "out" / f"{time.strftime('%Y%m%d-%H%M%S')}-{a.port}-{int(a.rate)}"
    out.mkdir(parents=True, exist_ok=True)
    users = user_names(nusers, a.prefix)
    csv_path = out / "users.csv"
    write_csv(csv_path, users, a.password)

    if a.provision_dialtone:
        provision_dialtone(a.dialtone_bin, a.provision_dialtone, users, a.password)

    pid = a.pid or pid_by_port(a.port)
    if pid is None:
        log(f"warning: no process found listening on port {a.port}: CPU not measured")

    limit = a.limit or max(200, int(a.rate / 2))
    stf, err = out / "stats.csv", out / "errors.log"
    local_ip = a.host
    host = f"[{a.host}]" if ":" in a.host else a.host
    cmd = ["sipp", f"{host}:{a.port}", "-sf", str(SCENARIO), "-inf", str(csv_path),
           "-t", a.transport, "-i", local_ip, "-p", str(free_local_port(local_ip)),
           "-key", "expires", str(a.expires),
           # SIPp's default socket buffer (64 KB) overflows above ~4000/s: the
           # kernel then drops the registrar's answers and SIPp retransmits
           "-buff_size", str(a.buff_size),
           "-r", f"{a.rate:g}", "-m", str(calls), "-l", str(limit),
           "-nostdin", "-timeout", f"{int(a.seconds) + 30}s", "-timeout_error",
           "-max_recv_loops", "10000", "-max_sched_loops", "10000",
           "-trace_stat", "-stf", str(stf), "-fd", "1",
           "-trace_err", "-error_file", str(err)]
    (out / "command.txt").write_text(" ".join(cmd) + "\n")
    log(f"{calls} registrations at {a.rate:g}/s over {nusers} users -> {a.host}:{a.port} "
        f"({a.transport}), target pid {pid}; output in {out}")

    cpu0 = cpu_ticks(pid) if pid else 0
    cs0 = context_switches(pid) if pid else 0
    drops0 = udp_rcvbuf_errors()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    with open(out / "sipp.stdout", "wb") as so:
        try:
            rc = subprocess.run(cmd, cwd=out, stdin=subprocess.DEVNULL, stdout=so,
                                stderr=subprocess.STDOUT, timeout=a.seconds + 90).returncode
        except subprocess.TimeoutExpired:
            rc = -1
    wall = time.monotonic() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu1 = cpu_ticks(pid) if pid else 0
    cs1 = context_switches(pid) if pid else 0
    drops1 = udp_rcvbuf_errors()

    st = parse_stats(stf)

    def num(k: str) -> int:
        try:
            return int(st.get(k, "0"))
        except ValueError:
            return 0

    ok, failed = num("SuccessfulCall(C)"), num("FailedCall(C)")
    created = num("TotalCallCreated")
    target_cpu_s = (cpu1 - cpu0) / CLK_TCK
    sipp_cpu_s = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    mean_ms = duration_ms(st.get("CallLength(C)", ""))  # SIPp's resolution is 1 ms
    hist = {k.split("_", 1)[1]: int(v) for k, v in st.items()
            if k.startswith("CallLengthRepartition_") and v.isdigit() and int(v)}
    summary = {
        "target": f"{a.host}:{a.port}/{a.transport}",
        "target_pid": pid,
        "rate_asked": a.rate,
        "seconds_asked": a.seconds,
        "users": nusers,
        "sipp_exit": rc,
        "registrations_created": created,
        "successful": ok,
        "failed": failed,
        "retransmissions": num("Retransmissions(C)"),
        # datagrams the kernel dropped on full receive buffers (either side)
        "udp_rcvbuf_drops": (drops1 - drops0) if drops0 is not None and drops1 is not None else None,
        "failed_timeouts": num("FailedMaxUDPRetrans(C)") + num("FailedTimeoutOnRecv(C)"),
        "failed_unexpected": num("FailedUnexpectedMessage(C)"),
        "wall_seconds": round(wall, 3),
        "achieved_rate": round(ok / wall, 1) if wall > 0 else 0,
        "mean_registration_ms": mean_ms,
        "registration_ms_histogram": " ".join(f"{k}:{v}" for k, v in hist.items()),
        "target_cpu_seconds": round(target_cpu_s, 3),
        "target_cpu_us_per_registration": round(target_cpu_s * 1e6 / ok, 1) if ok and pid else None,
        "target_cpu_percent_of_one_core": round(target_cpu_s / wall * 100, 1) if wall > 0 and pid else None,
        "target_context_switches_per_registration": round((cs1 - cs0) / ok, 2) if ok and pid else None,
        "sipp_cpu_seconds": round(sipp_cpu_s, 3),
        "out": str(out),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    for k, v in summary.items():
        print(f"{k:34} {v}")
    if rc not in (0, 1):
        log(f"sipp exited with {rc}: see {out}/sipp.stdout and {err}")
    return 0 if (rc == 0 and failed == 0 and ok == calls) else 1


if __name__ == "__main__":
    sys.exit(main())

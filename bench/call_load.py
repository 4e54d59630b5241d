#!/usr/bin/env python3
"""Call load through a SIP switch on loopback: SIPp's uac_load.xml (with RTP:
SIPp's PCMA pcap, 236 packets of 30 ms, 7.05 s) calling from a trunk address
(127.0.0.2) at RATE calls/s for SECONDS, each call held HOLD ms, to a SIPp
uas_load.xml callee that echoes the RTP (-rtp_echo). Run it through
bench/call_load.sh (same arguments); see --help.

Targets:
  dialtone  started here with its own config and SQLite database
            ($DIALTONE_BIN, default target/release/dialtone): a trunk
            "carrier" known by 127.0.0.2, a user "bench" registered by SIPp
            (register.xml) from the callee's port, a number routed to it. The
            calls go trunk -> dialtone (B2BUA, RTP anchored) -> phone.
  kamailio  the signalling baseline: bench/kamailio-proxy.cfg (stateful,
            record-routing proxy, 2 workers) relaying every INVITE to the
            callee. It does not touch media: with RTP on, the RTP goes
            straight from caller to callee, so compare it with --no-rtp.

What it prints (and writes to OUT/summary.json):
  - calls attempted / successful / failed (caller and callee side), retransmissions
  - the target's CPU (utime+stime of its process tree, /proc/PID/stat) during
    the run, per successful call (ms) and as % of one core
  - the target's memory: VmRSS (/proc/PID/status, summed over the tree)
    before the load and at its peak, and the growth per concurrent call at
    the peak (concurrent calls: SIPp's current-call count, sampled with RSS)
  - dialtone only: its /metrics at the end (calls active, media endpoints),
    its call records (answered count) and, if the records' stats carry
    per-leg rtp_in/rtp_out, the RTP packets it received and forwarded: the
    relay loss inside dialtone = 1 - out/in; the packets the pcap holds per
    call for reference
  - UDP receive-buffer drops, host-wide (/proc/net/snmp RcvbufErrors), less
    those at the caller's media socket (the caller SIPp never reads the
    echoed RTP, so that socket overflows by design; /proc/net/udp drops):
    SIPp 3.6.1 keeps no RTP statistics of its own for pcap play, so the
    kernel's counters, with dialtone's per-leg counts against the packets
    the pcap holds, are the loss indication

Loopback only; every wait bounded.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "tests"))
from siptool import rtp_counts  # noqa: E402  (tests/siptool.py)
from register_load import (CLK_TCK, context_switches, cpu_ticks, free_local_port, parse_stats,  # noqa: E402
                           process_tree, udp_rcvbuf_errors)

SCEN = REPO / "sipp-scenarios"
PCAP = Path("/usr/share/sip-tester/g711a.pcap")
TRUNK_IP = "127.0.0.2"
LOOPBACK = "127.0.0.1"
NUMBER = "15550000001"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def rss_kib(root: int) -> int:
    total = 0
    for p in process_tree(root):
        try:
            for line in open(f"/proc/{p}/status"):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def fd_count(pid: int) -> int | None:
    """Open file descriptors of one process."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def socket_drops(ip: str, port: int) -> int:
    """Datagrams the kernel dropped on the UDP socket bound to ip:port
    (/proc/net/udp "drops" column), 0 if there is none."""
    a, b, c, d = (int(x) for x in ip.split("."))
    want = f"{d:02X}{c:02X}{b:02X}{a:02X}:{port:04X}"
    try:
        for line in open("/proc/net/udp").read().splitlines()[1:]:
            f = line.split()
            if len(f) >= 13 and f[1] == want:
                return int(f[-1])
    except OSError:
        pass
    return 0


def pcap_packets(path: Path) -> int | None:
    """Packets in a classic pcap file."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if len(data) < 24:
        return None
    endian = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    i, n = 24, 0
    while i + 16 <= len(data):
        incl = struct.unpack(endian + "I", data[i + 8:i + 12])[0]
        i += 16 + incl
        n += 1
    return n


def sipp_cmd(scenario: str, target: str | None, local_ip: str, port: int, mport: int, out: Path,
             name: str, extra: list[str]) -> list[str]:
    cmd = ["sipp"] + ([target] if target else []) + [
        "-sf", str(SCEN / scenario), "-i", local_ip, "-p", str(port), "-mi", local_ip, "-mp", str(mport),
        "-nostdin", "-trace_err", "-error_file", str(out / f"{name}-errors.log"),
        "-trace_stat", "-stf", str(out / f"{name}-stats.csv"), "-fd", "1",
        "-buff_size", str(4 * 1024 * 1024), "-max_recv_loops", "10000", "-max_sched_loops", "10000"]
    return cmd + extra


class Target:
    pid: int
    sip_port: int

    def metrics(self) -> dict[str, float]:
        return {}

    def cpu(self) -> int:
        """CPU ticks of the target's process tree."""
        return cpu_ticks(self.pid)

    def stop(self) -> None: ...


class Dialtone(Target):
    def __init__(self, a, out: Path):
        binary = os.environ.get("DIALTONE_BIN", "target/release/dialtone")
        self.binary = binary if os.path.isabs(binary) else str(REPO / binary)
        if not Path(self.binary).exists():
            sys.exit(f"no dialtone binary at {self.binary} (build it, or set DIALTONE_BIN)")
        self.work = Path(tempfile.mkdtemp(prefix="dialtone-callbench."))
        self.sip_port, self.http_port = a.sip_port, a.http_port
        self.cfg = self.work / "dialtone.toml"
        self.cfg.write_text(f"""[sip]
listen = ["udp:{LOOPBACK}:{self.sip_port}"]
domain = "{LOOPBACK}"
[media]
rtp_ports = "20000-39999"
advertise_ip = "{LOOPBACK}"
[database]
url = "sqlite://{self.work / 'dialtone.db'}"
[http]
listen = "{LOOPBACK}:{self.http_port}"
[log]
level = "warn"
""")
        self.cli("user", "add", "bench", "--password", "secret")
        self.cli("trunk", "add", "carrier", "--host", f"{TRUNK_IP}:5099", "--inbound-ip", TRUNK_IP)
        self.cli("number", "add", NUMBER, "--to", "user:bench")
        self.errf = open(out / "dialtone.stderr", "wb")
        self.proc = subprocess.Popen([self.binary, "--config", str(self.cfg), "run"], cwd=self.work,
                                     stdout=self.errf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        self.pid = self.proc.pid
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://{LOOPBACK}:{self.http_port}/healthz", timeout=0.5) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        sys.exit(f"dialtone did not come up: {out / 'dialtone.stderr'}")

    def cli(self, *args: str) -> str:
        cp = subprocess.run([self.binary, "--config", str(self.cfg), *args], capture_output=True, text=True,
                            timeout=120)
        if cp.returncode != 0:
            sys.exit(f"dialtone {' '.join(args)} failed:\n{cp.stderr}")
        return cp.stdout

    def metrics(self) -> dict[str, float]:
        try:
            with urllib.request.urlopen(f"http://{LOOPBACK}:{self.http_port}/metrics", timeout=2) as r:
                text = r.read().decode()
        except OSError:
            return {}
        out = {}
        for line in text.splitlines():
            m = re.match(r"^(dialtone_[A-Za-z0-9_:]*(?:\{[^}]*\})?)\s+(\S+)", line)
            if m:
                try:
                    out[m.group(1)] = float(m.group(2))
                except ValueError:
                    pass
        return out

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.errf.close()


class Kamailio(Target):
    """Kamailio as a stateful proxy; with `rtpengine`, its rtpengine module
    anchors every call's media in an rtpengine started here (userspace, as
    bench/rtpengine_relay.sh runs it), whose CPU counts with Kamailio's."""

    def __init__(self, a, out: Path, dest_port: int, rtpengine: bool = False):
        if shutil.which("kamailio") is None:
            sys.exit("kamailio not found (scripts/setup.sh installs it)")
        self.sip_port = a.sip_port
        self.dir = Path(tempfile.mkdtemp(prefix="kam-proxy."))
        self.rtpengine = None
        extra: list[str] = []
        if rtpengine:
            if shutil.which("rtpengine") is None:
                sys.exit("rtpengine not found: scripts/setup.sh --bench installs Debian's rtpengine-daemon")
            ng_port = free_local_port(LOOPBACK)
            rcmd = ["rtpengine", "-f", "-E", "--config-file=none", "-t", "-1", "-i", LOOPBACK,
                    "-n", f"{LOOPBACK}:{ng_port}", "-m", "40000", "-M", "59999", "--num-threads=2", "-L", "4"]
            (out / "rtpengine.command.txt").write_text(" ".join(rcmd) + "\n")
            self.rerrf = open(out / "rtpengine.log", "wb")
            self.rtpengine = subprocess.Popen(rcmd, stdout=self.rerrf, stderr=subprocess.STDOUT,
                                              stdin=subprocess.DEVNULL, start_new_session=True)
            time.sleep(1.0)
            extra = ["-A", "WITH_RTPENGINE", "-A", f'RTPENGINE_SOCK="udp:{LOOPBACK}:{ng_port}"']
        cmd = ["kamailio", "-f", str(REPO / "bench" / "kamailio-proxy.cfg"), "-DD", "-E",
               "-m", "256", "-M", "16", "-n", "2", "-b", "4194304",
               "-A", f"KAM_PORT={self.sip_port}", "-A", f'DEST="sip:{LOOPBACK}:{dest_port}"',
               *extra, "-P", str(self.dir / "kamailio.pid"), "-Y", str(self.dir)]
        (out / "kamailio.command.txt").write_text(" ".join(cmd) + "\n")
        self.errf = open(out / "kamailio.stderr", "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.errf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        self.pid = self.proc.pid
        for _ in range(50):
            if len(process_tree(self.pid)) > 2:
                break
            time.sleep(0.1)
        time.sleep(0.5)

    def cpu(self) -> int:
        return cpu_ticks(self.pid) + (cpu_ticks(self.rtpengine.pid) if self.rtpengine else 0)

    def stop(self) -> None:
        if self.rtpengine is not None:
            self.rtpengine.terminate()
            try:
                self.rtpengine.wait(10)
            except subprocess.TimeoutExpired:
                self.rtpengine.kill()
            self.rerrf.close()
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(5)
        self.errf.close()


def main() -> int:
    ap = argparse.ArgumentParser(prog="bench/call_load.sh",
                                 description="Call load with RTP through dialtone (or Kamailio), with CPU and memory.",
                                 epilog="Example: bench/call_load.sh 20 30 --hold-ms 5000")
    ap.add_argument("rate", type=float, help="calls per second")
    ap.add_argument("seconds", type=float, help="how long new calls are started")
    ap.add_argument("--hold-ms", type=int, default=7500, help="call hold time (SIPp -d; default 7500: the whole 7.05 s pcap)")
    ap.add_argument("--limit", type=int, default=None, help="max concurrent calls (SIPp -l; default 2*rate*hold)")
    ap.add_argument("--target", choices=["dialtone", "kamailio", "kamailio-rtpengine"], default="dialtone",
                    help="kamailio-rtpengine: Kamailio with its rtpengine module anchoring the media "
                         "in rtpengine (userspace); CPU is both processes'")
    ap.add_argument("--no-rtp", action="store_true", help="signalling only (uac.xml without -set rtp)")
    ap.add_argument("--sip-port", type=int, default=25260)
    ap.add_argument("--http-port", type=int, default=28280)
    ap.add_argument("--out", default=None)
    ap.add_argument("--settle", type=float, default=1.0,
                    help="seconds to wait after the load before reading /metrics (35 outlasts every transaction)")
    ap.add_argument("--sample-every", type=float, default=0,
                    help="record the target's RSS, open fds and live calls every N seconds (a soak's timeline)")
    a = ap.parse_args()
    if not (0 < a.rate <= 2000 and 0 < a.seconds <= 7200 and 0 <= a.hold_ms <= 600000):
        sys.exit("rate in (0, 2000], seconds in (0, 7200], hold-ms in [0, 600000]")
    if shutil.which("sipp") is None:
        sys.exit("sipp not found (scripts/setup.sh installs it)")
    calls = max(1, int(round(a.rate * a.seconds)))
    limit = a.limit or max(10, int(2 * a.rate * max(a.hold_ms, 1000) / 1000))
    out = Path(a.out).resolve() if a.out else REPO / "bench" / "out" / f"calls-{a.target}-{time.strftime('%Y%m%d-%H%M%S')}-{int(a.rate)}"
    out.mkdir(parents=True, exist_ok=True)

    callee_port = free_local_port(LOOPBACK)
    callee_mport = free_local_port(LOOPBACK)
    caller_mport = free_local_port(TRUNK_IP)
    target: Target = (Dialtone(a, out) if a.target == "dialtone"
                      else Kamailio(a, out, callee_port, rtpengine=a.target == "kamailio-rtpengine"))
    procs: list[subprocess.Popen] = []
    try:
        if a.target == "dialtone":
            reg = subprocess.run(sipp_cmd("register.xml", f"{LOOPBACK}:{target.sip_port}", LOOPBACK, callee_port,
                                          callee_mport, out, "register",
                                          ["-m", "1", "-s", "bench", "-ap", "secret", "-key", "expires", "3600",
                                           "-timeout", "10s", "-timeout_error"]),
                                 cwd=out, capture_output=True, timeout=30)
            if reg.returncode != 0:
                sys.exit(f"the callee could not register: {out}/register-errors.log")
        uas_cmd = sipp_cmd("uas_load.xml", None, LOOPBACK, callee_port, callee_mport, out, "uas",
                           ["-m", str(calls), "-rtp_echo", "-timeout", f"{int(a.seconds + a.hold_ms / 1000 + 60)}s"])
        uac_scen = "uac.xml" if a.no_rtp else "uac_load.xml"
        uac_cmd = sipp_cmd(uac_scen, f"{LOOPBACK}:{target.sip_port}", TRUNK_IP, free_local_port(TRUNK_IP),
                           caller_mport, out, "uac",
                           ["-s", NUMBER, "-r", f"{a.rate:g}", "-m", str(calls), "-l", str(limit),
                            "-d", str(a.hold_ms), "-timeout", f"{int(a.seconds + a.hold_ms / 1000 + 60)}s",
                            "-timeout_error"])
        (out / "command.txt").write_text(" ".join(uas_cmd) + "\n" + " ".join(uac_cmd) + "\n")
        uas = subprocess.Popen(uas_cmd, cwd=out, stdin=subprocess.DEVNULL, stdout=open(out / "uas.stdout", "wb"),
                               stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(uas)
        time.sleep(0.5)
        log(f"{calls} calls at {a.rate:g}/s, hold {a.hold_ms} ms, {'no RTP' if a.no_rtp else 'RTP (pcap, echoed)'}, "
            f"through {a.target} (pid {target.pid}); output in {out}")
        rss0 = rss_kib(target.pid)
        cpu0, drops0, cs0 = target.cpu(), udp_rcvbuf_errors(), context_switches(target.pid)
        t0 = time.monotonic()
        uac = subprocess.Popen(uac_cmd, cwd=out, stdin=subprocess.DEVNULL, stdout=open(out / "uac.stdout", "wb"),
                               stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(uac)
        peak_rss, peak_calls, rss_at_peak_calls = rss0, 0, rss0
        caller_media_drops = 0
        deadline = t0 + a.seconds + a.hold_ms / 1000 + 120
        timeline: list[dict] = []
        fds0, next_sample = fd_count(target.pid), t0
        while uac.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
            rss = rss_kib(target.pid)
            if a.sample_every and time.monotonic() >= next_sample:
                next_sample += a.sample_every
                timeline.append({"t": round(time.monotonic() - t0, 1), "rss_kib": rss,
                                 "fds": fd_count(target.pid),
                                 "calls": parse_stats(out / "uac-stats.csv").get("CurrentCall")})
                log(f"soak: {timeline[-1]}")
            st = parse_stats(out / "uac-stats.csv")
            try:
                cur = int(st.get("CurrentCall", "0"))
            except ValueError:
                cur = 0
            peak_rss = max(peak_rss, rss)
            # SIPp's caller does not read the echoed RTP: its media socket
            # overflows, and those drops are not the switch's
            caller_media_drops = max(caller_media_drops, socket_drops(TRUNK_IP, caller_mport))
            if cur >= peak_calls:
                peak_calls, rss_at_peak_calls = cur, rss
        if uac.poll() is None:
            uac.kill()
        wall = time.monotonic() - t0
        cpu1, drops1, cs1 = target.cpu(), udp_rcvbuf_errors(), context_switches(target.pid)
        try:
            uas.wait(30)
        except subprocess.TimeoutExpired:
            uas.kill()
        # --settle 35 outlasts the INVITE and BYE transactions' last timers
        # (32 s), so that /metrics shows whether everything went back to 0.
        time.sleep(a.settle)
        metrics = target.metrics()
        rss_after, fds_after = rss_kib(target.pid), fd_count(target.pid)
        records = []
        if a.target == "dialtone":
            try:
                records = json.loads(target.cli("calls", "list", "--json", "--limit", str(calls + 100)))
            except (ValueError, SystemExit):
                records = []
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
        target.stop()

    su, ss = parse_stats(out / "uac-stats.csv"), parse_stats(out / "uas-stats.csv")
    num = lambda st, k: int(st.get(k, "0") or 0) if str(st.get(k, "0")).isdigit() else 0
    ok, failed = num(su, "SuccessfulCall(C)"), num(su, "FailedCall(C)")
    cpu_s = (cpu1 - cpu0) / CLK_TCK
    pairs = [p for r in records for p in rtp_counts(r.get("stats"))]
    rtp_in, rtp_out = sum(i for i, _ in pairs), sum(o for _, o in pairs)
    summary = {
        "target": a.target, "target_pid": target.pid, "rtp": not a.no_rtp,
        "rate_asked": a.rate, "seconds_asked": a.seconds, "hold_ms": a.hold_ms, "limit": limit,
        "calls_created": num(su, "TotalCallCreated"), "successful": ok, "failed": failed,
        "callee_successful": num(ss, "SuccessfulCall(C)"), "callee_failed": num(ss, "FailedCall(C)"),
        "retransmissions": num(su, "Retransmissions(C)") + num(ss, "Retransmissions(C)"),
        "wall_seconds": round(wall, 2),
        "target_cpu_seconds": round(cpu_s, 3),
        "target_cpu_ms_per_call": round(cpu_s * 1000 / ok, 3) if ok else None,
        "target_cpu_percent_of_one_core": round(100 * cpu_s / wall, 1) if wall else None,
        "target_context_switches_per_call": round((cs1 - cs0) / ok, 1) if ok else None,
        "rss_before_kib": rss0, "rss_peak_kib": peak_rss, "rss_after_kib": rss_after,
        "fds_before": fds0, "fds_after": fds_after, "timeline": timeline,
        "peak_concurrent_calls": peak_calls,
        "rss_kib_per_concurrent_call": round((rss_at_peak_calls - rss0) / peak_calls, 1) if peak_calls else None,
        "udp_rcvbuf_drops_host": (drops1 - drops0) if drops0 is not None and drops1 is not None else None,
        "udp_drops_at_caller_media_socket": caller_media_drops,
        "udp_rcvbuf_drops_elsewhere": (drops1 - drops0 - caller_media_drops) if drops0 is not None and drops1 is not None else None,
        "pcap_packets_per_call": None if a.no_rtp else pcap_packets(PCAP),
        "caller_packets_expected_per_call": None if a.no_rtp else min(pcap_packets(PCAP) or 0, int(a.hold_ms / 30.03)),
    }
    if a.target == "dialtone":
        summary.update({
            "metrics_calls_active": metrics.get("dialtone_calls_active"),
            "metrics_media_endpoints": metrics.get("dialtone_media_endpoints"),
            "metrics_transactions": (metrics.get("dialtone_sip_server_transactions", 0)
                                     + metrics.get("dialtone_sip_client_transactions", 0)) if metrics else None,
            "metrics_calls_total": metrics.get("dialtone_calls_total"),
            "records": len(records),
            "records_answered": sum(1 for r in records if r.get("outcome") == "answered"),
            "dialtone_rtp_in": rtp_in if pairs else None,
            "dialtone_rtp_out": rtp_out if pairs else None,
            "dialtone_relay_loss_percent": round(100 * (1 - rtp_out / rtp_in), 3) if rtp_in else None,
            "target_cpu_us_per_relayed_packet": round(cpu_s * 1e6 / rtp_out, 2) if rtp_out else None,
        })
    summary["out"] = str(out)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    for k, v in summary.items():
        print(f"{k:34} {v}")
    return 0 if failed == 0 and ok == calls else 1


if __name__ == "__main__":
    sys.exit(main())

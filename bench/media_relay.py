#!/usr/bin/env python3
"""Media relay benchmark: N RTP streams, both ways, through a relay on
loopback, with the relay's CPU per packet and the loss measured.

Targets:
  rtpengine  the baseline: Debian's rtpengine-daemon (10.5), userspace only,
             started here as
               rtpengine -f -E --config-file=none -t -1 -i 127.0.0.1 \\
                   -n 127.0.0.1:NG_PORT -m 30000 -M 40000 --num-threads=2
             (-t -1: no kernel forwarding table; every packet goes through
             its userspace threads). Each stream is one call set up over the
             ng control protocol (bencode over UDP): "offer" with side A's
             SDP, "answer" with side B's; A then sends to the port in the
             rewritten answer, B to the one in the rewritten offer.
  dialtone   the same streams through dialtone's RTP relay: N calls from a
             trunk (a Python SIP UA on 127.0.0.2) to a number routed to a
             registered Python phone (127.0.0.1), each with its own RTP
             sockets (tests/siptool.py). dialtone is started here with its
             own config and SQLite database ($DIALTONE_BIN, default
             target/release/dialtone).

The load: every stream sends 20 ms packets (12-byte RTP header + 160 bytes
of PCMU) at --pps per direction from A and from B for --seconds, from one
Python thread with its own sockets. Measured:
  - packets sent and received per direction, loss = 1 - received/sent
  - the relay's CPU (utime+stime of the process and its descendants,
    /proc/PID/stat) during the send period, per relayed packet (µs) and as
    % of one core; the generator's own CPU (it shares the 2 cores)
  - UDP receive-buffer drops, host-wide (/proc/net/snmp RcvbufErrors)

Loopback only. Run it through bench/rtpengine_relay.sh (rtpengine) or
directly: python3 bench/media_relay.py --target dialtone --streams 100 --seconds 10
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import secrets
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

from register_load import cpu_ticks, udp_rcvbuf_errors, CLK_TCK  # noqa: E402

LOOPBACK = "127.0.0.1"
TRUNK_IP = "127.0.0.2"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- bencode (the ng protocol) --------------------------------------------------

def bencode(v) -> bytes:
    if isinstance(v, bool):
        v = int(v)
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, bytes):
        return b"%d:%s" % (len(v), v)
    if isinstance(v, (list, tuple)):
        return b"l" + b"".join(bencode(x) for x in v) + b"e"
    if isinstance(v, dict):
        return b"d" + b"".join(bencode(k) + bencode(v[k]) for k in sorted(v)) + b"e"
    raise TypeError(type(v))


def bdecode(data: bytes, i: int = 0):
    c = data[i:i + 1]
    if c == b"i":
        j = data.index(b"e", i)
        return int(data[i + 1:j]), j + 1
    if c == b"l":
        i += 1
        out = []
        while data[i:i + 1] != b"e":
            v, i = bdecode(data, i)
            out.append(v)
        return out, i + 1
    if c == b"d":
        i += 1
        out = {}
        while data[i:i + 1] != b"e":
            k, i = bdecode(data, i)
            v, i = bdecode(data, i)
            out[k.decode() if isinstance(k, bytes) else k] = v
        return out, i + 1
    j = data.index(b":", i)
    n = int(data[i:j])
    return data[j + 1:j + 1 + n], j + 1 + n


class Ng:
    """An ng-protocol client: '<cookie> <bencoded dict>' over UDP."""

    def __init__(self, port: int, host: str = LOOPBACK):
        self.addr = (host, port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, 0))

    def __call__(self, cmd: dict, timeout: float = 2.0) -> dict:
        cookie = secrets.token_hex(6).encode()
        self.sock.sendto(cookie + b" " + bencode(cmd), self.addr)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"ng {cmd.get('command')}: no answer from {self.addr}")
            self.sock.settimeout(left)
            try:
                data, _ = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            c, _, body = data.partition(b" ")
            if c == cookie:
                d, _ = bdecode(body)
                return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in d.items()}


def sdp(ip: str, port: int) -> str:
    return (f"v=0\r\no=bench 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n")


def sdp_addr(text: str) -> tuple[str, int]:
    c = re.search(r"(?m)^c=IN IP4 (\S+)", text)
    m = re.search(r"(?m)^m=audio (\d+)", text)
    if not (c and m):
        raise ValueError(f"no c=/m= in SDP:\n{text}")
    return c.group(1), int(m.group(1))


def udp_socket(host: str) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    for _ in range(200):  # an even port, as RTP wants
        p = secrets.randbelow(4500) * 2 + 41000
        try:
            s.bind((host, p))
            return s
        except OSError:
            continue
    s.bind((host, 0))
    return s


class Stream:
    def __init__(self, a: socket.socket, b: socket.socket):
        self.a, self.b = a, b
        self.a_to: tuple[str, int] | None = None  # where A sends (the relay's port for A)
        self.b_to: tuple[str, int] | None = None
        self.sent_ab = self.sent_ba = self.recv_ab = self.recv_ba = 0


# --- targets ------------------------------------------------------------------------

def start_rtpengine(a, out: Path) -> tuple[subprocess.Popen, list]:
    if shutil.which("rtpengine") is None:
        sys.exit("rtpengine not found: scripts/setup.sh --bench installs Debian's rtpengine-daemon")
    cmd = ["rtpengine", "-f", "-E", "--config-file=none", "-t", "-1", "-i", LOOPBACK,
           "-n", f"{LOOPBACK}:{a.ng_port}", "-m", "30000", "-M", "40000",
           f"--num-threads={a.threads}", "-L", "4"]
    (out / "rtpengine.command.txt").write_text(" ".join(cmd) + "\n")
    errf = open(out / "rtpengine.log", "wb")
    proc = subprocess.Popen(cmd, stdout=errf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    ng = Ng(a.ng_port)
    for _ in range(50):
        if proc.poll() is not None:
            sys.exit(f"rtpengine exited with {proc.returncode}: see {out / 'rtpengine.log'}")
        try:
            if ng({"command": "ping"}, timeout=0.2).get("result") == "pong":
                break
        except TimeoutError:
            pass
    else:
        sys.exit("rtpengine did not answer ng ping")
    streams = []
    for i in range(a.streams):
        sa, sb = udp_socket(LOOPBACK), udp_socket(LOOPBACK)
        call_id, ft, tt = f"bench-{i}-{secrets.token_hex(4)}", "a" + secrets.token_hex(4), "b" + secrets.token_hex(4)
        r = ng({"command": "offer", "call-id": call_id, "from-tag": ft,
                "sdp": sdp(LOOPBACK, sa.getsockname()[1]), "ICE": "remove"})
        if r.get("result") != "ok":
            sys.exit(f"ng offer failed: {r}")
        to_b = sdp_addr(r["sdp"])  # B sends here
        r = ng({"command": "answer", "call-id": call_id, "from-tag": ft, "to-tag": tt,
                "sdp": sdp(LOOPBACK, sb.getsockname()[1]), "ICE": "remove"})
        if r.get("result") != "ok":
            sys.exit(f"ng answer failed: {r}")
        st = Stream(sa, sb)
        st.a_to, st.b_to = sdp_addr(r["sdp"]), to_b
        streams.append(st)

    def teardown():
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        errf.close()
    return proc, streams, teardown


def start_dialtone(a, out: Path):
    from siptool import SipUA, answer_call, place_call  # tests/siptool.py
    binary = os.environ.get("DIALTONE_BIN", "target/release/dialtone")
    binary = binary if os.path.isabs(binary) else str(REPO / binary)
    if not Path(binary).exists():
        sys.exit(f"no dialtone binary at {binary} (set DIALTONE_BIN)")
    work = Path(tempfile.mkdtemp(prefix="dialtone-mediabench."))
    cfg = work / "dialtone.toml"
    cfg.write_text(f"""[sip]
listen = ["udp:{LOOPBACK}:{a.sip_port}"]
domain = "{LOOPBACK}"
[media]
rtp_ports = "20000-29999"
advertise_ip = "{LOOPBACK}"
[database]
url = "sqlite://{work / 'dialtone.db'}"
[http]
listen = "{LOOPBACK}:{a.http_port}"
[log]
level = "warn"
""")

    def cli(*args):
        cp = subprocess.run([binary, "--config", str(cfg), *args], capture_output=True, text=True, timeout=60)
        if cp.returncode != 0:
            sys.exit(f"dialtone {' '.join(args)} failed:\n{cp.stderr}")

    cli("user", "add", "bench", "--password", "secret")
    cli("trunk", "add", "carrier", "--host", f"{TRUNK_IP}:5099", "--inbound-ip", TRUNK_IP)
    cli("number", "add", "15550000001", "--to", "user:bench")
    errf = open(out / "dialtone.stderr", "wb")
    proc = subprocess.Popen([binary, "--config", str(cfg), "run"], stdout=errf, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True, cwd=work)
    import urllib.request
    for _ in range(100):
        try:
            with urllib.request.urlopen(f"http://{LOOPBACK}:{a.http_port}/healthz", timeout=0.5) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.1)
    else:
        sys.exit("dialtone did not come up")
    phone = SipUA(LOOPBACK, user="bench")
    trunk = SipUA(TRUNK_IP, user="carrier")
    reg = phone.register("bench", "secret", (LOOPBACK, a.sip_port))
    if reg is None or reg.code != 200:
        sys.exit(f"REGISTER failed: {reg}")
    streams, dialogs = [], []
    for i in range(a.streams):
        sa, sb = udp_socket(TRUNK_IP), udp_socket(LOOPBACK)
        got: dict = {}

        def callee():
            inv = phone.wait_request("INVITE", 10)
            if inv is not None:
                got["d"] = answer_call(phone, inv, sdp(LOOPBACK, sb.getsockname()[1]).encode(), ring=False)

        t = threading.Thread(target=callee, daemon=True)
        t.start()
        call = place_call(trunk, (LOOPBACK, a.sip_port), f"sip:15550000001@{LOOPBACK}:{a.sip_port}",
                          sdp(TRUNK_IP, sa.getsockname()[1]).encode(), timeout=10)
        t.join(12)
        if call.final is None or call.final.code != 200 or "d" not in got:
            sys.exit(f"call {i} failed: {call.final}")
        st = Stream(sa, sb)
        st.a_to = (call.remote_sdp.ip, call.remote_sdp.port)
        st.b_to = (got["d"].remote_sdp.ip, got["d"].remote_sdp.port)
        streams.append(st)
        dialogs.append(call)

    def teardown():
        for c in dialogs:
            try:
                c.bye(timeout=2)
            except Exception:
                pass
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        phone.close()
        trunk.close()
        errf.close()
    return proc, streams, teardown


# --- the load -----------------------------------------------------------------------

def blast(streams: list[Stream], seconds: float, pps: int) -> float:
    """Send from every A and B at `pps` for `seconds`; count what arrives.
    Returns the wall time of the send period."""
    sel = selectors.DefaultSelector()
    for st in streams:
        st.a.setblocking(False)
        st.b.setblocking(False)
        sel.register(st.a, selectors.EVENT_READ, (st, "ba"))
        sel.register(st.b, selectors.EVENT_READ, (st, "ab"))
    payload = b"\xff" * 160
    ssrc_a = {id(st): secrets.randbits(32) for st in streams}
    ssrc_b = {id(st): secrets.randbits(32) for st in streams}
    interval = 1.0 / pps
    t0 = time.monotonic()
    n = 0
    end = t0 + seconds
    drain_until = None
    while True:
        now = time.monotonic()
        if now < end and now >= t0 + n * interval:
            for st in streams:
                hdr = struct.pack("!BBHII", 0x80, 0, n & 0xFFFF, (n * 160) & 0xFFFFFFFF, ssrc_a[id(st)])
                try:
                    st.a.sendto(hdr + payload, st.a_to)
                    st.sent_ab += 1
                except (BlockingIOError, OSError):
                    pass
                hdr = struct.pack("!BBHII", 0x80, 0, n & 0xFFFF, (n * 160) & 0xFFFFFFFF, ssrc_b[id(st)])
                try:
                    st.b.sendto(hdr + payload, st.b_to)
                    st.sent_ba += 1
                except (BlockingIOError, OSError):
                    pass
            n += 1
            continue
        if now >= end and drain_until is None:
            drain_until = now + 1.0
        if drain_until is not None and now >= drain_until:
            break
        timeout = max(0.0, (t0 + n * interval) - now) if now < end else 0.05
        for key, _ in sel.select(timeout):
            st, direction = key.data
            sock = key.fileobj
            for _ in range(64):
                try:
                    sock.recv(2048)
                except (BlockingIOError, InterruptedError):
                    break
                if direction == "ab":
                    st.recv_ab += 1
                else:
                    st.recv_ba += 1
    sel.close()
    return min(time.monotonic(), end) - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", choices=["rtpengine", "dialtone"], required=True)
    ap.add_argument("--streams", type=int, default=50, help="RTP streams (calls), each both ways")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--pps", type=int, default=50, help="packets/s per direction per stream (default 50: 20 ms)")
    ap.add_argument("--ng-port", type=int, default=2223, help="rtpengine's ng control port")
    ap.add_argument("--threads", type=int, default=2, help="rtpengine --num-threads")
    ap.add_argument("--sip-port", type=int, default=25160, help="dialtone's SIP port")
    ap.add_argument("--http-port", type=int, default=28180, help="dialtone's HTTP port")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    if not (1 <= a.streams <= 2000 and 0 < a.seconds <= 300 and 1 <= a.pps <= 200):
        sys.exit("streams 1..2000, seconds 0..300, pps 1..200")
    out = Path(a.out) if a.out else REPO / "bench" / "out" / f"media-{a.target}-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)

    log(f"setting up {a.streams} streams through {a.target} ...")
    starter = start_rtpengine if a.target == "rtpengine" else start_dialtone
    proc, streams, teardown = starter(a, out)
    try:
        time.sleep(0.5)
        cpu0, drops0 = cpu_ticks(proc.pid), udp_rcvbuf_errors()
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        wall = blast(streams, a.seconds, a.pps)
        cpu1, drops1 = cpu_ticks(proc.pid), udp_rcvbuf_errors()
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        teardown()
    sent = sum(s.sent_ab + s.sent_ba for s in streams)
    recv = sum(s.recv_ab + s.recv_ba for s in streams)
    cpu_s = (cpu1 - cpu0) / CLK_TCK
    gen_cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    summary = {
        "target": a.target,
        "streams": a.streams,
        "pps_per_direction": a.pps,
        "seconds": round(wall, 2),
        "packets_sent": sent,
        "packets_received": recv,
        "sent_a_to_b": sum(s.sent_ab for s in streams), "received_a_to_b": sum(s.recv_ab for s in streams),
        "sent_b_to_a": sum(s.sent_ba for s in streams), "received_b_to_a": sum(s.recv_ba for s in streams),
        "loss_percent": round(100.0 * (1 - recv / sent), 3) if sent else None,
        "streams_with_no_packets": sum(1 for s in streams if s.recv_ab == 0 or s.recv_ba == 0),
        "relay_pps": round(recv / wall, 1) if wall else None,
        "relay_cpu_seconds": round(cpu_s, 3),
        "relay_cpu_us_per_packet": round(cpu_s * 1e6 / recv, 2) if recv else None,
        "relay_cpu_percent_of_one_core": round(100 * cpu_s / wall, 1) if wall else None,
        "generator_cpu_percent_of_one_core": round(100 * gen_cpu / wall, 1) if wall else None,
        "udp_rcvbuf_drops": (drops1 - drops0) if drops0 is not None and drops1 is not None else None,
        "out": str(out),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    for k, v in summary.items():
        print(f"{k:34} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

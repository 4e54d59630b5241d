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
  - packets sent and received per direction, loss = 1 - received/sent;
    split, by the RTP timestamps received, into frames lost inside a stream
    (never came, between its first and last frame received), frames missing
    at its edges (before the first / after the last: a relay that drops a
    stream's first packet or still holds frames when the senders stop),
    reordered frames, duplicates
  - the relay's CPU (utime+stime of the process and its descendants,
    /proc/PID/stat) during the send period, per relayed packet (µs) and as
    % of one core; the generator's own CPU (it shares the 2 cores)
  - UDP receive-buffer drops, host-wide (/proc/net/snmp RcvbufErrors)

With --transcode, every stream is a call that needs transcoding: side A
(the offerer: the trunk, for dialtone) speaks PCMU only (PT 0, 160-byte
payloads, a 1 kHz tone), side B (the answerer: the phone) Opus only
(opus/48000/2 at the PT the relay offered it, 20 ms packets, timestamps
+960, a 400 Hz tone encoded once with libopus through ctypes, mono,
OPUS_APPLICATION_VOIP, --opus-bitrate). For rtpengine the ng offer carries
"codec": {"transcode": ["opus"]} so rtpengine adds opus/48000/2 to the offer
B sees; for dialtone the phone answers with opus at the PT dialtone offered
(and fails with "dialtone did not offer opus" when it offered none).
Measured on top: per direction, packets with the wrong payload type (A must
get PT 0, B the opus PT) and, for --tone-sample streams, whether 15
consecutive received payloads (after 1 s) decode to the other side's tone
(Opus decoded with libopus, PCMU with a µ-law table; dominant frequency
within 20 Hz, carrying at least half the energy): "tone ok". Also the Opus
the relay sends to B (mean payload bytes -> kbit/s, TOC mode/bandwidth/
stereo) and the relay's CPU per call: ms of CPU per second of call. The
generator renices itself by -10 once the relay runs (--generator-nice), so
that it keeps its 20 ms schedule when a transcoding relay saturates the
cores; its worst send lateness is reported.

Loopback only. Run it through bench/rtpengine_relay.sh (rtpengine),
bench/transcode_compare.sh (both targets, --transcode), or directly:
python3 bench/media_relay.py --target dialtone --streams 100 --seconds 10
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
import rtp_audio  # noqa: E402

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


def sdp_pcmu_te(ip: str, port: int) -> str:
    """Side A's offer in --transcode mode: PCMU only, plus telephone-event."""
    return (f"v=0\r\no=bench 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
            f"a=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n")


def sdp_opus(ip: str, port: int, pt: int) -> str:
    """Side B's answer in --transcode mode: Opus only (mono preferred: no stereo=1)."""
    return (f"v=0\r\no=bench 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP {pt}\r\na=rtpmap:{pt} opus/48000/2\r\na=ptime:20\r\na=sendrecv\r\n")


def opus_pt(text: str) -> int | None:
    """The payload type of opus/48000/2 in an SDP, if it is in the m=audio line."""
    m = re.search(r"(?m)^m=audio \d+ \S+((?: \d+)*)", text)
    listed = set(m.group(1).split()) if m else set()
    for pt in re.findall(r"(?mi)^a=rtpmap:(\d+) opus/48000(?:/2)?\s*$", text):
        if pt in listed:
            return int(pt)
    return None


def sdp_payloads(text: str) -> list[int]:
    m = re.search(r"(?m)^m=audio \d+ \S+((?: \d+)*)", text)
    return [int(x) for x in m.group(1).split()] if m else []


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
        self.pt_a, self.pt_b = 0, 0  # what A sends (and must receive) / what B sends (and must receive)
        self.badpt_ab = self.badpt_ba = 0  # received with another payload type
        self.bytes_ab = 0  # RTP payload bytes received by B
        self.sample = False  # keep a run of received payloads for the tone check
        self.got_ab: list[bytes] = []
        self.got_ba: list[bytes] = []
        # loss inside the stream, from the RTP timestamps that arrive (a relay
        # renumbers sequence numbers when it transcodes, but each frame still
        # advances the timestamp by one frame): the frame indices seen
        # (timestamp - the first one's, in frames), frames that arrived after
        # a later one (reordered), timestamps off the frame grid (odd)
        self.ts0_ab: int | None = None
        self.ts0_ba: int | None = None
        self.seen_ab: set[int] = set()
        self.seen_ba: set[int] = set()
        self.max_ab = self.max_ba = -1
        self.reord_ab = self.reord_ba = self.odd_ab = self.odd_ba = 0

    def gaps(self, direction: str) -> int:
        """Frames missing between the first and the last frame received."""
        seen, top = (self.seen_ab, self.max_ab) if direction == "ab" else (self.seen_ba, self.max_ba)
        return top + 1 - len(seen) if top >= 0 else 0


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# --- targets ------------------------------------------------------------------------

def start_rtpengine(a, out: Path) -> tuple[subprocess.Popen, list]:
    if shutil.which("rtpengine") is None:
        sys.exit("rtpengine not found: scripts/setup.sh --bench installs Debian's rtpengine-daemon")
    cmd = ["rtpengine", "-f", "-E", "--config-file=none", "-t", "-1", "-i", LOOPBACK,
           "-n", f"{LOOPBACK}:{a.ng_port}", "-m", "30000", "-M", "40000",
           f"--num-threads={a.threads}", "-L", str(getattr(a, "rtpengine_log_level", 4))]
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
    try:
        for i in range(a.streams):
            sa, sb = udp_socket(LOOPBACK), udp_socket(LOOPBACK)
            call_id, ft, tt = f"bench-{i}-{secrets.token_hex(4)}", "a" + secrets.token_hex(4), "b" + secrets.token_hex(4)
            offer = {"command": "offer", "call-id": call_id, "from-tag": ft,
                     "sdp": sdp(LOOPBACK, sa.getsockname()[1]), "ICE": "remove"}
            if a.transcode:
                # A offers PCMU only; rtpengine adds opus/48000/2 for B and
                # transcodes (its own encoder settings: see the README)
                offer["sdp"] = sdp_pcmu_te(LOOPBACK, sa.getsockname()[1])
                offer["codec"] = {"transcode": ["opus"]}
            r = ng(offer)
            if r.get("result") != "ok":
                sys.exit(f"ng offer failed: {r}")
            to_b = sdp_addr(r["sdp"])  # B sends here
            answer_sdp = sdp(LOOPBACK, sb.getsockname()[1])
            pt = 0
            if a.transcode:
                pt = opus_pt(r["sdp"])
                if pt is None:
                    sys.exit(f"rtpengine did not add opus to the offer:\n{r['sdp']}")
                answer_sdp = sdp_opus(LOOPBACK, sb.getsockname()[1], pt)
            if i == 0:
                (out / "offer-to-b.sdp").write_text(r["sdp"])
            r = ng({"command": "answer", "call-id": call_id, "from-tag": ft, "to-tag": tt,
                    "sdp": answer_sdp, "ICE": "remove"})
            if r.get("result") != "ok":
                sys.exit(f"ng answer failed: {r}")
            if i == 0:
                (out / "answer-to-a.sdp").write_text(r["sdp"])
            if a.transcode and 0 not in sdp_payloads(r["sdp"]):
                sys.exit(f"rtpengine's answer to A has no PCMU:\n{r['sdp']}")
            st = Stream(sa, sb)
            st.a_to, st.b_to = sdp_addr(r["sdp"]), to_b
            st.pt_b = pt
            streams.append(st)
    except BaseException:
        stop_process(proc)
        raise

    def teardown():
        stop_process(proc)
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
    phone = trunk = None
    streams, dialogs = [], []

    def teardown():
        for c in dialogs:
            try:
                c.bye(timeout=2)
            except Exception:
                pass
        stop_process(proc)
        for ua in (phone, trunk):
            if ua is not None:
                ua.close()
        errf.close()

    try:
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
        for i in range(a.streams):
            sa, sb = udp_socket(TRUNK_IP), udp_socket(LOOPBACK)
            got: dict = {}

            def callee():
                inv = phone.wait_request("INVITE", 10)
                if inv is None:
                    return
                answer = sdp(LOOPBACK, sb.getsockname()[1])
                if a.transcode:
                    offer = inv.body.decode("utf-8", "replace")
                    if i == 0:
                        (out / "offer-to-b.sdp").write_text(offer)
                    pt = opus_pt(offer)
                    if pt is None:
                        got["no_opus"] = offer
                        phone.reply(inv, 488, "Not Acceptable Here", to_tag=secrets.token_hex(4))
                        return
                    got["pt"] = pt
                    answer = sdp_opus(LOOPBACK, sb.getsockname()[1], pt)
                got["d"] = answer_call(phone, inv, answer.encode(), ring=False)

            t = threading.Thread(target=callee, daemon=True)
            t.start()
            offer_a = sdp_pcmu_te(TRUNK_IP, sa.getsockname()[1]) if a.transcode else sdp(TRUNK_IP, sa.getsockname()[1])
            call = place_call(trunk, (LOOPBACK, a.sip_port), f"sip:15550000001@{LOOPBACK}:{a.sip_port}",
                              offer_a.encode(), timeout=10)
            t.join(12)
            if "no_opus" in got:
                log(f"the offer dialtone sent the phone:\n{got['no_opus']}")
                log("dialtone did not offer opus: transcoding not available")
                raise SystemExit(3)
            if call.final is None or call.final.code != 200 or "d" not in got or got["d"] is None:
                sys.exit(f"call {i} failed: {call.final}")
            dialogs.append(call)
            if i == 0 and call.final.body:
                (out / "answer-to-a.sdp").write_bytes(call.final.body)
            if a.transcode and 0 not in call.remote_sdp.payloads:
                sys.exit(f"dialtone's answer to the trunk has no PCMU:\n{call.final.body.decode()}")
            st = Stream(sa, sb)
            st.a_to = (call.remote_sdp.ip, call.remote_sdp.port)
            st.b_to = (got["d"].remote_sdp.ip, got["d"].remote_sdp.port)
            st.pt_b = got.get("pt", 0)
            streams.append(st)
    except BaseException:
        teardown()
        raise
    return proc, streams, teardown


# --- the load -----------------------------------------------------------------------

SAMPLE_FROM, SAMPLE_LEN = 50, 15  # the tone check: received packets 50..64 (after 1 s)


SEND_LAG = {"max_ms": 0.0, "late_batches": 0}  # how far the generator fell behind its schedule


def blast(streams: list[Stream], seconds: float, pps: int, frames_a: list[bytes] | None = None,
          frames_b: list[bytes] | None = None, ts_step_b: int = 160) -> float:
    """Send from every A and B at `pps` for `seconds`; count what arrives.
    A sends frames_a (PT st.pt_a, timestamps +160), B frames_b (PT st.pt_b,
    timestamps +ts_step_b), cycling; both default to 160 bytes of PCMU
    silence. Returns the wall time of the send period."""
    sel = selectors.DefaultSelector()
    for st in streams:
        st.a.setblocking(False)
        st.b.setblocking(False)
        sel.register(st.a, selectors.EVENT_READ, (st, "ba"))
        sel.register(st.b, selectors.EVENT_READ, (st, "ab"))
    frames_a = frames_a or [b"\xff" * 160]
    frames_b = frames_b or [b"\xff" * 160]
    check = any(st.pt_a != 0 or st.pt_b != 0 for st in streams) or any(st.sample for st in streams)
    ssrc_a = {id(st): secrets.randbits(32) for st in streams}
    ssrc_b = {id(st): secrets.randbits(32) for st in streams}
    step_ab = ts_step_b  # B receives A's audio in B's codec: one frame = ts_step_b
    interval = 1.0 / pps
    t0 = time.monotonic()
    n = 0
    end = t0 + seconds
    drain_until = None
    while True:
        now = time.monotonic()
        if now < end and now >= t0 + n * interval:
            lag = now - (t0 + n * interval)
            SEND_LAG["max_ms"] = max(SEND_LAG["max_ms"], lag * 1000)
            SEND_LAG["late_batches"] += lag > interval / 2
            pa, pb = frames_a[n % len(frames_a)], frames_b[n % len(frames_b)]
            for st in streams:
                hdr = struct.pack("!BBHII", 0x80, st.pt_a, n & 0xFFFF, (n * 160) & 0xFFFFFFFF, ssrc_a[id(st)])
                try:
                    st.a.sendto(hdr + pa, st.a_to)
                    st.sent_ab += 1
                except (BlockingIOError, OSError):
                    pass
                hdr = struct.pack("!BBHII", 0x80, st.pt_b, n & 0xFFFF, (n * ts_step_b) & 0xFFFFFFFF, ssrc_b[id(st)])
                try:
                    st.b.sendto(hdr + pb, st.b_to)
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
                    data = sock.recv(2048)
                except (BlockingIOError, InterruptedError):
                    break
                if direction == "ab":
                    if check and (len(data) < 12 or data[1] & 0x7F != st.pt_b):
                        st.badpt_ab += 1
                    elif len(data) >= 12:
                        ts = int.from_bytes(data[4:8], "big")
                        if st.ts0_ab is None:
                            st.ts0_ab = ts
                        k, r = divmod((ts - st.ts0_ab) & 0xFFFFFFFF, step_ab)
                        if r or k > 1_000_000:
                            st.odd_ab += 1
                        else:
                            if k < st.max_ab:
                                st.reord_ab += 1
                            else:
                                st.max_ab = k
                            st.seen_ab.add(k)
                        if check:
                            off = 12 + 4 * (data[0] & 0x0F)
                            st.bytes_ab += len(data) - off
                            if st.sample and SAMPLE_FROM <= st.recv_ab < SAMPLE_FROM + SAMPLE_LEN:
                                st.got_ab.append(data[off:])
                    st.recv_ab += 1
                else:
                    if check and (len(data) < 12 or data[1] & 0x7F != st.pt_a):
                        st.badpt_ba += 1
                    elif len(data) >= 12:
                        ts = int.from_bytes(data[4:8], "big")
                        if st.ts0_ba is None:
                            st.ts0_ba = ts
                        k, r = divmod((ts - st.ts0_ba) & 0xFFFFFFFF, 160)
                        if r or k > 1_000_000:
                            st.odd_ba += 1
                        else:
                            if k < st.max_ba:
                                st.reord_ba += 1
                            else:
                                st.max_ba = k
                            st.seen_ba.add(k)
                        if st.sample and SAMPLE_FROM <= st.recv_ba < SAMPLE_FROM + SAMPLE_LEN:
                            st.got_ba.append(data[12 + 4 * (data[0] & 0x0F):])
                    st.recv_ba += 1
    sel.close()
    return min(time.monotonic(), end) - t0


def tone_check(streams: list[Stream]) -> dict:
    """Decode the sampled payloads: B must hear A's 1 kHz (Opus), A B's 400 Hz (PCMU)."""
    res = {"ab_ok": 0, "ab_n": 0, "ba_ok": 0, "ba_n": 0, "ab_failures": [], "ba_failures": [],
           "opus_toc": {}}
    for st in streams:
        if not st.sample:
            continue
        res["ab_n"] += 1
        if len(st.got_ab) >= 12:
            try:
                pcm = rtp_audio.opus_decode(st.got_ab)[-1600:]  # the last 200 ms at 8 kHz
                ok, f, share = rtp_audio.tone_ok(pcm, 1000.0)
            except ValueError as e:
                ok, f, share = False, 0.0, str(e)
            res["ab_ok"] += ok
            if not ok:
                res["ab_failures"].append({"freq": f, "share": share})
            for p in st.got_ab:
                k = " ".join(str(x) for x in rtp_audio.opus_toc(p))
                res["opus_toc"][k] = res["opus_toc"].get(k, 0) + 1
        else:
            res["ab_failures"].append({"packets": len(st.got_ab)})
        res["ba_n"] += 1
        if len(st.got_ba) >= 12:
            pcm = rtp_audio.ulaw_decode(b"".join(st.got_ba[-10:]))
            ok, f, share = rtp_audio.tone_ok(pcm, 400.0)
            res["ba_ok"] += ok
            if not ok:
                res["ba_failures"].append({"freq": f, "share": share})
        else:
            res["ba_failures"].append({"packets": len(st.got_ba)})
    res["ab_failures"] = res["ab_failures"][:5]
    res["ba_failures"] = res["ba_failures"][:5]
    return res


def host_busy_ticks() -> int | None:
    """CPU ticks the whole host spent busy (all cores; /proc/stat, not idle or iowait)."""
    try:
        f = Path("/proc/stat").read_text().splitlines()[0].split()
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in f[1:9])
        return user + nice + system + irq + softirq + steal
    except (OSError, ValueError, IndexError):
        return None


def pct_loss(sent: int, recv: int) -> float | None:
    return round(100.0 * (1 - recv / sent), 3) if sent else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", choices=["rtpengine", "dialtone"], required=True)
    ap.add_argument("--streams", type=int, default=50, help="RTP streams (calls), each both ways")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--pps", type=int, default=50, help="packets/s per direction per stream (default 50: 20 ms)")
    ap.add_argument("--transcode", action="store_true",
                    help="A speaks PCMU only (1 kHz tone), B Opus only (400 Hz tone): the relay transcodes")
    ap.add_argument("--opus-bitrate", type=int, default=32000, help="bitrate of B's pre-encoded Opus (--transcode)")
    ap.add_argument("--tone-sample", type=int, default=20, help="streams whose received audio is decoded and checked")
    ap.add_argument("--generator-nice", type=int, default=None,
                    help="niceness increment for the generator once the relay runs (default -10 with "
                         "--transcode, else 0; negative needs root and keeps its 20 ms schedule when the "
                         "relay saturates the cores)")
    ap.add_argument("--ng-port", type=int, default=2223, help="rtpengine's ng control port")
    ap.add_argument("--threads", type=int, default=2, help="rtpengine --num-threads")
    ap.add_argument("--rtpengine-log-level", type=int, default=4, help="rtpengine -L (7: debug, slows it down)")
    ap.add_argument("--sip-port", type=int, default=25160, help="dialtone's SIP port")
    ap.add_argument("--http-port", type=int, default=28180, help="dialtone's HTTP port")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    if not (1 <= a.streams <= 2000 and 0 < a.seconds <= 300 and 1 <= a.pps <= 200):
        sys.exit("streams 1..2000, seconds 0..300, pps 1..200")
    if a.generator_nice is None:
        a.generator_nice = -10 if a.transcode else 0
    if a.transcode and a.pps != 50:
        sys.exit("--transcode sends 20 ms packets: --pps must be 50")
    mode = "transcode" if a.transcode else "media"
    out = Path(a.out) if a.out else REPO / "bench" / "out" / f"{mode}-{a.target}-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)

    frames_a = frames_b = None
    ts_step_b = 160
    if a.transcode:
        # encoded once, replayed: one second of each tone (50 frames)
        frames_a = rtp_audio.pcmu_tone_frames(1000.0)
        frames_b = rtp_audio.opus_tone_frames(400.0, bitrate=a.opus_bitrate)
        ts_step_b = 960

    log(f"setting up {a.streams} {'transcoded ' if a.transcode else ''}streams through {a.target} ...")
    starter = start_rtpengine if a.target == "rtpengine" else start_dialtone
    proc, streams, teardown = starter(a, out)
    if a.transcode:
        step = max(1, len(streams) // max(1, a.tone_sample)) if a.tone_sample > 0 else 0
        for st in (streams[::step][:a.tone_sample] if step else []):
            st.sample = True
    niced = 0
    if a.generator_nice:
        try:  # after the relay started: it must not inherit this
            os.nice(a.generator_nice)
            niced = a.generator_nice
        except OSError:
            log(f"could not renice the generator by {a.generator_nice} (not root?): its timekeeping may suffer")
    try:
        time.sleep(0.5)
        cpu0, drops0, host0 = cpu_ticks(proc.pid), udp_rcvbuf_errors(), host_busy_ticks()
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        wall = blast(streams, a.seconds, a.pps, frames_a, frames_b, ts_step_b)
        cpu1, drops1, host1 = cpu_ticks(proc.pid), udp_rcvbuf_errors(), host_busy_ticks()
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        teardown()
    sent = sum(s.sent_ab + s.sent_ba for s in streams)
    recv = sum(s.recv_ab + s.recv_ba for s in streams)
    sent_ab, recv_ab = sum(s.sent_ab for s in streams), sum(s.recv_ab for s in streams)
    sent_ba, recv_ba = sum(s.sent_ba for s in streams), sum(s.recv_ba for s in streams)
    cpu_s = (cpu1 - cpu0) / CLK_TCK
    gen_cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    summary = {
        "target": a.target,
        "mode": mode,
        "streams": a.streams,
        "pps_per_direction": a.pps,
        "seconds": round(wall, 2),
        "packets_sent": sent,
        "packets_received": recv,
        "sent_a_to_b": sent_ab, "received_a_to_b": recv_ab,
        "sent_b_to_a": sent_ba, "received_b_to_a": recv_ba,
        "loss_percent": pct_loss(sent, recv),
        "loss_a_to_b_percent": pct_loss(sent_ab, recv_ab),
        "loss_b_to_a_percent": pct_loss(sent_ba, recv_ba),
        # lost inside the streams: frames missing between the first and the
        # last frame received (by RTP timestamp); the rest of sent - received
        # went missing at the edges: before a stream's first delivered frame
        # (rtpengine drops the first packet when it transcodes) or after its
        # last one (frames a relay still holds when the senders stop)
        "lost_a_to_b": sum(s.gaps("ab") for s in streams),
        "lost_b_to_a": sum(s.gaps("ba") for s in streams),
        "streams_with_gaps": sum(1 for s in streams if s.gaps("ab") or s.gaps("ba")),
        "reordered": sum(s.reord_ab + s.reord_ba for s in streams),
        "duplicates": sum(s.recv_ab - s.badpt_ab - s.odd_ab - len(s.seen_ab)
                          + s.recv_ba - s.badpt_ba - s.odd_ba - len(s.seen_ba) for s in streams),
        "off_grid_timestamps": sum(s.odd_ab + s.odd_ba for s in streams),
        "edge_a_to_b": sum(s.sent_ab - len(s.seen_ab) - s.gaps("ab") for s in streams),
        "edge_b_to_a": sum(s.sent_ba - len(s.seen_ba) - s.gaps("ba") for s in streams),
        "max_edge_per_stream": max((max(s.sent_ab - len(s.seen_ab) - s.gaps("ab"),
                                        s.sent_ba - len(s.seen_ba) - s.gaps("ba")) for s in streams), default=0),
        "streams_with_no_packets": sum(1 for s in streams if s.recv_ab == 0 or s.recv_ba == 0),
        "relay_pps": round(recv / wall, 1) if wall else None,
        "relay_cpu_seconds": round(cpu_s, 3),
        "relay_cpu_us_per_packet": round(cpu_s * 1e6 / recv, 2) if recv else None,
        "relay_cpu_ms_per_call_second": round(cpu_s * 1e3 / (wall * a.streams), 3) if wall else None,
        "relay_cpu_percent_of_one_core": round(100 * cpu_s / wall, 1) if wall else None,
        "generator_cpu_percent_of_one_core": round(100 * gen_cpu / wall, 1) if wall else None,
        # the generator's timekeeping: worst lateness of a send batch, and
        # batches sent more than half an interval late (bursts for the relay)
        "generator_nice": niced,
        "generator_max_send_lag_ms": round(SEND_LAG["max_ms"], 1),
        "generator_late_batches": SEND_LAG["late_batches"],
        "udp_rcvbuf_drops": (drops1 - drops0) if drops0 is not None and drops1 is not None else None,
        # everything else running on the host meanwhile (a busy host skews the figures)
        "other_processes_cpu_percent_of_one_core": (
            round(100 * max(0.0, (host1 - host0) / CLK_TCK - cpu_s - gen_cpu) / wall, 1)
            if host0 is not None and host1 is not None and wall else None),
    }
    if a.transcode:
        tc = tone_check(streams)
        good_ab = recv_ab - sum(s.badpt_ab for s in streams)
        summary.update({
            "wrong_pt_at_b": sum(s.badpt_ab for s in streams),
            "wrong_pt_at_a": sum(s.badpt_ba for s in streams),
            "opus_pt_at_b": sorted({s.pt_b for s in streams}),
            "tone_ok_a_to_b": f"{tc['ab_ok']}/{tc['ab_n']}",
            "tone_ok_b_to_a": f"{tc['ba_ok']}/{tc['ba_n']}",
            "tone_failures": {"a_to_b": tc["ab_failures"], "b_to_a": tc["ba_failures"]},
            "opus_to_b_bytes_per_packet": round(sum(s.bytes_ab for s in streams) / good_ab, 1) if good_ab else None,
            "opus_to_b_kbit_s": round(sum(s.bytes_ab for s in streams) * 8 * a.pps / good_ab / 1000, 1) if good_ab else None,
            "opus_to_b_toc": tc["opus_toc"],
            "opus_from_b_bytes_per_packet": round(sum(map(len, frames_b)) / len(frames_b), 1),
            "libopus": rtp_audio.opus_version(),
        })
    summary["out"] = str(out)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    for k, v in summary.items():
        print(f"{k:34} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

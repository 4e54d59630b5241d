"""A small raw-SIP client for the end-to-end tests: build requests, send them
over UDP or TCP on loopback, parse responses, answer digest challenges
(RFC 2617 / RFC 7616: MD5 and SHA-256, qop=auth).

It is deliberately independent of dialtone's code: it is the "other side".
Every network wait is bounded by a timeout.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import socket
import ssl
import time
from dataclasses import dataclass, field

LOOPBACK = "127.0.0.1"


@dataclass
class Response:
    code: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    raw: bytes

    def all(self, name: str) -> list[str]:
        """Every value of header `name` (case-insensitive; compact forms too)."""
        names = {name.lower()}
        compact = {"contact": "m", "via": "v", "from": "f", "to": "t", "call-id": "i",
                   "content-length": "l", "supported": "k", "content-type": "c"}
        if name.lower() in compact:
            names.add(compact[name.lower()])
        return [v for (n, v) in self.headers if n.lower() in names]

    def get(self, name: str) -> str | None:
        vals = self.all(name)
        return vals[0] if vals else None

    def __str__(self) -> str:
        return self.raw.decode("utf-8", "replace")


def parse_response(data: bytes) -> Response:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("utf-8", "replace").split("\r\n")
    m = re.match(r"SIP/2\.0\s+(\d{3})\s*(.*)", lines[0])
    if not m:
        raise ValueError(f"not a SIP response: {lines[0]!r}")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:  # folded line
            n, v = headers[-1]
            headers[-1] = (n, v + " " + line.strip())
            continue
        if ":" not in line:
            continue
        n, v = line.split(":", 1)
        headers.append((n.strip(), v.strip()))
    return Response(int(m.group(1)), m.group(2), headers, body, data)


def split_contacts(values: list[str]) -> list[str]:
    """Split Contact header values on commas outside <> and quotes."""
    out = []
    for v in values:
        cur, depth, quoted = "", 0, False
        for ch in v:
            if ch == '"':
                quoted = not quoted
            elif not quoted and ch == "<":
                depth += 1
            elif not quoted and ch == ">":
                depth -= 1
            if ch == "," and depth == 0 and not quoted:
                out.append(cur.strip())
                cur = ""
            else:
                cur += ch
        if cur.strip():
            out.append(cur.strip())
    return out


def contact_expires(contact: str) -> int | None:
    m = re.search(r";\s*expires\s*=\s*(\d+)", contact.split(">", 1)[-1] if ">" in contact else contact, re.I)
    return int(m.group(1)) if m else None


# --- digest --------------------------------------------------------------

def parse_challenge(value: str) -> dict[str, str]:
    """'Digest realm="x", nonce="y", qop="auth"' -> {'scheme': 'Digest', 'realm': 'x', ...}"""
    scheme, _, rest = value.strip().partition(" ")
    params = {"scheme": scheme}
    for m in re.finditer(r'([A-Za-z0-9_-]+)\s*=\s*("((?:[^"\\]|\\.)*)"|[^,\s]+)', rest):
        params[m.group(1).lower()] = m.group(3) if m.group(3) is not None else m.group(2)
    return params


def _h(algorithm: str, s: str) -> str:
    algo = algorithm.upper()
    if algo in ("MD5", ""):
        return hashlib.md5(s.encode()).hexdigest()
    if algo == "SHA-256":
        return hashlib.sha256(s.encode()).hexdigest()
    raise ValueError(f"unsupported digest algorithm {algorithm}")


def authorization(challenge: dict[str, str], method: str, uri: str, username: str,
                  password: str, nc: int = 1) -> str:
    algo = challenge.get("algorithm", "MD5")
    realm, nonce = challenge["realm"], challenge["nonce"]
    ha1 = _h(algo, f"{username}:{realm}:{password}")
    ha2 = _h(algo, f"{method}:{uri}")
    parts = [f'username="{username}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"']
    qops = [q.strip() for q in challenge.get("qop", "").split(",") if q.strip()]
    if "auth" in qops:
        cnonce = secrets.token_hex(8)
        ncs = f"{nc:08x}"
        resp = _h(algo, f"{ha1}:{nonce}:{ncs}:{cnonce}:auth:{ha2}")
        parts += ["qop=auth", f"nc={ncs}", f'cnonce="{cnonce}"']
    else:
        resp = _h(algo, f"{ha1}:{nonce}:{ha2}")
    parts.append(f'response="{resp}"')
    parts.append(f"algorithm={algo}")
    if "opaque" in challenge:
        parts.append(f'opaque="{challenge["opaque"]}"')
    return "Digest " + ", ".join(parts)


def pick_challenge(resp: Response, prefer: str = "MD5") -> dict[str, str]:
    chs = [parse_challenge(v) for v in resp.all("WWW-Authenticate")]
    chs = [c for c in chs if c["scheme"].lower() == "digest"]
    if not chs:
        raise AssertionError(f"no Digest challenge in:\n{resp}")
    for c in chs:
        if c.get("algorithm", "MD5").upper() == prefer.upper():
            return c
    return chs[0]


# --- a UDP/TCP SIP client ------------------------------------------------

@dataclass
class SipClient:
    """One local socket on loopback talking to the switch at (host, port)."""

    port: int
    host: str = LOOPBACK
    transport: str = "UDP"
    local_port: int = 0
    # The local address to send from (another loopback address stands in
    # for another machine); default: host.
    bind_host: str | None = None
    # transport "TLS": the client context (CA to check the switch against)
    # and the name to check it for.
    tls_context: "ssl.SSLContext | None" = field(default=None, repr=False)
    tls_name: str | None = None
    sock: socket.socket | None = field(default=None, repr=False)
    _buf: bytes = b""

    def __post_init__(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        local = self.bind_host or self.host
        if self.transport == "UDP":
            self.sock = socket.socket(family, socket.SOCK_DGRAM)
            self.sock.bind((local, 0))
        else:
            self.sock = socket.socket(family, socket.SOCK_STREAM)
            self.sock.settimeout(5)
            self.sock.bind((local, 0))
            self.sock.connect((self.host, self.port))
            if self.transport == "TLS":
                ctx = self.tls_context or ssl.create_default_context()
                self.sock = ctx.wrap_socket(self.sock, server_hostname=self.tls_name or self.host)
        self.local_port = self.sock.getsockname()[1]
        self.call_seq = 0

    def close(self) -> None:
        if self.sock:
            self.sock.close()
            self.sock = None

    def __enter__(self) -> "SipClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def hostport(self) -> str:
        h = f"[{self.host}]" if ":" in self.host else self.host
        return f"{h}:{self.port}"

    @property
    def local_hostport(self) -> str:
        local = self.bind_host or self.host
        h = f"[{local}]" if ":" in local else local
        return f"{h}:{self.local_port}"

    def send_raw(self, data: bytes) -> None:
        assert self.sock is not None
        if self.transport == "UDP":
            self.sock.sendto(data, (self.host, self.port))
        else:
            self.sock.sendall(data)

    def recv_raw(self, timeout: float) -> bytes | None:
        """One datagram (UDP) or one framed message (TCP), or None on timeout."""
        assert self.sock is not None
        deadline = time.monotonic() + timeout
        if self.transport == "UDP":
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.sock.settimeout(left)
                try:
                    data, _ = self.sock.recvfrom(65535)
                    return data
                except socket.timeout:
                    return None
        while True:
            msg = self._take_tcp_message()
            if msg is not None:
                return msg
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65535)
            except socket.timeout:
                return None
            if not chunk:
                return None
            self._buf += chunk

    def _take_tcp_message(self) -> bytes | None:
        while self._buf.startswith(b"\r\n"):  # keep-alives
            self._buf = self._buf[2:]
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = self._buf[:end].decode("utf-8", "replace")
        m = re.search(r"(?im)^(?:content-length|l)\s*:\s*(\d+)", head)
        clen = int(m.group(1)) if m else 0
        total = end + 4 + clen
        if len(self._buf) < total:
            return None
        msg, self._buf = self._buf[:total], self._buf[total:]
        return msg

    def request(self, data: bytes, timeout: float = 3.0) -> Response | None:
        """Send, then wait for the final response to this request (1xx skipped,
        retransmitting over UDP with T1=500 ms doubling). None on timeout."""
        call_id = re.search(rb"(?im)^(?:call-id|i)\s*:\s*(\S+)", data)
        deadline = time.monotonic() + timeout
        retrans = 0.5
        self.send_raw(data)
        next_send = time.monotonic() + retrans
        while True:
            now = time.monotonic()
            if now >= deadline:
                return None
            wait = min(deadline, next_send) - now if self.transport == "UDP" else deadline - now
            raw = self.recv_raw(max(wait, 0.01))
            if raw is None:
                if self.transport == "UDP" and time.monotonic() >= next_send:
                    self.send_raw(data)
                    retrans = min(retrans * 2, 4.0)
                    next_send = time.monotonic() + retrans
                continue
            if not raw.startswith(b"SIP/2.0"):
                continue
            resp = parse_response(raw)
            if call_id and resp.get("Call-ID") != call_id.group(1).decode():
                continue
            if resp.code < 200:
                continue
            return resp

    # -- REGISTER ---------------------------------------------------------

    def register_msg(self, user: str, domain: str, *, cseq: int, call_id: str, from_tag: str,
                     contact: str | None = "default", expires: int | None = 3600,
                     authorization: str | None = None, extra: list[str] | None = None,
                     request_uri: str | None = None) -> bytes:
        ruri = request_uri or f"sip:{domain}"
        branch = "z9hG4bK" + secrets.token_hex(8)
        lines = [
            f"REGISTER {ruri} SIP/2.0",
            f"Via: SIP/2.0/{self.transport} {self.local_hostport};branch={branch};rport",
            "Max-Forwards: 70",
            f"From: <sip:{user}@{domain}>;tag={from_tag}",
            f"To: <sip:{user}@{domain}>",
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} REGISTER",
        ]
        if contact == "default":
            contact = f"<sip:{user}@{self.local_hostport};transport={self.transport.lower()}>"
        if contact is not None:
            lines.append(f"Contact: {contact}")
        if expires is not None:
            lines.append(f"Expires: {expires}")
        if authorization:
            lines.append(f"Authorization: {authorization}")
        lines += extra or []
        lines += ["User-Agent: dialtone-tests", "Content-Length: 0", "", ""]
        return "\r\n".join(lines).encode()

    def register(self, user: str, password: str, domain: str = LOOPBACK, *,
                 contact: str | None = "default", expires: int | None = 3600,
                 timeout: float = 3.0, algorithm: str = "MD5",
                 request_uri: str | None = None) -> tuple[Response | None, Response | None]:
        """Full digest registration. Returns (first response, response to the
        authenticated request); the second is None when the first was not a 401."""
        call_id = f"{secrets.token_hex(8)}@dialtone-tests"
        tag = secrets.token_hex(4)
        ruri = request_uri or f"sip:{domain}"
        first = self.request(self.register_msg(user, domain, cseq=1, call_id=call_id, from_tag=tag,
                                               contact=contact, expires=expires, request_uri=ruri),
                             timeout)
        if first is None or first.code != 401:
            return first, None
        ch = pick_challenge(first, algorithm)
        auth = authorization(ch, "REGISTER", ruri, user, password)
        second = self.request(self.register_msg(user, domain, cseq=2, call_id=call_id, from_tag=tag,
                                                contact=contact, expires=expires, authorization=auth,
                                                request_uri=ruri),
                              timeout)
        return first, second

    def options(self, timeout: float = 3.0) -> Response | None:
        branch = "z9hG4bK" + secrets.token_hex(8)
        msg = "\r\n".join([
            f"OPTIONS sip:{self.hostport} SIP/2.0",
            f"Via: SIP/2.0/{self.transport} {self.local_hostport};branch={branch};rport",
            "Max-Forwards: 70",
            f"From: <sip:probe@{self.local_hostport}>;tag={secrets.token_hex(4)}",
            f"To: <sip:{self.hostport}>",
            f"Call-ID: {secrets.token_hex(8)}@dialtone-tests",
            "CSeq: 1 OPTIONS",
            "Content-Length: 0", "", ""]).encode()
        return self.request(msg, timeout)


def rfc4475_fixture(name: str) -> bytes:
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "crates", "dialtone-sip", "tests", "fixtures", "rfc4475", name)
    with open(path, "rb") as f:
        return f.read()


def retarget_via(msg: bytes, transport: str, hostport: str) -> bytes:
    """Replace the (first) Via of a fixture message so that the response comes
    back to our socket: sent-by = our address, with rport. Everything else,
    the Request-URI included, is left byte-exact."""
    def repl(m: re.Match) -> bytes:
        params = m.group(2)
        br = re.search(rb";\s*branch\s*=\s*[^;\s,]+", params)
        branch = br.group(0) if br else b";branch=z9hG4bK" + secrets.token_hex(6).encode()
        return m.group(1) + f"SIP/2.0/{transport} {hostport}".encode() + branch + b";rport\r\n"
    return re.sub(rb"(?im)^(Via\s*:\s*)SIP\s*/\s*2\.0\s*/\s*\S+\s+[^;\r\n]+((?:;[^\r\n]*)?)\r\n",
                  repl, msg, count=1)


# --- a small user agent: INVITE dialogs over UDP, with RTP -----------------
#
# Enough of RFC 3261 to be either end of a basic call through a B2BUA and see
# exactly what it sends: register, call (with a 407 answered), answer, ACK,
# BYE, and plain RTP from a socket of our own. One socket per UA, a receiver
# thread, every wait bounded. Retransmission: INVITE and BYE until a response
# (T1 doubling), a 2xx to an INVITE until its ACK.

import queue
import struct
import threading
import wave


@dataclass
class Message:
    """A SIP request or response."""
    first: str
    headers: list[tuple[str, str]]
    body: bytes
    raw: bytes
    source: tuple[str, int] | None = None

    @property
    def is_request(self) -> bool:
        return not self.first.startswith("SIP/2.0")

    @property
    def method(self) -> str:
        return self.first.split(" ", 1)[0] if self.is_request else self.cseq[1]

    @property
    def uri(self) -> str:
        return self.first.split(" ")[1]

    @property
    def code(self) -> int:
        return int(self.first.split(" ")[1]) if not self.is_request else 0

    @property
    def cseq(self) -> tuple[int, str]:
        n, m = (self.get("CSeq") or "0 X").split()[:2]
        return int(n), m

    def all(self, name: str) -> list[str]:
        return Response.all(self, name)  # same header lookup (compact forms too)

    def get(self, name: str) -> str | None:
        vals = self.all(name)
        return vals[0] if vals else None

    def tag(self, header: str) -> str | None:
        m = re.search(r";\s*tag=([^;>\s,]+)", self.get(header) or "")
        return m.group(1) if m else None

    def __str__(self) -> str:
        return self.raw.decode("utf-8", "replace")


def parse_message(data: bytes, source: tuple[str, int] | None = None) -> Message:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("utf-8", "replace").split("\r\n")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:
            n, v = headers[-1]
            headers[-1] = (n, v + " " + line.strip())
        elif ":" in line:
            n, v = line.split(":", 1)
            headers.append((n.strip(), v.strip()))
    return Message(lines[0], headers, body, data, source)


def angle_uri(value: str) -> str:
    """'"x" <sip:a@b;transport=udp>;tag=1' -> 'sip:a@b;transport=udp'"""
    m = re.search(r"<([^>]*)>", value)
    return m.group(1) if m else value.split(";", 1)[0].strip()


def uri_hostport(uri: str) -> tuple[str, int]:
    """sip:user@host:port;params -> (host, port); 5060 when no port."""
    hp = re.sub(r"^sips?:", "", uri).split(";", 1)[0].split("?", 1)[0]
    hp = hp.rsplit("@", 1)[-1]
    if hp.startswith("["):
        host, _, rest = hp[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else 5060
    host, _, port = hp.partition(":")
    return host, int(port) if port else 5060


def sdp_offer(ip: str, port: int, direction: str = "sendrecv", version: int = 1,
              payloads: tuple[int, ...] = (0, 8, 101)) -> bytes:
    names = {0: "PCMU/8000", 8: "PCMA/8000", 101: "telephone-event/8000"}
    lines = ["v=0", f"o=tests 4242 {version} IN IP4 {ip}", "s=-", f"c=IN IP4 {ip}", "t=0 0",
             f"m=audio {port} RTP/AVP " + " ".join(map(str, payloads))]
    lines += [f"a=rtpmap:{p} {names[p]}" for p in payloads if p in names]
    if 101 in payloads:
        lines.append("a=fmtp:101 0-15")
    lines += ["a=ptime:20", f"a={direction}"]
    return ("\r\n".join(lines) + "\r\n").encode()


@dataclass
class SdpInfo:
    ip: str | None
    port: int | None
    payloads: list[int]
    direction: str  # sendrecv when no attribute says otherwise


def parse_sdp(body: bytes) -> SdpInfo:
    text = body.decode("utf-8", "replace")
    c = re.search(r"(?m)^c=IN IP[46] (\S+)", text)
    m = re.search(r"(?m)^m=audio (\d+) \S+((?: \d+)*)", text)
    d = re.findall(r"(?m)^a=(sendrecv|sendonly|recvonly|inactive)\s*$", text)
    return SdpInfo(c.group(1) if c else None, int(m.group(1)) if m else None,
                   [int(x) for x in m.group(2).split()] if m else [], d[-1] if d else "sendrecv")


class RtpPeer:
    """One RTP socket: sends 20 ms packets (160 bytes of G.711 payload,
    `pt`) to a target at 50 packets/s, and counts what it receives, by
    source address. Bounded: the sender stops after `max_seconds`."""

    def __init__(self, host: str = LOOPBACK, pt: int = 0, max_seconds: float = 60.0):
        self.host = host
        self.pt = pt
        self.max_seconds = max_seconds
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        # an even port, as RTP wants (RFC 3550 11), RTCP would be +1
        for _ in range(100):
            try:
                p = secrets.randbelow(4000) * 2 + 40000
                self.sock.bind((host, p))
                break
            except OSError:
                continue
        else:
            self.sock.bind((host, 0))
        self.port = self.sock.getsockname()[1]
        self.target: tuple[str, int] | None = None
        self.sent = 0
        self.received = 0
        self.sources: dict[tuple[str, int], int] = {}
        self.payload_types: dict[int, int] = {}
        self.payloads: list[bytes] = []  # kept only while keep_payload
        self.arrivals: list[float] = []  # time.monotonic() of each kept payload
        self.keep_payload = False
        self._stop = threading.Event()
        self._stop_send = threading.Event()
        self._dtmf: tuple[int, int, int] | None = None
        self._sending = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.ssrc = secrets.randbits(32)

    def start(self, target: tuple[str, int] | None = None, payload: bytes | None = None) -> "RtpPeer":
        """Receive from now on; send to `target` (if given) until stop()."""
        self.target = target
        self._payload = payload or (b"\xff" if self.pt == 0 else b"\xd5") * 160  # G.711 silence
        t = threading.Thread(target=self._recv_loop, daemon=True)
        t.start()
        self._threads.append(t)
        if target is not None:
            self.send_to(target)
        return self

    def send_to(self, target: tuple[str, int]) -> None:
        self.target = target
        if not self._sending.is_set():
            self._sending.set()
            t = threading.Thread(target=self._send_loop, daemon=True)
            t.start()
            self._threads.append(t)

    def send_dtmf(self, digit: int, packets: int = 5, pt: int = 101) -> None:
        """Send one RFC 4733 telephone-event (`packets` packets of it, the
        last with the E bit) in place of audio, from the next 20 ms tick."""
        self._dtmf = (digit, packets, pt)

    def stop_sending(self) -> None:
        """Stop sending; keep counting what arrives."""
        self._stop_send.set()

    def _send_loop(self) -> None:
        seq, ts = secrets.randbelow(30000), secrets.randbits(31)
        t0 = time.monotonic()
        n = 0
        event: tuple[int, int, int, int] | None = None  # digit, packets left, pt, timestamp
        while (not self._stop.is_set() and not self._stop_send.is_set()
               and time.monotonic() - t0 < self.max_seconds):
            if event is None and self._dtmf is not None:
                digit, count, ept = self._dtmf
                self._dtmf = None
                event = (digit, count, ept, ts)
                first_event = True
            if event is not None:
                digit, left, ept, ets = event
                done = left == 1
                marker = 0x80 if first_event else 0
                hdr = struct.pack("!BBHII", 0x80, marker | (ept & 0x7F), seq & 0xFFFF, ets & 0xFFFFFFFF, self.ssrc)
                sent_so_far = getattr(self, "_ev_n", 0) + 1
                self._ev_n = 0 if done else sent_so_far
                body = struct.pack("!BBH", digit, (0x80 if done else 0) | 10, min(160 * sent_so_far, 0xFFFF))
                event = None if done else (digit, left - 1, ept, ets)
                first_event = False
                data = hdr + body
            else:
                hdr = struct.pack("!BBHII", 0x80, self.pt & 0x7F, seq & 0xFFFF, ts & 0xFFFFFFFF, self.ssrc)
                data = hdr + self._payload
            try:
                self.sock.sendto(data, self.target)
                with self._lock:
                    self.sent += 1
            except OSError:
                pass
            seq, ts, n = seq + 1, ts + 160, n + 1
            delay = t0 + n * 0.02 - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)

    def _recv_loop(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                data, src = self.sock.recvfrom(2048)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(data) < 12 or data[0] >> 6 != 2:
                continue
            with self._lock:
                self.received += 1
                self.sources[src[:2]] = self.sources.get(src[:2], 0) + 1
                pt = data[1] & 0x7F
                self.payload_types[pt] = self.payload_types.get(pt, 0) + 1
                if self.keep_payload:
                    self.payloads.append(data[12:])
                    self.arrivals.append(time.monotonic())

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(2)
        self.sock.close()

    def __repr__(self) -> str:
        return (f"RtpPeer({self.host}:{self.port} sent={self.sent} to {self.target}, "
                f"received={self.received} from {self.sources}, pts={self.payload_types})")


class SipUA:
    """A user agent on one UDP socket at (host, port): a phone or a trunk."""

    T1 = 0.5

    def __init__(self, host: str = LOOPBACK, port: int = 0, user: str = "ua"):
        self.host = host
        self.user = user
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.port = self.sock.getsockname()[1]
        self.inbox: "queue.Queue[Message]" = queue.Queue()
        self.log: list[tuple[str, Message]] = []  # ("in"/"out", message), in order
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._recv_loop, daemon=True)
        self._thread.start()
        self._pending: list[Message] = []  # received, not yet taken by a wait

    # -- plumbing ---------------------------------------------------------
    @property
    def hostport(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def contact(self) -> str:
        return f"<sip:{self.user}@{self.hostport}>"

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()

    def __enter__(self) -> "SipUA":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _recv_loop(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                data, src = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            if data.strip() == b"":
                continue  # keep-alive
            try:
                msg = parse_message(data, src[:2])
            except Exception:
                continue
            self.log.append(("in", msg))
            self.inbox.put(msg)

    def send(self, data: bytes, dest: tuple[str, int]) -> None:
        self.log.append(("out", parse_message(data)))
        self.sock.sendto(data, dest)

    def wait_for(self, pred, timeout: float) -> Message | None:
        """The first received message (oldest first) for which pred(msg) holds;
        others stay queued for later waits."""
        for i, m in enumerate(self._pending):
            if pred(m):
                return self._pending.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                m = self.inbox.get(timeout=min(left, 0.2))
            except queue.Empty:
                continue
            if pred(m):
                return m
            self._pending.append(m)

    def wait_request(self, method: str, timeout: float = 5.0, call_id: str | None = None) -> Message | None:
        return self.wait_for(lambda m: m.is_request and m.method == method
                             and (call_id is None or m.get("Call-ID") == call_id), timeout)

    def messages(self, direction: str = "in") -> list[Message]:
        return [m for d, m in self.log if d == direction]

    # -- building ---------------------------------------------------------
    def _via(self, branch: str | None = None) -> str:
        return f"SIP/2.0/UDP {self.hostport};branch={branch or 'z9hG4bK' + secrets.token_hex(8)};rport"

    @staticmethod
    def build(first: str, headers: list[str], body: bytes = b"", ctype: str = "application/sdp") -> bytes:
        hs = list(headers)
        if body:
            hs.append(f"Content-Type: {ctype}")
        hs.append(f"Content-Length: {len(body)}")
        return ("\r\n".join([first] + hs) + "\r\n\r\n").encode() + body

    def response(self, req: Message, code: int, reason: str, *, to_tag: str | None = None,
                 body: bytes = b"", extra: list[str] | None = None, ctype: str = "application/sdp") -> bytes:
        hs = [f"Via: {v}" for v in req.all("Via")]
        hs += [f"Record-Route: {v}" for v in req.all("Record-Route")]
        to = req.get("To") or ""
        if to_tag and ";tag=" not in to:
            to += f";tag={to_tag}"
        hs += [f"From: {req.get('From')}", f"To: {to}", f"Call-ID: {req.get('Call-ID')}",
               f"CSeq: {req.get('CSeq')}"]
        if code > 100 and req.method in ("INVITE", "SUBSCRIBE", "REFER"):
            hs.append(f"Contact: {self.contact()}")
        hs += extra or []
        return self.build(f"SIP/2.0 {code} {reason}", hs, body, ctype)

    def reply(self, req: Message, code: int, reason: str, **kw) -> None:
        dest = self._response_dest(req)
        self.send(self.response(req, code, reason, **kw), dest)

    @staticmethod
    def _response_dest(req: Message) -> tuple[str, int]:
        """RFC 3261 18.2.2 + RFC 3581: received/rport, else the packet's source."""
        via = req.get("Via") or ""
        m = re.search(r";\s*rport=(\d+)", via)
        if req.source:
            return (req.source[0], int(m.group(1)) if m else req.source[1])
        return uri_hostport("sip:" + via.split()[1])

    # -- registration -------------------------------------------------------
    def register(self, user: str, password: str, server: tuple[str, int], domain: str = LOOPBACK,
                 expires: int = 600, timeout: float = 5.0) -> Message | None:
        """REGISTER our contact as `user` (digest on a 401); the final response."""
        self.user = user
        call_id, tag = secrets.token_hex(8) + "@tests", secrets.token_hex(4)
        ruri = f"sip:{domain}"
        auth = None
        for cseq in (1, 2):
            hs = [f"Via: {self._via()}", "Max-Forwards: 70", f"From: <sip:{user}@{domain}>;tag={tag}",
                  f"To: <sip:{user}@{domain}>", f"Call-ID: {call_id}", f"CSeq: {cseq} REGISTER",
                  f"Contact: {self.contact()}", f"Expires: {expires}", "User-Agent: dialtone-tests"]
            if auth:
                hs.append(f"Authorization: {auth}")
            r = self._transaction(self.build(f"REGISTER {ruri} SIP/2.0", hs), server, call_id, cseq,
                                  "REGISTER", timeout)
            if r is None or r.code != 401 or auth:
                return r
            ch = pick_challenge(Response(r.code, "", r.headers, r.body, r.raw))
            auth = authorization(ch, "REGISTER", ruri, user, password)
        return None

    def _transaction(self, data: bytes, dest: tuple[str, int], call_id: str, cseq: int, method: str,
                     timeout: float, provisional=None) -> Message | None:
        """Send a non-ACK request, retransmit until a response; the final one."""
        deadline = time.monotonic() + timeout
        interval, next_send, got_any = self.T1, 0.0, False
        while time.monotonic() < deadline:
            if not got_any and time.monotonic() >= next_send:
                self.send(data, dest)
                next_send = time.monotonic() + interval
                interval = min(interval * 2, 4.0)
            wait = min(deadline, next_send if not got_any else deadline) - time.monotonic()
            r = self.wait_for(lambda m: not m.is_request and m.get("Call-ID") == call_id
                              and m.cseq == (cseq, method), max(wait, 0.01))
            if r is None:
                continue
            got_any = True
            if r.code < 200:
                if provisional:
                    provisional(r)
                continue
            return r
        return None


@dataclass
class Dialog:
    """One INVITE dialog as the UA sees it."""
    ua: SipUA
    call_id: str
    local_tag: str
    remote_tag: str | None
    local_uri: str
    remote_uri: str
    remote_target: str
    route_set: list[str]
    local_cseq: int
    outgoing: bool
    remote_sdp: SdpInfo | None = None
    invite: Message | None = None       # the INVITE we sent or received
    final: Message | None = None        # its final response
    provisionals: list[Message] = field(default_factory=list)

    def next_hop(self) -> tuple[str, int]:
        if self.route_set:
            return uri_hostport(angle_uri(self.route_set[0]))
        return uri_hostport(self.remote_target)

    def request(self, method: str, body: bytes = b"", extra: list[str] | None = None,
                ctype: str = "application/sdp", cseq: int | None = None) -> tuple[bytes, int]:
        if cseq is None:
            self.local_cseq += 1
            cseq = self.local_cseq
        to = f"<{self.remote_uri}>" + (f";tag={self.remote_tag}" if self.remote_tag else "")
        hs = [f"Via: {self.ua._via()}"] + [f"Route: {r}" for r in self.route_set]
        hs += ["Max-Forwards: 70", f"From: <{self.local_uri}>;tag={self.local_tag}", f"To: {to}",
               f"Call-ID: {self.call_id}", f"CSeq: {cseq} {method}", f"Contact: {self.ua.contact()}"]
        hs += extra or []
        return SipUA.build(f"{method} {self.remote_target} SIP/2.0", hs, body, ctype), cseq

    def ack(self) -> None:
        data, _ = self.request("ACK", cseq=self.invite.cseq[0] if self.invite else 1)
        self.ua.send(data, self.next_hop())

    def bye(self, timeout: float = 5.0) -> Message | None:
        data, cseq = self.request("BYE")
        return self.ua._transaction(data, self.next_hop(), self.call_id, cseq, "BYE", timeout)

    def reinvite(self, sdp: bytes, timeout: float = 5.0) -> Message | None:
        data, cseq = self.request("INVITE", sdp)
        r = self.ua._transaction(data, self.next_hop(), self.call_id, cseq, "INVITE", timeout)
        if r is not None and 200 <= r.code < 300:
            ack, _ = self.request("ACK", cseq=cseq)
            self.ua.send(ack, self.next_hop())
            if r.body:
                self.remote_sdp = parse_sdp(r.body)
        return r


def place_call(ua: SipUA, server: tuple[str, int], ruri: str, sdp: bytes, *,
               from_uri: str | None = None, credentials: tuple[str, str] | None = None,
               timeout: float = 10.0, extra: list[str] | None = None) -> Dialog:
    """INVITE `ruri` via `server`; answer a 401/407 with `credentials`; on a
    2xx send the ACK. The Dialog's .final is the final response (None on a
    timeout), .provisionals the 1xx seen."""
    call_id = secrets.token_hex(10) + "@tests"
    tag = secrets.token_hex(4)
    from_uri = from_uri or f"sip:{ua.user}@{ua.hostport}"
    dlg = Dialog(ua, call_id, tag, None, from_uri, ruri, ruri, [], 0, True)
    auth_hdr = None
    for attempt in range(2):
        cseq = attempt + 1
        branch = "z9hG4bK" + secrets.token_hex(8)
        hs = [f"Via: {ua._via(branch)}", "Max-Forwards: 70", f"From: <{from_uri}>;tag={tag}",
              f"To: <{ruri}>", f"Call-ID: {call_id}", f"CSeq: {cseq} INVITE",
              f"Contact: {ua.contact()}", "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, REFER, NOTIFY",
              "User-Agent: dialtone-tests"]
        if auth_hdr:
            hs.append(auth_hdr)
        hs += extra or []
        data = SipUA.build(f"INVITE {ruri} SIP/2.0", hs, sdp)
        dlg.invite = parse_message(data)
        dlg.local_cseq = cseq
        r = ua._transaction(data, server, call_id, cseq, "INVITE", timeout, provisional=dlg.provisionals.append)
        dlg.final = r
        if r is None:
            return dlg
        if r.code >= 300:
            # ACK for a non-2xx: same branch, hop by hop (RFC 3261 17.1.1.3)
            ack = SipUA.build(f"ACK {ruri} SIP/2.0", [
                f"Via: {ua._via(branch)}", "Max-Forwards: 70", f"From: <{from_uri}>;tag={tag}",
                f"To: {r.get('To')}", f"Call-ID: {call_id}", f"CSeq: {cseq} ACK"])
            ua.send(ack, server)
            if r.code in (401, 407) and credentials and attempt == 0:
                hdr = "Proxy-Authenticate" if r.code == 407 else "WWW-Authenticate"
                chs = [parse_challenge(v) for v in r.all(hdr)]
                md5 = [c for c in chs if c.get("algorithm", "MD5").upper() == "MD5"] or chs
                value = authorization(md5[0], "INVITE", ruri, credentials[0], credentials[1])
                auth_hdr = ("Proxy-Authorization: " if r.code == 407 else "Authorization: ") + value
                continue
            return dlg
        break
    r = dlg.final
    dlg.remote_tag = r.tag("To")
    dlg.remote_target = angle_uri(r.get("Contact") or f"<{ruri}>")
    dlg.route_set = list(reversed(split_contacts(r.all("Record-Route"))))
    if r.body:
        dlg.remote_sdp = parse_sdp(r.body)
    dlg.ack()
    return dlg


def answer_call(ua: SipUA, invite: Message, sdp: bytes, *, ring: bool = True,
                timeout: float = 5.0) -> Dialog | None:
    """Answer a received INVITE: 180 (optional), 200 with `sdp`, retransmitted
    until the ACK comes (None if it does not within `timeout`)."""
    tag = secrets.token_hex(4)
    if ring:
        ua.reply(invite, 180, "Ringing", to_tag=tag)
    ok = ua.response(invite, 200, "OK", to_tag=tag, body=sdp)
    dest = SipUA._response_dest(invite)
    call_id = invite.get("Call-ID")
    deadline = time.monotonic() + timeout
    interval = SipUA.T1
    while time.monotonic() < deadline:
        ua.send(ok, dest)
        ack = ua.wait_request("ACK", min(interval, max(deadline - time.monotonic(), 0.01)), call_id=call_id)
        if ack is not None:
            dlg = Dialog(ua, call_id, tag, invite.tag("From"), angle_uri(invite.get("To") or ""),
                         angle_uri(invite.get("From") or ""), angle_uri(invite.get("Contact") or ""),
                         split_contacts(invite.all("Record-Route")), 0, False)
            dlg.invite = invite
            dlg.final = parse_message(ok)
            dlg.remote_sdp = parse_sdp(invite.body) if invite.body else None
            return dlg
        interval = min(interval * 2, 4.0)
    return None


# --- audio ------------------------------------------------------------------

def write_tone_wav(path, freq: float, seconds: float = 20.0, rate: int = 8000, amplitude: float = 0.5) -> None:
    """A mono 16-bit sine WAV (for baresip's aufile as its microphone)."""
    import math
    n = int(seconds * rate)
    frames = b"".join(struct.pack("<h", int(amplitude * 32767 * math.sin(2 * math.pi * freq * i / rate)))
                      for i in range(n))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)


def wav_samples(path, channel: int = 0) -> tuple[list[float], int]:
    """(samples of one channel as floats in [-1, 1], sample rate)."""
    with wave.open(str(path), "rb") as w:
        rate, ch, width, n = w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()
        data = w.readframes(n)
    if width != 2:
        raise ValueError(f"{path}: {8 * width}-bit samples, expected 16")
    if channel >= ch:
        raise ValueError(f"{path}: has {ch} channel(s), no channel {channel}")
    vals = struct.unpack(f"<{len(data) // 2}h", data)[channel::ch]
    return [v / 32768.0 for v in vals], rate


def rms(samples: list[float]) -> float:
    import math
    return math.sqrt(sum(x * x for x in samples) / len(samples)) if samples else 0.0


def ulaw_encode(sample: int) -> int:
    """One 16-bit linear sample to G.711 mu-law (the classic bias-and-segment
    formula; independent of dialtone's table-driven codec)."""
    sign = 0x80 if sample < 0 else 0
    mag = min(-sample if sample < 0 else sample, 32635) + 0x84
    exp = max(mag.bit_length() - 8, 0)
    mant = (mag >> (exp + 3)) & 0x0F
    return ~(sign | (exp << 4) | mant) & 0xFF


def ulaw_decode(code: int) -> int:
    code = ~code & 0xFF
    mag = ((((code & 0x0F) << 3) + 0x84) << ((code >> 4) & 0x07)) - 0x84
    return -mag if code & 0x80 else mag


def ulaw_tone(freq: float, samples: int = 160, rate: int = 8000, amplitude: float = 0.5) -> bytes:
    """A mu-law payload of a sine; with 160 samples and a frequency that fits
    a whole number of periods in 20 ms (400, 500, 1000 Hz ...) the same
    payload repeated is a continuous tone."""
    import math
    return bytes(ulaw_encode(int(amplitude * 32767 * math.sin(2 * math.pi * freq * i / rate)))
                 for i in range(samples))


def ulaw_samples(payloads: list[bytes]) -> list[float]:
    """Received mu-law payloads as floats in [-1, 1], in order."""
    return [ulaw_decode(b) / 32768.0 for p in payloads for b in p]


def goertzel_power(samples: list[float], rate: int, freq: float) -> float:
    import math
    coeff = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coeff * s1 - s2, s1
    return s1 * s1 + s2 * s2 - coeff * s1 * s2


def dominant_frequency(samples: list[float], rate: int, lo: float = 100.0, hi: float | None = None,
                       max_samples: int = 8000) -> tuple[float, float]:
    """(frequency with the most energy, its share of the total energy over the
    scanned band), from a Goertzel scan: 10 Hz steps over lo..hi, then 1 Hz
    steps around the peak. Uses the loudest `max_samples` window."""
    hi = hi or rate / 2 - 100
    if len(samples) > max_samples:  # the window with the most energy
        step = max_samples // 4
        best, start = -1.0, 0
        for i in range(0, len(samples) - max_samples + 1, step):
            e = sum(x * x for x in samples[i:i + max_samples:8])
            if e > best:
                best, start = e, i
        samples = samples[start:start + max_samples]
    coarse = [(goertzel_power(samples, rate, f), f) for f in range(int(lo), int(hi), 10)]
    total = sum(p for p, _ in coarse) or 1.0
    p0, f0 = max(coarse)
    fine = [(goertzel_power(samples, rate, f0 + d), f0 + d) for d in range(-10, 11)]
    _, f = max(fine)
    return float(f), p0 / total


def rtp_counts(stats) -> list[tuple[int, int]]:
    """Every (rtp_in, rtp_out) pair anywhere in a call record's stats (a dict,
    a list, or their JSON text)."""
    out: list[tuple[int, int]] = []
    if isinstance(stats, str):
        try:
            stats = json.loads(stats)
        except ValueError:
            return out
    if isinstance(stats, dict):
        if "rtp_in" in stats or "rtp_out" in stats:
            out.append((int(stats.get("rtp_in") or 0), int(stats.get("rtp_out") or 0)))
        for v in stats.values():
            out += rtp_counts(v)
    elif isinstance(stats, list):
        for v in stats:
            out += rtp_counts(v)
    return out

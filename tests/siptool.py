"""A small raw-SIP client for the end-to-end tests: build requests, send them
over UDP or TCP on loopback, parse responses, answer digest challenges
(RFC 2617 / RFC 7616: MD5 and SHA-256, qop=auth).

It is deliberately independent of dialtone's code: it is the "other side".
Every network wait is bounded by a timeout.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import socket
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
    sock: socket.socket | None = field(default=None, repr=False)
    _buf: bytes = b""

    def __post_init__(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        if self.transport == "UDP":
            self.sock = socket.socket(family, socket.SOCK_DGRAM)
            self.sock.bind((self.host, 0))
        else:
            self.sock = socket.socket(family, socket.SOCK_STREAM)
            self.sock.settimeout(5)
            self.sock.bind((self.host, 0))
            self.sock.connect((self.host, self.port))
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
        h = f"[{self.host}]" if ":" in self.host else self.host
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

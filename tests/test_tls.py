"""SIP over TLS (issue 15, point 6; RFC 3261 §26.2): a phone registers over
TLS and is called over the same connection; a trunk with transport "tls"
is reached over TLS only when its certificate chains to tls.ca_file for
the trunk's host name; a peer that connects to the TLS port and does not
do TLS is dropped while the switch goes on serving. The certificates are
made for the test with openssl (a CA, the switch's for IP 127.0.0.1, the
trunk's for DNS "localhost" only)."""

from __future__ import annotations

import re
import shutil
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest

from conftest import LOOPBACK, free_port, received_messages
from siptool import SipClient, parse_message, sdp_offer
from test_calls import N_ALICE, PW, Pbx

N_SECURE, N_MISMATCH = "15551239001", "15551239002"


def openssl(*args: str, cwd: Path) -> None:
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, f"openssl {' '.join(args)}:\n{r.stderr}"


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Path:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is not installed (Debian package openssl)")
    d = tmp_path_factory.mktemp("certs")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=dialtone test CA", cwd=d)
    for name, san in (("switch", "IP:127.0.0.1"), ("trunk", "DNS:localhost")):
        openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN={name}", cwd=d)
        (d / f"{name}.ext").write_text(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "2",
                "-extfile", f"{name}.ext", cwd=d)
    return d


def tls_dialtone(dialtone_factory, certs: Path):
    port, tls_port = free_port(), free_port()
    return dialtone_factory(config={
        "sip": {"listen": [f"udp:{LOOPBACK}:{port}", f"tcp:{LOOPBACK}:{port}",
                           f"tls:{LOOPBACK}:{tls_port}"]},
        "tls": {"certificate": str(certs / "switch.pem"), "private_key": str(certs / "switch.key"),
                "ca_file": str(certs / "ca.pem")},
    }), tls_port


def client_context(certs: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certs / "ca.pem"))


def reply(req: bytes, status: str, *, tag: str = "tlsphone", extra: list[str] | None = None,
          body: bytes = b"") -> bytes:
    """A response to `req`: its Via, From, To (with our tag), Call-ID, CSeq."""
    head = req.split(b"\r\n\r\n", 1)[0].decode()
    keep = [line for line in head.split("\r\n")[1:]
            if re.match(r"(?i)^(via|from|call-id|cseq|record-route)\s*:", line)]
    to = next(line for line in head.split("\r\n") if re.match(r"(?i)^to\s*:", line))
    if ";tag=" not in to:
        to += f";tag={tag}"
    lines = [f"SIP/2.0 {status}", *keep, to, *(extra or [])]
    if body:
        lines += ["Content-Type: application/sdp"]
    lines += [f"Content-Length: {len(body)}", "", ""]
    return "\r\n".join(lines).encode() + body


def test_a_phone_registers_over_tls_and_is_called_on_that_connection(dialtone_factory, sipp, certs):
    d, tls_port = tls_dialtone(dialtone_factory, certs)
    pbx = Pbx(d, sipp)
    with SipClient(port=tls_port, transport="TLS", tls_context=client_context(certs)) as phone:
        first, second = phone.register("alice", PW)
        assert first is not None and first.code == 401, first
        assert second is not None and second.code == 200, second
        (binding,) = d.bindings_of("alice")
        # the line: AOR, contact, seconds left, source
        assert binding.line.split()[-1].startswith("tls:127.0.0.1:"), binding.line

        caller = pbx.trunk_call("uac.xml", N_ALICE, background=True, media=False, duration_ms=500)
        invite = phone.recv_raw(10)
        assert invite is not None and invite.startswith(b"INVITE "), invite
        msg = parse_message(invite)
        assert msg.uri.lower().endswith(";transport=tls"), msg.uri
        assert msg.get("Via").startswith("SIP/2.0/TLS "), msg.get("Via")
        contact = f"<sip:alice@{phone.local_hostport};transport=tls>"
        phone.send_raw(reply(invite, "200 OK", extra=[f"Contact: {contact}"],
                             body=sdp_offer(LOOPBACK, free_port())))
        ack = phone.recv_raw(5)
        assert ack is not None and ack.startswith(b"ACK "), ack
        bye = phone.recv_raw(10)
        assert bye is not None and bye.startswith(b"BYE "), bye
        phone.send_raw(reply(bye, "200 OK"))
        r = caller.wait(20)
        assert r.ok(), r
    rec = pbx.record()
    assert rec["outcome"] == "answered" and rec["hangup_cause"] == "BYE", rec
    assert any(leg["peer"].startswith("tls:") for leg in rec["legs"]), rec["legs"]


class TlsTrunk:
    """A trunk that speaks SIP over TLS with the "trunk" certificate: it
    answers every INVITE with 486 and keeps what it received."""

    def __init__(self, certs: Path):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(certs / "trunk.pem"), str(certs / "trunk.key"))
        self.ctx = ctx
        self.sock = socket.socket()
        self.sock.bind((LOOPBACK, 0))
        self.sock.listen(4)
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.invites: list[bytes] = []
        self.handshake_errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                raw, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            try:
                conn = self.ctx.wrap_socket(raw, server_side=True)
            except (ssl.SSLError, OSError) as e:
                self.handshake_errors.append(str(e))
                raw.close()
                continue
            threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _talk(self, conn: ssl.SSLSocket) -> None:
        conn.settimeout(0.5)
        buf = b""
        while not self._stop.is_set():
            try:
                chunk = conn.recv(65535)
            except socket.timeout:
                continue
            except (ssl.SSLError, OSError):
                return
            if not chunk:
                return
            buf += chunk
            while b"\r\n\r\n" in buf:
                head, rest = buf.split(b"\r\n\r\n", 1)
                m = re.search(rb"(?im)^content-length\s*:\s*(\d+)", head)
                n = int(m.group(1)) if m else 0
                if len(rest) < n:
                    break
                msg, buf = head + b"\r\n\r\n" + rest[:n], rest[n:]
                if msg.startswith(b"INVITE "):
                    self.invites.append(msg)
                    conn.sendall(reply(msg, "486 Busy Here"))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def test_a_tls_trunk_is_reached_only_with_a_certificate_for_its_name(dialtone_factory, sipp, certs):
    d, _ = tls_dialtone(dialtone_factory, certs)
    pbx = Pbx(d, sipp)
    trunk, other = TlsTrunk(certs), TlsTrunk(certs)
    try:
        # The certificate says "localhost": reached by that name it is good,
        # by its IP address it is not (no IP in it).
        d.add_trunk("secure", f"localhost:{trunk.port}", transport="tls")
        d.add_trunk("mismatch", f"127.0.0.1:{other.port}", transport="tls")
        d.add_number(N_SECURE, "trunk:secure")
        d.add_number(N_MISMATCH, "trunk:mismatch")

        busy = pbx.trunk_call("uac_reject.xml", N_SECURE, timeout=20)
        assert busy.ok(), busy
        finals = [m.splitlines()[0].strip() for m in received_messages(busy.messages)]
        assert "SIP/2.0 486 Busy Here" in finals, finals
        assert len(trunk.invites) == 1, trunk.invites
        invite = parse_message(trunk.invites[0])
        assert invite.get("Via").startswith("SIP/2.0/TLS "), invite.get("Via")
        assert ";transport=tls" in invite.get("Contact"), invite.get("Contact")

        refused = pbx.trunk_call("uac_reject.xml", N_MISMATCH, timeout=20)
        assert refused.ok(), refused
        finals = [m.splitlines()[0].strip() for m in received_messages(refused.messages)]
        assert any(f.startswith("SIP/2.0 503") for f in finals), finals
        assert not other.invites, "no INVITE may reach a trunk whose certificate is not for its address"
        assert other.handshake_errors, "the handshake must have been refused by dialtone"
    finally:
        trunk.close()
        other.close()


def test_a_peer_not_speaking_tls_is_dropped_and_others_are_served(dialtone_factory, certs):
    d, tls_port = tls_dialtone(dialtone_factory, certs)
    with socket.create_connection((LOOPBACK, tls_port), timeout=5) as plain:
        plain.sendall(b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nContent-Length: 0\r\n\r\n")
        plain.settimeout(5)
        try:
            data = plain.recv(100)
        except (ConnectionResetError, socket.timeout):
            data = b""
        assert not data.startswith(b"SIP/2.0"), data
    with SipClient(port=tls_port, transport="TLS", tls_context=client_context(certs)) as ok:
        r = ok.options()
        assert r is not None and r.code == 200, r
    # A client that does not trust the switch's CA gives up; the switch is fine.
    with pytest.raises(ssl.SSLError):
        SipClient(port=tls_port, transport="TLS", tls_context=ssl.create_default_context())
    assert d.healthz() == 200

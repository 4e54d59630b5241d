"""Writes the seed corpora of the fuzz targets (except the realtime ones,
see capture_realtime.py) from what the project's tests use:

- sip_message: the RFC 4475 torture messages, byte for byte, copied from
  crates/dialtone-sip/tests/fixtures/rfc4475/;
- sip_header: every header value of those messages (folded lines joined);
- sdp: the SDP bodies of crates/dialtone-sip/src/sdp/fixtures.rs in wire
  form (CRLF) and the SDP bodies of the RFC 4475 messages;
- rtp, rtcp, telephone_event: packet streams shaped like the media tests'
  (G.711, G.722 and Opus streams with loss, reordering, an SSRC change and
  sequence wrap; RFC 4733 digits including a long event; RTCP SR, RR, SDES,
  BYE and APP packets as dialtone's rtcp module writes them);
- srtp: an RTP packet, one with CSRCs and an extension, a receiver report,
  and a packet with a bogus tag, each behind the target's mode byte;
- tool_args: the destinations, phone numbers and call-action arguments of
  the dialtone-switch and dialtone-store unit tests.

    python3 fuzz/seeds/make_seeds.py      (from the repository root)

Deterministic: running it again rewrites the same files.
"""

from __future__ import annotations

import json
import pathlib
import re
import shutil
import struct

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
RFC4475 = ROOT / "crates/dialtone-sip/tests/fixtures/rfc4475"
SDP_FIXTURES = ROOT / "crates/dialtone-sip/src/sdp/fixtures.rs"


def fresh(name: str) -> pathlib.Path:
    d = HERE / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    return d


def sip() -> list[tuple[str, bytes]]:
    out = fresh("sip_message")
    msgs = []
    for f in sorted(RFC4475.glob("*.dat")):
        data = f.read_bytes()
        (out / f.name).write_bytes(data)
        msgs.append((f.stem, data))
    return msgs


def headers(msgs: list[tuple[str, bytes]]) -> None:
    out = fresh("sip_header")
    seen = set()
    for stem, data in msgs:
        head = data.split(b"\r\n\r\n", 1)[0]
        head = re.sub(rb"\r\n[ \t]+", b" ", head)     # unfold
        lines = head.split(b"\r\n")[1:]
        for i, line in enumerate(lines):
            if b":" not in line:
                continue
            value = line.split(b":", 1)[1].strip()
            if not value or value in seen:
                continue
            seen.add(value)
            (out / f"{stem}-{i:02d}").write_bytes(value)
    extra = [
        b'Digest username="alice", realm="dialtone", nonce="MTcwMDAwMDAwMDo2NzM0", '
        b'uri="sip:dialtone", response="0123456789abcdef0123456789abcdef", algorithm=MD5, '
        b'qop=auth, nc=00000001, cnonce="0a4f113b"',
        b'Digest realm="dialtone", nonce="MTcwMDAwMDAwMDo2NzM0", opaque="5ccc069c", '
        b'algorithm=SHA-256, qop="auth,auth-int", stale=FALSE',
        b'<sip:bob@example.com?Replaces=12345%40192.168.118.3%3Bto-tag%3D12345%3Bfrom-tag%3D5FFE-3994>',
        b'12345@192.168.118.3;to-tag=12345;from-tag=5FFE-3994;early-only',
        b'1800;refresher=uac', b'90', b'776656 1 INVITE', b'1',
        b'"Alice" <sip:alice@[2001:db8::1]:5061;transport=tcp;lr>;tag=a73kszlfl;expires=60',
        b'SIP/2.0/UDP [2001:db8::9:1]:5060;branch=z9hG4bKas3-111;rport;received=192.0.2.1',
        b'<sip:+15550100123@example.com;user=phone>, <tel:+15550100123>',
    ]
    for i, v in enumerate(extra):
        (out / f"extra-{i:02d}").write_bytes(v)


def sdp(msgs: list[tuple[str, bytes]]) -> None:
    out = fresh("sdp")
    src = SDP_FIXTURES.read_text()
    for name, body in re.findall(r'pub const ([A-Z0-9_]+): &str = "(.*?)";', src, re.S):
        (out / f"{name.lower()}.sdp").write_bytes(body.replace("\n", "\r\n").encode())
    for stem, data in msgs:
        head, _, body = data.partition(b"\r\n\r\n")
        if b"application/sdp" in head.lower() and body.startswith(b"v=0"):
            (out / f"rfc4475-{stem}.sdp").write_bytes(body)


def rtp_packet(pt: int, seq: int, ts: int, ssrc: int, payload: bytes, marker: bool = False,
               csrcs: tuple[int, ...] = (), ext: bytes | None = None, pad: int = 0) -> bytes:
    b0 = 0x80 | (0x20 if pad else 0) | (0x10 if ext is not None else 0) | len(csrcs)
    out = struct.pack("!BBHII", b0, (0x80 if marker else 0) | pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc)
    for c in csrcs:
        out += struct.pack("!I", c)
    if ext is not None:
        out += struct.pack("!HH", 0xBEDE, len(ext) // 4) + ext
    out += payload
    if pad:
        out += bytes(pad - 1) + bytes([pad])
    return out


def event(ev: int, end: bool, volume: int, duration: int) -> bytes:
    return struct.pack("!BBH", ev, (0x80 if end else 0) | volume, duration)


def rtcp_header(count: int, pt: int, body: bytes) -> bytes:
    return struct.pack("!BBH", 0x80 | count, pt, (len(body) + 4) // 4 - 1) + body


def sdes(ssrc: int, cname: bytes) -> bytes:
    chunk = struct.pack("!I", ssrc) + bytes([1, len(cname)]) + cname + b"\x00"
    chunk += bytes(-len(chunk) % 4)
    return rtcp_header(1, 202, chunk)


BLOCK = struct.pack("!IB3sIIII", 0x11223344, 12, (7).to_bytes(3, "big"), 0x0001_0203, 45, 0x1234_5678, 65536)
SR = rtcp_header(1, 200, struct.pack("!IQIII", 0xDEADBEEF, 0xE9A1_2345_8000_0000, 160_000, 1000, 160_000) + BLOCK)
RR = rtcp_header(1, 201, struct.pack("!I", 0xDEADBEEF) + BLOCK)
BYE = rtcp_header(2, 203, struct.pack("!II", 0xDEADBEEF, 0x11223344) + b"\x03bye")
APP = rtcp_header(0, 204, struct.pack("!I", 0xDEADBEEF) + b"name" + b"data")


def stream(mode: int, packets: list[tuple[int, bytes]]) -> bytes:
    out = bytes([mode])
    for step, p in packets:
        out += struct.pack("!BH", step, len(p)) + p
    return out


def media() -> None:
    out = fresh("rtp")
    ssrc = 0x1234ABCD
    # PCMU, 20 ms packets, one lost, two swapped, then a new SSRC (re-INVITE).
    pkts = [(20, rtp_packet(0, 100 + i, 160 * i, ssrc, b"\xff" * 160, marker=i == 0))
            for i in range(12) if i != 5]
    pkts[7], pkts[8] = pkts[8], pkts[7]
    pkts += [(20, rtp_packet(0, 9000 + i, 777 + 160 * i, 0x55667788, b"\x7f" * 160, marker=i == 0))
             for i in range(6)]
    (out / "pcmu-loss-reorder-ssrc-change").write_bytes(stream(0x00, pkts))
    # PCMA across the sequence number and timestamp wrap, with RTCP muxed in.
    pkts = [(20, rtp_packet(8, 65530 + i, 0xFFFFFF00 + 160 * i, ssrc, b"\xd5" * 160)) for i in range(12)]
    pkts.insert(6, (0, SR + sdes(ssrc, b"alice@192.0.2.1")))
    (out / "pcma-wrap-rtcp-mux").write_bytes(stream(0x40, pkts))
    # G.722 (8000 Hz RTP clock, 16 kHz audio), 20 ms.
    pkts = [(20, rtp_packet(9, i, 160 * i, ssrc, bytes((i * 7 + k) & 0xFF for k in range(160)))) for i in range(10)]
    (out / "g722").write_bytes(stream(0x80, pkts))
    # Opus 20 ms silence frames (TOC 0xf8: CELT FB 20 ms), a loss, DTX gap.
    opus = b"\xf8\xff\xfe"
    pkts = [(20, rtp_packet(111, i, 960 * i, ssrc, opus)) for i in range(8) if i != 3]
    pkts += [(200, rtp_packet(111, 8, 960 * 20, ssrc, opus, marker=True))]
    (out / "opus-loss-dtx").write_bytes(stream(0xC0, pkts))
    (out / "opus-16k-10ms").write_bytes(stream(0xC5, [(10, rtp_packet(111, i, 480 * i, ssrc, b"\x78\xff\xfe"))
                                                       for i in range(10)]))
    # Telephone-event digit 5 amid PCMU, with the end packet sent three times.
    pkts = [(20, rtp_packet(0, i, 160 * i, ssrc, b"\xff" * 160)) for i in range(3)]
    for k, dur in enumerate([160, 320, 480, 640]):
        pkts.append((20, rtp_packet(101, 3 + k, 480, ssrc, event(5, False, 10, dur), marker=k == 0)))
    for k in range(3):
        pkts.append((20, rtp_packet(101, 7 + k, 480, ssrc, event(5, True, 10, 800))))
    (out / "pcmu-dtmf").write_bytes(stream(0x20, pkts))
    # Header variants: CSRCs, a one-byte-header extension, padding.
    pkts = [(20, rtp_packet(0, 1, 0, ssrc, b"\xff" * 160, csrcs=(1, 2))),
            (20, rtp_packet(0, 2, 160, ssrc, b"\xff" * 160, ext=b"\x10\xaa\x00\x00")),
            (20, rtp_packet(0, 3, 320, ssrc, b"\xff" * 160, pad=4)),
            (20, b"\x00\x01\x00\x08\x21\x12\xa4\x42" + bytes(12))]    # a STUN binding request
    (out / "header-variants").write_bytes(stream(0x00, pkts))

    out = fresh("rtcp")
    for name, data in [("sr-sdes", SR + sdes(0xDEADBEEF, b"dialtone")), ("rr-sdes", RR + sdes(0xDEADBEEF, b"x")),
                       ("rr-empty", rtcp_header(0, 201, struct.pack("!I", 1))), ("bye", BYE),
                       ("sr-rr-bye-app", SR + RR + BYE + APP)]:
        (out / name).write_bytes(data)

    out = fresh("srtp")
    # mode byte: bit 0 the _32 suite, bit 1 RTCP; then the datagram
    pcmu = rtp_packet(0, 1000, 160_000, 0x12345678, b"\xd5" * 160)
    for name, data in [("rtp-pcmu", b"\x00" + pcmu),
                       ("rtp-csrc-ext-32", b"\x01" + rtp_packet(0, 1, 160, 42, b"\x33" * 20, csrcs=(1, 2),
                                                                 ext=b"\x10\xff\x00\x00")),
                       ("rtcp-rr", b"\x02" + RR),
                       ("rtp-bogus-tag", b"\x00" + pcmu + b"\x01" * 10)]:
        (out / name).write_bytes(data)

    out = fresh("telephone_event")

    def records(recs: list[tuple[int, int, bytes]]) -> bytes:
        return b"".join(struct.pack("!IHB", ts, adv, len(p)) + p for ts, adv, p in recs)

    digit = [(1000, 160, event(1, False, 10, 160)), (1000, 160, event(1, False, 10, 320))] + \
        [(1000, 160, event(1, True, 10, 640))] * 3 + [(5000, 160, event(11, False, 7, 160))]
    (out / "8k-to-48k").write_bytes(bytes([0, 2]) + records(digit))
    (out / "48k-to-8k").write_bytes(bytes([2, 0]) + records(
        [(96000, 960, event(12, False, 10, 960 * k)) for k in range(1, 4)] + [(96000, 960, event(12, True, 10, 3840))]))
    long_event = [(0, 160, event(3, False, 10, 0xFFFF)), (0xFFFF, 160, event(3, False, 10, 800)),
                  (2 * 0xFFFF, 160, event(3, True, 10, 100)), (0, 160, event(3, True, 10, 0xFFFF))]
    (out / "long-event-segments").write_bytes(bytes([0, 2]) + records(long_event))


def tool_args() -> None:
    out = fresh("tool_args")
    texts = [
        "1001", "user:alice", "queue:sales", "(555) 010-0123", "+1 555 010 0123", "number:+44 20", "carol",
        "sip:bob@example.com", "<sip:bob@example.com;transport=tcp>", "tel:+15550100123", "sips:a@b:5061",
        "(555) 010-0123", "011 44 20 7946 0958", "0049 30 123456", "0011 44 20 7946 0958",
        "010 1 555 010 0123", "+44 (0)20 7946 0958", "030/123456", "01 23 45 67 89", "090-1234-5678",
        "+39 06 1234 5678", "sip:+15550100123@example.com;user=phone", "+2125 2212 3456",
    ]
    objects = [
        {"keep": "caller", "to": "1003"}, {"keep": "callee", "to": "queue:support"}, None,
        {"party": "callee"}, {"to": "caller", "digits": "123#*"},
        {"keep": "caller", "other_call": "c0ffee", "other_keep": "callee"},
        {"cause": "done", "after_playout": True}, {"prty": "callee"}, {"party": 3}, [1, 2], "x",
    ]
    for i, t in enumerate(texts):
        (out / f"text-{i:02d}").write_bytes(t.encode())
    for i, o in enumerate(objects):
        (out / f"json-{i:02d}").write_bytes(json.dumps(o).encode())


def main() -> None:
    msgs = sip()
    headers(msgs)
    sdp(msgs)
    media()
    tool_args()
    for d in sorted(p for p in HERE.iterdir() if p.is_dir()):
        print(f"{d.name}: {len(list(d.iterdir()))} seeds")


if __name__ == "__main__":
    main()

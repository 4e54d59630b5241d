"""SRTP keyed by SDES (RFC 4568 over RFC 3711), terminated per leg: each
party gets dialtone's own keys, and its policy (`--srtp` on its user or
trunk, else `media.srtp`) decides whether SRTP is offered, accepted or
refused. Driven by a Python trunk and phone (what crosses dialtone is seen
byte for byte) and by baresip's srtp module (libre's SRTP, a real peer that
decrypts what dialtone encrypts and the other way round)."""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time

import pytest

from conftest import LOOPBACK, baresip_tone_call, free_port
from siptool import RtpPeer, SipUA, answer_call, parse_sdp, place_call, sdp_offer

PW = "s3cret-pw"
TRUNK_IP = "127.0.0.2"
N_BOB = "15551230001"
SUITE = "AES_CM_128_HMAC_SHA1_80"


class Srtp:
    """A dialtone with the trunk "carrier" (127.0.0.2), users alice and bob,
    and a number for bob."""

    def __init__(self, d):
        self.d = d
        d.add_trunk("carrier", f"{TRUNK_IP}:{free_port(host=TRUNK_IP)}", inbound_ips=[TRUNK_IP])
        for u in ("alice", "bob"):
            d.add_user(u, PW)
        d.add_number(N_BOB, "user:bob")


@pytest.fixture
def srtp(dialtone) -> Srtp:
    return Srtp(dialtone)


def savp_offer(ip: str, port: int, key: bytes, tag: int = 5, proto: str = "RTP/SAVP") -> bytes:
    plain = sdp_offer(ip, port).decode()
    line = f"a=crypto:{tag} {SUITE} inline:{base64.b64encode(key).decode()}"
    return (plain.replace("RTP/AVP", proto) + line + "\r\n").encode()


def cryptos(body: bytes) -> list[tuple[int, str, bytes]]:
    return [(int(t), s, base64.b64decode(k))
            for t, s, k in re.findall(r"(?m)^a=crypto:(\d+) (\S+) inline:([A-Za-z0-9+/=]+)", body.decode())]


def proto(body: bytes) -> str:
    m = re.search(r"(?m)^m=audio \d+ (\S+)", body.decode())
    return m.group(1) if m else ""


def call_bob_from_the_trunk(d, offer: bytes, *, bob_rtp: RtpPeer | None = None):
    """The trunk calls bob's number with `offer`; bob (a registered Python
    phone) answers in plain RTP/AVP with `bob_rtp`'s port. Returns (trunk
    UA, phone UA, the trunk's dialog, the INVITE bob got or None); the UAs
    are open: the caller closes them."""
    phone, trunk = SipUA(LOOPBACK, user="bob"), SipUA(TRUNK_IP, user="carrier")
    reg = phone.register("bob", PW, (LOOPBACK, d.sip_port))
    assert reg is not None and reg.code == 200, reg
    got: dict = {}

    def callee():
        inv = phone.wait_request("INVITE", 8)
        if inv is not None:
            got["invite"] = inv
            port = bob_rtp.port if bob_rtp else 40000
            got["dialog"] = answer_call(phone, inv, sdp_offer(LOOPBACK, port))

    t = threading.Thread(target=callee, daemon=True)
    t.start()
    call = place_call(trunk, (LOOPBACK, d.sip_port), f"sip:{N_BOB}@{LOOPBACK}:{d.sip_port}", offer,
                      from_uri=f"sip:+15559870000@{TRUNK_IP}")
    t.join(10 if call.final is not None and call.final.code == 200 else 1)
    return trunk, phone, call, got.get("invite")


def test_an_srtp_trunk_call_is_answered_with_dialtones_own_key_and_bob_gets_plain_rtp(srtp):
    """The default policy (optional) takes an RTP/SAVP offer: the answer has
    the offered tag and suite with dialtone's key; bob, whose policy is the
    default too, is offered plain RTP. On the wire, what bob sends reaches
    the trunk encrypted and authenticated (10 more bytes, not the plain
    payload), and plain RTP the trunk sends is refused, not relayed."""
    d = srtp.d
    trunk_key = secrets.token_bytes(30)
    rtp_trunk, rtp_bob = RtpPeer(TRUNK_IP, pt=0), RtpPeer(LOOPBACK, pt=0)
    rtp_trunk.keep_payload = True
    offer = savp_offer(TRUNK_IP, rtp_trunk.port, trunk_key)
    trunk, phone, call, inv = call_bob_from_the_trunk(d, offer, bob_rtp=rtp_bob)
    try:
        assert call.final is not None and call.final.code == 200, call.final
        answer = call.final.body
        assert proto(answer) == "RTP/SAVP", answer.decode()
        [(tag, suite, key)] = cryptos(answer)
        assert (tag, suite, len(key)) == (5, SUITE, 30), answer.decode()
        assert key != trunk_key, "dialtone must send with its own key, not echo the trunk's"
        assert inv is not None, "bob got no INVITE"
        assert proto(inv.body) == "RTP/AVP" and not cryptos(inv.body), \
            f"bob's policy is optional: his offer must be plain\n{inv.body.decode()}"

        to_trunk, to_bob = call.remote_sdp, parse_sdp(inv.body)
        rtp_bob.start((to_bob.ip, to_bob.port), payload=b"\x55" * 160)
        rtp_trunk.start((to_trunk.ip, to_trunk.port))
        time.sleep(2.0)
        rtp_bob.stop_sending()
        rtp_trunk.stop_sending()
        time.sleep(0.3)
        assert rtp_trunk.received > 20, f"the trunk got no SRTP from dialtone: {rtp_trunk}"
        sizes = {len(p) for p in rtp_trunk.payloads}
        assert sizes == {160 + 10}, f"SRTP payloads carry an 80-bit tag: sizes {sizes}"
        assert all(p[:160] != b"\x55" * 160 for p in rtp_trunk.payloads), "the payload went out in the clear"
        assert rtp_bob.received == 0, f"plain RTP from the trunk's SRTP leg was relayed to bob: {rtp_bob}"
        assert rtp_trunk.sent > 20, rtp_trunk
        assert call.bye() is not None
    finally:
        rtp_trunk.stop()
        rtp_bob.stop()
        trunk.close()
        phone.close()
    stats = d.wait_calls(1, 10)[0].get("stats") or {}
    if isinstance(stats, str):
        stats = json.loads(stats)
    legs = {v.get("label"): v for k, v in stats.items() if k.startswith("leg")}
    trunk_leg = next(v for v in legs.values() if v.get("srtp"))
    assert trunk_leg["srtp"] == SUITE and trunk_leg["srtp_rejected"] > 20, stats
    assert sum(1 for v in legs.values() if v.get("srtp")) == 1, f"only the trunk's leg is SRTP: {stats}"


@pytest.mark.parametrize("policy,offer_kind,reason", [
    ("required", "plain", "SRTP Required"),
    ("off", "savp", "SRTP Not Allowed"),
])
def test_the_trunks_policy_refuses_the_wrong_kind_of_offer_with_488(srtp, policy, offer_kind, reason):
    d = srtp.d
    d.cli("trunk", "update", "carrier", "--srtp", policy)
    offer = (sdp_offer(TRUNK_IP, 40000) if offer_kind == "plain"
             else savp_offer(TRUNK_IP, 40000, secrets.token_bytes(30)))
    trunk, phone, call, inv = call_bob_from_the_trunk(d, offer)
    try:
        assert call.final is not None and call.final.code == 488, call.final
        assert call.final.first.split(" ", 2)[2] == reason, call.final
        assert inv is None, "bob was called although the caller's offer was refused"
    finally:
        trunk.close()
        phone.close()


def test_an_off_trunk_answers_a_best_effort_offer_in_plain_and_required_bob_gets_savp(srtp):
    """Best effort (a=crypto on RTP/AVP) to a trunk whose policy is off: a
    plain answer, no keys. bob's own policy is required: his offer is
    RTP/SAVP with a key per suite."""
    d = srtp.d
    d.cli("trunk", "update", "carrier", "--srtp", "off")
    d.cli("user", "update", "bob", "--srtp", "required")
    offer = savp_offer(TRUNK_IP, 40000, secrets.token_bytes(30), proto="RTP/AVP")
    trunk, phone, call, inv = call_bob_from_the_trunk(d, offer)
    try:
        assert inv is not None, f"bob got no INVITE; the trunk got {call.final}"
        assert proto(inv.body) == "RTP/SAVP", inv.body.decode()
        offered = cryptos(inv.body)
        assert [(t, s) for t, s, _ in offered] == [(1, SUITE), (2, "AES_CM_128_HMAC_SHA1_32")], offered
        # bob answered plain to a required offer: dialtone keeps the media refused
        assert call.final is not None and call.final.code == 200, call.final
        assert proto(call.final.body) == "RTP/AVP" and not cryptos(call.final.body), call.final.body.decode()
        assert call.bye() is not None
    finally:
        trunk.close()
        phone.close()


@pytest.mark.parametrize("alice_enc,bob_enc,bob_policy", [
    ("srtp-mand", None, None),            # SRTP phone to plain phone
    (None, "srtp-mand", "required"),      # dialtone offers SAVP to bob
])
def test_baresip_phones_hear_each_other_over_srtp(srtp, baresip, tmp_path, alice_enc, bob_enc, bob_policy):
    """Tones both ways through libre's SRTP: alice's microphone is 1000 Hz,
    bob's 440 Hz. Whichever leg is SRTP, dialtone decrypts what that phone
    sends and encrypts what it hears; a mistake in either is silence."""
    d = srtp.d
    if bob_policy:
        d.cli("user", "update", "bob", "--srtp", bob_policy)
    alice, bob = baresip_tone_call(baresip, tmp_path, PW, d.sip_port,
                                   alice={"mediaenc": alice_enc}, bob={"mediaenc": bob_enc})
    for phone in (alice, bob):
        if phone.mediaenc:
            assert "SRTP is Enabled" in phone.log(), f"{phone.user} did not use SRTP:\n{phone.log()}"

"""End-to-end tests of dialtone's registrar, driven from outside: SIPp,
baresip, raw sockets and the dialtone CLI against the real binary.

Each test starts its own dialtone (own ports, own sqlite DB) through the
`dialtone` / `dialtone_factory` fixtures (tests/conftest.py), which also check
that it exits 0 on SIGTERM at the end.
"""

from __future__ import annotations

import secrets
import signal
import socket
import time
import tomllib
from pathlib import Path

import pytest

from conftest import LOOPBACK, base_config, free_port, header_values, received_messages
from siptool import (SipClient, authorization, contact_expires, parse_challenge, retarget_via,
                     rfc4475_fixture, split_contacts)

REPO = Path(__file__).resolve().parent.parent

PW = "s3cret-pw"


def registered_ok(d, user: str, port: int | None = None) -> list:
    """The bindings of `user` (optionally: those whose contact has port `port`)."""
    bs = d.bindings_of(user)
    if port is not None:
        bs = [b for b in bs if f":{port}" in b.contact]
    return bs


def sipp_local_port(result) -> int:
    return int(result.cmd[result.cmd.index("-p") + 1])


# 1, 2 ----------------------------------------------------------------------

@pytest.mark.parametrize("transport", ["u1", "t1"], ids=["udp", "tcp"])
def test_register_digest(dialtone, sipp, transport):
    dialtone.add_user("alice", PW)
    r = sipp("register.xml", dialtone.sip_port, transport=transport, service="alice", password=PW,
             keys={"expires": 600})
    assert r.ok(), r
    # the challenge: Digest, qop=auth, realm = the domain, MD5 only by
    # default (SHA-256 is opt-in: test_sha256_when_configured)
    first = received_messages(r.messages)[0]
    assert first.startswith("SIP/2.0 401"), first
    challenges = [parse_challenge(v) for v in header_values(first, "WWW-Authenticate")]
    assert all(c["scheme"].lower() == "digest" for c in challenges), challenges
    assert [c.get("algorithm", "MD5").upper() for c in challenges] == ["MD5"], challenges
    for c in challenges:
        assert c.get("realm") == dialtone.domain, c
        assert "auth" in [q.strip() for q in c.get("qop", "").split(",")], c
    # stored: the CLI sees the binding, with its contact and a sane time left
    port = sipp_local_port(r)
    bs = registered_ok(dialtone, "alice", port)
    assert len(bs) == 1, dialtone.registrations()
    assert bs[0].seconds is not None and 590 <= bs[0].seconds <= 600, bs[0]


# 3 -------------------------------------------------------------------------

def test_wrong_password_is_refused(dialtone, sipp):
    dialtone.add_user("bob", PW)
    r = sipp("register_wrong_password.xml", dialtone.sip_port, service="bob",
             password="not-" + PW, keys={"expires": 600})
    assert r.ok(), r  # success of this scenario = refused (401 again or 403)
    assert registered_ok(dialtone, "bob") == [], dialtone.registrations()

    # an unknown user is refused the same way
    r = sipp("register_wrong_password.xml", dialtone.sip_port, service="nobody",
             password=PW, keys={"expires": 600})
    assert r.ok(), r
    assert registered_ok(dialtone, "nobody") == []

    # the check has teeth: with the RIGHT password dialtone answers 200, and
    # the same scenario must then fail
    accepted = sipp("register_wrong_password.xml", dialtone.sip_port, service="bob",
                    password=PW, keys={"expires": 600})
    assert accepted.rc != 0 and accepted.failed == 1, \
        f"register_wrong_password.xml did not fail on an accepted registration:\n{accepted}"
    assert received_messages(accepted.messages)[-1].startswith("SIP/2.0 200")


# 4 -------------------------------------------------------------------------

def test_query_register_lists_binding(dialtone, sipp):
    dialtone.add_user("carol", PW)
    reg = sipp("register.xml", dialtone.sip_port, service="carol", password=PW, keys={"expires": 900})
    assert reg.ok(), reg
    port = sipp_local_port(reg)

    q = sipp("register_query.xml", dialtone.sip_port, service="carol", password=PW)
    assert q.ok(), q
    final = received_messages(q.messages)[-1]
    assert final.startswith("SIP/2.0 200"), final
    contacts = split_contacts(header_values(final, "Contact"))
    mine = [c for c in contacts if f"@{LOOPBACK}:{port}" in c]
    assert len(mine) == 1, contacts
    exp = contact_expires(mine[0])
    assert exp is not None and 0 < exp <= 900, mine[0]


# 5 -------------------------------------------------------------------------

def test_expired_binding_is_gone(dialtone, sipp):
    dialtone.add_user("dave", PW)
    reg = sipp("register.xml", dialtone.sip_port, service="dave", password=PW, keys={"expires": 1})
    assert reg.ok(), reg  # the 200 listed the binding, so it did exist
    time.sleep(3)  # expires 1 s, purge every 1 s
    assert registered_ok(dialtone, "dave") == [], dialtone.registrations()
    q = sipp("register_query_empty.xml", dialtone.sip_port, service="dave", password=PW)
    assert q.ok(), q


# 6 -------------------------------------------------------------------------

def test_unregister_all_with_star(dialtone, sipp):
    dialtone.add_user("erin", PW)
    ports = []
    for _ in range(2):  # two phones of the same user: two bindings
        r = sipp("register.xml", dialtone.sip_port, service="erin", password=PW, keys={"expires": 600})
        assert r.ok(), r
        ports.append(sipp_local_port(r))
    assert sorted(int(b.contact.rsplit(":", 1)[1].split(";")[0]) for b in registered_ok(dialtone, "erin")) \
        == sorted(ports), dialtone.registrations()

    u = sipp("unregister_all.xml", dialtone.sip_port, service="erin", password=PW)
    assert u.ok(), u
    assert registered_ok(dialtone, "erin") == [], dialtone.registrations()
    q = sipp("register_query_empty.xml", dialtone.sip_port, service="erin", password=PW)
    assert q.ok(), q


# 7 -------------------------------------------------------------------------

def test_interval_too_brief(dialtone_factory, sipp):
    d = dialtone_factory(config={"registrar": {"min_expires": 60}})
    d.add_user("frank", PW)
    r = sipp("register_too_brief.xml", d.sip_port, service="frank", password=PW, keys={"expires": 30})
    assert r.ok(), r
    last = received_messages(r.messages)[-1]
    assert last.startswith("SIP/2.0 423"), last
    assert header_values(last, "Min-Expires") == ["60"], last
    assert registered_ok(d, "frank") == []
    # at the minimum it is accepted
    ok = sipp("register.xml", d.sip_port, service="frank", password=PW, keys={"expires": 60})
    assert ok.ok(), ok


# 8 -------------------------------------------------------------------------

@pytest.mark.parametrize("form", ["port", "outbound"])
def test_baresip_registers(dialtone_factory, baresip, form):
    """A real phone. form=port: AOR sip:grace@127.0.0.1:PORT (the switch's
    port in the account); form=outbound: AOR sip:grace@127.0.0.1 with an
    outbound proxy (the REGISTER then carries a Route to the switch).

    The switch runs with the default auth settings (no auth.algorithms):
    baresip 1.0 (libre) gives up on a 401 that carries ANY challenge whose
    algorithm is not MD5 ("Register: Function not implemented"), even when an
    MD5 challenge is offered too, so this fails if the default offers more."""
    d = dialtone_factory()
    d.add_user("grace", PW)
    phone = baresip("grace", PW, d.sip_port, form=form)
    ok = phone.wait_registered(10)
    if not ok and "Register: Function not implemented" in phone.log():
        pytest.fail("baresip 1.0 refused the challenge: it was offered a non-MD5 digest "
                    "algorithm by default\n" + phone.log())
    assert ok, f"baresip did not register:\n{phone.log()}"
    bs = registered_ok(d, "grace", phone.sip_port)
    assert len(bs) == 1, (d.registrations(), phone.log())
    assert bs[0].seconds is not None and 0 < bs[0].seconds <= 600, bs[0]  # regint=600
    info = phone.command("reginfo")
    assert info is not None and "OK" in info.get("data", ""), info


def shipped_config() -> dict:
    """config/dialtone.toml as shipped, less what only names this machine's
    addresses and files (the test's own ports and database go there)."""
    cfg = tomllib.loads((REPO / "config" / "dialtone.toml").read_text())
    for section, key in (("sip", "listen"), ("http", "listen"), ("database", "url"),
                         ("recording", "dir")):
        cfg.get(section, {}).pop(key, None)
    return cfg


def test_baresip_registers_with_the_shipped_config(dialtone_factory, baresip):
    """The first thing a new operator does: config/dialtone.toml as it ships,
    a user, a real phone (baresip 1.0, which gives up on a 401 offering any
    non-MD5 challenge). It registers, and the 401 offers MD5 alone."""
    d = dialtone_factory(config=shipped_config())
    assert "algorithms" not in base_config(d.workdir, 0, 0)["auth"], \
        "the harness must not choose the algorithms"
    d.add_user("grace", PW)
    with SipClient(d.sip_port) as c:
        first, _ = c.register("nobody-" + secrets.token_hex(3), PW, d.domain)
    assert first is not None and first.code == 401, first
    algs = [parse_challenge(v).get("algorithm", "MD5").upper() for v in first.all("WWW-Authenticate")]
    assert algs == ["MD5"], f"the shipped config offers {algs}"
    phone = baresip("grace", PW, d.sip_port)
    assert phone.wait_registered(10), f"baresip did not register with the shipped config:\n{phone.log()}"
    assert len(registered_ok(d, "grace", phone.sip_port)) == 1, (d.registrations(), phone.log())


def test_sha256_when_configured(dialtone_factory):
    """SHA-256 (RFC 7616/8760) stays available: offered in the configured
    order, and answered; configured alone, an MD5 answer is refused."""
    d = dialtone_factory(config={"auth": {"algorithms": ["SHA-256", "MD5"]}})
    d.add_user("sha", PW)
    with SipClient(d.sip_port) as c:
        for alg in ("SHA-256", "MD5"):
            first, second = c.register("sha", PW, d.domain, algorithm=alg)
            assert first is not None and first.code == 401, first
            offered = [parse_challenge(v).get("algorithm", "MD5").upper()
                       for v in first.all("WWW-Authenticate")]
            assert offered == ["SHA-256", "MD5"], offered
            assert second is not None and second.code == 200, (alg, second)
    assert registered_ok(d, "sha"), d.registrations()

    strict = dialtone_factory(config={"auth": {"algorithms": ["SHA-256"]}})
    strict.add_user("sha", PW)
    with SipClient(strict.sip_port) as c:
        first, second = c.register("sha", PW, strict.domain, algorithm="SHA-256")
        assert first is not None and first.code == 401, first
        offered = [parse_challenge(v) for v in first.all("WWW-Authenticate")]
        assert [ch.get("algorithm") for ch in offered] == ["SHA-256"], offered
        assert second is not None and second.code == 200, second
        # an MD5 answer to the SHA-256 nonce: not an algorithm on offer
        ruri = f"sip:{strict.domain}"
        md5 = authorization({**offered[0], "algorithm": "MD5"}, "REGISTER", ruri, "sha", PW)
        resp = c.request(c.register_msg("sha", strict.domain, cseq=1,
                                        call_id=secrets.token_hex(8) + "@dialtone-tests",
                                        from_tag=secrets.token_hex(4), contact="default",
                                        expires=3600, authorization=md5, request_uri=ruri), 3.0)
        assert resp is not None and resp.code in (401, 403), resp


# 9 -------------------------------------------------------------------------

@pytest.mark.parametrize("transport", ["u1", "t1"], ids=["udp", "tcp"])
def test_options(dialtone, sipp, transport):
    r = sipp("options.xml", dialtone.sip_port, transport=transport)
    assert r.ok(), r


# 10 ------------------------------------------------------------------------

def _no_reply(client: SipClient, data: bytes, wait: float = 0.7) -> bytes | None:
    client.send_raw(data)
    return client.recv_raw(wait)


def test_malformed_input_does_not_stop_the_switch(dialtone, sipp):
    dialtone.add_user("heidi", PW)
    with SipClient(dialtone.sip_port) as c:
        # RFC 4475 3.1.2.4: CSeq above 2^32-1 -> 400 (Via pointed back at us)
        msg = retarget_via(rfc4475_fixture("scalar02.dat"), "UDP", c.local_hostport)
        c.send_raw(msg)
        raw = c.recv_raw(3.0)
        assert raw is not None, "no answer to scalar02 (invalid REGISTER): expected 400"
        assert raw.startswith(b"SIP/2.0 400"), raw[:200]
        assert b"scalar02.23o0pd9vanlq3wnrlnewofjas9ui32" in raw, raw  # its Call-ID echoed

        # garbage gets no answer at all
        for junk in (b"\x00\xff" * 300, b"hello world\r\n\r\n",
                     b"REGISTER\r\n\r\n", b"SIP/2.0\r\n\r\n", bytes(range(256)) * 4):
            got = _no_reply(c, junk)
            assert got is None, f"answered garbage {junk[:20]!r}: {got[:200]!r}"

        # a stray response (RFC 4475 3.1.2.19: status code above 699) is dropped
        got = _no_reply(c, retarget_via(rfc4475_fixture("bigcode.dat"), "UDP", c.local_hostport))
        assert got is None, got

    # TCP: garbage on one connection must not hurt the others
    with socket.create_connection((LOOPBACK, dialtone.sip_port), timeout=3) as s:
        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\xaa" * 500 + b"\r\n\r\n")
        s.settimeout(1.0)
        try:
            s.recv(4096)
        except (socket.timeout, ConnectionError):
            pass

    # still serving, on both transports
    for t in ("u1", "t1"):
        r = sipp("register.xml", dialtone.sip_port, transport=t, service="heidi", password=PW,
                 keys={"expires": 600})
        assert r.ok(), r
    assert dialtone.healthz() == 200


def test_rfc4475_scalar02_over_tcp(dialtone):
    with SipClient(dialtone.sip_port, transport="TCP") as c:
        c.send_raw(retarget_via(rfc4475_fixture("scalar02.dat"), "TCP", c.local_hostport))
        raw = c.recv_raw(3.0)
        assert raw is not None and raw.startswith(b"SIP/2.0 400"), raw


# 11 ------------------------------------------------------------------------

@pytest.mark.timeout(60)
def test_auth_failures_lock_out_with_403(dialtone_factory):
    d = dialtone_factory(config={"auth": {"max_failures": 3, "failure_window_secs": 60, "lockout": "403"}})
    d.add_user("ivan", PW)
    with SipClient(d.sip_port) as c:
        first, second = c.register("ivan", PW, d.domain)
        assert first is not None and first.code == 401, first
        assert second is not None and second.code == 200, second  # the password is right
        for i in range(3):
            first, second = c.register("ivan", "wrong-" + PW, d.domain)
            assert first is not None, f"attempt {i + 1}: no answer"
            codes = (first.code, second.code if second else None)
            assert first.code in (401, 403) and (second is None or second.code in (401, 403)), codes
        # over the limit: even the right password is refused, with 403
        first, second = c.register("ivan", PW, d.domain)
        final = second if second is not None else first
        assert final is not None, "no answer once locked out (lockout is \"403\")"
        assert final.code == 403, f"expected 403 once locked out, got {final.code}:\n{final}"


@pytest.mark.timeout(60)
def test_auth_failures_lock_out_silently(dialtone_factory):
    d = dialtone_factory(config={"auth": {"max_failures": 3, "failure_window_secs": 60,
                                          "lockout": "silence"}})
    d.add_user("judy", PW)
    with SipClient(d.sip_port) as c:
        for i in range(3):
            first, second = c.register("judy", "wrong-" + PW, d.domain)
            assert first is not None and first.code == 401, (i, first)
            assert second is not None and second.code in (401, 403), (i, second)
        first, second = c.register("judy", PW, d.domain, timeout=2.0)
        assert second is None or second.code != 200, second
        answered = [r.code for r in (first, second) if r is not None]
        # silence: the locked-out source gets no answer at all, at the latest
        # to its credentials
        assert first is None or (first.code == 401 and second is None), answered


# 12 ------------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_graceful_shutdown(dialtone, sig):
    dialtone.add_user("ken", PW)
    with SipClient(dialtone.sip_port) as u, SipClient(dialtone.sip_port, transport="TCP") as t:
        assert u.register("ken", PW, dialtone.domain)[1].code == 200
        assert t.register("ken", PW, dialtone.domain)[1].code == 200
        # an idle TCP connection stays open while we stop the switch
        start = time.monotonic()
        rc = dialtone.stop(sig, timeout=10)
        assert dialtone.stop_problem is None, dialtone.stop_problem
        assert rc == 0, f"exit code {rc} after {sig.name}"
        assert time.monotonic() - start < 10
    assert dialtone.healthz() is None  # HTTP is down too


def test_bindings_survive_restart(dialtone, sipp):
    dialtone.add_user("liz", PW)
    r = sipp("register.xml", dialtone.sip_port, service="liz", password=PW, keys={"expires": 600})
    assert r.ok(), r
    assert dialtone.stop() == 0
    dialtone.close_files()
    dialtone.start()
    bs = registered_ok(dialtone, "liz", sipp_local_port(r))
    assert len(bs) == 1, dialtone.registrations()
    q = sipp("register_query.xml", dialtone.sip_port, service="liz", password=PW)
    assert q.ok(), q


# 13 ------------------------------------------------------------------------

def test_env_overrides_http_listen(dialtone_factory):
    env_port = free_port()
    d = dialtone_factory(env={"DIALTONE_HTTP__LISTEN": f"{LOOPBACK}:{env_port}"}, http_port=env_port)
    # started means /healthz answered 200 on the port given only by env
    assert d.healthz(env_port) == 200
    cfg_port = int(d.config["http"]["listen"].rsplit(":", 1)[1])
    assert d.healthz(cfg_port) is None, "the config file's http.listen is still served"


def test_env_overrides_domain_and_numbers(dialtone_factory):
    d = dialtone_factory(env={"DIALTONE_SIP__DOMAIN": "dialtone.test",
                              "DIALTONE_REGISTRAR__MIN_EXPIRES": "120"})
    d.add_user("mallory", PW)
    with SipClient(d.sip_port) as c:
        first, second = c.register("mallory", PW, "dialtone.test", expires=600)
        assert first is not None and first.code == 401, first
        realms = {parse_challenge(v).get("realm") for v in first.all("WWW-Authenticate")}
        assert realms == {"dialtone.test"}, realms
        assert second is not None and second.code == 200, second
        # a number from env is a number: min_expires=120
        _, brief = c.register("mallory", PW, "dialtone.test", expires=100)
        assert brief is not None and brief.code == 423, brief
        assert brief.get("Min-Expires") == "120", brief


# CLI -----------------------------------------------------------------------

def test_cli_users(dialtone):
    dialtone.add_user("neo", PW)
    dialtone.add_user("trinity", PW)
    assert {"neo", "trinity"} <= set(dialtone.users())
    dup = dialtone.cli("user", "add", "neo", "--password", "x", check=False)
    assert dup.returncode != 0, f"duplicate user add succeeded:\n{dup.stdout}{dup.stderr}"
    dialtone.cli("user", "remove", "neo")
    assert "neo" not in dialtone.users()
    assert "trinity" in dialtone.users()
    # a removed user can no longer register
    with SipClient(dialtone.sip_port) as c:
        first, second = c.register("neo", PW, dialtone.domain)
        assert (second or first).code in (401, 403), second or first


# IPv6 ----------------------------------------------------------------------

def test_ipv6_listen(dialtone_factory, sipp):
    v4, v6 = free_port(), free_port(host="::1")
    d = dialtone_factory(config={"sip": {"listen": [
        f"udp:{LOOPBACK}:{v4}", f"tcp:{LOOPBACK}:{v4}", f"udp:[::1]:{v6}", f"tcp:[::1]:{v6}"]}})
    for t in ("u1", "t1"):
        r = sipp("options.xml", v6, transport=t, target_host="::1")
        assert r.ok(), r
    d.add_user("oscar", PW)
    for transport in ("UDP", "TCP"):
        with SipClient(v6, host="::1", transport=transport) as c:
            first, second = c.register("oscar", PW, d.domain)  # AOR oscar@127.0.0.1, over IPv6
            assert first is not None and first.code == 401, first
            assert second is not None and second.code == 200, second
            assert registered_ok(d, "oscar", c.local_port), d.registrations()

"""Upstream trunk registration (`trunk add --register`), against a real
registrar: a second dialtone instance. The downstream switch must register
with digest and keep the binding; wrong credentials must never bind."""

import time

from conftest import Dialtone


def wait_binding(upstream: Dialtone, user: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = upstream.bindings_of(user)
        if found:
            return found
        time.sleep(0.3)
    return []


def restart(d: Dialtone) -> None:
    """Trunks are read at start (then every 30 s): restart to pick one up now."""
    assert d.stop() == 0
    d.close_files()
    d.start()


def test_trunk_registers_upstream_with_digest(dialtone_factory):
    upstream = dialtone_factory()
    upstream.add_user("pbx1", "trunkpw")
    downstream = dialtone_factory()
    downstream.add_trunk("carrier", f"127.0.0.1:{upstream.sip_port}",
                         username="pbx1", password="trunkpw", register=True)
    restart(downstream)
    bindings = wait_binding(upstream, "pbx1")
    assert bindings, "downstream never registered:\n" + downstream.log()
    # The contact is the downstream switch's own SIP address.
    assert f"127.0.0.1:{downstream.sip_port}" in bindings[0].contact, bindings
    assert "registered with trunk" in downstream.log()


def test_trunk_with_wrong_password_never_binds(dialtone_factory):
    upstream = dialtone_factory()
    upstream.add_user("pbx2", "right")
    downstream = dialtone_factory()
    downstream.add_trunk("carrier", f"127.0.0.1:{upstream.sip_port}",
                         username="pbx2", password="wrong", register=True)
    restart(downstream)
    deadline = time.monotonic() + 10
    while "trunk registration failed" not in downstream.log() and time.monotonic() < deadline:
        time.sleep(0.3)
    assert "trunk registration failed" in downstream.log(), downstream.log()
    assert upstream.bindings_of("pbx2") == []

"""The log of the binary: plain text when it goes to a file or a pipe (as
under pytest, systemd or docker), colours only at a terminal."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import time

from conftest import dialtone_bin
from siptool import SipClient

ESC = b"\x1b"


def test_log_to_a_file_has_no_ansi_escapes(dialtone_factory):
    # NO_COLOR empty counts as unset: only the not-a-terminal rule can keep
    # the colours out here.
    d = dialtone_factory(env={"NO_COLOR": ""})
    d.add_user("alice", "pw")
    with SipClient(d.sip_port) as c:
        first, _ = c.register("alice", "wrong", d.domain)  # an INFO line: authentication failed
        assert first is not None and first.code == 401, first
        assert c.options() is not None
    assert d.stop() == 0
    d.close_files()
    err = d.stderr_path.read_bytes()
    assert b"INFO" in err and b"authentication failed" in err, err[-2000:]
    for path in (d.stderr_path, d.stdout_path):
        data = path.read_bytes()
        assert ESC not in data, f"{path.name} has ANSI escapes: {data[data.index(ESC) - 80:][:200]!r}"


def test_log_at_a_terminal_is_coloured(dialtone_factory):
    """The other half: a person running it in a terminal still gets colours
    (so the test above is about the terminal check, not colours gone)."""
    d = dialtone_factory(env={"NO_COLOR": ""})
    assert d.stop() == 0
    d.close_files()
    master, slave = pty.openpty()
    env = {**d.environ(), "TERM": "xterm"}
    proc = subprocess.Popen([str(dialtone_bin()), "--config", str(d.config_path), "run"],
                            cwd=d.workdir, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=slave, start_new_session=True)
    os.close(slave)
    out = b""
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and b"listening" not in out.lower() and proc.poll() is None:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    out += os.read(master, 65536)
                except OSError:
                    break
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        os.close(master)
    assert b"INFO" in out, out[-2000:]
    assert ESC + b"[" in out, f"no colours at a terminal:\n{out[-2000:]!r}"

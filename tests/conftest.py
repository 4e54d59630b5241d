"""End-to-end test harness for the dialtone binary.

Fixtures and helpers:
  free_port()            a loopback port free for both UDP and TCP
  wait_bound()           wait until something (a SIPp in the background) bound a port
  dialtone               a running switch with its own config, ports and DB; its
                         CLI (users, trunks, numbers, routes, call records) and /metrics
  dialtone_factory       start(...) more switches, or with other settings/env
  sipp                   run a SIPp scenario from sipp-scenarios/ against a port, to
                         its end (sipp(...)) or in the background (sipp.start(...))
  baresip                start baresip as a headless phone (a WAV as microphone,
                         recordings of what it hears)
  kamailio               Kamailio as a reference registrar (bench/kamailio-registrar.cfg)
  kamailio_proxy         start(dest_port) Kamailio as a record-routing stateful proxy
                         (bench/kamailio-proxy.cfg), the reference for call scenarios

The binary is $DIALTONE_BIN (default target/release/dialtone, relative to the
repository). Nothing here talks to any address but loopback, and every wait is
bounded.
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = REPO / "sipp-scenarios"
LOOPBACK = "127.0.0.1"


def dialtone_bin() -> Path:
    p = Path(os.environ.get("DIALTONE_BIN", "target/release/dialtone"))
    return p if p.is_absolute() else REPO / p


# --------------------------------------------------------------------------
# ports

_handed_out: set[int] = set()


def _port_is_free(port: int, host: str = LOOPBACK) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        s = socket.socket(family, kind)
        try:
            s.bind((host, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def wait_until(pred, timeout: float, what: str, interval: float = 0.1):
    """pred()'s first truthy value; AssertionError naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def stop_process_group(proc: "subprocess.Popen | None") -> None:
    """SIGTERM to the process's group (Kamailio forks its workers), SIGKILL
    after 10 s."""
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def free_port(consecutive: int = 1, host: str = LOOPBACK) -> int:
    """A port P such that P..P+consecutive-1 are free on `host` for UDP and
    TCP, and were not handed out before in this session. Ports are picked in
    15000-19999: below the kernel's ephemeral range and dialtone's default
    RTP range (20000-29999)."""
    for _ in range(500):
        base = random.randint(15000, 19999 - consecutive)
        ports = range(base, base + consecutive)
        if any(p in _handed_out for p in ports):
            continue
        if all(_port_is_free(p, host) for p in ports):
            _handed_out.update(ports)
            return base
    raise RuntimeError("no free loopback port found")


@pytest.fixture
def port() -> Callable[..., int]:
    return free_port


def wait_bound(port: int, host: str = LOOPBACK, timeout: float = 5.0, udp: bool = True) -> bool:
    """True once something has bound `port` on `host` (UDP by default), e.g.
    a SIPp started in the background; False after `timeout`."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    kind = socket.SOCK_DGRAM if udp else socket.SOCK_STREAM
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = socket.socket(family, kind)
        try:
            s.bind((host, port))
        except OSError:
            return True
        finally:
            s.close()
        time.sleep(0.05)
    return False


# --------------------------------------------------------------------------
# TOML (just what the config needs: tables of str/int/bool/list[str])

def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


def to_toml(cfg: dict[str, dict[str, Any]]) -> str:
    out = []
    for section, table in cfg.items():
        out.append(f"[{section}]")
        for k, v in table.items():
            if v is None:
                continue
            out.append(f"{k} = {_toml_value(v)}")
        out.append("")
    return "\n".join(out)


def deep_merge(base: dict, over: dict) -> dict:
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


# --------------------------------------------------------------------------
# dialtone

@dataclass
class Binding:
    aor: str
    contact: str
    seconds: int | None
    line: str

    def user(self) -> str:
        """The user part of the AOR: "sip:alice@dom" / "alice@dom" / "alice" -> alice."""
        aor = re.sub(r"^sips?:", "", self.aor)
        return aor.split("@", 1)[0]


class Dialtone:
    """One dialtone process with its own config file, ports and database."""

    def __init__(self, workdir: Path, config: dict, env: dict[str, str], http_port: int,
                 sip_port: int, name: str = "dialtone"):
        self.workdir = workdir
        self.config = config
        self.env_overrides = env
        self.http_port = http_port  # where /healthz is expected (env may move it)
        self.sip_port = sip_port
        self.name = name
        self.config_path = workdir / "dialtone.toml"
        self.stderr_path = workdir / "dialtone.stderr.log"
        self.stdout_path = workdir / "dialtone.stdout.log"
        self.proc: subprocess.Popen | None = None
        self.returncode: int | None = None
        self.stop_problem: str | None = None
        self.config_path.write_text(to_toml(config))

    @property
    def domain(self) -> str:
        return self.env_overrides.get("DIALTONE_SIP__DOMAIN", self.config["sip"]["domain"])

    def environ(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("DIALTONE_") and k not in ("RUST_LOG",)}
        env["RUST_BACKTRACE"] = "1"
        env.update(self.env_overrides)
        return env

    # -- process --------------------------------------------------------
    def start(self, wait: bool = True, timeout: float = 20.0) -> "Dialtone":
        binary = dialtone_bin()
        if not binary.exists():
            pytest.fail(f"dialtone binary not found at {binary} (build it, or set DIALTONE_BIN)")
        self.stderr_file = open(self.stderr_path, "ab")
        self.stdout_file = open(self.stdout_path, "ab")
        self.proc = subprocess.Popen(
            [str(binary), "--config", str(self.config_path), "run"],
            cwd=self.workdir, env=self.environ(), stdin=subprocess.DEVNULL,
            stdout=self.stdout_file, stderr=self.stderr_file, start_new_session=True)
        if wait:
            self.wait_healthy(timeout)
        return self

    def healthz(self, port: int | None = None, timeout: float = 1.0) -> int | None:
        """HTTP status of GET /healthz, or None when nothing answers."""
        url = f"http://{LOOPBACK}:{port or self.http_port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except (urllib.error.URLError, OSError):
            return None

    def wait_healthy(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                self.returncode = self.proc.returncode
                pytest.fail(f"{self.name} exited with {self.proc.returncode} before /healthz "
                            f"answered 200.\n--- stderr ---\n{self.log()}")
            if self.healthz() == 200:
                return
            time.sleep(0.1)
        pytest.fail(f"{self.name}: /healthz on port {self.http_port} did not answer 200 within "
                    f"{timeout} s.\n--- stderr ---\n{self.log()}")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        """Signal the process and wait for it; kill it if it takes longer than
        `timeout` (then returns -9 and records the problem)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                self.stop_problem = (f"{self.name} did not exit within {timeout} s of "
                                     f"{signal.Signals(sig).name}: killed")
                self.returncode = -9
                return -9
        self.returncode = self.proc.returncode
        return self.returncode

    def close_files(self) -> None:
        for f in ("stderr_file", "stdout_file"):
            if hasattr(self, f):
                getattr(self, f).close()

    def log(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wire(self) -> list["WireMessage"]:
        """The SIP trace in this instance's log (on when its log filter has
        `dialtone_sip::wire=trace`): every message sent and received."""
        return [WireMessage(m.group(1), m.group(2), m.group(4), m.group(3))
                for m in _WIRE_ENTRY.finditer(self.log())]

    # -- CLI ------------------------------------------------------------
    def cli(self, *args: str, check: bool = True, timeout: float = 30.0,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """Run a CLI subcommand on this instance's config; `env` is added to
        its environment."""
        cmd = [str(dialtone_bin()), "--config", str(self.config_path), *args]
        environ = self.environ()
        environ.update(env or {})
        try:
            cp = subprocess.run(cmd, cwd=self.workdir, env=environ, stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise AssertionError(f"`{' '.join(cmd)}` took more than {timeout} s\n"
                                 f"stdout: {e.stdout}\nstderr: {e.stderr}") from None
        if check and cp.returncode != 0:
            raise AssertionError(f"`{' '.join(cmd)}` exited with {cp.returncode}\n"
                                 f"--- stdout ---\n{cp.stdout}\n--- stderr ---\n{cp.stderr}")
        return cp

    def add_user(self, name: str, password: str) -> None:
        self.cli("user", "add", name, "--password", password)

    def users(self) -> list[str]:
        out = self.cli("user", "list").stdout
        return [line.split()[0] for line in out.splitlines() if line.strip()]

    def written(self, timeout: float = 2.0) -> None:
        """Waits until the switch has written behind what it keeps in memory
        (bindings, call records): the CLI reads the database, which is up to
        a batch (a few tens of ms) behind the running switch. Returns at once
        when the switch is not running."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                m = self.metrics()
            except (AssertionError, OSError):
                return
            if not m.get("dialtone_location_pending") and not m.get("dialtone_call_records_pending"):
                return
            time.sleep(0.02)

    def registrations(self) -> list[Binding]:
        """`registrations list`: one binding a line, AOR, contact URI, seconds left."""
        self.written()
        out = self.cli("registrations", "list").stdout
        result = []
        for line in out.splitlines():
            parts = line.split()
            if len(parts) < 2:
                continue
            secs = None
            if len(parts) >= 3:
                m = re.match(r"^(\d+)s?$", parts[2])
                secs = int(m.group(1)) if m else None
            result.append(Binding(parts[0].strip("<>"), parts[1].strip("<>"), secs, line))
        return result

    def bindings_of(self, user: str) -> list[Binding]:
        return [b for b in self.registrations() if b.user() == user]

    # -- trunks, numbers, routes, calls (the B2BUA's CLI) -------------------
    def add_trunk(self, name: str, host: str | None = None, *, transport: str | None = None,
                  inbound_ips: list[str] | tuple = (), username: str | None = None,
                  password: str | None = None, register: bool = False) -> None:
        args = ["trunk", "add", name]
        if host is not None:
            args += ["--host", host]
        if transport is not None:
            args += ["--transport", transport]
        for ip in inbound_ips:
            args += ["--inbound-ip", ip]
        if username is not None:
            args += ["--username", username, "--password", password or ""]
        if register:
            args.append("--register")
        self.cli(*args)

    def add_number(self, number: str, to: str) -> None:
        """to: user:NAME | trunk:NAME | persona:NAME | queue:NAME"""
        self.cli("number", "add", number, "--to", to)

    def add_route(self, pattern: str, trunk: str, *, strip: int | None = None,
                  prepend: str | None = None, priority: int | None = None) -> None:
        args = ["route", "add", "--pattern", pattern, "--trunk", trunk]
        if strip is not None:
            args += ["--strip", str(strip)]
        if prepend is not None:
            args += ["--prepend", prepend]
        if priority is not None:
            args += ["--priority", str(priority)]
        self.cli(*args)

    def calls(self, limit: int = 100) -> list[dict]:
        """`calls list --json --limit N`: call records, newest first."""
        self.written()
        out = self.cli("calls", "list", "--json", "--limit", str(limit)).stdout
        try:
            data = json.loads(out)
        except json.JSONDecodeError as e:
            raise AssertionError(f"`calls list --json` printed no JSON array ({e}):\n{out}") from None
        assert isinstance(data, list), f"`calls list --json` printed {type(data).__name__}, not an array:\n{out}"
        return data

    def wait_calls(self, count: int, timeout: float = 10.0, ended: bool = True,
                   limit: int = 100) -> list[dict]:
        """Poll `calls list --json` until at least `count` records are there
        (and, with ended=True, all of those have ended_at set); returns the
        last listing, whatever it is, after `timeout`."""
        deadline = time.monotonic() + timeout
        recs: list[dict] = []
        while True:
            recs = self.calls(limit)
            done = [r for r in recs if not ended or r.get("ended_at") is not None]
            if len(done) >= count or time.monotonic() >= deadline:
                return recs
            time.sleep(0.25)

    def metrics_text(self, timeout: float = 2.0) -> str:
        url = f"http://{LOOPBACK}:{self.http_port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:
                return r.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            raise AssertionError(f"GET /metrics answered {e.code}") from None

    def metrics(self) -> dict[str, float]:
        """GET /metrics (Prometheus text) as {name or name{labels}: value}."""
        out = {}
        for line in self.metrics_text().splitlines():
            if not line or line.startswith("#"):
                continue
            m = re.match(r"^([A-Za-z_:][A-Za-z0-9_:]*(?:\{[^}]*\})?)\s+(\S+)", line)
            if m:
                try:
                    out[m.group(1)] = float(m.group(2))
                except ValueError:
                    pass
        return out

    def wait_metric(self, name: str, value: float, timeout: float = 10.0) -> dict[str, float]:
        """Poll /metrics until `name` equals `value`; the last metrics either way."""
        deadline = time.monotonic() + timeout
        while True:
            m = self.metrics()
            if m.get(name) == value or time.monotonic() >= deadline:
                return m
            time.sleep(0.25)


def base_config(workdir: Path, sip_port: int, http_port: int) -> dict:
    return {
        "sip": {
            "listen": [f"udp:{LOOPBACK}:{sip_port}", f"tcp:{LOOPBACK}:{sip_port}"],
            "domain": LOOPBACK,
            "t1_ms": 500,
            "t2_ms": 4000,
            "t4_ms": 5000,
        },
        "registrar": {
            "min_expires": 1,  # so that expiry tests are quick
            "max_expires": 3600,
            "default_expires": 3600,
            "purge_interval_secs": 1,
        },
        "auth": {
            "nonce_ttl_secs": 300,
            "max_failures": 10,
            "failure_window_secs": 60,
            "lockout": "403",
        },
        "media": {
            "rtp_ports": "20000-29999",
            "advertise_ip": LOOPBACK,
        },
        "database": {
            "url": f"sqlite://{workdir / 'dialtone.db'}",
        },
        "http": {
            "listen": f"{LOOPBACK}:{http_port}",
        },
        "log": {
            "format": "text",
            "level": "debug,sqlx=warn",
        },
    }


@dataclass
class WireMessage:
    """One message of dialtone's SIP trace."""
    at: str  # the log's UTC timestamp
    way: str  # "recv" or "send"
    peer: str  # "from=udp:…" or "to=udp:…"
    text: str

    def header(self, name: str) -> str:
        m = re.search(rf"^{re.escape(name)}:[ \t]*(.*?)\r?$", self.text, re.M | re.I)
        return m.group(1) if m else ""

    @property
    def first_line(self) -> str:
        return self.text.split("\n", 1)[0].strip()

    def __str__(self) -> str:
        return f"{self.at} {self.way} {self.peer}: {self.first_line} (CSeq {self.header('CSeq')})"


_WIRE_ENTRY = re.compile(
    r"^(\S+Z) TRACE dialtone_sip::wire: (recv|send)\n(.*?)\n ((?:from|to)=\S+)[^\n]*$",
    re.S | re.M)


_INSTANCES = pytest.StashKey[list]()


@pytest.fixture
def dialtone_factory(request, tmp_path):
    """start(config=None, env=None, wait=True) -> Dialtone.

    `config` is merged into the default test config (own ports, sqlite DB in
    the test's tmp dir, min_expires=1, purge every second). `env` is added to
    the process environment (DIALTONE_SECTION__KEY overrides). Every instance
    is stopped at teardown with SIGTERM and must exit 0 within 10 s."""
    instances: list[Dialtone] = []
    request.node.stash[_INSTANCES] = instances

    def start(config: dict | None = None, env: dict[str, str] | None = None, wait: bool = True,
              http_port: int | None = None) -> Dialtone:
        n = len(instances)
        workdir = tmp_path / (f"dialtone{n}" if n else "dialtone")
        workdir.mkdir()
        sip_port, cfg_http_port = free_port(), free_port()
        cfg = deep_merge(base_config(workdir, sip_port, cfg_http_port), config or {})
        # the ports really in force, should `config` have changed them
        m = re.search(r":(\d+)$", cfg["sip"]["listen"][0])
        sip_port = int(m.group(1)) if m else sip_port
        cfg_http_port = int(cfg["http"]["listen"].rsplit(":", 1)[1])
        d = Dialtone(workdir, cfg, dict(env or {}), http_port or cfg_http_port, sip_port,
                     name=workdir.name)
        instances.append(d)
        d.start(wait=wait)
        return d

    yield start

    problems = []
    for d in instances:
        if d.proc is None:
            continue
        if d.running():
            rc = d.stop(signal.SIGTERM, 10.0)
            if d.stop_problem:
                problems.append(d.stop_problem)
            elif rc != 0:
                problems.append(f"{d.name} exited with {rc} after SIGTERM (expected 0)")
        d.close_files()
    if problems:
        pytest.fail("; ".join(problems) + "\n--- stderr ---\n" +
                    "\n".join(_tail(d.log()) for d in instances), pytrace=False)


@pytest.fixture
def dialtone(dialtone_factory) -> Dialtone:
    """A running dialtone with the default test config."""
    return dialtone_factory()


def _tail(text: str, lines: int = 300) -> str:
    ls = text.splitlines()
    if len(ls) > lines:
        return f"[... {len(ls) - lines} lines cut ...]\n" + "\n".join(ls[-lines:])
    return text


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for d in item.stash.get(_INSTANCES, []):
            report.sections.append((f"{d.name} stderr ({d.stderr_path})", _tail(d.log())))


# --------------------------------------------------------------------------
# SIPp

@dataclass(repr=False)
class SippResult:
    cmd: list[str]
    rc: int
    successful: int
    failed: int
    errors: str
    messages: str
    stdout: str
    stats: dict[str, str] = field(default_factory=dict)

    def ok(self, calls: int = 1) -> bool:
        return self.rc == 0 and self.successful == calls and self.failed == 0

    def __str__(self) -> str:
        return (f"sipp exit {self.rc}, {self.successful} successful, {self.failed} failed\n"
                f"command: {' '.join(self.cmd)}\n"
                f"--- error log ---\n{_tail(self.errors, 80)}\n"
                f"--- messages ---\n{_tail(self.messages, 150)}\n"
                f"--- stdout (tail) ---\n{_tail(self.stdout, 40)}")

    __repr__ = __str__  # pytest shows a non-str assertion message by its repr


def _parse_sipp_stats(path: Path) -> dict[str, str]:
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f, delimiter=";"))
    except FileNotFoundError:
        return {}
    if len(rows) < 2:
        return {}
    header, last = rows[0], rows[-1]
    return dict(zip(header, last))


class SippRun:
    """A SIPp started in the background (Sipp.start): wait() for its result."""

    def __init__(self, cmd: list[str], proc: subprocess.Popen, out_path: Path, err: Path,
                 msg: Path, stf: Path, timeout: float, local_port: int, media_port: int | None):
        self.cmd = cmd
        self.proc = proc
        self.out_path = out_path
        self.err, self.msg, self.stf = err, msg, stf
        self.timeout = timeout
        self.local_port = local_port
        self.media_port = media_port
        self.result: SippResult | None = None

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float | None = None) -> SippResult:
        """Wait for SIPp to end: at most `timeout` (default: its own -timeout
        plus 20 s), then it is killed and the result says so."""
        if self.result is not None:
            return self.result
        note = ""
        try:
            rc = self.proc.wait(self.timeout + 20 if timeout is None else timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            rc = -1
            note = "(killed: sipp ran past its time)\n"
        read = lambda p: p.read_text(errors="replace") if p.exists() else ""
        stats = _parse_sipp_stats(self.stf)

        def num(k: str) -> int:
            try:
                return int(stats.get(k, "-1"))
            except ValueError:
                return -1

        self.result = SippResult(self.cmd, rc, num("SuccessfulCall(C)"), num("FailedCall(C)"),
                                 read(self.err), read(self.msg), note + read(self.out_path), stats)
        return self.result

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(5)


class Sipp:
    """Runs SIPp scenarios; each run gets its own local port, media port and
    log files. `sipp(...)` runs one to its end; `sipp.start(...)` runs one in
    the background (a callee, a registered phone) and returns a SippRun."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.runs = 0
        self.background: list[SippRun] = []

    def __call__(self, scenario: str, target_port: int | None, **kw) -> SippResult:
        return self.start(scenario, target_port, **kw).wait()

    def start(self, scenario: str, target_port: int | None, *, transport: str = "u1",
              service: str | None = None, password: str | None = None,
              auth_user: str | None = None, keys: dict[str, Any] | None = None,
              inf: Path | None = None, calls: int = 1, rate: float | None = None,
              limit: int | None = None, timeout: float = 10.0, target_host: str = LOOPBACK,
              trace_msg: bool = True, extra: list[str] | tuple = (),
              local_ip: str | None = None, local_port: int | None = None,
              media: bool = True, media_port: int | None = None, rtp_echo: bool = False,
              duration_ms: int | None = None, sets: dict[str, Any] | None = None,
              auth_uri: str | None = None, ooc: str | None = None) -> SippRun:
        """target_port None: no remote host (a callee that only answers).
        local_ip: what SIPp binds and writes in Via/Contact/SDP (default
        127.0.0.1, ::1 for an IPv6 target; the tests' trunk is 127.0.0.2).
        local_port: -p (default: a free port), e.g. the port that a
        register.xml run registered as its contact.
        media: -mi/-mp of its own (media_port, default 4 free ports: SIPp
        binds -mp and -mp+2); rtp_echo: -rtp_echo.
        duration_ms: -d; sets: -set NAME VALUE; auth_uri: -auth_uri;
        ooc: -oocsf (the out-of-call scenario)."""
        if shutil.which("sipp") is None:
            pytest.fail("sipp is not installed (scripts/setup.sh installs it)")
        self.runs += 1
        stem = f"sipp{self.runs:02d}-{Path(scenario).stem}"
        d = self.tmp / "sipp"
        d.mkdir(exist_ok=True)
        err, msg, stf = d / f"{stem}-errors.log", d / f"{stem}-messages.log", d / f"{stem}-stats.csv"
        out_path = d / f"{stem}-stdout.log"
        scen = Path(scenario) if os.path.isabs(scenario) else SCENARIOS / scenario
        if local_ip is None:
            local_ip = "::1" if ":" in target_host else LOOPBACK
        port = local_port or free_port(host=local_ip)
        cmd = ["sipp"]
        if target_port is not None:
            host = f"[{target_host}]" if ":" in target_host else target_host
            cmd.append(f"{host}:{target_port}")
        cmd += ["-sf", str(scen),
                "-t", transport, "-i", local_ip, "-p", str(port),
                "-m", str(calls), "-nostdin",
                "-timeout", f"{int(timeout)}s", "-timeout_error",
                "-trace_err", "-error_file", str(err),
                "-trace_stat", "-stf", str(stf)]
        mport = None
        if media:
            mport = media_port or free_port(consecutive=4, host=local_ip)
            cmd += ["-mi", local_ip, "-mp", str(mport)]
        if rtp_echo:
            cmd.append("-rtp_echo")
        if trace_msg:
            cmd += ["-trace_msg", "-message_file", str(msg)]
        if service is not None:
            cmd += ["-s", service]
        if auth_user is not None:
            cmd += ["-au", auth_user]
        if password is not None:
            cmd += ["-ap", password]
        if auth_uri is not None:
            cmd += ["-auth_uri", auth_uri]
        if inf is not None:
            cmd += ["-inf", str(inf)]
        if rate is not None:
            cmd += ["-r", str(rate)]
        if limit is not None:
            cmd += ["-l", str(limit)]
        if duration_ms is not None:
            cmd += ["-d", str(int(duration_ms))]
        if ooc is not None:
            cmd += ["-oocsf", str(ooc if os.path.isabs(ooc) else SCENARIOS / ooc)]
        for k, v in (keys or {}).items():
            cmd += ["-key", k, str(v)]
        for k, v in (sets or {}).items():
            cmd += ["-set", k, str(v)]
        cmd += list(extra)
        with open(out_path, "wb") as out:
            proc = subprocess.Popen(cmd, cwd=d, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        run = SippRun(cmd, proc, out_path, err, msg, stf, timeout, port, mport)
        self.background.append(run)
        return run

    def stop_all(self) -> None:
        for r in self.background:
            r.kill()


@pytest.fixture
def sipp(tmp_path):
    s = Sipp(tmp_path)
    yield s
    s.stop_all()


def received_messages(messages_log: str) -> list[str]:
    """The messages SIPp received, from its -trace_msg log."""
    out = []
    for block in re.split(r"\n-{10,} [^\n]*\n", "\n" + messages_log):
        m = re.match(r"\s*(UDP|TCP) message received \[\d+\] bytes :\n\n(.*)", block, re.S)
        if m:
            out.append(m.group(2).strip("\n"))
    return out


def header_values(message: str, name: str) -> list[str]:
    vals = []
    for line in message.split("\n\n", 1)[0].splitlines()[1:]:
        if ":" in line:
            n, v = line.split(":", 1)
            if n.strip().lower() == name.lower():
                vals.append(v.strip())
    return vals


# --------------------------------------------------------------------------
# baresip

BARESIP_MODULE_PATH = "/usr/lib/baresip/modules"


class Baresip:
    """baresip 1.0 as a headless phone: no sound card (aufile/aubridge), no
    stdio console (ctrl_tcp on loopback instead), bound to 127.0.0.1 only.

    form="port": account <sip:user@127.0.0.1:PORT>  (AOR carries the port)
    form="outbound": account <sip:user@DOMAIN> with outbound="sip:127.0.0.1:PORT"
    """

    REG_OK = re.compile(r"\{\d+/(?:UDP|TCP)/v[46]\} 200 OK")
    # "reg: sip:...: Register: <errno text>" or "{0/UDP/v4} 403 Forbidden"
    REG_FAIL = re.compile(r"reg: .*: Register: |\{\d+/(?:UDP|TCP)/v[46]\} [3-6]\d\d ")

    def __init__(self, tmp: Path, user: str, password: str, server_port: int, *,
                 domain: str = LOOPBACK, transport: str = "udp", regint: int = 600,
                 form: str = "port", run_seconds: int = 60, play: Path | None = None,
                 record: bool = False, answermode: str | None = None,
                 codecs: tuple[str, ...] = ("g711",), mediaenc: str | None = None):
        """play: a WAV file (8 kHz mono) to send as the microphone (aufile)
        instead of the default sine. record: the sndfile module writes what
        is sent and heard into self.record_dir (dump-*-enc.wav / -dec.wav).
        answermode: "auto" answers incoming calls at once. codecs: the codec
        modules loaded, e.g. ("opus",) for a phone that speaks only Opus.
        mediaenc: the account's media encryption with the srtp module loaded
        ("srtp-mand": RTP/SAVP with SDES keys; "srtp": best effort)."""
        self.dir = tmp / f"baresip-{user}-{free_port()}"
        self.cfgdir = self.dir / "cfg"
        self.cfgdir.mkdir(parents=True)
        self.user = user
        self.play = play
        self.codecs = codecs
        self.mediaenc = mediaenc
        self.record_dir = self.dir / "recordings" if record else None
        if self.record_dir:
            self.record_dir.mkdir()
        self.sip_port = free_port(consecutive=2)  # baresip may bind PORT+1 too
        self.ctrl_port = free_port()
        self.log_path = self.dir / "baresip.log"
        self.run_seconds = run_seconds
        (self.cfgdir / "config").write_text(self.config_text())
        if form == "port":
            aor = f"<sip:{user}@{LOOPBACK}:{server_port};transport={transport}>"
            extra = ""
        else:
            aor = f"<sip:{user}@{domain}>"
            extra = f';outbound="sip:{LOOPBACK}:{server_port};transport={transport}"'
        (self.cfgdir / "accounts").write_text(
            f"{aor};auth_pass={password};regint={regint}{extra}"
            + (f";answermode={answermode}" if answermode else "")
            + (f";mediaenc={mediaenc}" if mediaenc else "") + "\n")
        self.proc: subprocess.Popen | None = None

    def config_text(self) -> str:
        mods = BARESIP_MODULE_PATH
        wanted = [f"{c}.so" for c in self.codecs] + ["aufile.so", "aubridge.so", "ausine.so"]
        if self.record_dir:
            wanted.append("sndfile.so")
        if self.mediaenc:
            wanted.append("srtp.so")
        apps = ["account.so", "menu.so", "ctrl_tcp.so"]
        # no sound card: play into aubridge (a sink nobody reads); the
        # microphone is a WAV file (aufile) or a sine generator (ausine: it
        # only runs at 48 kHz, so it fails at G.711's 8 kHz and sends nothing)
        source = f"aufile,{self.play}" if self.play else "ausine,440"
        lines = [
            "poll_method\t\tepoll",
            f"sip_listen\t\t{LOOPBACK}:{self.sip_port}",
            f"net_interface\t\t{LOOPBACK}",  # else it picks eth0's address
            "audio_player\t\taubridge,nil",
            "audio_alert\t\taubridge,nil",
            f"audio_source\t\t{source}",
            "rtp_ports\t\t30000-30999",
            f"module_path\t\t{mods}",
        ]
        if self.record_dir:
            lines.append(f"snd_path\t\t{self.record_dir}")
        if "opus" in self.codecs:
            # mono, so a mono WAV can be its microphone (48 kHz for Opus)
            lines += ["opus_stereo\t\tno", "opus_sprop_stereo\tno"]
        lines += [f"module\t\t\t{m}" for m in wanted if os.path.exists(f"{mods}/{m}")]
        lines += [f"module_app\t\t{m}" for m in apps if os.path.exists(f"{mods}/{m}")]
        lines.append(f"ctrl_tcp_listen\t\t{LOOPBACK}:{self.ctrl_port}")
        return "\n".join(lines) + "\n"

    def start(self) -> "Baresip":
        if shutil.which("baresip") is None:
            pytest.fail("baresip is not installed (scripts/setup.sh installs it)")
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            ["baresip", "-f", str(self.cfgdir), "-t", str(self.run_seconds)],
            cwd=self.dir, stdin=subprocess.DEVNULL, stdout=self.logf, stderr=subprocess.STDOUT,
            start_new_session=True)
        return self

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_registered(self, timeout: float = 10.0) -> bool:
        """True once baresip logged a 200 OK to its REGISTER; False on timeout
        or as soon as it logged a failed registration."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.log()
            if self.REG_OK.search(log):
                return True
            if self.REG_FAIL.search(log):
                return False
            if self.proc is not None and self.proc.poll() is not None:
                return bool(self.REG_OK.search(self.log()))
            time.sleep(0.1)
        return False

    def command(self, command: str, params: str = "", timeout: float = 3.0) -> dict | None:
        """Send a command over ctrl_tcp (netstring-framed JSON); the response."""
        body = json.dumps({"command": command, "params": params, "token": "t"}).encode()
        try:
            with socket.create_connection((LOOPBACK, self.ctrl_port), timeout=timeout) as s:
                s.sendall(str(len(body)).encode() + b":" + body + b",")
                buf, deadline = b"", time.monotonic() + timeout
                while time.monotonic() < deadline:
                    s.settimeout(max(deadline - time.monotonic(), 0.01))
                    try:
                        chunk = s.recv(65536)
                    except socket.timeout:
                        break
                    if not chunk:
                        break
                    buf += chunk
                    while True:
                        m = re.match(rb"(\d+):", buf)
                        if not m or len(buf) < m.end() + int(m.group(1)) + 1:
                            break
                        n = int(m.group(1))
                        msg, buf = buf[m.end():m.end() + n], buf[m.end() + n + 1:]
                        obj = json.loads(msg)
                        if obj.get("response"):
                            return obj
        except OSError:
            return None
        return None

    def dial(self, uri: str) -> dict | None:
        return self.command("dial", uri)

    def hangup(self) -> dict | None:
        return self.command("hangup")

    def wait_log(self, pattern: str, timeout: float = 10.0) -> re.Match | None:
        """The first match of `pattern` in the log, waiting up to `timeout`."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.log())
            if m or time.monotonic() >= deadline or (self.proc and self.proc.poll() is not None):
                return m
            time.sleep(0.1)

    def recordings(self, kind: str = "dec") -> list[Path]:
        """The sndfile recordings: "dec" = what this phone heard, "enc" = sent."""
        if not self.record_dir:
            return []
        return sorted(self.record_dir.glob(f"dump-*-{kind}.wav"))

    def heard_tone(self, freq: float, tolerance: float, *, hi: float | None = None,
                   min_seconds: float = 2.0) -> tuple[list[float], int]:
        """Asserts that what this phone heard (its last "dec" recording) lasts
        over `min_seconds` and has `freq` (± `tolerance`) as its strongest
        frequency below `hi` (default: the recording's Nyquist); returns
        (samples, rate)."""
        from siptool import dominant_frequency, wav_samples
        recs = self.recordings("dec")
        assert recs, f"{self.user} recorded nothing ({self.record_dir})"
        samples, rate = wav_samples(recs[-1])
        assert len(samples) > min_seconds * rate, f"{self.user} heard only {len(samples) / rate:.2f} s"
        f, share = dominant_frequency(samples, rate, hi=hi)
        assert abs(f - freq) <= tolerance, \
            f"{self.user} heard {f} Hz ({share:.0%} of the energy), not {freq} Hz"
        return samples, rate

    def stop(self, timeout: float = 5.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.command("quit", timeout=1.0)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(3)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(3)
        self.logf.close()


def baresip_tone_call(baresip, tmp_path: Path, password: str, port: int, *,
                      alice: dict | None = None, bob: dict | None = None) -> tuple["Baresip", "Baresip"]:
    """alice (a 1000 Hz microphone) calls bob (440 Hz, answering at once)
    through dialtone at `port` for 4 s, both recording what they hear; then
    each must have heard the other's tone. `alice`/`bob`: more Baresip
    options for each. Returns (alice, bob)."""
    from siptool import write_tone_wav
    tone_a, tone_b = tmp_path / "tone1000.wav", tmp_path / "tone440.wav"
    write_tone_wav(tone_a, 1000, seconds=30)
    write_tone_wav(tone_b, 440, seconds=30)
    b = baresip("bob", password, port, play=tone_b, record=True, answermode="auto", **(bob or {}))
    a = baresip("alice", password, port, play=tone_a, record=True, **(alice or {}))
    assert b.wait_registered() and a.wait_registered(), a.log() + b.log()
    a.dial(f"sip:bob@{LOOPBACK}:{port}")
    assert b.wait_log(r"Call established|answering call", 10), f"bob never answered:\n{b.log()}"
    assert a.wait_log(r"Call established", 10), f"alice's call was not established:\n{a.log()}"
    time.sleep(4)
    a.hangup()
    assert b.wait_log(r"terminated|session closed", 10), b.log()
    time.sleep(0.5)
    b.heard_tone(1000, 50, min_seconds=1)  # alice's
    a.heard_tone(440, 22, min_seconds=0)  # bob's
    return a, b


@pytest.fixture
def baresip(tmp_path):
    """start(user, password, server_port, **kw) -> a started Baresip."""
    phones: list[Baresip] = []

    def start(user: str, password: str, server_port: int, **kw) -> Baresip:
        b = Baresip(tmp_path, user, password, server_port, **kw)
        phones.append(b)
        return b.start()

    yield start
    for b in phones:
        b.stop()


# --------------------------------------------------------------------------
# Kamailio (the reference registrar the scenarios are validated against)

class Kamailio:
    """Kamailio with one of the bench/ configs: kamailio-registrar.cfg (the
    default) or kamailio-proxy.cfg (a record-routing stateful proxy to
    `defines["DEST"]`). `defines` are more -A NAME[=VALUE] (None: no value)."""

    def __init__(self, tmp: Path, password: str = "secret", cfg: str = "kamailio-registrar.cfg",
                 defines: dict[str, str | None] | None = None):
        self.dir = tmp / ("kamailio-" + Path(cfg).stem + f"-{free_port()}")
        self.dir.mkdir()
        self.port = free_port()
        self.password = password
        self.cfg = cfg
        self.defines = defines or {}
        self.log_path = self.dir / "kamailio.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> "Kamailio":
        if shutil.which("kamailio") is None:
            pytest.fail("kamailio is not installed (scripts/setup.sh installs it)")
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            ["kamailio", "-f", str(REPO / "bench" / self.cfg), "-DD", "-E",
             "-m", "64", "-M", "8", "-n", "1",
             "-A", f"KAM_PORT={self.port}", "-A", f'REG_PASSWORD="{self.password}"',
             *[a for k, v in self.defines.items() for a in ("-A", k if v is None else f"{k}={v}")],
             "-P", str(self.dir / "kamailio.pid"), "-Y", str(self.dir)],
            cwd=self.dir, stdin=subprocess.DEVNULL, stdout=self.logf, stderr=subprocess.STDOUT,
            start_new_session=True)
        from siptool import SipClient
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"kamailio exited with {self.proc.returncode}:\n{self.log()}")
            with SipClient(self.port) as c:
                r = c.options(timeout=0.3)
            if r is not None:
                return self
        pytest.fail(f"kamailio did not answer OPTIONS within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        stop_process_group(self.proc)
        if hasattr(self, "logf"):
            self.logf.close()


@pytest.fixture(scope="module")
def kamailio(tmp_path_factory):
    k = Kamailio(tmp_path_factory.mktemp("kam")).start()
    yield k
    k.stop()


@pytest.fixture
def kamailio_proxy(tmp_path):
    """start(dest_port, auth=False, dest_host="127.0.0.1") -> Kamailio as a
    record-routing stateful proxy (bench/kamailio-proxy.cfg) relaying
    initial requests to dest_host:dest_port; auth=True challenges INVITEs
    (407, every user's password "secret")."""
    started: list[Kamailio] = []

    def start(dest_port: int, auth: bool = False, dest_host: str = LOOPBACK) -> Kamailio:
        defines: dict[str, str | None] = {"DEST": f'"sip:{dest_host}:{dest_port}"'}
        if auth:
            defines["WITH_AUTH"] = None
        k = Kamailio(tmp_path, cfg="kamailio-proxy.cfg", defines=defines)
        started.append(k)
        return k.start()

    yield start
    for k in started:
        k.stop()

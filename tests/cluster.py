"""A dialtone cluster on loopback for the end-to-end tests: the topology of
docker-compose.yml without Docker.

  Kamailio     127.0.0.4:PORT  config/kamailio/kamailio.cfg (the very file the
                               compose topology runs), its dispatcher list
                               rendered for the two nodes below
  node-1       127.0.0.2       dialtone, SIP UDP+TCP and HTTP on that address
  node-2       127.0.0.3       dialtone, the same on its own address
  PostgreSQL   the machine's (DIALTONE_TEST_POSTGRES_URL, default
               postgres://postgres@127.0.0.1:5432/test): a fresh database
               dialtone_cluster_<random> per Cluster, dropped at the end

Both nodes share the database (users, trunks, numbers, registrations, call
records, scheduled calls), the cluster secret, sip.domain = Kamailio's
address (the address phones register to) and sip.front_proxies = [it]. A
node is a conftest.Dialtone whose HTTP listener is on its own address.

PostgreSQL unreachable (or no psql to create the database): the test is
skipped with the reason printed, except with CI=true, where it fails.
Every wait is bounded; Kamailio is stopped as a process group."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from conftest import (REPO, Dialtone, base_config, deep_merge, free_port, stop_process_group,
                      wait_until)

ADMIN_URL = os.environ.get("DIALTONE_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
KAMAILIO_CFG = REPO / "config" / "kamailio" / "kamailio.cfg"
KAM_IP = "127.0.0.4"
NODE_IPS = ("127.0.0.2", "127.0.0.3")
NODE_IDS = ("node-1", "node-2")
SECRET = "cluster-test-secret-0123456789abcdef"
PROBE_SECS = 2
FR_TIMER_MS = 1500
# how long a call may ring through Kamailio: a node killed after its 100
# Trying leaves the caller waiting this long for a 408
FR_INV_TIMER_MS = 10000
HEARTBEAT_MS = 500
DEAD_AFTER_MS = 3000


def unavailable(why: str) -> None:
    """Fails under CI=true, else skips; the reason is printed either way."""
    print(f"cluster tests: {why}")
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and the cluster cannot run: {why}", pytrace=False)
    pytest.skip(f"SKIPPED: the cluster cannot run here: {why}")


# --------------------------------------------------------------------------
# PostgreSQL: one fresh database per cluster

class SharedDatabase:
    """A database of its own on the machine's PostgreSQL, created with psql
    through ADMIN_URL and dropped (WITH (FORCE)) by drop()."""

    def __init__(self, admin_url: str = ADMIN_URL):
        self.admin_url = admin_url
        self.name = f"dialtone_cluster_{secrets.token_hex(4)}"
        parts = urllib.parse.urlsplit(admin_url)
        self.url = urllib.parse.urlunsplit(parts._replace(path="/" + self.name))
        self.created = False

    def psql(self, sql: str, url: str | None = None, timeout: float = 20) -> subprocess.CompletedProcess:
        env = dict(os.environ, PGCONNECT_TIMEOUT="3")
        return subprocess.run(["psql", url or self.admin_url, "-v", "ON_ERROR_STOP=1", "-qAtX",
                               "-c", sql], capture_output=True, text=True, timeout=timeout,
                              env=env, stdin=subprocess.DEVNULL)

    def create(self) -> "SharedDatabase":
        if shutil.which("psql") is None:
            unavailable("psql is not installed (Debian package postgresql-client)")
        try:
            probe = self.psql("SELECT 1", timeout=10)
        except subprocess.TimeoutExpired:
            unavailable(f"PostgreSQL at {self.admin_url} did not answer within 10 s")
        if probe.returncode != 0:
            unavailable(f"PostgreSQL at {self.admin_url} is unreachable: {probe.stderr.strip()}")
        r = self.psql(f'CREATE DATABASE "{self.name}"')
        assert r.returncode == 0, f"CREATE DATABASE {self.name} failed: {r.stderr}"
        self.created = True
        return self

    def query(self, sql: str) -> list[list[str]]:
        """Rows of a query on the cluster's database ('|'-separated by psql)."""
        r = self.psql(sql, url=self.url)
        assert r.returncode == 0, f"{sql}: {r.stderr}"
        return [line.split("|") for line in r.stdout.splitlines() if line]

    def drop(self) -> None:
        if not self.created:
            return
        r = self.psql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        if r.returncode != 0:
            print(f"could not drop database {self.name}: {r.stderr}")
        self.created = False


# --------------------------------------------------------------------------
# a node

class Node(Dialtone):
    """A dialtone whose SIP and HTTP listen on `host` (not 127.0.0.1)."""

    def __init__(self, *args, host: str, node_id: str, **kw):
        super().__init__(*args, **kw)
        self.host = host
        self.node_id = node_id

    @property
    def http_base(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    def healthz(self, port: int | None = None, timeout: float = 1.0) -> int | None:
        try:
            with urllib.request.urlopen(f"http://{self.host}:{port or self.http_port}/healthz",
                                        timeout=timeout) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except (urllib.error.URLError, OSError):
            return None

    def metrics_text(self, timeout: float = 2.0) -> str:
        try:
            with urllib.request.urlopen(f"{self.http_base}/metrics", timeout=timeout) as r:
                return r.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            raise AssertionError(f"{self.name}: GET /metrics answered {e.code}") from None

    def metric(self, name: str, default: float = 0.0) -> float:
        """One sample by its full name (labels included), or `default`."""
        return self.metrics().get(name, default)

    def kill9(self) -> None:
        """SIGKILL, as a crash: no goodbye to the database or the peers."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.returncode = self.proc.returncode
        self.close_files()

    def restart(self, timeout: float = 30.0) -> "Node":
        self.close_files()
        self.proc = None
        self.returncode = None
        return self.start(timeout=timeout)

    def nodes(self) -> list[dict]:
        """`nodes list --json`: id, sip, http, started_at, heartbeat_at, alive, live_calls."""
        out = self.cli("nodes", "list", "--json").stdout
        try:
            data = json.loads(out)
        except json.JSONDecodeError as e:
            raise AssertionError(f"`nodes list --json` printed no JSON ({e}):\n{out}") from None
        assert isinstance(data, list), out
        return data


# --------------------------------------------------------------------------
# Kamailio with config/kamailio/kamailio.cfg

class Front:
    """Kamailio in front of the nodes, on KAM_IP:port."""

    # shared memory (MB): enough for the tests; the benchmark raises it
    SHM_MB = 64

    def __init__(self, workdir: Path, node_uris: list[str], port: int | None = None):
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.host = KAM_IP
        self.port = port or free_port(host=KAM_IP)
        self.ds_list = self.dir / "dispatcher.list"
        self.ds_list.write_text("".join(f"1 {u} 0 0\n" for u in node_uris))
        self.ctl = f"unix:{self.dir / 'kamailio_ctl'}"
        self.name = "kamailio"
        self.stderr_path = self.dir / "kamailio.log"
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        return ["kamailio", "-f", str(KAMAILIO_CFG), "-DD", "-E", "-m", str(self.SHM_MB), "-M", "8",
                "-n", "2",
                "-A", f"LISTEN_IP={self.host}", "-A", f"LISTEN_PORT={self.port}",
                "-A", f'DS_LIST="{self.ds_list}"', "-A", f"PROBE_SECS={PROBE_SECS}",
                "-A", f"FR_TIMER_MS={FR_TIMER_MS}",
                "-A", f"FR_INV_TIMER_MS={FR_INV_TIMER_MS}", "-A", f'CTL_SOCKET="{self.ctl}"',
                "-P", str(self.dir / "kamailio.pid"), "-Y", str(self.dir)]

    def start(self, timeout: float = 10.0) -> "Front":
        if shutil.which("kamailio") is None:
            pytest.fail("kamailio is not installed (scripts/setup.sh installs it)")
        self.logf = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(self.command(), cwd=self.dir, stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        from siptool import SipClient
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"kamailio exited with {self.proc.returncode}:\n{self.log()}")
            with SipClient(self.port, host=self.host) as c:
                if c.options(timeout=0.3) is not None:
                    return self
        pytest.fail(f"kamailio did not answer OPTIONS within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def dispatcher(self) -> dict[str, str]:
        """`kamcmd dispatcher.list`: {destination URI: flags} (AP active and
        probed, IP inactive and probed, TP trying, ...)."""
        r = subprocess.run(["kamcmd", "-s", self.ctl, "dispatcher.list"], capture_output=True,
                           text=True, timeout=5, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, f"kamcmd dispatcher.list: {r.stdout}{r.stderr}"
        out, uri = {}, None
        for line in r.stdout.splitlines():
            m = re.search(r"URI:\s*(\S+)", line)
            if m:
                uri = m.group(1)
            m = re.search(r"FLAGS:\s*(\S+)", line)
            if m and uri:
                out[uri] = m.group(1)
        return out

    def wait_state(self, uri: str, active: bool, timeout: float) -> float:
        """Seconds until the dispatcher has `uri` active (flags starting with
        A) or not; fails after `timeout` with the listing."""
        t0 = time.monotonic()
        state: dict[str, str] = {}
        while time.monotonic() - t0 < timeout:
            state = self.dispatcher()
            if state.get(uri, "").startswith("A") == active:
                return time.monotonic() - t0
            time.sleep(0.1)
        raise AssertionError(f"kamailio: {uri} not {'active' if active else 'inactive'} within "
                             f"{timeout} s: {state}\n{self.log()[-3000:]}")

    def stop(self) -> None:
        stop_process_group(self.proc)
        if hasattr(self, "logf"):
            self.logf.close()


# --------------------------------------------------------------------------
# the whole cluster

class Cluster:
    """Kamailio + node-1 + node-2 (or only node-1: count=1, for the
    benchmark's baseline) on a fresh shared database. `extra` is merged
    into every node's config."""

    def __init__(self, workdir: Path, extra: dict | None = None, count: int = 2):
        self.dir = workdir
        self.extra = extra or {}
        self.count = count
        self.db = SharedDatabase()
        self.nodes: list[Node] = []
        self.front: Front | None = None
        self.problems: list[str] = []

    # -- set-up ----------------------------------------------------------
    def node_config(self, i: int, workdir: Path, sip_port: int, http_port: int) -> dict:
        ip = NODE_IPS[i]
        over = {
            "sip": {"listen": [f"udp:{ip}:{sip_port}", f"tcp:{ip}:{sip_port}"],
                    "domain": KAM_IP, "front_proxies": [KAM_IP]},
            "http": {"listen": f"{ip}:{http_port}"},
            "database": {"url": self.db.url},
            "media": {"advertise_ip": ip, "bind_ip": ip},
            "mcp": {"allowed_hosts": ["localhost", "127.0.0.1", ip]},
            "cluster": {"enabled": True, "node": NODE_IDS[i], "secret": SECRET,
                        "advertise_http": f"http://{ip}:{http_port}",
                        "heartbeat_ms": HEARTBEAT_MS, "dead_after_ms": DEAD_AFTER_MS},
            "log": {"level": "debug,sqlx=warn,hyper=info,h2=info"},
        }
        return deep_merge(deep_merge(base_config(workdir, sip_port, http_port), over), self.extra)

    def start(self) -> "Cluster":
        self.db.create()
        for i, ip in enumerate(NODE_IPS[:self.count]):
            workdir = self.dir / NODE_IDS[i]
            workdir.mkdir(parents=True)
            sip_port, http_port = free_port(host=ip), free_port(host=ip)
            cfg = self.node_config(i, workdir, sip_port, http_port)
            node = Node(workdir, cfg, {}, http_port, sip_port, name=NODE_IDS[i], host=ip,
                        node_id=NODE_IDS[i])
            self.nodes.append(node)
        # both at once on the fresh database, as docker compose starts them
        # (the schema migrations take a lock)
        for node in self.nodes:
            node.start(wait=False)
        for node in self.nodes:
            node.wait_healthy(timeout=30)
        self.front = Front(self.dir / "kamailio", [self.uri(n) for n in self.nodes]).start()
        for n in self.nodes:
            self.front.wait_state(self.uri(n), True, timeout=3 * PROBE_SECS + 2)
        return self

    @staticmethod
    def uri(node: Node) -> str:
        return f"sip:{node.host}:{node.sip_port}"

    @property
    def port(self) -> int:
        assert self.front is not None
        return self.front.port

    def node(self, node_id: str) -> Node:
        return next(n for n in self.nodes if n.node_id == node_id)

    def other(self, node: Node) -> Node:
        return next(n for n in self.nodes if n is not node)

    @property
    def any(self) -> Node:
        """A running node, for the CLI (it only needs the shared database)."""
        return next(n for n in self.nodes if n.running())

    # -- what the tests read ---------------------------------------------
    def calls(self, limit: int = 500) -> list[dict]:
        return self.any.calls(limit)

    def by_node(self, recs: list[dict]) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in recs:
            out[str(r.get("node"))] = out.get(str(r.get("node")), 0) + 1
        return out

    def logs(self) -> list:
        """What the report shows on a failure: every node's and Kamailio's log."""
        return [*self.nodes, *([self.front] if self.front else [])]

    # -- teardown --------------------------------------------------------
    def stop(self) -> None:
        for n in self.nodes:
            if n.proc is None:
                continue
            if n.running():
                rc = n.stop(signal.SIGTERM, 10.0)
                if n.stop_problem:
                    self.problems.append(n.stop_problem)
                elif rc != 0:
                    self.problems.append(f"{n.name} exited with {rc} after SIGTERM (expected 0)")
            n.close_files()
        if self.front:
            self.front.stop()
        self.db.drop()

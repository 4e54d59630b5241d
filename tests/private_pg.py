"""A PostgreSQL server of the test's own (initdb into the test's tmp dir, on
a free loopback port), so a test may stop and restart it without touching
the machine's PostgreSQL that other tests share.

As root the server runs as the `postgres` user (PostgreSQL refuses root).
Without the server binaries, or as neither root nor postgres, the test is
skipped with a notice — except under CI=true, where it fails."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import free_port


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def _unavailable(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and a private PostgreSQL cannot run: {why}")
    pytest.skip(f"SKIPPED: a private PostgreSQL cannot run here: {why}")


class PrivatePostgres:
    def __init__(self):
        self.bin = _bin_dir()
        if self.bin is None:
            _unavailable("no /usr/lib/postgresql/*/bin/pg_ctl (Debian package postgresql)")
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            if shutil.which("runuser") is None:
                _unavailable("running as root without runuser")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        # Outside pytest's tmp tree: its directories are root's, mode 0700,
        # which the postgres user cannot enter.
        self.dir = Path(tempfile.mkdtemp(prefix="dialtone-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        if self.as_user:
            shutil.chown(self.dir, "postgres", "postgres")
        self.port = free_port()
        self._run([str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                   "--no-sync", "-E", "UTF8"], timeout=60)

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, cmd: list[str], timeout: float = 30) -> None:
        r = subprocess.run(self.as_user + cmd, capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")

    def start(self) -> None:
        self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w",
                   "-t", "30", "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c full_page_writes=off", "start"], timeout=40)

    def stop(self) -> None:
        self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "30",
                   "stop"], timeout=40)

    def running(self) -> bool:
        r = subprocess.run(self.as_user + [str(self.bin / "pg_ctl"), "-D", str(self.data), "status"],
                           capture_output=True, timeout=10)
        return r.returncode == 0

    def close(self) -> None:
        if self.data.exists() and self.running():
            try:
                self.stop()
            except AssertionError:
                subprocess.run(self.as_user + [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m",
                                               "immediate", "stop"], capture_output=True, timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_pg():
    pg = PrivatePostgres()
    pg.start()
    yield pg
    pg.close()

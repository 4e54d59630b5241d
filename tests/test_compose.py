"""docker-compose.yml (issue 14): the compose client validates it, and the
environment it gives each dialtone node is a configuration dialtone accepts
(every DIALTONE_ variable names a real setting with a valid value). No
Docker daemon is needed: nothing is built or started. Without a compose
client (`docker compose` or Debian's `docker-compose`) the test is skipped
with a notice; tests/test_cluster.py runs the same topology without Docker."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import dialtone_bin

REPO = Path(__file__).resolve().parent.parent
NODES = ("dialtone-1", "dialtone-2")


def compose_cmd() -> list[str] | None:
    if shutil.which("docker"):
        r = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=20)
        if r.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


@pytest.fixture(scope="module")
def config() -> dict:
    cmd = compose_cmd()
    if cmd is None:
        pytest.skip("SKIPPED: no compose client (docker compose / docker-compose) to validate "
                    "docker-compose.yml with")
    env = dict(os.environ, DIALTONE_CLUSTER_SECRET="a-test-secret-0123456789")
    fmt = ["--format", "json"] if cmd[0] == "docker" else []
    r = subprocess.run(cmd + ["-f", str(REPO / "docker-compose.yml"), "config"] + fmt,
                       capture_output=True, text=True, timeout=60, env=env, cwd=REPO)
    assert r.returncode == 0, f"compose config failed:\n{r.stdout}\n{r.stderr}"
    if fmt:
        return json.loads(r.stdout)
    return parse_v1_yaml(r.stdout)


def parse_v1_yaml(text: str) -> dict:
    """The two things read from `docker-compose config` (v1 prints YAML, and
    the test venv has no YAML parser): the services, and each one's
    environment mapping."""
    services: dict[str, dict] = {}
    section = service = None
    in_env = False
    for line in text.splitlines():
        if re.match(r"^\S", line):
            section = line.rstrip(":")
            continue
        if section != "services":
            continue
        m = re.match(r"^  (\S[^:]*):\s*$", line)
        if m:
            service = m.group(1)
            services[service] = {"environment": {}}
            in_env = False
            continue
        m = re.match(r"^    (\S[^:]*):", line)
        if m:
            in_env = m.group(1) == "environment"
            continue
        m = re.match(r"^      ([A-Z0-9_]+): (.*)$", line)
        if m and in_env and service:
            value = m.group(2).strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1].replace("''", "'") if value[0] == "'" else json.loads(value)
            services[service]["environment"][m.group(1)] = value
    return {"services": services}


def test_the_topology_is_there(config):
    services = config["services"]
    for name in ("postgres", "kamailio") + NODES:
        assert name in services, sorted(services)
    ids = {services[n]["environment"].get("DIALTONE_CLUSTER__NODE") for n in NODES}
    assert len(ids) == 2 and None not in ids, ids
    for n in NODES:
        env = services[n]["environment"]
        assert env.get("DIALTONE_CLUSTER__ENABLED") in ("true", True), env
        assert env.get("DIALTONE_DATABASE__URL", "").startswith("postgres://"), env


@pytest.mark.parametrize("node", NODES)
def test_each_nodes_environment_is_a_valid_configuration(config, node, tmp_path):
    env = {k: str(v).lower() if isinstance(v, bool) else str(v)
           for k, v in config["services"][node]["environment"].items()}
    # Loaded exactly as in the container (the shipped file, then the
    # variables); `nodes list` then fails at the database, which is not here:
    # a configuration error would stop it first, with exit code 2.
    full = {k: v for k, v in os.environ.items() if not k.startswith("DIALTONE_")}
    full.update(env)
    full["DIALTONE_DATABASE__URL"] = "postgres://nobody@127.0.0.1:1/none"
    r = subprocess.run([str(dialtone_bin()), "--config", str(REPO / "config" / "dialtone.toml"),
                        "nodes", "list"], capture_output=True, text=True, timeout=30, env=full,
                       cwd=tmp_path)
    assert r.returncode != 2 and "in config" not in r.stderr, r.stderr
    assert "database" in r.stderr.lower(), f"expected a database error, got:\n{r.stderr}"

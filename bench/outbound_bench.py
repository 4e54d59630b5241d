#!/usr/bin/env python3
"""Outbound call benchmarks (loopback only; outputs under bench/out/).

  create-call  create_call over MCP to the INVITE on the wire: N calls one
               after another, each a tools/call create_call (stateless JSON
               POSTed to /mcp, one keep-alive connection) for the persona
               "rec" (its realtime session on the scripted OpenAI server of
               tests/realtime_peer.py, opened while the customer rings) to a
               customer behind the trunk (a Python UA on 127.0.0.2 that
               answers 486, ending the call). Timed from just before the POST
               is written to the HTTP answer and to the INVITE's arrival in
               the trunk's receive thread. p50/p99/max over N.
  scheduled    how late scheduled calls fire: --count calls scheduled through
               POST /api/v1/calls (scheduledAt) for times spread evenly over
               one minute starting --lead seconds ahead (--spread 0: all at
               the same instant), each for user bob (a Python phone that
               answers 486). Lateness = the INVITE's arrival at bob (wall
               clock) minus the call's scheduledAt; also the scheduler's own
               firedAt minus scheduledAt from the rows. p50/p99/max.

Usage:
  python3 bench/outbound_bench.py create-call [--calls 200]
  python3 bench/outbound_bench.py scheduled [--count 1000] [--lead 20] [--spread 60]
Needs target/release/dialtone ($DIALTONE_BIN) and the tests' Python venv
(tests/.venv: websockets, pydantic, openai for the scripted server).
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

from mcp_bench import (LOOPBACK, OUT, TRUNK_IP, StampedUA, free_port, pct,  # noqa: E402
                       stop_process, wait_http)
from realtime_peer import RealtimeServer  # noqa: E402

import os  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402

TOKEN = "bench-token-0123456789"
N_OUT = "15550100"
CUSTOMER = "+15551230001"
PW = "secret-pw"


class Dialtone:
    def __init__(self, ai_url: str | None):
        binary = os.environ.get("DIALTONE_BIN", "target/release/dialtone")
        self.binary = binary if os.path.isabs(binary) else str(REPO / binary)
        self.work = Path(tempfile.mkdtemp(prefix="dialtone-outbench."))
        self.sip_port, self.http_port = free_port(), free_port()
        self.trunk_port = free_port()
        self.cfg = self.work / "dialtone.toml"
        self.cfg.write_text(f"""[sip]
listen = ["udp:{LOOPBACK}:{self.sip_port}"]
domain = "{LOOPBACK}"
[auth]
algorithms = ["MD5"]
[media]
advertise_ip = "{LOOPBACK}"
[database]
url = "sqlite://{self.work / 'dialtone.db'}"
[http]
listen = "{LOOPBACK}:{self.http_port}"
api_token = "{TOKEN}"
[log]
level = "warn"
""")
        self.cli("user", "add", "bob", "--password", PW)
        self.cli("trunk", "add", "carrier", "--host", f"{TRUNK_IP}:{self.trunk_port}",
                 "--inbound-ip", TRUNK_IP)
        self.cli("route", "add", "--pattern", r"^\+?1555123\d+$", "--trunk", "carrier")
        if ai_url:
            self.cli("persona", "add", "rec", "--provider", "openai", "--url", ai_url,
                     "--instructions", "You call customers.", "--no-transcription")
            self.cli("number", "add", N_OUT, "--to", "persona:rec")
        self.key = self.cli("apikey", "create", "--account", "default").splitlines()[-1].strip()
        OUT.mkdir(parents=True, exist_ok=True)
        self.errf = open(OUT / "outbound_bench.dialtone.stderr", "wb")
        self.proc = subprocess.Popen([self.binary, "--config", str(self.cfg), "run"],
                                     cwd=self.work, stdout=self.errf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True,
                                     env={**os.environ, "OPENAI_API_KEY": "bench"})
        wait_http(f"http://{LOOPBACK}:{self.http_port}/healthz")

    def cli(self, *args: str) -> str:
        cp = subprocess.run([self.binary, "--config", str(self.cfg), *args], capture_output=True,
                            text=True, timeout=60)
        if cp.returncode != 0:
            sys.exit(f"dialtone {' '.join(args)} failed:\n{cp.stderr}")
        return cp.stdout

    def stop(self) -> None:
        stop_process(self.proc)
        self.errf.close()


def report(title: str, values: dict[str, list[float]]) -> None:
    print(title)
    for label, v in values.items():
        if v:
            print(f"  {label:34} {pct(v, 50):8.1f} / {pct(v, 99):8.1f} / {max(v):8.1f}")


# --------------------------------------------------------------------------
# create-call

def create_call(a) -> None:
    server = RealtimeServer("openai", api_key="bench").start()
    d = Dialtone(server.url)
    http_ms: list[float] = []
    invite_ms: list[float] = []
    try:
        with StampedUA(TRUNK_IP, port=d.trunk_port, user="carrier") as trunk:
            conn = http.client.HTTPConnection(LOOPBACK, d.http_port, timeout=10)
            headers = {"Content-Type": "application/json",
                       "Accept": "application/json, text/event-stream", "X-API-Key": d.key}
            for i in range(a.calls):
                body = json.dumps({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {
                    "name": "create_call", "arguments": {
                        "assistantId": "rec", "phoneNumberId": N_OUT,
                        "customer": {"number": CUSTOMER}}}})
                t0 = time.monotonic()
                conn.request("POST", "/mcp", body, headers)
                resp = conn.getresponse()
                reply = resp.read()
                t_http = time.monotonic()
                assert resp.status == 200 and b'"isError":false' in reply, reply
                inv = trunk.wait_request("INVITE", 5)
                assert inv is not None, "no INVITE at the trunk"
                trunk.reply(inv, 486, "Busy Here")
                http_ms.append((t_http - t0) * 1000)
                invite_ms.append((inv.at - t0) * 1000)
                trunk.wait_request("ACK", 2)
                time.sleep(0.02)
    finally:
        d.stop()
        server.stop()
    report(f"create_call over {a.calls} calls (ms): p50 / p99 / max",
           {"HTTP answer (call id)": http_ms, "INVITE at the trunk": invite_ms})


# --------------------------------------------------------------------------
# scheduled

def scheduled(a) -> None:
    d = Dialtone(None)
    arrivals: list[tuple[float, str]] = []  # (wall time, Call-ID)
    try:
        with StampedUA(LOOPBACK, user="bob") as bob:
            reg = bob.register("bob", PW, (LOOPBACK, d.sip_port))
            assert reg is not None and reg.code == 200, reg
            start = time.time() + a.lead
            dues = [start + (a.spread * i / a.count if a.spread else 0) for i in range(a.count)]
            conn = http.client.HTTPConnection(LOOPBACK, d.http_port, timeout=10)
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
            t_sched = time.time()
            for due in dues:
                at = datetime.fromtimestamp(due, timezone.utc).isoformat(timespec="milliseconds")
                body = json.dumps({"userId": "bob", "customer": {"number": CUSTOMER},
                                   "scheduledAt": at.replace("+00:00", "Z")})
                conn.request("POST", "/api/v1/calls", body, headers)
                resp = conn.getresponse()
                reply = resp.read()
                assert resp.status == 201, reply
            took = time.time() - t_sched
            print(f"scheduled {a.count} calls in {took:.1f} s (REST, one connection)")
            if time.time() > start:
                sys.exit("scheduling took longer than --lead: raise it")
            # Offset between the monotonic stamps and the wall clock.
            offset = time.time() - time.monotonic()
            deadline = time.time() + a.lead + a.spread + 30
            while len(arrivals) < a.count and time.time() < deadline:
                inv = bob.wait_request("INVITE", 1)
                if inv is None:
                    continue
                cid = inv.get("Call-ID")
                if any(c == cid for _, c in arrivals):
                    continue  # a retransmission
                arrivals.append((inv.at + offset, cid))
                bob.reply(inv, 486, "Busy Here")
        status = http.client.HTTPConnection(LOOPBACK, d.http_port, timeout=30)
        status.request("GET", f"/api/v1/scheduled-calls?limit={a.count}",
                       headers={"Authorization": f"Bearer {TOKEN}"})
        rows = json.loads(status.getresponse().read())["scheduledCalls"]
    finally:
        d.stop()
    # The INVITEs come in due order: pair the i-th arrival with the i-th due time.
    dues_sorted = sorted(dues)
    arrived = sorted(t for t, _ in arrivals)
    late_invite = [(t - due) * 1000 for t, due in zip(arrived, dues_sorted)]

    def ms(text: str) -> float:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000

    fired = [ms(r["firedAt"]) - ms(r["scheduledAt"]) for r in rows if r.get("firedAt")]
    placed = sum(1 for r in rows if r["status"] == "fired" and r.get("callId"))
    print(f"{len(arrivals)} of {a.count} INVITEs arrived; {placed} rows fired with a call id; "
          f"{sum(1 for r in rows if r['status'] == 'failed')} failed")
    report(f"lateness, {a.count} calls over {a.spread} s (ms): p50 / p99 / max",
           {"claimed (firedAt - scheduledAt)": fired,
            "INVITE at bob - scheduledAt": late_invite})


def main() -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("create-call")
    c.add_argument("--calls", type=int, default=200)
    s = sub.add_parser("scheduled")
    s.add_argument("--count", type=int, default=1000)
    s.add_argument("--lead", type=float, default=20.0)
    s.add_argument("--spread", type=float, default=60.0)
    a = p.parse_args()
    {"create-call": create_call, "scheduled": scheduled}[a.cmd](a)


if __name__ == "__main__":
    main()

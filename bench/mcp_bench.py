#!/usr/bin/env python3
"""MCP server benchmarks (loopback only; outputs under bench/out/).

  hangup      the round trip of hangup_call: N calls one after another, each
              a trunk call (a Python UA on 127.0.0.2) to user bob (a Python
              phone on 127.0.0.1), answered; then a tools/call hangup_call
              POSTed to /mcp (stateless JSON, one keep-alive connection,
              call_id = the trunk leg's SIP Call-ID). Measured from just
              before the POST is written to: the HTTP answer, the BYE's
              arrival at bob, at the trunk, and both (the later one). A BYE
              "arrives" when the phone's receive thread gets it from
              recvfrom (tests/siptool.py). p50/p99/max over N.
  tools-list  tools/list requests per second with wrk (keep-alive, --connections,
              --seconds), POSTed without a session (dialtone answers plain
              JSON), against dialtone's /mcp (API key checked, context
              headers read, the registry's list) and against
              crates/dialtone-mcp/examples/mcp_baseline.rs (rmcp doing
              nothing: no auth, an empty tool list). The server and wrk
              share the machine's cores (wrk -t1). Then tools/call
              lookup_contact the same way: a contact stored as
              "(555) 010-0123" among 1,000 asked for as "+15550100123"
              (normalised, found in the native address book), and a
              number nobody has (the "no contact found" answer).

Usage:
  python3 bench/mcp_bench.py hangup [--calls 200]
  python3 bench/mcp_bench.py tools-list [--seconds 10] [--connections 16]
Needs target/release/dialtone ($DIALTONE_BIN), for tools-list also
`cargo build --release -p dialtone-mcp --example mcp_baseline` and wrk
(Debian package wrk).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from siptool import SipUA, answer_call, parse_message, place_call, sdp_offer  # noqa: E402

LOOPBACK = "127.0.0.1"
TRUNK_IP = "127.0.0.2"
NUMBER = "15551230001"
PW = "secret-pw"
OUT = REPO / "bench" / "out"


def free_port() -> int:
    s = socket.socket()
    s.bind((LOOPBACK, 0))
    port = s.getsockname()[1]
    s.close()
    return port


class StampedUA(SipUA):
    """A SipUA that stamps each message with its arrival (monotonic s)."""

    def _recv_loop(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                data, src = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            at = time.monotonic()
            if not data.strip():
                continue
            try:
                msg = parse_message(data, src[:2])
            except Exception:
                continue
            msg.at = at
            self.log.append(("in", msg))
            self.inbox.put(msg)


class Dialtone:
    def __init__(self, log_level: str = "warn"):
        binary = os.environ.get("DIALTONE_BIN", "target/release/dialtone")
        self.binary = binary if os.path.isabs(binary) else str(REPO / binary)
        self.work = Path(tempfile.mkdtemp(prefix="dialtone-mcpbench."))
        self.sip_port, self.http_port = free_port(), free_port()
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
[log]
level = "{log_level}"
""")
        self.cli("user", "add", "bob", "--password", PW)
        self.cli("trunk", "add", "carrier", "--host", f"{TRUNK_IP}:5099", "--inbound-ip", TRUNK_IP)
        self.cli("number", "add", NUMBER, "--to", "user:bob")
        self.key = self.cli("apikey", "create", "--account", "default").splitlines()[-1].strip()
        OUT.mkdir(parents=True, exist_ok=True)
        self.errf = open(OUT / "mcp_bench.dialtone.stderr", "wb")
        self.proc = subprocess.Popen([self.binary, "--config", str(self.cfg), "run"], cwd=self.work,
                                     stdout=self.errf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
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


def wait_http(url: str) -> None:
    for _ in range(100):
        try:
            with urllib.request.urlopen(url, timeout=0.5):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{url} did not come up")


def stop_process(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


# --------------------------------------------------------------------------
# hangup

def hangup(a) -> None:
    d = Dialtone()
    results: dict[str, list[float]] = {"http": [], "bob": [], "trunk": [], "both": []}
    try:
        with StampedUA(LOOPBACK, user="bob") as bob, StampedUA(TRUNK_IP, user="carrier") as trunk:
            reg = bob.register("bob", PW, (LOOPBACK, d.sip_port))
            assert reg is not None and reg.code == 200, reg
            conn = http.client.HTTPConnection(LOOPBACK, d.http_port, timeout=10)
            for i in range(a.calls):
                answered: dict = {}

                def callee():
                    inv = bob.wait_request("INVITE", 5)
                    if inv is not None:
                        answered["dlg"] = answer_call(bob, inv, sdp_offer(LOOPBACK, 40000), ring=False)

                t = threading.Thread(target=callee)
                t.start()
                call = place_call(trunk, (LOOPBACK, d.sip_port), f"sip:{NUMBER}@{LOOPBACK}:{d.sip_port}",
                                  sdp_offer(TRUNK_IP, 40002))
                t.join(6)
                assert call.final is not None and call.final.code == 200, call.final
                body = json.dumps({"jsonrpc": "2.0", "id": i, "method": "tools/call",
                                   "params": {"name": "hangup_call", "arguments": {}}})
                headers = {"Content-Type": "application/json",
                           "Accept": "application/json, text/event-stream",
                           "X-API-Key": d.key, "call_id": call.call_id}
                t0 = time.monotonic()
                conn.request("POST", "/mcp", body, headers)
                resp = conn.getresponse()
                reply = resp.read()
                t_http = time.monotonic()
                assert resp.status == 200 and b'"isError":false' in reply, reply
                bye_b = bob.wait_request("BYE", 5, call_id=answered["dlg"].call_id)
                bye_t = trunk.wait_request("BYE", 5, call_id=call.call_id)
                assert bye_b is not None and bye_t is not None, "a BYE did not come"
                bob.reply(bye_b, 200, "OK")
                trunk.reply(bye_t, 200, "OK")
                results["http"].append(t_http - t0)
                results["bob"].append(bye_b.at - t0)
                results["trunk"].append(bye_t.at - t0)
                results["both"].append(max(bye_b.at, bye_t.at) - t0)
                time.sleep(0.02)
    finally:
        d.stop()
    print(f"hangup_call round trip over {a.calls} calls (ms): p50 / p99 / max")
    for k, label in (("http", "HTTP answer"), ("bob", "BYE at bob (callee)"),
                     ("trunk", "BYE at the trunk (caller)"), ("both", "both BYEs")):
        v = [x * 1000 for x in results[k]]
        print(f"  {label:28} {pct(v, 50):6.2f} / {pct(v, 99):6.2f} / {max(v):6.2f}")


# --------------------------------------------------------------------------
# tools-list

TOOLS_LIST = '{"jsonrpc":"2.0","id":1,"method":"tools/list"}'


def lookup_body(number: str) -> str:
    return ('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"lookup_contact",'
            f'"arguments":{{"phone_number":"{number}"}}}}}}')


LUA = """wrk.method = "POST"
wrk.body = '%s'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
%s
local bad = 0
response = function(status, headers, body)
  if status ~= 200 then bad = bad + 1 end
end
done = function(summary, latency, requests)
  io.write(string.format("non-200: %%d\\n", bad))
end
"""


def run_wrk(url: str, headers: dict[str, str], a, body: str = TOOLS_LIST) -> str:
    lua = OUT / "mcp_wrk.lua"
    extra = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
    lua.write_text(LUA % (body, extra))
    cmd = ["wrk", "-t1", f"-c{a.connections}", f"-d{a.seconds}s", "--latency", "-s", str(lua), url]
    cp = subprocess.run(cmd, capture_output=True, text=True, timeout=a.seconds + 30)
    return cp.stdout + cp.stderr


def summarize(name: str, out: str) -> None:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"50%\s+(\S+)", out)
    p99 = re.search(r"99%\s+(\S+)", out)
    bad = re.search(r"non-200: (\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    print(f"  {name:32} {rps.group(1) if rps else '?':>10} req/s   p50 {p50.group(1) if p50 else '?':>8}"
          f"   p99 {p99.group(1) if p99 else '?':>8}   non-200 {bad.group(1) if bad else '?'}"
          + (f"   {errors.group(0)}" if errors else ""))


def tools_list(a) -> None:
    baseline_bin = REPO / "target" / "release" / "examples" / "mcp_baseline"
    if not baseline_bin.exists():
        sys.exit("build the baseline: cargo build --release -p dialtone-mcp --example mcp_baseline")
    print(f"tools/list, wrk -t1 -c{a.connections} -d{a.seconds}s, keep-alive, no session:")
    d = Dialtone(log_level="warn")
    try:
        url = f"http://{LOOPBACK}:{d.http_port}/mcp"
        run_wrk(url, {"X-API-Key": d.key}, argparse.Namespace(**{**vars(a), "seconds": 2}))
        summarize("dialtone /mcp", run_wrk(url, {"X-API-Key": d.key}, a))
        summarize("dialtone /mcp, call_id header",
                  run_wrk(url, {"X-API-Key": d.key, "call_id": "some-call"}, a))
        csv = d.work / "contacts.csv"
        rows = [f"Person {i},+1555020{i:04d}" for i in range(999)] + ["Jeremy Vance,(555) 010-0123"]
        csv.write_text("name,number\n" + "\n".join(rows) + "\n")
        d.cli("contact", "import", str(csv))
        summarize("lookup_contact, found",
                  run_wrk(url, {"X-API-Key": d.key}, a, lookup_body("+15550100123")))
        summarize("lookup_contact, not found",
                  run_wrk(url, {"X-API-Key": d.key}, a, lookup_body("+15559990000")))
    finally:
        d.stop()
    port = free_port()
    base = subprocess.Popen([str(baseline_bin), f"{LOOPBACK}:{port}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        url = f"http://{LOOPBACK}:{port}/mcp"
        wait_http(url)
        run_wrk(url, {}, argparse.Namespace(**{**vars(a), "seconds": 2}))
        summarize("rmcp baseline (does nothing)", run_wrk(url, {}, a))
    finally:
        stop_process(base)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    h = sub.add_parser("hangup")
    h.add_argument("--calls", type=int, default=200)
    t = sub.add_parser("tools-list")
    t.add_argument("--seconds", type=int, default=10)
    t.add_argument("--connections", type=int, default=16)
    a = p.parse_args()
    {"hangup": hangup, "tools-list": tools_list}[a.what](a)


if __name__ == "__main__":
    main()

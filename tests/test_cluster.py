"""Several dialtone nodes behind Kamailio on one PostgreSQL database: the
topology of docker-compose.yml, run on loopback (tests/cluster.py).

Cast (all on loopback):
  - Kamailio on 127.0.0.4 with config/kamailio/kamailio.cfg: dispatcher over
    node-1 (127.0.0.2) and node-2 (127.0.0.3), OPTIONS probes every 2 s,
    record-route, Path for registrations;
  - the carrier: SIPp on 127.0.0.1. Its callers (uac*.xml) send to Kamailio;
    its callee (uas*.xml on CARRIER_PORT) is the trunk's host, which the
    nodes call directly. The trunk "carrier" is known by 127.0.0.1, the
    caller's own address, which a node reads from the Via below Kamailio's
    (sip.front_proxies);
  - phones registered THROUGH Kamailio (Path): bob (SIPp on 127.0.0.5),
    alice (SIPp on 127.0.0.6), carol (a Python UA on 127.0.0.7);
  - numbers: N_OUT -> trunk:carrier (a hairpin: the carrier calls it and is
    called back), N_BOB -> user:bob, N_ALICE -> user:alice; the route
    ^1555999\\d+$ -> carrier (the customers of click-to-dial calls).

What is checked: both nodes join (nodes list, /metrics, Kamailio's probes);
SIPp load through Kamailio is spread over both nodes and every call
completes; a phone registered through Kamailio is reached by calls landing
on either node, through Kamailio, and a phone that supports Path sees it
echoed; get_call and hangup_call sent over MCP to the node that does not
own the call are forwarded to the owner and work; scheduled calls created
on both nodes fire exactly once across the cluster; a digest challenge one
node issued is accepted by the other (Kamailio may send the answer there);
kill -9 of a node under load: Kamailio stops sending it calls within the
probe interval, new calls all land on the survivor and complete, the
survivor closes the dead node's live calls ("node lost"), no record of a
call completed before the kill is lost; the restarted node rejoins and
takes calls again.

PostgreSQL unreachable: skipped with the reason, except under CI=true
(failed). Every wait is bounded; the kill test runs last (file order)."""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from datetime import datetime, timedelta, timezone

import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from cluster import (DEAD_AFTER_MS, KAM_IP, NODE_IDS, PROBE_SECS, Cluster, Node, wait_until)
from conftest import _INSTANCES, free_port, received_messages, wait_bound
from siptool import Response, SipUA, authorization, pick_challenge
from test_mcp import new_key, run, text_of

PW = "cluster-pw-1"
CARRIER_IP = "127.0.0.1"
BOB_IP, ALICE_IP, CAROL_IP = "127.0.0.5", "127.0.0.6", "127.0.0.7"
N_OUT, N_BOB, N_ALICE = "15550001", "15550002", "15550003"
CUSTOMERS = r"^1555999\d+$"


# --------------------------------------------------------------------------
# set-up

class Pbx:
    """The cluster, provisioned once through node-1's CLI (the database is
    shared: node-2 sees it all)."""

    def __init__(self, cluster: Cluster):
        self.c = cluster
        self.carrier_port = free_port(host=CARRIER_IP)
        n1 = cluster.nodes[0]
        n1.add_trunk("carrier", f"{CARRIER_IP}:{self.carrier_port}", inbound_ips=[CARRIER_IP])
        for user in ("alice", "bob", "carol"):
            n1.add_user(user, PW)
        n1.add_number(N_OUT, "trunk:carrier")
        n1.add_number(N_BOB, "user:bob")
        n1.add_number(N_ALICE, "user:alice")
        n1.add_route(CUSTOMERS, "carrier")

    @property
    def port(self) -> int:
        return self.c.port

    def carrier_callee(self, sipp, scenario: str = "uas.xml", *, calls: int, timeout: float = 40, **kw):
        run_ = sipp.start(scenario, None, local_ip=CARRIER_IP, local_port=self.carrier_port,
                          calls=calls, timeout=timeout, **kw)
        assert wait_bound(self.carrier_port, host=CARRIER_IP), run_.wait(1)
        return run_

    def carrier_calls(self, sipp, number: str, *, scenario: str = "uac.xml", background: bool = False,
                      **kw):
        """SIPp on the carrier's address calling `number` through Kamailio."""
        kw.setdefault("timeout", 30)
        start = sipp.start if background else sipp
        return start(scenario, self.port, service=number, target_host=KAM_IP, local_ip=CARRIER_IP,
                     **kw)

    def phone(self, sipp, user: str, ip: str, scenario: str = "uas.xml", *, calls: int = 1,
              timeout: float = 30, **kw):
        """A SIPp phone registered through Kamailio (register.xml), then
        running `scenario` on the same address: its registered contact."""
        port = free_port(host=ip)
        r = sipp("register.xml", self.port, target_host=KAM_IP, local_ip=ip, local_port=port,
                 service=user, password=PW, keys={"expires": 600}, timeout=10)
        assert r.ok(), r
        run_ = sipp.start(scenario, None, local_ip=ip, local_port=port, calls=calls,
                          timeout=timeout, **kw)
        assert wait_bound(port, host=ip), run_.wait(1)
        return port, run_

    def hairpin_load(self, sipp, calls: int, *, rate: int, hold_ms: int) -> list[dict]:
        """`calls` carrier calls to N_OUT through Kamailio (the trunk calls
        the carrier back); every one must complete. Their records."""
        before = self.ids()
        uas = self.carrier_callee(sipp, calls=calls, timeout=40)
        r = self.carrier_calls(sipp, N_OUT, calls=calls, rate=rate, limit=10,
                               duration_ms=hold_ms, timeout=40, trace_msg=False)
        assert r.ok(calls), r
        u = uas.wait(20)
        assert u.ok(calls), u
        return self.new_records(before, calls)

    def ids(self) -> set[str]:
        return {r["id"] for r in self.c.calls()}

    def new_records(self, before: set[str], count: int, timeout: float = 15.0,
                    ended: bool = True) -> list[dict]:
        """The call records not in `before`, once `count` of them are there
        (and have ended, with ended=True)."""
        def done():
            recs = [r for r in self.c.calls() if r["id"] not in before]
            ok = [r for r in recs if not ended or r.get("ended_at") is not None]
            return recs if len(ok) >= count else None
        try:
            return wait_until(done, timeout, f"{count} new call records")
        except AssertionError:
            recs = [r for r in self.c.calls() if r["id"] not in before]
            raise AssertionError(f"expected {count} new{' ended' if ended else ''} call records "
                                 f"within {timeout} s, got:\n{json.dumps(recs, indent=1)}") from None


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        c.start()
    except BaseException:
        c.stop()
        raise
    yield c
    c.stop()
    if c.problems:
        pytest.fail("; ".join(c.problems), pytrace=False)


@pytest.fixture(scope="module")
def pbx(cluster) -> Pbx:
    return Pbx(cluster)


@pytest.fixture(autouse=True)
def _cluster_logs_on_failure(request, cluster):
    """conftest's report hook appends these logs to a failed test's report."""
    request.node.stash[_INSTANCES] = cluster.logs()


def samples(node: Node, prefix: str) -> dict[str, float]:
    return {k: v for k, v in node.metrics().items() if k.startswith(prefix)}


def forwarded(node: Node) -> float:
    return node.metric('dialtone_cluster_forwarded_total{result="answered"}')


# --------------------------------------------------------------------------
# 1. the nodes join, Kamailio probes them

def test_both_nodes_join_and_kamailio_probes_them(cluster):
    listed = {n["id"]: n for n in cluster.nodes[0].nodes()}
    assert set(listed) == set(NODE_IDS), listed
    for node in cluster.nodes:
        row = listed[node.node_id]
        assert row["alive"] is True, row
        assert row["http"] == node.http_base, row
        assert f"{node.host}:{node.sip_port}" in row["sip"], row
        m = node.wait_metric("dialtone_cluster_peers_alive", 1, 5)
        assert m.get(f'dialtone_cluster_node_info{{node="{node.node_id}"}}') == 1, \
            samples(node, "dialtone_cluster")
        assert m.get("dialtone_cluster_peers_alive") == 1, samples(node, "dialtone_cluster")
    assert cluster.front is not None
    state = cluster.front.dispatcher()
    assert all(state.get(cluster.uri(n), "").startswith("A") for n in cluster.nodes), state


# --------------------------------------------------------------------------
# 2. load through Kamailio, spread over both nodes

def test_load_through_kamailio_is_spread_over_both_nodes_and_every_call_completes(pbx, sipp):
    calls = 30
    recs = pbx.hairpin_load(sipp, calls, rate=10, hold_ms=500)
    assert len(recs) == calls, json.dumps(recs, indent=1)
    assert all(x["outcome"] == "answered" and x["ended_at"] for x in recs), json.dumps(recs, indent=1)
    spread = pbx.c.by_node(recs)
    print(f"{calls} calls through Kamailio: {spread}")
    assert set(spread) == set(NODE_IDS), spread
    assert min(spread.values()) >= calls // 3, f"round robin should share the calls: {spread}"
    for node in pbx.c.nodes:
        assert node.wait_metric("dialtone_cluster_calls_owned", 0, 5).get(
            "dialtone_cluster_calls_owned") == 0, samples(node, "dialtone_cluster")


# --------------------------------------------------------------------------
# 3. a phone registered through Kamailio (Path), reached from either node

def register_via(ua: SipUA, user: str, dest: tuple[str, int], *, second_dest=None,
                 extra: tuple[str, ...] = (), domain: str = KAM_IP) -> tuple:
    """REGISTER `ua`'s contact as `user` at `dest` (digest on the 401, sent to
    `second_dest` if given). Returns (first response, final response)."""
    call_id, tag = secrets.token_hex(8) + "@cluster-tests", secrets.token_hex(4)
    ruri = f"sip:{domain}"
    first = auth = None
    for cseq in (1, 2):
        hs = [f"Via: {ua._via()}", "Max-Forwards: 70", f"From: <sip:{user}@{domain}>;tag={tag}",
              f"To: <sip:{user}@{domain}>", f"Call-ID: {call_id}", f"CSeq: {cseq} REGISTER",
              f"Contact: {ua.contact()}", "Expires: 600", "User-Agent: cluster-tests", *extra]
        if auth:
            hs.append(f"Authorization: {auth}")
        to = second_dest if (cseq == 2 and second_dest) else dest
        r = ua._transaction(SipUA.build(f"REGISTER {ruri} SIP/2.0", hs), to, call_id, cseq,
                            "REGISTER", 5)
        if cseq == 1:
            first = r
        if r is None or r.code != 401 or auth:
            return first, r
        auth = authorization(pick_challenge(Response(r.code, "", r.headers, r.body, r.raw)),
                             "REGISTER", ruri, user, PW)
    return first, None


def test_path_is_echoed_only_to_a_phone_that_supports_it(pbx):
    k = (KAM_IP, pbx.port)
    with SipUA(CAROL_IP, user="carol") as ua:
        _, ok = register_via(ua, "carol", k, extra=("Supported: path",))
        assert ok is not None and ok.code == 200, ok
        paths = ok.all("Path")
        want = f"<sip:{KAM_IP}:{pbx.port};lr;received=sip:{CAROL_IP}:{ua.port}>"
        assert paths and paths[0].replace(" ", "") == want, \
            f"the 200 must echo Kamailio's Path (RFC 3327 5.3), want {want}:\n{ok}"
        _, ok = register_via(ua, "carol", k)
        assert ok is not None and ok.code == 200, ok
        assert ok.all("Path") == [], f"no Path to a phone without Supported: path:\n{ok}"
    contacts = [b.contact for b in pbx.c.any.bindings_of("carol")]
    assert any(f"{CAROL_IP}:" in c for c in contacts), contacts


def test_a_phone_registered_through_kamailio_is_reached_from_either_node(pbx, sipp):
    before = pbx.ids()
    calls = 4
    port, bob = pbx.phone(sipp, "bob", BOB_IP, calls=calls, timeout=40)
    contacts = [b.contact for b in pbx.c.any.bindings_of("bob")]
    assert any(f"{BOB_IP}:{port}" in c for c in contacts), contacts
    uac = pbx.carrier_calls(sipp, N_BOB, calls=calls, limit=1, duration_ms=300, timeout=40)
    assert uac.ok(calls), uac
    b = bob.wait(20)
    assert b.ok(calls), b
    invites = [m for m in received_messages(b.messages) if m.startswith("INVITE")]
    assert len(invites) == calls, invites
    for inv in invites:
        head = inv.split("\n\n", 1)[0]
        vias = [line for line in head.splitlines() if line.lower().startswith("via:")]
        assert vias and f"{KAM_IP}:{pbx.port}" in vias[0], \
            f"bob's INVITE did not come through Kamailio (its Path):\n{inv}"
        assert f"Record-Route: <sip:{KAM_IP}:{pbx.port};" in head, inv
    recs = pbx.new_records(before, calls)
    assert all(x["outcome"] == "answered" for x in recs), json.dumps(recs, indent=1)
    spread = pbx.c.by_node(recs)
    print(f"calls to bob: {spread}")
    assert set(spread) == set(NODE_IDS), f"calls to bob should land on both nodes: {spread}"


# --------------------------------------------------------------------------
# 4. MCP tools about a call owned by the other node

@contextlib.asynccontextmanager
async def mcp_session(node: Node, key: str, **context: str):
    headers = {"X-API-Key": key, **context}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(10, read=60)) as http:
        async with streamable_http_client(f"{node.http_base}/mcp", http_client=http) as (read, write):
            async with ClientSession(read, write) as s:
                await s.initialize()
                yield s


def test_get_call_and_hangup_call_sent_to_the_other_node_reach_the_owner(pbx, sipp):
    c = pbx.c
    _, key = new_key(c.nodes[0])
    before = pbx.ids()
    # A call to a user belongs to the user's account (the key's, "default"):
    # an account sees its own calls only, on any node.
    _, uas = pbx.phone(sipp, "bob", BOB_IP, calls=1, timeout=40)
    caller = pbx.carrier_calls(sipp, N_BOB, scenario="uac_wait_bye.xml", background=True,
                               timeout=40)
    live = [r for r in pbx.new_records(before, 1, ended=False) if not r.get("ended_at")]
    assert len(live) == 1, live
    call_id, owner_id = live[0]["id"], live[0]["node"]
    owner = c.node(owner_id)
    other = c.other(owner)
    fwd_other, fwd_owner = forwarded(other), forwarded(owner)

    async def scenario():
        async with mcp_session(other, key) as s:
            got = await s.call_tool("get_call", {"callId": call_id})
        async with mcp_session(other, key, call_id=call_id) as s:
            hung = await s.call_tool("hangup_call", {})
        return got, hung

    got, hung = run(scenario(), 60)
    problems = []
    snap = got.structured_content or {}
    if got.is_error or snap.get("id") != call_id or snap.get("status") != "in-progress" \
            or not snap.get("legs"):
        problems.append(f"get_call on {other.node_id} for {owner_id}'s live call (with its legs): "
                        f"{text_of(got) if got.is_error else snap}")
    if hung.is_error or hung.structured_content != {"outcome": "ended", "call_id": call_id}:
        problems.append(f"hangup_call on {other.node_id} with call_id={call_id}: "
                        f"{text_of(hung) if hung.is_error else hung.structured_content}")
    assert not problems, "\n".join(problems)
    assert forwarded(other) >= fwd_other + 2, samples(other, "dialtone_cluster_forwarded")
    assert forwarded(owner) == fwd_owner, samples(owner, "dialtone_cluster_forwarded")

    r = caller.wait(20)
    assert r.ok(), f"the caller must get BYE:\n{r}"
    assert uas.wait(20).ok(), "bob's phone must get BYE"
    rec = next(x for x in pbx.new_records(before, 1) if x["id"] == call_id)
    assert rec["hangup_cause"] == "hangup_call" and rec["node"] == owner_id, rec


# --------------------------------------------------------------------------
# 5. scheduled calls: each fires once, whichever node claims it

def rfc3339(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_scheduled_calls_fire_exactly_once_across_the_cluster(pbx, sipp):
    """Click-to-dial calls (alice's phone rings, then the customer behind the
    carrier, who hangs up after 1 s) created on both nodes for the same
    moment: both schedulers race for them."""
    c = pbx.c
    k = 6
    _, alice = pbx.phone(sipp, "alice", ALICE_IP, calls=k, timeout=40)
    customers = pbx.carrier_callee(sipp, "uas_bye_from_callee.xml", calls=k, timeout=40,
                                   duration_ms=1000)
    before = pbx.ids()
    at = rfc3339(datetime.now(timezone.utc) + timedelta(seconds=3))
    ids = []
    for i in range(k):
        node = c.nodes[i % 2]
        out = node.cli("call", "create", "--from-number", N_ALICE, "--to", f"155599900{i:02d}",
                       "--user", "alice", "--at", at).stdout
        ids.append(out.split()[2])

    def fired():
        rows = [r for r in json.loads(c.any.cli("call", "list-scheduled", "--json").stdout)
                if r["id"] in ids]
        # claimed ("fired"), then placed: the call's id, or why it failed
        return rows if len(rows) == k and all(r["status"] != "pending" and (r["callId"] or r["error"])
                                             for r in rows) else None
    rows = wait_until(fired, 20, "the scheduled calls to fire")
    assert all(r["status"] == "fired" and r["callId"] for r in rows), json.dumps(rows, indent=1)
    assert len({r["callId"] for r in rows}) == k, json.dumps(rows, indent=1)
    claimed = c.db.query("SELECT id, claimed_by FROM scheduled_calls WHERE id IN (%s)"
                         % ",".join(f"'{i}'" for i in ids))
    by = {}
    for _, node in claimed:
        by[node] = by.get(node, 0) + 1
    print(f"scheduled calls claimed by: {by}")
    assert set(by) <= set(NODE_IDS) and sum(by.values()) == k, claimed

    a = alice.wait(30)
    assert a.ok(k), f"alice's phone must ring exactly {k} times:\n{a}"
    invites = [m for m in received_messages(a.messages) if m.startswith("INVITE")]
    assert len(invites) == k, f"{len(invites)} INVITEs for {k} scheduled calls"
    assert customers.wait(30).ok(k), "each customer is called once"
    recs = pbx.new_records(before, k, timeout=20)
    time.sleep(1.0)  # nothing more comes
    recs = [r for r in c.calls() if r["id"] not in before]
    assert sorted(r["id"] for r in recs) == sorted(r["callId"] for r in rows), \
        f"one call record per scheduled call:\n{json.dumps(recs, indent=1)}"


# --------------------------------------------------------------------------
# 6. a digest challenge from one node, answered to the other

def test_a_challenge_from_one_node_is_accepted_by_the_other(pbx):
    """Kamailio spreads initial requests round robin: a phone's INVITE
    re-sent with credentials after a 407 (a new transaction) may reach the
    other node, so a nonce one node issued must be good on every node."""
    n1, n2 = pbx.c.nodes
    with SipUA(CAROL_IP, user="carol") as ua:
        first, final = register_via(ua, "carol", (n1.host, n1.sip_port),
                                    second_dest=(n2.host, n2.sip_port))
    assert first is not None and first.code == 401, first
    assert final is not None and final.code == 200, \
        f"node-2 refused the answer to node-1's challenge:\n{first}\n{final}"


# --------------------------------------------------------------------------
# 7. kill -9 under load, failover, the survivor closes the dead node's calls,
#    the node comes back

def stats_row(run_) -> dict[str, str]:
    from conftest import _parse_sipp_stats
    return _parse_sipp_stats(run_.stf)


def test_kill_9_under_load_fails_over_and_the_node_rejoins(pbx, sipp):
    c = pbx.c
    assert c.front is not None
    victim, survivor = c.node("node-1"), c.node("node-2")
    victim_uri = c.uri(victim)
    before = pbx.ids()
    total = 60
    uas = pbx.carrier_callee(sipp, calls=total + 10, timeout=90)
    load = pbx.carrier_calls(sipp, N_OUT, calls=total, rate=5, limit=40, duration_ms=2000,
                             timeout=60, background=True, trace_msg=False, extra=["-fd", "1"])
    time.sleep(4.5)
    recs = [r for r in c.calls() if r["id"] not in before]
    assert c.by_node(recs).get(victim.node_id), f"no call reached {victim.node_id} yet: {recs}"
    done_before_kill = {r["id"]: r for r in recs if r.get("ended_at")}
    sipp_done_before_kill = int(stats_row(load).get("SuccessfulCall(C)", "0") or 0)

    t_kill = time.time()
    victim.kill9()
    victim_live = [r["id"] for r in c.calls() if r["id"] not in before
                   and r["node"] == victim.node_id and not r.get("ended_at")]
    print(f"killed {victim.node_id} with {len(victim_live)} live calls; "
          f"{len(done_before_kill)} calls ended before ({sipp_done_before_kill} by SIPp's count)")

    # Kamailio sees it dead within the probe interval (plus the probe's timeout)
    gone = c.front.wait_state(victim_uri, False, timeout=PROBE_SECS + 4)
    print(f"kamailio marked {victim.node_id} inactive {gone:.1f} s after the kill")
    assert gone <= 5.0, gone

    # the survivor closes the dead node's calls once it has missed dead_after_ms of heartbeats
    def reaped():
        by_id = {r["id"]: r for r in c.calls()}
        return all(by_id[i].get("ended_at") for i in victim_live) and by_id
    by_id = wait_until(reaped, DEAD_AFTER_MS / 1000 + 8,
                       f"{survivor.node_id} to close {victim.node_id}'s live calls")
    print(f"{victim.node_id}'s calls closed {time.time() - t_kill:.1f} s after the kill")
    for i in victim_live:
        r = by_id[i]
        assert (r["outcome"], r["hangup_cause"], r["hangup_side"]) == \
            ("failed", "node lost", "system"), r
    m = survivor.metrics()
    assert m.get("dialtone_cluster_calls_reaped_total", 0) >= len(victim_live), \
        samples(survivor, "dialtone_cluster")
    assert survivor.wait_metric("dialtone_cluster_peers_alive", 0, 5).get(
        "dialtone_cluster_peers_alive") == 0, samples(survivor, "dialtone_cluster")
    listed = {n["id"]: n for n in survivor.nodes()}
    assert listed[victim.node_id]["alive"] is False, listed

    r = load.wait(90)
    print(f"load: {r.successful} successful, {r.failed} failed, "
          f"{len(victim_live)} were live on {victim.node_id}")
    assert r.successful + r.failed == total, r
    assert r.failed <= len(victim_live) + 2, \
        f"only the calls up on the killed node may fail:\n{r}"

    recs = {x["id"]: x for x in c.calls() if x["id"] not in before}
    # nothing ended before the kill is lost or changed
    for i, old in done_before_kill.items():
        assert i in recs and recs[i]["ended_at"] == old["ended_at"] \
            and recs[i]["outcome"] == old["outcome"], (old, recs.get(i))
    kill_ms = int(t_kill * 1000)
    ended_before = [x for x in recs.values() if x.get("ended_at") and x["ended_at"] <= kill_ms
                    and x["outcome"] == "answered"]
    assert len(ended_before) >= sipp_done_before_kill, \
        (f"SIPp had completed {sipp_done_before_kill} calls before the kill, but only "
         f"{len(ended_before)} answered records ended before it")
    # every call that started once Kamailio knew landed on the survivor and completed
    after = [x for x in recs.values() if x["started_at"] >= kill_ms + 5000]
    assert after, "the load ended too early to show calls after the failover"
    assert all(x["node"] == survivor.node_id and x["outcome"] == "answered" for x in after), \
        json.dumps(after, indent=1)
    uas.kill()

    # the node comes back: Kamailio's next probe takes it in again
    t_back = time.time()
    victim.restart()
    back = c.front.wait_state(victim_uri, True, timeout=2 * PROBE_SECS + 4)
    print(f"{victim.node_id} active again {back:.1f} s after its restart "
          f"({time.time() - t_back:.1f} s in all)")
    wait_until(lambda: {n["id"]: n["alive"] for n in survivor.nodes()}.get(victim.node_id),
               10, f"{victim.node_id} alive again in nodes list")
    calls = 10
    spread = c.by_node(pbx.hairpin_load(sipp, calls, rate=5, hold_ms=300))
    print(f"after the rejoin: {spread}")
    assert spread.get(victim.node_id, 0) >= 3, f"{victim.node_id} takes calls again: {spread}"

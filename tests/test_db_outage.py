"""The database goes away under calls (issue 15, point 4): PostgreSQL is
stopped while ten calls are up and restarted after they have ended. The
calls carry on (nothing in a call's media or dialogs needs the database),
their records — answered before the outage, ended during it — are kept in
memory and written once the database answers again. A call placed during
the outage is served from memory (issue 13: the switch caches who calls,
where the number goes, the callee and its bindings) and its record waits
with the others. /healthz says the database is down, and once it is back
new calls and registrations work. The database is a private PostgreSQL
server (tests/private_pg.py), so stopping it disturbs no other test."""

from __future__ import annotations

import time

from conftest import wait_until
from private_pg import private_pg  # noqa: F401 (fixture)
from test_calls import N_BOB, PW, Pbx

CALLS = 10




def test_calls_survive_postgres_restart_and_their_records_are_written_after(
        private_pg, dialtone_factory, sipp):  # noqa: F811 (fixture; first: torn down last)
    d = dialtone_factory(config={"database": {"url": private_pg.url}})
    pbx = Pbx(d, sipp)
    phone = pbx.phone("bob", calls=CALLS + 1, timeout=60)
    caller = pbx.trunk_call("uac.xml", N_BOB, calls=CALLS, rate=20, limit=CALLS, timeout=60,
                            duration_ms=6000, background=True)
    wait_until(lambda: d.metrics().get("dialtone_calls_active") == CALLS, 10, "ten calls up")
    wait_until(lambda: sum(1 for r in d.calls() if r.get("answered_at")) == CALLS, 10,
               "ten answered records", interval=0.25)

    private_pg.stop()
    outage = time.monotonic()
    # The calls end during the outage (6 s hold): their final records wait.
    m = d.wait_metric("dialtone_calls_active", 0, timeout=20)
    assert m["dialtone_calls_active"] == 0, m
    m = d.wait_metric("dialtone_call_records_pending", CALLS, timeout=10)
    assert m["dialtone_call_records_pending"] == CALLS, m
    assert d.healthz(timeout=8) == 503, "healthz must report the database down"
    # A new call needs no database once the caches are warm: it is
    # answered, and its record waits with the others.
    during = pbx.trunk_call("uac.xml", N_BOB, calls=1, timeout=15, duration_ms=500)
    assert during.ok(), during
    assert caller.wait(30).ok(calls=CALLS), "the calls up before the outage must complete"
    assert phone.wait(30).ok(calls=CALLS + 1)
    m = d.wait_metric("dialtone_call_records_pending", CALLS + 1, timeout=10)
    assert m["dialtone_call_records_pending"] == CALLS + 1, m
    assert time.monotonic() - outage < 30

    private_pg.start()
    m = d.wait_metric("dialtone_call_records_pending", 0, timeout=20)
    assert m["dialtone_call_records_pending"] == 0, m
    assert m["dialtone_call_records_written_late_total"] >= CALLS + 1, m
    recs = [r for r in d.calls() if r.get("answered_at")]
    assert len(recs) == CALLS + 1, recs
    for r in recs:
        assert r["ended_at"] and r["outcome"] == "answered" and r["hangup_cause"], r
    log = d.log()
    assert "database unreachable: call records are kept in memory" in log
    assert "the call records kept meanwhile are written" in log

    # Back to normal: a registration and a call.
    wait_until(lambda: d.healthz(timeout=8) == 200, 15, "healthz 200 again")
    after = pbx.phone("bob", calls=1, timeout=20)
    call = pbx.trunk_call("uac.xml", N_BOB, calls=1, timeout=20, duration_ms=500)
    assert call.ok(), call
    assert after.wait(20).ok()
    # Every call answered, each recorded once.
    recs = d.wait_calls(CALLS + 2, 10)
    assert len(recs) == CALLS + 2, [(r["id"], r.get("outcome")) for r in recs]
    assert all(r["outcome"] == "answered" for r in recs), [r["outcome"] for r in recs]

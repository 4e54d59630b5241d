"""Self-test of the harness: the SIPp scenarios against Kamailio, a registrar
known to be right (bench/kamailio-registrar.cfg). When these pass and a
dialtone test fails, the fault is dialtone's, not the scenario's.

Each check runs a scenario both where it must succeed and where it must fail,
so that a scenario that "passes anything" is caught too.
"""

from __future__ import annotations

import pytest

from conftest import received_messages, header_values

PW = "secret"


def test_register_udp_and_tcp(kamailio, sipp):
    for t in ("u1", "t1"):
        r = sipp("register.xml", kamailio.port, transport=t, service=f"k-reg-{t}", password=PW,
                 keys={"expires": 3600})
        assert r.ok(), r
    bad = sipp("register.xml", kamailio.port, service="k-reg-bad", password="wrong",
               keys={"expires": 3600})
    assert not bad.ok() and bad.rc != 0, f"register.xml must fail on a wrong password\n{bad}"


def test_wrong_password_scenario(kamailio, sipp):
    refused = sipp("register_wrong_password.xml", kamailio.port, service="k-wrong", password="nope",
                   keys={"expires": 3600})
    assert refused.ok(), refused
    accepted = sipp("register_wrong_password.xml", kamailio.port, service="k-wrong", password=PW,
                    keys={"expires": 3600})
    assert accepted.rc != 0 and accepted.failed == 1, \
        f"register_wrong_password.xml must FAIL when the registrar accepts\n{accepted}"


def test_query_and_unregister_scenarios(kamailio, sipp):
    user = "k-query"
    empty = sipp("register_query.xml", kamailio.port, service=user, password=PW)
    assert empty.rc != 0, f"register_query.xml must fail when no binding is listed\n{empty}"
    assert sipp("register_query_empty.xml", kamailio.port, service=user, password=PW).ok()

    assert sipp("register.xml", kamailio.port, service=user, password=PW, keys={"expires": 600}).ok()
    q = sipp("register_query.xml", kamailio.port, service=user, password=PW)
    assert q.ok(), q
    final = received_messages(q.messages)[-1]
    assert final.startswith("SIP/2.0 200") and header_values(final, "Contact"), final
    not_empty = sipp("register_query_empty.xml", kamailio.port, service=user, password=PW)
    assert not_empty.rc != 0, f"register_query_empty.xml must fail when a binding is listed\n{not_empty}"

    u = sipp("unregister_all.xml", kamailio.port, service=user, password=PW)
    assert u.ok(), u
    assert sipp("register_query_empty.xml", kamailio.port, service=user, password=PW).ok()


def test_too_brief_scenario(kamailio, sipp):
    # Kamailio's min_expires is 60 (bench/kamailio-registrar.cfg)
    r = sipp("register_too_brief.xml", kamailio.port, service="k-brief", password=PW,
             keys={"expires": 10})
    assert r.ok(), r
    last = received_messages(r.messages)[-1]
    assert last.startswith("SIP/2.0 423") and header_values(last, "Min-Expires") == ["60"], last
    long_enough = sipp("register_too_brief.xml", kamailio.port, service="k-brief", password=PW,
                       keys={"expires": 120})
    assert long_enough.rc != 0, f"register_too_brief.xml must fail on a 200\n{long_enough}"


def test_options_scenario(kamailio, sipp):
    for t in ("u1", "t1"):
        r = sipp("options.xml", kamailio.port, transport=t)
        assert r.ok(), r


def test_load_scenario(kamailio, sipp, tmp_path):
    csv = tmp_path / "users.csv"
    csv.write_text("SEQUENTIAL\n" + "".join(f"k-load{i:03d};{PW}\n" for i in range(50)))
    r = sipp("register_load.xml", kamailio.port, inf=csv, calls=50, rate=100, limit=50,
             keys={"expires": 600}, trace_msg=False)
    assert r.ok(50), r

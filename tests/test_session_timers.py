"""RFC 4028 session timers on the caller's dialog: a caller that supports
timers but never refreshes is answered with Require: timer and
refresher=uac, and then hung up when the interval lapses; an interval
below Min-SE gets 422. The call comes in from a SIPp trunk on 127.0.0.2
and goes out to a SIPp UAS (the trunk's host)."""

import subprocess
from pathlib import Path

from conftest import free_port

SCEN = Path(__file__).resolve().parent.parent / "sipp-scenarios"


def run_sipp(args, cwd, timeout=40):
    return subprocess.run(["sipp", *args, "-nostdin", "-timeout", "25s", "-timeout_error",
                           "-trace_err"], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def trunk_setup(dialtone_factory, config):
    uas_port = free_port()
    d = dialtone_factory(config=config)
    d.add_trunk("carrier", f"127.0.0.1:{uas_port}", inbound_ips=["127.0.0.2"])
    d.add_number("5550100", "trunk:carrier")
    return d, uas_port


def test_unrefreshed_session_is_ended_with_bye(dialtone_factory, tmp_path):
    d, uas_port = trunk_setup(dialtone_factory, {"calls": {"session_expires_secs": 3, "min_se_secs": 1}})
    uas = subprocess.Popen(["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(uas_port), "-m", "1",
                            "-nostdin", "-timeout", "25s", "-timeout_error"], cwd=tmp_path,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        uac = run_sipp([f"127.0.0.1:{d.sip_port}", "-sf", str(SCEN / "uac_session_timer.xml"),
                        "-s", "5550100", "-key", "se", "3", "-m", "1", "-i", "127.0.0.2",
                        "-p", str(free_port())], cwd=tmp_path)
        assert uac.returncode == 0, uac.stdout[-2000:] + uac.stderr[-2000:] + "\n" + d.log()
        assert uas.wait(timeout=20) == 0, "the callee must get the BYE too"
    finally:
        if uas.poll() is None:
            uas.kill()
    calls = d.wait_calls(1)
    assert calls[0]["hangup_cause"] == "session timer expired", calls[0]
    assert calls[0]["outcome"] == "answered"


def test_interval_below_min_se_gets_422(dialtone_factory, tmp_path):
    d, _ = trunk_setup(dialtone_factory, {"calls": {"session_expires_secs": 1800, "min_se_secs": 90}})
    uac = run_sipp([f"127.0.0.1:{d.sip_port}", "-sf", str(SCEN / "uac_se_too_small.xml"),
                    "-s", "5550100", "-key", "se", "30", "-m", "1", "-i", "127.0.0.2",
                    "-p", str(free_port())], cwd=tmp_path)
    assert uac.returncode == 0, uac.stdout[-2000:] + uac.stderr[-2000:] + "\n" + d.log()

"""Late offer (RFC 3264 §5 via RFC 3261 §13.2.1): an INVITE without SDP is
forwarded without SDP, the callee's 2xx offer reaches the caller anchored at
dialtone's media address, and the caller's answer in its ACK goes on to the
callee in dialtone's ACK."""

import re
import subprocess
from pathlib import Path

from conftest import free_port

SCEN = Path(__file__).resolve().parent.parent / "sipp-scenarios"


def test_late_offer_call_completes_with_sdp_in_ack(dialtone_factory, tmp_path):
    uas_port = free_port()
    d = dialtone_factory()
    d.add_trunk("carrier", f"127.0.0.1:{uas_port}", inbound_ips=["127.0.0.2"])
    d.add_number("5550100", "trunk:carrier")
    uas_log = tmp_path / "uas_msgs.log"
    uas = subprocess.Popen(["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(uas_port), "-m", "1",
                            "-nostdin", "-timeout", "25s", "-timeout_error", "-trace_msg",
                            "-message_file", str(uas_log)],
                           cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        uac_log = tmp_path / "uac_msgs.log"
        uac = subprocess.run(["sipp", f"127.0.0.1:{d.sip_port}", "-sf", str(SCEN / "uac_late_offer.xml"),
                              "-s", "5550100", "-m", "1", "-d", "500", "-i", "127.0.0.2",
                              "-p", str(free_port()), "-mi", "127.0.0.2", "-mp", str(free_port()),
                              "-nostdin", "-timeout", "20s", "-timeout_error", "-trace_msg",
                              "-message_file", str(uac_log)],
                             cwd=tmp_path, capture_output=True, text=True, timeout=40)
        assert uac.returncode == 0, uac.stdout[-1500:] + "\n" + d.log()
        assert uas.wait(timeout=20) == 0
    finally:
        if uas.poll() is None:
            uas.kill()
    uas_text = uas_log.read_text()
    # The callee got an INVITE without a body …
    invite = uas_text[uas_text.index("INVITE sip:"):]
    assert re.search(r"Content-Length:\s*0", invite.split("\n\n", 1)[0]), invite[:800]
    # … and an ACK carrying the answer, anchored at dialtone (not 127.0.0.2).
    ack = uas_text[uas_text.index("ACK sip:"):]
    ack = ack[: ack.find("-----") if "-----" in ack else len(ack)]
    assert "m=audio" in ack, ack
    assert "c=IN IP4 127.0.0.1" in ack, ack
    # The offer the caller got points at dialtone's media address too.
    uac_text = uac_log.read_text()
    ok = uac_text[uac_text.index("SIP/2.0 200 OK"):]
    assert "c=IN IP4 127.0.0.1" in ok[:1500], ok[:1500]
    rec = d.wait_calls(1)[0]
    assert rec["outcome"] == "answered", rec

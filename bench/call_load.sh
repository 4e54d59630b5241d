#!/usr/bin/env bash
# bench/call_load.sh RATE SECONDS [options]
#
# Call load with RTP through dialtone on loopback: SIPp uac_load.xml from a
# trunk address (127.0.0.2) -> dialtone (B2BUA, RTP anchored) -> a registered
# SIPp uas_load.xml phone that echoes the RTP, RATE calls/s for SECONDS, each
# held --hold-ms (default 7500: SIPp's PCMA pcap is 236 packets, 30 ms each, 7.05 s). dialtone is started
# by the script with its own config and database ($DIALTONE_BIN, default
# target/release/dialtone). Prints successful/failed calls, dialtone's CPU
# per call, its RSS growth per concurrent call (VmRSS before and at the
# peak), its /metrics and call records afterwards, the RTP packets it
# relayed and lost (from the records' stats) and the kernel's UDP drops.
# Exit 0 only when every call succeeded.
#
# Options (bench/call_load.sh --help for all):
#   --hold-ms MS        call duration (default 7500)
#   --limit N           max concurrent calls (default 2*rate*hold)
#   --no-rtp            signalling only
#   --target kamailio   the same load through bench/kamailio-proxy.cfg (signalling baseline)
#   --out DIR           logs and summary.json (default bench/out/calls-...)
#   --sample-every S    a timeline of RSS, open fds and live calls every S seconds (bench/soak.sh)
# Examples:
#   bench/call_load.sh 20 30                      # 600 calls, ~150 concurrent, with RTP
#   bench/call_load.sh 100 20 --hold-ms 2000 --no-rtp --target kamailio
# Needs root for the RTP (SIPp plays its pcap with raw sockets).
set -euo pipefail
exec python3 "$(dirname "${BASH_SOURCE[0]}")/call_load.py" "$@"

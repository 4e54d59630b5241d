#!/usr/bin/env bash
# bench/call_compare.sh [SECONDS] [RATE...]
#
# The call benchmark's baseline comparison: the same SIPp call load
# (sipp-scenarios/uac.xml -> callee uas_load.xml; INVITE, 180, 200, ACK,
# hold 2 s, BYE, 200; UDP) at each RATE calls/s for SECONDS (default 10):
#   - through Kamailio 5.6 as a transaction-stateful, record-routing proxy
#     (bench/kamailio-proxy.cfg, 2 workers): the signalling baseline;
#   - through dialtone (B2BUA, RTP anchored but idle: no RTP is sent), in
#     the same run;
#   - and through dialtone again with RTP (the PCMA pcap from the caller,
#     echoed by the callee) for what media adds.
# Each line: target, rate, successful/failed calls, CPU ms per call, RSS
# per concurrent call, retransmissions. Everything on loopback; all the
# numbers come from bench/call_load.sh (see its header).
# dialtone is $DIALTONE_BIN (default target/release/dialtone).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SECS="${1:-10}"
shift || true
RATES=("$@")
[[ ${#RATES[@]} -gt 0 ]] || RATES=(20 50 100 200)
HOLD=2000
OUT="$ROOT/bench/out/calls-compare-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"

printf '%-18s %6s %8s %7s %11s %14s %9s\n' target rate ok failed "cpu_ms/call" "rss_kib/call" retrans | tee "$OUT/table.txt"
for rate in "${RATES[@]}"; do
    for run in kamailio dialtone dialtone+rtp; do
        dir="$OUT/$run-$rate"
        case "$run" in
            kamailio) args=(--target kamailio --no-rtp) ;;
            dialtone) args=(--target dialtone --no-rtp) ;;
            dialtone+rtp) args=(--target dialtone) ;;
        esac
        bench/call_load.sh "$rate" "$SECS" --hold-ms "$HOLD" "${args[@]}" --out "$dir" >/dev/null 2>&1 || true
        python3 - "$dir/summary.json" "$run" "$rate" <<'PY' | tee -a "$OUT/table.txt"
import json, sys
try:
    s = json.load(open(sys.argv[1]))
except (OSError, ValueError):
    print(f"{sys.argv[2]:18} {sys.argv[3]:>6}  (no summary: see {sys.argv[1]})"); sys.exit()
g = lambda k: "-" if s.get(k) is None else str(s[k])
print(f"{sys.argv[2]:18} {sys.argv[3]:>6} {g('successful'):>8} {g('failed'):>7} {g('target_cpu_ms_per_call'):>11} "
      f"{g('rss_kib_per_concurrent_call'):>14} {g('retransmissions'):>9}")
PY
    done
done
echo "logs: $OUT" >&2

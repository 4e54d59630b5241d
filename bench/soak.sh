#!/usr/bin/env bash
# bench/soak.sh [MINUTES] [CONCURRENT]
#
# Soak: CONCURRENT calls (default 50) with RTP held through dialtone for
# MINUTES (default 30), each call 7.5 s (SIPp's PCMA pcap), so a new call a
# 1/(CONCURRENT/7.5) s. It is bench/call_load.sh with a timeline: dialtone's
# RSS, open file descriptors and live calls sampled every 60 s, and both
# again after the load, to show whether memory or descriptors grow with
# time. Results in bench/out/soak-*/summary.json ("timeline", "rss_*",
# "fds_*"); exit 0 only when every call succeeded.
set -euo pipefail
MINUTES="${1:-30}"
CONCURRENT="${2:-50}"
RATE=$(python3 -c "print(round($CONCURRENT / 7.5, 3))")
OUT="${OUT:-bench/out/soak-$(date +%Y%m%d-%H%M%S)}"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec bench/call_load.sh "$RATE" "$((MINUTES * 60))" --hold-ms 7500 --sample-every 60 --out "$OUT"

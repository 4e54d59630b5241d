#!/usr/bin/env bash
# bench/rtpengine_relay.sh [STREAMS] [SECONDS] [more bench/media_relay.py options]
#
# The media-relay baseline: Debian's rtpengine (10.5, userspace forwarding
# only) relaying STREAMS RTP streams (default 50), both ways at 50 packets/s
# each, for SECONDS (default 10), on loopback. rtpengine is started by the
# script as
#   rtpengine -f -E --config-file=none -t -1 -i 127.0.0.1 -n 127.0.0.1:2223 \
#             -m 30000 -M 40000 --num-threads=2
# and each stream is set up with the ng protocol (bencode over UDP: offer,
# answer), then a Python sender/receiver blasts RTP through it. Prints the
# packets sent/received, loss, and rtpengine's CPU per relayed packet.
# The same load through dialtone's relay, for comparison:
#   python3 bench/media_relay.py --target dialtone --streams 50 --seconds 10
# Needs: scripts/setup.sh --bench (installs rtpengine-daemon).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STREAMS="${1:-50}"
SECS="${2:-10}"
shift 2 || shift $# || true
exec python3 "$ROOT/bench/media_relay.py" --target rtpengine --streams "$STREAMS" --seconds "$SECS" "$@"

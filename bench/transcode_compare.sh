#!/usr/bin/env bash
# bench/transcode_compare.sh [CALLS...] [SECONDS]
#
# PCMU <-> Opus transcoding load: rtpengine 10.5 and dialtone, one after the
# other, for each number of concurrent calls in CALLS (default 50 100 150
# 200), SECONDS each (default 10). With two or more arguments the last one is
# SECONDS; a single argument is one CALLS value. TARGETS="rtpengine dialtone"
# (the default) picks the targets.
#
# Every call is bench/media_relay.py --transcode: side A (the offerer: the
# trunk on 127.0.0.2 for dialtone) sends PCMU only (PT 0, 160-byte payloads,
# 20 ms, a 1 kHz tone); side B (the answerer: the registered phone for
# dialtone) sends Opus only (opus/48000/2 at the PT the relay offered it,
# 20 ms, timestamps +960, a 400 Hz tone pre-encoded once with libopus via
# ctypes: mono, VOIP, 32 kbit/s). Both ways at 50 packets/s per call.
#   rtpengine: rtpengine -f -E --config-file=none -t -1 -i 127.0.0.1 \
#                -n 127.0.0.1:2223 -m 30000 -M 40000 --num-threads=2 -L 4
#              (userspace only), ng offer with A's PCMU-only SDP and
#              "codec": {"transcode": ["opus"]}, ng answer with B's Opus-only
#              SDP. rtpengine's Opus encoder is its own (ffmpeg's libopus
#              wrapper: 48 kHz, 2 channels, 32 kbit/s target; see README).
#   dialtone:  $DIALTONE_BIN (default target/release/dialtone) with its own
#              config; the trunk offers PCMU + telephone-event, dialtone must
#              offer the phone opus/48000/2 (else the row says so).
#
# One table row per target and call count:
#   lost A->B, B->A   frames missing inside the calls: frames between a
#                     call's first and last received frame that never came,
#                     by RTP timestamp (a transcoding relay renumbers sequence
#                     numbers, but each frame advances the timestamp a frame)
#   missing at edges  sent - received - lost, i.e. before a call's first
#                     delivered packet or after its last one (rtpengine drops
#                     each transcoded stream's first packet, and under load
#                     still holds a frame or two when the senders stop); the
#                     largest count for one call and direction in parentheses
#   reordered         frames that arrived after a later frame of their stream
#                     (by timestamp; both directions)
#   wrong PT          packets with another payload type than the side speaks
#   tone ok           of 20 sampled calls, those whose received audio decodes
#                     to the other side's tone (A->B: Opus at B, B->A: PCMU at A)
#   CPU               the media process's CPU: ms per second of call, % of one core
#   generator         the generator's own CPU (it shares the cores; it runs at
#                     nice -10 once the relay is up, to keep its 20 ms
#                     schedule) and, in parentheses, the worst lateness of a
#                     send batch in ms (late batches arrive bunched)
#   others            CPU every other process on the host used meanwhile
#   Opus to B         the rate of the Opus the relay sends B
# The last lines give, per target, the most calls (the highest count below
# the first failing one) with no loss, at most 3 packets (60 ms) missing at
# the edges of any call and direction, no wrong payload type and every
# sampled tone ok: the figure for BENCHMARKS.md.
# Other work on the host skews all of this: before each run the script waits
# (QUIET_WAIT s at most, default 600) until the host is at most QUIET_PCT %
# (default 20) of one core busy; the "others" column shows what still ran.
# Outputs: bench/out/transcode-<time>/<target>-<calls>/ (summary.json, the
# rewritten SDPs, the relay's log).
# Needs: scripts/setup.sh --bench (rtpengine-daemon), libopus0, and
# `cargo build --release -p dialtone`.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ARGS=("$@")
SECS=10
if [ "${#ARGS[@]}" -ge 2 ]; then
    SECS="${ARGS[-1]}"
    unset 'ARGS[-1]'
fi
[ "${#ARGS[@]}" -eq 0 ] && ARGS=(50 100 150 200)
TARGETS="${TARGETS:-rtpengine dialtone}"
QUIET_PCT="${QUIET_PCT:-20}"     # before each run, wait until the host is this idle
QUIET_WAIT="${QUIET_WAIT:-600}"  # (busy % of one core over 3 s), for at most this many s

host_busy_pct() {  # % of one core the host is busy over 3 s (/proc/stat)
    local t=$(getconf CLK_TCK) x y
    x=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat); sleep 3
    y=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat)
    echo $(( (y - x) * 100 / 3 / t ))
}

wait_quiet() {
    local start=$SECONDS busy
    while :; do
        busy=$(host_busy_pct)
        [ "$busy" -le "$QUIET_PCT" ] && return 0
        if [ $((SECONDS - start)) -ge "$QUIET_WAIT" ]; then
            echo "host still ${busy}% busy after ${QUIET_WAIT} s: running anyway (see 'others % core')" >&2
            return 0
        fi
        sleep 10
    done
}
OUT="$ROOT/bench/out/transcode-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
echo "transcoding PCMU (A) <-> Opus (B), ${SECS} s per run, calls: ${ARGS[*]}, targets: $TARGETS" | tee "$OUT/table.md"
echo "outputs: $OUT"
{
    echo
    echo "| calls | target | lost A->B | lost B->A | missing at edges A->B / B->A (max per call) | reordered | wrong PT | tone ok A->B / B->A | CPU ms per call-second | % of one core | generator % core (max lag ms) | others % core | Opus to B |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
} | tee -a "$OUT/table.md"

for calls in "${ARGS[@]}"; do
    for target in $TARGETS; do
        dir="$OUT/$target-$calls"
        mkdir -p "$dir"
        wait_quiet
        python3 "$ROOT/bench/media_relay.py" --target "$target" --transcode --streams "$calls" \
            --seconds "$SECS" --out "$dir" >"$dir/stdout.txt" 2>"$dir/stderr.txt"
        rc=$?
        python3 - "$dir" "$calls" "$target" "$rc" <<'EOF' | tee -a "$OUT/table.md"
import json, sys
from pathlib import Path
d, calls, target, rc = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
f = d / "summary.json"
if rc != 0 or not f.exists():
    err = (d / "stderr.txt").read_text().strip().splitlines()
    why = "dialtone did not offer opus: transcoding not available" if rc == 3 else (err[-1] if err else f"exit {rc}")
    print(f"| {calls} | {target} | - | - | - | - | - | - | - | - | - | - | failed: {why} |")
    sys.exit()
s = json.loads(f.read_text())
def lost(n, sent):
    return f"{n} ({100.0 * n / sent:.2f} %)" if sent else "-"
print(f"| {calls} | {target} | {lost(s['lost_a_to_b'], s['sent_a_to_b'])} "
      f"| {lost(s['lost_b_to_a'], s['sent_b_to_a'])} "
      f"| {s['edge_a_to_b']} / {s['edge_b_to_a']} ({s['max_edge_per_stream']}) | {s['reordered']} "
      f"| {s['wrong_pt_at_b'] + s['wrong_pt_at_a']} | {s['tone_ok_a_to_b']} / {s['tone_ok_b_to_a']} "
      f"| {s['relay_cpu_ms_per_call_second']} | {s['relay_cpu_percent_of_one_core']} "
      f"| {s['generator_cpu_percent_of_one_core']} ({s['generator_max_send_lag_ms']}) "
      f"| {s['other_processes_cpu_percent_of_one_core']} "
      f"| {s['opus_to_b_kbit_s']} kbit/s |")
EOF
    done
done

python3 - "$OUT" $TARGETS <<'EOF' | tee -a "$OUT/table.md"
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
print()
for target in sys.argv[2:]:
    best, first_bad = None, None
    for d in sorted(out.glob(f"{target}-*"), key=lambda p: int(p.name.rsplit("-", 1)[1])):
        calls = int(d.name.rsplit("-", 1)[1])
        f = d / "summary.json"
        clean = False
        if f.exists():
            s = json.loads(f.read_text())
            a, b = s["tone_ok_a_to_b"].split("/"), s["tone_ok_b_to_a"].split("/")
            clean = (s["lost_a_to_b"] == 0 and s["lost_b_to_a"] == 0 and s["max_edge_per_stream"] <= 3
                     and s["wrong_pt_at_a"] == 0 and s["wrong_pt_at_b"] == 0
                     and a[0] == a[1] and b[0] == b[1] and s["streams_with_no_packets"] == 0)
        if not clean:
            first_bad = calls
            break
        best = calls
    print(f"{target}: most calls with no loss: {best if best is not None else 'none of those run'}"
          + (f" (first failing: {first_bad})" if first_bad is not None else " (none failed)"))
EOF

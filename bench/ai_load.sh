#!/usr/bin/env bash
# bench/ai_load.sh [SCENARIO [CALLS...]]
#
# The AI-bridge benchmark of BENCHMARKS.md. Starts dialtone ($DIALTONE_BIN,
# default target/release/dialtone) with its own config and SQLite database
# in a temp dir, provisions a trunk for 127.0.0.2, an OpenAI persona whose
# URL points at the load peer, and a number routed to it; then runs the
# load peer (target/release/ai-load, crate bench/ai-load) once per step:
# CALLS concurrent calls from 127.0.0.2, caller RTP at 50 packets/s each, the
# peer playing the realtime model. Before each step it waits (at most
# QUIET_WAIT s) for the host's 1-minute load to drop below QUIET_LOAD. Per
# step it records the peer's summary (latency both ways, barge-in, loss,
# late playout, dialtone's and the peer's CPU over the window), dialtone's
# RSS idle / with the calls up / after they ended, and /metrics afterwards.
#
#   SCENARIO  latency  one 20 ms delta per call every 500 ms (playout queue empty):
#                      RTP in -> append out, delta in -> RTP out   (default CALLS: 20)
#             bargein  3 s of agent audio queued, speech_started after 1 s,
#                      every 2.5 s per call: speech_started -> silence (default 20)
#             load     the model streams at real time, continuously: loss,
#                      gaps > 40 ms, order, CPU, RSS per call (default 50 100 200 300 400 500)
#             all      latency 20, bargein 20, then the load ramp
#
# Environment: SECONDS_PER_STEP (measurement window, default 20), WARMUP (2),
# CPS (call set-up rate, 50), QUIET_LOAD (0.7), QUIET_WAIT (240), NO_BUILD=1
# (use the binaries as they are), PEER_ARGS (more ai-load options), PEER_NICE
# (e.g. -10: run the peer at a higher priority than dialtone), TRIM=1 (after
# each step, also the RSS after glibc's malloc_trim(0) in dialtone, through
# gdb: how much of what stays is freed memory the allocator kept), OUT (dir).
# Outputs: bench/out/ai-load-DATE/: STEP.json and STEP.txt (the peer's
# summary), metrics-STEP.txt, table.txt, dialtone.stderr.
# Exit 0 when every step's calls were all set up and hung up cleanly.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SCENARIO="${1:-all}"
shift || true
STEPS=("$@")
SECS="${SECONDS_PER_STEP:-20}"
WARMUP="${WARMUP:-2}"
CPS="${CPS:-50}"
QUIET_LOAD="${QUIET_LOAD:-0.7}"
QUIET_WAIT="${QUIET_WAIT:-240}"
SIP_PORT="${SIP_PORT:-25160}" HTTP_PORT="${HTTP_PORT:-28180}" WS_PORT="${WS_PORT:-28190}"
BIN="${DIALTONE_BIN:-$ROOT/target/release/dialtone}"
PEER="$ROOT/target/release/ai-load"
NUMBER=15550100
export AI_LOAD_KEY="bench-key-$RANDOM$RANDOM"

case "$SCENARIO" in
    latency|bargein) [[ ${#STEPS[@]} -gt 0 ]] || STEPS=(20) ;;
    load) [[ ${#STEPS[@]} -gt 0 ]] || STEPS=(50 100 200 300 400 500) ;;
    all) STEPS=() ;;
    *) echo "usage: $0 [latency|bargein|load|all] [CALLS...]" >&2; exit 2 ;;
esac

if [[ -z "${NO_BUILD:-}" ]]; then
    cargo build --release -p dialtone -p ai-load >&2
fi
# Two sockets per call on each side, and the websockets.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

WORK="$(mktemp -d /tmp/dialtone-aibench.XXXXXX)"
OUT="${OUT:-$ROOT/bench/out/ai-load-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
cat >"$WORK/dialtone.toml" <<CFG
[sip]
listen = ["udp:127.0.0.1:$SIP_PORT"]
domain = "127.0.0.1"
[media]
rtp_ports = "30000-34999"
advertise_ip = "127.0.0.1"
[recording]
dir = "$WORK/recordings"
[database]
url = "sqlite://$WORK/dialtone.db"
[http]
listen = "127.0.0.1:$HTTP_PORT"
[log]
level = "warn"
CFG

DT_PID=""
cleanup() {
    if [[ -n "$DT_PID" ]] && kill -0 "$DT_PID" 2>/dev/null; then
        kill -TERM "$DT_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$DT_PID" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$DT_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

dt() { "$BIN" --config "$WORK/dialtone.toml" "$@"; }
dt trunk add carrier --host 127.0.0.2:5099 --inbound-ip 127.0.0.2 >/dev/null
dt persona add bench --provider openai --url "ws://127.0.0.1:$WS_PORT/v1/realtime" \
    --api-key-env AI_LOAD_KEY --instructions "ai-load bench, caller AILOADCALL={caller_number}" \
    --idle-timeout-secs 0 --no-transcription >/dev/null
dt number add "$NUMBER" --to persona:bench >/dev/null

"$BIN" --config "$WORK/dialtone.toml" run >"$OUT/dialtone.stdout" 2>"$OUT/dialtone.stderr" </dev/null &
DT_PID=$!
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null && break
    sleep 0.1
done
curl -sf "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null || { echo "dialtone did not start" >&2; cat "$OUT/dialtone.stderr" >&2; exit 1; }

rss() { awk '/^VmRSS:/ {print $2}' "/proc/$DT_PID/status"; }
gauges() {
    curl -sf "http://127.0.0.1:$HTTP_PORT/metrics" |
        awk '/^dialtone_(ai_calls_active|calls_active|media_endpoints) / {printf "%s=%s ", substr($1, 10), $2}'
}
wait_quiet() {
    local waited=0 load
    while :; do
        load="$(cut -d' ' -f1 /proc/loadavg)"
        awk -v l="$load" -v q="$QUIET_LOAD" 'BEGIN { exit !(l < q) }' && break
        if (( waited >= QUIET_WAIT )); then
            echo "host still busy (1-min load $load) after ${QUIET_WAIT} s: measuring anyway" >&2
            break
        fi
        sleep 5
        waited=$((waited + 5))
    done
    echo "$load"
}

FRESH_RSS="$(rss)"
echo "dialtone pid $DT_PID, idle RSS $FRESH_RSS KiB; output in $OUT" | tee "$OUT/table.txt"
STATUS=0
step() {
    local scenario=$1 calls=$2
    local name="$scenario-$calls"
    local load idle up_rss after g
    load="$(wait_quiet)"
    idle="$(rss)"
    local limit=$(( calls / CPS + ${SECS%.*} + ${WARMUP%.*} + 90 ))
    echo "-- $name (1-min load $load before)" >&2
    # shellcheck disable=SC2086
    local nice=()
    [[ -n "${PEER_NICE:-}" ]] && nice=(nice -n "$PEER_NICE")
    if ! timeout "$limit" "${nice[@]}" "$PEER" --scenario "$scenario" --calls "$calls" --cps "$CPS" \
        --seconds "$SECS" --warmup "$WARMUP" --sip "127.0.0.1:$SIP_PORT" --number "$NUMBER" \
        --ws-listen "127.0.0.1:$WS_PORT" --api-key "$AI_LOAD_KEY" --pid "$DT_PID" \
        --label "$name" --json "$OUT/$name.json" ${PEER_ARGS:-} >"$OUT/$name.txt" 2>"$OUT/$name.stderr"; then
        STATUS=1
    fi
    cat "$OUT/$name.txt" >&2
    # The calls' teardown: gauges back to 0 (bounded), then memory settles.
    for _ in $(seq 30); do
        g="$(gauges)"
        [[ "$g" == *"ai_calls_active=0 calls_active=0 media_endpoints=0 "* ]] && break
        sleep 0.5
    done
    sleep 3
    after="$(rss)"
    if [[ -n "${TRIM:-}" ]]; then
        gdb -p "$DT_PID" -batch -ex 'call (int) malloc_trim(0)' >/dev/null 2>&1 || true
        sleep 1
        echo "$name: RSS after the calls $after KiB, after malloc_trim(0) $(rss) KiB" | tee -a "$OUT/table.txt" >&2
    fi
    g="$(gauges)"
    echo "$g" >"$OUT/metrics-$name.txt"
    python3 - "$OUT/$name.json" "$load" "$idle" "$after" "$g" <<'PY' | tee -a "$OUT/table.txt"
import json, sys
path, load, idle, after, gauges = sys.argv[1:6]
try:
    s = json.load(open(path))
except (OSError, ValueError) as e:
    print(f"{path}: no summary ({e})"); sys.exit(0)
def _g(d, ks):
    for k in ks:
        d = d.get(k) if isinstance(d, dict) else None
    return d
ms = lambda us: "-" if us is None else f"{us / 1000:.3f}"
up, calls = s["up"], s["calls"]
c2m, m2c, b = s["caller_to_model"], s["model_to_caller"], s["barge_in"]
dt = s.get("dialtone") or {}
rss_up = dt.get("rss_kib")
per_call = (rss_up - int(idle)) / up if rss_up and up else None
print(f"{s['label']:>12}  load {load}  up {up}/{calls}  "
      f"c->m lost {c2m['lost']}/{c2m['expected']}  "
      f"RTP->append p50/p99 {ms(_g(c2m, ['latency', 'p50_us']))}/{ms(_g(c2m, ['latency', 'p99_us']))} ms  "
      f"m->c lost {m2c['lost']} ooo {m2c['out_of_order']} gaps>40ms {m2c['gaps_over_40ms']} "
      f"underruns {m2c['underruns']}  "
      f"delta->RTP p50/p99 {ms(_g(m2c, ['latency', 'p50_us']))}/{ms(_g(m2c, ['latency', 'p99_us']))} ms  "
      f"barge p50/p99 {ms(_g(b, ['to_last_agent_packet', 'p50_us']))}/{ms(_g(b, ['to_last_agent_packet', 'p99_us']))} ms "
      f"(silence {ms(_g(b, ['to_first_silence_packet', 'p50_us']))}/{ms(_g(b, ['to_first_silence_packet', 'p99_us']))})  "
      f"dialtone {dt.get('pct_core')} % core {dt.get('us_per_call_second')} us/call-s  "
      f"peer {s['peer']['pct_core']} %  others {s['others_pct_core']} %  "
      f"RSS idle {idle} up {rss_up} after {after} KiB"
      + (f" ({per_call:.0f} KiB/call)" if per_call is not None else "")
      + f"  after: {gauges}")
PY
}

if [[ "$SCENARIO" == all ]]; then
    step latency 20
    step bargein 20
    for n in 50 100 200 300 400 500; do step load "$n"; done
else
    for n in "${STEPS[@]}"; do step "$SCENARIO" "$n"; done
fi
echo "fresh idle RSS $FRESH_RSS KiB, now $(rss) KiB" | tee -a "$OUT/table.txt"
exit "$STATUS"

#!/usr/bin/env bash
# bench/register_compare.sh [SECONDS] [RATE...]
#
# The registrar benchmark of BENCHMARKS.md: the same SIPp load
# (sipp-scenarios/register_load.xml: REGISTER, 401, REGISTER with MD5
# digest, 200; one of 2000 users per registration) against dialtone's
# release build and, in the same run, against Kamailio 5.6 as an in-memory
# registrar (bench/kamailio-registrar.cfg, 2 worker processes). Each rate
# runs SECONDS (default 10) against one, then the other. Prints one line per
# target and rate: failures, achieved rate, CPU µs per registration.
# Everything on loopback; dialtone's database is a fresh SQLite file.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SECS="${1:-10}"
shift || true
RATES=("$@")
[[ ${#RATES[@]} -gt 0 ]] || RATES=(500 1000 2000 4000 8000)
USERS=2000
DT_PORT=25060 KAM_PORT=25070 HTTP_PORT=28080

# $DIALTONE_BIN: another build to measure (e.g. an earlier commit's, for a
# before/after in one run); by default the release build, built here.
if [[ -z "${DIALTONE_BIN:-}" ]]; then cargo build --release -p dialtone >&2; fi
BIN="${DIALTONE_BIN:-$ROOT/target/release/dialtone}"
WORK="$(mktemp -d /tmp/dialtone-regbench.XXXXXX)"
OUT="$ROOT/bench/out/register-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT" "$WORK/kam"
cat >"$WORK/dialtone.toml" <<CFG
[sip]
listen = ["udp:127.0.0.1:$DT_PORT"]
domain = "127.0.0.1"
[database]
url = "sqlite://$WORK/dialtone.db"
[http]
listen = "127.0.0.1:$HTTP_PORT"
[log]
level = "warn"
CFG

cleanup() {
    [[ -n "${DT_PID:-}" ]] && kill "$DT_PID" 2>/dev/null || true
    [[ -f "$WORK/kam/kamailio.pid" ]] && kill "$(cat "$WORK/kam/kamailio.pid")" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap cleanup EXIT

echo "provisioning $USERS users in dialtone (sqlite)..." >&2
python3 - "$BIN" "$WORK/dialtone.toml" "$USERS" <<'PY'
import subprocess, sys
from concurrent.futures import ThreadPoolExecutor
binp, cfg, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
def add(i):
    subprocess.run([binp, "--config", cfg, "user", "add", f"load{i:05d}", "--password", "secret"],
                   check=True, capture_output=True, timeout=30)
with ThreadPoolExecutor(2) as ex:
    list(ex.map(add, range(1, n + 1)))
PY

"$BIN" --config "$WORK/dialtone.toml" run 2>"$OUT/dialtone.stderr" &
DT_PID=$!
kamailio -f bench/kamailio-registrar.cfg -DD -E -m 256 -M 16 -n 2 -b 4194304 \
    -A KAM_PORT=$KAM_PORT -P "$WORK/kam/kamailio.pid" -Y "$WORK/kam" 2>"$OUT/kamailio.stderr" &
for _ in $(seq 50); do
    curl -sf "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null && [[ -s "$WORK/kam/kamailio.pid" ]] && break
    sleep 0.2
done

printf '%-9s %6s %10s %8s %10s %12s\n' target rate ok failed "achieved/s" "cpu_us/reg" | tee "$OUT/table.txt"
for rate in "${RATES[@]}"; do
    for target in dialtone kamailio; do
        if [[ $target == dialtone ]]; then port=$DT_PORT pid=$DT_PID; else port=$KAM_PORT pid=$(cat "$WORK/kam/kamailio.pid"); fi
        dir="$OUT/$target-$rate"
        bench/register_load.sh "$port" "$rate" "$SECS" --pid "$pid" --users "$USERS" --out "$dir" >/dev/null 2>&1 || true
        python3 - "$dir/summary.json" "$target" "$rate" <<'PY' | tee -a "$OUT/table.txt"
import json, sys
s = json.load(open(sys.argv[1]))
g = lambda *ks: str(next((s[k] for k in ks if s.get(k) is not None), "-"))
print(f"{sys.argv[2]:9} {sys.argv[3]:>6} {g('successful'):>10} {g('failed'):>8} {g('achieved_rate'):>10} {g('target_cpu_us_per_registration'):>12}  retrans={g('retransmissions')} cs/reg={g('target_context_switches_per_registration')}")
PY
    done
done
echo "logs: $OUT" >&2

#!/usr/bin/env bash
# Fuzzes dialtone's parsers of untrusted input with cargo fuzz (libFuzzer):
# the fuzz/ crate's targets (SIP messages and header values, SDP, RTP/RTCP,
# RFC 4733 telephone-events, the realtime providers' server events, call
# action and tool arguments), each for SECONDS, seeded from fuzz/seeds/TARGET.
# See FUZZING.md.
#   1. the nightly toolchain and cargo-fuzz, installed when missing
#   2. cargo +nightly fuzz build: every target, with debug assertions and
#      overflow checks (-a), in fuzz/target (never the workspace's target/)
#   3. each target for SECONDS; what it finds beyond the seeds is kept in
#      fuzz/corpus/TARGET (ignored by git) and reused by the next run
# Fails when a target crashes (panic, overflow, timeout, out of memory):
# the input is in fuzz/artifacts/TARGET/, to replay with
#   cd fuzz && cargo +nightly fuzz run -s none -a TARGET artifacts/TARGET/crash-…
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]   (SECONDS default 30; all targets)
# Env:   FUZZ_SANITIZER  none (default: the code under test forbids unsafe,
#                        and it is 2-3x faster) or address
#        FUZZ_ARGS       extra libFuzzer flags, e.g. "-jobs=2 -workers=2"
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT/fuzz"

SECONDS_PER_TARGET="${1:-30}"
shift || true
[[ "$SECONDS_PER_TARGET" =~ ^[0-9]+$ ]] || {
    echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2
    exit 2
}
SANITIZER="${FUZZ_SANITIZER:-none}"
TOOLCHAIN=nightly

log() { printf '\n==> fuzz: %s\n' "$*"; }

if ! rustup toolchain list | grep -q "^$TOOLCHAIN"; then
    log "installing the $TOOLCHAIN toolchain"
    rustup toolchain install "$TOOLCHAIN" --profile minimal
fi
if ! cargo +"$TOOLCHAIN" fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

BUILD=(-s "$SANITIZER" -a)
log "cargo +$TOOLCHAIN fuzz build ${BUILD[*]}"
cargo +"$TOOLCHAIN" fuzz build "${BUILD[@]}"

if [[ $# -gt 0 ]]; then
    TARGETS=("$@")
else
    mapfile -t TARGETS < <(cargo +"$TOOLCHAIN" fuzz list)
fi

mkdir -p out
failed=()
summary=()
for t in "${TARGETS[@]}"; do
    log "$t for ${SECONDS_PER_TARGET}s"
    mkdir -p "corpus/$t"
    seeds=()
    [[ -d "seeds/$t" ]] && seeds=("seeds/$t")
    # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
    if cargo +"$TOOLCHAIN" fuzz run "${BUILD[@]}" "$t" "corpus/$t" "${seeds[@]}" -- \
        -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 ${FUZZ_ARGS:-} >"out/$t.log" 2>&1; then
        result=ok
    else
        result=CRASH
        failed+=("$t")
        grep -E "panicked at|ERROR: libFuzzer|SUMMARY|Test unit written" "out/$t.log" | head -20 || true
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "out/$t.log" | tail -1)
    done_line=$(grep -E '^#[0-9]+.*(DONE|cov:)' "out/$t.log" | tail -1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$done_line")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$done_line")
    corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' <<<"$done_line")
    summary+=("$(printf '%-18s %-6s runs=%-10s cov=%-6s ft=%-6s corpus=%s' \
        "$t" "$result" "${runs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}")")
done

log "summary (${SECONDS_PER_TARGET}s per target; logs in fuzz/out/)"
printf '%s\n' "${summary[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzz: crashes in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi

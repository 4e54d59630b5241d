#!/usr/bin/env bash
# THE test command of the project (CI runs it with CI=true on a fresh clone):
#   1. scripts/setup.sh                 tools the tests need (SIPp, baresip, kamailio, sox, pytest venv)
#   2. cargo fmt --all -- --check
#   3. cargo clippy --workspace --all-targets -- -D warnings
#   4. cargo test --workspace --release
#   5. cargo build --release -p dialtone  (the binary the e2e tests and benchmarks drive)
#   6. scripts/fuzz.sh $FUZZ_SECONDS    every cargo-fuzz target for a short run (fuzz/, nightly),
#                                       at nice 19 beside step 7 (its log: target/fuzz-ci.log)
#   7. pytest -q tests/                 end-to-end tests against $DIALTONE_BIN
#   The run fails when step 7 or step 6 does.
# Usage: scripts/test.sh [extra pytest args...]
# Env:   DIALTONE_BIN  the binary for step 7 (default target/<profile>/dialtone)
#        BUILD_PROFILE=debug build and test in the dev profile instead (default: release)
#        SKIP_CARGO=1  skip steps 2-6 (iterate on the e2e tests only)
#        FUZZ_SECONDS  seconds per fuzz target in step 6 (default 15; 0 skips it)
#
# Why release for the unit tests too: the machine has 2 cores; `cargo test`
# in the dev profile plus a release build of the binary would compile every
# dependency twice. With --release both steps share one set of artifacts.
# (The price: unit tests run without debug assertions/overflow checks.)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

step() { printf '\n==> %s\n' "$*"; }

step "scripts/setup.sh"
scripts/setup.sh

BUILD_PROFILE="${BUILD_PROFILE:-release}"
case "$BUILD_PROFILE" in
    release) PROFILE_FLAG=(--release) ;;
    debug) PROFILE_FLAG=() ;;
    *) echo "BUILD_PROFILE must be release or debug, not $BUILD_PROFILE" >&2; exit 2 ;;
esac

if [[ "${SKIP_CARGO:-}" != 1 ]]; then
    step "cargo fmt --all -- --check"
    cargo fmt --all -- --check

    step "cargo clippy --workspace --all-targets -- -D warnings"
    cargo clippy --workspace --all-targets -- -D warnings

    step "cargo test --workspace ${PROFILE_FLAG[*]}"
    cargo test --workspace "${PROFILE_FLAG[@]}"

    step "cargo build ${PROFILE_FLAG[*]} -p dialtone"
    cargo build "${PROFILE_FLAG[@]}" -p dialtone
fi

# The fuzz build (its own nightly target dir) and runs are CPU work while
# the e2e tests mostly wait on sockets: at nice 19 the fuzzer takes only the
# CPU the tests leave idle, and the two steps overlap.
fuzz_pid=
FUZZ_LOG="$ROOT/target/fuzz-ci.log"
if [[ "${SKIP_CARGO:-}" != 1 && "${FUZZ_SECONDS:-15}" != 0 ]]; then
    step "scripts/fuzz.sh ${FUZZ_SECONDS:-15} (nice 19, in the background; log: $FUZZ_LOG)"
    mkdir -p "$(dirname "$FUZZ_LOG")"
    # Its own process group (setsid), so that an interrupted run stops it.
    setsid nice -n 19 scripts/fuzz.sh "${FUZZ_SECONDS:-15}" >"$FUZZ_LOG" 2>&1 &
    fuzz_pid=$!
    trap 'kill -- -"$fuzz_pid" 2>/dev/null || true' EXIT
fi

export DIALTONE_BIN="${DIALTONE_BIN:-target/$BUILD_PROFILE/dialtone}"
step "pytest -q tests/ (DIALTONE_BIN=$DIALTONE_BIN)"
set +e
tests/.venv/bin/pytest -q tests/ "$@"
rc=$?
set -e
if [[ $rc == 5 ]]; then
    echo "pytest collected no tests: that is a failure" >&2
    rc=1
fi

if [[ -n "$fuzz_pid" ]]; then
    step "scripts/fuzz.sh (waiting for it)"
    set +e
    wait "$fuzz_pid"
    fuzz_rc=$?
    set -e
    sed -n '/==> fuzz: summary/,$p' "$FUZZ_LOG"
    if [[ $fuzz_rc != 0 ]]; then
        tail -40 "$FUZZ_LOG"
        echo "scripts/fuzz.sh failed (exit $fuzz_rc): see $FUZZ_LOG" >&2
        [[ $rc == 0 ]] && rc=1
    fi
fi
exit $rc

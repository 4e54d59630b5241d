#!/usr/bin/env bash
# Installs what building dialtone, the end-to-end tests and the benchmarks
# need, when missing:
#   - to build: libopus-dev and pkg-config (audiopus links the system libopus;
#     without them its build falls back to compiling Opus with cmake)
#   - Debian packages: sip-tester (SIPp), baresip-core (with its opus
#     module), kamailio, sox, and docker-compose when `docker compose` is
#     not there (to validate docker-compose.yml; no daemon is needed)
#   - with --bench also: rtpengine-daemon (the media-relay baseline of
#     bench/rtpengine_relay.sh; the test suite never needs it)
#   - tests/.venv: a Python virtualenv with tests/requirements.txt (pinned:
#     pytest, pytest-timeout, the realtime peers: websockets, openai,
#     google-genai, and the MCP client: mcp)
#   - tests/node_modules: the MCP Inspector CLI (tests/package.json, pinned,
#     with its lock file), when node and npm are there; without them
#     tests/test_mcp.py skips its Inspector test and says why
# With --build only the build prerequisites (scripts/run.sh uses that).
# Idempotent, and fast (well under 2 s) when everything is already present.
# Usage: scripts/setup.sh [--bench | --build]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/tests/.venv"
REQUIREMENTS="$ROOT/tests/requirements.txt"
BUILD_PACKAGES=(libopus-dev pkg-config)
APT_PACKAGES=("${BUILD_PACKAGES[@]}" sip-tester baresip-core kamailio sox)
BINARIES=(pkg-config sipp baresip kamailio sox)
BUILD_ONLY=0
for arg in "$@"; do
    case "$arg" in
        --bench) APT_PACKAGES+=(rtpengine-daemon); BINARIES+=(rtpengine) ;;
        --build) BUILD_ONLY=1; APT_PACKAGES=("${BUILD_PACKAGES[@]}"); BINARIES=(pkg-config) ;;
        *) echo "usage: scripts/setup.sh [--bench | --build]" >&2; exit 2 ;;
    esac
done

log() { echo "setup: $*" >&2; }

# tests/test_compose.py validates docker-compose.yml with `docker compose
# config`, or Debian's docker-compose (1.29) where the plugin is absent.
if ((!BUILD_ONLY)) && ! docker compose version >/dev/null 2>&1; then
    APT_PACKAGES+=(docker-compose)
    BINARIES+=(docker-compose)
fi

# --- Debian packages -------------------------------------------------------
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    # dpkg-query is much faster than apt; "install ok installed" means present.
    status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
    if [[ "$status" != "install ok installed" ]]; then
        missing+=("$pkg")
    fi
done

if ((${#missing[@]})); then
    log "missing Debian packages: ${missing[*]}"
    SUDO=()
    if [[ "$(id -u)" != 0 ]]; then
        if command -v sudo >/dev/null 2>&1; then
            SUDO=(sudo)
        else
            log "not root and no sudo: install these by hand: apt-get install ${missing[*]}"
            exit 1
        fi
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}"
    # The kamailio and rtpengine packages may try to start system services;
    # we never rely on them (the tests and benchmarks start their own).
fi

for bin in "${BINARIES[@]}"; do
    command -v "$bin" >/dev/null 2>&1 || { log "still missing after install: $bin"; exit 1; }
done

if ((BUILD_ONLY)); then
    log "ok (build prerequisites)"
    exit 0
fi

# --- Python venv with pytest -----------------------------------------------
# The venv is (re)filled when tests/requirements.txt changed since the last
# install: a copy of it is kept in the venv as the stamp.
PYTHON="${PYTHON:-python3}"
stamp="$VENV/.dialtone-requirements"
if [[ -x "$VENV/bin/python" && -f "$stamp" ]] && cmp -s "$stamp" "$REQUIREMENTS"; then
    :
else
    log "installing $(tr '\n' ' ' <"$REQUIREMENTS")into $VENV"
    if [[ ! -x "$VENV/bin/python" ]]; then
        "$PYTHON" -m venv "$VENV"
    fi
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQUIREMENTS"
    cp "$REQUIREMENTS" "$stamp"
fi

# --- MCP Inspector CLI (npm, project-local) ----------------------------------
# Refilled when tests/package.json or its lock changed since the last install
# (the pair is kept in node_modules as the stamp). `npm ci` installs exactly
# the lock file's versions; the Inspector's postinstall only matters in a
# source checkout, so npm's install-script policy skipping it is fine.
TESTS="$ROOT/tests"
npm_stamp="$TESTS/node_modules/.dialtone-package"
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    want="$(cat "$TESTS/package.json" "$TESTS/package-lock.json" 2>/dev/null)"
    if [[ -x "$TESTS/node_modules/.bin/mcp-inspector" && -f "$npm_stamp" ]] \
        && [[ "$(cat "$npm_stamp")" == "$want" ]]; then
        :
    else
        log "installing the MCP Inspector CLI into tests/node_modules (node $(node --version))"
        (cd "$TESTS" && npm ci --no-audit --no-fund --loglevel=error)
        printf '%s' "$want" >"$npm_stamp"
    fi
else
    log "node/npm not found: the MCP Inspector test will be skipped (install nodejs and npm)"
fi

log "ok"

#!/usr/bin/env bash
# Installs what the end-to-end tests and the benchmarks need, when missing:
#   - Debian packages: sip-tester (SIPp), baresip-core, kamailio, sox
#   - tests/.venv: a Python virtualenv with tests/requirements.txt (pinned:
#     pytest, pytest-timeout)
# Idempotent, and fast (well under 2 s) when everything is already present.
# Usage: scripts/setup.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/tests/.venv"
REQUIREMENTS="$ROOT/tests/requirements.txt"
APT_PACKAGES=(sip-tester baresip-core kamailio sox)

log() { echo "setup: $*" >&2; }

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
    # The kamailio package may try to start a system service; we never rely on it.
fi

for bin in sipp baresip kamailio sox; do
    command -v "$bin" >/dev/null 2>&1 || { log "still missing after install: $bin"; exit 1; }
done

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

log "ok"

#!/usr/bin/env bash
# THE run command: installs the build prerequisites when missing
# (scripts/setup.sh --build: libopus-dev, pkg-config), then builds and runs
# dialtone on its embedded defaults (config/dialtone.toml, SQLite under data/).
# Usage: scripts/run.sh [dialtone arguments...]   (default: run)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/setup.sh --build
if (($# == 0)); then
    set -- run
fi
exec cargo run --release -p dialtone -- "$@"

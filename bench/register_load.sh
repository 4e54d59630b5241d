#!/usr/bin/env bash
# bench/register_load.sh TARGET_PORT RATE SECONDS [options]
#
# Authenticated registration load (sipp-scenarios/register_load.xml: REGISTER,
# 401, REGISTER with digest, 200) against a registrar on loopback, at RATE
# registrations/s for SECONDS, each call a different user from a generated
# users.csv. Prints successful/failed registrations, the achieved rate, and the
# target's CPU time during the run (utime+stime of the process and its
# descendants, /proc/PID/stat) as CPU microseconds per registration.
# Exit 0 only when every registration succeeded.
#
# Options (bench/register_load.sh --help for all):
#   --pid PID                     the target process (default: found by port with ss)
#   --users N                     distinct users (default rate*seconds, max 20000)
#   --password PW                 every user's password (default "secret")
#   --transport u1|t1             UDP (default) or TCP
#   --provision-dialtone CONFIG   create the users first with
#                                 `dialtone --config CONFIG user add NAME --password PW`
#                                 (one process per user, 2 in parallel; existing users skipped)
#   --out DIR                     logs and summary.json (default bench/out/...)
#
# Kamailio baseline (see bench/kamailio-registrar.cfg for how to start it):
#   bench/register_load.sh 5070 1000 10 --pid "$(cat /tmp/kam-bench/kamailio.pid)"
# dialtone:
#   bench/register_load.sh 5060 1000 10 --provision-dialtone config/dialtone.toml
set -euo pipefail
exec python3 "$(dirname "${BASH_SOURCE[0]}")/register_load.py" "$@"

#!/bin/sh
# Runs Kamailio in the foreground with /etc/kamailio/kamailio.cfg, turning
# the container's environment into the config's -A defines (see the
# config's header and config/kamailio/Dockerfile). Arguments are appended.
set -eu
: "${LISTEN_IP:?set LISTEN_IP to the address Kamailio listens on (the container's IP)}"
mkdir -p /run/kamailio
set -- -DD -E -f /etc/kamailio/kamailio.cfg -m "${SHM_MB:-128}" -M "${PKG_MB:-8}" \
    -A "LISTEN_IP=${LISTEN_IP}" \
    -A "LISTEN_PORT=${LISTEN_PORT:-5060}" \
    -A "DS_LIST=\"${DS_LIST:-/etc/kamailio/dispatcher.list}\"" \
    -A "PROBE_SECS=${PROBE_SECS:-2}" \
    -A "FR_TIMER_MS=${FR_TIMER_MS:-1500}" \
    -A "CTL_SOCKET=\"unix:/run/kamailio/kamailio_ctl\"" \
    "$@"
if [ -n "${ADVERTISE_IP:-}" ]; then
    set -- "$@" -A "ADVERTISE_IP=${ADVERTISE_IP}"
fi
exec kamailio "$@"

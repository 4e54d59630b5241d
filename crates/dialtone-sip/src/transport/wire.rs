//! The SIP trace: every message as it crossed the wire, in and out, at
//! TRACE level under the target `dialtone_sip::wire` — what Kamailio's
//! siptrace or FreeSWITCH's `sofia global siptrace on` show. Off unless the
//! log filter asks for it (`log.level = "info,dialtone_sip::wire=trace"`),
//! and then costs nothing on the hot path but one level check.

use std::net::SocketAddr;

use super::Peer;

/// The trace's target, as the log filter names it.
pub const TARGET: &str = "dialtone_sip::wire";

fn on() -> bool {
    tracing::enabled!(target: TARGET, tracing::Level::TRACE)
}

/// A message received from `from` on `local`.
pub(super) fn received(bytes: &[u8], from: &Peer, local: SocketAddr) {
    if on() {
        let text = String::from_utf8_lossy(bytes);
        tracing::trace!(target: TARGET, %from, %local, len = bytes.len(), "recv\n{text}");
    }
}

/// A message sent (or handed to the socket) to `to`.
pub(super) fn sent(bytes: &[u8], to: &Peer) {
    if on() {
        let text = String::from_utf8_lossy(bytes);
        tracing::trace!(target: TARGET, %to, len = bytes.len(), "send\n{text}");
    }
}

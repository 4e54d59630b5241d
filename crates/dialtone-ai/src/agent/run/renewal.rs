//! Keeping the model connection: a dropped connection is reopened once
//! with the conversation carried over; a session near the provider's limit
//! is renewed beside the current one, which hands over at a quiet moment.

use super::*;

/// How long a renewed session may wait for a quiet moment to take over.
const SWITCH_WAIT: Duration = Duration::from_secs(30);

impl Agent {
    /// Opens a new session carrying the conversation over.
    pub(super) fn open(&mut self, purpose: Purpose) {
        if self.opening.is_some() {
            return;
        }
        let mut cfg = self.cfg.session.clone();
        cfg.history = self.history.clone();
        cfg.resume_handle = self.resume_handle.clone();
        self.opening = Some(Box::pin(async move { (purpose, connect(cfg).await) }));
    }

    /// The connection is gone: reconnect once, else give up.
    pub(super) fn lost(&mut self, reason: &str) -> bool {
        self.events = None;
        self.response_active = false;
        self.requested = None;
        self.deferred.clear();
        if let Some((s, e, _)) = self.standby.take() {
            // A renewed session is ready: it takes over at once.
            self.session = s;
            self.events = Some(e);
            self.session_started = Instant::now();
            self.stats.renewed();
            return true;
        }
        if self.reconnects_left == 0 {
            self.stats.failed();
            self.emit(AgentEvent::Failed {
                reason: format!("the model connection was lost: {reason}"),
            });
            return false;
        }
        tracing::info!(%reason, "realtime connection lost: reconnecting");
        self.reconnects_left -= 1;
        // A renewal in progress becomes the reconnection.
        if self.opening.is_none() {
            self.open(Purpose::Reconnect);
        }
        true
    }

    pub(super) fn on_opened(&mut self, purpose: Purpose, result: Connected) -> bool {
        let dead = self.events.is_none();
        match (result, dead) {
            (Ok((s, e)), true) => {
                self.session = s;
                self.events = Some(e);
                self.session_started = Instant::now();
                self.stats.reconnected();
                self.emit(AgentEvent::Reconnected);
                true
            }
            (Ok((s, e)), false) => {
                self.standby = Some((s, e, Instant::now()));
                true
            }
            (Err(e), true) => {
                self.stats.failed();
                self.emit(AgentEvent::Failed {
                    reason: format!(
                        "the model connection was lost and could not be re-established: {e}"
                    ),
                });
                false
            }
            (Err(e), false) => {
                tracing::warn!(error = %e, ?purpose, "session renewal failed; keeping the current one");
                // Try again later, not at every tick.
                self.session_started = Instant::now();
                true
            }
        }
    }

    /// A renewed session takes over at a quiet moment (no response, no
    /// audio queued, no tool running), or after [`SWITCH_WAIT`] anyway.
    pub(super) fn maybe_switch(&mut self, now: Instant) {
        let Some((_, _, since)) = &self.standby else {
            return;
        };
        let quiet = !self.speaking() && self.in_flight.is_empty();
        if !quiet && now.duration_since(*since) < SWITCH_WAIT {
            return;
        }
        let Some((s, e, _)) = self.standby.take() else {
            return;
        };
        let old = std::mem::replace(&mut self.session, s);
        let _ = old.send(ClientCommand::Close);
        self.events = Some(e);
        self.session_started = now;
        self.response_active = false;
        self.requested = None;
        self.stats.renewed();
        tracing::info!("realtime session renewed");
    }
}

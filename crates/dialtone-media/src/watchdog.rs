//! The RTP-timeout watchdog of a bridge: reports a peer that should be sending
//! RTP but has been silent for the configured time.
//!
//! It does not reset a timer per packet: the relay only records when RTP last
//! arrived, and the watchdog sleeps until the earliest moment a timeout could
//! be due, re-reading the arrival times when it wakes. A plain bridge's relay
//! task keeps it ([`Watchdog::check`]); the transcoding bridge and the audio
//! port give it a task of its own ([`Watchdog::run`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::info;

use crate::endpoint::Shared;
use crate::{MediaEvent, MediaEvents};

pub(crate) struct Watchdog {
    endpoints: [Arc<Shared>; 2],
    started: Instant,
    timeout: Duration,
    events: MediaEvents,
}

impl Watchdog {
    /// Watches a pair of endpoints (the same one twice is reported once:
    /// the first look marks the silence as reported); `None` when timeouts
    /// are off (`timeout` zero).
    pub(crate) fn new(
        endpoints: [Arc<Shared>; 2],
        started: Instant,
        timeout: Duration,
        events: MediaEvents,
    ) -> Option<Watchdog> {
        (!timeout.is_zero()).then_some(Watchdog {
            endpoints,
            started,
            timeout,
            events,
        })
    }

    /// Reports the endpoints silent for the timeout (once per silence), and
    /// says when to look again.
    pub(crate) fn check(&self) -> Instant {
        let now = Instant::now();
        // Sleeping at most `timeout` also picks up set_expect_rtp(true) in time.
        let mut wake = now + self.timeout;
        for ep in &self.endpoints {
            let silent_for = {
                let mut st = ep.lock();
                if !st.expect_rtp || st.timeout_reported {
                    continue;
                }
                let since = st
                    .last_rtp
                    .map_or(self.started, |t| t.max(self.started))
                    .max(st.expect_since);
                let silent_for = now.saturating_duration_since(since);
                if silent_for < self.timeout {
                    wake = wake.min(since + self.timeout);
                    continue;
                }
                st.timeout_reported = true;
                silent_for
            };
            info!(endpoint = ep.id, ?silent_for, "RTP timeout");
            self.events.send(MediaEvent::RtpTimeout {
                endpoint: ep.id,
                silent_for,
            });
        }
        wake
    }

    /// Checks whenever [`check`](Self::check) says, until `stop` fires.
    pub(crate) async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            let wake = self.check();
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                () = tokio::time::sleep_until(wake.into()) => {}
            }
        }
    }
}

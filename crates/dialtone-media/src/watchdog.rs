//! The RTP-timeout watchdog of a bridge: reports a peer that should be sending
//! RTP but has been silent for the configured time.
//!
//! It does not reset a timer per packet: the relay only records when RTP last
//! arrived, and the watchdog sleeps until the earliest moment a timeout could
//! be due, re-reading the arrival times when it wakes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tracing::info;

use crate::endpoint::Shared;
use crate::MediaEvent;

pub(crate) async fn run(
    endpoints: [Arc<Shared>; 2],
    started: Instant,
    timeout: Duration,
    events: mpsc::UnboundedSender<MediaEvent>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let now = Instant::now();
        // Sleeping at most `timeout` also picks up set_expect_rtp(true) in time.
        let mut wake = now + timeout;
        for ep in &endpoints {
            let silent_for = {
                let mut st = ep.lock();
                if !st.expect_rtp || st.timeout_reported {
                    continue;
                }
                let since = st
                    .last_rtp
                    .map_or(started, |t| t.max(started))
                    .max(st.expect_since);
                let silent_for = now.saturating_duration_since(since);
                if silent_for < timeout {
                    wake = wake.min(since + timeout);
                    continue;
                }
                st.timeout_reported = true;
                silent_for
            };
            info!(endpoint = ep.id, ?silent_for, "RTP timeout");
            // Call control may have stopped listening; nothing else to do then.
            let _ = events.send(MediaEvent::RtpTimeout {
                endpoint: ep.id,
                silent_for,
            });
        }
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            () = tokio::time::sleep_until(wake.into()) => {}
        }
    }
}

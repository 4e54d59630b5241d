//! [`FrameClock`]: the 20 ms clock of a path that decodes one endpoint's
//! stream (the transcoder, the audio port), and the bookkeeping that rides
//! on it: the jitter buffer's statistics published to the endpoint every
//! second, and an RTCP report to the endpoint's peer every 5 s.

use std::time::{Duration, Instant};

use tokio::time::{Interval, MissedTickBehavior};

use crate::endpoint::Shared;
use crate::jitter::JitterStats;
use crate::reports;
use crate::rtcp::ReportBlock;

use super::FRAME_MS;

/// How often the jitter statistics are published to the endpoint.
const STATS_EVERY: Duration = Duration::from_secs(1);
/// How often the peer gets an RTCP report from us (RFC 3550's 5 s minimum
/// interval, for one sender per side).
const REPORT_EVERY: Duration = Duration::from_secs(5);

/// A decoded stream's receiving side, as the clock's bookkeeping sees it.
pub(crate) trait Received {
    fn stats(&self) -> JitterStats;
    /// A reception report block (starting a new interval for its fraction
    /// lost); `None` before the first packet.
    fn report_block(&mut self, lsr: u32, dlsr: u32) -> Option<ReportBlock>;
}

pub(crate) struct FrameClock {
    tick: Interval,
    published: Instant,
    reported: Instant,
}

impl FrameClock {
    /// # Panics
    /// Outside a tokio runtime.
    pub(crate) fn new() -> FrameClock {
        let mut tick = tokio::time::interval(Duration::from_millis(u64::from(FRAME_MS)));
        // Late ticks are caught up: the far end's clock does not wait for us.
        tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
        let now = Instant::now();
        FrameClock {
            tick,
            published: now,
            // The first report goes out after half an interval (RFC 3550
            // §6.2 halves the first one), then every REPORT_EVERY.
            reported: now - REPORT_EVERY / 2,
        }
    }

    /// Waits for the next 20 ms tick; returns the time it fired.
    pub(crate) async fn tick(&mut self) -> Instant {
        self.tick.tick().await;
        Instant::now()
    }

    /// After a tick's frame: publishes `stream`'s statistics to `ep` and
    /// sends `ep`'s peer a report, each when due.
    pub(crate) async fn bookkeeping(
        &mut self,
        ep: &Shared,
        now: Instant,
        stream: &mut impl Received,
    ) {
        if now.duration_since(self.published) >= STATS_EVERY {
            self.published = now;
            ep.set_jitter(stream.stats());
        }
        if now.duration_since(self.reported) >= REPORT_EVERY {
            self.reported = now;
            reports::report(ep, |lsr, dlsr| stream.report_block(lsr, dlsr));
        }
    }
}

//! [`Pacer`]: when an [`AudioPort`](super::AudioPort) sends its next playout
//! packet. Every 20 ms, except that audio arriving while the stream is in
//! silence goes out at once and the rhythm restarts from that moment; and
//! the time such early starts took is given back, a little per silence
//! packet, so that they do not add up over a call.

use std::pin::Pin;
use std::time::Duration;

// Tokio's clock, so that tests can pause and advance it.
use tokio::time::{Instant, Sleep};

use crate::pipeline::FRAME_MS;

const FRAME: Duration = Duration::from_millis(FRAME_MS as u64);
/// How much later than 20 ms after the previous one a silence packet may
/// leave to give back time taken by an early start: small against any
/// phone's jitter buffer, and 100 ms back per second of silence.
const GIVE_BACK: Duration = Duration::from_millis(2);

/// The playout packets' clock. Late ticks are caught up one after the other
/// (as the port's [`FrameClock`](crate::pipeline::FrameClock) does): the
/// RTP timestamp advances one frame per packet, so the phone's clock does
/// not wait for us.
pub(super) struct Pacer {
    /// When the next packet is due.
    next: Instant,
    sleep: Pin<Box<Sleep>>,
    /// How far the stream runs ahead of its timestamps, from early starts.
    ahead: Duration,
}

impl Pacer {
    /// The first packet due 20 ms from now.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub(super) fn new() -> Pacer {
        let next = Instant::now() + FRAME;
        Pacer {
            next,
            sleep: Box::pin(tokio::time::sleep_until(next)),
            ahead: Duration::ZERO,
        }
    }

    /// Waits until the next packet is due; returns the time it fired.
    /// Cancel-safe: nothing changes until it completes.
    pub(super) async fn tick(&mut self) -> std::time::Instant {
        self.sleep.as_mut().await;
        self.next += FRAME;
        self.sleep.as_mut().reset(self.next);
        std::time::Instant::now()
    }

    /// A packet is leaving now, ahead of the rhythm: the next one is due
    /// 20 ms after it.
    pub(super) fn restart(&mut self) {
        let now = Instant::now();
        self.ahead += self.next.saturating_duration_since(now);
        self.next = now + FRAME;
        self.sleep.as_mut().reset(self.next);
    }

    /// The packet just sent was silence: give back some of the time early
    /// starts took, by sending the next one a little later.
    pub(super) fn silence(&mut self) {
        let back = self.ahead.min(GIVE_BACK);
        if back.is_zero() {
            return;
        }
        self.ahead -= back;
        self.next += back;
        self.sleep.as_mut().reset(self.next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn restart_rephases_and_silence_gives_the_time_back() {
        // Tokio's paused clock: `tick`'s std::time::Instant does not move.
        let t0 = Instant::now();
        let mut p = Pacer::new();
        p.tick().await;
        assert_eq!(Instant::now() - t0, FRAME);
        // Audio at 5 ms past the tick: sent then, 15 ms early.
        tokio::time::advance(Duration::from_millis(5)).await;
        p.restart();
        assert_eq!(p.ahead, Duration::from_millis(15));
        p.tick().await;
        assert_eq!(Instant::now() - t0, Duration::from_millis(45));
        // Eight silence packets give the 15 ms back, 2 ms at a time.
        let mut prev = Instant::now();
        let mut gaps = Vec::new();
        for _ in 0..9 {
            p.silence();
            p.tick().await;
            gaps.push((Instant::now() - prev).as_millis());
            prev = Instant::now();
        }
        assert_eq!(gaps, [22, 22, 22, 22, 22, 22, 22, 21, 20]);
        assert_eq!(p.ahead, Duration::ZERO);
    }
}

//! The target delay: a window of recent relative delays, a high percentile
//! of their spread, quick growth and slow decay.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Relative delays kept (about 2 s of 20 ms packets).
const WINDOW: usize = 100;
/// Percentile of the delay spread the target covers.
const PERCENTILE: f64 = 0.95;
/// No decay until this long after the target last grew.
const HOLD: Duration = Duration::from_secs(2);
/// Decay per tick, as a fraction of a frame.
const DECAY_PER_TICK: i64 = 20;
/// A relative delay this far from the window's minimum is a timing
/// discontinuity (the sender's clock jumped), not jitter.
pub(super) const DISCONTINUITY_US: i64 = 10_000_000;

/// Target delay estimator; all times in microseconds.
#[derive(Debug)]
pub(super) struct Delay {
    window: VecDeque<i64>,
    frame_us: i64,
    min_us: i64,
    max_us: i64,
    /// What the window asks for.
    desired_us: i64,
    target_us: i64,
    peak_us: i64,
    last_grow: Option<Instant>,
}

impl Delay {
    pub fn new(frame_us: i64, min_us: i64, max_us: i64) -> Delay {
        Delay {
            window: VecDeque::with_capacity(WINDOW),
            frame_us,
            min_us,
            max_us,
            desired_us: min_us,
            target_us: min_us,
            peak_us: min_us,
            last_grow: None,
        }
    }

    /// Current target delay.
    pub fn target_us(&self) -> i64 {
        self.target_us
    }

    /// Highest target reached.
    pub fn peak_us(&self) -> i64 {
        self.peak_us
    }

    /// Smallest relative delay in the window: the fastest recent path.
    pub fn min_delay(&self) -> Option<i64> {
        self.window.iter().copied().min()
    }

    /// Forgets the window (after a resync or a timing discontinuity).
    pub fn clear_window(&mut self) {
        self.window.clear();
    }

    /// A packet's relative delay (arrival minus timestamp).
    pub fn observe(&mut self, d_us: i64, now: Instant) {
        if self
            .min_delay()
            .is_some_and(|min| (d_us - min).abs() > DISCONTINUITY_US)
        {
            self.window.clear();
        }
        if self.window.len() == WINDOW {
            self.window.pop_front();
        }
        self.window.push_back(d_us);
        let mut sorted: Vec<i64> = self.window.iter().copied().collect();
        sorted.sort_unstable();
        let idx = ((sorted.len() as f64 * PERCENTILE).ceil() as usize).clamp(1, sorted.len()) - 1;
        self.desired_us = self.clamp(self.frame_us + sorted[idx] - sorted[0]);
        if self.desired_us > self.target_us {
            self.grow_to(self.desired_us, now);
        }
    }

    /// A packet with relative delay `d_us` missed its slot: make the target
    /// cover it, and hold off decay.
    pub fn boost(&mut self, d_us: i64, now: Instant) {
        let spread = self.min_delay().map_or(0, |min| (d_us - min).max(0));
        let want = self.clamp(self.frame_us + spread).max(self.target_us);
        self.grow_to(want, now);
    }

    /// One playout tick: decay towards what the window asks for once the
    /// hold time since the last growth has passed.
    pub fn tick(&mut self, now: Instant) {
        let held = self
            .last_grow
            .is_none_or(|t| now.saturating_duration_since(t) >= HOLD);
        if held && self.target_us > self.desired_us {
            self.target_us = (self.target_us - self.frame_us / DECAY_PER_TICK).max(self.desired_us);
        }
    }

    fn grow_to(&mut self, want: i64, now: Instant) {
        self.target_us = want;
        self.peak_us = self.peak_us.max(want);
        self.last_grow = Some(now);
    }

    fn clamp(&self, us: i64) -> i64 {
        us.clamp(self.min_us, self.max_us)
    }
}

//! The RFC 3261 §17 timers: their configuration (T1, T2, T4, Table 4) and
//! the set of running timers a transaction owns. Each transaction task
//! sleeps until the earliest deadline in its set.

use std::time::Duration;

use tokio::time::Instant;

/// T1, T2 and T4 (RFC 3261 Table 4); every other timer derives from them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate, 500 ms by default.
    pub t1: Duration,
    /// The maximum retransmission interval for non-INVITE requests and INVITE responses, 4 s.
    pub t2: Duration,
    /// The maximum time a message stays in the network, 5 s.
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl TimerConfig {
    /// 64·T1: Timers B, F, H, J (unreliable), and RFC 6026's L and M.
    pub fn timeout(&self) -> Duration {
        self.t1 * 64
    }

    /// Timer D: at least 32 s on unreliable transports, zero on reliable ones.
    pub fn timer_d(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.timeout().max(Duration::from_secs(32))
        }
    }

    /// Timers I and K: T4 on unreliable transports, zero on reliable ones.
    pub fn t4_or_zero(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.t4
        }
    }

    /// Timer J: 64·T1 on unreliable transports, zero on reliable ones.
    pub fn timer_j(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.timeout()
        }
    }

    /// The next retransmission interval after `current`, doubling, capped at
    /// T2 (Timers E and G). Timer A is not capped: it uses `current * 2`.
    pub fn backoff(&self, current: Duration) -> Duration {
        (current * 2).min(self.t2)
    }
}

/// Every timer a transaction may run, by its RFC name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timer {
    /// INVITE request retransmit (client, unreliable).
    A,
    /// INVITE transaction timeout (client).
    B,
    /// Wait time for response retransmits (client INVITE, Completed).
    D,
    /// Non-INVITE request retransmit (client, unreliable).
    E,
    /// Non-INVITE transaction timeout (client).
    F,
    /// INVITE final response retransmit (server, unreliable; also the 2xx in Accepted).
    G,
    /// Wait time for ACK receipt (server INVITE, Completed).
    H,
    /// Wait time for ACK retransmits (server INVITE, Confirmed).
    I,
    /// Wait time for non-INVITE request retransmits (server, Completed).
    J,
    /// Wait time for response retransmits (client non-INVITE, Completed).
    K,
    /// RFC 6026: wait time for ACK of a 2xx and INVITE retransmits (server, Accepted).
    L,
    /// RFC 6026: wait time for 2xx retransmissions (client INVITE, Accepted).
    M,
    /// RFC 3261 §17.2.1: send 100 Trying if the TU has not answered within 200 ms.
    Trying,
}

const ALL: [Timer; 13] = [
    Timer::A,
    Timer::B,
    Timer::D,
    Timer::E,
    Timer::F,
    Timer::G,
    Timer::H,
    Timer::I,
    Timer::J,
    Timer::K,
    Timer::L,
    Timer::M,
    Timer::Trying,
];

/// The running timers of one transaction: a deadline per timer, and the
/// current interval of the retransmission timers.
#[derive(Debug, Default)]
pub struct TimerSet {
    deadlines: [Option<Instant>; 13],
    intervals: [Duration; 13],
}

impl TimerSet {
    fn idx(t: Timer) -> usize {
        t as usize
    }

    /// Starts (or restarts) `timer` to fire after `after`.
    pub fn start(&mut self, timer: Timer, after: Duration) {
        let i = Self::idx(timer);
        self.deadlines[i] = Some(Instant::now() + after);
        self.intervals[i] = after;
    }

    pub fn stop(&mut self, timer: Timer) {
        self.deadlines[Self::idx(timer)] = None;
    }

    pub fn stop_all(&mut self) {
        self.deadlines = [None; 13];
    }

    /// The interval `timer` was last started with.
    pub fn interval(&self, timer: Timer) -> Duration {
        self.intervals[Self::idx(timer)]
    }

    /// When `timer` fires, if it runs.
    pub fn deadline(&self, timer: Timer) -> Option<Instant> {
        self.deadlines[Self::idx(timer)]
    }

    /// The earliest deadline of any running timer.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// Takes one timer whose deadline has passed, stopping it.
    pub fn pop_expired(&mut self, now: Instant) -> Option<Timer> {
        let (i, _) = self
            .deadlines
            .iter()
            .enumerate()
            .filter_map(|(i, d)| d.map(|d| (i, d)))
            .filter(|(_, d)| *d <= now)
            .min_by_key(|(_, d)| *d)?;
        self.deadlines[i] = None;
        Some(ALL[i])
    }
}

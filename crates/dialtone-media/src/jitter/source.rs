//! Reception statistics of one RTP source: extended sequence numbers
//! (RFC 3550 A.1), expected/lost counts (A.3), interarrival jitter (A.8), and
//! unwrapped timestamps.

/// A forward jump beyond this many sequence numbers is not taken as loss.
pub(super) const MAX_DROPOUT: i64 = 3000;
/// A packet at most this many sequence numbers behind the highest is an
/// ordinary reordered (or late) packet; further back it is a jump.
pub(super) const MAX_MISORDER: i64 = 100;
/// Offset of the internal extended sequence numbers, so that a packet
/// reordered before the first one of a source starting near 0 stays positive.
const EXT_OFFSET: i64 = 1 << 16;

/// How a packet's sequence number relates to the source's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SeqClass {
    /// Acceptable: its extended sequence number and unwrapped timestamp.
    Ok { ext: i64, ts_u: i64 },
    /// Already received.
    Duplicate,
    /// Too far from the highest sequence number: a restart or garbage.
    Jump,
}

/// The state RFC 3550 keeps per source.
#[derive(Debug)]
pub(crate) struct Source {
    pub ssrc: u32,
    /// Lowest extended sequence number seen.
    pub base: i64,
    /// Highest extended sequence number seen.
    pub highest: i64,
    /// Raw and unwrapped timestamp of the packet with the highest sequence.
    highest_ts: u32,
    highest_ts_u: i64,
    /// Distinct packets received.
    pub received: u64,
    /// Bit `i` set: `highest − i` was received.
    seen: u128,
    expected_prior: u64,
    received_prior: u64,
    /// Interarrival jitter in RTP clock units (A.8, unrounded).
    pub jitter: f64,
    prev_transit: Option<f64>,
}

impl Source {
    /// A source starting with a packet `seq`/`ts` (not yet accepted).
    pub fn new(ssrc: u32, seq: u16, ts: u32) -> Source {
        let ext = EXT_OFFSET + i64::from(seq);
        Source {
            ssrc,
            base: ext,
            highest: ext - 1,
            highest_ts: ts,
            highest_ts_u: i64::from(ts),
            received: 0,
            seen: 0,
            expected_prior: 0,
            received_prior: 0,
            jitter: 0.0,
            prev_transit: None,
        }
    }

    /// Classifies a packet, without changing anything.
    pub fn classify(&self, seq: u16, ts: u32) -> SeqClass {
        let delta = i64::from(seq.wrapping_sub(self.highest as u16) as i16);
        if !(-MAX_MISORDER..=MAX_DROPOUT).contains(&delta) {
            return SeqClass::Jump;
        }
        let ext = self.highest + delta;
        let behind = self.highest - ext;
        if self.received > 0 && (0..128).contains(&behind) && self.seen >> behind & 1 == 1 {
            return SeqClass::Duplicate;
        }
        let ts_u = self.highest_ts_u + i64::from(ts.wrapping_sub(self.highest_ts) as i32);
        SeqClass::Ok { ext, ts_u }
    }

    /// Timestamp distance (RTP units) from the highest packet to `ts_u`.
    pub fn ts_jump(&self, ts_u: i64) -> i64 {
        ts_u - self.highest_ts_u
    }

    /// Records a packet classified [`SeqClass::Ok`]; `transit` is its arrival
    /// time minus its timestamp, in RTP units.
    pub fn accept(&mut self, ext: i64, ts: u32, ts_u: i64, transit: f64) {
        if ext > self.highest {
            let shift = ext - self.highest;
            self.seen = if shift >= 128 { 0 } else { self.seen << shift };
            self.highest = ext;
            self.highest_ts = ts;
            self.highest_ts_u = ts_u;
        }
        let behind = self.highest - ext;
        if behind < 128 {
            self.seen |= 1 << behind;
        }
        self.base = self.base.min(ext);
        self.received += 1;
        if let Some(prev) = self.prev_transit {
            let d = (transit - prev).abs();
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.prev_transit = Some(transit);
    }

    /// Forgets the previous transit time, so that a timing discontinuity does
    /// not count as jitter.
    pub fn forget_transit(&mut self) {
        self.prev_transit = None;
    }

    /// Extended highest sequence number as reported (cycles << 16 | seq).
    pub fn highest_seq(&self) -> u32 {
        (self.highest.max(self.base) - EXT_OFFSET) as u32
    }

    /// Extended base sequence number as reported.
    pub fn base_seq(&self) -> u32 {
        (self.base - EXT_OFFSET) as u32
    }

    /// Packets expected: highest − base + 1 (0 before any packet).
    pub fn expected(&self) -> u64 {
        if self.received == 0 {
            0
        } else {
            (self.highest - self.base + 1) as u64
        }
    }

    /// Expected minus received.
    pub fn cumulative_lost(&self) -> i64 {
        self.expected() as i64 - self.received as i64
    }

    /// Fraction lost (1/256) since the last [`Source::take_fraction`].
    pub fn fraction(&self) -> u8 {
        let expected = self.expected().saturating_sub(self.expected_prior);
        let received = self.received.saturating_sub(self.received_prior);
        let lost = expected as i64 - received as i64;
        if expected == 0 || lost <= 0 {
            0
        } else {
            ((lost << 8) / expected as i64).min(255) as u8
        }
    }

    /// The fraction lost since the previous call, starting a new interval.
    pub fn take_fraction(&mut self) -> u8 {
        let f = self.fraction();
        self.expected_prior = self.expected();
        self.received_prior = self.received;
        f
    }
}

//! The adaptive jitter buffer that sits in front of every decoder.
//!
//! Pure logic, no I/O and no clock of its own: a media task [`push`]es each
//! received RTP packet with its arrival [`Instant`] and, driven by a
//! `frame_ms` playout clock, [`pop`]s what to play next. Tests script both
//! arrival and playout times, so every decision is deterministic.
//!
//! Playout is sequence driven: one packet per tick, in extended sequence
//! order. A packet still missing when its slot comes is concealed
//! ([`Playout::Missing`]); if it shows up later it is dropped as late.
//!
//! Adaptation: every packet's *relative delay* (arrival time minus its RTP
//! timestamp) goes into a window of the last 100 packets. The target delay
//! is `clamp(frame + p95(delay − min delay), min, max)`, and at least
//! `frame + (its delay − min delay)` for a packet that missed its slot (a late
//! packet, or the one that was waited for during an underrun). It grows at
//! once. It shrinks by only 1/20 frame per tick, and only once 2 s have passed
//! without growth. The *playout delay* is how long a packet that took the
//! fastest path waits before its slot. When it is more than half a frame
//! below `target − frame`, a concealment frame is inserted without consuming a
//! packet (stretch). When it has been a frame or more above that for 10 ticks,
//! one packet is dropped (counted as `discarded`). Together these hold the
//! playout delay at the target.
//!
//! [`push`]: JitterBuffer::push
//! [`pop`]: JitterBuffer::pop
//! [`Instant`]: std::time::Instant

mod buffer;
mod delay;
mod source;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_adapt;

pub use buffer::JitterBuffer;
// The RFC 3550 sequence state, also kept by the audio port's immediate path.
pub(crate) use source::{SeqClass, Source};

/// Settings of a [`JitterBuffer`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JitterConfig {
    /// RTP clock rate of the stream, e.g. 8000 (G.711) or 48000 (Opus).
    pub clock_rate: u32,
    /// Packet duration assumed until timestamps tell otherwise, and the
    /// period of the playout clock driving [`JitterBuffer::pop`].
    pub frame_ms: u32,
    /// Lowest target delay.
    pub min_delay_ms: u32,
    /// Highest target delay.
    pub max_delay_ms: u32,
    /// Capacity in packets: on overflow the oldest buffered packet is dropped.
    pub max_packets: usize,
}

impl Default for JitterConfig {
    fn default() -> Self {
        JitterConfig {
            clock_rate: 8000,
            frame_ms: 20,
            min_delay_ms: 20,
            max_delay_ms: 200,
            max_packets: 50,
        }
    }
}

/// What to play for one tick of the playout clock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Playout {
    /// The next packet in order: its payload and its RTP timestamp.
    Packet { payload: Vec<u8>, timestamp: u32 },
    /// The expected packet is missing (lost or not yet here): conceal
    /// `samples` (RTP clock units, i.e. the frame duration). `next` is the
    /// payload of the packet right after the missing one, if already buffered
    /// (for Opus in-band FEC). Also returned, with `next: None`, for a frame
    /// inserted to grow the delay and to fill a gap in the timestamps (DTX).
    Missing { samples: u32, next: Option<Vec<u8>> },
    /// Nothing to play yet (before the first packet, or while (re)buffering
    /// at the start or after a long underrun): play silence / nothing.
    Idle,
}

/// Counters and estimates of a [`JitterBuffer`], from
/// [`JitterBuffer::stats`].
///
/// The counters cover the life of the buffer. The RFC 3550 fields
/// (`jitter_ms`, `highest_seq`, `base_seq`, `expected`, `cumulative_lost`,
/// `fraction_lost`) are about the current source: they restart on an SSRC
/// change or a resync.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JitterStats {
    /// Packets received, duplicates excluded (late ones included).
    pub received: u64,
    /// Packets returned as [`Playout::Packet`].
    pub played: u64,
    /// Packets that had not arrived when their slot was played (concealed).
    pub lost: u64,
    /// Packets that arrived after their slot was played or concealed.
    pub late: u64,
    /// Packets received more than once (dropped).
    pub duplicates: u64,
    /// Packets dropped to shrink the delay, on overflow, or flushed by a
    /// resync.
    pub discarded: u64,
    /// Times [`Playout::Missing`] was returned.
    pub concealed: u64,
    /// RFC 3550 §6.4.1 interarrival jitter, in milliseconds.
    pub jitter_ms: f64,
    /// Current target delay, in milliseconds.
    pub delay_ms: u32,
    /// Highest target delay reached, in milliseconds.
    pub max_delay_ms: u32,
    /// Extended highest sequence number received (RFC 3550 A.1).
    pub highest_seq: u32,
    /// Extended sequence number the source started at.
    pub base_seq: u32,
    /// `highest_seq − base_seq + 1` (RFC 3550 A.3).
    pub expected: u64,
    /// `expected − received` for the current source (RFC 3550 A.3).
    pub cumulative_lost: i64,
    /// Fraction lost (in 1/256) since the last
    /// [`JitterBuffer::report_block`]; reading it does not start a new
    /// interval.
    pub fraction_lost: u8,
}

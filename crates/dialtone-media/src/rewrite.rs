//! Continuity of the RTP stream an endpoint sends: one SSRC for the life of
//! the endpoint, and sequence numbers and timestamps that carry on across
//! source changes (another SSRC arriving, or a re-bridge to another endpoint
//! after a transfer), so the phone on the far end never sees a broken stream.
//!
//! While the source stays the same, packets pass with constant offsets — zero
//! at first, so a plain relay changes no header byte (SRTP keeps working). On
//! a source change new offsets are computed so the next packet follows the
//! last one sent: seq + 1, timestamp + the wall time elapsed (at least one
//! 20 ms frame), marker set to tell the receiver's jitter buffer to resync.

use std::time::{Duration, Instant};

/// Default RTP clock rate (G.711 and most narrowband codecs).
pub const DEFAULT_CLOCK_RATE: u32 = 8000;

/// Rewrites the header of each outgoing RTP packet in place. One per
/// endpoint, touched only by the task that sends out of that endpoint.
#[derive(Debug)]
pub struct StreamRewriter {
    clock_rate: u32,
    out: Option<OutStream>,
    /// The next packet starts a new source even if its SSRC is the same.
    resync: bool,
    source_changes: u32,
}

#[derive(Debug)]
struct OutStream {
    /// The one SSRC this stream is sent with: the first one ever forwarded.
    ssrc: u32,
    /// SSRC of the source currently being forwarded.
    src_ssrc: u32,
    seq_off: u16,
    ts_off: u32,
    /// Highest sequence number sent (serial order) and its timestamp.
    max_seq: u16,
    max_ts: u32,
    /// When the last packet was sent.
    last_at: Instant,
}

impl Default for StreamRewriter {
    fn default() -> Self {
        StreamRewriter::new(DEFAULT_CLOCK_RATE)
    }
}

impl StreamRewriter {
    pub fn new(clock_rate: u32) -> StreamRewriter {
        StreamRewriter {
            clock_rate: clock_rate.max(1),
            out: None,
            resync: false,
            source_changes: 0,
        }
    }

    /// The clock rate of what is sent, used to turn elapsed time into
    /// timestamp ticks at the next source change.
    pub fn set_clock_rate(&mut self, hz: u32) {
        self.clock_rate = hz.max(1);
    }

    /// The next packet comes from a different source (e.g. a re-bridge),
    /// whatever its SSRC.
    pub fn new_source(&mut self) {
        self.resync = true;
    }

    /// How many times the stream was spliced onto a new source.
    pub fn source_changes(&self) -> u32 {
        self.source_changes
    }

    /// The SSRC this stream goes out with, once a packet was sent.
    pub fn ssrc(&self) -> Option<u32> {
        self.out.as_ref().map(|o| o.ssrc)
    }

    /// Where the stream stands at `now`, for an RTCP sender report: its
    /// SSRC and the RTP timestamp of `now` (the last one sent plus the time
    /// since, at the stream's clock rate). `None` before the first packet.
    pub fn position(&self, now: Instant) -> Option<(u32, u32)> {
        let out = self.out.as_ref()?;
        let since = ticks(now.saturating_duration_since(out.last_at), self.clock_rate);
        Some((out.ssrc, out.max_ts.wrapping_add(since)))
    }

    /// Rewrites SSRC, sequence number, timestamp (and the marker bit on a
    /// splice) of `packet`, which must be valid RTP; shorter than an RTP
    /// header, it is left alone. Returns whether this packet started a new
    /// source. `now` is when the packet is sent.
    pub fn rewrite(&mut self, packet: &mut [u8], now: Instant) -> bool {
        let Some(h) = packet
            .get_mut(..12)
            .and_then(|s| <&mut [u8; 12]>::try_from(s).ok())
        else {
            return false;
        };
        let in_seq = u16::from_be_bytes([h[2], h[3]]);
        let in_ts = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
        let in_ssrc = u32::from_be_bytes([h[8], h[9], h[10], h[11]]);

        let frame = (self.clock_rate / 50).max(1);
        let resync = std::mem::take(&mut self.resync);
        let mut spliced = false;
        let out = match &mut self.out {
            None => self.out.insert(OutStream {
                ssrc: in_ssrc,
                src_ssrc: in_ssrc,
                seq_off: 0,
                ts_off: 0,
                max_seq: in_seq,
                max_ts: in_ts,
                last_at: now,
            }),
            Some(out) => {
                if resync || out.src_ssrc != in_ssrc {
                    let ticks = ticks(now.saturating_duration_since(out.last_at), self.clock_rate)
                        .max(frame);
                    out.seq_off = out.max_seq.wrapping_add(1).wrapping_sub(in_seq);
                    out.ts_off = out.max_ts.wrapping_add(ticks).wrapping_sub(in_ts);
                    out.src_ssrc = in_ssrc;
                    self.source_changes = self.source_changes.saturating_add(1);
                    spliced = true;
                }
                out
            }
        };

        let seq = in_seq.wrapping_add(out.seq_off);
        let ts = in_ts.wrapping_add(out.ts_off);
        h[2..4].copy_from_slice(&seq.to_be_bytes());
        h[4..8].copy_from_slice(&ts.to_be_bytes());
        h[8..12].copy_from_slice(&out.ssrc.to_be_bytes());
        if spliced {
            h[1] |= 0x80;
        }
        // Serial-number comparison (RFC 1982): a late, reordered packet must
        // not pull the splice point back onto sequence numbers already used.
        if spliced || (seq.wrapping_sub(out.max_seq) as i16) > 0 {
            out.max_seq = seq;
            out.max_ts = ts;
        }
        out.last_at = now;
        spliced
    }
}

/// Elapsed time in clock ticks, capped below 2^31 so the new timestamp still
/// compares as later than the last one (serial arithmetic) after long gaps.
fn ticks(elapsed: Duration, clock_rate: u32) -> u32 {
    let t = elapsed.as_nanos() * u128::from(clock_rate) / 1_000_000_000;
    u32::try_from(t.min(i32::MAX as u128)).unwrap_or(i32::MAX as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(seq: u16, ts: u32, ssrc: u32) -> [u8; 16] {
        let mut p = [0u8; 16];
        p[0] = 0x80;
        p[1] = 0; // PCMU
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p[4..8].copy_from_slice(&ts.to_be_bytes());
        p[8..12].copy_from_slice(&ssrc.to_be_bytes());
        p[12..].copy_from_slice(&[1, 2, 3, 4]);
        p
    }

    fn fields(p: &[u8]) -> (bool, u16, u32, u32) {
        (
            p[1] & 0x80 != 0,
            u16::from_be_bytes([p[2], p[3]]),
            u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
            u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
        )
    }

    #[test]
    fn plain_relay_changes_nothing() {
        let mut rw = StreamRewriter::default();
        let t0 = Instant::now();
        for i in 0..100u16 {
            let orig = pkt(
                65500u16.wrapping_add(i),
                (u32::MAX - 800).wrapping_add(u32::from(i) * 160),
                0xabc,
            );
            let mut p = orig;
            assert!(!rw.rewrite(&mut p, t0 + Duration::from_millis(20 * u64::from(i))));
            assert_eq!(p, orig);
        }
        assert_eq!(rw.source_changes(), 0);
        assert_eq!(rw.ssrc(), Some(0xabc));
    }

    #[test]
    fn ssrc_change_splices_with_continuity() {
        let mut rw = StreamRewriter::default();
        let t0 = Instant::now();
        let mut p = pkt(100, 1000, 0x1111);
        rw.rewrite(&mut p, t0);
        let mut p = pkt(101, 1160, 0x1111);
        rw.rewrite(&mut p, t0 + Duration::from_millis(20));
        // New source 100 ms later.
        let mut p = pkt(5000, 777, 0x2222);
        assert!(rw.rewrite(&mut p, t0 + Duration::from_millis(120)));
        assert_eq!(fields(&p), (true, 102, 1160 + 800, 0x1111));
        assert_eq!(&p[12..], &[1, 2, 3, 4]);
        // Then constant offsets, no marker.
        let mut p = pkt(5001, 937, 0x2222);
        assert!(!rw.rewrite(&mut p, t0 + Duration::from_millis(140)));
        assert_eq!(fields(&p), (false, 103, 1160 + 960, 0x1111));
        assert_eq!(rw.source_changes(), 1);
    }

    #[test]
    fn resync_with_same_ssrc_and_minimum_frame() {
        let mut rw = StreamRewriter::new(48000);
        let t0 = Instant::now();
        let mut p = pkt(10, 5000, 7);
        rw.rewrite(&mut p, t0);
        rw.new_source();
        // Same SSRC, same instant: still one frame (20 ms at 48 kHz) ahead.
        let mut p = pkt(10, 5000, 7);
        assert!(rw.rewrite(&mut p, t0));
        assert_eq!(fields(&p), (true, 11, 5960, 7));
    }

    #[test]
    fn clock_rate_scales_elapsed_time() {
        let mut rw = StreamRewriter::new(8000);
        rw.set_clock_rate(16000);
        let t0 = Instant::now();
        let mut p = pkt(1, 0, 1);
        rw.rewrite(&mut p, t0);
        let mut p = pkt(1, 0, 2);
        rw.rewrite(&mut p, t0 + Duration::from_secs(1));
        assert_eq!(fields(&p), (true, 2, 16000, 1));
    }

    #[test]
    fn reordered_packet_does_not_move_splice_point_back() {
        let mut rw = StreamRewriter::default();
        let t0 = Instant::now();
        for (seq, ts) in [(1u16, 160u32), (3, 480), (2, 320)] {
            let mut p = pkt(seq, ts, 9);
            rw.rewrite(&mut p, t0);
        }
        let mut p = pkt(40, 4, 10);
        rw.rewrite(&mut p, t0);
        assert_eq!(fields(&p).1, 4);
        assert_eq!(fields(&p).2, 480 + 160);
    }

    #[test]
    fn short_buffers_are_left_alone() {
        let mut rw = StreamRewriter::default();
        let mut short = [0x80u8; 11];
        assert!(!rw.rewrite(&mut short, Instant::now()));
        assert_eq!(short, [0x80u8; 11]);
        assert_eq!(rw.ssrc(), None);
    }

    #[test]
    fn long_gap_still_moves_forward() {
        assert_eq!(
            ticks(Duration::from_secs(10 * 86_400), 48_000),
            i32::MAX as u32
        );
        assert_eq!(ticks(Duration::from_millis(20), 8000), 160);
    }
}

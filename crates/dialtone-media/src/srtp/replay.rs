//! Per-SSRC state: the packet index estimate of RFC 3711 §3.3.1 and
//! Appendix A (rollover counter and highest sequence number, kept as one
//! 48-bit index), and the replay windows of §3.3.2 for SRTP and SRTCP.

/// How far behind the highest index a packet may arrive (§3.3.2 says at
/// least 64).
const WINDOW: u64 = 64;

/// One SSRC's state in one context.
#[derive(Default)]
pub(super) struct SsrcState {
    /// Last use, for eviction.
    pub(super) used: u64,
    pub(super) rtp: Window,
    pub(super) rtcp: Window,
    /// The next SRTCP index to send (31 bits).
    pub(super) rtcp_sent: u32,
}

/// The highest index accepted so far and which of the 64 before it were.
#[derive(Default, Clone, Copy)]
pub(super) struct Window {
    max: Option<u64>,
    /// Bit d: index `max - d` was accepted.
    seen: u64,
}

impl Window {
    /// The 48-bit packet index of RTP sequence number `seq`: the rollover
    /// counter guessed from the highest index so far (Appendix A).
    pub(super) fn estimate(&self, seq: u16) -> u64 {
        let Some(max) = self.max else {
            return u64::from(seq);
        };
        let roc = max >> 16;
        let s_l = max & 0xffff;
        let seq = u64::from(seq);
        let v = if s_l < 32_768 {
            if seq > s_l + 32_768 {
                // From before a wrap; at ROC 0 there is none before.
                roc.saturating_sub(1)
            } else {
                roc
            }
        } else if s_l - 32_768 > seq {
            roc + 1
        } else {
            roc
        };
        ((v << 16) | seq) & 0xffff_ffff_ffff
    }

    /// Whether `index` is new: ahead of the highest, or within the window
    /// and not yet accepted.
    pub(super) fn fresh(&self, index: u64) -> bool {
        match self.max {
            None => true,
            Some(max) if index > max => true,
            Some(max) => {
                let d = max - index;
                d < WINDOW && self.seen & (1 << d) == 0
            }
        }
    }

    /// Records `index` as accepted (after its tag verified, or as sent).
    pub(super) fn accept(&mut self, index: u64) {
        match self.max {
            Some(max) if index <= max => {
                let d = max - index;
                if d < WINDOW {
                    self.seen |= 1 << d;
                }
            }
            Some(max) => {
                let shift = index - max;
                self.seen = if shift >= WINDOW {
                    0
                } else {
                    self.seen << shift
                };
                self.seen |= 1;
                self.max = Some(index);
            }
            None => {
                self.seen = 1;
                self.max = Some(index);
            }
        }
    }
}

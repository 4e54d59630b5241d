//! Per-endpoint counters: lock-free atomics bumped on the relay path, and the
//! [`EndpointStats`] snapshot handed to call control.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

/// A snapshot of one endpoint's traffic. "in" is what its peer sent us,
/// "out" is what we sent its peer.
#[derive(Clone, Debug, Default)]
pub struct EndpointStats {
    /// Valid RTP packets received from the peer (while bridged).
    pub rtp_in: u64,
    /// RTP packets sent to the peer.
    pub rtp_out: u64,
    /// RTP bytes (whole datagrams) received from the peer.
    pub bytes_in: u64,
    /// RTP bytes (whole datagrams) sent to the peer.
    pub bytes_out: u64,
    /// RTCP packets received from the peer.
    pub rtcp_in: u64,
    /// RTCP packets sent to the peer.
    pub rtcp_out: u64,
    /// Datagrams dropped: received ones that are not RTP/RTCP (counted on the
    /// endpoint they arrived at), and ones with nowhere to go — no remote
    /// address, sending turned off, or a send error (counted on the endpoint
    /// they would have left from).
    pub dropped: u64,
    /// SRTP/SRTCP datagrams from the peer refused: failed authentication,
    /// replays, or any media while SRTP is required but not agreed. Also
    /// counted in `dropped`.
    pub srtp_rejected: u64,
    /// The SRTP suite media with the peer is protected by (its SDP name),
    /// `"refused"` while SRTP is required but not agreed; `None`: plain RTP.
    pub srtp: Option<&'static str>,
    /// The address RTP from the peer last came from (what we send RTP to).
    pub latched: Option<SocketAddr>,
    /// How many times the stream this endpoint sends switched to a new source
    /// (another SSRC, or another bridged endpoint) and was spliced on.
    pub source_changes: u32,
    /// When RTP from the peer last arrived.
    pub last_rtp: Option<Instant>,
    /// How many times the latched RTP address changed after the first latch
    /// (NAT rebinding, or someone else sending to our port).
    pub relatches: u32,
    /// The jitter buffer's view of the stream from the peer, when it was
    /// decoded (transcoding, recording aside): loss, late packets, jitter.
    pub jitter: Option<crate::jitter::JitterStats>,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) rtp_in: AtomicU64,
    pub(crate) rtp_out: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) rtcp_in: AtomicU64,
    pub(crate) rtcp_out: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) srtp_rejected: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    /// Fills the counter fields of `stats`; the rest comes from the endpoint's state.
    pub(crate) fn fill(&self, stats: &mut EndpointStats) {
        stats.rtp_in = self.rtp_in.load(Relaxed);
        stats.rtp_out = self.rtp_out.load(Relaxed);
        stats.bytes_in = self.bytes_in.load(Relaxed);
        stats.bytes_out = self.bytes_out.load(Relaxed);
        stats.rtcp_in = self.rtcp_in.load(Relaxed);
        stats.rtcp_out = self.rtcp_out.load(Relaxed);
        stats.dropped = self.dropped.load(Relaxed);
        stats.srtp_rejected = self.srtp_rejected.load(Relaxed);
    }
}

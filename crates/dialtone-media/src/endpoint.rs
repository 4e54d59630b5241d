//! [`Endpoint`]: one media leg facing one SIP peer — its RTP/RTCP sockets, the
//! peer's addresses (from SDP, then latched), the send/expect switches call
//! control sets from SDP directions, and the continuity state of the stream it
//! sends. The state is shared with the relay tasks of the bridge it is in.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;

use crate::jitter::JitterStats;
use crate::ports::PortLease;
use crate::protect::{Protection, SrtpMode};
use crate::rewrite::StreamRewriter;
use crate::stats::{Counters, EndpointStats};
use crate::StreamFormat;

/// One media leg facing one SIP peer: an RTP+RTCP socket pair. Dropping it
/// (when it is not in a running [`Bridge`](crate::Bridge)) closes the sockets
/// and frees the ports.
pub struct Endpoint {
    pub(crate) shared: Arc<Shared>,
}

/// Everything about an endpoint; the relay tasks hold clones of the `Arc`.
pub(crate) struct Shared {
    pub(crate) id: u64,
    pub(crate) local: SocketAddr,
    // Sockets before the lease: fields drop in order, so the ports are closed
    // before the allocator may hand them out again.
    pub(crate) rtp: UdpSocket,
    pub(crate) rtcp: UdpSocket,
    pub(crate) rtp_timeout: Duration,
    pub(crate) counters: Counters,
    /// SRTP keys and contexts; plain unless call control keys it.
    pub(crate) protection: Protection,
    state: Mutex<State>,
    _lease: PortLease,
}

/// Mutable per-endpoint state. Locked briefly (no await while held) by the
/// relay tasks, a couple of times per packet; uncontended in practice.
pub(crate) struct State {
    /// Where SDP says to send.
    pub(crate) sdp_rtp: Option<SocketAddr>,
    pub(crate) sdp_rtcp: Option<SocketAddr>,
    /// Where the peer actually sends from (symmetric RTP).
    pub(crate) latched_rtp: Option<SocketAddr>,
    pub(crate) latched_rtcp: Option<SocketAddr>,
    pub(crate) relatches: u32,
    pub(crate) send: bool,
    pub(crate) expect_rtp: bool,
    /// When the peer became expected to send (timeouts count from here at least).
    pub(crate) expect_since: Instant,
    pub(crate) last_rtp: Option<Instant>,
    /// An RtpTimeout was reported for the current silence.
    pub(crate) timeout_reported: bool,
    /// The stream this endpoint sends.
    pub(crate) tx: StreamRewriter,
    /// Id of the endpoint whose packets this one last sent (to tell a re-bridge
    /// to the same endpoint from one to another).
    pub(crate) tx_source: Option<u64>,
    /// What the peer negotiated (codec, payload types), when call control said.
    pub(crate) format: Option<StreamFormat>,
    /// Jitter-buffer statistics of the stream received from the peer, while
    /// it is decoded (transcoding, the audio port).
    pub(crate) jitter: Option<JitterStats>,
    /// The last RTCP SR from the peer: its LSR value and when it arrived,
    /// for the report blocks we send back (RFC 3550 §6.4.1).
    pub(crate) peer_sr: Option<(u32, Instant)>,
}

impl State {
    /// Where RTP for the peer goes: the latched address once the peer sent
    /// something, else what SDP said. None when SDP says nowhere or sending is off.
    pub(crate) fn rtp_dest(&self) -> Option<SocketAddr> {
        if !self.send {
            return None;
        }
        self.sdp_rtp?;
        self.latched_rtp.or(self.sdp_rtp)
    }

    /// Where RTCP for the peer goes. Not gated by `send`: RTCP keeps flowing
    /// on sendonly/inactive streams (RFC 3264 §5.1).
    pub(crate) fn rtcp_dest(&self) -> Option<SocketAddr> {
        let sdp = self.sdp_rtcp.or_else(|| {
            let rtp = self.sdp_rtp?;
            Some(SocketAddr::new(rtp.ip(), rtp.port().checked_add(1)?))
        })?;
        Some(self.latched_rtcp.unwrap_or(sdp))
    }
}

impl Shared {
    pub(crate) fn new(
        id: u64,
        local: SocketAddr,
        rtp: UdpSocket,
        rtcp: UdpSocket,
        rtp_timeout: Duration,
        lease: PortLease,
    ) -> Shared {
        Shared {
            id,
            local,
            rtp,
            rtcp,
            rtp_timeout,
            counters: Counters::default(),
            protection: Protection::default(),
            state: Mutex::new(State {
                sdp_rtp: None,
                sdp_rtcp: None,
                latched_rtp: None,
                latched_rtcp: None,
                relatches: 0,
                send: true,
                expect_rtp: true,
                expect_since: Instant::now(),
                last_rtp: None,
                timeout_reported: false,
                tx: StreamRewriter::default(),
                tx_source: None,
                format: None,
                jitter: None,
                peer_sr: None,
            }),
            _lease: lease,
        }
    }

    pub(crate) fn set_jitter(&self, stats: JitterStats) {
        self.lock().jitter = Some(stats);
    }

    pub(crate) fn format(&self) -> Option<StreamFormat> {
        self.lock().format.clone()
    }

    /// A poisoned lock only means a relay task panicked mid-update; the state
    /// is still plain data, so keep serving.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Endpoint {
    /// Unique per engine; names the endpoint in [`MediaEvent`](crate::MediaEvent)s.
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    /// `advertise_ip:rtp_port`, for SDP.
    pub fn local(&self) -> SocketAddr {
        self.shared.local
    }

    /// `advertise_ip:rtcp_port` (the RTP port + 1), for an `a=rtcp` line.
    pub fn local_rtcp(&self) -> SocketAddr {
        SocketAddr::new(
            self.shared.local.ip(),
            self.shared.local.port().saturating_add(1),
        )
    }

    /// Where the peer's SDP says to send RTP, and RTCP (RTP port + 1 unless
    /// `rtcp` is given). `None` means nowhere: port 0, a `0.0.0.0` hold, or
    /// no SDP yet — nothing is sent then, latched or not.
    ///
    /// A new RTP address (not just the same one again after a hold) forgets
    /// the latched addresses: until the peer sends from somewhere, we send
    /// where its new SDP says.
    pub fn set_remote(&self, rtp: Option<SocketAddr>, rtcp: Option<SocketAddr>) {
        let mut st = self.shared.lock();
        if rtp.is_some() && rtp != st.sdp_rtp {
            st.latched_rtp = None;
            st.latched_rtcp = None;
        }
        st.sdp_rtp = rtp;
        st.sdp_rtcp = rtcp;
    }

    /// Whether we send media to this peer: false when its SDP is sendonly or
    /// inactive (it does not want to receive).
    pub fn set_send(&self, on: bool) {
        self.shared.lock().send = on;
    }

    /// Whether the peer is expected to send RTP: false when its SDP is
    /// recvonly or inactive, and then it gets no RtpTimeout. Turning it on
    /// starts the timeout afresh.
    pub fn set_expect_rtp(&self, on: bool) {
        let mut st = self.shared.lock();
        if on && !st.expect_rtp {
            st.expect_since = Instant::now();
            st.timeout_reported = false;
        }
        st.expect_rtp = on;
    }

    /// The RTP clock rate of what we send to this peer, for timestamp
    /// continuity across a source change; default 8000.
    pub fn set_clock_rate(&self, hz: u32) {
        self.shared.lock().tx.set_clock_rate(hz);
    }

    /// What the peer negotiated: the codec and payload types it sends and
    /// wants to receive. Bridges relay packets untouched between two
    /// endpoints of the same codec (renumbering payload types) and transcode
    /// between different ones. Also sets the clock rate of what is sent.
    pub fn set_format(&self, format: StreamFormat) {
        let mut st = self.shared.lock();
        st.tx.set_clock_rate(format.clock_rate);
        st.format = Some(format);
    }

    /// How media with the peer is protected, from the SDES exchange with
    /// it (RFC 4568); [`SrtpMode::Off`] until set. Setting the same keys
    /// again keeps the SRTP state (rollover counters, replay windows).
    pub fn set_srtp(&self, mode: SrtpMode) {
        self.shared.protection.set(self.shared.id, mode);
    }

    /// The format set by [`set_format`](Self::set_format).
    pub fn format(&self) -> Option<StreamFormat> {
        self.shared.format()
    }

    pub fn stats(&self) -> EndpointStats {
        self.shared.stats()
    }
}

impl Shared {
    pub(crate) fn stats(&self) -> EndpointStats {
        let mut s = EndpointStats::default();
        {
            let st = self.lock();
            s.latched = st.latched_rtp;
            s.relatches = st.relatches;
            s.source_changes = st.tx.source_changes();
            s.last_rtp = st.last_rtp;
            s.jitter = st.jitter.clone();
        }
        s.srtp = self.protection.describe();
        self.counters.fill(&mut s);
        s
    }
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("id", &self.shared.id)
            .field("local", &self.shared.local)
            .finish()
    }
}

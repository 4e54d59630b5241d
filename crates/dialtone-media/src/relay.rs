//! The relay fast path: one task per bridge relays its four routes (RTP
//! and RTCP, each way), receiving on one endpoint's socket and sending out
//! of the other's, and keeps the bridge's RTP-timeout watchdog. It waits
//! until a socket is readable, then relays every datagram waiting there
//! without awaiting anything: its receive buffer lives on the stack for
//! that stretch, not in the task. Headers are rewritten in place; nothing
//! is allocated per packet. Sends never wait: a datagram that finds the
//! kernel's send buffer full is dropped and counted, as late media would
//! be worthless, so one direction never holds up the other, and a call
//! costs one task to start and one to stop rather than one per route.

use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::sync::watch;
use tracing::{debug, trace};

use crate::endpoint::Shared;
use crate::format::PtMap;
use crate::packet::{classify, is_rtcp, Datagram};
use crate::protect::Outbound;
use crate::record::Tap;
use crate::stats::Counters;
use crate::watchdog::Watchdog;

/// Receive buffer size. A datagram that fills it may have been truncated by
/// the kernel and is dropped rather than relayed corrupt; RTP stays under the
/// path MTU, so this is never reached by real media.
pub(crate) const BUF_LEN: usize = 4096;

/// What the RTP relay of one direction does to packets besides forwarding:
/// payload type renumbering, and a copy to the call's recorder.
#[derive(Default)]
pub(crate) struct Route {
    pub(crate) pts: PtMap,
    pub(crate) tap: Option<Tap>,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Channel {
    Rtp,
    Rtcp,
}

/// Where one route's datagrams come from and go: `chan` datagrams
/// arriving at `from` go out of `to`.
pub(crate) struct Path {
    pub(crate) chan: Channel,
    pub(crate) from: Arc<Shared>,
    pub(crate) to: Arc<Shared>,
    pub(crate) route: Route,
}

impl Path {
    fn socket(&self) -> &tokio::net::UdpSocket {
        match self.chan {
            Channel::Rtp => &self.from.rtp,
            Channel::Rtcp => &self.from.rtcp,
        }
    }
}

/// Relays along every path until `stop` fires (or its sender is dropped),
/// and checks `watchdog` when it is due.
pub(crate) async fn run(
    paths: Vec<Path>,
    watchdog: Option<Watchdog>,
    mut stop: watch::Receiver<bool>,
) {
    // Created once, not per packet: it registers its waker a single time.
    let stopped = stop.changed();
    tokio::pin!(stopped);
    let first = watchdog.as_ref().map_or_else(Instant::now, Watchdog::check);
    let due = tokio::time::sleep_until(first.into());
    tokio::pin!(due);
    loop {
        let ready = tokio::select! {
            // Stop first: under a constant packet flow a socket is always
            // ready and would otherwise starve it; the watchdog next, for
            // the same reason (it fires only when due).
            biased;
            _ = &mut stopped => break,
            () = &mut due, if watchdog.is_some() => {
                if let Some(w) = &watchdog {
                    due.as_mut().reset(w.check().into());
                }
                continue;
            }
            ready = std::future::poll_fn(|cx| readable(&paths, cx)) => ready,
        };
        let Ok(ready) = ready else {
            break;
        };
        for (i, path) in paths.iter().enumerate() {
            if ready & (1 << i) != 0 {
                relay_waiting(path);
            }
        }
    }
}

/// Which paths' sockets are readable, as a bit per path; pending (with
/// every socket's waker set) when none is. An error means the reactor is
/// gone (the runtime shuts down).
fn readable(paths: &[Path], cx: &mut Context<'_>) -> Poll<std::io::Result<u32>> {
    let mut ready = 0;
    for (i, path) in paths.iter().enumerate() {
        match path.socket().poll_recv_ready(cx) {
            Poll::Ready(Ok(())) => ready |= 1 << i,
            Poll::Ready(Err(e)) => {
                debug!(endpoint = path.from.id, error = %e, "relay socket failed");
                return Poll::Ready(Err(e));
            }
            Poll::Pending => {}
        }
    }
    if ready == 0 {
        Poll::Pending
    } else {
        Poll::Ready(Ok(ready))
    }
}

/// Relays the datagrams waiting on `path`'s socket (at most a batch, so
/// that the stop signal, the other paths and other tasks get their turn
/// under a flood).
fn relay_waiting(path: &Path) {
    const BATCH: usize = 64;
    let Path {
        chan,
        from,
        to,
        route,
    } = path;
    let sock = path.socket();
    let mut buf = [0u8; BUF_LEN];
    for _ in 0..BATCH {
        let r = match sock.try_recv_from(&mut buf) {
            // Readiness is cleared: back to waiting.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
            r => r,
        };
        let Some((n, src)) = received(from, r, &mut buf) else {
            continue;
        };
        let pkt = &mut buf[..n];
        match chan {
            Channel::Rtp => relay_rtp_port(from, to, pkt, src, route),
            Channel::Rtcp => relay_rtcp_port(from, to, pkt, src),
        }
    }
}

fn relay_rtp_port(from: &Shared, to: &Shared, pkt: &mut [u8], src: SocketAddr, route: &Route) {
    match classify(pkt) {
        Datagram::Invalid => Counters::add(&from.counters.dropped, 1),
        // RTCP multiplexed on the RTP port goes out the same way, untouched.
        Datagram::Rtcp => {
            Counters::add(&from.counters.rtcp_in, 1);
            let dest = to.lock().rtp_dest();
            send(to, &to.rtp, pkt, dest, &to.counters.rtcp_out);
        }
        Datagram::Rtp(_) => {
            let now = Instant::now();
            received_rtp(from, src, pkt.len(), now);
            if let Some(tap) = &route.tap {
                tap.packet(pkt, now);
            }
            if !route.pts.apply(pkt) {
                Counters::add(&to.counters.dropped, 1);
                return;
            }
            forward_rtp(to, from.id, pkt, now);
        }
    }
}

/// A receive result on one of `ep`'s sockets into `buf` (at most
/// [`BUF_LEN`] long): the plain datagram's length and source, or `None` for
/// an error (transient, e.g. an ICMP port-unreachable reported for an
/// earlier send), a datagram that filled the buffer (perhaps truncated by
/// the kernel: dropped rather than passed on corrupt; RTP stays under the
/// path MTU), or, on an SRTP endpoint, one that fails SRTP's checks. SRTP
/// is verified and decrypted here, in place, so everything after sees RTP.
pub(crate) fn received(
    ep: &Shared,
    r: std::io::Result<(usize, SocketAddr)>,
    buf: &mut [u8],
) -> Option<(usize, SocketAddr)> {
    match r {
        Ok((n, _)) if n >= BUF_LEN.min(buf.len()) => {
            Counters::add(&ep.counters.dropped, 1);
            None
        }
        Ok((n, src)) => match ep.protection.inbound(ep.id, &mut buf[..n]) {
            Some(n) => Some((n, src)),
            None => {
                Counters::add(&ep.counters.dropped, 1);
                Counters::add(&ep.counters.srtp_rejected, 1);
                None
            }
        },
        Err(e) => {
            trace!(endpoint = ep.id, error = %e, "receive error");
            None
        }
    }
}

/// Bookkeeping for an RTP packet from `from`'s peer: latching onto its
/// source address, the timeout clock, the counters.
pub(crate) fn received_rtp(from: &Shared, src: SocketAddr, len: usize, now: Instant) {
    {
        let mut guard = from.lock();
        let st = &mut *guard;
        if st.latched_rtp != Some(src) {
            latch_rtp(from.id, &mut st.latched_rtp, &mut st.relatches, src);
        }
        st.last_rtp = Some(now);
        st.timeout_reported = false;
    }
    Counters::add(&from.counters.rtp_in, 1);
    Counters::add(&from.counters.bytes_in, len as u64);
}

/// A datagram arriving on `ep`'s RTP socket for a decoder (transcoding,
/// the audio port), which terminates the stream rather than relaying it:
/// RTCP multiplexed on the port is counted and dropped like the RTCP port's,
/// garbage is counted as dropped, and RTP latches its sender and is counted.
/// The header of an RTP packet, else `None`.
pub(crate) fn received_for_decoding(
    ep: &Shared,
    pkt: &[u8],
    src: SocketAddr,
    now: Instant,
) -> Option<crate::packet::RtpHeader> {
    match classify(pkt) {
        Datagram::Rtp(h) => {
            received_rtp(ep, src, pkt.len(), now);
            Some(h)
        }
        Datagram::Rtcp => {
            Counters::add(&ep.counters.rtcp_in, 1);
            None
        }
        Datagram::Invalid => {
            Counters::add(&ep.counters.dropped, 1);
            None
        }
    }
}

/// Sends an RTP packet to `to`'s peer as part of the one continuous stream
/// `to` sends: `source` names where the packet comes from (an endpoint id,
/// or a transcoder's), and a change of source splices the stream.
pub(crate) fn forward_rtp(to: &Shared, source: u64, pkt: &mut [u8], now: Instant) {
    let dest = {
        let mut st = to.lock();
        let dest = st.rtp_dest();
        if dest.is_some() {
            // Packets from another source than the last ones sent (a
            // re-bridge) start a new source even with the same SSRC.
            if st.tx_source != Some(source) {
                if st.tx_source.is_some() {
                    st.tx.new_source();
                }
                st.tx_source = Some(source);
            }
            st.tx.rewrite(pkt, now);
        }
        dest
    };
    if send(to, &to.rtp, pkt, dest, &to.counters.rtp_out) {
        Counters::add(&to.counters.bytes_out, pkt.len() as u64);
    }
}

fn relay_rtcp_port(from: &Shared, to: &Shared, pkt: &mut [u8], src: SocketAddr) {
    if !received_rtcp(from, pkt, src) {
        return;
    }
    let dest = to.lock().rtcp_dest();
    send(to, &to.rtcp, pkt, dest, &to.counters.rtcp_out);
}

/// Bookkeeping for a datagram on `from`'s RTCP port: false (and counted as
/// dropped) when it is not RTCP; otherwise latched and counted.
pub(crate) fn received_rtcp(from: &Shared, pkt: &[u8], src: SocketAddr) -> bool {
    if !is_rtcp(pkt) {
        Counters::add(&from.counters.dropped, 1);
        return false;
    }
    {
        let mut st = from.lock();
        if st.latched_rtcp != Some(src) {
            debug!(endpoint = from.id, %src, "RTCP latched");
            st.latched_rtcp = Some(src);
        }
    }
    Counters::add(&from.counters.rtcp_in, 1);
    true
}

/// Symmetric RTP: send to wherever the peer's RTP comes from, which is the
/// only address that works for a phone behind NAT (its SDP carries a private
/// address). We re-latch on every change so a NAT rebinding mid-call heals
/// itself. The trade-off: anyone who learns or guesses our port and sends one
/// well-formed RTP packet captures the stream towards the peer ("RTP bleed").
/// Restricting latching to the SDP address or the first packets would break
/// NAT rebinding; SRTP is the real protection, and re-latches are counted in
/// the stats and logged so they can be watched.
fn latch_rtp(id: u64, slot: &mut Option<SocketAddr>, relatches: &mut u32, src: SocketAddr) {
    match slot.replace(src) {
        None => debug!(endpoint = id, %src, "RTP latched"),
        Some(old) => {
            *relatches = relatches.saturating_add(1);
            debug!(endpoint = id, %old, %src, "RTP re-latched");
        }
    }
}

/// Sends `pkt` out of `sock` (one of `to`'s sockets), as SRTP if `to` is
/// keyed for it; counts it in `sent`, or as dropped when there is nowhere
/// to send, SRTP is refused, or the send fails (a full send buffer
/// included: the datagram is dropped rather than waited for).
pub(crate) fn send(
    to: &Shared,
    sock: &tokio::net::UdpSocket,
    pkt: &[u8],
    dest: Option<SocketAddr>,
    sent: &std::sync::atomic::AtomicU64,
) -> bool {
    let Some(dest) = dest else {
        Counters::add(&to.counters.dropped, 1);
        return false;
    };
    let protected;
    let pkt = match to.protection.outbound(to.id, pkt) {
        Outbound::Plain(pkt) => pkt,
        Outbound::Protected(out) => {
            protected = out;
            &protected[..]
        }
        Outbound::Drop => {
            Counters::add(&to.counters.dropped, 1);
            return false;
        }
    };
    // The syscall itself, not tokio's `try_send_to`: that one answers
    // WouldBlock without trying until the reactor has seen the socket
    // writable, and a UDP socket, never full, may not be seen so again.
    match socket2::SockRef::from(sock).send_to(pkt, &dest.into()) {
        Ok(_) => {
            Counters::add(sent, 1);
            true
        }
        Err(e) => {
            trace!(endpoint = to.id, %dest, error = %e, "send failed");
            Counters::add(&to.counters.dropped, 1);
            false
        }
    }
}

//! The relay fast path: one loop per direction and channel (RTP or RTCP) that
//! receives on one endpoint's socket and sends out of the other's. A loop
//! waits for its socket to be readable, then relays every datagram waiting
//! without awaiting anything: its receive buffer lives on the stack for
//! that stretch, not in the task (four relays per call would otherwise
//! hold 16 KiB of buffers for the whole call). Headers are rewritten in
//! place; nothing is allocated per packet. Sends never wait: a datagram
//! that finds the kernel's send buffer full is dropped and counted, as
//! late media would be worthless.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;
use tracing::{debug, trace};

use crate::endpoint::Shared;
use crate::format::PtMap;
use crate::packet::{classify, is_rtcp, Datagram};
use crate::protect::Outbound;
use crate::record::Tap;
use crate::stats::Counters;

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

/// Relays `chan` datagrams arriving at `from` out of `to` until `stop` fires
/// (or its sender is dropped).
pub(crate) async fn run(
    chan: Channel,
    from: Arc<Shared>,
    to: Arc<Shared>,
    route: Route,
    mut stop: watch::Receiver<bool>,
) {
    let sock = match chan {
        Channel::Rtp => &from.rtp,
        Channel::Rtcp => &from.rtcp,
    };
    // Created once, not per packet: it registers its waker a single time.
    let stopped = stop.changed();
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            // Stop first: under a constant packet flow the receive branch is
            // always ready and would otherwise starve it.
            biased;
            _ = &mut stopped => break,
            r = sock.readable() => if let Err(e) = r {
                debug!(endpoint = from.id, error = %e, "relay socket failed");
                break;
            },
        }
        relay_waiting(chan, sock, &from, &to, &route);
    }
}

/// Relays the datagrams waiting on `sock` (at most a batch, so that the
/// stop signal and other tasks get their turn under a flood).
fn relay_waiting(
    chan: Channel,
    sock: &tokio::net::UdpSocket,
    from: &Shared,
    to: &Shared,
    route: &Route,
) {
    const BATCH: usize = 64;
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

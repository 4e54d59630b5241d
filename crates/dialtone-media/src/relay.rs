//! The relay fast path: one loop per direction and channel (RTP or RTCP) that
//! receives on one endpoint's socket and sends out of the other's. One fixed
//! receive buffer per loop; headers are rewritten in place; nothing is
//! allocated per packet.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;
use tracing::{debug, trace};

use crate::endpoint::Shared;
use crate::packet::{classify, is_rtcp, Datagram};
use crate::stats::Counters;

/// Receive buffer size. A datagram that fills it may have been truncated by
/// the kernel and is dropped rather than relayed corrupt; RTP stays under the
/// path MTU, so this is never reached by real media.
const BUF_LEN: usize = 4096;

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
    mut stop: watch::Receiver<bool>,
) {
    let mut buf = [0u8; BUF_LEN];
    let sock = match chan {
        Channel::Rtp => &from.rtp,
        Channel::Rtcp => &from.rtcp,
    };
    // Created once, not per packet: it registers its waker a single time.
    let stopped = stop.changed();
    tokio::pin!(stopped);
    loop {
        let (n, src) = tokio::select! {
            // Stop first: under a constant packet flow the receive branch is
            // always ready and would otherwise starve it.
            biased;
            _ = &mut stopped => break,
            r = sock.recv_from(&mut buf) => match r {
                Ok(r) => r,
                // Transient (e.g. Windows reports an ICMP port-unreachable for
                // an earlier send as a receive error): keep going.
                Err(e) => {
                    trace!(endpoint = from.id, error = %e, "receive error");
                    continue;
                }
            },
        };
        if n >= BUF_LEN {
            Counters::add(&from.counters.dropped, 1);
            continue;
        }
        let pkt = &mut buf[..n];
        match chan {
            Channel::Rtp => relay_rtp_port(&from, &to, pkt, src).await,
            Channel::Rtcp => relay_rtcp_port(&from, &to, pkt, src).await,
        }
    }
}

async fn relay_rtp_port(from: &Shared, to: &Shared, pkt: &mut [u8], src: SocketAddr) {
    match classify(pkt) {
        Datagram::Invalid => Counters::add(&from.counters.dropped, 1),
        // RTCP multiplexed on the RTP port goes out the same way, untouched.
        Datagram::Rtcp => {
            Counters::add(&from.counters.rtcp_in, 1);
            let dest = to.lock().rtp_dest();
            send(to, &to.rtp, pkt, dest, &to.counters.rtcp_out).await;
        }
        Datagram::Rtp(_) => {
            let now = Instant::now();
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
            Counters::add(&from.counters.bytes_in, pkt.len() as u64);

            let dest = {
                let mut st = to.lock();
                let dest = st.rtp_dest();
                if dest.is_some() {
                    // Packets from another endpoint than the last ones sent
                    // (a re-bridge) start a new source even with the same SSRC.
                    if st.tx_source != Some(from.id) {
                        if st.tx_source.is_some() {
                            st.tx.new_source();
                        }
                        st.tx_source = Some(from.id);
                    }
                    st.tx.rewrite(pkt, now);
                }
                dest
            };
            if send(to, &to.rtp, pkt, dest, &to.counters.rtp_out).await {
                Counters::add(&to.counters.bytes_out, pkt.len() as u64);
            }
        }
    }
}

async fn relay_rtcp_port(from: &Shared, to: &Shared, pkt: &mut [u8], src: SocketAddr) {
    if !is_rtcp(pkt) {
        Counters::add(&from.counters.dropped, 1);
        return;
    }
    {
        let mut st = from.lock();
        if st.latched_rtcp != Some(src) {
            debug!(endpoint = from.id, %src, "RTCP latched");
            st.latched_rtcp = Some(src);
        }
    }
    Counters::add(&from.counters.rtcp_in, 1);
    let dest = to.lock().rtcp_dest();
    send(to, &to.rtcp, pkt, dest, &to.counters.rtcp_out).await;
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

/// Sends `pkt` out of `sock` (one of `to`'s sockets); counts it in `sent`,
/// or as dropped when there is nowhere to send or the send fails.
async fn send(
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
    match sock.send_to(pkt, dest).await {
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

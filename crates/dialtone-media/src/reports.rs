//! RTCP on a transcoded endpoint. The two sides' reports describe streams
//! that no longer exist end to end (other SSRCs, other clocks), so they are
//! not relayed: dialtone terminates the peer's RTCP here (latching its
//! address, counting it, keeping its last SR for our report blocks) and
//! sends the peer compound SR/RR packets of its own ([`report`]) about the
//! stream it receives from that peer — the jitter buffer's loss and jitter —
//! and the one it sends it.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tokio::sync::watch;

use crate::endpoint::Shared;
use crate::relay::{received, received_rtcp, send};
use crate::rtcp::{self, ReportBlock, RtcpItem, SenderInfo};

/// Fixed RTP header length, taken off the byte count for the SR's octets.
const RTP_HEADER: u64 = 12;

/// Sends the peer of `ep` an SR (or an RR before we sent it anything)
/// carrying `block`, the report on the stream it sends us.
pub(crate) fn report(ep: &Shared, block: impl FnOnce(u32, u32) -> Option<ReportBlock>) {
    let now = Instant::now();
    let (position, peer_sr, dest) = {
        let st = ep.lock();
        (st.tx.position(now), st.peer_sr, st.rtcp_dest())
    };
    let (lsr, dlsr) = match peer_sr {
        Some((lsr, at)) => (lsr, rtcp::dlsr(now.saturating_duration_since(at))),
        None => (0, 0),
    };
    let block = block(lsr, dlsr);
    let cname = format!("dialtone@{}", ep.local.ip());
    let mut out = Vec::with_capacity(128);
    match position {
        Some((ssrc, rtp_ts)) => {
            let packets = ep
                .counters
                .rtp_out
                .load(std::sync::atomic::Ordering::Relaxed);
            let bytes = ep
                .counters
                .bytes_out
                .load(std::sync::atomic::Ordering::Relaxed);
            let info = SenderInfo {
                ssrc,
                ntp: rtcp::ntp_timestamp(SystemTime::now()),
                rtp_ts,
                packets: packets as u32,
                octets: bytes.saturating_sub(packets * RTP_HEADER) as u32,
            };
            rtcp::sender_report(&info, block.as_ref(), &cname, &mut out);
        }
        // Nothing sent yet: report as a receiver, under the endpoint's id
        // (an SSRC only needs to be unique within the session).
        None => rtcp::receiver_report(ep.id as u32, block.as_ref(), &cname, &mut out),
    }
    send(ep, &ep.rtcp, &out, dest, &ep.counters.rtcp_out);
}

const BUF_LEN: usize = 2048;

pub(crate) async fn run(ep: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut buf = [0u8; BUF_LEN];
    let stopped = stop.changed();
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            biased;
            _ = &mut stopped => break,
            r = ep.rtcp.recv_from(&mut buf) => {
                if let Some((n, src)) = received(&ep, r, &mut buf) {
                    let pkt = &buf[..n];
                    if received_rtcp(&ep, pkt, src) {
                        note_sender_report(&ep, pkt);
                    }
                }
            }
        }
    }
}

/// Keeps the LSR of an SR from the peer, for the DLSR of our next report.
fn note_sender_report(ep: &Shared, pkt: &[u8]) {
    for item in rtcp::parse(pkt) {
        if let RtcpItem::Sr { ntp, .. } = item {
            ep.lock().peer_sr = Some((rtcp::lsr(ntp), Instant::now()));
        }
    }
}

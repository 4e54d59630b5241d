//! RTCP on a transcoding bridge: the peers' reports are terminated, and
//! each peer gets dialtone's own SR with a report block on the stream it
//! sends — loss and highest sequence number from the jitter buffer, and the
//! LSR/DLSR of the peer's last SR.

mod common;

use std::time::{Duration, Instant, SystemTime};

use common::*;
use dialtone_media::codec::Codec;
use dialtone_media::rtcp::{self, RtcpItem};
use dialtone_media::{Bridge, StreamFormat};
use tokio::sync::mpsc;

const SSRC_A: u32 = 0x0A0A_0A0A;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transcoding_bridge_sends_its_own_reports_with_the_jitter_buffers_figures() {
    let engine = engine(34000..=34099, Duration::ZERO);
    let (a, b) = (Phone::new().await, Phone::new().await);
    let (ea, eb) = legs(&engine, &a, &b).await;
    ea.set_format(StreamFormat::of(Codec::pcmu(), 0));
    eb.set_format(StreamFormat::of(Codec::pcma(), 8));
    let (to_a, to_b) = (ea.local(), eb.local());
    let rtcp_to_a = ea.local_rtcp();
    let (events, _rx) = mpsc::unbounded_channel();
    let bridge = Bridge::start(ea, eb, events);

    // Phone A: an SR first (its NTP time is what our LSR must echo), then
    // 3.5 s of PCMU with every 20th packet missing; phone B sends PCMA.
    let ntp = rtcp::ntp_timestamp(SystemTime::now());
    let mut sr = Vec::new();
    let info = rtcp::SenderInfo {
        ssrc: SSRC_A,
        ntp,
        rtp_ts: 0,
        packets: 0,
        octets: 0,
    };
    rtcp::sender_report(&info, None, "phone-a", &mut sr);
    a.rtcp.send_to(&sr, rtcp_to_a).await.expect("send SR");
    let start = Instant::now();
    let mut sent_a = 0u16;
    for i in 0..175u16 {
        if i % 20 != 19 {
            a.send(
                to_a,
                &rtp(0, i == 0, i, u32::from(i) * 160, SSRC_A, &[0xff; 160]),
            )
            .await;
            sent_a = i;
        }
        b.send(
            to_b,
            &rtp(8, i == 0, i, u32::from(i) * 160, 0x0B0B_0B0B, &[0xd5; 160]),
        )
        .await;
        let next = start + Duration::from_millis(20 * (u64::from(i) + 1));
        tokio::time::sleep_until(next.into()).await;
    }

    // Dialtone's report to A arrived on A's RTCP socket (after half of the
    // 5 s interval, so within the 3.5 s above or shortly after).
    let mut found = None;
    let deadline = Instant::now() + Duration::from_secs(4);
    while found.is_none() && Instant::now() < deadline {
        let Some((pkt, _)) = recv_on(&a.rtcp, Duration::from_millis(500)).await else {
            continue;
        };
        let items = rtcp::parse(&pkt);
        let sender = items.iter().find_map(|i| match i {
            RtcpItem::Sr { ssrc, packets, .. } => Some((*ssrc, *packets)),
            _ => None,
        });
        let block = items.iter().find_map(|i| match i {
            RtcpItem::ReportBlock(b) => Some(*b),
            _ => None,
        });
        if let (Some(s), Some(b)) = (sender, block) {
            found = Some((s, b));
        }
    }
    bridge.stop().await;
    let ((_, packets), block) = found.expect("an SR with a report block from dialtone to phone A");
    assert!(packets > 50, "the SR counts the PCMU sent to A: {packets}");
    assert_eq!(block.ssrc, SSRC_A, "the block reports on A's stream");
    assert!(
        block.cumulative_lost >= 3,
        "A's missing packets are reported lost: {block:?}"
    );
    assert!(
        u32::from(sent_a) >= block.highest_seq && block.highest_seq > 100,
        "{block:?}"
    );
    assert_eq!(block.lsr, rtcp::lsr(ntp), "LSR echoes A's SR");
    assert!(
        block.dlsr > 0,
        "DLSR counts the time since A's SR: {block:?}"
    );
}

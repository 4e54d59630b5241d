//! The relay between two phones: both directions, latching, send switch,
//! RTCP, RFC 4733 events, stale packets and garbage.

mod common;

use std::time::Duration;

use common::*;
use dialtone_media::Bridge;
use tokio::sync::mpsc;

const SHORT: Duration = Duration::from_millis(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_both_ways_untouched() {
    let eng = engine(31200..=31299, Duration::ZERO);
    let (a, b) = (Phone::new().await, Phone::new().await);
    let (ea, eb) = legs(&eng, &a, &b).await;
    let (a_port, b_port) = (ea.local(), eb.local());
    let (tx, _rx) = mpsc::unbounded_channel();
    let bridge = Bridge::start(ea, eb, tx);

    let mut sent_ab = Vec::new();
    let mut sent_ba = Vec::new();
    for i in 0..50u16 {
        let pa = audio(1000 + i, 8000 + u32::from(i) * 160, 0xaaaa);
        let pb = audio(7000 + i, 90_000 + u32::from(i) * 160, 0xbbbb);
        a.send(a_port, &pa).await;
        b.send(b_port, &pb).await;
        sent_ab.push(pa);
        sent_ba.push(pb);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let at_b = b.recv_n(50).await;
    let at_a = a.recv_n(50).await;
    // A plain relay changes nothing: every packet arrives byte-identical, in order.
    assert_eq!(at_b, sent_ab);
    assert_eq!(at_a, sent_ba);
    assert!(b.recv(SHORT).await.is_none(), "nothing extra");

    let (sa, sb) = bridge.stats();
    let len = sent_ab[0].len() as u64;
    assert_eq!(
        (sa.rtp_in, sa.rtp_out, sb.rtp_in, sb.rtp_out),
        (50, 50, 50, 50)
    );
    assert_eq!((sa.bytes_in, sa.bytes_out), (50 * len, 50 * len));
    assert_eq!((sb.bytes_in, sb.bytes_out), (50 * len, 50 * len));
    assert_eq!((sa.dropped, sb.dropped), (0, 0));
    assert_eq!(sa.latched, Some(a.rtp_addr()));
    assert_eq!(sb.latched, Some(b.rtp_addr()));
    assert_eq!((sa.source_changes, sb.source_changes), (0, 0));
    assert!(sa.last_rtp.is_some() && sb.last_rtp.is_some());

    // Packets to B come from B's endpoint (what B's SDP was given).
    a.send(a_port, &audio(2000, 0, 0xaaaa)).await;
    let (_, from) = b.recv(WAIT).await.expect("one more");
    assert_eq!(from, b_port);

    let (ea, eb) = bridge.stop().await;
    assert_eq!(ea.stats().rtp_in, 51);
    drop((ea, eb));
    assert_eq!(eng.in_use(), 0);
}

#[tokio::test]
async fn latches_onto_the_real_source_address() {
    let eng = engine(31300..=31399, Duration::ZERO);
    let (a, b) = (Phone::new().await, Phone::new().await);
    // A's SDP names a socket A never sends from (a private address behind NAT).
    let sdp_only = Phone::new().await;
    let ea = eng.allocate().await.expect("a");
    let eb = eng.allocate().await.expect("b");
    ea.set_remote(Some(sdp_only.rtp_addr()), None);
    eb.set_remote(Some(b.rtp_addr()), None);
    let (a_port, b_port) = (ea.local(), eb.local());
    let (tx, _rx) = mpsc::unbounded_channel();
    let bridge = Bridge::start(ea, eb, tx);

    // Before A sent anything: the SDP address.
    b.send(b_port, &audio(1, 160, 0xb)).await;
    assert!(
        sdp_only.recv(WAIT).await.is_some(),
        "SDP address used before latching"
    );

    // A sends from its real socket: from then on A gets media there.
    a.send(a_port, &audio(1, 160, 0xa)).await;
    assert!(b.recv(WAIT).await.is_some());
    b.send(b_port, &audio(2, 320, 0xb)).await;
    assert_eq!(hdr(&a.recv(WAIT).await.expect("latched").0).seq, 2);
    assert!(
        sdp_only.recv(SHORT).await.is_none(),
        "not the SDP address any more"
    );
    assert_eq!(bridge.a().stats().latched, Some(a.rtp_addr()));

    // NAT rebinding: A's packets now come from another port: re-latch.
    let rebound = Phone::new().await;
    rebound.send(a_port, &audio(2, 320, 0xa)).await;
    assert!(b.recv(WAIT).await.is_some());
    b.send(b_port, &audio(3, 480, 0xb)).await;
    assert!(rebound.recv(WAIT).await.is_some(), "re-latched");
    assert!(a.recv(SHORT).await.is_none());
    let sa = bridge.a().stats();
    assert_eq!((sa.latched, sa.relatches), (Some(rebound.rtp_addr()), 1));
}

#[tokio::test]
async fn set_send_false_stops_media_towards_that_peer_only() {
    let eng = engine(31400..=31499, Duration::ZERO);
    let (a, b) = (Phone::new().await, Phone::new().await);
    let (ea, eb) = legs(&eng, &a, &b).await;
    let (a_port, b_port) = (ea.local(), eb.local());
    let (tx, _rx) = mpsc::unbounded_channel();
    let bridge = Bridge::start(ea, eb, tx);

    // A's re-INVITE says sendonly: A does not want to receive.
    bridge.a().set_send(false);
    for i in 0..5u16 {
        b.send(b_port, &audio(i, u32::from(i) * 160, 0xb)).await;
        a.send(a_port, &audio(i, u32::from(i) * 160, 0xa)).await;
    }
    assert_eq!(b.recv_n(5).await.len(), 5, "A -> B still flows");
    assert!(a.recv(SHORT).await.is_none(), "nothing towards A");
    assert_eq!(bridge.a().stats().dropped, 5);
    assert_eq!(bridge.b().stats().rtp_in, 5);

    // Back to sendrecv.
    bridge.a().set_send(true);
    b.send(b_port, &audio(9, 9 * 160, 0xb)).await;
    assert_eq!(hdr(&a.recv(WAIT).await.expect("resumed").0).seq, 9);

    // No address at all (c=0.0.0.0 hold / port 0): nothing is sent, latched or not.
    bridge.a().set_remote(None, None);
    b.send(b_port, &audio(10, 10 * 160, 0xb)).await;
    assert!(a.recv(SHORT).await.is_none());
    assert_eq!(bridge.a().stats().dropped, 6);
}

#[tokio::test]
async fn rtcp_is_relayed_both_ways() {
    let eng = engine(31500..=31599, Duration::ZERO);
    let (a, b) = (Phone::new().await, Phone::new().await);
    let (ea, eb) = legs(&eng, &a, &b).await;
    // A names its RTCP port explicitly (a=rtcp), B relies on RTP port + 1.
    let a_rtcp_sdp = Phone::new().await;
    ea.set_remote(Some(a.rtp_addr()), Some(a_rtcp_sdp.rtcp_addr()));
    let (a_rtcp, b_rtcp) = (ea.local_rtcp(), eb.local_rtcp());
    let (tx, _rx) = mpsc::unbounded_channel();
    let bridge = Bridge::start(ea, eb, tx);

    // B's RR reaches A at the SDP RTCP address (nothing latched yet).
    b.rtcp.send_to(&rtcp_rr(0xb), b_rtcp).await.expect("send");
    let (got, from) = recv_on(&a_rtcp_sdp.rtcp, WAIT).await.expect("rtcp at A");
    assert_eq!((got, from), (rtcp_rr(0xb), a_rtcp));
    // A's RR reaches B at B's RTP port + 1.
    a.rtcp.send_to(&rtcp_rr(0xa), a_rtcp).await.expect("send");
    let (got, from) = recv_on(&b.rtcp, WAIT).await.expect("rtcp at B");
    assert_eq!((got, from), (rtcp_rr(0xa), b_rtcp));
    // RTCP latched independently: A sent from its real RTCP socket.
    b.rtcp.send_to(&rtcp_rr(0xb), b_rtcp).await.expect("send");
    assert!(
        recv_on(&a.rtcp, WAIT).await.is_some(),
        "RTCP latched onto A's real socket"
    );
    // RTCP keeps flowing when A does not want media.
    bridge.a().set_send(false);
    b.rtcp.send_to(&rtcp_rr(0xb), b_rtcp).await.expect("send");
    assert!(
        recv_on(&a.rtcp, WAIT).await.is_some(),
        "RTCP not gated by sendonly"
    );

    let (sa, sb) = bridge.stats();
    assert_eq!(
        (sa.rtcp_in, sa.rtcp_out, sb.rtcp_in, sb.rtcp_out),
        (1, 3, 3, 1)
    );
    assert_eq!((sa.rtp_in, sb.rtp_in), (0, 0));
    // Nothing leaked onto the RTP sockets.
    assert!(a.recv(SHORT).await.is_none() && b.recv(Duration::ZERO).await.is_none());
}

#[tokio::test]
async fn telephone_events_pass_byte_identical() {
    let eng = engine(31600..=31699, Duration::ZERO);
    let (a, b) = (Phone::new().await, Phone::new().await);
    let (ea, eb) = legs(&eng, &a, &b).await;
    let a_port = ea.local();
    let (tx, _rx) = mpsc::unbounded_channel();
    let _bridge = Bridge::start(ea, eb, tx);

    // RFC 4733 digit '5': start (marker), updates, then the end packet three
    // times — same timestamp throughout, as the RFC says.
    let mut sent = Vec::new();
    for (i, (marker, end, duration)) in [
        (true, false, 160u16),
        (false, false, 320),
        (false, false, 480),
        (false, true, 640),
        (false, true, 640),
        (false, true, 640),
    ]
    .into_iter()
    .enumerate()
    {
        let mut ev = [5u8, 10, 0, 0];
        if end {
            ev[1] |= 0x80;
        }
        ev[2..].copy_from_slice(&duration.to_be_bytes());
        sent.push(rtp(101, marker, 300 + i as u16, 48_000, 0x4733, &ev));
    }
    for p in &sent {
        a.send(a_port, p).await;
    }
    let got = b.recv_n(sent.len()).await;
    assert_eq!(got, sent);
    let h = hdr(&got[0]);
    assert_eq!((h.pt, h.marker), (101, true));
    assert_eq!(payload(&got[3]), vec![5, 0x80 | 10, 0x02, 0x80]);
}

#[tokio::test]
async fn stale_packets_are_discarded_when_a_bridge_starts() {
    let eng = engine(31700..=31799, Duration::ZERO);
    let (a, b) = (Phone::new().await, Phone::new().await);
    let (ea, eb) = legs(&eng, &a, &b).await;
    let (a_port, b_port) = (ea.local(), eb.local());

    // Unbridged: nothing is relayed; packets wait in the kernel.
    for i in 0..10u16 {
        a.send(a_port, &audio(i, 0, 0xa)).await;
        b.send(b_port, &audio(i, 0, 0xb)).await;
    }
    a.rtcp
        .send_to(&rtcp_rr(0xa), ea.local_rtcp())
        .await
        .expect("send");
    assert!(
        b.recv(SHORT).await.is_none(),
        "unbridged endpoints relay nothing"
    );
    assert_eq!(ea.stats().rtp_in, 0);

    let (tx, _rx) = mpsc::unbounded_channel();
    let bridge = Bridge::start(ea, eb, tx);
    a.send(a_port, &audio(100, 0, 0xa)).await;
    b.send(b_port, &audio(200, 0, 0xb)).await;
    let (pb, _) = b.recv(WAIT).await.expect("fresh packet to B");
    let (pa, _) = a.recv(WAIT).await.expect("fresh packet to A");
    assert_eq!(
        (hdr(&pb).seq, hdr(&pa).seq),
        (100, 200),
        "stale packets were not relayed first"
    );
    assert!(b.recv(SHORT).await.is_none() && a.recv(Duration::ZERO).await.is_none());
    assert!(
        recv_on(&b.rtcp, Duration::ZERO).await.is_none(),
        "stale RTCP discarded too"
    );
    let (sa, sb) = bridge.stats();
    assert_eq!((sa.rtp_in, sb.rtp_in, sa.rtcp_in), (1, 1, 0));

    // Stopped again: nothing relayed.
    let (ea, _eb) = bridge.stop().await;
    a.send(ea.local(), &audio(101, 0, 0xa)).await;
    assert!(
        b.recv(SHORT).await.is_none(),
        "a stopped bridge relays nothing"
    );
}

#[tokio::test]
async fn garbage_is_dropped_and_counted() {
    let eng = engine(31800..=31899, Duration::ZERO);
    let (a, b) = (Phone::new().await, Phone::new().await);
    let (ea, eb) = legs(&eng, &a, &b).await;
    let (a_port, a_rtcp) = (ea.local(), ea.local_rtcp());
    let (tx, _rx) = mpsc::unbounded_channel();
    let bridge = Bridge::start(ea, eb, tx);

    let mut bad_padding = audio(1, 0, 0xa);
    bad_padding[0] |= 0x20; // padding flag...
    *bad_padding.last_mut().expect("payload") = 255; // ...longer than the packet
    let mut too_many_csrcs = audio(1, 0, 0xa)[..14].to_vec();
    too_many_csrcs[0] |= 0x0f;
    let garbage: Vec<Vec<u8>> = vec![
        b"hello".to_vec(),
        vec![],
        vec![0u8; 40],                   // version 0 (STUN-like)
        vec![0x40; 20],                  // version 1
        audio(1, 0, 0xa)[..11].to_vec(), // shorter than a header
        bad_padding,
        too_many_csrcs,
        vec![0x16, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0], // DTLS record
        vec![0xff; 5000],                         // larger than the relay buffer
    ];
    for g in &garbage {
        a.send(a_port, g).await;
    }
    // RTCP socket: RTP is not RTCP, and noise neither.
    a.rtcp
        .send_to(&audio(1, 0, 0xa), a_rtcp)
        .await
        .expect("send");
    a.rtcp.send_to(b"\x80\xc9", a_rtcp).await.expect("send");

    // Garbage from elsewhere does not steal the stream (only valid RTP latches).
    let intruder = Phone::new().await;
    a.send(a_port, &audio(76, 0, 0xa)).await;
    assert!(b.recv(WAIT).await.is_some());
    intruder.send(a_port, b"not rtp at all").await;

    // A valid packet after all that still goes through.
    a.send(a_port, &audio(77, 0, 0xa)).await;
    let (p, _) = b.recv(WAIT).await.expect("valid packet relayed");
    assert_eq!(hdr(&p).seq, 77);
    assert!(b.recv(SHORT).await.is_none() && recv_on(&b.rtcp, Duration::ZERO).await.is_none());
    let sa = bridge.a().stats();
    assert_eq!(sa.dropped, garbage.len() as u64 + 3);
    assert_eq!((sa.rtp_in, sa.rtcp_in), (2, 0));
    assert_eq!(sa.latched, Some(a.rtp_addr()));
}

#[tokio::test]
async fn dropping_a_bridge_stops_it_and_frees_the_ports() {
    let eng = engine(31900..=31999, Duration::from_millis(200));
    let (a, b) = (Phone::new().await, Phone::new().await);
    let (ea, eb) = legs(&eng, &a, &b).await;
    let a_port = ea.local();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let bridge = Bridge::start(ea, eb, tx);
    a.send(a_port, &audio(1, 0, 0xa)).await;
    assert!(b.recv(WAIT).await.is_some());
    drop(bridge);
    // The tasks end on their own and release the endpoints (and the event
    // sender, which closes the channel).
    let deadline = tokio::time::Instant::now() + WAIT;
    while eng.in_use() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(eng.in_use(), 0);
    assert!(
        tokio::time::timeout(WAIT, async { while rx.recv().await.is_some() {} })
            .await
            .is_ok()
    );
    // Ports closed: a packet to A's old port goes nowhere.
    a.send(a_port, &audio(2, 160, 0xa)).await;
    assert!(b.recv(SHORT).await.is_none());
}

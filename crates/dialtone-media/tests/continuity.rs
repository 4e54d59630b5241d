//! Stream continuity towards a phone whose far side changes: after a
//! re-bridge (transfer) and after an in-place SSRC change, the phone sees one
//! SSRC, sequence numbers +1, timestamps moving forward, marker on the splice.

mod common;

use std::time::Duration;

use common::*;
use dialtone_media::Bridge;
use tokio::sync::mpsc;

/// Receives `n` packets at `phone` and returns their headers, checking that
/// every payload is still the one its source sent (`audio` puts the source's
/// own seq and SSRC in it), i.e. only the header was rewritten.
async fn headers(phone: &Phone, n: usize, sources: &[(u16, u32)]) -> Vec<Hdr> {
    let got = phone.recv_n(n).await;
    assert_eq!(got.len(), n, "all packets arrive");
    for (p, &(seq, ssrc)) in got.iter().zip(sources) {
        assert_eq!(
            payload(p),
            payload(&audio(seq, 0, ssrc)),
            "payload untouched"
        );
    }
    got.iter().map(|p| hdr(p)).collect()
}

/// The (seq, SSRC) pairs of a stream sent by `send_stream`.
fn src(seq0: u16, ssrc: u32, n: u16) -> Vec<(u16, u32)> {
    (0..n).map(|i| (seq0.wrapping_add(i), ssrc)).collect()
}

/// Checks what A heard: one SSRC, seq strictly +1, timestamps strictly
/// increasing, marker exactly on the packets at `splices`.
fn assert_continuous(hs: &[Hdr], ssrc: u32, splices: &[usize]) {
    for (i, h) in hs.iter().enumerate() {
        assert_eq!(
            h.ssrc, ssrc,
            "packet {i}: one SSRC towards the phone: {hs:#?}"
        );
        assert_eq!(
            h.marker,
            splices.contains(&i),
            "packet {i}: marker only on the splice: {hs:#?}"
        );
        if i > 0 {
            let prev = hs[i - 1];
            assert_eq!(
                h.seq,
                prev.seq.wrapping_add(1),
                "packet {i}: seq +1: {hs:#?}"
            );
            assert!(
                (h.ts.wrapping_sub(prev.ts) as i32) > 0,
                "packet {i}: timestamp increases: {hs:#?}"
            );
        }
    }
}

async fn send_stream(
    phone: &Phone,
    to: std::net::SocketAddr,
    seq0: u16,
    ts0: u32,
    ssrc: u32,
    n: u16,
) {
    for i in 0..n {
        phone
            .send(
                to,
                &audio(
                    seq0.wrapping_add(i),
                    ts0.wrapping_add(u32::from(i) * 160),
                    ssrc,
                ),
            )
            .await;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebridge_after_transfer_keeps_the_stream_continuous() {
    let eng = engine(32000..=32099, Duration::ZERO);
    let (a, b, c) = (Phone::new().await, Phone::new().await, Phone::new().await);
    let (ea, eb) = legs(&eng, &a, &b).await;
    let (a_port, b_port) = (ea.local(), eb.local());
    let (tx, _rx) = mpsc::unbounded_channel();
    let bridge = Bridge::start(ea, eb, tx.clone());

    // A talks too, so A's leg latches and B hears it.
    a.send(a_port, &audio(1, 0, 0xaaaa)).await;
    assert!(b.recv(WAIT).await.is_some());
    send_stream(&b, b_port, 100, 10_000, 0x1111, 20).await;
    let before = headers(&a, 20, &src(100, 0x1111, 20)).await;
    // Untouched while B is the only source.
    assert_eq!(
        (before[0].seq, before[0].ts, before[0].ssrc),
        (100, 10_000, 0x1111)
    );

    // Transfer: A's leg is re-bridged with a new leg towards C.
    let (ea, eb) = bridge.stop().await;
    drop(eb);
    let ec = eng.allocate().await.expect("c");
    ec.set_remote(Some(c.rtp_addr()), None);
    let c_port = ec.local();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let bridge = Bridge::start(ea, ec, tx);
    send_stream(&c, c_port, 5000, 777_777, 0x2222, 20).await;
    let after = headers(&a, 20, &src(5000, 0x2222, 20)).await;

    let all: Vec<Hdr> = before.iter().chain(after.iter()).copied().collect();
    assert_continuous(&all, 0x1111, &[20]);
    // The splice moved the timestamp on by about the wall time of the gap
    // (>= the 100 ms pause = 800 ticks), not by C's own timestamp base.
    let jump = all[20].ts.wrapping_sub(all[19].ts);
    assert!((800..80_000).contains(&jump), "timestamp jump {jump}");
    assert!(a.recv(Duration::ZERO).await.is_none());
    assert_eq!(bridge.a().stats().source_changes, 1);

    // And C hears A's stream untouched (C's leg is new: nothing to splice).
    a.send(a_port, &audio(2, 160, 0xaaaa)).await;
    let (p, _) = c.recv(WAIT).await.expect("A -> C");
    assert_eq!(
        hdr(&p),
        Hdr {
            marker: false,
            pt: 0,
            seq: 2,
            ts: 160,
            ssrc: 0xaaaa
        }
    );
}

#[tokio::test]
async fn in_place_ssrc_change_is_spliced() {
    let eng = engine(32100..=32199, Duration::ZERO);
    let (a, b) = (Phone::new().await, Phone::new().await);
    let (ea, eb) = legs(&eng, &a, &b).await;
    let b_port = eb.local();
    let (tx, _rx) = mpsc::unbounded_channel();
    let bridge = Bridge::start(ea, eb, tx);

    // B's side (a PBX, say) switches sources twice mid-call; the second
    // source starts right where the wrap-around of seq would be.
    send_stream(&b, b_port, 65530, u32::MAX - 320, 0x1111, 10).await;
    send_stream(&b, b_port, 40_000, 5, 0x3333, 10).await;
    send_stream(&b, b_port, 7, 123_456_789, 0x4444, 10).await;
    let sources = [
        src(65530, 0x1111, 10),
        src(40_000, 0x3333, 10),
        src(7, 0x4444, 10),
    ]
    .concat();
    let hs = headers(&a, 30, &sources).await;
    assert_continuous(&hs, 0x1111, &[10, 20]);
    let sa = bridge.a().stats();
    assert_eq!((sa.rtp_out, sa.source_changes), (30, 2));
}

#[tokio::test]
async fn rebridge_to_the_same_source_is_not_a_splice() {
    let eng = engine(32200..=32299, Duration::ZERO);
    let (a, b) = (Phone::new().await, Phone::new().await);
    let (ea, eb) = legs(&eng, &a, &b).await;
    let b_port = eb.local();
    let (tx, _rx) = mpsc::unbounded_channel();
    let bridge = Bridge::start(ea, eb, tx.clone());
    send_stream(&b, b_port, 10, 1600, 0x1111, 5).await;
    // e.g. a consultation hold that returned to the same party.
    let (ea, eb) = bridge.stop().await;
    let bridge = Bridge::start(ea, eb, tx);
    send_stream(&b, b_port, 15, 2400, 0x1111, 5).await;
    let hs = headers(&a, 10, &src(10, 0x1111, 10)).await;
    assert_continuous(&hs, 0x1111, &[]);
    assert_eq!(hs[9].seq, 19, "same stream, same offsets (none)");
    assert_eq!(bridge.a().stats().source_changes, 0);
}

#[tokio::test]
async fn clock_rate_sets_the_timestamp_jump() {
    let eng = engine(32300..=32399, Duration::ZERO);
    let (a, b, c) = (Phone::new().await, Phone::new().await, Phone::new().await);
    let (ea, eb) = legs(&eng, &a, &b).await;
    ea.set_clock_rate(48_000);
    let (tx, _rx) = mpsc::unbounded_channel();
    let b_port = eb.local();
    let bridge = Bridge::start(ea, eb, tx.clone());
    b.send(b_port, &audio(1, 0, 0x1)).await;
    let first = hdr(&a.recv(WAIT).await.expect("first").0);

    let (ea, _eb) = bridge.stop().await;
    let ec = eng.allocate().await.expect("c");
    ec.set_remote(Some(c.rtp_addr()), None);
    let c_port = ec.local();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _bridge = Bridge::start(ea, ec, tx);
    // Same SSRC and seq as B's (two phones of one make, say): still a new
    // source, because it comes from another endpoint.
    c.send(c_port, &audio(1, 0, 0x1)).await;
    let second = hdr(&a.recv(WAIT).await.expect("second").0);
    let jump = second.ts.wrapping_sub(first.ts);
    // >= 0.5 s at 48 kHz; at 8 kHz it would be ~4000.
    assert!((24_000..200_000).contains(&jump), "timestamp jump {jump}");
    assert_eq!((second.seq, second.ssrc, second.marker), (2, 0x1, true));
}

//! RTP timeout: a peer expected to send that stays silent is reported once
//! per silence; a peer not expected to send never is.

mod common;

use std::time::Duration;

use common::*;
use dialtone_media::{Bridge, MediaEvent};
use tokio::sync::mpsc;

const TIMEOUT: Duration = Duration::from_millis(300);
/// How long to wait for an event that should come (a behaviour check, not a
/// speed check), and to make sure one that should not come does not.
const PATIENCE: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(1500);

async fn next_event(
    rx: &mut mpsc::UnboundedReceiver<MediaEvent>,
    within: Duration,
) -> Option<MediaEvent> {
    tokio::time::timeout(within, rx.recv()).await.ok().flatten()
}

#[tokio::test]
async fn silent_peer_times_out_once() {
    let eng = engine(32400..=32499, TIMEOUT);
    let (a, b) = (Phone::new().await, Phone::new().await);
    let (ea, eb) = legs(&eng, &a, &b).await;
    let (a_port, a_id, b_id) = (ea.local(), ea.id(), eb.id());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let bridge = Bridge::start(ea, eb, tx);

    // A keeps talking for a while; B never says anything.
    let talker = async {
        for i in 0..60u16 {
            a.send(a_port, &audio(i, u32::from(i) * 160, 0xa)).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let (_, ev) = tokio::join!(talker, next_event(&mut rx, PATIENCE));
    match ev {
        Some(MediaEvent::RtpTimeout {
            endpoint,
            silent_for,
        }) => {
            assert_eq!(endpoint, b_id, "only the silent peer times out");
            assert!(silent_for >= TIMEOUT, "{silent_for:?}");
        }
        other => panic!("expected RtpTimeout for B, got {other:?}"),
    }
    // A has now stopped too: it times out, B is not reported again.
    match next_event(&mut rx, PATIENCE).await {
        Some(MediaEvent::RtpTimeout { endpoint, .. }) => assert_eq!(endpoint, a_id),
        other => panic!("expected RtpTimeout for A, got {other:?}"),
    }
    assert_eq!(
        next_event(&mut rx, QUIET).await,
        None,
        "reported once per silence"
    );

    // A resumes and stops again: reported again.
    a.send(a_port, &audio(100, 16_000, 0xa)).await;
    match next_event(&mut rx, PATIENCE).await {
        Some(MediaEvent::RtpTimeout { endpoint, .. }) => assert_eq!(endpoint, a_id),
        other => panic!("expected a second RtpTimeout for A, got {other:?}"),
    }
    drop(bridge);
}

#[tokio::test]
async fn no_timeout_when_the_peer_is_not_expected_to_send() {
    let eng = engine(32500..=32599, TIMEOUT);
    let (a, b) = (Phone::new().await, Phone::new().await);
    let (ea, eb) = legs(&eng, &a, &b).await;
    // Both SDPs say recvonly/inactive.
    ea.set_expect_rtp(false);
    eb.set_expect_rtp(false);
    let b_id = eb.id();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let bridge = Bridge::start(ea, eb, tx);
    assert_eq!(next_event(&mut rx, QUIET).await, None);

    // B's re-INVITE goes back to sendrecv: the timeout counts from then.
    bridge.b().set_expect_rtp(true);
    match next_event(&mut rx, PATIENCE).await {
        Some(MediaEvent::RtpTimeout {
            endpoint,
            silent_for,
        }) => {
            assert_eq!(endpoint, b_id);
            assert!(
                silent_for >= TIMEOUT && silent_for < QUIET,
                "counted from set_expect_rtp: {silent_for:?}"
            );
        }
        other => panic!("expected RtpTimeout for B, got {other:?}"),
    }
}

#[tokio::test]
async fn no_timeout_when_disabled() {
    let eng = engine(32600..=32699, Duration::ZERO);
    let (a, b) = (Phone::new().await, Phone::new().await);
    let (ea, eb) = legs(&eng, &a, &b).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let _bridge = Bridge::start(ea, eb, tx);
    assert_eq!(next_event(&mut rx, QUIET).await, None);
}

#[tokio::test]
async fn stopped_bridge_reports_nothing_and_counts_afresh() {
    let eng = engine(32700..=32767, TIMEOUT);
    let (a, b) = (Phone::new().await, Phone::new().await);
    let (ea, eb) = legs(&eng, &a, &b).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let bridge = Bridge::start(ea, eb, tx.clone());
    let (ea, eb) = bridge.stop().await;
    // Unbridged endpoints are not watched.
    assert_eq!(next_event(&mut rx, QUIET).await, None);
    // A new bridge counts from its own start.
    let started = std::time::Instant::now();
    let _bridge = Bridge::start(ea, eb, tx);
    let mut seen = Vec::new();
    while seen.len() < 2 {
        match next_event(&mut rx, PATIENCE).await {
            Some(MediaEvent::RtpTimeout {
                endpoint,
                silent_for,
            }) => {
                assert!(
                    silent_for <= started.elapsed(),
                    "counted from the new bridge"
                );
                seen.push(endpoint);
            }
            None => panic!("expected two timeouts, got {seen:?}"),
        }
    }
}

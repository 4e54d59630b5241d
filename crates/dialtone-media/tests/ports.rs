//! Port allocation: even/odd pairs from the range, round-robin, freed on
//! drop, exhaustion, and ports held by other sockets skipped.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{engine, LOCALHOST};
use dialtone_media::{MediaConfig, MediaEngine, MediaError};

#[tokio::test]
async fn pairs_are_even_odd_within_range_and_round_robin() {
    let range = 31000..=31009; // 5 pairs
    let eng = engine(range.clone(), Duration::ZERO);
    let mut eps = Vec::new();
    let mut ports = Vec::new();
    for _ in 0..5 {
        let ep = eng.allocate().await.expect("allocate");
        let port = ep.local().port();
        assert!(
            range.contains(&port) && range.contains(&(port + 1)),
            "{port} outside range"
        );
        assert_eq!(port % 2, 0, "RTP port {port} must be even");
        assert_eq!(ep.local().ip(), LOCALHOST);
        assert_eq!(ep.local_rtcp().port(), port + 1);
        // Both ports really are ours: nobody else can bind them.
        assert!(std::net::UdpSocket::bind((LOCALHOST, port)).is_err());
        assert!(std::net::UdpSocket::bind((LOCALHOST, port + 1)).is_err());
        ports.push(port);
        eps.push(ep);
    }
    // Round-robin: each allocation continues after the previous one.
    for w in ports.windows(2) {
        let expected = if w[0] == 31008 { 31000 } else { w[0] + 2 };
        assert_eq!(w[1], expected, "allocation order {ports:?}");
    }
    let ids: HashSet<u64> = eps.iter().map(|e| e.id()).collect();
    assert_eq!(ids.len(), 5, "ids unique");
    assert_eq!(eng.in_use(), 5);

    // Freed on drop, and the freed pair is not the next one handed out
    // unless nothing else is free: drop two, allocate twice.
    let last = ports[4];
    let first = ports[0];
    eps.remove(4);
    eps.remove(0);
    assert_eq!(eng.in_use(), 3);
    let next = eng.allocate().await.expect("allocate after free");
    assert_eq!(
        next.local().port(),
        first,
        "search resumes after the last allocation ({last})"
    );
    let next2 = eng.allocate().await.expect("allocate after free");
    assert_eq!(next2.local().port(), last);
    assert_eq!(eng.in_use(), 5);
}

#[tokio::test]
async fn exhausted_then_freed() {
    let eng = engine(31020..=31023, Duration::ZERO); // 2 pairs
    let a = eng.allocate().await.expect("first");
    let b = eng.allocate().await.expect("second");
    assert_ne!(a.local().port(), b.local().port());
    assert!(matches!(
        eng.allocate().await,
        Err(MediaError::PortsExhausted)
    ));
    let freed = b.local().port();
    drop(b);
    assert_eq!(eng.in_use(), 1);
    let c = eng.allocate().await.expect("after free");
    assert_eq!(c.local().port(), freed);
    // A clone of the engine shares the same ports.
    let clone = eng.clone();
    assert!(matches!(
        clone.allocate().await,
        Err(MediaError::PortsExhausted)
    ));
    drop((a, c));
    assert_eq!(clone.in_use(), 0);
}

#[tokio::test]
async fn ports_held_by_other_sockets_are_skipped() {
    // 3 pairs; a foreign socket holds the RTP port of one and another the
    // RTCP port of another: only the third pair is usable.
    let eng = engine(31040..=31045, Duration::ZERO);
    let _rtp_squatter = std::net::UdpSocket::bind((LOCALHOST, 31040)).expect("bind squatter");
    let _rtcp_squatter = std::net::UdpSocket::bind((LOCALHOST, 31043)).expect("bind squatter");
    let ep = eng.allocate().await.expect("the free pair");
    assert_eq!(ep.local().port(), 31044);
    assert!(matches!(
        eng.allocate().await,
        Err(MediaError::PortsExhausted)
    ));
    assert_eq!(eng.in_use(), 1);
    // The half-bound pairs were not leaked: the RTP port of 31042 was released.
    assert!(std::net::UdpSocket::bind((LOCALHOST, 31042)).is_ok());
}

#[test]
fn ranges_without_a_pair_are_rejected() {
    for ports in [31061..=31062, 31060..=31060, 65535..=65535] {
        let cfg = MediaConfig {
            bind_ip: LOCALHOST.into(),
            advertise_ip: LOCALHOST.into(),
            ports: ports.clone(),
            rtp_timeout: Duration::ZERO,
        };
        assert!(
            matches!(MediaEngine::new(cfg), Err(MediaError::Config(_))),
            "{ports:?}"
        );
    }
}

#[tokio::test]
async fn advertise_ip_differs_from_bind_ip() {
    let eng = MediaEngine::new(MediaConfig {
        bind_ip: LOCALHOST.into(),
        advertise_ip: "192.0.2.10".parse().expect("ip"),
        ports: 31080..=31083,
        rtp_timeout: Duration::ZERO,
    })
    .expect("config");
    let ep = eng.allocate().await.expect("allocate");
    assert_eq!(ep.local().ip().to_string(), "192.0.2.10");
    // Bound on the bind address.
    assert!(std::net::UdpSocket::bind((LOCALHOST, ep.local().port())).is_err());
}

#[tokio::test]
async fn a_freed_pair_is_not_reused_at_once() {
    let eng = engine(31100..=31107, Duration::ZERO); // 4 pairs
    let mut seen = Vec::new();
    for _ in 0..4 {
        let ep = eng.allocate().await.expect("allocate");
        seen.push(ep.local().port());
        drop(ep); // freed at once...
        assert_eq!(eng.in_use(), 0);
    }
    // ...yet every allocation moved on to the next pair.
    let mut sorted = seen.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, vec![31100, 31102, 31104, 31106], "order {seen:?}");
}

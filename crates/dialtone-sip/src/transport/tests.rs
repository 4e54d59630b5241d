//! The address a listener on 0.0.0.0 or [::] is written as.

use super::*;

#[tokio::test]
async fn a_listener_on_any_address_is_written_as_a_reachable_one() {
    let (tx, _rx) = mpsc::channel(1);
    let listen: Listen = "udp:0.0.0.0:0".parse().unwrap_or_else(|e| panic!("{e}"));
    let t = Transports::bind(&[listen], tx)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let peer = Peer::new(
        Protocol::Udp,
        "127.0.0.9:5060".parse().unwrap_or_else(|e| panic!("{e}")),
    );
    let local = t
        .local_for(&peer)
        .unwrap_or_else(|| panic!("no local address"));
    assert!(!local.ip().is_unspecified(), "{local}");
    assert!(local.ip().is_loopback(), "{local}");
    assert_ne!(local.port(), 0);
    // An advertised address wins (a host behind NAT).
    assert!(t.set_advertise("203.0.113.7".parse().unwrap_or_else(|e| panic!("{e}"))));
    let local = t
        .local_for(&peer)
        .unwrap_or_else(|| panic!("no local address"));
    assert_eq!(local.ip().to_string(), "203.0.113.7");
    t.shutdown();
}

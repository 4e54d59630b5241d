//! Drives each transaction state machine through its timers with tokio's
//! paused clock: every timer fires at the RFC's time and causes the RFC's
//! transition, retransmissions come at T1, 2·T1, … capped at T2 where the
//! RFC caps them.

use std::net::SocketAddr;
use std::time::Duration;

use rsip::{Request, Response, SipMessage};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::*;
use crate::transport::{Incoming, Peer, Protocol, Transports};
use rsip::headers::UntypedHeader;

type Sink = mpsc::UnboundedReceiver<(Peer, SipMessage)>;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn layer() -> (TransactionLayer, Sink) {
    let (in_tx, _in_rx) = mpsc::channel(16);
    let (t, sink) = Transports::sink(addr("127.0.0.1:5060"), in_tx);
    (TransactionLayer::new(t, TimerConfig::default()), sink)
}

fn udp() -> Peer {
    Peer::new(Protocol::Udp, addr("127.0.0.1:5070"))
}

fn tcp() -> Peer {
    Peer::new(Protocol::Tcp, addr("127.0.0.1:5070"))
}

fn request(method: &str, branch: &str) -> Request {
    let raw = format!(
        "{method} sip:bob@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\r\n\
         From: <sip:alice@127.0.0.1>;tag=a1\r\n\
         To: <sip:bob@127.0.0.1>\r\n\
         Call-ID: call-{branch}\r\n\
         CSeq: 1 {method}\r\n\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n"
    );
    Request::try_from(raw.as_str()).unwrap_or_else(|e| panic!("{e}"))
}

/// A bare request without Via, as the TU hands it to `send_request`.
fn outgoing(method: &str) -> Request {
    let mut r = request(method, "unused");
    r.headers.retain(|h| !matches!(h, rsip::Header::Via(_)));
    r
}

fn response_to(req: &Request, code: u16, to_tag: Option<&str>) -> Response {
    let mut r = crate::message::reply::response_to(req, code, None);
    if let Some(t) = to_tag {
        crate::message::reply::with_to_tag(&mut r, t);
    }
    r
}

fn incoming(msg: impl Into<SipMessage>, from: Peer) -> Incoming {
    Incoming {
        msg: msg.into(),
        from,
        local: addr("127.0.0.1:5060"),
    }
}

/// Receives every message sent within `within`, with the time since `t0`.
async fn sent_until(sink: &mut Sink, t0: Instant, within: Duration) -> Vec<(Duration, SipMessage)> {
    let mut out = Vec::new();
    let end = t0 + within;
    while let Ok(Some((_, m))) = tokio::time::timeout_at(end, sink.recv()).await {
        out.push((t0.elapsed(), m));
    }
    out
}

fn ms(v: &[(Duration, SipMessage)]) -> Vec<u128> {
    v.iter().map(|(d, _)| d.as_millis()).collect()
}

fn code(m: &SipMessage) -> u16 {
    match m {
        SipMessage::Response(r) => r.status_code.code(),
        SipMessage::Request(_) => 0,
    }
}

fn method(m: &SipMessage) -> String {
    match m {
        SipMessage::Request(r) => r.method.to_string(),
        SipMessage::Response(_) => String::new(),
    }
}

async fn settle() {
    // Let spawned transaction tasks run without moving the clock.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

fn server_tx(ev: Option<TuEvent>) -> ServerTransaction {
    match ev {
        Some(TuEvent::Request(tx)) => tx,
        _ => panic!("expected a new request for the TU"),
    }
}

mod client;
mod server;

/// A transaction's channels allocate their first block of 32 slots when
/// they are made, and an INVITE transaction lives 32 s after its 2xx
/// (Timers L and M): a request or response carried by value made each
/// server transaction hold 14 KiB (issue 13's memory per call). Boxed,
/// the slots are pointer-sized.
#[test]
fn channel_messages_stay_pointer_sized() {
    use std::mem::size_of;
    assert!(
        size_of::<super::ServerInput>() <= 16,
        "{}",
        size_of::<super::ServerInput>()
    );
    assert!(
        size_of::<super::ClientInput>() <= 16,
        "{}",
        size_of::<super::ClientInput>()
    );
    assert!(
        size_of::<super::ServerEvent>() <= 32,
        "{}",
        size_of::<super::ServerEvent>()
    );
}

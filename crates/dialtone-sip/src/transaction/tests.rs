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

// ---- client non-INVITE (Figure 6) ----

#[tokio::test(start_paused = true)]
async fn timer_e_doubles_to_t2_then_timer_f_times_out() {
    let (layer, mut sink) = layer();
    let t0 = Instant::now();
    let mut tx = layer
        .send_request(outgoing("OPTIONS"), udp())
        .unwrap_or_else(|e| panic!("{e}"));
    let sent = sent_until(&mut sink, t0, Duration::from_secs(40)).await;
    // E: 500, 1000, 2000, 4000, 4000 … ms apart; F at 64·T1 = 32 s.
    assert_eq!(
        ms(&sent),
        vec![0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
    );
    assert!(matches!(tx.next_event().await, Some(ClientEvent::Timeout)));
    assert_eq!(layer.counts(), (0, 0), "Terminated after Timer F");
}

#[tokio::test(start_paused = true)]
async fn proceeding_retransmits_at_t2_and_timer_k_ends_completed() {
    let (layer, mut sink) = layer();
    let t0 = Instant::now();
    let mut tx = layer
        .send_request(outgoing("REGISTER"), udp())
        .unwrap_or_else(|e| panic!("{e}"));
    let req = tx.request().clone();
    let first = sent_until(&mut sink, t0, Duration::from_millis(600)).await;
    assert_eq!(ms(&first), vec![0, 500]);
    // A provisional at 600 ms: Proceeding; E next fires at 1500 (already
    // running), then every T2.
    assert!(layer
        .on_incoming(incoming(response_to(&req, 100, None), udp()))
        .is_none());
    assert!(matches!(
        tx.next_event().await,
        Some(ClientEvent::Provisional(_))
    ));
    let more = sent_until(&mut sink, t0, Duration::from_millis(9600)).await;
    assert_eq!(ms(&more), vec![1500, 5500, 9500]);
    // Final response: Completed, no more retransmissions, TU told once.
    layer.on_incoming(incoming(response_to(&req, 200, Some("x")), udp()));
    assert!(
        matches!(tx.next_event().await, Some(ClientEvent::Final(r)) if r.status_code.code() == 200)
    );
    // A retransmitted 200 is absorbed in Completed.
    assert!(layer
        .on_incoming(incoming(response_to(&req, 200, Some("x")), udp()))
        .is_none());
    settle().await;
    assert_eq!(layer.counts(), (0, 1));
    // Timer K = T4 = 5 s.
    tokio::time::sleep(Duration::from_millis(4900)).await;
    assert_eq!(layer.counts(), (0, 1), "still Completed before T4");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(layer.counts(), (0, 0), "Terminated after Timer K");
    assert!(tx.next_event().await.is_none());
    assert!(sink.try_recv().is_err(), "nothing sent in Completed");
}

#[tokio::test(start_paused = true)]
async fn reliable_transport_has_no_retransmissions_and_zero_timer_k() {
    let (layer, mut sink) = layer();
    let t0 = Instant::now();
    let mut tx = layer
        .send_request(outgoing("OPTIONS"), tcp())
        .unwrap_or_else(|e| panic!("{e}"));
    let sent = sent_until(&mut sink, t0, Duration::from_secs(10)).await;
    assert_eq!(ms(&sent), vec![0]);
    let req = tx.request().clone();
    layer.on_incoming(incoming(response_to(&req, 200, Some("x")), tcp()));
    assert!(matches!(tx.next_event().await, Some(ClientEvent::Final(_))));
    settle().await;
    assert_eq!(layer.counts(), (0, 0), "Timer K is zero on TCP");
    let t1 = Instant::now();
    let mut tx = layer
        .send_request(outgoing("OPTIONS"), tcp())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(tx.next_event().await, Some(ClientEvent::Timeout)));
    assert_eq!(t1.elapsed().as_millis(), 32_000, "Timer F on TCP too");
}

// ---- client INVITE (Figure 5) ----

#[tokio::test(start_paused = true)]
async fn timer_a_doubles_uncapped_and_timer_b_times_out() {
    let (layer, mut sink) = layer();
    let t0 = Instant::now();
    let mut tx = layer
        .send_request(outgoing("INVITE"), udp())
        .unwrap_or_else(|e| panic!("{e}"));
    let sent = sent_until(&mut sink, t0, Duration::from_secs(40)).await;
    assert_eq!(ms(&sent), vec![0, 500, 1500, 3500, 7500, 15500, 31500]);
    assert!(matches!(tx.next_event().await, Some(ClientEvent::Timeout)));
    assert_eq!(t0.elapsed().as_millis(), 40_000);
    assert_eq!(layer.counts(), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn provisional_stops_timer_a_and_timer_b() {
    let (layer, mut sink) = layer();
    let t0 = Instant::now();
    let mut tx = layer
        .send_request(outgoing("INVITE"), udp())
        .unwrap_or_else(|e| panic!("{e}"));
    let req = tx.request().clone();
    let _ = sent_until(&mut sink, t0, Duration::from_millis(100)).await;
    layer.on_incoming(incoming(response_to(&req, 180, Some("b")), udp()));
    assert!(matches!(
        tx.next_event().await,
        Some(ClientEvent::Provisional(_))
    ));
    let sent = sent_until(&mut sink, t0, Duration::from_secs(60)).await;
    assert!(sent.is_empty(), "no retransmission in Proceeding");
    settle().await;
    assert_eq!(layer.counts(), (0, 1), "no Timer B in Proceeding");
}

#[tokio::test(start_paused = true)]
async fn non_2xx_is_acked_by_the_transaction_and_timer_d_ends_it() {
    let (layer, mut sink) = layer();
    let t0 = Instant::now();
    let mut tx = layer
        .send_request(outgoing("INVITE"), udp())
        .unwrap_or_else(|e| panic!("{e}"));
    let req = tx.request().clone();
    let _ = sent_until(&mut sink, t0, Duration::from_millis(100)).await;
    let busy = response_to(&req, 486, Some("b"));
    layer.on_incoming(incoming(busy.clone(), udp()));
    assert!(
        matches!(tx.next_event().await, Some(ClientEvent::Final(r)) if r.status_code.code() == 486)
    );
    let (_, ack) = sink.recv().await.unwrap_or_else(|| panic!("ACK"));
    assert_eq!(method(&ack), "ACK");
    let ack_s = ack.to_string();
    assert!(
        ack_s.contains("tag=b"),
        "ACK carries the response's To tag: {ack_s}"
    );
    // A retransmitted 486 is ACKed again and not passed up.
    layer.on_incoming(incoming(busy, udp()));
    let (_, ack2) = sink.recv().await.unwrap_or_else(|| panic!("ACK again"));
    assert_eq!(method(&ack2), "ACK");
    // Timer D: 32 s on UDP.
    let t1 = Instant::now();
    while layer.counts().1 > 0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!((31_900..=32_100).contains(&t1.elapsed().as_millis()));
    assert!(tx.next_event().await.is_none());
}

#[tokio::test(start_paused = true)]
async fn every_2xx_reaches_the_tu_until_timer_m() {
    let (layer, mut sink) = layer();
    let mut tx = layer
        .send_request(outgoing("INVITE"), udp())
        .unwrap_or_else(|e| panic!("{e}"));
    let req = tx.request().clone();
    let _ = sink.recv().await;
    let ok = response_to(&req, 200, Some("b"));
    layer.on_incoming(incoming(ok.clone(), udp()));
    assert!(matches!(tx.next_event().await, Some(ClientEvent::Final(_))));
    // Accepted lingers in the layer's table: its events end, and every
    // 2xx after the first goes to the TU from the layer.
    assert!(tx.next_event().await.is_none(), "the task has ended");
    assert_eq!(layer.counts(), (0, 1), "Accepted until Timer M");
    assert!(
        matches!(
            layer.on_incoming(incoming(ok.clone(), udp())),
            Some(TuEvent::Response { .. })
        ),
        "Accepted passes 2xx retransmissions"
    );
    let busy = response_to(&req, 486, Some("b"));
    assert!(
        layer.on_incoming(incoming(busy, udp())).is_none(),
        "a non-2xx in Accepted is dropped"
    );
    settle().await;
    assert!(
        sink.try_recv().is_err(),
        "the transaction does not ACK a 2xx"
    );
    tokio::time::sleep(Duration::from_millis(31_900)).await;
    assert_eq!(layer.counts(), (0, 1), "still Accepted before Timer M");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(layer.counts(), (0, 0), "Timer M ended Accepted");
    // Afterwards a 2xx goes to the TU as a stray response.
    assert!(matches!(
        layer.on_incoming(incoming(ok, udp())),
        Some(TuEvent::Response { .. })
    ));
}

// ---- server non-INVITE (Figure 8) ----

#[tokio::test(start_paused = true)]
async fn server_non_invite_absorbs_retransmissions_until_timer_j() {
    let (layer, mut sink) = layer();
    let req = request("REGISTER", "z9hG4bKsrv1");
    let tx = server_tx(layer.on_incoming(incoming(req.clone(), udp())));
    // Trying: a retransmission is absorbed, nothing is sent.
    assert!(layer.on_incoming(incoming(req.clone(), udp())).is_none());
    settle().await;
    assert!(sink.try_recv().is_err());
    tx.reply(200).unwrap_or_else(|e| panic!("{e}"));
    let (_, r) = sink.recv().await.unwrap_or_else(|| panic!("200"));
    assert_eq!(code(&r), 200);
    // Completed: a retransmission gets the same 200 again.
    assert!(layer.on_incoming(incoming(req.clone(), udp())).is_none());
    let (_, again) = sink.recv().await.unwrap_or_else(|| panic!("200 again"));
    assert_eq!(again.to_string(), r.to_string());
    // Completed is played by the layer's table, with no task left to take
    // another response.
    assert!(matches!(tx.reply(500), Err(TransactionError::Terminated)));
    // Timer J = 64·T1.
    tokio::time::sleep(Duration::from_millis(31_900)).await;
    assert_eq!(layer.counts(), (1, 0));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(layer.counts(), (0, 0));
    assert!(matches!(
        layer.on_incoming(incoming(req, udp())),
        Some(TuEvent::Request(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn server_non_invite_over_udp_answers_on_the_responders_task() {
    let (layer, mut sink) = layer();
    let tx = server_tx(layer.on_incoming(incoming(request("REGISTER", "z9hG4bKin"), udp())));
    tx.reply(200).unwrap_or_else(|e| panic!("{e}"));
    // No task in between: the 200 is on the wire before this task yields.
    let (_, r) = sink
        .try_recv()
        .unwrap_or_else(|e| panic!("sent by reply() itself: {e}"));
    assert_eq!(code(&r), 200);
    assert_eq!(layer.counts(), (1, 0), "Completed, until Timer J");
    // At Timer J it is gone; the sweeper frees its entry within a second.
    tokio::time::sleep(Duration::from_millis(32_001)).await;
    assert_eq!(layer.counts(), (0, 0));
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(layer.table_sizes(), (0, 0), "swept");
}

#[tokio::test(start_paused = true)]
async fn server_non_invite_over_tcp_ends_at_once() {
    let (layer, mut sink) = layer();
    let tx = server_tx(layer.on_incoming(incoming(request("OPTIONS", "z9hG4bKtcp"), tcp())));
    tx.reply(200).unwrap_or_else(|e| panic!("{e}"));
    let _ = sink.recv().await;
    settle().await;
    assert_eq!(layer.counts(), (0, 0), "Timer J is zero on TCP");
}

/// `reply_sent` returns only once the response is with the transport, so
/// a request the TU sends next cannot overtake it (REFER's 202, then
/// NOTIFY). Checked on UDP (the transaction lives on) and TCP (it ends
/// with this response).
#[tokio::test(start_paused = true)]
async fn reply_sent_returns_after_the_response_has_gone() {
    for (branch, peer) in [("z9hG4bKsent1", udp()), ("z9hG4bKsent2", tcp())] {
        let (layer, mut sink) = layer();
        let tx = server_tx(layer.on_incoming(incoming(request("REFER", branch), peer)));
        assert!(sink.try_recv().is_err());
        tx.reply_sent(202).await.unwrap_or_else(|e| panic!("{e}"));
        let (_, r) = sink
            .try_recv()
            .unwrap_or_else(|e| panic!("202 not yet sent: {e}"));
        assert_eq!(code(&r), 202);
    }
}

/// `sent` returns only once a client's request is with the transport, so
/// two requests in one dialog leave in the order the TU made them.
#[tokio::test(start_paused = true)]
async fn client_sent_returns_after_the_request_has_gone() {
    let (layer, mut sink) = layer();
    for method in ["NOTIFY", "INVITE"] {
        let mut tx = layer
            .send_request(outgoing(method), udp())
            .unwrap_or_else(|e| panic!("{e}"));
        tx.sent().await;
        let (_, m) = sink
            .try_recv()
            .unwrap_or_else(|e| panic!("{method} not yet sent: {e}"));
        assert_eq!(self::method(&m), method);
        tx.sent().await; // a second wait returns at once
    }
}

// ---- server INVITE (Figure 7 + RFC 6026) ----

#[tokio::test(start_paused = true)]
async fn trying_after_200ms_then_timer_g_until_timer_h() {
    let (layer, mut sink) = layer();
    let t0 = Instant::now();
    let req = request("INVITE", "z9hG4bKinv1");
    let mut tx = server_tx(layer.on_incoming(incoming(req.clone(), udp())));
    let (_, trying) = sink.recv().await.unwrap_or_else(|| panic!("100"));
    assert_eq!(code(&trying), 100);
    assert_eq!(t0.elapsed().as_millis(), 200);
    // A retransmitted INVITE gets the 100 again.
    layer.on_incoming(incoming(req.clone(), udp()));
    assert_eq!(
        code(&sink.recv().await.unwrap_or_else(|| panic!("100 again")).1),
        100
    );
    let t1 = Instant::now();
    tx.reply(486).unwrap_or_else(|e| panic!("{e}"));
    let sent = sent_until(&mut sink, t1, Duration::from_secs(40)).await;
    assert!(sent.iter().all(|(_, m)| code(m) == 486));
    // G: 500, 1000, 2000, 4000, 4000 … ms apart, until H at 32 s.
    assert_eq!(
        ms(&sent),
        vec![0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
    );
    assert!(matches!(tx.next_event().await, Some(ServerEvent::Timeout)));
    assert_eq!(layer.counts(), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn ack_moves_completed_to_confirmed_and_timer_i_ends_it() {
    let (layer, mut sink) = layer();
    let req = request("INVITE", "z9hG4bKinv2");
    let tx = server_tx(layer.on_incoming(incoming(req.clone(), udp())));
    tx.reply(603).unwrap_or_else(|e| panic!("{e}"));
    let (_, decline) = sink.recv().await.unwrap_or_else(|| panic!("603"));
    let SipMessage::Response(decline) = decline else {
        panic!()
    };
    let ack = ack_for_non2xx(&req, &decline);
    assert!(
        layer.on_incoming(incoming(ack.clone(), udp())).is_none(),
        "ACK absorbed"
    );
    let t1 = Instant::now();
    let sent = sent_until(&mut sink, t1, Duration::from_secs(4)).await;
    assert!(sent.is_empty(), "Timer G stopped in Confirmed");
    // Further ACKs are absorbed in Confirmed; Timer I = T4 ends it.
    assert!(layer.on_incoming(incoming(ack, udp())).is_none());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(layer.counts(), (0, 0), "Timer I fired at T4");
    assert!(sink.try_recv().is_err());
}

#[tokio::test(start_paused = true)]
async fn accepted_retransmits_2xx_until_its_ack() {
    let (layer, mut sink) = layer();
    let req = request("INVITE", "z9hG4bKinv3");
    let mut tx = server_tx(layer.on_incoming(incoming(req.clone(), udp())));
    let t0 = Instant::now();
    tx.reply(200).unwrap_or_else(|e| panic!("{e}"));
    let sent = sent_until(&mut sink, t0, Duration::from_millis(3600)).await;
    assert_eq!(ms(&sent), vec![0, 500, 1500, 3500]);
    // A retransmitted INVITE is absorbed in Accepted (RFC 6026).
    assert!(layer.on_incoming(incoming(req.clone(), udp())).is_none());
    // The ACK for a 2xx has its own branch; it is matched by dialog.
    let mut ack = request("ACK", "z9hG4bKack3");
    ack.headers
        .retain(|h| !matches!(h, rsip::Header::CallId(_) | rsip::Header::CSeq(_)));
    ack.headers
        .push(rsip::Header::CallId(rsip::headers::CallId::new(
            "call-z9hG4bKinv3",
        )));
    ack.headers
        .push(rsip::Header::CSeq(rsip::headers::CSeq::new("1 ACK")));
    assert!(layer.on_incoming(incoming(ack, udp())).is_none());
    assert!(matches!(tx.next_event().await, Some(ServerEvent::Ack(_))));
    let after = sent_until(&mut sink, t0, Duration::from_secs(10)).await;
    assert!(after.is_empty(), "no 2xx retransmission after the ACK");
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(layer.counts(), (0, 0), "Timer L ended Accepted");
    assert!(tx.next_event().await.is_none(), "no Timeout: it was ACKed");
}

#[tokio::test(start_paused = true)]
async fn unacknowledged_2xx_reports_timeout_at_timer_l() {
    let (layer, mut sink) = layer();
    let mut tx = server_tx(layer.on_incoming(incoming(request("INVITE", "z9hG4bKinv4"), udp())));
    let t0 = Instant::now();
    tx.reply(200).unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(tx.next_event().await, Some(ServerEvent::Timeout)));
    assert_eq!(t0.elapsed().as_millis(), 32_000);
    let sent = sent_until(&mut sink, t0, Duration::from_secs(33)).await;
    assert_eq!(
        sent.len(),
        11,
        "2xx sent and retransmitted on Timer G until Timer L"
    );
}

#[tokio::test(start_paused = true)]
async fn cancel_is_answered_and_reaches_the_invite() {
    let (layer, mut sink) = layer();
    let invite = request("INVITE", "z9hG4bKinv5");
    let mut tx = server_tx(layer.on_incoming(incoming(invite.clone(), udp())));
    tx.reply(180).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        code(&sink.recv().await.unwrap_or_else(|| panic!("180")).1),
        180
    );
    let cancel = cancel_for(&invite);
    assert!(
        layer.on_incoming(incoming(cancel, udp())).is_none(),
        "CANCEL never reaches the TU as a request"
    );
    let (_, ok) = sink.recv().await.unwrap_or_else(|| panic!("200 to CANCEL"));
    assert_eq!(code(&ok), 200);
    assert!(ok.to_string().contains("CANCEL"));
    // RFC 3261 §9.2: the CANCEL's 200 has the To tag of the INVITE's responses.
    let tag = format!("tag={}", tx.to_tag());
    assert!(ok.to_string().contains(&tag), "{ok}\nexpected {tag}");
    assert!(matches!(
        tx.next_event().await,
        Some(ServerEvent::Cancelled)
    ));
    // A CANCEL for nothing gets 481.
    let stray = cancel_for(&request("INVITE", "z9hG4bKnothing"));
    layer.on_incoming(incoming(stray, udp()));
    assert_eq!(
        code(&sink.recv().await.unwrap_or_else(|| panic!("481")).1),
        481
    );
}

#[tokio::test(start_paused = true)]
async fn rfc2543_requests_match_without_magic_cookie() {
    let (layer, mut sink) = layer();
    let req = request("OPTIONS", "oldbranch1");
    let tx = server_tx(layer.on_incoming(incoming(req.clone(), udp())));
    tx.reply(200).unwrap_or_else(|e| panic!("{e}"));
    let _ = sink.recv().await;
    assert!(
        layer.on_incoming(incoming(req, udp())).is_none(),
        "retransmission matched"
    );
    assert_eq!(
        code(&sink.recv().await.unwrap_or_else(|| panic!("resent")).1),
        200
    );
}

#[tokio::test(start_paused = true)]
async fn responses_carry_one_to_tag_across_retransmissions() {
    let (layer, mut sink) = layer();
    let req = request("INVITE", "z9hG4bKinv6");
    let tx = server_tx(layer.on_incoming(incoming(req, udp())));
    tx.reply(180).unwrap_or_else(|e| panic!("{e}"));
    tx.reply(486).unwrap_or_else(|e| panic!("{e}"));
    let a = sink.recv().await.unwrap_or_else(|| panic!()).1.to_string();
    let b = sink.recv().await.unwrap_or_else(|| panic!()).1.to_string();
    let tag = format!("tag={}", tx.to_tag());
    assert!(a.contains(&tag) && b.contains(&tag), "{a}\n{b}");
}

#[tokio::test]
async fn transport_failure_reaches_the_tu() {
    let (in_tx, _in_rx) = mpsc::channel(16);
    let listen: crate::transport::Listen =
        "tcp:127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}"));
    let t = Transports::bind(&[listen], in_tx)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let layer = TransactionLayer::new(t, TimerConfig::default());
    // Nothing listens on port 9 of loopback: the connect is refused.
    let mut tx = layer
        .send_request(
            outgoing("OPTIONS"),
            Peer::new(Protocol::Tcp, addr("127.0.0.1:9")),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        tx.next_event().await,
        Some(ClientEvent::TransportError(_))
    ));
}

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

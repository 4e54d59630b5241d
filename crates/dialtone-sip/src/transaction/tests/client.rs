//! The client transactions: non-INVITE (Figure 6) and INVITE (Figure 5).

use super::*;

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

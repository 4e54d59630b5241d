//! The server transactions: non-INVITE (Figure 8) and INVITE (Figure 7
//! with RFC 6026), CANCEL, and RFC 2543 matching.

use super::*;

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

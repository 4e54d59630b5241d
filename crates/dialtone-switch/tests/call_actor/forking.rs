//! Forking (dial.rs, progress.rs): a trunk call to a user with two
//! registered contacts rings both; the first 2xx wins and is bridged, the
//! other fork is CANCELled — at once when it has sent a provisional, only
//! once it does otherwise (RFC 3261 §9.1) — and a 2xx from the loser that
//! crossed the CANCEL is ACKed and BYEd (§13.2.2.4, §15).

use dialtone_sip::message::SipMessage;
use rsip::Method;

use crate::harness::*;

/// The two forks of a trunk call to bob, both INVITEs received.
struct Forked {
    call: OutCall,
    first: Offered,
    second: Offered,
}

async fn fork_to_bob(h: &mut Harness) -> Forked {
    let (b1, b2, trunk) = (bob(), bob2(), trunk());
    h.register(&b1).await;
    h.register(&b2).await;
    let call = trunk.call(N_BOB, 40000);
    h.inject(&trunk.peer, &call.text).await;
    let inv1 = h.wait(req(&b1, Method::Invite)).await;
    let inv2 = h.wait(req(&b2, Method::Invite)).await;
    // One dialog per fork, neither the caller's.
    assert_ne!(inv1.call_id(), inv2.call_id());
    assert_ne!(inv1.call_id(), call.call_id);
    // Both offers carry dialtone's media address: the forks share one
    // slot (only one of them can win).
    let (ip1, port1) = inv1.sdp_addr().unwrap_or_else(|| panic!("no SDP"));
    assert_eq!(ip1, "127.0.0.1", "offer not anchored at dialtone");
    assert_eq!(inv2.sdp_addr(), Some((ip1, port1)));
    Forked {
        call,
        first: Offered::new(&b1, inv1),
        second: Offered::new(&b2, inv2),
    }
}

/// Both of bob's phones ring; the caller hears it.
async fn both_ring(h: &mut Harness, f: &Forked) {
    h.inject(&f.first.ua.peer, &f.first.reply(180, "Ringing"))
        .await;
    h.inject(&f.second.ua.peer, &f.second.reply(180, "Ringing"))
        .await;
    h.wait(resp(&trunk(), 180, Method::Invite)).await;
}

/// The losing fork is CANCELled on its INVITE's branch (§9.1); it answers
/// 200 to the CANCEL and 487 to the INVITE: (the CANCEL, the 487's ACK).
async fn loser_cancelled(h: &mut Harness, f: &Forked) -> (SipMessage, SipMessage) {
    let cancel = h
        .wait(req(&f.second.ua, Method::Cancel).in_call(&f.second.call_id()))
        .await;
    assert_eq!(cancel.branch(), f.second.invite.branch());
    h.inject(
        &f.second.ua.peer,
        &reply(&cancel, 200, "OK", None, &[], None),
    )
    .await;
    h.inject(
        &f.second.ua.peer,
        &f.second.reply(487, "Request Terminated"),
    )
    .await;
    let ack = h
        .wait(req(&f.second.ua, Method::Ack).in_call(&f.second.call_id()))
        .await;
    (cancel, ack)
}

/// bob's first phone answers: it is ACKed and its answer relayed.
async fn first_answers(h: &mut Harness, f: &Forked) -> Dlg {
    let trunk = trunk();
    h.inject(&f.first.ua.peer, &f.first.answer(40100)).await;
    let ack = h
        .wait(req(&f.first.ua, Method::Ack).in_call(&f.first.call_id()))
        .await;
    assert_eq!(ack.cseq(), (1, "ACK".into()));
    assert_eq!(ack.to_tag().as_deref(), Some(f.first.tag.as_str()));
    let ok = h.wait(resp(&trunk, 200, Method::Invite)).await;
    let (ip, _) = ok.sdp_addr().unwrap_or_else(|| panic!("200 without SDP"));
    assert_eq!(ip, "127.0.0.1", "the caller's answer is not anchored");
    let caller = f.call.dialog(&ok);
    h.inject(&trunk.peer, &caller.ack(1)).await;
    caller
}

/// The caller hangs up: the winner (only) gets the BYE; the record says
/// answered, by the caller's BYE.
async fn caller_hangs_up(h: &mut Harness, caller: &mut Dlg, f: &Forked) {
    let trunk = trunk();
    let bye = caller.bye();
    h.inject(&trunk.peer, &bye.text).await;
    h.wait(resp(&trunk, 200, Method::Bye)).await;
    let bye = h
        .wait(req(&f.first.ua, Method::Bye).in_call(&f.first.call_id()))
        .await;
    assert_eq!(bye.to_tag().as_deref(), Some(f.first.tag.as_str()));
    h.inject(&f.first.ua.peer, &reply(&bye, 200, "OK", None, &[], None))
        .await;
    let rec = h.record().await;
    assert_eq!(rec.outcome.as_deref(), Some("answered"), "{rec:#?}");
    assert_eq!(rec.hangup_side.as_deref(), Some("caller"), "{rec:#?}");
    assert_eq!(rec.hangup_cause.as_deref(), Some("BYE"), "{rec:#?}");
    assert!(rec.answered_at.is_some(), "{rec:#?}");
    h.wait_idle().await;
}

/// The record's legs, as (peer, final status).
fn legs(rec: &dialtone_store::CallRecord) -> Vec<(String, Option<String>)> {
    let v: serde_json::Value =
        serde_json::from_str(&rec.legs).unwrap_or_else(|e| panic!("{e}: {}", rec.legs));
    v.as_array()
        .unwrap_or_else(|| panic!("legs is not an array: {v}"))
        .iter()
        .map(|l| {
            (
                l["peer"].as_str().unwrap_or_default().to_string(),
                l["final_status"].as_str().map(str::to_string),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_first_200_wins_and_the_ringing_fork_is_cancelled_and_its_487_acked() {
    let mut h = Harness::new().await;
    let f = fork_to_bob(&mut h).await;
    both_ring(&mut h, &f).await;
    // Two RTP pairs: the caller's, and the one the forks share.
    h.wait_media(2).await;
    let mut caller = first_answers(&mut h, &f).await;
    // The loser is CANCELled: its INVITE's branch and CSeq number (§9.1).
    let (cancel, ack) = loser_cancelled(&mut h, &f).await;
    assert_eq!(cancel.cseq(), (1, "CANCEL".into()));
    // Its 487 is ACKed by the transaction: same branch, the 487's To tag.
    assert_eq!(ack.branch(), f.second.invite.branch());
    assert_eq!(ack.to_tag().as_deref(), Some(f.second.tag.as_str()));
    // Nothing else for the loser; the caller got one answer only.
    h.expect_none(any_req(&f.second.ua), QUIET).await;
    caller_hangs_up(&mut h, &mut caller, &f).await;
    let rec = h.record().await;
    let loser = format!("udp:{}", f.second.ua.peer.addr);
    assert!(
        legs(&rec)
            .iter()
            .any(|(p, s)| *p == loser && s.as_deref() == Some("487 Request Terminated")),
        "the cancelled fork's 487 is not in the record: {}",
        rec.legs
    );
    h.expect_none(any_req(&f.second.ua), QUIET).await;
}

#[tokio::test]
async fn a_200_from_the_loser_that_crossed_the_cancel_is_acked_and_byed() {
    let mut h = Harness::new().await;
    let f = fork_to_bob(&mut h).await;
    let trunk = trunk();
    both_ring(&mut h, &f).await;
    let mut caller = first_answers(&mut h, &f).await;
    let cancel = h
        .wait(req(&f.second.ua, Method::Cancel).in_call(&f.second.call_id()))
        .await;
    // The second phone had answered before the CANCEL reached it: its
    // 200 crosses the CANCEL, which then has no effect (§9.2).
    h.inject(&f.second.ua.peer, &f.second.answer(40200)).await;
    h.inject(
        &f.second.ua.peer,
        &reply(&cancel, 200, "OK", None, &[], None),
    )
    .await;
    // The late 200 is ACKed end to end (a new branch, the INVITE's CSeq)
    // and the dialog it made is ended at once.
    let ack = h
        .wait(req(&f.second.ua, Method::Ack).in_call(&f.second.call_id()))
        .await;
    assert_ne!(
        ack.branch(),
        f.second.invite.branch(),
        "a 2xx ACK is a transaction of its own"
    );
    assert_eq!(ack.cseq(), (1, "ACK".into()));
    assert_eq!(ack.to_tag().as_deref(), Some(f.second.tag.as_str()));
    let bye = h
        .wait(req(&f.second.ua, Method::Bye).in_call(&f.second.call_id()))
        .await;
    assert_eq!(bye.to_tag().as_deref(), Some(f.second.tag.as_str()));
    assert_eq!(bye.cseq(), (2, "BYE".into()));
    h.inject(&f.second.ua.peer, &reply(&bye, 200, "OK", None, &[], None))
        .await;
    // The caller is untouched: no second answer, no BYE; the winner stays.
    h.expect_none(anything(&trunk), QUIET).await;
    h.expect_none(any_req(&f.first.ua), QUIET).await;
    assert_eq!(h.live_calls(), 1);
    caller_hangs_up(&mut h, &mut caller, &f).await;
}

#[tokio::test]
async fn a_fork_silent_when_another_answers_is_cancelled_only_once_it_rings() {
    let mut h = Harness::new().await;
    let f = fork_to_bob(&mut h).await;
    h.inject(&f.first.ua.peer, &f.first.reply(180, "Ringing"))
        .await;
    h.wait(resp(&trunk(), 180, Method::Invite)).await;
    let mut caller = first_answers(&mut h, &f).await;
    // §9.1: no CANCEL before a provisional response.
    h.expect_none(req(&f.second.ua, Method::Cancel), QUIET)
        .await;
    h.inject(&f.second.ua.peer, &f.second.reply(180, "Ringing"))
        .await;
    loser_cancelled(&mut h, &f).await;
    // A late ringing is not relayed to a caller already answered.
    h.expect_none(resp(&trunk(), 180, Method::Invite), QUIET)
        .await;
    caller_hangs_up(&mut h, &mut caller, &f).await;
}

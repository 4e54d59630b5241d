//! A BYE while a blind transfer's target is being called (transfer.rs,
//! actor.rs hangup, settle.rs): the kept party hanging up ends the call
//! at once — the target is CANCELled (as soon as it has sent a
//! provisional, RFC 3261 §9.1, even after the call has ended), a 2xx from
//! it is ACKed and BYEd, the transferor gets its BYE, and the record is
//! written. Also: a second REFER while one is pending, and the
//! transferor's own BYE while the target rings.

use rsip::Method;

use crate::harness::*;
use crate::transfer_failure::{assert_sipfrag, notify, referred};

/// A trunk call answered by alice, who REFERs the trunk to carol; carol's
/// INVITE received.
async fn transfer_pending(h: &mut Harness) -> (Established, Offered) {
    let mut e = h.establish(&alice(), N_ALICE).await;
    let c = carol();
    h.register(&c).await;
    referred(h, &mut e.callee, &alice(), N_CAROL).await;
    let inv = h.wait(req(&c, Method::Invite)).await;
    (e, Offered::new(&c, inv))
}

/// The trunk (the kept party) hangs up: 200, and alice gets her BYE.
async fn kept_party_hangs_up(h: &mut Harness, e: &mut Established) {
    let (a, trunk) = (alice(), trunk());
    let bye = e.caller.bye();
    h.inject(&trunk.peer, &bye.text).await;
    h.wait(resp(&trunk, 200, Method::Bye)).await;
    let bye = h.wait(req(&a, Method::Bye)).await;
    assert_eq!(bye.call_id(), e.callee.call_id);
    h.inject(&a.peer, &reply(&bye, 200, "OK", None, &[], None))
        .await;
}

/// The record of a call ended by the trunk's BYE, written at once.
async fn assert_record(h: &Harness, side: &str) {
    let rec = h.record().await;
    assert_eq!(rec.outcome.as_deref(), Some("answered"), "{rec:#?}");
    assert_eq!(rec.hangup_cause.as_deref(), Some("BYE"), "{rec:#?}");
    assert_eq!(rec.hangup_side.as_deref(), Some(side), "{rec:#?}");
    assert!(
        rec.answered_at.is_some() && rec.ended_at.is_some(),
        "{rec:#?}"
    );
}

#[tokio::test]
async fn the_kept_party_hanging_up_while_the_target_rings_cancels_it() {
    let mut h = Harness::new().await;
    let (mut e, target) = transfer_pending(&mut h).await;
    let c = carol();
    h.inject(&c.peer, &target.reply(180, "Ringing")).await;
    // A transfer's ringing is not relayed to the kept party.
    h.expect_none(anything(&trunk()), QUIET).await;
    kept_party_hangs_up(&mut h, &mut e).await;
    let cancel = h.wait(req(&c, Method::Cancel)).await;
    assert_eq!(cancel.branch(), target.invite.branch());
    assert_eq!(cancel.cseq(), (1, "CANCEL".into()));
    h.inject(&c.peer, &reply(&cancel, 200, "OK", None, &[], None))
        .await;
    h.inject(&c.peer, &target.reply(487, "Request Terminated"))
        .await;
    let ack = h.wait(req(&c, Method::Ack)).await;
    assert_eq!(ack.branch(), target.invite.branch());
    assert_record(&h, "caller").await;
    h.wait_idle().await;
    h.expect_none(any_req(&c), QUIET).await;
}

#[tokio::test]
async fn a_target_silent_when_the_kept_party_hangs_up_is_cancelled_once_it_rings() {
    let mut h = Harness::new().await;
    let (mut e, target) = transfer_pending(&mut h).await;
    let c = carol();
    kept_party_hangs_up(&mut h, &mut e).await;
    // The call has ended and its record is written…
    assert_record(&h, "caller").await;
    h.wait_idle().await;
    // …but carol's INVITE still owes its CANCEL, which must wait for a
    // provisional (§9.1).
    h.expect_none(req(&c, Method::Cancel), QUIET).await;
    h.inject(&c.peer, &target.reply(180, "Ringing")).await;
    let cancel = h.wait(req(&c, Method::Cancel)).await;
    assert_eq!(cancel.branch(), target.invite.branch());
    h.inject(&c.peer, &reply(&cancel, 200, "OK", None, &[], None))
        .await;
    h.inject(&c.peer, &target.reply(487, "Request Terminated"))
        .await;
    h.wait(req(&c, Method::Ack)).await;
    h.expect_none(any_req(&c), QUIET).await;
}

#[tokio::test]
async fn a_target_answering_after_the_kept_party_hung_up_is_acked_and_byed() {
    let mut h = Harness::new().await;
    let (mut e, target) = transfer_pending(&mut h).await;
    let c = carol();
    kept_party_hangs_up(&mut h, &mut e).await;
    assert_record(&h, "caller").await;
    h.inject(&c.peer, &target.answer(40300)).await;
    let ack = h.wait(req(&c, Method::Ack)).await;
    assert_eq!(ack.to_tag().as_deref(), Some(target.tag.as_str()));
    let bye = h.wait(req(&c, Method::Bye)).await;
    assert_eq!(bye.to_tag().as_deref(), Some(target.tag.as_str()));
    h.inject(&c.peer, &reply(&bye, 200, "OK", None, &[], None))
        .await;
    h.expect_none(req(&c, Method::Cancel), QUIET).await;
    h.wait_idle().await;
}

#[tokio::test]
async fn a_second_refer_while_one_is_pending_gets_491_and_the_first_completes() {
    let mut h = Harness::new().await;
    let (mut e, target) = transfer_pending(&mut h).await;
    let (a, c, trunk) = (alice(), carol(), trunk());
    h.inject(&c.peer, &target.reply(180, "Ringing")).await;
    // Accepted, then failed at once by NOTIFY: one transfer at a time.
    let second = referred(&mut h, &mut e.callee, &a, N_BOB).await;
    let refused = notify(&mut h, &a).await;
    assert_sipfrag(&refused, "SIP/2.0 491", true);
    // Each NOTIFY says which REFER it reports on (RFC 3515 §2.4.6): the
    // second's carry its CSeq as Event id, the first's stay plain.
    let event = |n: &rsip::SipMessage| n.header("Event").unwrap_or_default().replace(' ', "");
    assert_eq!(event(&refused), format!("refer;id={}", second.cseq));
    h.expect_none(req(&c, Method::Cancel), QUIET).await;
    // carol answers the first: the kept party is bridged to her, alice
    // hears 200 OK and is released.
    h.inject(&c.peer, &target.answer(40300)).await;
    h.wait(req(&c, Method::Ack)).await;
    let done = notify(&mut h, &a).await;
    assert_sipfrag(&done, "SIP/2.0 200", true);
    assert_eq!(event(&done), "refer");
    let bye = h.wait(req(&a, Method::Bye)).await;
    h.inject(&a.peer, &reply(&bye, 200, "OK", None, &[], None))
        .await;
    // The trunk's dialog is untouched (its media is re-bridged inside
    // dialtone): it hears nothing, and its BYE now reaches carol.
    h.expect_none(anything(&trunk), QUIET).await;
    h.wait_media(2).await;
    let bye = e.caller.bye();
    h.inject(&trunk.peer, &bye.text).await;
    h.wait(resp(&trunk, 200, Method::Bye)).await;
    let bye = h.wait(req(&c, Method::Bye)).await;
    assert_eq!(bye.to_tag().as_deref(), Some(target.tag.as_str()));
    h.inject(&c.peer, &reply(&bye, 200, "OK", None, &[], None))
        .await;
    assert_record(&h, "caller").await;
    h.wait_idle().await;
}

/// What dialtone does today when the transferor hangs up while the target
/// rings: the whole call ends — the kept party gets a BYE and the target
/// a CANCEL. A phone that sends BYE as soon as its blind transfer is
/// accepted (without waiting for the final NOTIFY) thus drops the party it
/// meant to transfer. This test pins the current behaviour; change it
/// with the behaviour if that is ever decided otherwise.
#[tokio::test]
async fn the_transferors_bye_while_the_target_rings_ends_the_whole_call() {
    let mut h = Harness::new().await;
    let (mut e, target) = transfer_pending(&mut h).await;
    let (a, c, trunk) = (alice(), carol(), trunk());
    h.inject(&c.peer, &target.reply(180, "Ringing")).await;
    let bye = e.callee.bye();
    h.inject(&a.peer, &bye.text).await;
    h.wait(resp(&a, 200, Method::Bye)).await;
    let bye = h.wait(req(&trunk, Method::Bye)).await;
    h.inject(&trunk.peer, &reply(&bye, 200, "OK", None, &[], None))
        .await;
    let cancel = h.wait(req(&c, Method::Cancel)).await;
    h.inject(&c.peer, &reply(&cancel, 200, "OK", None, &[], None))
        .await;
    h.inject(&c.peer, &target.reply(487, "Request Terminated"))
        .await;
    h.wait(req(&c, Method::Ack)).await;
    assert_record(&h, "callee").await;
    h.wait_idle().await;
}

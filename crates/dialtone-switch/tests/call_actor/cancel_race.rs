//! The caller's CANCEL against the callee's 200 (RFC 3261 §9, §13.2.2.4,
//! RFC 6026). Whichever dialtone takes first decides: a CANCEL taken
//! first gets the caller 200 (CANCEL) and 487 (INVITE), and the callee's
//! 200 that crossed dialtone's CANCEL is ACKed and BYEd; a 200 relayed
//! first makes the CANCEL that crossed it a no-op (200 for the CANCEL,
//! the call goes on).

use rsip::Method;

use crate::harness::*;

/// A trunk call ringing at bob (one phone), the 180 relayed.
async fn ringing(h: &mut Harness, ring: bool) -> (OutCall, Offered) {
    let (b, trunk) = (bob(), trunk());
    h.register(&b).await;
    let call = trunk.call(N_BOB, 40000);
    h.inject(&trunk.peer, &call.text).await;
    let offered = Offered::new(&b, h.wait(req(&b, Method::Invite)).await);
    if ring {
        h.inject(&b.peer, &offered.reply(180, "Ringing")).await;
        h.wait(resp(&trunk, 180, Method::Invite)).await;
    }
    (call, offered)
}

/// The caller's CANCEL is answered 200 and its INVITE 487 (which it ACKs).
async fn caller_cancels(h: &mut Harness, call: &OutCall) {
    let trunk = trunk();
    h.inject(&trunk.peer, &call.cancel()).await;
    let ok = h.wait(resp(&trunk, 200, Method::Cancel)).await;
    assert_eq!(ok.branch().as_deref(), Some(call.branch.as_str()));
    let terminated = h.wait(resp(&trunk, 487, Method::Invite)).await;
    assert_eq!(terminated.call_id(), call.call_id);
    // §9.2: the CANCEL's response carries the INVITE's To tag.
    assert_eq!(ok.to_tag(), terminated.to_tag());
    h.inject(&trunk.peer, &call.ack_non2xx(&terminated)).await;
}

/// The record of a call the caller cancelled before any answer.
async fn assert_cancelled(h: &Harness) {
    let rec = h.record().await;
    assert_eq!(rec.outcome.as_deref(), Some("cancelled"), "{rec:#?}");
    assert_eq!(rec.hangup_cause.as_deref(), Some("CANCEL"), "{rec:#?}");
    assert_eq!(rec.hangup_side.as_deref(), Some("caller"), "{rec:#?}");
    assert!(rec.answered_at.is_none(), "{rec:#?}");
}

#[tokio::test]
async fn a_cancel_taken_first_gets_487_and_the_callees_crossing_200_is_acked_and_byed() {
    let mut h = Harness::new().await;
    let (call, bob_leg) = ringing(&mut h, true).await;
    let (b, trunk) = (bob(), trunk());
    caller_cancels(&mut h, &call).await;
    // dialtone CANCELs bob's INVITE…
    let cancel = h.wait(req(&b, Method::Cancel)).await;
    assert_eq!(cancel.branch(), bob_leg.invite.branch());
    // …but bob had answered already: his 200 crosses that CANCEL, which
    // he then answers 200 (it had no effect, §9.2).
    h.inject(&b.peer, &bob_leg.answer(40100)).await;
    h.inject(&b.peer, &reply(&cancel, 200, "OK", None, &[], None))
        .await;
    // The ended call still owes bob's 2xx its ACK, then ends that dialog.
    let ack = h
        .wait(req(&b, Method::Ack).in_call(&bob_leg.call_id()))
        .await;
    assert_eq!(ack.to_tag().as_deref(), Some(bob_leg.tag.as_str()));
    assert_eq!(ack.cseq(), (1, "ACK".into()));
    let bye = h
        .wait(req(&b, Method::Bye).in_call(&bob_leg.call_id()))
        .await;
    assert_eq!(bye.to_tag().as_deref(), Some(bob_leg.tag.as_str()));
    h.inject(&b.peer, &reply(&bye, 200, "OK", None, &[], None))
        .await;
    // The caller never hears of it.
    h.expect_none(resp(&trunk, 200, Method::Invite), QUIET)
        .await;
    h.expect_none(any_req(&trunk), QUIET).await;
    assert_cancelled(&h).await;
    h.wait_idle().await;
}

#[tokio::test]
async fn a_cancel_crossing_the_relayed_200_has_no_effect_and_the_call_goes_on() {
    let mut h = Harness::new().await;
    let (call, bob_leg) = ringing(&mut h, true).await;
    let (b, trunk) = (bob(), trunk());
    h.inject(&b.peer, &bob_leg.answer(40100)).await;
    h.wait(req(&b, Method::Ack).in_call(&bob_leg.call_id()))
        .await;
    let ok = h.wait(resp(&trunk, 200, Method::Invite)).await;
    // The caller had sent its CANCEL before the 200 reached it. The
    // INVITE transaction is still there (Accepted, RFC 6026): the CANCEL
    // is answered 200 and changes nothing.
    h.inject(&trunk.peer, &call.cancel()).await;
    let cancel_ok = h.wait(resp(&trunk, 200, Method::Cancel)).await;
    assert_eq!(cancel_ok.branch().as_deref(), Some(call.branch.as_str()));
    let mut caller = call.dialog(&ok);
    h.inject(&trunk.peer, &caller.ack(1)).await;
    h.expect_none(resp(&trunk, 487, Method::Invite), QUIET)
        .await;
    h.expect_none(any_req(&b), QUIET).await;
    assert_eq!(h.live_calls(), 1, "the call must go on");
    // It does: the caller's re-INVITE reaches bob, and its BYE ends it.
    let reinvite = caller.reinvite(40000, "sendonly");
    h.inject(&trunk.peer, &reinvite.text).await;
    let relayed = h
        .wait(req(&b, Method::Invite).in_call(&bob_leg.call_id()))
        .await;
    assert_eq!(relayed.sdp_direction().as_deref(), Some("sendonly"));
    let callee = bob_leg.dialog();
    h.inject(&b.peer, &callee.answer(&relayed, 40100, "recvonly"))
        .await;
    h.wait(req(&b, Method::Ack).in_call(&bob_leg.call_id()))
        .await;
    let ok2 = h.wait(resp(&trunk, 200, Method::Invite)).await;
    assert_eq!(ok2.cseq(), (reinvite.cseq, "INVITE".into()));
    h.inject(&trunk.peer, &caller.ack(reinvite.cseq)).await;
    let bye = caller.bye();
    h.inject(&trunk.peer, &bye.text).await;
    h.wait(resp(&trunk, 200, Method::Bye)).await;
    let bye = h.wait(req(&b, Method::Bye)).await;
    h.inject(&b.peer, &reply(&bye, 200, "OK", None, &[], None))
        .await;
    let rec = h.record().await;
    assert_eq!(rec.outcome.as_deref(), Some("answered"), "{rec:#?}");
    assert_eq!(rec.hangup_side.as_deref(), Some("caller"), "{rec:#?}");
    h.wait_idle().await;
}

#[tokio::test]
async fn a_cancel_before_the_callee_said_anything_waits_for_its_provisional_or_releases_its_200() {
    let mut h = Harness::new().await;
    let (call, bob_leg) = ringing(&mut h, false).await;
    let (b, trunk) = (bob(), trunk());
    // The caller is answered at once, whatever bob does next.
    caller_cancels(&mut h, &call).await;
    // §9.1: bob has sent nothing, so no CANCEL may go to him yet.
    h.expect_none(req(&b, Method::Cancel), QUIET).await;
    // His 200 comes instead (he answered before anything else): ACK, BYE.
    h.inject(&b.peer, &bob_leg.answer(40100)).await;
    h.wait(req(&b, Method::Ack).in_call(&bob_leg.call_id()))
        .await;
    let bye = h
        .wait(req(&b, Method::Bye).in_call(&bob_leg.call_id()))
        .await;
    h.inject(&b.peer, &reply(&bye, 200, "OK", None, &[], None))
        .await;
    h.expect_none(req(&b, Method::Cancel), QUIET).await;
    h.expect_none(resp(&trunk, 200, Method::Invite), QUIET)
        .await;
    assert_cancelled(&h).await;
    h.wait_idle().await;
}

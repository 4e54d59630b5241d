//! Re-INVITE glare (RFC 3261 §14): dialtone relays one party's re-INVITE
//! to the other; a re-INVITE from that other party crossing it arrives on
//! a dialog where dialtone has an INVITE in progress, and must get 491
//! (§14.2, UAS behaviour). The other party does the same to dialtone's,
//! so both ends see 491, every 491 is ACKed, and the call survives: a
//! retry (after §14.1's random wait) goes through and a BYE ends the call
//! normally. Also: a BYE crossing a relayed re-INVITE, and (§14.2 again)
//! a second re-INVITE from the same party before the first is answered.

use rsip::Method;

use crate::harness::*;

/// `first` re-INVITEs, `second`'s re-INVITE crosses dialtone's relay of
/// it: both get 491, the relay's 491 is ACKed by dialtone. Then `second`
/// retries and its re-INVITE is relayed and answered end to end.
async fn glare(
    h: &mut Harness,
    (first, first_ua): (&mut Dlg, &Ua),
    (second, second_ua): (&mut Dlg, &Ua),
) {
    let ours = first.reinvite(41000, "sendonly");
    h.inject(&first_ua.peer, &ours.text).await;
    let relayed = h
        .wait(req(second_ua, Method::Invite).in_call(&second.call_id))
        .await;
    assert_eq!(relayed.sdp_direction().as_deref(), Some("sendonly"));
    // The other party's re-INVITE crosses it.
    let theirs = second.reinvite(42000, "sendonly");
    h.inject(&second_ua.peer, &theirs.text).await;
    // dialtone has an INVITE in progress on that dialog: 491 (§14.2).
    let pending = h.wait(resp(second_ua, 491, Method::Invite)).await;
    assert_eq!(pending.cseq(), (theirs.cseq, "INVITE".into()));
    h.inject(&second_ua.peer, &second.ack_non2xx(&theirs)).await;
    // The other party, with its own INVITE in progress, answers ours 491
    // too; dialtone's transaction ACKs it (same branch) and the 491 goes
    // back to the party that started.
    h.inject(
        &second_ua.peer,
        &reply(&relayed, 491, "Request Pending", None, &[], None),
    )
    .await;
    let relayed_branch = relayed.branch();
    let ack = h
        .wait(
            req(second_ua, Method::Ack)
                .and("the relay's branch", move |m| m.branch() == relayed_branch),
        )
        .await;
    assert_eq!(ack.cseq().0, relayed.cseq().0);
    let back = h.wait(resp(first_ua, 491, Method::Invite)).await;
    assert_eq!(back.cseq(), (ours.cseq, "INVITE".into()));
    h.inject(&first_ua.peer, &first.ack_non2xx(&ours)).await;
    // Nothing else went anywhere.
    h.expect_none(any_req(first_ua), QUIET).await;
    h.expect_none(any_req(second_ua), QUIET).await;
    // The call survives: the retry (after §14.1's random wait) is relayed
    // and answered end to end.
    let retry = second.reinvite(42000, "sendonly");
    h.inject(&second_ua.peer, &retry.text).await;
    let to_first = h
        .wait(req(first_ua, Method::Invite).in_call(&first.call_id))
        .await;
    assert_eq!(to_first.sdp_direction().as_deref(), Some("sendonly"));
    let (ip, _) = to_first.sdp_addr().unwrap_or_else(|| panic!("no SDP"));
    assert_eq!(ip, "127.0.0.1", "the relayed offer is not anchored");
    h.inject(&first_ua.peer, &first.answer(&to_first, 41000, "recvonly"))
        .await;
    let to_first_cseq = to_first.cseq().0;
    h.wait(
        req(first_ua, Method::Ack)
            .and("the re-INVITE's CSeq", move |m| m.cseq().0 == to_first_cseq),
    )
    .await;
    let ok = h.wait(resp(second_ua, 200, Method::Invite)).await;
    assert_eq!(ok.cseq(), (retry.cseq, "INVITE".into()));
    assert_eq!(ok.sdp_direction().as_deref(), Some("recvonly"));
    h.inject(&second_ua.peer, &second.ack(retry.cseq)).await;
}

/// The trunk hangs up; the callee gets the BYE; the record says answered.
async fn caller_hangs_up(h: &mut Harness, e: &mut Established) {
    let bye = e.caller.bye();
    h.inject(&e.trunk.peer, &bye.text).await;
    h.wait(resp(&e.trunk, 200, Method::Bye)).await;
    let bye = h.wait(req(&e.callee_ua, Method::Bye)).await;
    h.inject(&e.callee_ua.peer, &reply(&bye, 200, "OK", None, &[], None))
        .await;
    let rec = h.record().await;
    assert_eq!(rec.outcome.as_deref(), Some("answered"), "{rec:#?}");
    assert_eq!(rec.hangup_cause.as_deref(), Some("BYE"), "{rec:#?}");
    assert_eq!(rec.hangup_side.as_deref(), Some("caller"), "{rec:#?}");
    h.wait_idle().await;
}

#[tokio::test]
async fn crossing_reinvites_meet_491_and_the_call_survives_callers_first() {
    let mut h = Harness::new().await;
    let mut e = h.establish(&bob(), N_BOB).await;
    let (trunk, b) = (e.trunk.clone(), e.callee_ua.clone());
    glare(&mut h, (&mut e.caller, &trunk), (&mut e.callee, &b)).await;
    caller_hangs_up(&mut h, &mut e).await;
}

#[tokio::test]
async fn crossing_reinvites_meet_491_and_the_call_survives_callees_first() {
    let mut h = Harness::new().await;
    let mut e = h.establish(&bob(), N_BOB).await;
    let (trunk, b) = (e.trunk.clone(), e.callee_ua.clone());
    glare(&mut h, (&mut e.callee, &b), (&mut e.caller, &trunk)).await;
    caller_hangs_up(&mut h, &mut e).await;
}

#[tokio::test]
async fn a_bye_crossing_a_relayed_reinvite_ends_the_call_and_the_reinvite_gets_487() {
    let mut h = Harness::new().await;
    let mut e = h.establish(&bob(), N_BOB).await;
    let (trunk, b) = (e.trunk.clone(), e.callee_ua.clone());
    let reinvite = e.caller.reinvite(41000, "sendonly");
    h.inject(&trunk.peer, &reinvite.text).await;
    let relayed = h.wait(req(&b, Method::Invite)).await;
    // bob hangs up instead of answering.
    let bye = e.callee.bye();
    h.inject(&b.peer, &bye.text).await;
    h.wait(resp(&b, 200, Method::Bye)).await;
    let bye_a = h.wait(req(&trunk, Method::Bye)).await;
    let terminated = h.wait(resp(&trunk, 487, Method::Invite)).await;
    assert_eq!(terminated.cseq(), (reinvite.cseq, "INVITE".into()));
    h.inject(&trunk.peer, &e.caller.ack_non2xx(&reinvite)).await;
    h.inject(&trunk.peer, &reply(&bye_a, 200, "OK", None, &[], None))
        .await;
    // bob's dialog is gone: he answers the re-INVITE 481, which is ACKed.
    h.inject(
        &b.peer,
        &reply(
            &relayed,
            481,
            "Call/Transaction Does Not Exist",
            None,
            &[],
            None,
        ),
    )
    .await;
    let relayed_branch = relayed.branch();
    h.wait(req(&b, Method::Ack).and("the relay's branch", move |m| m.branch() == relayed_branch))
        .await;
    let rec = h.record().await;
    assert_eq!(rec.outcome.as_deref(), Some("answered"), "{rec:#?}");
    assert_eq!(rec.hangup_side.as_deref(), Some("callee"), "{rec:#?}");
    assert_eq!(rec.hangup_cause.as_deref(), Some("BYE"), "{rec:#?}");
    h.wait_idle().await;
    h.expect_none(any_req(&b), QUIET).await;
}

/// RFC 3261 §14.2: "A UAS that receives a second INVITE before it sends
/// the final response to a first INVITE with a lower CSeq sequence number
/// on the same dialog MUST return a 500 (Server Internal Error) response
/// to the second INVITE and MUST include a Retry-After header field with
/// a randomly chosen value of between 0 and 10 seconds." (in_dialog.rs,
/// `busy_response`: 491 stays for true glare, above.)
#[tokio::test]
async fn a_second_reinvite_from_the_same_party_before_the_first_is_answered_gets_500() {
    second_offer_gets_500(true).await;
}

/// RFC 3311 §5.2: "if an UPDATE is received that contains an offer, and
/// the UAS has received an offer (in an UPDATE, PRACK, or INVITE) on that
/// dialog to which it has not yet generated an answer, the UAS MUST reject
/// the UPDATE with a 500 response, and MUST include a Retry-After".
#[tokio::test]
async fn an_update_offer_while_the_same_partys_reinvite_is_unanswered_gets_500() {
    second_offer_gets_500(false).await;
}

/// The caller's re-INVITE is relayed to the callee, who does not answer;
/// the caller then sends a second offer (a re-INVITE, or an UPDATE): 500
/// with a Retry-After of at most 10 s.
async fn second_offer_gets_500(reinvite: bool) {
    let mut h = Harness::new().await;
    let mut e = h.establish(&bob(), N_BOB).await;
    let (trunk, b) = (e.trunk.clone(), e.callee_ua.clone());
    let first = e.caller.reinvite(41000, "sendonly");
    h.inject(&trunk.peer, &first.text).await;
    h.wait(req(&b, Method::Invite)).await;
    let second = if reinvite {
        e.caller.reinvite(41000, "sendrecv")
    } else {
        e.caller.update(41000, "sendrecv")
    };
    h.inject(&trunk.peer, &second.text).await;
    let (_, r) = h
        .expect(
            Want::new("a final response to the second offer", move |p, m| {
                *p == trunk.peer && m.code().is_some_and(|c| c >= 200) && m.cseq().0 == second.cseq
            }),
            WAIT,
        )
        .await;
    assert_eq!(r.code(), Some(500), "{}", r.first_line());
    let after: u32 = r
        .header("Retry-After")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("500 without a usable Retry-After"));
    assert!(after <= 10, "Retry-After {after}");
}

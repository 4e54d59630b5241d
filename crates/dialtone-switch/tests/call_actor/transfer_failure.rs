//! Blind transfers that fail (transfer.rs): the REFER is accepted (202),
//! its progress goes to the transferor in NOTIFYs with sipfrag bodies
//! (RFC 3515 §2.4.4-2.4.7), the last one carrying the failure and ending
//! the subscription, and the call stays as it was: transferor and
//! transferee still bridged. A transfer the policy refuses is answered on
//! the REFER itself, and nothing is dialled.

use rsip::Method;

use crate::harness::*;

/// The REFER from `ua` to `target` (a number or user at our domain) is
/// accepted: 202, then the "100 Trying" NOTIFY (answered 200).
pub(crate) async fn referred(h: &mut Harness, dlg: &mut Dlg, ua: &Ua, target: &str) -> Req {
    let refer = dlg.refer(&format!("sip:{target}@{DOMAIN}"));
    h.inject(&ua.peer, &refer.text).await;
    let accepted = h.wait(resp(ua, 202, Method::Refer)).await;
    assert_eq!(accepted.cseq(), (refer.cseq, "REFER".into()));
    let trying = notify(h, ua).await;
    assert_sipfrag(&trying, "SIP/2.0 100 Trying", false);
    refer
}

/// The next NOTIFY to `ua`, answered 200.
pub(crate) async fn notify(h: &mut Harness, ua: &Ua) -> rsip::SipMessage {
    let n = h.wait(req(ua, Method::Notify)).await;
    h.inject(&ua.peer, &reply(&n, 200, "OK", None, &[], None))
        .await;
    n
}

/// A NOTIFY for a REFER (RFC 3515 §2.4.4-2.4.7): Event refer, a sipfrag
/// body whose status line starts with `status`, the subscription active
/// or (`last`) terminated.
pub(crate) fn assert_sipfrag(n: &rsip::SipMessage, status: &str, last: bool) {
    let event = n.header("Event").unwrap_or_default();
    assert!(event.starts_with("refer"), "Event: {event}");
    let ctype = n.header("Content-Type").unwrap_or_default();
    assert!(
        ctype.starts_with("message/sipfrag"),
        "Content-Type: {ctype}"
    );
    let body = n.body_text();
    assert!(
        body.starts_with(status),
        "sipfrag {body:?}, expected {status:?}"
    );
    let state = n.header("Subscription-State").unwrap_or_default();
    let want = if last { "terminated" } else { "active" };
    assert!(
        state.starts_with(want),
        "Subscription-State: {state}, expected {want}"
    );
}

/// The call still bridges its two parties: the trunk's re-INVITE reaches
/// the callee and the answer comes back.
async fn still_bridged(h: &mut Harness, e: &mut Established) {
    let (trunk, callee) = (e.trunk.clone(), e.callee_ua.clone());
    let reinvite = e.caller.reinvite(40000, "sendonly");
    h.inject(&trunk.peer, &reinvite.text).await;
    let relayed = h
        .wait(req(&callee, Method::Invite).in_call(&e.callee.call_id))
        .await;
    h.inject(&callee.peer, &e.callee.answer(&relayed, 40100, "recvonly"))
        .await;
    let relayed_cseq = relayed.cseq().0;
    h.wait(req(&callee, Method::Ack).and("the re-INVITE's", move |m| m.cseq().0 == relayed_cseq))
        .await;
    let ok = h.wait(resp(&trunk, 200, Method::Invite)).await;
    assert_eq!(ok.cseq(), (reinvite.cseq, "INVITE".into()));
    assert_eq!(ok.sdp_direction().as_deref(), Some("recvonly"));
    h.inject(&trunk.peer, &e.caller.ack(reinvite.cseq)).await;
}

/// The callee hangs up; the trunk gets the BYE; the record says answered.
async fn callee_hangs_up(h: &mut Harness, e: &mut Established) {
    let bye = e.callee.bye();
    h.inject(&e.callee_ua.peer, &bye.text).await;
    h.wait(resp(&e.callee_ua, 200, Method::Bye)).await;
    let bye = h.wait(req(&e.trunk, Method::Bye)).await;
    h.inject(&e.trunk.peer, &reply(&bye, 200, "OK", None, &[], None))
        .await;
    let rec = h.record().await;
    assert_eq!(rec.outcome.as_deref(), Some("answered"), "{rec:#?}");
    assert_eq!(rec.hangup_cause.as_deref(), Some("BYE"), "{rec:#?}");
    assert_eq!(rec.hangup_side.as_deref(), Some("callee"), "{rec:#?}");
    h.wait_idle().await;
}

#[tokio::test]
async fn a_refer_to_a_busy_target_notifies_486_and_the_call_goes_on() {
    let mut h = Harness::new().await;
    let mut e = h.establish(&alice(), N_ALICE).await;
    let (a, c, trunk) = (alice(), carol(), trunk());
    h.register(&c).await;
    assert_eq!(h.media_in_use(), 2);
    referred(&mut h, &mut e.callee, &a, N_CAROL).await;
    // The target is dialled for the kept party, with an offer anchored on
    // a slot of its own.
    let inv = h.wait(req(&c, Method::Invite)).await;
    let (ip, _) = inv.sdp_addr().unwrap_or_else(|| panic!("no offer"));
    assert_eq!(ip, "127.0.0.1");
    h.wait_media(3).await;
    let target = Offered::new(&c, inv);
    h.inject(&c.peer, &target.reply(486, "Busy Here")).await;
    let ack = h.wait(req(&c, Method::Ack)).await;
    assert_eq!(ack.branch(), target.invite.branch());
    let last = notify(&mut h, &a).await;
    assert_sipfrag(&last, "SIP/2.0 486 Busy Here", true);
    // The target's slot is given back; the trunk heard nothing of it.
    h.wait_media(2).await;
    h.expect_none(anything(&trunk), QUIET).await;
    h.expect_none(any_req(&c), QUIET).await;
    still_bridged(&mut h, &mut e).await;
    callee_hangs_up(&mut h, &mut e).await;
}

#[tokio::test]
async fn refers_to_an_unregistered_user_and_an_unknown_number_notify_480_and_404() {
    let mut h = Harness::new().await;
    let mut e = h.establish(&alice(), N_ALICE).await;
    let (a, trunk) = (alice(), trunk());
    // dave exists but has no registration.
    referred(&mut h, &mut e.callee, &a, N_DAVE).await;
    let last = notify(&mut h, &a).await;
    assert_sipfrag(&last, "SIP/2.0 480", true);
    // A number nobody routes, dialled with alice's rights.
    referred(&mut h, &mut e.callee, &a, "15559999999").await;
    let last = notify(&mut h, &a).await;
    assert_sipfrag(&last, "SIP/2.0 404", true);
    // Nothing was dialled; the call is as it was.
    h.expect_none(anything(&trunk), QUIET).await;
    assert_eq!(h.media_in_use(), 2);
    still_bridged(&mut h, &mut e).await;
    callee_hangs_up(&mut h, &mut e).await;
}

#[tokio::test]
async fn a_trunk_partys_refer_to_a_user_is_refused_403_and_nothing_is_dialled() {
    let mut h = Harness::new().await;
    let mut e = h.establish(&alice(), N_ALICE).await;
    let (a, c, trunk) = (alice(), carol(), trunk());
    h.register(&c).await;
    // A trunk's party reaches the numbers only: a user is refused on the
    // REFER itself (the policy answers, no subscription starts).
    let refer = e.caller.refer(&format!("sip:carol@{DOMAIN}"));
    h.inject(&trunk.peer, &refer.text).await;
    let refused = h.wait(resp(&trunk, 403, Method::Refer)).await;
    assert_eq!(refused.cseq(), (refer.cseq, "REFER".into()));
    h.expect_none(req(&trunk, Method::Notify), QUIET).await;
    h.expect_none(anything(&c), QUIET).await;
    h.expect_none(any_req(&a), QUIET).await;
    still_bridged(&mut h, &mut e).await;
    callee_hangs_up(&mut h, &mut e).await;
}

/// The INVITE to a transfer target is placed "as" the kept party (dial.rs,
/// `caller_identity`: its display name and user at our domain). When the
/// kept party is the caller, its leg no longer holds the INVITE
/// transaction it took the From from (`uas` is taken when the caller is
/// answered), and the target sees `<sip:anonymous@DOMAIN>` instead of the
/// caller's number.
#[tokio::test]
async fn a_transfer_target_is_called_with_the_kept_callers_identity() {
    let mut h = Harness::new().await;
    let mut e = h.establish(&alice(), N_ALICE).await;
    let (a, c, trunk) = (alice(), carol(), trunk());
    h.register(&c).await;
    referred(&mut h, &mut e.callee, &a, N_CAROL).await;
    let inv = h.wait(req(&c, Method::Invite)).await;
    let from = inv.header("From").unwrap_or_default();
    assert!(
        from.contains(&format!("<sip:{}@{DOMAIN}>", trunk.user)),
        "From: {from}"
    );
}

/// RFC 3515 §2.4.6: "for the second and subsequent REFER requests a UA
/// receives in a given dialog, it MUST include an id parameter in the
/// Event header field of each NOTIFY containing the sequence number (the
/// number from the CSeq header field value) of the REFER this NOTIFY is
/// associated with." (transfer.rs, `ReferSub`: the first REFER's NOTIFYs
/// keep a plain `Event: refer`, which §2.4.6 allows.)
#[tokio::test]
async fn notifies_for_a_second_refer_in_the_dialog_carry_its_cseq_as_event_id() {
    let mut h = Harness::new().await;
    let mut e = h.establish(&alice(), N_ALICE).await;
    let a = alice();
    referred(&mut h, &mut e.callee, &a, N_DAVE).await;
    let first = notify(&mut h, &a).await;
    assert_eq!(
        first.header("Event").as_deref().map(str::trim),
        Some("refer")
    );
    let second = e.callee.refer(&format!("sip:15559999999@{DOMAIN}"));
    h.inject(&a.peer, &second.text).await;
    h.wait(resp(&a, 202, Method::Refer)).await;
    for _ in 0..2 {
        let n = notify(&mut h, &a).await;
        let event = n.header("Event").unwrap_or_default().replace(' ', "");
        assert_eq!(
            event,
            format!("refer;id={}", second.cseq),
            "{}",
            n.first_line()
        );
    }
}

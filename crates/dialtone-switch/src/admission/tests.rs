//! Unit tests of the call limits.
// `&[p.clone()]` reads better than `from_ref` when the party is used again.
#![allow(clippy::cloned_ref_to_slice_refs)]

use std::time::Duration;

use super::*;

fn party(kind: PartyKind, id: &str, max_calls: Option<u32>, cps_milli: Option<u32>) -> Limited {
    Limited {
        key: PartyKey {
            kind,
            id: id.into(),
        },
        name: id.into(),
        limits: CallLimits {
            max_calls,
            max_cps_milli: cps_milli,
        },
    }
}

fn refused(r: Result<Permits, Refusal>) -> Refusal {
    match r {
        Ok(p) => panic!("admitted: {p:?}"),
        Err(r) => r,
    }
}

#[test]
fn max_calls_counts_until_the_permits_drop() {
    let a = Arc::new(Admission::default());
    let alice = party(PartyKind::User, "alice", Some(2), None);
    let none = Permits::default();
    let first = a.admit(&[alice.clone()], &none).expect("first");
    let second = a.admit(&[alice.clone()], &none).expect("second");
    assert_eq!(a.active_of(PartyKind::User, "alice"), 2);
    let r = refused(a.admit(&[alice.clone()], &none));
    assert_eq!((r.status, r.reason), (403, "Call Limit Reached"));
    assert!(
        r.detail.contains("user alice") && r.detail.contains("2 calls"),
        "{}",
        r.detail
    );
    assert_eq!(r.retry_after, None);
    assert_eq!(a.refused(PartyKind::User, Limit::Calls), 1);
    drop(first);
    assert_eq!(a.active(), 1);
    let third = a.admit(&[alice], &none).expect("after one ended");
    drop((second, third));
    assert_eq!(a.active(), 0, "every count returned");
}

#[test]
fn a_trunk_over_its_calls_is_503_and_zero_means_none() {
    let a = Arc::new(Admission::default());
    let t = party(PartyKind::Trunk, "carrier", Some(0), None);
    let r = refused(a.admit(&[t], &Permits::default()));
    assert_eq!((r.status, r.reason), (503, "Trunk Call Limit Reached"));
    let blocked = party(PartyKind::Account, "acme", None, Some(0));
    let r = refused(a.admit(&[blocked], &Permits::default()));
    assert_eq!((r.status, r.retry_after), (503, None));
    assert_eq!(a.refused(PartyKind::Account, Limit::Rate), 1);
}

#[test]
fn rate_allows_a_seconds_burst_then_refills() {
    let a = Arc::new(Admission::default());
    let t = party(PartyKind::Trunk, "carrier", None, Some(2000));
    let now = Instant::now();
    let none = Permits::default();
    let mut kept = Vec::new();
    for _ in 0..2 {
        kept.push(
            a.admit_at(&[t.clone()], &none, now)
                .expect("within the burst"),
        );
    }
    let r = refused(a.admit_at(&[t.clone()], &none, now));
    assert_eq!((r.status, r.reason), (503, "Call Rate Limit Exceeded"));
    assert_eq!(r.retry_after, Some(1));
    assert!(
        r.detail.contains("trunk carrier") && r.detail.contains("2 new calls"),
        "{}",
        r.detail
    );
    // Half a second later: one more (2 a second).
    let later = now + Duration::from_millis(500);
    kept.push(a.admit_at(&[t.clone()], &none, later).expect("refilled"));
    assert!(a.admit_at(&[t], &none, later).is_err());
    // A rate alone counts no concurrent calls.
    assert_eq!(a.active(), 0);
}

#[test]
fn a_slow_rate_says_when_to_retry() {
    let a = Arc::new(Admission::default());
    // 30 a minute: one every 2 s, a burst of one.
    let u = party(PartyKind::User, "bob", None, Some(500));
    let now = Instant::now();
    let _p = a
        .admit_at(&[u.clone()], &Permits::default(), now)
        .expect("first");
    let r = refused(a.admit_at(&[u], &Permits::default(), now));
    assert_eq!(r.retry_after, Some(2));
}

#[test]
fn all_or_none_across_parties() {
    let a = Arc::new(Admission::default());
    let alice = party(PartyKind::User, "alice", Some(5), Some(5000));
    let acme = party(PartyKind::Account, "acme", Some(1), None);
    let none = Permits::default();
    let held = a
        .admit(&[alice.clone(), acme.clone()], &none)
        .expect("first");
    let r = refused(a.admit(&[alice.clone(), acme.clone()], &none));
    assert!(r.detail.contains("account acme"), "{}", r.detail);
    // alice's count and token were given back.
    assert_eq!(a.active_of(PartyKind::User, "alice"), 1);
    drop(held);
    assert_eq!(a.active(), 0);
    for _ in 0..4 {
        drop(a.admit(&[alice.clone()], &none).expect("tokens left"));
    }
}

#[test]
fn a_call_counts_once_per_party_but_pays_the_rate_again() {
    let a = Arc::new(Admission::default());
    let alice = party(PartyKind::User, "alice", Some(1), Some(2000));
    let carrier = party(PartyKind::Trunk, "carrier", Some(1), None);
    let now = Instant::now();
    let mut call = a
        .admit_at(&[alice.clone()], &Permits::default(), now)
        .expect("the call");
    // alice asks for a transfer out through the carrier, in the same call.
    let transfer = a
        .admit_at(&[alice.clone(), carrier.clone()], &call, now)
        .expect("same call: not a second call of alice's");
    assert_eq!(a.active_of(PartyKind::User, "alice"), 1);
    assert_eq!(a.active_of(PartyKind::Trunk, "carrier"), 1);
    call.absorb(transfer);
    // Her rate is spent (2 a second): a third call now is refused.
    let r = refused(a.admit_at(&[alice], &call, now));
    assert_eq!(r.reason, "Call Rate Limit Exceeded");
    drop(call);
    assert_eq!(a.active(), 0, "the absorbed counts went back too");
}

#[test]
fn unlimited_parties_are_not_tracked() {
    let a = Arc::new(Admission::default());
    let free = party(PartyKind::User, "free", None, None);
    let p = a.admit(&[free], &Permits::default()).expect("admitted");
    assert!(p.held.is_empty());
    let mut out = String::new();
    a.render(&mut out);
    assert!(out.contains("dialtone_call_limit_calls 0"), "{out}");
    assert!(
        out.contains("dialtone_call_limit_refusals_total{party=\"trunk\",limit=\"max_cps\"} 0"),
        "{out}"
    );
    assert!(!out.contains("party=\"user:free\""), "{out}");
}

#[test]
fn metrics_name_each_limited_party() {
    let a = Arc::new(Admission::default());
    let alice = party(PartyKind::User, "alice", Some(1), None);
    let p = a
        .admit(&[alice.clone()], &Permits::default())
        .expect("first");
    let _ = a.admit(&[alice], &Permits::default());
    let mut out = String::new();
    a.render(&mut out);
    assert!(
        out.contains("dialtone_call_limit_party_calls{party=\"user:alice\"} 1"),
        "{out}"
    );
    assert!(
        out.contains("dialtone_call_limit_refusals_total{party=\"user\",limit=\"max_calls\"} 1"),
        "{out}"
    );
    drop(p);
    let mut out = String::new();
    a.render(&mut out);
    assert!(
        out.contains("dialtone_call_limit_party_calls{party=\"user:alice\"} 0"),
        "{out}"
    );
}

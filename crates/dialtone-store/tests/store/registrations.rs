//! Registrations: REGISTER semantics of `apply` (upsert, refresh, remove,
//! remove-all, RFC 3261 §10.3 ordering), expiry, purge, q round trip, and
//! concurrent REGISTERs on one AOR.

use dialtone_store::{Binding, BindingChange, Store, StoreError};

use crate::common::TestDb;

backend_tests!(
    upsert_then_refresh,
    remove_one_contact,
    remove_all_contacts,
    out_of_order_cseq_is_rejected_and_changes_nothing,
    same_call_id_higher_cseq_is_accepted,
    different_call_id_is_accepted_regardless_of_cseq,
    expired_bindings_are_invisible_and_purged,
    q_values_round_trip,
    list_all_spans_aors_in_order,
    concurrent_registers_on_one_aor_all_land,
    concurrent_cseqs_on_one_binding_keep_the_highest,
);

const NOW: i64 = 1_700_000_000;
const AOR: &str = "1001";

fn upsert(contact: &str, expires_at: i64) -> BindingChange {
    BindingChange::Upsert {
        contact: contact.to_owned(),
        expires_at,
        q: None,
        source: "udp:127.0.0.1:5062".to_owned(),
        user_agent: None,
        instance: None,
    }
}

fn remove(contact: &str) -> BindingChange {
    BindingChange::Remove {
        contact: contact.to_owned(),
    }
}

fn contacts(bindings: &[Binding]) -> Vec<&str> {
    bindings.iter().map(|b| b.contact.as_str()).collect()
}

async fn apply(
    store: &Store,
    call_id: &str,
    cseq: u32,
    changes: &[BindingChange],
    now: i64,
) -> Result<Vec<Binding>, StoreError> {
    store.registrations().apply(AOR, call_id, cseq, changes, now).await
}

async fn upsert_then_refresh(db: TestDb) {
    let full = BindingChange::Upsert {
        contact: "sip:1001@10.0.0.1:5062;transport=udp".to_owned(),
        expires_at: NOW + 3600,
        q: Some(0.5),
        source: "udp:10.0.0.1:5062".to_owned(),
        user_agent: Some("Phone/1.0".to_owned()),
        instance: Some("<urn:uuid:00000000-0000-0000-0000-000000000001>".to_owned()),
    };
    let bound = apply(&db.store, "call-a", 1, &[full], NOW).await.expect("register");
    let expected = Binding {
        aor: AOR.to_owned(),
        contact: "sip:1001@10.0.0.1:5062;transport=udp".to_owned(),
        expires_at: NOW + 3600,
        q: Some(0.5),
        call_id: "call-a".to_owned(),
        cseq: 1,
        source: "udp:10.0.0.1:5062".to_owned(),
        user_agent: Some("Phone/1.0".to_owned()),
        instance: Some("<urn:uuid:00000000-0000-0000-0000-000000000001>".to_owned()),
        updated_at: NOW,
    };
    assert_eq!(bound, vec![expected.clone()]);
    assert_eq!(db.store.registrations().list(AOR, NOW).await.expect("list"), bound);

    // Refresh: same contact, later expiry, new source; optional fields cleared.
    let later = NOW + 60;
    let refresh = BindingChange::Upsert {
        contact: expected.contact.clone(),
        expires_at: later + 1800,
        q: None,
        source: "udp:10.0.0.9:6000".to_owned(),
        user_agent: None,
        instance: None,
    };
    let bound = apply(&db.store, "call-a", 2, &[refresh], later).await.expect("refresh");
    let refreshed = Binding {
        expires_at: later + 1800,
        q: None,
        cseq: 2,
        source: "udp:10.0.0.9:6000".to_owned(),
        user_agent: None,
        instance: None,
        updated_at: later,
        ..expected
    };
    assert_eq!(bound, vec![refreshed.clone()], "refresh replaces, never duplicates");
    assert_eq!(
        db.store.registrations().list(AOR, later).await.expect("list"),
        vec![refreshed]
    );

    // A second contact adds alongside; results ordered by contact.
    let bound = apply(&db.store, "call-a", 3, &[upsert("sip:1001@10.0.0.0", later + 600)], later)
        .await
        .expect("second contact");
    assert_eq!(
        contacts(&bound),
        ["sip:1001@10.0.0.0", "sip:1001@10.0.0.1:5062;transport=udp"]
    );
}

async fn remove_one_contact(db: TestDb) {
    let changes = [
        upsert("sip:a@h", NOW + 100),
        upsert("sip:b@h", NOW + 100),
        upsert("sip:c@h", NOW + 100),
    ];
    apply(&db.store, "call-a", 1, &changes, NOW).await.expect("register");
    let bound = apply(&db.store, "call-a", 2, &[remove("sip:b@h")], NOW).await.expect("remove");
    assert_eq!(contacts(&bound), ["sip:a@h", "sip:c@h"]);
    // Removing a contact that is not bound is not an error.
    let bound = apply(&db.store, "call-a", 3, &[remove("sip:zzz@h")], NOW).await.expect("noop");
    assert_eq!(contacts(&bound), ["sip:a@h", "sip:c@h"]);
    // Upsert with an expiry already past acts as a removal.
    let bound = apply(&db.store, "call-a", 4, &[upsert("sip:a@h", NOW)], NOW).await.expect("past");
    assert_eq!(contacts(&bound), ["sip:c@h"]);
    let listed = db.store.registrations().list(AOR, NOW).await.expect("list");
    assert_eq!(contacts(&listed), ["sip:c@h"]);
}

async fn remove_all_contacts(db: TestDb) {
    apply(&db.store, "call-a", 1, &[upsert("sip:a@h", NOW + 100)], NOW).await.expect("a");
    apply(&db.store, "call-b", 7, &[upsert("sip:b@h", NOW + 100)], NOW).await.expect("b");
    db.store
        .registrations()
        .apply("other", "call-o", 1, &[upsert("sip:o@h", NOW + 100)], NOW)
        .await
        .expect("other AOR");

    let bound = apply(&db.store, "call-c", 1, &[BindingChange::RemoveAll], NOW).await.expect("*");
    assert!(bound.is_empty());
    assert!(db.store.registrations().list(AOR, NOW).await.expect("list").is_empty());
    let rest = db.store.registrations().list_all(NOW).await.expect("list_all");
    assert_eq!(contacts(&rest), ["sip:o@h"], "other AORs untouched");
}

async fn out_of_order_cseq_is_rejected_and_changes_nothing(db: TestDb) {
    let changes = [upsert("sip:a@h", NOW + 100), upsert("sip:b@h", NOW + 100)];
    let before = apply(&db.store, "call-a", 5, &changes, NOW).await.expect("register");
    assert_eq!(before.len(), 2);

    let attempts: Vec<(u32, Vec<BindingChange>)> = vec![
        (5, vec![upsert("sip:a@h", NOW + 999)]), // equal CSeq
        (4, vec![upsert("sip:a@h", NOW + 999)]), // lower CSeq
        (4, vec![remove("sip:b@h")]),
        (5, vec![BindingChange::RemoveAll]),
        // One stale contact spoils the whole request: the new contact is not added either.
        (3, vec![upsert("sip:new@h", NOW + 999), upsert("sip:b@h", NOW + 999)]),
    ];
    for (cseq, changes) in attempts {
        match apply(&db.store, "call-a", cseq, &changes, NOW + 1).await {
            Err(StoreError::OutOfOrder) => {}
            other => panic!("CSeq {cseq} {changes:?}: expected OutOfOrder, got {other:?}"),
        }
        let after = db.store.registrations().list(AOR, NOW).await.expect("list");
        assert_eq!(after, before, "state unchanged after rejected {changes:?}");
    }

    // A new contact alone is never out of order, even with a low CSeq.
    let bound = apply(&db.store, "call-a", 1, &[upsert("sip:c@h", NOW + 100)], NOW)
        .await
        .expect("new contact");
    assert_eq!(contacts(&bound), ["sip:a@h", "sip:b@h", "sip:c@h"]);
}

async fn same_call_id_higher_cseq_is_accepted(db: TestDb) {
    apply(&db.store, "call-a", 5, &[upsert("sip:a@h", NOW + 100)], NOW).await.expect("first");
    let bound = apply(&db.store, "call-a", 6, &[upsert("sip:a@h", NOW + 200)], NOW)
        .await
        .expect("higher CSeq");
    assert_eq!((bound[0].cseq, bound[0].expires_at), (6, NOW + 200));
    let bound = apply(&db.store, "call-a", 7, &[remove("sip:a@h")], NOW).await.expect("remove");
    assert!(bound.is_empty());

    apply(&db.store, "call-a", 8, &[upsert("sip:a@h", NOW + 100)], NOW).await.expect("again");
    let bound = apply(&db.store, "call-a", 9, &[BindingChange::RemoveAll], NOW).await.expect("*");
    assert!(bound.is_empty());
}

async fn different_call_id_is_accepted_regardless_of_cseq(db: TestDb) {
    apply(&db.store, "call-a", 100, &[upsert("sip:a@h", NOW + 100)], NOW).await.expect("first");
    let bound = apply(&db.store, "call-b", 1, &[upsert("sip:a@h", NOW + 300)], NOW)
        .await
        .expect("other Call-ID, lower CSeq");
    assert_eq!(bound.len(), 1);
    assert_eq!((bound[0].call_id.as_str(), bound[0].cseq), ("call-b", 1));
    assert_eq!(bound[0].expires_at, NOW + 300);

    // Back to call-a at CSeq 1 (differs from the stored call-b); then repeating
    // call-a/1 is out of order, while yet another Call-ID goes through.
    apply(&db.store, "call-a", 1, &[upsert("sip:a@h", NOW + 300)], NOW).await.expect("call-a");
    assert!(matches!(
        apply(&db.store, "call-a", 1, &[remove("sip:a@h")], NOW).await,
        Err(StoreError::OutOfOrder)
    ));
    let bound = apply(&db.store, "call-c", 1, &[remove("sip:a@h")], NOW).await.expect("remove");
    assert!(bound.is_empty());
    apply(&db.store, "call-a", 2, &[upsert("sip:a@h", NOW + 300)], NOW).await.expect("re-add");
    let bound = apply(&db.store, "call-z", 0, &[BindingChange::RemoveAll], NOW).await.expect("*");
    assert!(bound.is_empty());
}

async fn expired_bindings_are_invisible_and_purged(db: TestDb) {
    let regs = db.store.registrations();
    let changes = [upsert("sip:short@h", NOW + 10), upsert("sip:long@h", NOW + 1000)];
    apply(&db.store, "call-a", 1, &changes, NOW).await.expect("register");
    regs.apply("other", "call-o", 1, &[upsert("sip:o@h", NOW + 10)], NOW)
        .await
        .expect("other AOR");
    regs.apply("third", "call-t", 1, &[upsert("sip:t@h", NOW + 5)], NOW)
        .await
        .expect("third AOR");

    // expires_at == now counts as expired.
    let at = NOW + 10;
    assert_eq!(contacts(&regs.list(AOR, at).await.expect("list")), ["sip:long@h"]);
    assert_eq!(contacts(&regs.list_all(at).await.expect("all")), ["sip:long@h"]);
    assert!(regs.list("other", at).await.expect("list").is_empty());
    // One second earlier they were all there.
    assert_eq!(regs.list_all(at - 1).await.expect("all").len(), 3);
    assert_eq!(regs.list_all(NOW + 4).await.expect("all").len(), 4);

    // apply never returns expired bindings, and deletes this AOR's before the
    // ordering check: the expired binding's higher CSeq does not block call-a.
    let bound = apply(&db.store, "call-a", 1, &[upsert("sip:late@h", at + 100)], at)
        .await
        .expect("apply after expiry");
    assert_eq!(contacts(&bound), ["sip:late@h", "sip:long@h"]);
    let bound = apply(&db.store, "call-a", 1, &[upsert("sip:short@h", at + 100)], at)
        .await
        .expect("expired binding does not make CSeq 1 out of order");
    assert_eq!(contacts(&bound), ["sip:late@h", "sip:long@h", "sip:short@h"]);

    // AOR "1001"'s expired row went with apply; "other" and "third" remain to purge.
    assert_eq!(regs.purge_expired(at).await.expect("purge"), 2);
    assert_eq!(regs.purge_expired(at).await.expect("purge again"), 0);
    assert_eq!(regs.list_all(0).await.expect("all, even past").len(), 3, "purged rows are gone");
    assert_eq!(regs.purge_expired(at + 100).await.expect("purge more"), 2);
    assert_eq!(contacts(&regs.list_all(0).await.expect("all")), ["sip:long@h"]);
}

async fn q_values_round_trip(db: TestDb) {
    let qs = [None, Some(0.0), Some(0.001), Some(0.1), Some(0.123), Some(0.5), Some(0.7), Some(0.999), Some(1.0)];
    let changes: Vec<BindingChange> = qs
        .iter()
        .enumerate()
        .map(|(i, q)| BindingChange::Upsert {
            contact: format!("sip:{i}@h"),
            expires_at: NOW + 100,
            q: *q,
            source: "udp:127.0.0.1:5062".to_owned(),
            user_agent: None,
            instance: None,
        })
        .collect();
    let bound = apply(&db.store, "call-a", 1, &changes, NOW).await.expect("register");
    let got: Vec<Option<f32>> = bound.iter().map(|b| b.q).collect();
    assert_eq!(got, qs, "from apply");
    let listed = db.store.registrations().list(AOR, NOW).await.expect("list");
    let got: Vec<Option<f32>> = listed.iter().map(|b| b.q).collect();
    assert_eq!(got, qs, "from list");
    let reopened = db.reopen().await;
    let listed = reopened.registrations().list(AOR, NOW).await.expect("list after reopen");
    assert_eq!(listed.iter().map(|b| b.q).collect::<Vec<_>>(), qs, "after reopen");
    reopened.close().await;
}

async fn list_all_spans_aors_in_order(db: TestDb) {
    let regs = db.store.registrations();
    for (aor, contact) in [("b", "sip:2@h"), ("a", "sip:9@h"), ("b", "sip:1@h"), ("a", "sip:3@h")] {
        regs.apply(aor, &format!("{aor}-{contact}"), 1, &[upsert(contact, NOW + 100)], NOW)
            .await
            .expect("register");
    }
    let all = regs.list_all(NOW).await.expect("list_all");
    let keys: Vec<(&str, &str)> = all.iter().map(|b| (b.aor.as_str(), b.contact.as_str())).collect();
    assert_eq!(keys, [("a", "sip:3@h"), ("a", "sip:9@h"), ("b", "sip:1@h"), ("b", "sip:2@h")]);
    // Byte order, the same on both backends: uppercase before lowercase.
    let changes = [upsert("sip:a@h", NOW + 100), upsert("sip:Z@h", NOW + 100)];
    regs.apply("b", "x", 1, &changes, NOW).await.expect("register a and Z");
    assert_eq!(
        contacts(&regs.list("b", NOW).await.expect("list")),
        ["sip:1@h", "sip:2@h", "sip:Z@h", "sip:a@h"]
    );
}

/// 20 phones register different contacts on one AOR at the same moment.
async fn concurrent_registers_on_one_aor_all_land(db: TestDb) {
    let mut tasks = Vec::new();
    for i in 0..20u32 {
        let store = db.store.clone();
        tasks.push(tokio::spawn(async move {
            let contact = format!("sip:1001@10.0.0.{i}:5060");
            apply(&store, &format!("call-{i}"), 1, &[upsert(&contact, NOW + 100)], NOW).await
        }));
    }
    for task in tasks {
        task.await.expect("join").expect("every concurrent REGISTER succeeds");
    }
    let bound = db.store.registrations().list(AOR, NOW).await.expect("list");
    assert_eq!(bound.len(), 20);
}

/// 20 REGISTERs of one dialog (same Call-ID, CSeq 1..=20) race for one contact.
/// Whatever the interleaving, each is applied or rejected as a whole and the
/// stored CSeq ends at 20: CSeq 20 can never be out of order, and no lower
/// CSeq may overwrite it afterwards.
async fn concurrent_cseqs_on_one_binding_keep_the_highest(db: TestDb) {
    let mut tasks = Vec::new();
    for cseq in 1..=20u32 {
        let store = db.store.clone();
        tasks.push(tokio::spawn(async move {
            let change = upsert("sip:1001@10.0.0.1", NOW + i64::from(cseq));
            (cseq, apply(&store, "call-a", cseq, &[change], NOW).await)
        }));
    }
    let mut accepted = 0;
    for task in tasks {
        match task.await.expect("join") {
            (_, Ok(_)) => accepted += 1,
            (cseq, Err(StoreError::OutOfOrder)) => assert_ne!(cseq, 20, "CSeq 20 rejected"),
            (cseq, Err(e)) => panic!("CSeq {cseq}: unexpected error {e}"),
        }
    }
    assert!(accepted >= 1);
    let bound = db.store.registrations().list(AOR, NOW).await.expect("list");
    assert_eq!(bound.len(), 1);
    assert_eq!((bound[0].cseq, bound[0].expires_at), (20, NOW + 20));
}

//! Registrations: REGISTER semantics of `apply` (upsert, refresh, remove,
//! remove-all, RFC 3261 §10.3 ordering). The helpers here are shared with
//! `registration_reads` and `registration_races`.

use dialtone_store::{Binding, BindingChange, Store, StoreError};

use crate::common::TestDb;

backend_tests!(
    upsert_then_refresh,
    remove_one_contact,
    remove_all_contacts,
    out_of_order_cseq_is_rejected_and_changes_nothing,
    same_call_id_higher_cseq_is_accepted,
    different_call_id_is_accepted_regardless_of_cseq,
);

pub const NOW: i64 = 1_700_000_000;
pub const AOR: &str = "1001";

pub fn upsert(contact: &str, expires_at: i64) -> BindingChange {
    BindingChange::Upsert {
        contact: contact.to_owned(),
        expires_at,
        q: None,
        source: "udp:127.0.0.1:5062".to_owned(),
        user_agent: None,
        instance: None,
        path: None,
    }
}

pub fn remove(contact: &str) -> BindingChange {
    BindingChange::Remove {
        contact: contact.to_owned(),
    }
}

pub fn contacts(bindings: &[Binding]) -> Vec<&str> {
    bindings.iter().map(|b| b.contact.as_str()).collect()
}

pub async fn apply(
    store: &Store,
    call_id: &str,
    cseq: u32,
    changes: &[BindingChange],
    now: i64,
) -> Result<Vec<Binding>, StoreError> {
    store
        .registrations()
        .apply(AOR, call_id, cseq, changes, now)
        .await
}

async fn upsert_then_refresh(db: TestDb) {
    let full = BindingChange::Upsert {
        contact: "sip:1001@10.0.0.1:5062;transport=udp".to_owned(),
        expires_at: NOW + 3600,
        q: Some(0.5),
        source: "udp:10.0.0.1:5062".to_owned(),
        user_agent: Some("Phone/1.0".to_owned()),
        instance: Some("<urn:uuid:00000000-0000-0000-0000-000000000001>".to_owned()),
        path: Some("<sip:edge.example.net;lr;received=sip:10.0.0.1:5062>".to_owned()),
    };
    let bound = apply(&db.store, "call-a", 1, &[full], NOW)
        .await
        .expect("register");
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
        path: Some("<sip:edge.example.net;lr;received=sip:10.0.0.1:5062>".to_owned()),
        updated_at: NOW,
    };
    assert_eq!(bound, vec![expected.clone()]);
    assert_eq!(
        db.store.registrations().list(AOR, NOW).await.expect("list"),
        bound
    );

    // Refresh: same contact, later expiry, new source; optional fields cleared.
    let later = NOW + 60;
    let refresh = BindingChange::Upsert {
        contact: expected.contact.clone(),
        expires_at: later + 1800,
        q: None,
        source: "udp:10.0.0.9:6000".to_owned(),
        user_agent: None,
        instance: None,
        path: None,
    };
    let bound = apply(&db.store, "call-a", 2, &[refresh], later)
        .await
        .expect("refresh");
    let refreshed = Binding {
        expires_at: later + 1800,
        q: None,
        cseq: 2,
        source: "udp:10.0.0.9:6000".to_owned(),
        user_agent: None,
        instance: None,
        path: None,
        updated_at: later,
        ..expected
    };
    assert_eq!(
        bound,
        vec![refreshed.clone()],
        "refresh replaces, never duplicates"
    );
    assert_eq!(
        db.store
            .registrations()
            .list(AOR, later)
            .await
            .expect("list"),
        vec![refreshed]
    );

    // A second contact adds alongside; results ordered by contact.
    let bound = apply(
        &db.store,
        "call-a",
        3,
        &[upsert("sip:1001@10.0.0.0", later + 600)],
        later,
    )
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
    apply(&db.store, "call-a", 1, &changes, NOW)
        .await
        .expect("register");
    let bound = apply(&db.store, "call-a", 2, &[remove("sip:b@h")], NOW)
        .await
        .expect("remove");
    assert_eq!(contacts(&bound), ["sip:a@h", "sip:c@h"]);
    // Removing a contact that is not bound is not an error.
    let bound = apply(&db.store, "call-a", 3, &[remove("sip:zzz@h")], NOW)
        .await
        .expect("noop");
    assert_eq!(contacts(&bound), ["sip:a@h", "sip:c@h"]);
    // Upsert with an expiry already past acts as a removal.
    let bound = apply(&db.store, "call-a", 4, &[upsert("sip:a@h", NOW)], NOW)
        .await
        .expect("past");
    assert_eq!(contacts(&bound), ["sip:c@h"]);
    let listed = db.store.registrations().list(AOR, NOW).await.expect("list");
    assert_eq!(contacts(&listed), ["sip:c@h"]);
}

async fn remove_all_contacts(db: TestDb) {
    apply(&db.store, "call-a", 1, &[upsert("sip:a@h", NOW + 100)], NOW)
        .await
        .expect("a");
    apply(&db.store, "call-b", 7, &[upsert("sip:b@h", NOW + 100)], NOW)
        .await
        .expect("b");
    db.store
        .registrations()
        .apply("other", "call-o", 1, &[upsert("sip:o@h", NOW + 100)], NOW)
        .await
        .expect("other AOR");

    let bound = apply(&db.store, "call-c", 1, &[BindingChange::RemoveAll], NOW)
        .await
        .expect("*");
    assert!(bound.is_empty());
    assert!(db
        .store
        .registrations()
        .list(AOR, NOW)
        .await
        .expect("list")
        .is_empty());
    let rest = db
        .store
        .registrations()
        .list_all(NOW)
        .await
        .expect("list_all");
    assert_eq!(contacts(&rest), ["sip:o@h"], "other AORs untouched");
}

async fn out_of_order_cseq_is_rejected_and_changes_nothing(db: TestDb) {
    let changes = [upsert("sip:a@h", NOW + 100), upsert("sip:b@h", NOW + 100)];
    let before = apply(&db.store, "call-a", 5, &changes, NOW)
        .await
        .expect("register");
    assert_eq!(before.len(), 2);

    let attempts: Vec<(u32, Vec<BindingChange>)> = vec![
        (5, vec![upsert("sip:a@h", NOW + 999)]), // equal CSeq
        (4, vec![upsert("sip:a@h", NOW + 999)]), // lower CSeq
        (4, vec![remove("sip:b@h")]),
        (5, vec![BindingChange::RemoveAll]),
        // One stale contact spoils the whole request: the new contact is not added either.
        (
            3,
            vec![upsert("sip:new@h", NOW + 999), upsert("sip:b@h", NOW + 999)],
        ),
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
    apply(&db.store, "call-a", 5, &[upsert("sip:a@h", NOW + 100)], NOW)
        .await
        .expect("first");
    let bound = apply(&db.store, "call-a", 6, &[upsert("sip:a@h", NOW + 200)], NOW)
        .await
        .expect("higher CSeq");
    assert_eq!((bound[0].cseq, bound[0].expires_at), (6, NOW + 200));
    let bound = apply(&db.store, "call-a", 7, &[remove("sip:a@h")], NOW)
        .await
        .expect("remove");
    assert!(bound.is_empty());

    apply(&db.store, "call-a", 8, &[upsert("sip:a@h", NOW + 100)], NOW)
        .await
        .expect("again");
    let bound = apply(&db.store, "call-a", 9, &[BindingChange::RemoveAll], NOW)
        .await
        .expect("*");
    assert!(bound.is_empty());
}

async fn different_call_id_is_accepted_regardless_of_cseq(db: TestDb) {
    apply(
        &db.store,
        "call-a",
        100,
        &[upsert("sip:a@h", NOW + 100)],
        NOW,
    )
    .await
    .expect("first");
    let bound = apply(&db.store, "call-b", 1, &[upsert("sip:a@h", NOW + 300)], NOW)
        .await
        .expect("other Call-ID, lower CSeq");
    assert_eq!(bound.len(), 1);
    assert_eq!((bound[0].call_id.as_str(), bound[0].cseq), ("call-b", 1));
    assert_eq!(bound[0].expires_at, NOW + 300);

    // Back to call-a at CSeq 1 (differs from the stored call-b); then repeating
    // call-a/1 is out of order, while yet another Call-ID goes through.
    apply(&db.store, "call-a", 1, &[upsert("sip:a@h", NOW + 300)], NOW)
        .await
        .expect("call-a");
    assert!(matches!(
        apply(&db.store, "call-a", 1, &[remove("sip:a@h")], NOW).await,
        Err(StoreError::OutOfOrder)
    ));
    let bound = apply(&db.store, "call-c", 1, &[remove("sip:a@h")], NOW)
        .await
        .expect("remove");
    assert!(bound.is_empty());
    apply(&db.store, "call-a", 2, &[upsert("sip:a@h", NOW + 300)], NOW)
        .await
        .expect("re-add");
    let bound = apply(&db.store, "call-z", 0, &[BindingChange::RemoveAll], NOW)
        .await
        .expect("*");
    assert!(bound.is_empty());
}

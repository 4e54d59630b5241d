//! Registrations as read back: expiry hides bindings from every read and
//! purge removes them, q survives storage, list_all spans AORs in byte order.

use dialtone_store::BindingChange;

use crate::common::TestDb;
use crate::registrations::{apply, contacts, upsert, AOR, NOW};

backend_tests!(
    expired_bindings_are_invisible_and_purged,
    q_values_round_trip,
    list_all_spans_aors_in_order,
);

async fn expired_bindings_are_invisible_and_purged(db: TestDb) {
    let regs = db.store.registrations();
    let changes = [
        upsert("sip:short@h", NOW + 10),
        upsert("sip:long@h", NOW + 1000),
    ];
    apply(&db.store, "call-a", 1, &changes, NOW)
        .await
        .expect("register");
    regs.apply("other", "call-o", 1, &[upsert("sip:o@h", NOW + 10)], NOW)
        .await
        .expect("other AOR");
    regs.apply("third", "call-t", 1, &[upsert("sip:t@h", NOW + 5)], NOW)
        .await
        .expect("third AOR");

    // expires_at == now counts as expired.
    let at = NOW + 10;
    assert_eq!(
        contacts(&regs.list(AOR, at).await.expect("list")),
        ["sip:long@h"]
    );
    assert_eq!(
        contacts(&regs.list_all(at).await.expect("all")),
        ["sip:long@h"]
    );
    assert!(regs.list("other", at).await.expect("list").is_empty());
    // One second earlier they were all there.
    assert_eq!(regs.list_all(at - 1).await.expect("all").len(), 3);
    assert_eq!(regs.list_all(NOW + 4).await.expect("all").len(), 4);

    // apply never returns expired bindings, and deletes this AOR's before the
    // ordering check: the expired binding's higher CSeq does not block call-a.
    let bound = apply(
        &db.store,
        "call-a",
        1,
        &[upsert("sip:late@h", at + 100)],
        at,
    )
    .await
    .expect("apply after expiry");
    assert_eq!(contacts(&bound), ["sip:late@h", "sip:long@h"]);
    let bound = apply(
        &db.store,
        "call-a",
        1,
        &[upsert("sip:short@h", at + 100)],
        at,
    )
    .await
    .expect("expired binding does not make CSeq 1 out of order");
    assert_eq!(
        contacts(&bound),
        ["sip:late@h", "sip:long@h", "sip:short@h"]
    );

    // AOR "1001"'s expired row went with apply; "other" and "third" remain to purge.
    assert_eq!(regs.purge_expired(at).await.expect("purge"), 2);
    assert_eq!(regs.purge_expired(at).await.expect("purge again"), 0);
    assert_eq!(
        regs.list_all(0).await.expect("all, even past").len(),
        3,
        "purged rows are gone"
    );
    assert_eq!(regs.purge_expired(at + 100).await.expect("purge more"), 2);
    assert_eq!(
        contacts(&regs.list_all(0).await.expect("all")),
        ["sip:long@h"]
    );
}

async fn q_values_round_trip(db: TestDb) {
    let qs = [
        None,
        Some(0.0),
        Some(0.001),
        Some(0.1),
        Some(0.123),
        Some(0.5),
        Some(0.7),
        Some(0.999),
        Some(1.0),
    ];
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
            path: None,
        })
        .collect();
    let bound = apply(&db.store, "call-a", 1, &changes, NOW)
        .await
        .expect("register");
    let got: Vec<Option<f32>> = bound.iter().map(|b| b.q).collect();
    assert_eq!(got, qs, "from apply");
    let listed = db.store.registrations().list(AOR, NOW).await.expect("list");
    let got: Vec<Option<f32>> = listed.iter().map(|b| b.q).collect();
    assert_eq!(got, qs, "from list");
    let reopened = db.reopen().await;
    let listed = reopened
        .registrations()
        .list(AOR, NOW)
        .await
        .expect("list after reopen");
    assert_eq!(
        listed.iter().map(|b| b.q).collect::<Vec<_>>(),
        qs,
        "after reopen"
    );
    reopened.close().await;
}

async fn list_all_spans_aors_in_order(db: TestDb) {
    let regs = db.store.registrations();
    for (aor, contact) in [
        ("b", "sip:2@h"),
        ("a", "sip:9@h"),
        ("b", "sip:1@h"),
        ("a", "sip:3@h"),
    ] {
        regs.apply(
            aor,
            &format!("{aor}-{contact}"),
            1,
            &[upsert(contact, NOW + 100)],
            NOW,
        )
        .await
        .expect("register");
    }
    let all = regs.list_all(NOW).await.expect("list_all");
    let keys: Vec<(&str, &str)> = all
        .iter()
        .map(|b| (b.aor.as_str(), b.contact.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            ("a", "sip:3@h"),
            ("a", "sip:9@h"),
            ("b", "sip:1@h"),
            ("b", "sip:2@h")
        ]
    );
    // Byte order, the same on both backends: uppercase before lowercase.
    let changes = [upsert("sip:a@h", NOW + 100), upsert("sip:Z@h", NOW + 100)];
    regs.apply("b", "x", 1, &changes, NOW)
        .await
        .expect("register a and Z");
    assert_eq!(
        contacts(&regs.list("b", NOW).await.expect("list")),
        ["sip:1@h", "sip:2@h", "sip:Z@h", "sip:a@h"]
    );
}

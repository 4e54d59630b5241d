//! Numbers: create, conflicts, lookup as dialled (with or without '+'),
//! ordered list, remove, the record flag; and `TargetKind`'s text form.

use dialtone_store::{StoreError, TargetKind};

use crate::common::TestDb;

backend_tests!(
    create_list_and_remove,
    create_conflicts_on_existing_number,
    lookup_with_and_without_plus,
    lookup_prefers_the_exact_number,
    record_flag_round_trips_and_can_be_switched,
);

async fn create_list_and_remove(db: TestDb) {
    let numbers = db.store.numbers();
    assert!(numbers.list().await.expect("list").is_empty());

    let mut made = Vec::new();
    for (number, kind, target) in [
        ("5550100", TargetKind::Queue, "support"),
        ("+15550100", TargetKind::User, "1001"),
        ("+4930123", TargetKind::Trunk, "carrier"),
        ("15550200", TargetKind::Persona, "receptionist"),
    ] {
        let n = numbers
            .create(number, kind, target, false)
            .await
            .expect("create");
        assert_eq!(
            (n.number.as_str(), n.target_kind, n.target.as_str()),
            (number, kind, target)
        );
        assert!(n.created_at > 1_600_000_000, "unix seconds");
        made.push(n);
    }
    let ids: std::collections::HashSet<_> = made.iter().map(|n| n.id.clone()).collect();
    assert_eq!(ids.len(), 4);

    // Bytewise order: '+' sorts before the digits. Every kind round-trips.
    let mut expected = made.clone();
    expected.sort_by(|a, b| a.number.cmp(&b.number));
    assert_eq!(numbers.list().await.expect("list"), expected);
    assert_eq!(
        expected
            .iter()
            .map(|n| n.number.as_str())
            .collect::<Vec<_>>(),
        ["+15550100", "+4930123", "15550200", "5550100"]
    );

    assert!(numbers.remove("+15550100").await.expect("remove"));
    assert!(!numbers.remove("+15550100").await.expect("remove again"));
    assert!(
        !numbers.remove("15550200 ").await.expect("remove near miss"),
        "remove matches exactly"
    );
    assert!(!numbers.remove("+15550200").await.expect("remove with plus"));
    assert!(numbers.lookup("+15550100").await.expect("lookup").is_none());
    assert_eq!(numbers.list().await.expect("list").len(), 3);
    // The number is free again.
    numbers
        .create("+15550100", TargetKind::Queue, "sales", false)
        .await
        .expect("re-create");
}

async fn create_conflicts_on_existing_number(db: TestDb) {
    let numbers = db.store.numbers();
    let first = numbers
        .create("+15550100", TargetKind::User, "1001", false)
        .await
        .expect("create");
    match numbers
        .create("+15550100", TargetKind::Queue, "support", false)
        .await
    {
        Err(StoreError::Conflict { what }) => assert!(what.contains("+15550100"), "{what}"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(numbers.list().await.expect("list"), vec![first.clone()]);
    // The same digits without '+' are a different stored number.
    let bare = numbers
        .create("15550100", TargetKind::User, "1002", false)
        .await
        .expect("create without plus");
    assert_eq!(numbers.list().await.expect("list"), vec![first, bare]);
}

async fn lookup_with_and_without_plus(db: TestDb) {
    let numbers = db.store.numbers();
    let plus = numbers
        .create("+15550100", TargetKind::Trunk, "carrier", false)
        .await
        .expect("create");
    let bare = numbers
        .create("5550199", TargetKind::User, "1001", false)
        .await
        .expect("create");

    let lookup = |dialled: &'static str| {
        let store = db.store.clone();
        async move { store.numbers().lookup(dialled).await.expect("lookup") }
    };
    assert_eq!(lookup("+15550100").await.as_ref(), Some(&plus), "exact");
    assert_eq!(lookup("15550100").await.as_ref(), Some(&plus), "plus added");
    assert_eq!(lookup("5550199").await.as_ref(), Some(&bare), "exact");
    assert_eq!(
        lookup("+5550199").await.as_ref(),
        Some(&bare),
        "plus dropped"
    );
    for miss in ["++15550100", "015550100", "1555010", "", "+", "++5550199"] {
        assert_eq!(lookup(miss).await, None, "{miss:?}");
    }
    // Odd stored numbers are still found exactly.
    let empty = numbers
        .create("", TargetKind::Queue, "void", false)
        .await
        .expect("create empty");
    let double = numbers
        .create("++1", TargetKind::Queue, "odd", false)
        .await
        .expect("create ++1");
    assert_eq!(lookup("").await, Some(empty));
    assert_eq!(lookup("+").await, None);
    assert_eq!(lookup("++1").await, Some(double));
    assert_eq!(lookup("+1").await, None);
}

async fn lookup_prefers_the_exact_number(db: TestDb) {
    let numbers = db.store.numbers();
    // Created in both orders so neither insertion nor id order can decide.
    let bare_a = numbers
        .create("4420", TargetKind::Queue, "a", false)
        .await
        .expect("create");
    let plus_a = numbers
        .create("+4420", TargetKind::Persona, "a", false)
        .await
        .expect("create");
    let plus_b = numbers
        .create("+4421", TargetKind::Persona, "b", false)
        .await
        .expect("create");
    let bare_b = numbers
        .create("4421", TargetKind::Queue, "b", false)
        .await
        .expect("create");
    for _ in 0..3 {
        assert_eq!(
            numbers.lookup("4420").await.expect("lookup"),
            Some(bare_a.clone())
        );
        assert_eq!(
            numbers.lookup("+4420").await.expect("lookup"),
            Some(plus_a.clone())
        );
        assert_eq!(
            numbers.lookup("4421").await.expect("lookup"),
            Some(bare_b.clone())
        );
        assert_eq!(
            numbers.lookup("+4421").await.expect("lookup"),
            Some(plus_b.clone())
        );
    }
    // Once the exact one is gone, the other form is found.
    assert!(numbers.remove("4420").await.expect("remove"));
    assert_eq!(numbers.lookup("4420").await.expect("lookup"), Some(plus_a));
}

async fn record_flag_round_trips_and_can_be_switched(db: TestDb) {
    let numbers = db.store.numbers();
    let recorded = numbers
        .create("+15550100", TargetKind::User, "1001", true)
        .await
        .expect("create recorded");
    assert!(recorded.record);
    let plain = numbers
        .create("15550200", TargetKind::Queue, "support", false)
        .await
        .expect("create plain");
    assert!(!plain.record);
    assert_eq!(
        numbers.list().await.expect("list"),
        vec![recorded.clone(), plain.clone()]
    );
    assert_eq!(
        numbers.lookup("15550100").await.expect("lookup"),
        Some(recorded.clone())
    );

    // Switched off and on again; the rest of the row is untouched.
    assert!(numbers.set_record("+15550100", false).await.expect("off"));
    assert!(numbers.set_record("15550200", true).await.expect("on"));
    let off = numbers
        .lookup("+15550100")
        .await
        .expect("lookup")
        .expect("kept");
    assert_eq!(
        off,
        dialtone_store::Number {
            record: false,
            ..recorded
        }
    );
    let on = numbers
        .lookup("15550200")
        .await
        .expect("lookup")
        .expect("kept");
    assert_eq!(
        on,
        dialtone_store::Number {
            record: true,
            ..plain.clone()
        }
    );
    // Setting the value it already has still finds the number.
    assert!(numbers
        .set_record("15550200", true)
        .await
        .expect("on again"));
    assert!(
        numbers
            .lookup("15550200")
            .await
            .expect("lookup")
            .expect("kept")
            .record
    );

    // Matched exactly as stored, like remove.
    assert!(!numbers
        .set_record("+15550200", false)
        .await
        .expect("near miss"));
    assert!(!numbers.set_record("nope", true).await.expect("unknown"));
    assert_eq!(numbers.list().await.expect("list"), vec![off, on]);
}

#[test]
fn target_kind_text_round_trips() {
    for (kind, text) in [
        (TargetKind::User, "user"),
        (TargetKind::Trunk, "trunk"),
        (TargetKind::Persona, "persona"),
        (TargetKind::Queue, "queue"),
    ] {
        assert_eq!(kind.to_string(), text);
        assert_eq!(kind.as_str(), text);
        assert_eq!(text.parse::<TargetKind>(), Ok(kind));
    }
    for bad in ["", "User", "users", "ext", " queue"] {
        let err = bad.parse::<TargetKind>().expect_err(bad);
        assert!(err.to_string().contains("target kind"), "{err}");
    }
}

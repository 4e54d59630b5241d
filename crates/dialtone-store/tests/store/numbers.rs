//! Numbers: create, conflicts, lookup as dialled (with or without '+'),
//! ordered list, remove; and `TargetKind`'s text form.

use dialtone_store::{StoreError, TargetKind};

use crate::common::TestDb;

backend_tests!(
    create_list_and_remove,
    create_conflicts_on_existing_number,
    lookup_with_and_without_plus,
    lookup_prefers_the_exact_number,
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
        let n = numbers.create(number, kind, target).await.expect("create");
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
        .create("+15550100", TargetKind::Queue, "sales")
        .await
        .expect("re-create");
}

async fn create_conflicts_on_existing_number(db: TestDb) {
    let numbers = db.store.numbers();
    let first = numbers
        .create("+15550100", TargetKind::User, "1001")
        .await
        .expect("create");
    match numbers
        .create("+15550100", TargetKind::Queue, "support")
        .await
    {
        Err(StoreError::Conflict { what }) => assert!(what.contains("+15550100"), "{what}"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(numbers.list().await.expect("list"), vec![first.clone()]);
    // The same digits without '+' are a different stored number.
    let bare = numbers
        .create("15550100", TargetKind::User, "1002")
        .await
        .expect("create without plus");
    assert_eq!(numbers.list().await.expect("list"), vec![first, bare]);
}

async fn lookup_with_and_without_plus(db: TestDb) {
    let numbers = db.store.numbers();
    let plus = numbers
        .create("+15550100", TargetKind::Trunk, "carrier")
        .await
        .expect("create");
    let bare = numbers
        .create("5550199", TargetKind::User, "1001")
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
        .create("", TargetKind::Queue, "void")
        .await
        .expect("create empty");
    let double = numbers
        .create("++1", TargetKind::Queue, "odd")
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
        .create("4420", TargetKind::Queue, "a")
        .await
        .expect("create");
    let plus_a = numbers
        .create("+4420", TargetKind::Persona, "a")
        .await
        .expect("create");
    let plus_b = numbers
        .create("+4421", TargetKind::Persona, "b")
        .await
        .expect("create");
    let bare_b = numbers
        .create("4421", TargetKind::Queue, "b")
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

//! Routes: create (explicit or "after the last" priority), the order they
//! are tried in (priority, then creation), unknown trunk, remove, the record
//! flag.

use std::collections::HashSet;

use dialtone_store::{Route, StoreError};

use crate::common::TestDb;
use crate::trunks::new_trunk;

backend_tests!(
    create_and_list_in_try_order,
    equal_priorities_keep_creation_order,
    create_with_unknown_trunk_is_not_found,
    remove_by_id,
    concurrent_creates_after_the_last_get_distinct_priorities,
    record_flag_round_trips_and_can_be_switched,
);

fn patterns(routes: &[Route]) -> Vec<&str> {
    routes.iter().map(|r| r.pattern.as_str()).collect()
}

async fn create_and_list_in_try_order(db: TestDb) {
    new_trunk(&db.store, "a").await;
    new_trunk(&db.store, "b").await;
    let routes = db.store.routes();
    assert!(routes.list().await.expect("list").is_empty());

    let first = routes
        .create("^00", "a", 2, "+", None, false)
        .await
        .expect("first");
    assert_eq!(first.priority, 10, "first route without priority");
    assert_eq!(first.pattern, "^00");
    assert_eq!(first.trunk, "a");
    assert_eq!(first.strip, 2);
    assert_eq!(first.prepend, "+");
    assert!(first.created_at > 1_600_000_000, "unix seconds");

    let r20 = routes
        .create("^1", "b", 0, "", Some(20), false)
        .await
        .expect("r20");
    let after = routes
        .create("^2", "a", u32::MAX, "0049", None, false)
        .await
        .expect("after");
    assert_eq!(after.priority, 30, "after the highest so far");
    assert_eq!(after.strip, u32::MAX);
    let low = routes
        .create("^3", "b", 1, "", Some(-5), false)
        .await
        .expect("low");
    let tie = routes
        .create("^4", "a", 0, "", Some(20), false)
        .await
        .expect("tie");
    let last = routes
        .create(".*", "b", 0, "", None, false)
        .await
        .expect("last");
    assert_eq!(last.priority, 40);

    let listed = routes.list().await.expect("list");
    assert_eq!(listed, vec![low, first, r20, tie, after, last]);
    assert_eq!(patterns(&listed), ["^3", "^00", "^1", "^4", "^2", ".*"]);
}

async fn equal_priorities_keep_creation_order(db: TestDb) {
    new_trunk(&db.store, "a").await;
    let routes = db.store.routes();
    // Created within the same second, with random ids: only the creation
    // sequence can keep them in order.
    let mut made = Vec::new();
    for i in 0..12 {
        let pattern = format!("^{i}");
        made.push(
            routes
                .create(&pattern, "a", 0, "", Some(100), false)
                .await
                .expect("create"),
        );
    }
    let early = routes
        .create("early", "a", 0, "", Some(99), false)
        .await
        .expect("early");
    made.insert(0, early);
    assert_eq!(routes.list().await.expect("list"), made);
    // Removing one keeps the others' order.
    assert!(routes.remove(&made[5].id).await.expect("remove"));
    made.remove(5);
    assert_eq!(routes.list().await.expect("list"), made);
    // A later route with the same priority still goes after them.
    let later = routes
        .create("later", "a", 0, "", Some(100), false)
        .await
        .expect("later");
    made.push(later);
    assert_eq!(routes.list().await.expect("list"), made);
}

async fn create_with_unknown_trunk_is_not_found(db: TestDb) {
    new_trunk(&db.store, "a").await;
    match db
        .store
        .routes()
        .create("^1", "nope", 0, "", Some(1), false)
        .await
    {
        Err(StoreError::NotFound { what }) => assert!(what.contains("nope"), "{what}"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    match db
        .store
        .routes()
        .create("^1", "A", 0, "", None, false)
        .await
    {
        Err(StoreError::NotFound { .. }) => {}
        other => panic!("trunk names are exact; expected NotFound, got {other:?}"),
    }
    assert!(db.store.routes().list().await.expect("list").is_empty());
}

async fn remove_by_id(db: TestDb) {
    new_trunk(&db.store, "a").await;
    let routes = db.store.routes();
    let one = routes
        .create("^1", "a", 0, "", None, false)
        .await
        .expect("one");
    let two = routes
        .create("^2", "a", 0, "", None, false)
        .await
        .expect("two");
    assert!(!routes.remove("no-such-id").await.expect("remove unknown"));
    assert!(routes.remove(&one.id).await.expect("remove"));
    assert!(!routes.remove(&one.id).await.expect("remove again"));
    assert_eq!(routes.list().await.expect("list"), vec![two.clone()]);
    // "After the last" follows the routes that remain.
    let three = routes
        .create("^3", "a", 0, "", None, false)
        .await
        .expect("three");
    assert_eq!(three.priority, two.priority + 10);
}

async fn concurrent_creates_after_the_last_get_distinct_priorities(db: TestDb) {
    new_trunk(&db.store, "a").await;
    let mut tasks = Vec::new();
    for i in 0..12 {
        let store = db.store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .routes()
                .create(&format!("^{i}"), "a", 0, "", None, false)
                .await
        }));
    }
    let mut priorities = HashSet::new();
    for task in tasks {
        let route = task.await.expect("join").expect("create");
        assert!(priorities.insert(route.priority), "duplicate {route:?}");
    }
    let listed = db.store.routes().list().await.expect("list");
    assert_eq!(
        listed.iter().map(|r| r.priority).collect::<Vec<_>>(),
        (1..=12).map(|i| i * 10).collect::<Vec<_>>()
    );
}

async fn record_flag_round_trips_and_can_be_switched(db: TestDb) {
    new_trunk(&db.store, "a").await;
    let routes = db.store.routes();
    let recorded = routes
        .create("^1", "a", 0, "", None, true)
        .await
        .expect("create recorded");
    assert!(recorded.record);
    let plain = routes
        .create("^2", "a", 1, "+", None, false)
        .await
        .expect("create plain");
    assert!(!plain.record);
    assert_eq!(
        routes.list().await.expect("list"),
        vec![recorded.clone(), plain.clone()]
    );

    // Switched off and on again; the rest of the route (and the order) is untouched.
    assert!(routes.set_record(&recorded.id, false).await.expect("off"));
    assert!(routes.set_record(&plain.id, true).await.expect("on"));
    assert!(routes.set_record(&plain.id, true).await.expect("on again"));
    assert_eq!(
        routes.list().await.expect("list"),
        vec![
            Route {
                record: false,
                ..recorded.clone()
            },
            Route {
                record: true,
                ..plain.clone()
            },
        ]
    );
    assert!(!routes
        .set_record("no-such-id", true)
        .await
        .expect("unknown"));
    assert!(routes.remove(&recorded.id).await.expect("remove"));
    assert!(!routes
        .set_record(&recorded.id, true)
        .await
        .expect("removed"));
}

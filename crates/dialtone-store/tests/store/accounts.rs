//! Accounts: create, conflict on a taken name, ensure, list.

use dialtone_store::StoreError;

use crate::common::TestDb;

backend_tests!(
    create_get_and_list,
    create_conflicts_on_taken_name,
    ensure_creates_once
);

async fn create_get_and_list(db: TestDb) {
    let accounts = db.store.accounts();
    assert!(accounts.get_by_name("acme").await.expect("get").is_none());
    assert!(accounts.list().await.expect("list").is_empty());

    let zeta = accounts.create("zeta").await.expect("create zeta");
    let acme = accounts.create("acme").await.expect("create acme");
    assert_eq!(acme.name, "acme");
    assert_ne!(acme.id, zeta.id);
    assert!(
        acme.created_at > 1_600_000_000,
        "created_at is unix seconds"
    );

    let got = accounts
        .get_by_name("acme")
        .await
        .expect("get")
        .expect("acme exists");
    assert_eq!(got, acme);
    assert_eq!(
        accounts.list().await.expect("list"),
        vec![acme, zeta],
        "ordered by name"
    );
}

async fn create_conflicts_on_taken_name(db: TestDb) {
    let accounts = db.store.accounts();
    let first = accounts.create("acme").await.expect("create");
    match accounts.create("acme").await {
        Err(StoreError::Conflict { what }) => assert!(what.contains("acme"), "{what}"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    // The failed insert left the original alone.
    assert_eq!(accounts.list().await.expect("list"), vec![first]);
}

async fn ensure_creates_once(db: TestDb) {
    let accounts = db.store.accounts();
    let created = accounts.ensure("default").await.expect("ensure creates");
    assert_eq!(created.name, "default");
    let again = accounts.ensure("default").await.expect("ensure finds");
    assert_eq!(again, created);

    // ensure returns an account made by create, and create conflicts with ensure's.
    let made = accounts.create("acme").await.expect("create");
    assert_eq!(accounts.ensure("acme").await.expect("ensure"), made);
    assert!(matches!(
        accounts.create("default").await,
        Err(StoreError::Conflict { .. })
    ));

    // Racing ensures agree on one row.
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let store = db.store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .accounts()
                .ensure("raced")
                .await
                .expect("ensure raced")
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.expect("join").id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "all ensures return the same account");
    assert_eq!(accounts.list().await.expect("list").len(), 3);
}

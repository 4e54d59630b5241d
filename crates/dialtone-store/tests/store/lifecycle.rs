//! The store as a whole: backend detection, ping, idempotent migrations,
//! durability across reopen, close.

use dialtone_store::{Backend, BindingChange, NewUser};

use crate::common::TestDb;

backend_tests!(
    backend_and_ping,
    migrations_run_twice_are_idempotent,
    data_survives_reopen,
);

const NOW: i64 = 1_700_000_000;

async fn backend_and_ping(db: TestDb) {
    let expected = if db.url.starts_with("postgres") {
        Backend::Postgres
    } else {
        Backend::Sqlite
    };
    assert_eq!(db.store.backend(), expected);
    db.store.ping().await.expect("ping");
    // Clones share the pool: closing one closes them all.
    let clone = db.store.clone();
    clone.close().await;
    assert!(db.store.ping().await.is_err(), "ping after close fails");
}

async fn migrations_run_twice_are_idempotent(db: TestDb) {
    let account = db.store.accounts().create("acme").await.expect("create");
    // Two further connects: each runs the migrator against the migrated schema.
    for _ in 0..2 {
        let again = db.reopen().await;
        again.ping().await.expect("ping");
        let found = again.accounts().get_by_name("acme").await.expect("get");
        assert_eq!(
            found.as_ref(),
            Some(&account),
            "migrations must not reset data"
        );
        again.close().await;
    }
    // The first store still works alongside.
    db.store
        .accounts()
        .create("beta")
        .await
        .expect("create after reconnects");
}

async fn data_survives_reopen(db: TestDb) {
    let account = db
        .store
        .accounts()
        .ensure("default")
        .await
        .expect("account");
    let user = db
        .store
        .users()
        .create(NewUser {
            account_id: &account.id,
            username: "1001",
            realm: "dialtone",
            ha1_md5: "0123456789abcdef0123456789abcdef",
            ha1_sha256: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        })
        .await
        .expect("user");
    let change = BindingChange::Upsert {
        contact: "sip:1001@127.0.0.1:5062;transport=udp".to_owned(),
        expires_at: NOW + 3600,
        q: Some(0.8),
        source: "udp:127.0.0.1:5062".to_owned(),
        user_agent: Some("softphone".to_owned()),
        instance: None,
        path: None,
    };
    let bound = db
        .store
        .registrations()
        .apply("1001", "call-a", 3, &[change], NOW)
        .await
        .expect("register");
    db.store.close().await;

    let reopened = db.reopen().await;
    assert_eq!(
        reopened.accounts().list().await.expect("accounts"),
        vec![account]
    );
    assert_eq!(
        reopened.users().get("1001").await.expect("user"),
        Some(user)
    );
    assert_eq!(
        reopened
            .registrations()
            .list_all(NOW)
            .await
            .expect("bindings"),
        bound
    );
    // The ordering state survived too.
    let stale = reopened
        .registrations()
        .apply("1001", "call-a", 3, &[BindingChange::RemoveAll], NOW)
        .await;
    assert!(
        matches!(stale, Err(dialtone_store::StoreError::OutOfOrder)),
        "{stale:?}"
    );
    reopened.close().await;
}

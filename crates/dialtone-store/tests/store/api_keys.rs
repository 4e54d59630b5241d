//! API keys: create returns the plain key once and stores only its hash and
//! prefix (no column holds the key); verify finds the right key and nothing
//! for a wrong or revoked one; list orders newest first, per account too;
//! touch records the last use; revoke is once only.

use dialtone_store::{ApiKey, StoreError, KEY_PREFIX};
use sqlx::{AnyPool, Column, Row};

use crate::common::TestDb;

backend_tests!(
    create_then_verify,
    the_plain_key_is_stored_nowhere,
    list_touch_and_revoke,
    create_for_unknown_account_is_not_found,
);

async fn create_then_verify(db: TestDb) {
    let acme = db.store.accounts().ensure("acme").await.expect("account");
    let keys = db.store.api_keys();
    let (key, plain) = keys
        .create(&acme.id, Some("claude desktop"))
        .await
        .expect("create");
    assert!(plain.starts_with(KEY_PREFIX), "{plain}");
    assert_eq!(plain.len(), 44, "{plain}");
    assert!(plain[4..].chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(key.prefix, plain[..12]);
    assert_eq!(key.account_id, acme.id);
    assert_eq!(key.name.as_deref(), Some("claude desktop"));
    assert_eq!((key.last_used_at, key.revoked_at), (None, None));
    assert!(key.created_at > 1_600_000_000);

    assert_eq!(
        keys.verify(&plain).await.expect("verify"),
        Some(key.clone())
    );
    assert_eq!(keys.get(&key.id).await.expect("get"), Some(key.clone()));

    // Anything else is unknown: another key, the prefix, one character off, empty.
    let (other, other_plain) = keys.create(&acme.id, None).await.expect("create 2");
    assert_ne!(other_plain, plain);
    assert_eq!(other.name, None);
    let mut off_by_one = plain.clone();
    let last = if off_by_one.ends_with('a') { "b" } else { "a" };
    off_by_one.replace_range(43.., last);
    for wrong in [
        key.prefix.as_str(),
        off_by_one.as_str(),
        "",
        "dtk_",
        &plain.to_lowercase(),
    ] {
        if wrong != plain {
            assert_eq!(keys.verify(wrong).await.expect("verify"), None, "{wrong}");
        }
    }
    assert_eq!(
        keys.verify(&other_plain).await.expect("verify other"),
        Some(other)
    );

    // Revoked: no longer valid.
    assert!(keys.revoke(&key.id).await.expect("revoke"));
    assert_eq!(keys.verify(&plain).await.expect("verify revoked"), None);
}

async fn the_plain_key_is_stored_nowhere(db: TestDb) {
    let acme = db.store.accounts().ensure("acme").await.expect("account");
    let (key, plain) = db
        .store
        .api_keys()
        .create(&acme.id, Some("label"))
        .await
        .expect("create");
    db.store
        .api_keys()
        .touch(&key.id, 1_800_000_000)
        .await
        .expect("touch");
    sqlx::any::install_default_drivers();
    let pool = AnyPool::connect(&db.url).await.expect("connect raw");
    let rows = sqlx::query("SELECT * FROM api_keys")
        .fetch_all(&pool)
        .await
        .expect("rows");
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    let mut columns: Vec<&str> = row.columns().iter().map(Column::name).collect();
    columns.sort_unstable();
    assert_eq!(
        columns,
        [
            "account_id",
            "created_at",
            "hash",
            "id",
            "last_used_at",
            "name",
            "prefix",
            "revoked_at"
        ]
    );
    let secret = &plain[12..];
    for column in &columns {
        let text = match row.try_get::<Option<String>, _>(*column) {
            Ok(v) => v.unwrap_or_default(),
            Err(_) => row
                .try_get::<Option<i64>, _>(*column)
                .expect("text or integer")
                .map(|n| n.to_string())
                .unwrap_or_default(),
        };
        assert!(
            text != plain && !text.contains(&plain) && !text.contains(secret),
            "column {column} holds the key: {text}"
        );
    }
    // The hash is the hex SHA-256 of the whole key.
    let hash: String = row.try_get("hash").expect("hash");
    assert_eq!(hash.len(), 64);
    assert!(hash.chars().all(|c| c.is_ascii_hexdigit()));
    pool.close().await;
}

async fn list_touch_and_revoke(db: TestDb) {
    let accounts = db.store.accounts();
    let acme = accounts.ensure("acme").await.expect("acme");
    let other = accounts.ensure("other").await.expect("other");
    let keys = db.store.api_keys();
    assert!(keys.list().await.expect("list").is_empty());

    let mut made: Vec<ApiKey> = Vec::new();
    for (account, label) in [(&acme, "a1"), (&other, "o1"), (&acme, "a2")] {
        let (key, _) = keys.create(&account.id, Some(label)).await.expect("create");
        made.push(key);
    }
    // Newest first: created_at descending, ties by id descending.
    let mut expected = made.clone();
    expected.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    assert_eq!(keys.list().await.expect("list"), expected);
    let for_acme: Vec<ApiKey> = expected
        .iter()
        .filter(|k| k.account_id == acme.id)
        .cloned()
        .collect();
    assert_eq!(for_acme.len(), 2);
    assert_eq!(
        keys.list_for_account(&acme.id).await.expect("list acme"),
        for_acme
    );
    assert!(keys
        .list_for_account("no-such-account")
        .await
        .expect("list none")
        .is_empty());

    // touch: last use recorded, never moved back.
    let id = made[0].id.clone();
    keys.touch(&id, 1_800_000_100).await.expect("touch");
    keys.touch(&id, 1_800_000_050).await.expect("touch earlier");
    let touched = keys.get(&id).await.expect("get").expect("exists");
    assert_eq!(touched.last_used_at, Some(1_800_000_100));
    keys.touch(&id, 1_800_000_200).await.expect("touch later");
    let touched = keys.get(&id).await.expect("get").expect("exists");
    assert_eq!(touched.last_used_at, Some(1_800_000_200));
    assert!(matches!(
        keys.touch("no-such-key", 1).await,
        Err(StoreError::NotFound { .. })
    ));

    // revoke: once; unknown ids are false; the key stays listed, revoked.
    assert!(keys.revoke(&id).await.expect("revoke"));
    assert!(!keys.revoke(&id).await.expect("revoke again"));
    assert!(!keys.revoke("no-such-key").await.expect("revoke unknown"));
    let revoked = keys.get(&id).await.expect("get").expect("kept");
    assert!(revoked.revoked_at.is_some_and(|t| t > 1_600_000_000));
    assert_eq!(keys.list().await.expect("list").len(), 3);
    let others_untouched = keys
        .list()
        .await
        .expect("list")
        .into_iter()
        .filter(|k| k.id != id)
        .all(|k| k.revoked_at.is_none() && k.last_used_at.is_none());
    assert!(others_untouched);
}

async fn create_for_unknown_account_is_not_found(db: TestDb) {
    match db.store.api_keys().create("no-such-account", None).await {
        Err(StoreError::NotFound { what }) => assert!(what.contains("no-such-account"), "{what}"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(db.store.api_keys().list().await.expect("list").is_empty());
}

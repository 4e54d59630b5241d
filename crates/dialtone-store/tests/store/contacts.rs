//! Contacts: create keeps each number as written and in E.164 (in the given
//! region), lookup by E.164 finds it within the account only, list (per
//! account and all, by name), get, import in one transaction, remove; and the
//! account settings they depend on: region (default US, validated) and the
//! HTTP contact source URL (validated, clearable); an account upgraded from
//! before 0006 gets region US and no URL.

use dialtone_store::{ContactNumber, NewContact, StoreError};

use crate::common::TestDb;

backend_tests!(
    create_keeps_numbers_and_finds_by_e164,
    lookup_stays_within_the_account,
    list_get_and_remove,
    import_is_one_transaction,
    account_region_and_contact_url,
);

fn numbers(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

async fn create_keeps_numbers_and_finds_by_e164(db: TestDb) {
    let acme = db.store.accounts().ensure("acme").await.expect("account");
    let contacts = db.store.contacts();
    let made = contacts
        .create(
            &acme.id,
            "Alice Example",
            &numbers(&["(555) 010-0123", "ext 12", "1001"]),
            Some("Example Corp"),
            Some("alice@example.com"),
            "US",
        )
        .await
        .expect("create");
    assert_eq!(made.name, "Alice Example");
    assert_eq!(made.account_id, acme.id);
    assert_eq!(
        made.numbers,
        [
            ContactNumber {
                number: "(555) 010-0123".into(),
                e164: Some("+15550100123".into())
            },
            ContactNumber {
                number: "ext 12".into(),
                e164: None
            },
            ContactNumber {
                number: "1001".into(),
                e164: None
            },
        ]
    );
    let found = contacts
        .find_by_number(&acme.id, "+15550100123")
        .await
        .expect("find");
    assert_eq!(found, std::slice::from_ref(&made));
    // Only E.164 matches: the formatted text is not a key.
    assert!(contacts
        .find_by_number(&acme.id, "(555) 010-0123")
        .await
        .expect("find")
        .is_empty());

    // A German contact in region DE; two contacts sharing a line both come back.
    let berlin = contacts
        .create(
            &acme.id,
            "Büro Berlin",
            &numbers(&["030 123456"]),
            None,
            None,
            "DE",
        )
        .await
        .expect("create");
    assert_eq!(berlin.numbers[0].e164.as_deref(), Some("+4930123456"));
    let reception = contacts
        .create(
            &acme.id,
            "Berlin Empfang",
            &numbers(&["+49 30 123456"]),
            None,
            None,
            "US",
        )
        .await
        .expect("create");
    assert_eq!(
        contacts
            .find_by_number(&acme.id, "+4930123456")
            .await
            .expect("find"),
        [reception, berlin],
        "ordered by name"
    );

    match contacts
        .create(
            "no-such-account",
            "X",
            &numbers(&["+15550100123"]),
            None,
            None,
            "US",
        )
        .await
    {
        Err(StoreError::NotFound { what }) => assert!(what.contains("account"), "{what}"),
        other => panic!("expected NotFound, got {other:?}"),
    }
}

async fn lookup_stays_within_the_account(db: TestDb) {
    let acme = db.store.accounts().ensure("acme").await.expect("account");
    let other = db.store.accounts().ensure("other").await.expect("account");
    let contacts = db.store.contacts();
    let theirs = contacts
        .create(
            &other.id,
            "Bob",
            &numbers(&["+15550100123"]),
            None,
            None,
            "US",
        )
        .await
        .expect("create");
    assert!(contacts
        .find_by_number(&acme.id, "+15550100123")
        .await
        .expect("find")
        .is_empty());
    assert_eq!(
        contacts
            .find_by_number(&other.id, "+15550100123")
            .await
            .expect("find"),
        [theirs]
    );
}

async fn list_get_and_remove(db: TestDb) {
    let acme = db.store.accounts().ensure("acme").await.expect("account");
    let other = db.store.accounts().ensure("other").await.expect("account");
    let contacts = db.store.contacts();
    assert!(contacts.list(None).await.expect("list").is_empty());
    let zed = contacts
        .create(
            &acme.id,
            "Zed",
            &numbers(&["+15550100001"]),
            None,
            None,
            "US",
        )
        .await
        .expect("create");
    let amy = contacts
        .create(
            &acme.id,
            "Amy",
            &numbers(&["+15550100002", "+15550100003"]),
            None,
            Some("amy@example.com"),
            "US",
        )
        .await
        .expect("create");
    let bea = contacts
        .create(&other.id, "Bea", &[], Some("Other Inc"), None, "US")
        .await
        .expect("create");
    assert_eq!(
        contacts.list(Some(&acme.id)).await.expect("list"),
        [amy.clone(), zed.clone()]
    );
    assert_eq!(
        contacts.list(None).await.expect("list"),
        [amy.clone(), bea.clone(), zed.clone()]
    );
    assert_eq!(contacts.get(&amy.id).await.expect("get"), Some(amy.clone()));
    assert_eq!(contacts.get("no-such-id").await.expect("get"), None);

    assert!(contacts.remove(&amy.id).await.expect("remove"));
    assert!(!contacts.remove(&amy.id).await.expect("again"));
    assert_eq!(contacts.get(&amy.id).await.expect("get"), None);
    assert!(contacts
        .find_by_number(&acme.id, "+15550100002")
        .await
        .expect("find")
        .is_empty());
    assert_eq!(
        contacts.list(None).await.expect("list"),
        [bea, zed],
        "the others are untouched"
    );
}

async fn import_is_one_transaction(db: TestDb) {
    let acme = db.store.accounts().ensure("acme").await.expect("account");
    let contacts = db.store.contacts();
    let rows = vec![
        NewContact {
            name: "Carol".into(),
            numbers: numbers(&["020 7946 0958"]),
            company: Some("Carol Ltd".into()),
            email: None,
        },
        NewContact {
            name: "Dave".into(),
            numbers: numbers(&["07700 900123", "+44 20 7946 0000"]),
            company: None,
            email: Some("dave@example.com".into()),
        },
    ];
    assert_eq!(
        contacts
            .import(&acme.id, rows.clone(), "GB")
            .await
            .expect("import"),
        2
    );
    let listed = contacts.list(Some(&acme.id)).await.expect("list");
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].name, "Carol");
    assert_eq!(listed[0].company.as_deref(), Some("Carol Ltd"));
    assert_eq!(
        listed[1]
            .numbers
            .iter()
            .map(|n| n.e164.as_deref())
            .collect::<Vec<_>>(),
        [Some("+447700900123"), Some("+442079460000")]
    );
    assert_eq!(
        contacts
            .find_by_number(&acme.id, "+442079460958")
            .await
            .expect("find")
            .len(),
        1
    );
    // An unknown account: nothing is imported.
    assert!(matches!(
        contacts.import("no-such-account", rows, "GB").await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(contacts.list(None).await.expect("list").len(), 2);
    assert_eq!(
        contacts
            .import(&acme.id, Vec::new(), "GB")
            .await
            .expect("empty"),
        0
    );
}

async fn account_region_and_contact_url(db: TestDb) {
    let accounts = db.store.accounts();
    let acme = accounts.ensure("acme").await.expect("ensure");
    assert_eq!(
        (acme.region.as_str(), acme.contact_url.as_deref()),
        ("US", None)
    );
    let created = accounts.create("zeta").await.expect("create");
    assert_eq!(created.region, "US");
    assert_eq!(
        accounts.get_by_name("zeta").await.expect("get"),
        Some(created.clone())
    );

    let de = accounts.set_region("acme", "de").await.expect("set region");
    assert_eq!(de.region, "DE", "stored upper case");
    match accounts.set_region("acme", "XX").await {
        Err(StoreError::Invalid { reason }) => {
            assert!(reason.contains("XX") && reason.contains("GB"), "{reason}")
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert!(matches!(
        accounts.set_region("ghost", "GB").await,
        Err(StoreError::NotFound { .. })
    ));

    let url = "https://crm.example/lookup?phone={phone_number}";
    let with_url = accounts
        .set_contact_url("acme", Some(url))
        .await
        .expect("set url");
    assert_eq!(with_url.contact_url.as_deref(), Some(url));
    assert_eq!(with_url.region, "DE", "the region stays");
    assert_eq!(
        accounts.get(&acme.id).await.expect("get by id"),
        Some(with_url.clone())
    );
    assert_eq!(accounts.get("no-such-id").await.expect("get"), None);
    for bad in [
        "ftp://crm.example/{phone_number}",
        "https://crm.example/lookup",
        "https://crm.example/{phone_number}/{name}",
        "https://{phone_number}.example/",
        "crm.example/{phone_number}",
    ] {
        match accounts.set_contact_url("acme", Some(bad)).await {
            Err(StoreError::Invalid { reason }) => assert!(reason.contains(bad), "{reason}"),
            other => panic!("{bad}: expected Invalid, got {other:?}"),
        }
    }
    let cleared = accounts.set_contact_url("acme", None).await.expect("clear");
    assert_eq!(cleared.contact_url, None);
    assert_eq!(
        accounts.list().await.expect("list"),
        [cleared, created],
        "list carries the settings"
    );
}

/// From an empty database: migrations up to 0005, then the current store.
mod upgrade {
    use std::path::PathBuf;

    use dialtone_store::Store;
    use sqlx::migrate::Migrator;
    use sqlx::AnyPool;

    use super::numbers;
    use crate::common::temp_path;

    empty_backend_tests!(upgrade_gives_existing_accounts_region_us);

    /// Copies of the migrations before 0006, removed on drop.
    struct OldMigrations(PathBuf);

    impl Drop for OldMigrations {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    async fn upgrade_gives_existing_accounts_region_us(url: String) {
        sqlx::any::install_default_drivers();
        let dir = OldMigrations(temp_path("-migrations"));
        std::fs::create_dir_all(&dir.0).expect("create dir");
        let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("migrations");
        for entry in std::fs::read_dir(&source).expect("read migrations") {
            let name = entry.expect("entry").file_name();
            let name = name.to_string_lossy();
            if name.as_ref() < "0006" {
                std::fs::copy(source.join(name.as_ref()), dir.0.join(name.as_ref()))
                    .expect("copy migration");
            }
        }
        let raw_url = if url.starts_with("sqlite:") {
            format!("{url}?mode=rwc")
        } else {
            url.clone()
        };
        let pool = AnyPool::connect(&raw_url).await.expect("connect raw");
        Migrator::new(dir.0.as_path())
            .await
            .expect("load old migrations")
            .run(&pool)
            .await
            .expect("apply old migrations");
        sqlx::query(
            "INSERT INTO accounts (id, name, created_at) VALUES ('acc-1', 'old', 1700000000)",
        )
        .execute(&pool)
        .await
        .expect("seed");
        pool.close().await;

        let store = Store::connect(&url).await.expect("upgrade");
        let old = store
            .accounts()
            .get("acc-1")
            .await
            .expect("get")
            .expect("kept");
        assert_eq!(
            (old.name.as_str(), old.region.as_str(), old.contact_url),
            ("old", "US", None)
        );
        let made = store
            .contacts()
            .create(
                "acc-1",
                "New",
                &numbers(&["555 010 0123"]),
                None,
                None,
                &old.region,
            )
            .await
            .expect("the new tables work");
        assert_eq!(made.numbers[0].e164.as_deref(), Some("+15550100123"));
        store.close().await;
    }
}

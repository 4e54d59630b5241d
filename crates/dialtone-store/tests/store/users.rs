//! Users: create, conflicts, unknown account, get, ordered list, remove
//! (which takes the user's registrations with it), do-not-disturb.

use dialtone_store::{BindingChange, NewUser, Store, StoreError, User};

use crate::common::TestDb;

backend_tests!(
    create_get_and_list,
    username_is_unique_across_accounts,
    create_in_unknown_account_is_not_found,
    remove_deletes_user_and_registrations,
    dnd_is_off_by_default_and_switches,
);

const NOW: i64 = 1_700_000_000;

async fn new_user(store: &Store, account_id: &str, username: &str) -> Result<User, StoreError> {
    store
        .users()
        .create(NewUser {
            account_id,
            username,
            realm: "dialtone",
            ha1_md5: &format!("{username}-md5"),
            ha1_sha256: &format!("{username}-sha256"),
        })
        .await
}

async fn create_get_and_list(db: TestDb) {
    let account = db
        .store
        .accounts()
        .ensure("default")
        .await
        .expect("account");
    let users = db.store.users();
    assert!(users.get("1001").await.expect("get").is_none());

    let b = new_user(&db.store, &account.id, "1002")
        .await
        .expect("create 1002");
    let a = new_user(&db.store, &account.id, "1001")
        .await
        .expect("create 1001");
    assert_eq!(a.account_id, account.id);
    assert_eq!(a.username, "1001");
    assert_eq!(a.realm, "dialtone");
    assert_eq!(a.ha1_md5, "1001-md5");
    assert_eq!(a.ha1_sha256, "1001-sha256");
    assert!(a.created_at > 1_600_000_000);

    assert_eq!(users.get("1001").await.expect("get").as_ref(), Some(&a));
    assert_eq!(
        users.list().await.expect("list"),
        vec![a, b],
        "ordered by username"
    );
}

async fn username_is_unique_across_accounts(db: TestDb) {
    let one = db
        .store
        .accounts()
        .create("one")
        .await
        .expect("account one");
    let two = db
        .store
        .accounts()
        .create("two")
        .await
        .expect("account two");
    let first = new_user(&db.store, &one.id, "1001").await.expect("create");
    match new_user(&db.store, &two.id, "1001").await {
        Err(StoreError::Conflict { what }) => assert!(what.contains("1001"), "{what}"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(db.store.users().list().await.expect("list"), vec![first]);
}

async fn create_in_unknown_account_is_not_found(db: TestDb) {
    match new_user(&db.store, "no-such-account", "1001").await {
        Err(StoreError::NotFound { what }) => assert!(what.contains("no-such-account"), "{what}"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(db.store.users().list().await.expect("list").is_empty());
}

fn upsert(contact: &str) -> BindingChange {
    BindingChange::Upsert {
        contact: contact.to_owned(),
        expires_at: NOW + 3600,
        q: None,
        source: "udp:127.0.0.1:5062".to_owned(),
        user_agent: None,
        instance: None,
        path: None,
    }
}

async fn remove_deletes_user_and_registrations(db: TestDb) {
    let account = db
        .store
        .accounts()
        .ensure("default")
        .await
        .expect("account");
    new_user(&db.store, &account.id, "1001")
        .await
        .expect("create 1001");
    let other = new_user(&db.store, &account.id, "1002")
        .await
        .expect("create 1002");
    let regs = db.store.registrations();
    let changes = [upsert("sip:1001@10.0.0.1"), upsert("sip:1001@10.0.0.2")];
    regs.apply("1001", "c1", 1, &changes, NOW)
        .await
        .expect("register 1001");
    regs.apply("1002", "c2", 1, &[upsert("sip:1002@10.0.0.3")], NOW)
        .await
        .expect("register 1002");

    assert!(db.store.users().remove("1001").await.expect("remove"));
    assert!(db.store.users().get("1001").await.expect("get").is_none());
    assert!(regs.list("1001", NOW).await.expect("list").is_empty());
    // Nothing else went: the other user and its binding stay.
    assert_eq!(db.store.users().list().await.expect("list"), vec![other]);
    let left = regs.list_all(NOW).await.expect("list_all");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].aor, "1002");

    assert!(!db.store.users().remove("1001").await.expect("remove again"));
    assert!(!db
        .store
        .users()
        .remove("nobody")
        .await
        .expect("remove unknown"));

    // The username is free again, and its AOR can register afresh.
    new_user(&db.store, &account.id, "1001")
        .await
        .expect("re-create 1001");
    let bound = regs
        .apply("1001", "c1", 1, &[upsert("sip:1001@10.0.0.1")], NOW)
        .await
        .expect("register again with the old Call-ID and CSeq");
    assert_eq!(bound.len(), 1);
}

async fn dnd_is_off_by_default_and_switches(db: TestDb) {
    let account = db
        .store
        .accounts()
        .ensure("default")
        .await
        .expect("account");
    let a = new_user(&db.store, &account.id, "1001")
        .await
        .expect("create 1001");
    let b = new_user(&db.store, &account.id, "1002")
        .await
        .expect("create 1002");
    assert!(!a.dnd && !b.dnd, "off when created");
    let users = db.store.users();
    let dnd_of = |name: &'static str| {
        let store = db.store.clone();
        async move {
            store
                .users()
                .get(name)
                .await
                .expect("get")
                .expect("exists")
                .dnd
        }
    };

    assert!(users.set_dnd("1001", true).await.expect("on"));
    assert!(dnd_of("1001").await);
    assert!(!dnd_of("1002").await, "only that user");
    assert!(users.set_dnd("1001", true).await.expect("on again"));
    assert!(dnd_of("1001").await);
    let listed = users.list().await.expect("list");
    assert_eq!(
        listed
            .iter()
            .map(|u| (u.username.as_str(), u.dnd))
            .collect::<Vec<_>>(),
        [("1001", true), ("1002", false)]
    );

    assert!(users.set_dnd("1001", false).await.expect("off"));
    assert!(!dnd_of("1001").await);
    assert!(!users.set_dnd("nobody", true).await.expect("unknown"));
}

//! Trunks: create with every field, conflict on a taken name, get, ordered
//! list, and removal refused while a number or route points at the trunk.

use dialtone_store::{NewTrunk, Store, StoreError, TargetKind, Trunk};

use crate::common::TestDb;

backend_tests!(
    create_get_and_list,
    create_conflicts_on_taken_name,
    remove_is_refused_while_referenced,
    remove_frees_the_name_and_its_addresses,
    upsert_creates_then_replaces_keeping_the_id,
);

pub async fn new_trunk(store: &Store, name: &str) -> Trunk {
    store
        .trunks()
        .create(NewTrunk {
            name,
            host: Some("sip.example.net:5060"),
            transport: "udp",
            inbound_ips: &["192.0.2.10".to_owned()],
            username: None,
            password: None,
            register: false,
        })
        .await
        .expect("create trunk")
}

async fn create_get_and_list(db: TestDb) {
    let trunks = db.store.trunks();
    assert!(trunks.get("carrier").await.expect("get").is_none());
    assert!(trunks.list().await.expect("list").is_empty());

    let ips = vec![
        "203.0.113.7".to_owned(),
        "198.51.100.0/24".to_owned(),
        "2001:db8::1".to_owned(),
        "10.0.0.1".to_owned(),
    ];
    let carrier = trunks
        .create(NewTrunk {
            name: "carrier",
            host: Some("[2001:db8::5]:5061"),
            transport: "tcp",
            inbound_ips: &ips,
            username: Some("acct-17"),
            password: Some("s3cr3t, with comma"),
            register: true,
        })
        .await
        .expect("create carrier");
    assert_eq!(carrier.name, "carrier");
    assert_eq!(carrier.host.as_deref(), Some("[2001:db8::5]:5061"));
    assert_eq!(carrier.transport, "tcp");
    assert_eq!(carrier.inbound_ips, ips, "kept in the order given");
    assert_eq!(carrier.username.as_deref(), Some("acct-17"));
    assert_eq!(carrier.password.as_deref(), Some("s3cr3t, with comma"));
    assert!(carrier.register);
    assert!(carrier.created_at > 1_600_000_000, "unix seconds");

    let inbound_only = trunks
        .create(NewTrunk {
            name: "Branch",
            host: None,
            transport: "udp",
            inbound_ips: &[],
            username: None,
            password: None,
            register: false,
        })
        .await
        .expect("create inbound-only");
    assert_eq!(inbound_only.host, None);
    assert!(inbound_only.inbound_ips.is_empty());
    assert!(!inbound_only.register);
    assert_ne!(inbound_only.id, carrier.id);
    let other = new_trunk(&db.store, "aaa").await;

    assert_eq!(
        trunks.get("carrier").await.expect("get").as_ref(),
        Some(&carrier)
    );
    assert_eq!(
        trunks.get("Branch").await.expect("get").as_ref(),
        Some(&inbound_only)
    );
    assert!(
        trunks.get("branch").await.expect("get").is_none(),
        "names are exact"
    );
    // Bytewise name order on both backends: uppercase before lowercase.
    assert_eq!(
        trunks.list().await.expect("list"),
        vec![inbound_only, other, carrier]
    );
}

async fn create_conflicts_on_taken_name(db: TestDb) {
    let first = new_trunk(&db.store, "carrier").await;
    let again = db
        .store
        .trunks()
        .create(NewTrunk {
            name: "carrier",
            host: None,
            transport: "tcp",
            inbound_ips: &["192.0.2.99".to_owned(), "192.0.2.98".to_owned()],
            username: Some("u"),
            password: Some("p"),
            register: true,
        })
        .await;
    match again {
        Err(StoreError::Conflict { what }) => assert!(what.contains("carrier"), "{what}"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    // Nothing of the failed create stayed behind, addresses included.
    assert_eq!(db.store.trunks().list().await.expect("list"), vec![first]);
}

async fn remove_is_refused_while_referenced(db: TestDb) {
    let carrier = new_trunk(&db.store, "carrier").await;
    let spare = new_trunk(&db.store, "spare").await;
    let numbers = db.store.numbers();
    let routes = db.store.routes();
    let trunks = db.store.trunks();

    // A number of another kind that happens to name the trunk does not count.
    numbers
        .create("+15550001", TargetKind::User, "carrier", false)
        .await
        .expect("user number");
    numbers
        .create("+15550002", TargetKind::Trunk, "carrier", false)
        .await
        .expect("trunk number");
    let route = routes
        .create("^9", "carrier", 1, "", None, false)
        .await
        .expect("route");

    let refused = |r: Result<bool, StoreError>, what_has: &[&str]| match r {
        Err(StoreError::Conflict { what }) => {
            for part in what_has {
                assert!(what.contains(part), "{part:?} in {what:?}");
            }
        }
        other => panic!("expected Conflict, got {other:?}"),
    };
    refused(
        trunks.remove("carrier").await,
        &["carrier", "+15550002", "^9"],
    );
    assert_eq!(
        trunks.get("carrier").await.expect("get").as_ref(),
        Some(&carrier),
        "nothing removed"
    );

    assert!(numbers.remove("+15550002").await.expect("remove number"));
    refused(trunks.remove("carrier").await, &["carrier", "^9"]);
    assert_eq!(routes.list().await.expect("routes").len(), 1);

    assert!(routes.remove(&route.id).await.expect("remove route"));
    numbers
        .create("+15550003", TargetKind::Trunk, "carrier", false)
        .await
        .expect("number again");
    refused(trunks.remove("carrier").await, &["+15550003"]);
    assert!(numbers.remove("+15550003").await.expect("remove number"));

    assert!(trunks.remove("carrier").await.expect("remove"));
    assert!(trunks.get("carrier").await.expect("get").is_none());
    assert_eq!(trunks.list().await.expect("list"), vec![spare]);
    assert!(!trunks.remove("carrier").await.expect("remove again"));
    assert!(!trunks.remove("nobody").await.expect("remove unknown"));
    // The unrelated number is still there.
    assert_eq!(numbers.list().await.expect("numbers").len(), 1);
}

async fn remove_frees_the_name_and_its_addresses(db: TestDb) {
    let trunks = db.store.trunks();
    let old = trunks
        .create(NewTrunk {
            name: "carrier",
            host: Some("a.example:5060"),
            transport: "udp",
            inbound_ips: &["192.0.2.1".to_owned(), "192.0.2.2".to_owned()],
            username: None,
            password: None,
            register: false,
        })
        .await
        .expect("create");
    assert!(trunks.remove("carrier").await.expect("remove"));
    let new = trunks
        .create(NewTrunk {
            name: "carrier",
            host: Some("b.example:5060"),
            transport: "tcp",
            inbound_ips: &["198.51.100.1".to_owned()],
            username: None,
            password: None,
            register: false,
        })
        .await
        .expect("re-create");
    assert_ne!(new.id, old.id);
    let got = trunks.get("carrier").await.expect("get").expect("exists");
    assert_eq!(got.inbound_ips, ["198.51.100.1"], "old addresses gone");
    assert_eq!(got, new);
    // A route to the re-created trunk works.
    db.store
        .routes()
        .create(".*", "carrier", 0, "", Some(1), false)
        .await
        .expect("route");
}

async fn upsert_creates_then_replaces_keeping_the_id(db: TestDb) {
    let trunks = db.store.trunks();
    let ips = vec!["192.0.2.1".to_owned()];
    let first = trunks
        .upsert(NewTrunk {
            name: "sip-account",
            host: Some("sip.a.example:5060"),
            transport: "udp",
            inbound_ips: &ips,
            username: Some("u1"),
            password: Some("p1"),
            register: true,
        })
        .await
        .expect("upsert creates");
    let ips2 = vec!["192.0.2.2".to_owned(), "192.0.2.3".to_owned()];
    let second = trunks
        .upsert(NewTrunk {
            name: "sip-account",
            host: Some("sip.b.example:5070"),
            transport: "tcp",
            inbound_ips: &ips2,
            username: Some("u2"),
            password: Some("p2"),
            register: false,
        })
        .await
        .expect("upsert replaces");
    assert_eq!(second.id, first.id);
    assert_eq!(second.host.as_deref(), Some("sip.b.example:5070"));
    assert_eq!(second.transport, "tcp");
    assert_eq!(second.inbound_ips, ips2);
    assert_eq!(second.username.as_deref(), Some("u2"));
    assert!(!second.register);
    assert_eq!(trunks.list().await.expect("list").len(), 1);
}

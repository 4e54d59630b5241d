//! Call limits (migration 0009): users, trunks and accounts start without
//! any; set_limits sets and clears both, survives reopening the store, and a
//! trunk's upsert keeps them; an unknown name is reported.

use dialtone_store::{CallLimits, NewUser, StoreError};

use crate::common::TestDb;
use crate::trunks::new_trunk;

backend_tests!(
    limits_start_unset_then_set_and_clear,
    unknown_names_are_reported,
);

const SOME: CallLimits = CallLimits {
    max_calls: Some(2),
    max_cps_milli: Some(500),
};

async fn limits_start_unset_then_set_and_clear(db: TestDb) {
    let store = &db.store;
    let account = store.accounts().ensure("acme").await.expect("account");
    assert!(account.limits.is_unlimited());
    let user = store
        .users()
        .create(NewUser {
            account_id: &account.id,
            username: "alice",
            realm: "dialtone",
            ha1_md5: "m",
            ha1_sha256: "s",
        })
        .await
        .expect("user");
    assert!(user.limits.is_unlimited());
    let trunk = new_trunk(store, "carrier").await;
    assert!(trunk.limits.is_unlimited());

    assert!(store
        .users()
        .set_limits("alice", SOME)
        .await
        .expect("user limits"));
    assert!(store
        .trunks()
        .set_limits("carrier", SOME)
        .await
        .expect("trunk limits"));
    let a = store
        .accounts()
        .set_limits("acme", SOME)
        .await
        .expect("account limits");
    assert_eq!(a.limits, SOME);

    // Read back through every path, from a second connection.
    let again = db.reopen().await;
    let u = again
        .users()
        .get("alice")
        .await
        .expect("get")
        .expect("alice");
    assert_eq!(u.limits, SOME);
    assert_eq!(again.users().list().await.expect("list")[0].limits, SOME);
    let t = again
        .trunks()
        .get("carrier")
        .await
        .expect("get")
        .expect("carrier");
    assert_eq!(t.limits, SOME);
    assert_eq!(again.trunks().list().await.expect("list")[0].limits, SOME);
    let acc = again
        .accounts()
        .get(&account.id)
        .await
        .expect("get")
        .expect("acme");
    assert_eq!(acc.limits, SOME);

    // Replacing a trunk's settings keeps its limits.
    let replaced = again
        .trunks()
        .upsert(dialtone_store::NewTrunk {
            name: "carrier",
            host: Some("sip2.example.net"),
            transport: "udp",
            inbound_ips: &[],
            username: None,
            password: None,
            register: false,
        })
        .await
        .expect("upsert");
    assert_eq!(replaced.limits, SOME);

    // One limit cleared, a rate of zero (no new calls) kept as such.
    let half = CallLimits {
        max_calls: None,
        max_cps_milli: Some(0),
    };
    assert!(again
        .users()
        .set_limits("alice", half)
        .await
        .expect("clear"));
    let u = again
        .users()
        .get("alice")
        .await
        .expect("get")
        .expect("alice");
    assert_eq!(u.limits, half);
    let none = CallLimits::default();
    assert!(again
        .trunks()
        .set_limits("carrier", none)
        .await
        .expect("clear"));
    let t = again
        .trunks()
        .get("carrier")
        .await
        .expect("get")
        .expect("carrier");
    assert!(t.limits.is_unlimited());
    again.close().await;
}

async fn unknown_names_are_reported(db: TestDb) {
    let store = &db.store;
    assert!(!store
        .users()
        .set_limits("nobody", SOME)
        .await
        .expect("users"));
    assert!(!store
        .trunks()
        .set_limits("nothing", SOME)
        .await
        .expect("trunks"));
    match store.accounts().set_limits("nowhere", SOME).await {
        Err(StoreError::NotFound { .. }) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

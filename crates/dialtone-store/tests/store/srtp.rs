//! SRTP policies (migration 0011): users and trunks start without their own
//! (the configured default applies); set_srtp sets and clears it, the value
//! survives reopening the store and a trunk's upsert; an unknown name is
//! reported; a value this version does not know reads as no policy.

use dialtone_store::{NewTrunk, NewUser, SrtpPolicy};
use sqlx::AnyPool;

use crate::common::TestDb;
use crate::trunks::new_trunk;

backend_tests!(
    policies_start_unset_then_set_and_clear,
    unknown_names_and_values,
);

async fn policies_start_unset_then_set_and_clear(db: TestDb) {
    let store = &db.store;
    let account = store.accounts().ensure("acme").await.expect("account");
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
    assert_eq!(user.srtp, None);
    let trunk = new_trunk(store, "carrier").await;
    assert_eq!(trunk.srtp, None);

    assert!(store
        .users()
        .set_srtp("alice", Some(SrtpPolicy::Required))
        .await
        .expect("user srtp"));
    assert!(store
        .trunks()
        .set_srtp("carrier", Some(SrtpPolicy::Off))
        .await
        .expect("trunk srtp"));

    let again = db.reopen().await;
    let u = again
        .users()
        .get("alice")
        .await
        .expect("get")
        .expect("alice");
    assert_eq!(u.srtp, Some(SrtpPolicy::Required));
    let listed = again.users().list().await.expect("list");
    assert_eq!(listed[0].srtp, Some(SrtpPolicy::Required));
    let t = again
        .trunks()
        .get("carrier")
        .await
        .expect("get")
        .expect("carrier");
    assert_eq!(t.srtp, Some(SrtpPolicy::Off));

    // Re-adding the trunk (upsert) keeps its policy.
    let t = again
        .trunks()
        .upsert(NewTrunk {
            name: "carrier",
            host: Some("sip2.example.net:5060"),
            transport: "udp",
            inbound_ips: &[],
            username: None,
            password: None,
            register: false,
        })
        .await
        .expect("upsert");
    assert_eq!(t.srtp, Some(SrtpPolicy::Off));

    assert!(again.users().set_srtp("alice", None).await.expect("clear"));
    let u = again
        .users()
        .get("alice")
        .await
        .expect("get")
        .expect("alice");
    assert_eq!(u.srtp, None);
}

async fn unknown_names_and_values(db: TestDb) {
    let store = &db.store;
    assert!(!store
        .users()
        .set_srtp("nobody", Some(SrtpPolicy::Off))
        .await
        .expect("no error"));
    assert!(!store
        .trunks()
        .set_srtp("nowhere", None)
        .await
        .expect("no error"));
    new_trunk(store, "carrier").await;
    // Written behind the store's back, as a newer version or a hand might.
    let raw_url = if db.url.starts_with("sqlite:") {
        format!("{}?mode=rwc", db.url)
    } else {
        db.url.clone()
    };
    sqlx::any::install_default_drivers();
    let pool = AnyPool::connect(&raw_url).await.expect("connect raw");
    sqlx::query("UPDATE trunks SET srtp = 'sometimes' WHERE name = 'carrier'")
        .execute(&pool)
        .await
        .expect("raw update");
    pool.close().await;
    let t = store
        .trunks()
        .get("carrier")
        .await
        .expect("readable")
        .expect("carrier");
    assert_eq!(
        t.srtp, None,
        "an unknown value must not make the trunk unreadable"
    );
}

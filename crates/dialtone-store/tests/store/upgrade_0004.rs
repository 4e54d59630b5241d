//! The upgrade from a database at 0004 (personas) with data in it: users get
//! do-not-disturb off, call records no account, personas keep everything;
//! then API keys, office hours, leads, dnd and a call's account work.

use std::path::PathBuf;

use dialtone_store::{NewCase, Store, TimeRange};
use sqlx::migrate::Migrator;
use sqlx::AnyPool;

use crate::migrations::{applied_versions, MigrationsDir};

empty_backend_tests!(upgrade_from_0004_keeps_rows_and_adds_the_mcp_tables);

async fn upgrade_from_0004_keeps_rows_and_adds_the_mcp_tables(url: String) {
    sqlx::any::install_default_drivers();
    let raw_url = if url.starts_with("sqlite:") {
        format!("{url}?mode=rwc")
    } else {
        url.clone()
    };

    let old = MigrationsDir::with(&[
        "0001_initial.sql",
        "0002_calls.sql",
        "0003_recording.sql",
        "0004_personas.sql",
    ]);
    let pool = AnyPool::connect(&raw_url).await.expect("connect raw");
    Migrator::new(old.0.as_path())
        .await
        .expect("load 0001-0004")
        .run(&pool)
        .await
        .expect("apply 0001-0004");
    assert_eq!(applied_versions(&pool).await, [1, 2, 3, 4]);
    assert!(
        sqlx::query("SELECT COUNT(*) FROM api_keys")
            .fetch_one(&pool)
            .await
            .is_err(),
        "0005 not applied yet"
    );
    for sql in [
        "INSERT INTO accounts (id, name, created_at) VALUES ('acc-1', 'default', 1700000000)",
        "INSERT INTO users (id, account_id, username, realm, ha1_md5, ha1_sha256, created_at) \
         VALUES ('usr-1', 'acc-1', '1001', 'dialtone', 'md5', 'sha256', 1700000000)",
        "INSERT INTO personas (id, account_id, name, provider, url, instructions, timezone, \
         turn_detection, barge_in_min_ms, max_duration_secs, idle_timeout_secs, created_at, \
         updated_at) VALUES ('per-1', 'acc-1', 'receptionist', 'openai', 'wss://x/realtime', \
         'Hi.', 'Europe/Berlin', 'server_vad', 0, 0, 30, 1700000000, 1700000000)",
        "INSERT INTO calls (id, node, direction, from_uri, to_uri, caller, callee, started_at, \
         legs, persona, transcript) VALUES ('call-1', 'node-1', 'inbound', 'sip:a@h', \
         'sip:b@h', 'a', 'b', 1700000000000, '[]', 'receptionist', '[]')",
    ] {
        sqlx::query(sql)
            .execute(&pool)
            .await
            .expect("seed 0004 data");
    }
    pool.close().await;

    let store = Store::connect(&url).await.expect("upgrade");
    let user = store
        .users()
        .get("1001")
        .await
        .expect("user")
        .expect("kept");
    assert_eq!((user.id.as_str(), user.dnd), ("usr-1", false));
    let call = store
        .calls()
        .get("call-1")
        .await
        .expect("call")
        .expect("kept");
    assert_eq!(
        (call.persona.as_deref(), call.account_id.as_deref()),
        (Some("receptionist"), None)
    );
    let persona = store
        .personas()
        .get("receptionist")
        .await
        .expect("persona")
        .expect("kept");
    assert_eq!(
        (persona.id.as_str(), persona.timezone.as_str()),
        ("per-1", "Europe/Berlin")
    );

    // The new tables and columns work on the upgraded database.
    assert!(store.users().set_dnd("1001", true).await.expect("dnd"));
    let (key, plain) = store
        .api_keys()
        .create("acc-1", Some("upgrade"))
        .await
        .expect("key");
    store
        .office_hours()
        .set_day(
            "per-1",
            0,
            &[TimeRange::new("09:00", "17:00").expect("range")],
        )
        .await
        .expect("hours");
    let (lead, _, _) = store
        .leads()
        .record(
            "acc-1",
            "+15550100",
            "Ann",
            NewCase {
                intent: "quote".to_owned(),
                classification: "lead".to_owned(),
                summary: None,
                notes: None,
                call_id: Some("call-1".to_owned()),
                persona: Some("receptionist".to_owned()),
            },
        )
        .await
        .expect("lead");
    let with_account = dialtone_store::CallRecord {
        account_id: Some("acc-1".to_owned()),
        ..call
    };
    store.calls().update(&with_account).await.expect("update");
    store.close().await;

    let reopened = Store::connect(&url).await.expect("reopen");
    assert!(
        reopened
            .users()
            .get("1001")
            .await
            .expect("user")
            .expect("kept")
            .dnd
    );
    assert_eq!(
        reopened.api_keys().verify(&plain).await.expect("verify"),
        Some(key)
    );
    let hours = reopened
        .office_hours()
        .get("per-1")
        .await
        .expect("hours")
        .expect("set");
    assert_eq!(hours.weekly[0].len(), 1);
    assert_eq!(
        reopened
            .leads()
            .get(&lead.id)
            .await
            .expect("lead")
            .map(|(_, cases)| cases.len()),
        Some(1)
    );
    assert_eq!(
        reopened.calls().get("call-1").await.expect("call"),
        Some(with_account)
    );
    reopened.close().await;

    let all = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let expected: Vec<i64> = Migrator::new(all.as_path())
        .await
        .expect("load")
        .iter()
        .map(|m| m.version)
        .collect();
    assert!(expected.starts_with(&[1, 2, 3, 4, 5]), "{expected:?}");
    let pool = AnyPool::connect(&raw_url).await.expect("connect raw");
    assert_eq!(applied_versions(&pool).await, expected);
    pool.close().await;
}

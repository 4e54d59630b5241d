//! The upgrade path: a database migrated by an older dialtone (0001 only,
//! 0001 and 0002, or 0001 to 0003), with data in it, is brought to the current schema by
//! `Store::connect` without losing anything; and the new tables and columns
//! then work. (The upgrade from 0004 is in `upgrade_0004`.)

use std::path::PathBuf;

use dialtone_store::{CallRecord, NewPersona, NewTrunk, Number, Route, Store, TargetKind};
use sqlx::migrate::Migrator;
use sqlx::AnyPool;

use crate::common::temp_path;

empty_backend_tests!(
    upgrade_from_0001_keeps_data_and_adds_the_call_tables,
    upgrade_from_0002_adds_recording_with_record_off,
    upgrade_from_0003_adds_personas_and_the_call_columns,
);

const NOW: i64 = 1_700_000_000;

/// A directory holding copies of the named migrations, removed on drop.
pub(crate) struct MigrationsDir(pub(crate) PathBuf);

impl MigrationsDir {
    pub(crate) fn with(files: &[&str]) -> Self {
        let dir = temp_path("-migrations");
        std::fs::create_dir_all(&dir).expect("create migrations dir");
        let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("migrations");
        for file in files {
            std::fs::copy(source.join(file), dir.join(file)).expect("copy migration");
        }
        MigrationsDir(dir)
    }
}

impl Drop for MigrationsDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The versions recorded in sqlx's bookkeeping table, all of which must have succeeded.
pub(crate) async fn applied_versions(pool: &AnyPool) -> Vec<i64> {
    let failed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE NOT success")
        .fetch_one(pool)
        .await
        .expect("count failed migrations");
    assert_eq!(failed, 0, "every applied migration succeeded");
    let mut versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations")
        .fetch_all(pool)
        .await
        .expect("read _sqlx_migrations");
    versions.sort_unstable();
    versions
}

async fn upgrade_from_0001_keeps_data_and_adds_the_call_tables(url: String) {
    sqlx::any::install_default_drivers();
    let raw_url = if url.starts_with("sqlite:") {
        format!("{url}?mode=rwc")
    } else {
        url.clone()
    };

    // An "old dialtone": only 0001 applied, exactly as the embedded migrator
    // would have recorded it (same file, same checksum), and some data.
    let old = MigrationsDir::with(&["0001_initial.sql"]);
    let pool = AnyPool::connect(&raw_url).await.expect("connect raw");
    Migrator::new(old.0.as_path())
        .await
        .expect("load 0001")
        .run(&pool)
        .await
        .expect("apply 0001");
    assert_eq!(applied_versions(&pool).await, [1]);
    assert!(
        sqlx::query("SELECT COUNT(*) FROM trunks")
            .fetch_one(&pool)
            .await
            .is_err(),
        "0002 not applied yet"
    );
    for sql in [
        "INSERT INTO accounts (id, name, created_at) VALUES ('acc-1', 'default', 1700000000)",
        "INSERT INTO users (id, account_id, username, realm, ha1_md5, ha1_sha256, created_at) \
         VALUES ('usr-1', 'acc-1', '1001', 'dialtone', 'md5', 'sha256', 1700000000)",
        "INSERT INTO registrations (aor, contact, expires_at, q_milli, call_id, cseq, source, \
         user_agent, instance, created_at, updated_at) VALUES ('1001', 'sip:1001@10.0.0.1', \
         1700003600, 500, 'call-a', 7, 'udp:10.0.0.1:5060', NULL, NULL, 1700000000, 1700000000)",
    ] {
        sqlx::query(sql)
            .execute(&pool)
            .await
            .expect("seed 0001 data");
    }
    pool.close().await;

    // The current dialtone opens it: 0002 (and anything later) is applied.
    let store = Store::connect(&url).await.expect("upgrade");
    let account = store
        .accounts()
        .get_by_name("default")
        .await
        .expect("account")
        .expect("kept");
    assert_eq!((account.id.as_str(), account.created_at), ("acc-1", NOW));
    let user = store
        .users()
        .get("1001")
        .await
        .expect("user")
        .expect("kept");
    assert_eq!((user.id.as_str(), user.ha1_md5.as_str()), ("usr-1", "md5"));
    let bound = store.registrations().list_all(NOW).await.expect("bindings");
    assert_eq!(bound.len(), 1);
    assert_eq!((bound[0].q, bound[0].cseq), (Some(0.5), 7));

    // The new tables work on the upgraded database.
    store
        .trunks()
        .create(NewTrunk {
            name: "carrier",
            host: Some("sip.example.net:5060"),
            transport: "udp",
            inbound_ips: &["192.0.2.1".to_owned()],
            username: Some("u"),
            password: Some("p"),
            register: true,
        })
        .await
        .expect("trunk");
    store
        .numbers()
        .create("+15550100", TargetKind::User, "1001", false)
        .await
        .expect("number");
    store
        .routes()
        .create("^\\+", "carrier", 0, "", None, false)
        .await
        .expect("route");
    let rec = CallRecord {
        id: "call-1".to_owned(),
        node: "node-1".to_owned(),
        direction: "internal".to_owned(),
        from_uri: "sip:1001@dialtone".to_owned(),
        to_uri: "sip:1002@dialtone".to_owned(),
        caller: "1001".to_owned(),
        callee: "1002".to_owned(),
        started_at: NOW * 1000,
        answered_at: None,
        ended_at: None,
        outcome: None,
        hangup_cause: None,
        hangup_side: None,
        codecs: None,
        legs: "[]".to_owned(),
        stats: None,
        recording: None,
        persona: None,
        transcript: None,
        account_id: None,
    };
    store.calls().start(&rec).await.expect("call");
    store.close().await;

    // Every migration in the crate (what `Store` embeds) is recorded once, and
    // opening again is a no-op.
    let all = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let expected: Vec<i64> = Migrator::new(all.as_path())
        .await
        .expect("load")
        .iter()
        .map(|m| m.version)
        .collect();
    assert!(expected.starts_with(&[1, 2]), "{expected:?}");
    let reopened = Store::connect(&url).await.expect("reopen");
    assert_eq!(
        reopened.calls().get("call-1").await.expect("get"),
        Some(rec)
    );
    assert!(reopened
        .numbers()
        .lookup("15550100")
        .await
        .expect("lookup")
        .is_some());
    reopened.close().await;
    let pool = AnyPool::connect(&raw_url).await.expect("connect raw");
    assert_eq!(applied_versions(&pool).await, expected);
    pool.close().await;
}

async fn upgrade_from_0002_adds_recording_with_record_off(url: String) {
    sqlx::any::install_default_drivers();
    let raw_url = if url.starts_with("sqlite:") {
        format!("{url}?mode=rwc")
    } else {
        url.clone()
    };

    // A dialtone from before recording: 0001 and 0002 applied, a trunk, a
    // number, a route and a finished call in it.
    let old = MigrationsDir::with(&["0001_initial.sql", "0002_calls.sql"]);
    let pool = AnyPool::connect(&raw_url).await.expect("connect raw");
    Migrator::new(old.0.as_path())
        .await
        .expect("load 0001, 0002")
        .run(&pool)
        .await
        .expect("apply 0001, 0002");
    assert_eq!(applied_versions(&pool).await, [1, 2]);
    assert!(
        sqlx::query("SELECT record FROM numbers")
            .fetch_all(&pool)
            .await
            .is_err(),
        "0003 not applied yet"
    );
    for sql in [
        "INSERT INTO trunks (id, name, host, transport, username, password, register, \
         created_at) VALUES ('trk-1', 'carrier', 'sip.example.net:5060', 'udp', NULL, NULL, 0, \
         1700000000)",
        "INSERT INTO numbers (id, number, target_kind, target, created_at) \
         VALUES ('num-1', '+15550100', 'trunk', 'carrier', 1700000000)",
        "INSERT INTO counters (name, value) VALUES ('routes', 1)",
        "INSERT INTO routes (id, pattern, trunk_id, strip, prepend, priority, seq, created_at) \
         VALUES ('rte-1', '^00', 'trk-1', 2, '+', 10, 1, 1700000000)",
        "INSERT INTO calls (id, node, direction, from_uri, to_uri, caller, callee, started_at, \
         answered_at, ended_at, outcome, hangup_cause, hangup_side, codecs, legs, stats) \
         VALUES ('call-1', 'node-1', 'inbound', 'sip:a@h', 'sip:b@h', 'a', 'b', \
         1700000000000, 1700000001000, 1700000009000, 'answered', 'BYE', 'caller', \
         'PCMU/8000', '[]', NULL)",
    ] {
        sqlx::query(sql)
            .execute(&pool)
            .await
            .expect("seed 0002 data");
    }
    pool.close().await;

    // The current dialtone opens it: the rows are kept, recording is off for
    // them, and the old call has no recording.
    let store = Store::connect(&url).await.expect("upgrade");
    let number = Number {
        id: "num-1".to_owned(),
        number: "+15550100".to_owned(),
        target_kind: TargetKind::Trunk,
        target: "carrier".to_owned(),
        record: false,
        created_at: NOW,
    };
    assert_eq!(
        store.numbers().list().await.expect("numbers"),
        vec![number.clone()]
    );
    let route = Route {
        id: "rte-1".to_owned(),
        pattern: "^00".to_owned(),
        trunk: "carrier".to_owned(),
        strip: 2,
        prepend: "+".to_owned(),
        priority: 10,
        record: false,
        created_at: NOW,
    };
    assert_eq!(
        store.routes().list().await.expect("routes"),
        vec![route.clone()]
    );
    let call = store
        .calls()
        .get("call-1")
        .await
        .expect("call")
        .expect("kept");
    assert_eq!(call.recording, None);
    assert_eq!(
        (call.outcome.as_deref(), call.ended_at),
        (Some("answered"), Some(1_700_000_009_000))
    );

    // The new columns work on the upgraded rows and on new ones.
    assert!(store
        .numbers()
        .set_record("+15550100", true)
        .await
        .expect("set"));
    assert!(store.routes().set_record("rte-1", true).await.expect("set"));
    let recorded = CallRecord {
        recording: Some("recordings/call-1.wav".to_owned()),
        ..call
    };
    store.calls().update(&recorded).await.expect("update");
    let next = store
        .routes()
        .create("^1", "carrier", 0, "", None, true)
        .await
        .expect("route after upgrade");
    assert_eq!((next.priority, next.record), (20, true));
    store.close().await;

    let reopened = Store::connect(&url).await.expect("reopen");
    assert_eq!(
        reopened.numbers().list().await.expect("numbers"),
        [Number {
            record: true,
            ..number
        }]
    );
    assert_eq!(
        reopened.routes().list().await.expect("routes"),
        [
            Route {
                record: true,
                ..route
            },
            next
        ]
    );
    assert_eq!(
        reopened.calls().get("call-1").await.expect("get"),
        Some(recorded)
    );
    reopened.close().await;
    let all = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let expected: Vec<i64> = Migrator::new(all.as_path())
        .await
        .expect("load")
        .iter()
        .map(|m| m.version)
        .collect();
    assert!(expected.starts_with(&[1, 2, 3]), "{expected:?}");
    let pool = AnyPool::connect(&raw_url).await.expect("connect raw");
    assert_eq!(applied_versions(&pool).await, expected);
    pool.close().await;
}

async fn upgrade_from_0003_adds_personas_and_the_call_columns(url: String) {
    sqlx::any::install_default_drivers();
    let raw_url = if url.starts_with("sqlite:") {
        format!("{url}?mode=rwc")
    } else {
        url.clone()
    };

    // A dialtone from before personas: 0001 to 0003 applied, an account, a
    // number already pointing at a persona name, and a finished call.
    let old = MigrationsDir::with(&["0001_initial.sql", "0002_calls.sql", "0003_recording.sql"]);
    let pool = AnyPool::connect(&raw_url).await.expect("connect raw");
    Migrator::new(old.0.as_path())
        .await
        .expect("load 0001-0003")
        .run(&pool)
        .await
        .expect("apply 0001-0003");
    assert_eq!(applied_versions(&pool).await, [1, 2, 3]);
    assert!(
        sqlx::query("SELECT COUNT(*) FROM personas")
            .fetch_one(&pool)
            .await
            .is_err(),
        "0004 not applied yet"
    );
    for sql in [
        "INSERT INTO accounts (id, name, created_at) VALUES ('acc-1', 'default', 1700000000)",
        "INSERT INTO numbers (id, number, target_kind, target, created_at, record) \
         VALUES ('num-1', '+15550100', 'persona', 'receptionist', 1700000000, 0)",
        "INSERT INTO calls (id, node, direction, from_uri, to_uri, caller, callee, started_at, \
         answered_at, ended_at, outcome, hangup_cause, hangup_side, codecs, legs, stats, \
         recording) VALUES ('call-1', 'node-1', 'inbound', 'sip:a@h', 'sip:b@h', 'a', 'b', \
         1700000000000, 1700000001000, 1700000009000, 'answered', 'BYE', 'caller', \
         'PCMU/8000', '[]', NULL, 'rec/call-1.wav')",
    ] {
        sqlx::query(sql)
            .execute(&pool)
            .await
            .expect("seed 0003 data");
    }
    pool.close().await;

    // The current dialtone opens it: the old call has no persona or transcript,
    // and personas work.
    let store = Store::connect(&url).await.expect("upgrade");
    let call = store
        .calls()
        .get("call-1")
        .await
        .expect("call")
        .expect("kept");
    assert_eq!(
        (
            call.recording.as_deref(),
            call.persona.as_deref(),
            call.transcript.as_deref()
        ),
        (Some("rec/call-1.wav"), None, None)
    );
    assert!(store.personas().list().await.expect("list").is_empty());
    let persona = store
        .personas()
        .create(NewPersona {
            account_id: "acc-1".to_owned(),
            name: "receptionist".to_owned(),
            provider: "openai".to_owned(),
            url: "wss://api.openai.com/v1/realtime".to_owned(),
            model: None,
            voice: None,
            instructions: "Answer for {called_number}.".to_owned(),
            greeting: None,
            api_key_env: None,
            timezone: "UTC".to_owned(),
            turn_detection: "server_vad".to_owned(),
            vad_threshold: Some(0.5),
            vad_prefix_padding_ms: None,
            vad_silence_ms: None,
            vad_eagerness: None,
            barge_in_min_ms: 0,
            max_duration_secs: 0,
            idle_timeout_secs: 30,
            fallback: None,
            transcription_model: None,
        })
        .await
        .expect("persona after upgrade");
    // The number that already pointed at its name now holds it.
    assert!(matches!(
        store.personas().remove("receptionist").await,
        Err(dialtone_store::StoreError::InUse { .. })
    ));
    let with_ai = CallRecord {
        persona: Some("receptionist".to_owned()),
        transcript: Some(r#"[{"side":"agent","text":"Hello","at_ms":0}]"#.to_owned()),
        ..call
    };
    store.calls().update(&with_ai).await.expect("update");
    store.close().await;

    let reopened = Store::connect(&url).await.expect("reopen");
    assert_eq!(
        reopened.personas().get("receptionist").await.expect("get"),
        Some(persona)
    );
    assert_eq!(
        reopened.calls().get("call-1").await.expect("get"),
        Some(with_ai)
    );
    reopened.close().await;
    let all = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let expected: Vec<i64> = Migrator::new(all.as_path())
        .await
        .expect("load")
        .iter()
        .map(|m| m.version)
        .collect();
    assert!(expected.starts_with(&[1, 2, 3, 4]), "{expected:?}");
    let pool = AnyPool::connect(&raw_url).await.expect("connect raw");
    assert_eq!(applied_versions(&pool).await, expected);
    pool.close().await;
}

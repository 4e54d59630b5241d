//! Personas: create with every field, get by name and id, ordered list (all
//! and per account), update (replacing, clearing nullable fields, bumping
//! updated_at), conflicts, removal refused while a number routes to the
//! persona, no column that could hold the provider key; and the persona and
//! transcript of a call record.

use dialtone_store::{
    CallRecord, NewPersona, Persona, PersonaUpdate, Store, StoreError, TargetKind,
};
use sqlx::{AnyPool, Column, Row};

use crate::common::TestDb;

backend_tests!(
    create_get_and_list,
    update_replaces_and_clears_fields,
    update_of_unknown_persona_or_account_is_not_found,
    create_conflicts_on_taken_name_and_needs_the_account,
    remove_is_refused_while_a_number_routes_to_it,
    no_column_holds_a_key,
    call_record_keeps_persona_and_transcript,
);

/// A persona with the CLI's defaults and only the required fields.
fn minimal(account_id: &str, name: &str) -> NewPersona {
    NewPersona {
        account_id: account_id.to_owned(),
        name: name.to_owned(),
        provider: "openai".to_owned(),
        url: "wss://api.openai.com/v1/realtime".to_owned(),
        model: None,
        voice: None,
        instructions: "You are the receptionist.".to_owned(),
        greeting: None,
        api_key_env: None,
        timezone: "UTC".to_owned(),
        turn_detection: "server_vad".to_owned(),
        vad_threshold: None,
        vad_prefix_padding_ms: None,
        vad_silence_ms: None,
        vad_eagerness: None,
        barge_in_min_ms: 0,
        max_duration_secs: 0,
        idle_timeout_secs: 30,
        fallback: None,
        transcription_model: Some("gpt-4o-mini-transcribe".to_owned()),
    }
}

/// Every optional field set, text with quotes, newlines and non-ASCII.
fn full(account_id: &str, name: &str) -> NewPersona {
    NewPersona {
        provider: "gemini".to_owned(),
        url: "ws://127.0.0.1:9999/live?x=1".to_owned(),
        model: Some("gemini-2.0-flash-live".to_owned()),
        voice: Some("Puck".to_owned()),
        instructions: "Hallo {contact_name}! Heute ist {date}, {time}.\n\
                       Anrufer: {caller_number} → {called_number}. \"Zoë\" 'x'"
            .to_owned(),
        greeting: Some("Guten Tag, Praxis Müller.".to_owned()),
        api_key_env: Some("PRAXIS_GEMINI_KEY".to_owned()),
        timezone: "Europe/Berlin".to_owned(),
        turn_detection: "semantic_vad".to_owned(),
        vad_threshold: Some(0.123),
        vad_prefix_padding_ms: Some(300),
        vad_silence_ms: Some(u32::MAX),
        vad_eagerness: Some("high".to_owned()),
        barge_in_min_ms: 250,
        max_duration_secs: 3600,
        idle_timeout_secs: 0,
        fallback: Some("queue:front-desk".to_owned()),
        transcription_model: Some("default".to_owned()),
        ..minimal(account_id, name)
    }
}

/// What `create` must return for `new`, given the generated id and times.
fn expected(new: NewPersona, made: &Persona) -> Persona {
    Persona {
        id: made.id.clone(),
        account_id: new.account_id,
        name: new.name,
        provider: new.provider,
        url: new.url,
        model: new.model,
        voice: new.voice,
        instructions: new.instructions,
        greeting: new.greeting,
        api_key_env: new.api_key_env,
        timezone: new.timezone,
        turn_detection: new.turn_detection,
        vad_threshold: new.vad_threshold,
        vad_prefix_padding_ms: new.vad_prefix_padding_ms,
        vad_silence_ms: new.vad_silence_ms,
        vad_eagerness: new.vad_eagerness,
        barge_in_min_ms: new.barge_in_min_ms,
        max_duration_secs: new.max_duration_secs,
        idle_timeout_secs: new.idle_timeout_secs,
        fallback: new.fallback,
        transcription_model: new.transcription_model,
        created_at: made.created_at,
        updated_at: made.updated_at,
    }
}

async fn account(store: &Store, name: &str) -> String {
    store.accounts().ensure(name).await.expect("account").id
}

async fn create_get_and_list(db: TestDb) {
    let personas = db.store.personas();
    let acme = account(&db.store, "acme").await;
    let other = account(&db.store, "other").await;
    assert!(personas.get("receptionist").await.expect("get").is_none());
    assert!(personas.list().await.expect("list").is_empty());

    let spec = full(&acme, "receptionist");
    let made = personas.create(spec.clone()).await.expect("create");
    assert_eq!(made, expected(spec, &made));
    assert!(made.created_at > 1_600_000_000, "unix seconds");
    assert_eq!(made.updated_at, made.created_at);

    let plain_spec = minimal(&other, "Bob");
    let plain = personas.create(plain_spec.clone()).await.expect("create");
    assert_eq!(plain, expected(plain_spec, &plain));
    let third = personas
        .create(minimal(&acme, "after-hours"))
        .await
        .expect("create");
    assert_ne!(made.id, plain.id);

    // Every field reads back exactly, by name and by id.
    assert_eq!(
        personas.get("receptionist").await.expect("get"),
        Some(made.clone())
    );
    assert_eq!(
        personas.get_by_id(&plain.id).await.expect("get by id"),
        Some(plain.clone())
    );
    assert_eq!(personas.get_by_id("nope").await.expect("get by id"), None);
    assert_eq!(personas.get("Receptionist").await.expect("get"), None);

    // Bytewise name order: capitals before lowercase.
    assert_eq!(
        personas.list().await.expect("list"),
        [plain.clone(), third.clone(), made.clone()]
    );
    assert_eq!(
        personas.list_for_account(&acme).await.expect("acme"),
        [third, made]
    );
    assert_eq!(
        personas.list_for_account(&other).await.expect("other"),
        [plain]
    );
    assert!(personas
        .list_for_account("no-such-account")
        .await
        .expect("none")
        .is_empty());

    // Reopened (another connection, migrations again): still the same.
    let reopened = db.reopen().await;
    assert_eq!(reopened.personas().list().await.expect("list").len(), 3);
    reopened.close().await;
}

async fn update_replaces_and_clears_fields(db: TestDb) {
    let personas = db.store.personas();
    let acme = account(&db.store, "acme").await;
    let other = account(&db.store, "other").await;
    let made = personas
        .create(full(&acme, "receptionist"))
        .await
        .expect("create");

    // Nothing asked: nothing changes but updated_at (never moves back).
    assert!(PersonaUpdate::default().is_empty());
    let same = personas
        .update("receptionist", PersonaUpdate::default())
        .await
        .expect("empty update");
    assert!(same.updated_at >= made.updated_at);
    assert_eq!(
        Persona {
            updated_at: made.updated_at,
            ..same
        },
        made
    );

    // Replace some fields, clear nullable ones, keep the rest.
    let changes = PersonaUpdate {
        account_id: Some(other.clone()),
        provider: Some("openai".to_owned()),
        url: Some("wss://example.test/realtime".to_owned()),
        model: Some(Some("gpt-realtime".to_owned())),
        voice: Some(None),
        instructions: Some("Be brief.".to_owned()),
        greeting: Some(None),
        api_key_env: Some(None),
        timezone: Some("America/New_York".to_owned()),
        turn_detection: Some("none".to_owned()),
        vad_threshold: Some(Some(1.0)),
        vad_prefix_padding_ms: Some(None),
        vad_silence_ms: Some(Some(0)),
        vad_eagerness: Some(None),
        barge_in_min_ms: Some(0),
        max_duration_secs: Some(60),
        idle_timeout_secs: Some(15),
        fallback: Some(None),
        transcription_model: Some(None),
    };
    assert!(!changes.is_empty());
    let updated = personas
        .update("receptionist", changes)
        .await
        .expect("update");
    let want = Persona {
        account_id: other.clone(),
        provider: "openai".to_owned(),
        url: "wss://example.test/realtime".to_owned(),
        model: Some("gpt-realtime".to_owned()),
        voice: None,
        instructions: "Be brief.".to_owned(),
        greeting: None,
        api_key_env: None,
        timezone: "America/New_York".to_owned(),
        turn_detection: "none".to_owned(),
        vad_threshold: Some(1.0),
        vad_prefix_padding_ms: None,
        vad_silence_ms: Some(0),
        vad_eagerness: None,
        barge_in_min_ms: 0,
        max_duration_secs: 60,
        idle_timeout_secs: 15,
        fallback: None,
        transcription_model: None,
        updated_at: updated.updated_at,
        ..made.clone()
    };
    assert_eq!(updated, want);
    assert!(updated.updated_at >= made.updated_at);
    assert_eq!(
        personas.get("receptionist").await.expect("get"),
        Some(want.clone())
    );
    assert!(personas
        .list_for_account(&acme)
        .await
        .expect("acme")
        .is_empty());

    // One field: only it changes; a cleared field can be set again.
    let greeted = personas
        .update(
            "receptionist",
            PersonaUpdate {
                greeting: Some(Some("Hello!".to_owned())),
                vad_threshold: Some(Some(0.0)),
                ..PersonaUpdate::default()
            },
        )
        .await
        .expect("update greeting");
    assert_eq!(
        greeted,
        Persona {
            greeting: Some("Hello!".to_owned()),
            vad_threshold: Some(0.0),
            updated_at: greeted.updated_at,
            ..want
        }
    );
}

async fn update_of_unknown_persona_or_account_is_not_found(db: TestDb) {
    let personas = db.store.personas();
    match personas.update("ghost", PersonaUpdate::default()).await {
        Err(StoreError::NotFound { what }) => assert!(what.contains("ghost"), "{what}"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    let acme = account(&db.store, "acme").await;
    let made = personas
        .create(minimal(&acme, "agent"))
        .await
        .expect("create");
    let moved = PersonaUpdate {
        account_id: Some("no-such-account".to_owned()),
        instructions: Some("changed".to_owned()),
        ..PersonaUpdate::default()
    };
    match personas.update("agent", moved).await {
        Err(StoreError::NotFound { what }) => assert!(what.contains("account"), "{what}"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_eq!(
        personas.get("agent").await.expect("get"),
        Some(made),
        "nothing changed"
    );
}

async fn create_conflicts_on_taken_name_and_needs_the_account(db: TestDb) {
    let personas = db.store.personas();
    let acme = account(&db.store, "acme").await;
    let other = account(&db.store, "other").await;
    let first = personas
        .create(minimal(&acme, "receptionist"))
        .await
        .expect("create");
    // Names are unique across accounts: numbers name personas without an account.
    match personas.create(full(&other, "receptionist")).await {
        Err(StoreError::Conflict { what }) => assert!(what.contains("receptionist"), "{what}"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    match personas.create(minimal("no-such-account", "orphan")).await {
        Err(StoreError::NotFound { what }) => assert!(what.contains("account"), "{what}"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_eq!(personas.list().await.expect("list"), [first]);
}

async fn remove_is_refused_while_a_number_routes_to_it(db: TestDb) {
    let personas = db.store.personas();
    let numbers = db.store.numbers();
    let acme = account(&db.store, "acme").await;
    assert!(!personas.remove("receptionist").await.expect("remove none"));
    let made = personas
        .create(minimal(&acme, "receptionist"))
        .await
        .expect("create");
    for number in ["+15550199", "+15550100"] {
        numbers
            .create(number, TargetKind::Persona, "receptionist", false)
            .await
            .expect("number");
    }
    // Same name, other kinds: no hold on the persona.
    numbers
        .create("+15550111", TargetKind::User, "receptionist", false)
        .await
        .expect("number");

    match personas.remove("receptionist").await {
        Err(e @ StoreError::InUse { .. }) => {
            let text = e.to_string();
            assert!(text.contains("receptionist"), "{text}");
            assert!(
                text.contains(r#"["+15550100", "+15550199"]"#),
                "names the numbers, sorted: {text}"
            );
            assert!(!text.contains("+15550111"), "{text}");
        }
        other => panic!("expected InUse, got {other:?}"),
    }
    assert_eq!(
        personas.get("receptionist").await.expect("get"),
        Some(made.clone())
    );

    assert!(numbers.remove("+15550100").await.expect("remove number"));
    match personas.remove("receptionist").await {
        Err(StoreError::InUse { by, .. }) => assert_eq!(by, r#"number(s) ["+15550199"]"#),
        other => panic!("expected InUse, got {other:?}"),
    }
    assert!(numbers.remove("+15550199").await.expect("remove number"));
    assert!(personas.remove("receptionist").await.expect("remove"));
    assert!(personas.get("receptionist").await.expect("get").is_none());
    assert!(personas.get_by_id(&made.id).await.expect("get").is_none());
    assert!(!personas.remove("receptionist").await.expect("again"));
    // The name is free again.
    personas
        .create(minimal(&acme, "receptionist"))
        .await
        .expect("re-create");
}

async fn no_column_holds_a_key(db: TestDb) {
    let acme = account(&db.store, "acme").await;
    db.store
        .personas()
        .create(full(&acme, "receptionist"))
        .await
        .expect("create");
    sqlx::any::install_default_drivers();
    let pool = AnyPool::connect(&db.url).await.expect("connect raw");
    let row = sqlx::query("SELECT * FROM personas")
        .fetch_one(&pool)
        .await
        .expect("row");
    let mut columns: Vec<&str> = row.columns().iter().map(Column::name).collect();
    columns.sort_unstable();
    // The key lives in the environment; only the variable's NAME is stored.
    assert_eq!(
        columns,
        [
            "account_id",
            "api_key_env",
            "barge_in_min_ms",
            "created_at",
            "fallback",
            "greeting",
            "id",
            "idle_timeout_secs",
            "instructions",
            "max_duration_secs",
            "model",
            "name",
            "provider",
            "timezone",
            "transcription_model",
            "turn_detection",
            "updated_at",
            "url",
            "vad_eagerness",
            "vad_prefix_padding_ms",
            "vad_silence_ms",
            "vad_threshold_milli",
            "voice",
        ]
    );
    let stored: String = row.try_get("api_key_env").expect("api_key_env");
    assert_eq!(stored, "PRAXIS_GEMINI_KEY");
    pool.close().await;
}

async fn call_record_keeps_persona_and_transcript(db: TestDb) {
    let calls = db.store.calls();
    let transcript = r#"[{"side":"agent","text":"Guten Tag, Praxis Müller.","at_ms":120},{"side":"caller","text":"Hi, I'd like an \"appointment\".\nTomorrow?","at_ms":2400}]"#;
    let started = CallRecord {
        id: "ai-call-1".to_owned(),
        node: "node-1".to_owned(),
        direction: "inbound".to_owned(),
        from_uri: "sip:+15550100@carrier.example".to_owned(),
        to_uri: "sip:+15550199@dialtone".to_owned(),
        caller: "+15550100".to_owned(),
        callee: "+15550199".to_owned(),
        started_at: 1_700_000_000_000,
        answered_at: Some(1_700_000_000_100),
        ended_at: None,
        outcome: None,
        hangup_cause: None,
        hangup_side: None,
        codecs: Some("PCMU/8000".to_owned()),
        legs: "[]".to_owned(),
        stats: None,
        recording: None,
        // Known when the call starts; the transcript only at the end.
        persona: Some("receptionist".to_owned()),
        transcript: None,
        account_id: None,
    };
    calls.start(&started).await.expect("start");
    assert_eq!(
        calls.get("ai-call-1").await.expect("get"),
        Some(started.clone())
    );

    let ended = CallRecord {
        ended_at: Some(1_700_000_030_000),
        outcome: Some("answered".to_owned()),
        hangup_cause: Some("BYE".to_owned()),
        hangup_side: Some("caller".to_owned()),
        transcript: Some(transcript.to_owned()),
        ..started.clone()
    };
    calls.update(&ended).await.expect("end");
    assert_eq!(
        calls.get("ai-call-1").await.expect("get"),
        Some(ended.clone())
    );
    assert_eq!(calls.list(10).await.expect("list"), vec![ended.clone()]);

    // close_orphans leaves both alone; update can clear them.
    let open = CallRecord {
        id: "ai-call-2".to_owned(),
        started_at: 1_700_000_050_000,
        ..started
    };
    calls.start(&open).await.expect("start");
    assert_eq!(
        calls
            .close_orphans("node-1", 1_700_000_060_000)
            .await
            .expect("close"),
        1
    );
    let closed = calls.get("ai-call-2").await.expect("get").expect("exists");
    assert_eq!(closed.persona.as_deref(), Some("receptionist"));
    let cleared = CallRecord {
        persona: None,
        transcript: None,
        ..ended
    };
    calls.update(&cleared).await.expect("clear");
    assert_eq!(calls.get("ai-call-1").await.expect("get"), Some(cleared));
}

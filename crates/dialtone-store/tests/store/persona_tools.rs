//! Persona tools: create each kind and read it back exactly (headers in
//! order, variables with their types), conflicts per persona, refused names
//! (bad characters, global tool names) and refused API requests, list by
//! name, update, remove, the arguments' JSON schema, and removing the persona
//! removes its tools.

use dialtone_store::{
    ApiRequest, NewPersona, PersonaTool, PersonaToolKind, PersonaToolUpdate, Store, StoreError,
    ToolVariable, VariableKind, GLOBAL_TOOL_NAMES,
};
use serde_json::json;

use crate::common::TestDb;

backend_tests!(
    create_each_kind_and_read_back,
    names_conflict_per_persona_and_bad_names_are_refused,
    bad_api_requests_are_refused,
    update_and_remove,
    removing_the_persona_removes_its_tools,
);

async fn persona(store: &Store, name: &str) -> String {
    let account = store.accounts().ensure("acme").await.expect("account");
    store
        .personas()
        .create(NewPersona {
            account_id: account.id,
            name: name.to_owned(),
            provider: "openai".to_owned(),
            url: "wss://api.openai.com/v1/realtime".to_owned(),
            model: None,
            voice: None,
            instructions: "You answer calls.".to_owned(),
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
            transcription_model: None,
        })
        .await
        .expect("persona")
        .id
}

fn var(name: &str, kind: VariableKind, required: bool) -> ToolVariable {
    ToolVariable {
        name: name.to_owned(),
        kind,
        description: None,
        required,
    }
}

/// An order lookup: every feature of an API request.
fn order_lookup() -> ApiRequest {
    ApiRequest {
        method: "POST".into(),
        url: "https://shop.example/api/orders/{order_id}?lang={lang}".into(),
        headers: vec![
            ("X-Zeta".into(), "first".into()),
            ("Authorization".into(), "Bearer ${SHOP_TOKEN}".into()),
            ("Content-Type".into(), "application/json".into()),
        ],
        body: Some(r#"{"note": "{note}", "express": true}"#.into()),
        variables: vec![
            ToolVariable {
                description: Some("The order number, digits only".into()),
                ..var("order_id", VariableKind::Number, true)
            },
            var(
                "lang",
                VariableKind::Options(vec!["en".into(), "de".into()]),
                true,
            ),
            var("note", VariableKind::Text, false),
        ],
        timeout_ms: 5000,
    }
}

async fn create_each_kind_and_read_back(db: TestDb) {
    let receptionist = persona(&db.store, "receptionist").await;
    let tools = db.store.persona_tools();
    let to_alice = tools
        .create(
            &receptionist,
            "transfer_to_alice",
            "Transfer the caller to alice",
            PersonaToolKind::TransferUser {
                user: "1001".into(),
            },
        )
        .await
        .expect("transfer user");
    let to_support = tools
        .create(
            &receptionist,
            "support-queue",
            "Transfer the caller to the support queue",
            PersonaToolKind::TransferQueue {
                queue: "support".into(),
            },
        )
        .await
        .expect("transfer queue");
    let lookup = tools
        .create(
            &receptionist,
            "lookup_order",
            "Look up an order",
            PersonaToolKind::ApiRequest(order_lookup()),
        )
        .await
        .expect("api request");
    assert_eq!(lookup.kind.as_str(), "api_request");
    assert_eq!(lookup.persona_id, receptionist);
    assert_eq!(lookup.created_at, lookup.updated_at);

    assert_eq!(
        tools.get(&receptionist, "lookup_order").await.expect("get"),
        Some(lookup.clone()),
        "headers keep their order, variables their types"
    );
    assert_eq!(tools.get(&receptionist, "ghost").await.expect("get"), None);
    assert_eq!(
        tools.list_for_persona(&receptionist).await.expect("list"),
        [lookup.clone(), to_support.clone(), to_alice.clone()],
        "ordered by name"
    );
    assert!(tools
        .list_for_persona("no-such-persona")
        .await
        .expect("list")
        .is_empty());

    assert_eq!(
        lookup.input_schema(),
        json!({
            "type": "object",
            "properties": {
                "order_id": {"type": "number", "description": "The order number, digits only"},
                "lang": {"type": "string", "enum": ["en", "de"]},
                "note": {"type": "string"},
            },
            "required": ["order_id", "lang"],
            "additionalProperties": false,
        })
    );
    assert_eq!(
        to_alice.input_schema(),
        json!({"type": "object", "properties": {}, "additionalProperties": false})
    );

    // Only the variable's name is stored, never a secret.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db.url).await.expect("connect raw");
    let headers: String =
        sqlx::query_scalar("SELECT headers FROM persona_tools WHERE name = 'lookup_order'")
            .fetch_one(&pool)
            .await
            .expect("headers");
    assert_eq!(
        headers,
        r#"{"X-Zeta":"first","Authorization":"Bearer ${SHOP_TOKEN}","Content-Type":"application/json"}"#
    );
    pool.close().await;
}

async fn names_conflict_per_persona_and_bad_names_are_refused(db: TestDb) {
    let first = persona(&db.store, "first").await;
    let second = persona(&db.store, "second").await;
    let tools = db.store.persona_tools();
    let kind = || PersonaToolKind::TransferUser {
        user: "1001".into(),
    };
    tools
        .create(&first, "to_desk", "Transfer to the desk", kind())
        .await
        .expect("create");
    match tools.create(&first, "to_desk", "Again", kind()).await {
        Err(StoreError::Conflict { what }) => assert!(what.contains("to_desk"), "{what}"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    // Another persona may use the same name.
    tools
        .create(&second, "to_desk", "Transfer to the desk", kind())
        .await
        .expect("same name, other persona");

    let too_long = "x".repeat(65);
    for bad in ["", "has space", "dot.ted", "ümlaut", too_long.as_str()] {
        match tools.create(&first, bad, "Something", kind()).await {
            Err(StoreError::Invalid { reason }) => {
                assert!(reason.contains("invalid tool name"), "{bad:?}: {reason}")
            }
            other => panic!("{bad:?}: expected Invalid, got {other:?}"),
        }
    }
    tools
        .create(&first, &"x".repeat(64), "Longest name", kind())
        .await
        .expect("64 characters is fine");
    for global in GLOBAL_TOOL_NAMES {
        match tools.create(&first, global, "Shadow", kind()).await {
            Err(StoreError::Invalid { reason }) => {
                assert!(reason.contains("global tool"), "{global}: {reason}")
            }
            other => panic!("{global}: expected Invalid, got {other:?}"),
        }
    }
    match tools.create(&first, "blank", "  ", kind()).await {
        Err(StoreError::Invalid { reason }) => assert!(reason.contains("description"), "{reason}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    match tools
        .create(
            &first,
            "nobody",
            "Transfer",
            PersonaToolKind::TransferQueue { queue: "".into() },
        )
        .await
    {
        Err(StoreError::Invalid { reason }) => assert!(reason.contains("queue"), "{reason}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    match tools
        .create("no-such-persona", "orphan", "Transfer", kind())
        .await
    {
        Err(StoreError::NotFound { what }) => assert!(what.contains("persona"), "{what}"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_eq!(tools.list_for_persona(&first).await.expect("list").len(), 2);
}

async fn bad_api_requests_are_refused(db: TestDb) {
    let p = persona(&db.store, "receptionist").await;
    let tools = db.store.persona_tools();
    let cases: Vec<(ApiRequest, &str)> = vec![
        (
            ApiRequest {
                url: "ftp://shop.example/{order_id}?lang={lang}&n={note}".into(),
                ..order_lookup()
            },
            "http:// or https://",
        ),
        (
            ApiRequest {
                url: "https://{lang}.shop.example/{order_id}?n={note}".into(),
                ..order_lookup()
            },
            "host must be written out",
        ),
        (
            ApiRequest {
                method: "TRACE".into(),
                ..order_lookup()
            },
            "unknown method",
        ),
        (
            ApiRequest {
                body: Some(r#"{"note": "{note}", "who": "{customer}"}"#.into()),
                ..order_lookup()
            },
            "{customer}, which is not a declared variable",
        ),
        (
            ApiRequest {
                body: None,
                ..order_lookup()
            },
            r#"variable "note" is declared but not used"#,
        ),
        (
            ApiRequest {
                method: "GET".into(),
                ..order_lookup()
            },
            "GET request has no body",
        ),
        (
            ApiRequest {
                headers: vec![("Bad Header".into(), "x".into())],
                ..order_lookup()
            },
            "invalid header name",
        ),
        (
            ApiRequest {
                headers: vec![("X-A".into(), "1".into()), ("x-a".into(), "2".into())],
                ..order_lookup()
            },
            "given twice",
        ),
        (
            ApiRequest {
                headers: vec![("Authorization".into(), "Bearer ${TOKEN".into())],
                ..order_lookup()
            },
            "not closed",
        ),
        (
            ApiRequest {
                timeout_ms: 0,
                ..order_lookup()
            },
            "out of range",
        ),
        (
            ApiRequest {
                variables: {
                    let mut v = order_lookup().variables;
                    v[1].kind = VariableKind::Options(Vec::new());
                    v
                },
                ..order_lookup()
            },
            "at least one option",
        ),
        (
            ApiRequest {
                variables: {
                    let mut v = order_lookup().variables;
                    v.push(var("note", VariableKind::Text, true));
                    v
                },
                ..order_lookup()
            },
            "declared twice",
        ),
    ];
    for (request, message) in cases {
        match tools
            .create(
                &p,
                "t",
                "Test",
                PersonaToolKind::ApiRequest(request.clone()),
            )
            .await
        {
            Err(StoreError::Invalid { reason }) => {
                assert!(reason.contains(message), "{request:?}: {reason}")
            }
            other => panic!("{request:?}: expected Invalid ({message}), got {other:?}"),
        }
    }
    assert!(tools.list_for_persona(&p).await.expect("list").is_empty());
}

async fn update_and_remove(db: TestDb) {
    let p = persona(&db.store, "receptionist").await;
    let tools = db.store.persona_tools();
    let made = tools
        .create(
            &p,
            "to_desk",
            "Transfer to the desk",
            PersonaToolKind::TransferUser {
                user: "1001".into(),
            },
        )
        .await
        .expect("create");
    tools
        .create(
            &p,
            "other",
            "Other",
            PersonaToolKind::ApiRequest(order_lookup()),
        )
        .await
        .expect("create");
    let updated = tools
        .update(
            &p,
            "to_desk",
            PersonaToolUpdate {
                name: Some("to_front_desk".into()),
                description: Some("Transfer to the front desk".into()),
                kind: Some(PersonaToolKind::TransferUser {
                    user: "1002".into(),
                }),
            },
        )
        .await
        .expect("update");
    assert_eq!(
        updated,
        PersonaTool {
            name: "to_front_desk".into(),
            description: "Transfer to the front desk".into(),
            kind: PersonaToolKind::TransferUser {
                user: "1002".into()
            },
            updated_at: updated.updated_at,
            ..made.clone()
        }
    );
    assert!(updated.updated_at >= made.updated_at);
    assert_eq!(tools.get(&p, "to_desk").await.expect("get"), None);
    assert_eq!(
        tools.get(&p, "to_front_desk").await.expect("get"),
        Some(updated.clone())
    );
    // A kind change replaces every kind column.
    let as_api = tools
        .update(
            &p,
            "to_front_desk",
            PersonaToolUpdate {
                kind: Some(PersonaToolKind::ApiRequest(order_lookup())),
                ..Default::default()
            },
        )
        .await
        .expect("update kind");
    assert_eq!(
        tools.get(&p, "to_front_desk").await.expect("get"),
        Some(as_api)
    );
    for (changes, want) in [
        (
            PersonaToolUpdate {
                name: Some("other".into()),
                ..Default::default()
            },
            "conflict",
        ),
        (
            PersonaToolUpdate {
                name: Some("hangup_call".into()),
                ..Default::default()
            },
            "invalid",
        ),
    ] {
        let got = tools.update(&p, "to_front_desk", changes).await;
        match (want, got) {
            ("conflict", Err(StoreError::Conflict { .. })) => {}
            ("invalid", Err(StoreError::Invalid { .. })) => {}
            (want, got) => panic!("expected {want}, got {got:?}"),
        }
    }
    assert!(matches!(
        tools
            .update(&p, "ghost", PersonaToolUpdate::default())
            .await,
        Err(StoreError::NotFound { .. })
    ));

    assert!(tools.remove(&p, "to_front_desk").await.expect("remove"));
    assert!(!tools.remove(&p, "to_front_desk").await.expect("again"));
    assert_eq!(tools.list_for_persona(&p).await.expect("list").len(), 1);
}

async fn removing_the_persona_removes_its_tools(db: TestDb) {
    let gone = persona(&db.store, "gone").await;
    let kept = persona(&db.store, "kept").await;
    let tools = db.store.persona_tools();
    for p in [&gone, &kept] {
        tools
            .create(
                p,
                "lookup",
                "Look up",
                PersonaToolKind::ApiRequest(order_lookup()),
            )
            .await
            .expect("create");
    }
    assert!(db.store.personas().remove("gone").await.expect("remove"));
    assert!(tools
        .list_for_persona(&gone)
        .await
        .expect("list")
        .is_empty());
    assert_eq!(tools.list_for_persona(&kept).await.expect("list").len(), 1);
    // Re-created with the same name: a new persona with no tools.
    let again = persona(&db.store, "gone").await;
    assert!(tools
        .list_for_persona(&again)
        .await
        .expect("list")
        .is_empty());
}

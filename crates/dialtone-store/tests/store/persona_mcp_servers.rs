//! Persona MCP servers: create each transport and read it back exactly
//! (headers in order with their `${ENV}` references, the allow list), names
//! unique per persona, refused servers (bad names, a transport without what
//! it needs, reserved or malformed headers, bad allow lists, timeouts out of
//! range), list by name, get, remove, and removing the persona removes its
//! servers.

use dialtone_store::{McpTransport, NewMcpServer, NewPersona, Store, StoreError};

use crate::common::TestDb;

backend_tests!(
    create_each_transport_and_read_back,
    names_are_unique_per_persona,
    bad_servers_are_refused,
    remove_and_cascade,
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

fn crm() -> NewMcpServer {
    NewMcpServer {
        name: "crm".into(),
        transport: McpTransport::Http,
        url: Some("https://crm.example/mcp".into()),
        command: None,
        headers: vec![
            ("X-Zeta".into(), "first".into()),
            ("Authorization".into(), "Bearer ${CRM_TOKEN}".into()),
        ],
        allow: vec!["crm_lookup".into(), "crm.notes".into()],
        timeout_ms: 10_000,
    }
}

async fn create_each_transport_and_read_back(db: TestDb) {
    let rec = persona(&db.store, "rec").await;
    let servers = db.store.persona_mcp_servers();
    let http = servers.create(&rec, crm()).await.expect("http");
    assert_eq!(http.name, "crm");
    let sse = servers
        .create(
            &rec,
            NewMcpServer {
                name: "calendar".into(),
                transport: McpTransport::Sse,
                url: Some("http://127.0.0.1:9000/sse".into()),
                headers: vec![],
                allow: vec![],
                timeout_ms: 500,
                ..crm()
            },
        )
        .await
        .expect("sse");
    let stdio = servers
        .create(
            &rec,
            NewMcpServer {
                name: "local_files".into(),
                transport: McpTransport::Stdio,
                url: None,
                command: Some("python3 -u 'my server.py' --root /srv".into()),
                headers: vec![],
                allow: vec![],
                timeout_ms: 120_000,
            },
        )
        .await
        .expect("stdio");

    let listed = servers.list_for_persona(&rec).await.expect("list");
    assert_eq!(listed, vec![sse.clone(), http.clone(), stdio.clone()]);
    let got = servers.get(&rec, "crm").await.expect("get").expect("there");
    assert_eq!(got, http);
    assert_eq!(
        got.headers,
        [
            ("X-Zeta".to_owned(), "first".to_owned()),
            ("Authorization".to_owned(), "Bearer ${CRM_TOKEN}".to_owned()),
        ]
    );
    assert_eq!(got.allow, ["crm_lookup", "crm.notes"]);
    assert_eq!(got.transport, McpTransport::Http);
    assert_eq!(
        servers
            .get(&rec, "local_files")
            .await
            .expect("get")
            .and_then(|s| s.command),
        Some("python3 -u 'my server.py' --root /srv".to_owned())
    );
    assert!(servers.get(&rec, "nope").await.expect("get").is_none());
}

async fn names_are_unique_per_persona(db: TestDb) {
    let rec = persona(&db.store, "rec").await;
    let other = persona(&db.store, "other").await;
    let servers = db.store.persona_mcp_servers();
    servers.create(&rec, crm()).await.expect("first");
    match servers.create(&rec, crm()).await {
        Err(StoreError::Conflict { what }) => assert!(what.contains("crm"), "{what}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    // The same name on another persona is fine.
    servers.create(&other, crm()).await.expect("other persona");
    match servers.create("no-such-persona", crm()).await {
        Err(StoreError::NotFound { what }) => assert!(what.contains("persona"), "{what}"),
        other => panic!("expected not found, got {other:?}"),
    }
}

async fn bad_servers_are_refused(db: TestDb) {
    let rec = persona(&db.store, "rec").await;
    let servers = db.store.persona_mcp_servers();
    let cases: Vec<(NewMcpServer, &str)> = vec![
        (
            NewMcpServer {
                name: "CRM".into(),
                ..crm()
            },
            "invalid MCP server name",
        ),
        (
            NewMcpServer {
                name: "a".repeat(33),
                ..crm()
            },
            "invalid MCP server name",
        ),
        (NewMcpServer { url: None, ..crm() }, "needs a URL"),
        (
            NewMcpServer {
                url: Some("ftp://crm.example".into()),
                ..crm()
            },
            "http:// or https://",
        ),
        (
            NewMcpServer {
                command: Some("crm-server".into()),
                ..crm()
            },
            "for transport stdio",
        ),
        (
            NewMcpServer {
                transport: McpTransport::Stdio,
                url: None,
                headers: vec![],
                ..crm()
            },
            "needs a command line",
        ),
        (
            NewMcpServer {
                transport: McpTransport::Stdio,
                url: None,
                command: Some("python3 'server.py".into()),
                headers: vec![],
                ..crm()
            },
            "unclosed",
        ),
        (
            NewMcpServer {
                transport: McpTransport::Stdio,
                url: None,
                command: Some("server".into()),
                ..crm()
            },
            "sends no HTTP headers",
        ),
        (
            NewMcpServer {
                headers: vec![("Mcp-Session-Id".into(), "x".into())],
                ..crm()
            },
            "set by the MCP transport",
        ),
        (
            NewMcpServer {
                headers: vec![("Authorization".into(), "Bearer ${CRM_TOKEN".into())],
                ..crm()
            },
            "not closed",
        ),
        (
            NewMcpServer {
                headers: vec![("Bad Name".into(), "x".into())],
                ..crm()
            },
            "invalid header name",
        ),
        (
            NewMcpServer {
                allow: vec!["a b".into()],
                ..crm()
            },
            "allow list",
        ),
        (
            NewMcpServer {
                allow: vec!["x".into(), "x".into()],
                ..crm()
            },
            "twice",
        ),
        (
            NewMcpServer {
                timeout_ms: 50,
                ..crm()
            },
            "out of range",
        ),
    ];
    for (server, expected) in cases {
        match servers.create(&rec, server.clone()).await {
            Err(StoreError::Invalid { reason }) => {
                assert!(reason.contains(expected), "{reason:?} for {server:?}")
            }
            other => panic!("expected {expected:?} for {server:?}, got {other:?}"),
        }
    }
    assert!(servers
        .list_for_persona(&rec)
        .await
        .expect("list")
        .is_empty());
}

async fn remove_and_cascade(db: TestDb) {
    let rec = persona(&db.store, "rec").await;
    let servers = db.store.persona_mcp_servers();
    servers.create(&rec, crm()).await.expect("crm");
    servers
        .create(
            &rec,
            NewMcpServer {
                name: "calendar".into(),
                ..crm()
            },
        )
        .await
        .expect("calendar");
    assert!(servers.remove(&rec, "crm").await.expect("remove"));
    assert!(!servers.remove(&rec, "crm").await.expect("remove again"));
    let left: Vec<String> = servers
        .list_for_persona(&rec)
        .await
        .expect("list")
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(left, ["calendar"]);
    assert!(db
        .store
        .personas()
        .remove("rec")
        .await
        .expect("remove persona"));
    assert!(servers
        .list_for_persona(&rec)
        .await
        .expect("list")
        .is_empty());
}

//! The client against in-process servers on loopback (`servers`): tools
//! offered under their prefixed names (the allow list, names that cannot be
//! offered), calls answered, failed and timed out, the bearer header with
//! its `${ENV}` resolved, both HTTP transports, servers that refuse, are
//! down or never answer reported within the budget; and the pure pieces
//! (event parsing, the endpoint's origin, `${NAME}` resolution, results
//! into replies).

#![allow(clippy::unwrap_used)]

mod servers;

use std::time::{Duration, Instant};

use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::json;

use super::connect::{resolve_env, Unresolved};
use super::sse::{endpoint_url, SseEvent, SseParser};
use super::{reply, ExternalServer, ExternalTools, ServerTransport};

fn server(name: &str, transport: ServerTransport) -> ExternalServer {
    ExternalServer {
        name: name.into(),
        transport,
        headers: Vec::new(),
        allow: Vec::new(),
        timeout: Duration::from_secs(2),
    }
}

fn names(tools: &ExternalTools) -> Vec<String> {
    let mut n: Vec<String> = tools.specs().into_iter().map(|s| s.name).collect();
    n.sort();
    n
}

async fn call(tools: &ExternalTools, name: &str, args: serde_json::Value) -> super::ToolReply {
    tools
        .call(name, &args.to_string())
        .expect("one of the external tools")
        .await
}

#[tokio::test]
async fn streamable_http_tools_are_offered_prefixed_and_called() {
    let crm = servers::streamable_http(None).await;
    let (tools, failures) = ExternalTools::connect(
        vec![server(
            "crm",
            ServerTransport::Http {
                url: crm.url.clone(),
            },
        )],
        Duration::from_secs(5),
    )
    .await;
    assert!(failures.is_empty(), "{failures:?}");
    // "bad.name" and the 70-character name cannot be function names.
    assert_eq!(
        names(&tools),
        ["crm__crm_fail", "crm__crm_lookup", "crm__crm_slow"]
    );
    let lookup = tools
        .specs()
        .into_iter()
        .find(|s| s.name == "crm__crm_lookup")
        .unwrap();
    assert_eq!(lookup.description, "Look a customer up");
    assert_eq!(
        lookup.parameters,
        json!({"type": "object", "properties": {"customer_id": {"type": "string"}},
               "required": ["customer_id"]})
    );
    let reply = call(&tools, "crm__crm_lookup", json!({"customer_id": "42"})).await;
    assert!(reply.ok, "{reply:?}");
    assert_eq!(reply.output, "customer 42: gold customer");
    let failed = call(&tools, "crm__crm_fail", json!({})).await;
    assert!(!failed.ok);
    assert_eq!(failed.output, "error: no such customer");
    let bad = tools.call("crm__crm_lookup", "[1]").unwrap().await;
    assert!(!bad.ok && bad.output.contains("JSON object"), "{bad:?}");
    assert!(tools.call("transfer_call", "{}").is_none());
    assert!(tools.call("crm__bad.name", "{}").is_none());
    tools.close().await;
}

#[tokio::test]
async fn a_slow_tool_times_out_with_its_servers_timeout() {
    let crm = servers::streamable_http(None).await;
    let (tools, failures) = ExternalTools::connect(
        vec![ExternalServer {
            timeout: Duration::from_millis(300),
            ..server(
                "crm",
                ServerTransport::Http {
                    url: crm.url.clone(),
                },
            )
        }],
        Duration::from_secs(5),
    )
    .await;
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(
        tools.timeout("crm__crm_slow"),
        Some(Duration::from_millis(300))
    );
    let t0 = Instant::now();
    let reply = call(&tools, "crm__crm_slow", json!({})).await;
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    assert!(!reply.ok);
    assert_eq!(
        reply.output,
        "error: the crm server did not answer within 300 ms"
    );
    // The server still answers the next call.
    let reply = call(&tools, "crm__crm_lookup", json!({"customer_id": "7"})).await;
    assert!(reply.ok, "{reply:?}");
}

#[tokio::test]
async fn the_allow_list_picks_the_tools() {
    let crm = servers::streamable_http(None).await;
    let (tools, failures) = ExternalTools::connect(
        vec![ExternalServer {
            allow: vec!["crm_lookup".into(), "not_there".into()],
            ..server(
                "crm",
                ServerTransport::Http {
                    url: crm.url.clone(),
                },
            )
        }],
        Duration::from_secs(5),
    )
    .await;
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(names(&tools), ["crm__crm_lookup"]);
    assert!(tools.call("crm__crm_fail", "{}").is_none());
}

#[tokio::test]
async fn bearer_headers_are_resolved_from_the_environment() {
    let var = "DIALTONE_MCP_CLIENT_TEST_TOKEN_1";
    std::env::set_var(var, "s3cret");
    let crm = servers::streamable_http(Some("s3cret")).await;
    let calendar = servers::legacy_sse(Some("s3cret")).await;
    let with = |name: &str, transport, value: &str| ExternalServer {
        headers: vec![("Authorization".into(), value.into())],
        ..server(name, transport)
    };
    let http = |url: &str| ServerTransport::Http { url: url.into() };
    let sse = |url: &str| ServerTransport::Sse { url: url.into() };
    let good = format!("Bearer ${{{var}}}");
    let listed = vec![
        with("crm", http(&crm.url), &good),
        with("calendar", sse(&calendar.url), &good),
        with("crm_wrong", http(&crm.url), "Bearer nope"),
        with("cal_wrong", sse(&calendar.url), "Bearer nope"),
        with(
            "unset",
            http(&crm.url),
            "Bearer ${DIALTONE_MCP_CLIENT_TEST_UNSET}",
        ),
    ];
    // Debug shows the header's name, never its value.
    let shown = format!("{:?}", listed[2]);
    assert!(
        shown.contains("Authorization") && !shown.contains("nope"),
        "{shown}"
    );
    let (tools, failures) = ExternalTools::connect(listed, Duration::from_secs(5)).await;
    let mut failed: Vec<&str> = failures.iter().map(|(n, _)| n.as_str()).collect();
    failed.sort();
    assert_eq!(failed, ["cal_wrong", "crm_wrong", "unset"], "{failures:?}");
    let why = |n: &str| &failures.iter().find(|(f, _)| f == n).unwrap().1;
    assert_eq!(
        why("unset"),
        "environment variable DIALTONE_MCP_CLIENT_TEST_UNSET (used in header Authorization) is not set"
    );
    assert!(why("cal_wrong").contains("401"), "{}", why("cal_wrong"));
    assert!(why("crm_wrong").contains("401"), "{}", why("crm_wrong"));
    for (_, reason) in &failures {
        assert!(
            !reason.contains("s3cret") && !reason.contains("nope"),
            "{reason}"
        );
    }
    let reply = call(&tools, "calendar__crm_lookup", json!({"customer_id": "9"})).await;
    assert_eq!(reply.output, "customer 9: gold customer");
    let reply = call(&tools, "crm__crm_lookup", json!({"customer_id": "8"})).await;
    assert_eq!(reply.output, "customer 8: gold customer");
    tools.close().await;
}

#[tokio::test]
async fn the_legacy_sse_transport_calls_tools() {
    let calendar = servers::legacy_sse(None).await;
    let (tools, failures) = ExternalTools::connect(
        vec![server(
            "cal",
            ServerTransport::Sse {
                url: calendar.url.clone(),
            },
        )],
        Duration::from_secs(5),
    )
    .await;
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(
        names(&tools),
        ["cal__crm_fail", "cal__crm_lookup", "cal__crm_slow"]
    );
    // Two calls at once: each answer finds its caller.
    let (a, b) = tokio::join!(
        call(&tools, "cal__crm_lookup", json!({"customer_id": "1"})),
        call(&tools, "cal__crm_lookup", json!({"customer_id": "2"})),
    );
    assert_eq!(a.output, "customer 1: gold customer");
    assert_eq!(b.output, "customer 2: gold customer");
    let failed = call(&tools, "cal__crm_fail", json!({})).await;
    assert!(!failed.ok);
}

#[tokio::test]
async fn servers_that_are_down_or_silent_are_reported_within_the_budget() {
    // A port nobody listens on, one that accepts but never answers, a
    // command that does not exist, one that exits at once, and a good one.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let crm = servers::streamable_http(None).await;
    let listed = vec![
        server(
            "down",
            ServerTransport::Http {
                url: format!("http://{closed}/mcp"),
            },
        ),
        server(
            "silent",
            ServerTransport::Sse {
                url: format!("http://{silent_addr}/sse"),
            },
        ),
        server(
            "nocmd",
            ServerTransport::Stdio {
                program: "/nonexistent/mcp-server".into(),
                args: vec![],
            },
        ),
        server(
            "quits",
            ServerTransport::Stdio {
                program: "true".into(),
                args: vec![],
            },
        ),
        server(
            "crm",
            ServerTransport::Http {
                url: crm.url.clone(),
            },
        ),
    ];
    let t0 = Instant::now();
    let (tools, failures) = ExternalTools::connect(listed, Duration::from_millis(1500)).await;
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    let why = |n: &str| {
        failures
            .iter()
            .find(|(f, _)| f == n)
            .map(|(_, w)| w.clone())
            .unwrap_or_default()
    };
    assert_eq!(failures.len(), 4, "{failures:?}");
    assert!(
        why("down").starts_with("the MCP handshake failed: cannot connect: "),
        "{}",
        why("down")
    );
    assert_eq!(why("silent"), "no answer within 1500 ms");
    assert!(
        why("nocmd").starts_with("cannot start the command"),
        "{}",
        why("nocmd")
    );
    assert!(
        why("quits").starts_with("the MCP handshake failed"),
        "{}",
        why("quits")
    );
    assert_eq!(names(&tools).len(), 3);
    drop(silent);
}

#[tokio::test]
async fn built_in_names_win() {
    let crm = servers::streamable_http(None).await;
    let (mut tools, _) = ExternalTools::connect(
        vec![server(
            "crm",
            ServerTransport::Http {
                url: crm.url.clone(),
            },
        )],
        Duration::from_secs(5),
    )
    .await;
    tools.remove_names(|n| n == "crm__crm_fail");
    assert_eq!(names(&tools), ["crm__crm_lookup", "crm__crm_slow"]);
    assert!(tools.call("crm__crm_fail", "{}").is_none());
}

#[test]
fn events_are_parsed_across_chunks_and_line_endings() {
    let mut p = SseParser::default();
    let mut events = Vec::new();
    let stream = b": comment\r\nevent: endpoint\r\ndata: /messages/?session_id=1\r\n\r\n\
        data: {\"a\":\ndata: 1}\n\nevent: ping\rdata\r\r";
    for chunk in stream.chunks(5) {
        events.extend(p.feed(chunk).unwrap());
    }
    assert_eq!(
        events,
        [
            SseEvent {
                event: "endpoint".into(),
                data: "/messages/?session_id=1".into()
            },
            SseEvent {
                event: "message".into(),
                data: "{\"a\":\n1}".into()
            },
            SseEvent {
                event: "ping".into(),
                data: String::new()
            },
        ]
    );
    // An event with no data is not dispatched.
    assert!(p.feed(b"event: x\n\n").unwrap().is_empty());
    let huge = vec![b'a'; 5 * 1024 * 1024];
    assert!(SseParser::default().feed(&huge).is_err());
}

#[test]
fn the_message_endpoint_stays_on_the_streams_origin() {
    let base = reqwest::Url::parse("http://127.0.0.1:9000/mcp/sse").unwrap();
    let url = |e: &str| endpoint_url(&base, e).map(|u| u.to_string());
    assert_eq!(
        url("/messages/?session_id=abc").unwrap(),
        "http://127.0.0.1:9000/messages/?session_id=abc"
    );
    assert_eq!(
        url("messages?s=1").unwrap(),
        "http://127.0.0.1:9000/mcp/messages?s=1"
    );
    assert_eq!(
        url("http://127.0.0.1:9000/m").unwrap(),
        "http://127.0.0.1:9000/m"
    );
    assert!(url("http://evil.example/m").is_err());
    assert!(url("http://127.0.0.1:9001/m").is_err());
}

#[test]
fn env_references_are_resolved() {
    let env = |v: &str| match v {
        "TOKEN" => Some("abc".to_owned()),
        "EMPTY" => Some(String::new()),
        _ => None,
    };
    assert_eq!(resolve_env("Bearer ${TOKEN}", env).unwrap(), "Bearer abc");
    assert_eq!(resolve_env("${TOKEN}-${TOKEN}", env).unwrap(), "abc-abc");
    assert_eq!(resolve_env("a $ {x} $", env).unwrap(), "a $ {x} $");
    assert_eq!(
        resolve_env("${NOPE}", env),
        Err(Unresolved::Missing("NOPE".into()))
    );
    assert_eq!(
        resolve_env("${EMPTY}", env),
        Err(Unresolved::Missing("EMPTY".into()))
    );
    assert!(matches!(
        resolve_env("${TOKEN", env),
        Err(Unresolved::Malformed(_))
    ));
    assert!(matches!(
        resolve_env("${1X}", env),
        Err(Unresolved::Malformed(_))
    ));
}

#[test]
fn results_become_replies() {
    let mut result = CallToolResult::success(vec![
        ContentBlock::text("one"),
        ContentBlock::image("AAAA", "image/png"),
        ContentBlock::text("two"),
    ]);
    let r = reply::from_result(&result);
    assert!(r.ok);
    assert_eq!(r.output, "one\n[an image (image/png)]\ntwo");
    result.content.clear();
    result.structured_content = Some(json!({"tier": "gold"}));
    assert_eq!(reply::from_result(&result).output, r#"{"tier":"gold"}"#);
    let long = CallToolResult::success(vec![ContentBlock::text("é".repeat(20_000))]);
    let r = reply::from_result(&long);
    assert!(r.output.len() <= reply::MAX_OUTPUT + 16 && r.output.ends_with("(cut)"));
}

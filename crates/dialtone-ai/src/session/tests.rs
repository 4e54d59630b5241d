//! The driver against an in-process websocket server on 127.0.0.1: the
//! handshake carries the key, the opening messages arrive, connect returns
//! after ready; HTTP errors, silence, refusal and early errors fail with the
//! right [`ConnectError`]; commands arrive in order; pings are answered; a
//! close from either side ends the events with [`ServerEvent::Closed`].

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderMap;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::connect;
use crate::error::{ConnectError, SessionClosed};
use crate::protocol::{ClientCommand, HistoryItem, Provider, Role, ServerEvent, SessionConfig};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;
type Peer = WebSocketStream<TcpStream>;

/// Long enough for a loaded CI machine, short enough to fail a hung test.
const WAIT: Duration = Duration::from_secs(10);

async fn listener() -> Result<(TcpListener, String), std::io::Error> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("ws://{}/v1/realtime", l.local_addr()?);
    Ok((l, url))
}

/// Accepts one websocket, returning it with the handshake's URI and headers.
// The callback's error type is tungstenite's (an HTTP response), not ours.
#[allow(clippy::result_large_err)]
async fn accept(
    l: &TcpListener,
) -> Result<(Peer, String, HeaderMap), tokio_tungstenite::tungstenite::Error> {
    let (tcp, _) = l.accept().await?;
    let mut seen = None;
    let ws = tokio_tungstenite::accept_hdr_async(tcp, |req: &Request, resp: Response| {
        seen = Some((req.uri().to_string(), req.headers().clone()));
        Ok(resp)
    })
    .await?;
    let (uri, headers) = seen.unwrap_or_default();
    Ok((ws, uri, headers))
}

/// The next text message's JSON (pings and pongs skipped).
async fn next_json(ws: &mut Peer) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await?
            .ok_or("the client went away")??;
        match msg {
            Message::Text(t) => return Ok(serde_json::from_str(t.as_str())?),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => return Err(format!("expected text, got {other:?}").into()),
        }
    }
}

async fn send_json(ws: &mut Peer, v: Value) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    ws.send(Message::text(v.to_string())).await
}

async fn next_event(
    rx: &mut UnboundedReceiver<ServerEvent>,
) -> Result<Option<ServerEvent>, tokio::time::error::Elapsed> {
    tokio::time::timeout(WAIT, rx.recv()).await
}

fn openai(url: &str) -> SessionConfig {
    let mut cfg = SessionConfig::new(Provider::OpenAi, url);
    cfg.api_key = Some("sk-test-key".into());
    cfg.connect_timeout = WAIT;
    cfg
}

/// Accepts, reads the session.update, answers created + updated; returns
/// the socket and the handshake.
async fn openai_server(
    l: &TcpListener,
) -> Result<(Peer, String, HeaderMap, Value), Box<dyn std::error::Error + Send + Sync>> {
    let (mut ws, uri, headers) = accept(l).await?;
    let update = next_json(&mut ws).await?;
    send_json(&mut ws, json!({"type": "session.created", "session": {}})).await?;
    send_json(&mut ws, json!({"type": "session.updated", "session": {}})).await?;
    Ok((ws, uri, headers, update))
}

#[tokio::test]
async fn openai_connect_sends_key_and_open_messages() -> TestResult {
    let (l, url) = listener().await?;
    let server = tokio::spawn(async move {
        let (mut ws, uri, headers) = accept(&l).await?;
        let first = next_json(&mut ws).await?;
        let second = next_json(&mut ws).await?;
        // Not ready before session.updated: an event sent before it is not
        // forwarded, one sent after it is.
        send_json(&mut ws, json!({"type": "session.created", "session": {}})).await?;
        send_json(&mut ws, json!({"type": "session.updated", "session": {}})).await?;
        send_json(
            &mut ws,
            json!({"type": "input_audio_buffer.speech_stopped"}),
        )
        .await?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>((ws, uri, headers, first, second))
    });
    let mut cfg = openai(&url);
    cfg.history = vec![HistoryItem {
        role: Role::User,
        text: "hello".into(),
    }];
    let (handle, mut events) = connect(cfg).await?;
    assert_eq!(handle.provider(), Provider::OpenAi);
    assert!(!handle.is_closed());
    assert_eq!(
        next_event(&mut events).await?,
        Some(ServerEvent::SpeechStopped)
    );

    let (_ws, uri, headers, first, second) = server.await??;
    assert_eq!(uri, "/v1/realtime?model=gpt-realtime");
    assert_eq!(
        headers.get("authorization").map(|v| v.as_bytes()),
        Some(&b"Bearer sk-test-key"[..])
    );
    assert_eq!(first["type"], "session.update");
    assert_eq!(first["session"]["model"], "gpt-realtime");
    assert_eq!(second["type"], "conversation.item.create");
    assert_eq!(second["item"]["content"][0]["text"], "hello");
    Ok(())
}

#[tokio::test]
async fn gemini_connect_uses_the_header_and_binary_frames() -> TestResult {
    let (l, url) = listener().await?;
    let server = tokio::spawn(async move {
        let (mut ws, uri, headers) = accept(&l).await?;
        let setup = next_json(&mut ws).await?;
        ws.send(Message::binary(br#"{"setupComplete":{}}"#.to_vec()))
            .await?;
        let audio = br#"{"serverContent":{"modelTurn":{"parts":[{"inlineData":{"mimeType":"audio/pcm;rate=24000","data":"AQID"}}]}}}"#;
        ws.send(Message::binary(audio.to_vec())).await?;
        let input = next_json(&mut ws).await?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>((uri, headers, setup, input))
    });
    let mut cfg = SessionConfig::new(Provider::Gemini, url.clone());
    cfg.api_key = Some("AIza-key".into());
    cfg.connect_timeout = WAIT;
    let (handle, mut events) = connect(cfg).await?;
    assert_eq!(
        next_event(&mut events).await?,
        Some(ServerEvent::ResponseStarted { response_id: None })
    );
    assert_eq!(
        next_event(&mut events).await?,
        Some(ServerEvent::Audio {
            item_id: None,
            data: vec![1, 2, 3]
        })
    );
    handle.send(ClientCommand::Audio(vec![9, 9]))?;
    let (uri, headers, setup, input) = server.await??;
    assert_eq!(uri, "/v1/realtime");
    assert_eq!(
        headers.get("x-goog-api-key").map(|v| v.as_bytes()),
        Some(&b"AIza-key"[..])
    );
    assert!(setup.get("setup").is_some());
    assert_eq!(input["realtimeInput"]["audio"]["data"], "CQk=");
    Ok(())
}

#[tokio::test]
async fn http_401_at_the_handshake() -> TestResult {
    let (l, url) = listener().await?;
    tokio::spawn(async move {
        if let Ok((mut tcp, _)) = l.accept().await {
            let mut buf = [0u8; 4096];
            let _ = tcp.read(&mut buf).await;
            let _ = tcp
                .write_all(
                    b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
        }
    });
    let err = connect(openai(&url)).await.err();
    assert_eq!(err, Some(ConnectError::Http { status: 401 }));
    assert_eq!(
        err.map(|e| e.to_string()).unwrap_or_default(),
        "the model refused the connection: HTTP 401"
    );
    Ok(())
}

#[tokio::test]
async fn silent_server_times_out() -> TestResult {
    let (l, url) = listener().await?;
    let hold = tokio::spawn(async move {
        // Accept and never answer: no handshake response at all.
        let conn = l.accept().await;
        tokio::time::sleep(WAIT).await;
        drop(conn);
    });
    let mut cfg = openai(&url);
    cfg.connect_timeout = Duration::from_millis(300);
    let started = std::time::Instant::now();
    let err = connect(cfg).await.err();
    assert_eq!(err, Some(ConnectError::Timeout));
    assert!(started.elapsed() < WAIT);
    hold.abort();
    Ok(())
}

#[tokio::test]
async fn ready_never_comes_times_out() -> TestResult {
    let (l, url) = listener().await?;
    let hold = tokio::spawn(async move {
        // The handshake succeeds but session.updated never comes.
        let peer = accept(&l).await;
        tokio::time::sleep(WAIT).await;
        drop(peer);
    });
    let mut cfg = openai(&url);
    cfg.connect_timeout = Duration::from_millis(300);
    assert_eq!(connect(cfg).await.err(), Some(ConnectError::Timeout));
    hold.abort();
    Ok(())
}

#[tokio::test]
async fn connection_refused() -> TestResult {
    let (l, url) = listener().await?;
    drop(l);
    match connect(openai(&url)).await {
        Err(ConnectError::Refused(why)) => assert!(!why.is_empty()),
        other => panic!("expected Refused, got {:?}", other.err()),
    }
    Ok(())
}

#[tokio::test]
async fn wss_to_a_plain_server_is_refused_not_a_panic() -> TestResult {
    // Exercises the rustls set-up (crypto provider, webpki roots) without
    // the network: the "server" answers the TLS hello with plain HTTP.
    let (l, url) = listener().await?;
    tokio::spawn(async move {
        if let Ok((mut tcp, _)) = l.accept().await {
            let mut buf = [0u8; 4096];
            let _ = tcp.read(&mut buf).await;
            let _ = tcp.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        }
    });
    let url = url.replacen("ws://", "wss://", 1);
    match connect(openai(&url)).await {
        Err(ConnectError::Refused(why)) => assert!(!why.is_empty()),
        other => panic!("expected Refused, got {:?}", other.err()),
    }
    Ok(())
}

#[tokio::test]
async fn bad_urls() {
    for url in [
        "http://127.0.0.1:1/x",
        "not a url",
        "ws://",
        "wss://:9/x?key=secret",
    ] {
        match connect(openai(url)).await {
            Err(ConnectError::BadUrl(why)) => assert!(!why.contains("secret"), "{why}"),
            other => panic!("{url}: expected BadUrl, got {:?}", other.err()),
        }
    }
}

#[tokio::test]
async fn error_before_ready_is_a_rejection() -> TestResult {
    let (l, url) = listener().await?;
    tokio::spawn(async move {
        let (mut ws, _, _) = accept(&l).await?;
        next_json(&mut ws).await?;
        let err = json!({"type": "error", "error": {"type": "invalid_request_error",
            "code": "model_not_found", "message": "The model does not exist"}});
        send_json(&mut ws, err).await?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(ws)
    });
    let err = connect(openai(&url)).await.err();
    assert_eq!(
        err,
        Some(ConnectError::Rejected(
            "The model does not exist (model_not_found)".into()
        ))
    );
    Ok(())
}

#[tokio::test]
async fn close_before_ready_is_a_rejection() -> TestResult {
    let (l, url) = listener().await?;
    tokio::spawn(async move {
        let (mut ws, _, _) = accept(&l).await?;
        next_json(&mut ws).await?;
        let frame = CloseFrame {
            code: CloseCode::Policy,
            reason: "models/nope is not found".into(),
        };
        ws.close(Some(frame)).await?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    });
    let mut cfg = SessionConfig::new(Provider::Gemini, url);
    cfg.connect_timeout = WAIT;
    let err = connect(cfg).await.err();
    assert_eq!(
        err,
        Some(ConnectError::Rejected(
            "the model closed the connection: models/nope is not found (code 1008)".into()
        ))
    );
    Ok(())
}

#[tokio::test]
async fn commands_arrive_in_order() -> TestResult {
    let (l, url) = listener().await?;
    let server = tokio::spawn(async move {
        let (mut ws, _, _, _) = openai_server(&l).await?;
        let mut got = Vec::new();
        for _ in 0..23 {
            got.push(next_json(&mut ws).await?);
        }
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(got)
    });
    let (handle, _events) = connect(openai(&url)).await?;
    for i in 0..20u8 {
        handle.send(ClientCommand::Audio(vec![i; 160]))?;
    }
    handle.send(ClientCommand::ToolResult {
        call_id: "call_1".into(),
        name: "transfer_call".into(),
        output: "done".into(),
    })?;
    handle.send(ClientCommand::CancelResponse)?;
    let got = server.await??;
    for (i, msg) in got.iter().take(20).enumerate() {
        assert_eq!(msg["type"], "input_audio_buffer.append");
        let expected = crate::json::base64(&[u8::try_from(i)?; 160]);
        assert_eq!(msg["audio"], Value::String(expected));
    }
    assert_eq!(got[20]["type"], "conversation.item.create");
    assert_eq!(got[20]["item"]["call_id"], "call_1");
    assert_eq!(got[21]["type"], "response.create");
    assert_eq!(got[22]["type"], "response.cancel");
    Ok(())
}

#[tokio::test]
async fn undecodable_messages_are_skipped() -> TestResult {
    let (l, url) = listener().await?;
    tokio::spawn(async move {
        let (mut ws, _, _, _) = openai_server(&l).await?;
        ws.send(Message::text("this is not json")).await?;
        send_json(
            &mut ws,
            json!({"type": "response.output_audio.delta", "delta": "!!"}),
        )
        .await?;
        send_json(
            &mut ws,
            json!({"type": "input_audio_buffer.speech_stopped"}),
        )
        .await?;
        tokio::time::sleep(WAIT).await;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    });
    let (_handle, mut events) = connect(openai(&url)).await?;
    assert_eq!(
        next_event(&mut events).await?,
        Some(ServerEvent::SpeechStopped)
    );
    Ok(())
}

#[tokio::test]
async fn pings_are_answered() -> TestResult {
    let (l, url) = listener().await?;
    let server = tokio::spawn(async move {
        let (mut ws, _, _, _) = openai_server(&l).await?;
        ws.send(Message::Ping(b"are you there".to_vec().into()))
            .await?;
        loop {
            let msg = tokio::time::timeout(WAIT, ws.next())
                .await?
                .ok_or("the client went away")??;
            if let Message::Pong(payload) = msg {
                return Ok::<_, Box<dyn std::error::Error + Send + Sync>>(payload.to_vec());
            }
        }
    });
    let (_handle, _events) = connect(openai(&url)).await?;
    assert_eq!(server.await??, b"are you there".to_vec());
    Ok(())
}

#[tokio::test]
async fn server_close_is_the_last_event() -> TestResult {
    let (l, url) = listener().await?;
    tokio::spawn(async move {
        let (mut ws, _, _, _) = openai_server(&l).await?;
        send_json(
            &mut ws,
            json!({"type": "response.created", "response": {"id": "r1"}}),
        )
        .await?;
        let frame = CloseFrame {
            code: CloseCode::Away,
            reason: "session expired".into(),
        };
        ws.close(Some(frame)).await?;
        // Read until the client's close answer ends the stream.
        while let Some(Ok(_)) = ws.next().await {}
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    });
    let (handle, mut events) = connect(openai(&url)).await?;
    assert_eq!(
        next_event(&mut events).await?,
        Some(ServerEvent::ResponseStarted {
            response_id: Some("r1".into())
        })
    );
    assert_eq!(
        next_event(&mut events).await?,
        Some(ServerEvent::Closed {
            reason: "the model closed the connection: session expired (code 1001)".into()
        })
    );
    assert_eq!(next_event(&mut events).await?, None);
    assert!(handle.is_closed());
    assert_eq!(
        handle.send(ClientCommand::CancelResponse),
        Err(SessionClosed)
    );
    Ok(())
}

#[tokio::test]
async fn dropped_tcp_is_a_closed_event() -> TestResult {
    let (l, url) = listener().await?;
    tokio::spawn(async move {
        let (ws, _, _, _) = openai_server(&l).await?;
        drop(ws);
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    });
    let (_handle, mut events) = connect(openai(&url)).await?;
    match next_event(&mut events).await? {
        Some(ServerEvent::Closed { reason }) => assert!(!reason.is_empty()),
        other => panic!("expected Closed, got {other:?}"),
    }
    assert_eq!(next_event(&mut events).await?, None);
    Ok(())
}

#[tokio::test]
async fn close_command_sends_a_close_frame() -> TestResult {
    let (l, url) = listener().await?;
    let server = tokio::spawn(async move {
        let (mut ws, _, _, _) = openai_server(&l).await?;
        let mut seen = Vec::new();
        while let Some(msg) = tokio::time::timeout(WAIT, ws.next()).await? {
            match msg? {
                Message::Close(frame) => {
                    seen.push(format!("close {:?}", frame.map(|f| u16::from(f.code))));
                }
                Message::Text(t) => seen.push(t.as_str().to_string()),
                _ => {}
            }
        }
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(seen)
    });
    let (handle, mut events) = connect(openai(&url)).await?;
    handle.send(ClientCommand::CancelResponse)?;
    handle.send(ClientCommand::Close)?;
    assert!(handle.is_closed());
    assert_eq!(
        handle.send(ClientCommand::CancelResponse),
        Err(SessionClosed)
    );
    assert_eq!(
        next_event(&mut events).await?,
        Some(ServerEvent::Closed {
            reason: "closed by dialtone".into()
        })
    );
    assert_eq!(next_event(&mut events).await?, None);
    let seen = server.await??;
    assert_eq!(
        seen,
        vec![
            r#"{"type":"response.cancel"}"#.to_string(),
            "close Some(1000)".into()
        ]
    );
    Ok(())
}

#[tokio::test]
async fn dropping_every_handle_closes_the_socket() -> TestResult {
    let (l, url) = listener().await?;
    let server = tokio::spawn(async move {
        let (mut ws, _, _, _) = openai_server(&l).await?;
        loop {
            match tokio::time::timeout(WAIT, ws.next()).await? {
                Some(Ok(Message::Close(_))) => {
                    return Ok::<_, Box<dyn std::error::Error + Send + Sync>>(true)
                }
                Some(Ok(_)) => continue,
                _ => return Ok(false),
            }
        }
    });
    let (handle, mut events) = connect(openai(&url)).await?;
    let clone = handle.clone();
    drop(handle);
    drop(clone);
    assert!(server.await??);
    assert!(matches!(
        next_event(&mut events).await?,
        Some(ServerEvent::Closed { .. })
    ));
    Ok(())
}

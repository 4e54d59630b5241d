//! The legacy HTTP+SSE transport of MCP (protocol revision 2024-11-05),
//! beside Streamable HTTP, for clients that only speak it. `GET /sse`
//! opens a session and answers with an event stream whose first event,
//! `endpoint`, names where to POST (`/sse/message?sessionId=ID`); each
//! JSON-RPC message POSTed there is answered `202 Accepted`, and its
//! response arrives on the stream as a `message` event. Both requests pass
//! the same checks as `/mcp`: the API key (401/429 with a JSON-RPC body,
//! failures counted per address), then Host and Origin (403). The session
//! belongs to the GET's account; a POST must present a key of that account.
//!
//! rmcp 3.11 has no server for this transport, so this module is one: per
//! session a bounded channel each way and the same [`DialtoneMcp`] handler
//! served by rmcp over them ([`ChannelTransport`]); the sessions live in a
//! map bounded in size. Every POST carries its own HTTP context into the
//! handler, as on `/mcp`: its key, and its context headers, with the GET's
//! context headers as defaults for those it lacks. A session ends when its
//! stream closes — the client went away or the server shuts down — when
//! the guard inside the stream removes it and cancels the handler.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use dashmap::DashMap;
use dialtone_switch::control::CallControl;
use futures_util::Stream;
use rmcp::model::{ClientJsonRpcMessage, GetExtensions, ServerJsonRpcMessage};
use rmcp::transport::Transport;
use rmcp::{RoleServer, ServiceExt};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::auth::{Authenticated, KeyAuth};
use crate::context::ContextHeaders;
use crate::handler::DialtoneMcp;
use crate::transport::{rejection, McpConfig, MAX_BODY};

/// Where the event stream is opened.
pub const SSE_PATH: &str = "/sse";
/// Where a session's messages are POSTed (`?sessionId=ID`).
pub const MESSAGE_PATH: &str = "/sse/message";
/// Sessions open at once; more are refused (503) until one closes.
pub const MAX_SESSIONS: usize = 1024;
/// Sessions one account may hold open, so one key cannot take them all.
pub const MAX_SESSIONS_PER_ACCOUNT: usize = 64;
/// Messages queued each way per session; a client that floods POSTs
/// waits, and one that stops reading its stream stalls only itself.
const QUEUE: usize = 64;
/// How long a POST waits for room in its session's queue.
const ENQUEUE_TIMEOUT: Duration = Duration::from_secs(10);
/// Comments on an idle stream, so proxies keep it and dead peers show.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The sessions' stream has closed: the client is gone.
#[derive(Debug, thiserror::Error)]
#[error("the session's event stream is closed")]
pub struct StreamClosed;

/// rmcp's side of a session: messages the client POSTed come in on
/// `inbox`, the handler's messages go out on `outbox` to the event stream.
pub struct ChannelTransport {
    inbox: mpsc::Receiver<ClientJsonRpcMessage>,
    outbox: mpsc::Sender<ServerJsonRpcMessage>,
}

impl Transport<RoleServer> for ChannelTransport {
    type Error = StreamClosed;

    fn send(
        &mut self,
        item: ServerJsonRpcMessage,
    ) -> impl Future<Output = Result<(), StreamClosed>> + Send + 'static {
        let outbox = self.outbox.clone();
        async move { outbox.send(item).await.map_err(|_| StreamClosed) }
    }

    fn receive(&mut self) -> impl Future<Output = Option<ClientJsonRpcMessage>> + Send {
        self.inbox.recv()
    }

    async fn close(&mut self) -> Result<(), StreamClosed> {
        self.inbox.close();
        Ok(())
    }
}

/// One open session, as the POST handler needs it.
pub struct Session {
    account_id: String,
    /// The GET's context headers: defaults for each POST.
    context: ContextHeaders,
    inbox: mpsc::Sender<ClientJsonRpcMessage>,
}

/// The open sessions: at most `max`, and `per_account` of one account's.
pub struct Sessions {
    map: DashMap<String, Arc<Session>>,
    open: AtomicUsize,
    max: usize,
    per_account: usize,
}

/// Removes its session when dropped (with the event stream that owns it)
/// and stops the session's handler.
pub struct SessionGuard {
    sessions: Arc<Sessions>,
    id: String,
    stop: CancellationToken,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        if self.sessions.map.remove(&self.id).is_some() {
            self.sessions.open.fetch_sub(1, Ordering::AcqRel);
        }
        self.stop.cancel();
        tracing::debug!(session = %self.id, "MCP SSE session closed");
    }
}

impl Sessions {
    pub fn new(max: usize, per_account: usize) -> Arc<Sessions> {
        Arc::new(Sessions {
            map: DashMap::new(),
            open: AtomicUsize::new(0),
            max,
            per_account,
        })
    }

    /// Registers `session` under a new unguessable id (it is all a POST
    /// names its session by, besides the key); None when full, or when
    /// the account holds its share already.
    pub fn open(
        self: &Arc<Self>,
        session: Session,
        stop: CancellationToken,
    ) -> Option<(String, SessionGuard)> {
        // A scan of at most `max` entries, on opening only.
        let held = self
            .map
            .iter()
            .filter(|s| s.account_id == session.account_id)
            .count();
        if held >= self.per_account {
            return None;
        }
        if self.open.fetch_add(1, Ordering::AcqRel) >= self.max {
            self.open.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        self.map.insert(id.clone(), Arc::new(session));
        let guard = SessionGuard {
            sessions: self.clone(),
            id: id.clone(),
            stop,
        };
        Some((id, guard))
    }

    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        self.map.get(id).map(|s| s.value().clone())
    }

    /// Sessions open now.
    pub fn len(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

struct SseDoor {
    control: CallControl,
    auth: Arc<KeyAuth>,
    cfg: McpConfig,
    sessions: Arc<Sessions>,
    stop: CancellationToken,
}

/// `GET /sse` and `POST /sse/message`. `stop` ends every stream.
pub(crate) fn router(
    control: CallControl,
    auth: Arc<KeyAuth>,
    cfg: &McpConfig,
    stop: CancellationToken,
) -> Router {
    let door = Arc::new(SseDoor {
        control,
        auth,
        cfg: cfg.clone(),
        sessions: Sessions::new(MAX_SESSIONS, MAX_SESSIONS_PER_ACCOUNT),
        stop,
    });
    Router::new()
        .route(SSE_PATH, get(open))
        .route(MESSAGE_PATH, post(message))
        .with_state(door)
}

/// A JSON-RPC error body (id null) with an HTTP status.
fn refuse(status: StatusCode, code: i32, message: String) -> Response {
    let body = json!({"jsonrpc": "2.0", "id": null, "error": {"code": code, "message": message}});
    (status, axum::Json(body)).into_response()
}

/// The key check and then the Host/Origin check, as on `/mcp`.
async fn admit(door: &SseDoor, req: &Parts) -> Result<Authenticated, Response> {
    let peer = req.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let who = door
        .auth
        .authenticate(&req.headers, peer)
        .await
        .map_err(|e| rejection(&e))?;
    crate::rebinding::check(&req.uri, &req.headers, &door.cfg)?;
    Ok(who)
}

/// The `endpoint` event: where this session's messages go.
fn endpoint_event(id: &str) -> Event {
    Event::default()
        .event("endpoint")
        .data(format!("{MESSAGE_PATH}?sessionId={id}"))
}

/// A server message as a `message` event.
fn message_event(msg: &ServerJsonRpcMessage) -> Option<Event> {
    match serde_json::to_string(msg) {
        Ok(data) => Some(Event::default().event("message").data(data)),
        Err(e) => {
            tracing::warn!(error = %e, "an MCP message could not be serialized");
            None
        }
    }
}

/// The session's event stream: the endpoint event, then the handler's
/// messages until it stops, the server shuts down, or the client goes
/// (the response is dropped, and `guard` with it).
fn events(
    id: String,
    outbox: mpsc::Receiver<ServerJsonRpcMessage>,
    guard: SessionGuard,
    stop: CancellationToken,
) -> impl Stream<Item = Result<Event, std::convert::Infallible>> {
    let first = Some(endpoint_event(&id));
    futures_util::stream::unfold(
        (first, outbox, guard, stop),
        |(mut first, mut outbox, guard, stop)| async move {
            if let Some(e) = first.take() {
                return Some((Ok(e), (first, outbox, guard, stop)));
            }
            loop {
                let msg = tokio::select! {
                    _ = stop.cancelled() => return None,
                    m = outbox.recv() => m?,
                };
                if let Some(e) = message_event(&msg) {
                    return Some((Ok(e), (first, outbox, guard, stop)));
                }
            }
        },
    )
}

async fn open(State(door): State<Arc<SseDoor>>, req: Request) -> Response {
    let (req, _) = req.into_parts();
    let who = match admit(&door, &req).await {
        Ok(w) => w,
        Err(resp) => return resp,
    };
    let context = match ContextHeaders::parse(&req.headers) {
        Ok(c) => c,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, -32602, e.to_string()),
    };
    let (in_tx, in_rx) = mpsc::channel(QUEUE);
    let (out_tx, out_rx) = mpsc::channel(QUEUE);
    let session = Session {
        account_id: who.account_id.clone(),
        context,
        inbox: in_tx,
    };
    let stop = door.stop.child_token();
    let Some((id, guard)) = door.sessions.open(session, stop.clone()) else {
        tracing::warn!(account = %who.account_id, "MCP SSE session refused: too many open");
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            -32000,
            "too many MCP SSE sessions are open; try again later".into(),
        );
    };
    tracing::debug!(session = %id, account = %who.account_id, "MCP SSE session opened");
    let transport = ChannelTransport {
        inbox: in_rx,
        outbox: out_tx,
    };
    let handler = DialtoneMcp::new(door.control.clone(), false);
    let session_id = id.clone();
    tokio::spawn(async move {
        match handler.serve_with_ct(transport, stop).await {
            Ok(running) => {
                let _ = running.waiting().await;
            }
            Err(e) => {
                tracing::debug!(session = %session_id, error = %e, "MCP SSE session not initialized")
            }
        }
    });
    Sse::new(events(id, out_rx, guard, door.stop.clone()))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}

#[derive(Deserialize)]
struct SessionQuery {
    #[serde(rename = "sessionId", alias = "session_id")]
    session_id: Option<String>,
}

async fn message(State(door): State<Arc<SseDoor>>, req: Request) -> Response {
    let (mut parts, body) = req.into_parts();
    let who = match admit(&door, &parts).await {
        Ok(w) => w,
        Err(resp) => return resp,
    };
    let id = Query::<SessionQuery>::try_from_uri(&parts.uri)
        .ok()
        .and_then(|q| q.0.session_id)
        .unwrap_or_default();
    // Another account's session is as unknown as a closed one.
    let session = match door.sessions.get(&id) {
        Some(s) if s.account_id == who.account_id => s,
        _ => {
            return refuse(
                StatusCode::NOT_FOUND,
                -32001,
                format!("no such MCP session {id:?}: open {SSE_PATH} first"),
            )
        }
    };
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response(),
    };
    let mut msg = match serde_json::from_slice::<ClientJsonRpcMessage>(&bytes) {
        Ok(m) => m,
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                -32700,
                format!("not a JSON-RPC message: {e}"),
            )
        }
    };
    session.context.fill_in(&mut parts.headers);
    parts.extensions.insert(who);
    // The handler reads each request's own HTTP context, as on /mcp.
    match &mut msg {
        ClientJsonRpcMessage::Request(r) => {
            r.request.extensions_mut().insert(parts);
        }
        ClientJsonRpcMessage::Notification(n) => {
            n.notification.extensions_mut().insert(parts);
        }
        ClientJsonRpcMessage::Response(_) | ClientJsonRpcMessage::Error(_) => {}
    }
    match tokio::time::timeout(ENQUEUE_TIMEOUT, session.inbox.send(msg)).await {
        Ok(Ok(())) => (StatusCode::ACCEPTED, "Accepted").into_response(),
        Ok(Err(_)) => refuse(
            StatusCode::NOT_FOUND,
            -32001,
            format!("MCP session {id:?} has ended: open {SSE_PATH} again"),
        ),
        Err(_) => refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            -32000,
            "the session is not keeping up; try again".into(),
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use rmcp::ServerHandler;

    fn session() -> (Session, mpsc::Receiver<ClientJsonRpcMessage>) {
        session_of("acc")
    }

    fn session_of(account: &str) -> (Session, mpsc::Receiver<ClientJsonRpcMessage>) {
        let (tx, rx) = mpsc::channel(1);
        let s = Session {
            account_id: account.into(),
            context: ContextHeaders::default(),
            inbox: tx,
        };
        (s, rx)
    }

    #[test]
    fn sessions_are_bounded_and_removed_with_their_guard() {
        let sessions = Sessions::new(2, 2);
        let stop_a = CancellationToken::new();
        let (a, guard_a) = sessions.open(session().0, stop_a.clone()).unwrap();
        let (b, guard_b) = sessions
            .open(session().0, CancellationToken::new())
            .unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32, "128 random bits, hex");
        assert_eq!(sessions.len(), 2);
        assert!(sessions
            .open(session().0, CancellationToken::new())
            .is_none());
        assert_eq!(sessions.len(), 2, "a refusal takes no slot");
        assert_eq!(sessions.get(&a).unwrap().account_id, "acc");

        drop(guard_a);
        assert!(
            stop_a.is_cancelled(),
            "the handler is stopped with the stream"
        );
        assert!(sessions.get(&a).is_none());
        assert!(sessions.get(&b).is_some());
        assert_eq!(sessions.len(), 1);
        let (_c, guard_c) = sessions
            .open(session().0, CancellationToken::new())
            .unwrap();
        drop((guard_b, guard_c));
        assert!(sessions.is_empty());
        assert_eq!(sessions.map.len(), 0);
    }

    #[test]
    fn one_account_cannot_take_every_session() {
        let sessions = Sessions::new(10, 2);
        let a1 = sessions.open(session_of("a").0, CancellationToken::new());
        let a2 = sessions.open(session_of("a").0, CancellationToken::new());
        assert!(a1.is_some() && a2.is_some());
        assert!(sessions
            .open(session_of("a").0, CancellationToken::new())
            .is_none());
        let b = sessions.open(session_of("b").0, CancellationToken::new());
        assert!(b.is_some(), "another account still gets in");
        drop(a1);
        assert!(sessions
            .open(session_of("a").0, CancellationToken::new())
            .is_some());
    }

    #[test]
    fn the_inbox_closes_with_the_session() {
        let sessions = Sessions::new(4, 4);
        let (s, mut rx) = session();
        let (_, guard) = sessions.open(s, CancellationToken::new()).unwrap();
        assert!(rx
            .try_recv()
            .is_err_and(|e| e == mpsc::error::TryRecvError::Empty));
        drop(guard);
        // No sender is left: the handler's receive ends, and so does it.
        assert!(rx
            .try_recv()
            .is_err_and(|e| e == mpsc::error::TryRecvError::Disconnected));
    }

    #[tokio::test]
    async fn the_stream_names_the_endpoint_and_ends_with_the_handler() {
        let sessions = Sessions::new(4, 4);
        let (s, _rx) = session();
        let (id, guard) = sessions.open(s, CancellationToken::new()).unwrap();
        let (tx, rx) = mpsc::channel(4);
        let stream = events(id.clone(), rx, guard, CancellationToken::new());
        tokio::pin!(stream);
        let first = stream.next().await.unwrap().unwrap();
        let text = format!("{first:?}");
        assert!(text.contains("endpoint"), "{text}");
        assert!(
            text.contains(&format!("/sse/message?sessionId={id}")),
            "{text}"
        );
        drop(tx);
        assert!(stream.next().await.is_none());
        assert!(sessions.is_empty(), "the session went with its stream");
    }

    #[tokio::test]
    async fn shutdown_ends_the_stream() {
        let sessions = Sessions::new(4, 4);
        let (id, guard) = sessions
            .open(session().0, CancellationToken::new())
            .unwrap();
        let (_tx, rx) = mpsc::channel(4);
        let stop = CancellationToken::new();
        let stream = events(id, rx, guard, stop.clone());
        tokio::pin!(stream);
        assert!(stream.next().await.is_some());
        stop.cancel();
        let end = tokio::time::timeout(Duration::from_secs(5), stream.next()).await;
        assert!(matches!(end, Ok(None)), "the stream must end at shutdown");
        assert!(sessions.is_empty());
    }

    /// A handler with rmcp's defaults, to drive the transport without a switch.
    struct Plain;
    impl ServerHandler for Plain {}

    #[tokio::test]
    async fn rmcp_serves_a_handler_over_the_channels() {
        let (in_tx, in_rx) = mpsc::channel(QUEUE);
        let (out_tx, mut out_rx) = mpsc::channel(QUEUE);
        let transport = ChannelTransport {
            inbox: in_rx,
            outbox: out_tx,
        };
        let server = tokio::spawn(async move {
            let running = Plain.serve(transport).await?;
            Ok::<_, rmcp::service::ServerInitializeError>(running.waiting().await)
        });
        let send = |v: serde_json::Value| {
            let in_tx = in_tx.clone();
            async move {
                let m: ClientJsonRpcMessage = serde_json::from_value(v).unwrap();
                in_tx.send(m).await.unwrap();
            }
        };
        async fn recv(out: &mut mpsc::Receiver<ServerJsonRpcMessage>) -> serde_json::Value {
            let m = tokio::time::timeout(Duration::from_secs(5), out.recv())
                .await
                .unwrap()
                .unwrap();
            serde_json::to_value(&m).unwrap()
        }
        send(
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2024-11-05", "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"}}}),
        )
        .await;
        let init = recv(&mut out_rx).await;
        assert_eq!(init["id"], 1, "{init}");
        assert_eq!(init["result"]["protocolVersion"], "2024-11-05", "{init}");
        send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await;
        send(json!({"jsonrpc": "2.0", "id": 2, "method": "ping"})).await;
        let pong = recv(&mut out_rx).await;
        assert_eq!(pong["id"], 2, "{pong}");
        assert!(pong["result"].is_object(), "{pong}");
        // The session's inbox closes (its stream went): the handler stops.
        drop(in_tx);
        let quit = tokio::time::timeout(Duration::from_secs(5), server).await;
        assert!(matches!(quit, Ok(Ok(Ok(Ok(_))))), "the handler must stop");
    }
}

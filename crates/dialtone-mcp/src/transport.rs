//! `/mcp`: rmcp's Streamable HTTP service behind API-key auth. Every
//! request is authenticated first (401 or 429 with a JSON-RPC error body
//! otherwise) and the key's account goes into its extensions for the
//! handler. rmcp then checks Host and Origin against the configured lists
//! (DNS-rebinding protection: 403 otherwise).
//!
//! Two rmcp services share one handler type. Clients that `initialize`
//! get a session (`Mcp-Session-Id`, kept by rmcp's `LocalSessionManager`),
//! which resource subscriptions need. A POST without a session id that is
//! not `initialize` goes to a stateless service (JSON answers): rmcp's
//! session-mode service would refuse such a request for the protocol
//! revisions up to 2025-11-25 ("session id required"), although those
//! revisions let a server do without sessions, and the 2026-07-28
//! revision has no sessions at all.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use dialtone_switch::control::CallControl;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde::Deserialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::auth::{AuthError, KeyAuth};
use crate::handler::DialtoneMcp;

/// Request bodies above this are refused (rmcp's own limit).
pub(crate) const MAX_BODY: usize = 4 * 1024 * 1024;

/// The `[mcp]` settings the server needs.
#[derive(Clone, Debug)]
pub struct McpConfig {
    /// Host header values accepted (`name` or `name:port`); empty accepts
    /// any (not for a server reachable from a browser).
    pub allowed_hosts: Vec<String>,
    /// Origins accepted (`scheme://host[:port|:*]`, or `null`); a request
    /// with any other Origin is refused, one without an Origin passes.
    pub allowed_origins: Vec<String>,
}

impl Default for McpConfig {
    fn default() -> Self {
        McpConfig {
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            allowed_origins: Vec::new(),
        }
    }
}

struct Mcp {
    auth: Arc<KeyAuth>,
    sessions: StreamableHttpService<DialtoneMcp, LocalSessionManager>,
    stateless: StreamableHttpService<DialtoneMcp, NeverSessionManager>,
}

/// The `/mcp` route, and the legacy SSE transport's `/sse` and
/// `/sse/message` (see [`crate::sse`]) with the same auth, checks and
/// handler. `stop` ends every session and open stream (cancel it on
/// shutdown, or open SSE streams hold the listener open).
pub fn router(
    control: CallControl,
    auth: Arc<KeyAuth>,
    cfg: &McpConfig,
    stop: CancellationToken,
) -> Router {
    let sse = crate::sse::router(control.clone(), auth.clone(), cfg, stop.clone());
    let base = StreamableHttpServerConfig::default()
        .with_allowed_hosts(cfg.allowed_hosts.clone())
        .with_allowed_origins(cfg.allowed_origins.clone())
        // An empty origin list refuses every Origin rather than none.
        .enforce_origin_validation()
        .with_max_request_body_bytes(MAX_BODY)
        .with_cancellation_token(stop);
    let c = control.clone();
    let sessions = StreamableHttpService::new(
        move || Ok(DialtoneMcp::new(c.clone(), false)),
        Arc::new(LocalSessionManager::default()),
        base.clone(),
    );
    let stateless = StreamableHttpService::new(
        move || Ok(DialtoneMcp::new(control.clone(), true)),
        Arc::new(NeverSessionManager::default()),
        base.with_legacy_session_mode(false)
            .with_json_response(true),
    );
    let state = Arc::new(Mcp {
        auth,
        sessions,
        stateless,
    });
    Router::new()
        .route("/mcp", any(serve))
        .with_state(state)
        .merge(sse)
}

/// A refusal in the JSON-RPC error shape MCP clients read.
pub fn rejection(e: &AuthError) -> Response {
    let body = json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {"code": -32001, "message": e.to_string()},
    });
    let mut resp = (e.status(), axum::Json(body)).into_response();
    let headers = resp.headers_mut();
    match e {
        AuthError::Missing | AuthError::Invalid => {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"dialtone\""),
            );
        }
        AuthError::Limited => {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        }
        AuthError::Unavailable(_) => {}
    }
    resp
}

/// Whether a JSON-RPC body is an `initialize` request.
fn is_initialize(body: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Peek<'a> {
        #[serde(borrow)]
        method: Option<std::borrow::Cow<'a, str>>,
    }
    serde_json::from_slice::<Peek>(body).is_ok_and(|p| p.method.as_deref() == Some("initialize"))
}

async fn serve(State(mcp): State<Arc<Mcp>>, req: Request) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let who = match mcp.auth.authenticate(req.headers(), peer).await {
        Ok(w) => w,
        Err(e) => return rejection(&e),
    };
    let (mut parts, body) = req.into_parts();
    parts.extensions.insert(who);
    if parts.method != Method::POST || parts.headers.contains_key("mcp-session-id") {
        let delete = parts.method == Method::DELETE;
        let mut resp = mcp
            .sessions
            .handle(Request::from_parts(parts, body))
            .await
            .into_response();
        // rmcp answers a session's DELETE 202; clients (the Python SDK)
        // expect 200 or 204 and log a failure otherwise.
        if delete && resp.status() == StatusCode::ACCEPTED {
            *resp.status_mut() = StatusCode::NO_CONTENT;
        }
        return resp;
    }
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
        }
    };
    let initialize = is_initialize(&bytes);
    let req = Request::from_parts(parts, Body::from(bytes));
    if initialize {
        mcp.sessions.handle(req).await.into_response()
    } else {
        mcp.stateless.handle(req).await.into_response()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn initialize_is_told_apart() {
        assert!(is_initialize(
            br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#
        ));
        assert!(!is_initialize(
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#
        ));
        assert!(!is_initialize(
            br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#
        ));
        assert!(!is_initialize(b"not json"));
        assert!(!is_initialize(br#"[{"method":"initialize"}]"#));
    }

    #[tokio::test]
    async fn refusals_are_json_rpc_errors() {
        let resp = rejection(&AuthError::Invalid);
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert!(resp.headers().contains_key(header::WWW_AUTHENTICATE));
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["jsonrpc"], "2.0");
        assert_eq!(v["id"], serde_json::Value::Null);
        assert_eq!(v["error"]["code"], -32001);
        assert_eq!(v["error"]["message"], "invalid or revoked API key");
        let resp = rejection(&AuthError::Limited);
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "60");
    }
}

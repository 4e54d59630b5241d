//! In-process MCP servers on loopback for the client's tests: one rmcp
//! handler ("a CRM": a lookup, a tool that fails, a slow one, and tools whose
//! names cannot be offered) served over Streamable HTTP (rmcp's service in
//! axum) and over the older HTTP+SSE transport (a small axum bridge to the
//! same handler), each behind an optional bearer check.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures_util::StreamExt;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ClientJsonRpcMessage, ContentBlock,
    Implementation, JsonObject, ListToolsResult, PaginatedRequestParams, ServerCapabilities,
    ServerConfig, ServerJsonRpcMessage, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::transport::Transport;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The test CRM's tools.
#[derive(Clone, Default)]
pub struct Crm;

fn tool(name: &str, description: &str, schema: serde_json::Value) -> Tool {
    let schema: JsonObject = match schema {
        serde_json::Value::Object(o) => o,
        _ => JsonObject::new(),
    };
    Tool::new(name.to_owned(), description.to_owned(), Arc::new(schema))
}

impl ServerHandler for Crm {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("test-crm", "1.0"))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(vec![
            tool(
                "crm_lookup",
                "Look a customer up",
                json!({
                    "$schema": "https://json-schema.org/draft/2020-12/schema",
                    "type": "object",
                    "properties": {"customer_id": {"type": "string"}},
                    "required": ["customer_id"],
                }),
            ),
            tool("crm_fail", "Always fails", json!({"type": "object"})),
            tool("crm_slow", "Takes 5 s", json!({})),
            tool("bad.name", "A dot is no function name", json!({})),
            tool(&"x".repeat(70), "Too long once prefixed", json!({})),
        ]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let result = match request.name.as_ref() {
            "crm_lookup" => {
                let id = request
                    .arguments
                    .as_ref()
                    .and_then(|a| a.get("customer_id"))
                    .and_then(|v| v.as_str())
                    .unwrap_or("?")
                    .to_owned();
                CallToolResult::success(vec![ContentBlock::text(format!(
                    "customer {id}: gold customer"
                ))])
            }
            "crm_fail" => CallToolResult::error(vec![ContentBlock::text("no such customer")]),
            "crm_slow" => {
                tokio::time::sleep(Duration::from_secs(5)).await;
                CallToolResult::success(vec![ContentBlock::text("late")])
            }
            other => {
                return Err(ErrorData::invalid_params(
                    format!("unknown tool {other}"),
                    None,
                ))
            }
        };
        Ok(result.into())
    }
}

/// A server on 127.0.0.1; aborted when dropped.
pub struct TestServer {
    pub url: String,
    task: JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn bearer(State(token): State<Option<String>>, req: Request, next: Next) -> Response {
    if let Some(token) = token {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if given != Some(format!("Bearer {token}").as_str()) {
            return StatusCode::UNAUTHORIZED.into_response();
        }
    }
    next.run(req).await
}

async fn serve(app: Router, path: &str) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    TestServer {
        url: format!("http://{addr}{path}"),
        task,
    }
}

/// The CRM over Streamable HTTP at `/mcp`.
pub async fn streamable_http(token: Option<&str>) -> TestServer {
    let service = StreamableHttpService::new(
        || Ok(Crm),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    let app = Router::new()
        .route_service("/mcp", service)
        .layer(middleware::from_fn_with_state(
            token.map(str::to_owned),
            bearer,
        ));
    serve(app, "/mcp").await
}

/// The server side of one SSE session: rmcp's server reads what the POSTs
/// bring and writes onto the event stream.
struct Channels {
    tx: mpsc::Sender<ServerJsonRpcMessage>,
    rx: mpsc::Receiver<ClientJsonRpcMessage>,
}

impl Transport<RoleServer> for Channels {
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: ServerJsonRpcMessage,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let tx = self.tx.clone();
        async move {
            tx.send(item)
                .await
                .map_err(|_| std::io::Error::other("the event stream is gone"))
        }
    }

    fn receive(&mut self) -> impl Future<Output = Option<ClientJsonRpcMessage>> + Send {
        self.rx.recv()
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        std::future::ready(Ok(()))
    }
}

#[derive(Clone, Default)]
struct Sessions {
    next: Arc<AtomicU64>,
    posts: Arc<Mutex<HashMap<String, mpsc::Sender<ClientJsonRpcMessage>>>>,
}

async fn sse_stream(State(sessions): State<Sessions>) -> Response {
    let id = sessions.next.fetch_add(1, Ordering::Relaxed).to_string();
    let (to_server, from_posts) = mpsc::channel(16);
    let (to_stream, from_server) = mpsc::channel::<ServerJsonRpcMessage>(16);
    if let Ok(mut posts) = sessions.posts.lock() {
        posts.insert(id.clone(), to_server);
    }
    tokio::spawn(async move {
        let transport = Channels {
            tx: to_stream,
            rx: from_posts,
        };
        if let Ok(running) = Crm.serve(transport).await {
            let _ = running.waiting().await;
        }
    });
    let endpoint = futures_util::stream::once(std::future::ready(Ok::<_, Infallible>(
        Event::default()
            .event("endpoint")
            .data(format!("/messages/?session_id={id}")),
    )));
    let messages = futures_util::stream::unfold(from_server, |mut rx| async move {
        let msg = rx.recv().await?;
        let data = serde_json::to_string(&msg).unwrap_or_default();
        Some((Ok(Event::default().event("message").data(data)), rx))
    });
    Sse::new(endpoint.chain(messages)).into_response()
}

async fn sse_post(
    State(sessions): State<Sessions>,
    Query(query): Query<HashMap<String, String>>,
    body: String,
) -> StatusCode {
    let tx = query
        .get("session_id")
        .and_then(|id| sessions.posts.lock().ok()?.get(id).cloned());
    let Some(tx) = tx else {
        return StatusCode::NOT_FOUND;
    };
    match serde_json::from_str::<ClientJsonRpcMessage>(&body) {
        Ok(msg) => {
            let _ = tx.send(msg).await;
            StatusCode::ACCEPTED
        }
        Err(_) => StatusCode::BAD_REQUEST,
    }
}

/// The CRM over HTTP+SSE: the stream at `/sse`, messages POSTed to
/// `/messages/?session_id=N` (as the Python SDK does it).
pub async fn legacy_sse(token: Option<&str>) -> TestServer {
    let app = Router::new()
        .route("/sse", get(sse_stream))
        .route("/messages/", post(sse_post))
        .with_state(Sessions::default())
        .layer(middleware::from_fn_with_state(
            token.map(str::to_owned),
            bearer,
        ));
    serve(app, "/sse").await
}

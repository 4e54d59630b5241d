//! The benchmarks' baseline: a minimal rmcp Streamable HTTP server that
//! does nothing — tools capability, an empty tool list, no auth, no
//! context, no registry — served statelessly with JSON answers, as
//! dialtone serves a session-less request. `bench/mcp_bench.py tools-list`
//! measures tools/list against it and against dialtone's /mcp.
//!
//! Usage: mcp_baseline 127.0.0.1:PORT

use std::sync::Arc;

use rmcp::model::{ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::ServerHandler;

struct Nothing;

impl ServerHandler for Nothing {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18999".into());
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true);
    let service = StreamableHttpService::new(
        || Ok(Nothing),
        Arc::new(NeverSessionManager::default()),
        config,
    );
    let app = axum::Router::new().route_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("mcp_baseline listening on {addr}");
    axum::serve(listener, app).await
}

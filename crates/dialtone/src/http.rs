//! The HTTP listener: `/healthz`, `/metrics` (Prometheus text) and
//! `/api/v1/calls` (in `api.rs`); `/mcp` joins it with its issue.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use dialtone_store::Store;
use dialtone_switch::Switch;
use tokio::sync::watch;

pub struct AppState {
    pub store: Store,
    pub switch: Arc<Switch>,
    pub switch_running: Arc<dyn Fn() -> bool + Send + Sync>,
    /// Bearer token for `/api/v1`; empty turns the API off.
    pub api_token: String,
}

pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    mut stop: watch::Receiver<bool>,
) {
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .merge(crate::api::routes())
        .with_state(state);
    let shutdown = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(error = %e, "HTTP server failed");
    }
}

/// 200 when the SIP switch runs and the database answers; 503 with the
/// reason otherwise.
async fn healthz(State(state): State<Arc<AppState>>) -> (StatusCode, String) {
    if !(state.switch_running)() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "sip: switch stopped\n".into(),
        );
    }
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ok\n".into()),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("database: {e}\n")),
    }
}

/// Prometheus text exposition of the live state.
async fn metrics(
    State(state): State<Arc<AppState>>,
) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    use std::fmt::Write as _;
    let calls = state.switch.calls();
    let (server_tx, client_tx) = state.switch.layer().counts();
    let mut out = String::new();
    let mut metric = |name: &str, help: &str, kind: &str, value: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    };
    metric(
        "dialtone_calls_active",
        "Calls in progress.",
        "gauge",
        calls.registry.len() as u64,
    );
    metric(
        "dialtone_calls_total",
        "Calls started since this process started.",
        "counter",
        calls.total.load(std::sync::atomic::Ordering::Relaxed),
    );
    metric(
        "dialtone_media_endpoints",
        "RTP port pairs in use.",
        "gauge",
        calls.media.in_use() as u64,
    );
    metric(
        "dialtone_sip_server_transactions",
        "Live SIP server transactions.",
        "gauge",
        server_tx as u64,
    );
    metric(
        "dialtone_sip_client_transactions",
        "Live SIP client transactions.",
        "gauge",
        client_tx as u64,
    );
    calls.ai.render(&mut out);
    (
        StatusCode::OK,
        [("content-type", "text/plain; version=0.0.4")],
        out,
    )
}

//! The HTTP listener: `/healthz` now; `/mcp`, `/api/v1` and `/metrics`
//! join it with their issues.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use dialtone_store::Store;
use tokio::sync::watch;

pub struct AppState {
    pub store: Store,
    pub switch_running: Arc<dyn Fn() -> bool + Send + Sync>,
}

pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    mut stop: watch::Receiver<bool>,
) {
    let app = Router::new()
        .route("/healthz", get(healthz))
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

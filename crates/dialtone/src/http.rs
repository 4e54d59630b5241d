//! The HTTP listener: `/healthz`, `/metrics` (Prometheus text),
//! `/api/v1/calls` (in `api.rs`), the cluster's node-to-node
//! `/cluster/v1` (in `cluster.rs`) and `/mcp` (the MCP server, from
//! `dialtone-mcp`). Connections carry their peer address, which the
//! API-key checks log and rate-limit failures by.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use dialtone_mcp::KeyAuth;
use dialtone_store::Store;
use dialtone_switch::Switch;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub struct AppState {
    pub store: Store,
    pub switch: Arc<Switch>,
    pub switch_running: Arc<dyn Fn() -> bool + Send + Sync>,
    /// Operator bearer token for `/api/v1`; empty: only API keys (and
    /// with none given, the API is off).
    pub api_token: String,
    /// Checks API keys, for `/api/v1` and `/mcp` alike.
    pub keys: Arc<KeyAuth>,
}

/// Serves until `stop`; `mcp` is the `/mcp` route when the MCP server is
/// on. `mcp_stop` is cancelled at `stop` so MCP sessions and their open
/// event streams end instead of holding the shutdown up.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    mcp: Option<Router>,
    mut stop: watch::Receiver<bool>,
    mcp_stop: CancellationToken,
) {
    let mut app = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .merge(crate::api::routes())
        .merge(crate::cluster::routes())
        .with_state(state);
    if let Some(mcp) = mcp {
        app = app.merge(mcp);
    }
    let shutdown = async move {
        let _ = stop.wait_for(|s| *s).await;
        mcp_stop.cancel();
    };
    if let Err(e) = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
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
    let tcp = state.switch.layer().transports().tcp_stats();
    metric(
        "dialtone_tcp_connections",
        "SIP TCP connections open.",
        "gauge",
        tcp.open,
    );
    metric(
        "dialtone_tcp_refused_total",
        "Accepted SIP TCP connections closed at once: their source was at abuse.tcp_max_per_source.",
        "counter",
        tcp.refused,
    );
    metric(
        "dialtone_tcp_timed_out_total",
        "SIP TCP connections closed for a message not finished in time, or idleness.",
        "counter",
        tcp.timed_out,
    );
    metric(
        "dialtone_call_records_pending",
        "Call records not yet in the database (written behind the calls, kept in memory while it is away).",
        "gauge",
        calls.records.pending() as u64,
    );
    metric(
        "dialtone_call_records_written_late_total",
        "Call records written after the database answered again.",
        "counter",
        calls
            .records
            .written_late
            .load(std::sync::atomic::Ordering::Relaxed),
    );
    let relaxed = std::sync::atomic::Ordering::Relaxed;
    metric(
        "dialtone_call_record_batches_total",
        "Transactions that wrote call records.",
        "counter",
        calls.records.batches.load(relaxed),
    );
    metric(
        "dialtone_call_records_written_total",
        "Call record versions written (a call's latest version when it is written).",
        "counter",
        calls.records.written.load(relaxed),
    );
    if let Some(wb) = state.store.write_behind_stats() {
        metric(
            "dialtone_location_aors",
            "Addresses of record with bindings in the in-memory location table.",
            "gauge",
            wb.aors as u64,
        );
        metric(
            "dialtone_location_pending",
            "Bindings changed and not yet written to the database.",
            "gauge",
            wb.pending as u64,
        );
        metric(
            "dialtone_location_batches_total",
            "Transactions that wrote the location table.",
            "counter",
            wb.batches,
        );
        metric(
            "dialtone_location_written_total",
            "Bindings written to (or deleted from) the database.",
            "counter",
            wb.written,
        );
    }
    calls.ai.render(&mut out);
    calls.admission.render(&mut out);
    calls.cluster.render(&mut out, calls.registry.len());
    state.switch.shield().render(&mut out);
    (
        StatusCode::OK,
        [("content-type", "text/plain; version=0.0.4")],
        out,
    )
}

//! The node-to-node door: `POST /cluster/v1/tools/{name}` runs a tool call
//! another node forwarded because this node owns the call it names
//! (`dialtone_switch::cluster`). It needs the cluster secret as a bearer
//! token, and does not exist (404) while the cluster is off.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use dialtone_switch::cluster::{ForwardReply, ForwardRequest, FORWARD_PATH};

use crate::http::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route(&format!("{FORWARD_PATH}/{{name}}"), post(forwarded_tool))
}

type Reply = (StatusCode, [(&'static str, &'static str); 1], String);

fn reply(status: StatusCode, body: String) -> Reply {
    (status, [("content-type", "application/json")], body)
}

async fn forwarded_tool(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let control = state.switch.control();
    let cluster = &control.context().cluster;
    if !cluster.enabled() {
        return reply(
            StatusCode::NOT_FOUND,
            r#"{"error":"the cluster is off on this node"}"#.into(),
        );
    }
    let presented = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !cluster.admits(presented) {
        tracing::warn!(tool = %name, "forwarded tool call without the cluster secret refused");
        return reply(
            StatusCode::UNAUTHORIZED,
            r#"{"error":"the cluster secret is required"}"#.into(),
        );
    }
    let req: ForwardRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            let msg = serde_json::json!({ "error": format!("bad forwarded tool call: {e}") });
            return reply(StatusCode::BAD_REQUEST, msg.to_string());
        }
    };
    tracing::info!(tool = %name, from = %req.from, call = ?req.context.call_id, "tool call forwarded by another node");
    let result = control
        .tools()
        .call_here(&control, &req.context, &name, req.arguments)
        .await;
    let answer = serde_json::to_string(&ForwardReply::from_result(result))
        .unwrap_or_else(|e| format!(r#"{{"err":{{"error":"failed","message":"{e}"}}}}"#));
    reply(StatusCode::OK, answer)
}

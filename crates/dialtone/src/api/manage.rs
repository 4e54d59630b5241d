//! The REST door to the management operations: each endpoint runs the
//! very operation the MCP tool of the same purpose runs
//! (`dialtone_switch::tools::manage`), in the request's account (an API
//! key's) or as the operator (the bearer token), and answers with its JSON.
//! An operation's refusal becomes 400 (bad arguments), 404 (no such object
//! in this account), 409 (exists or in use) or 503, with `{"error": …}`.
//!
//! - personas: `GET|POST /api/v1/personas`, `GET|PATCH|DELETE /api/v1/personas/ID`;
//! - numbers: `GET /api/v1/numbers`, `GET /api/v1/numbers/ID`;
//! - calls: `POST /api/v1/calls` (now, or with scheduledAt later);
//!   `GET /api/v1/calls?status=&since=&until=&limit=` (see `super`);
//! - scheduled calls: `GET /api/v1/scheduled-calls`, `DELETE /api/v1/scheduled-calls/ID`;
//! - tools: `GET|POST /api/v1/tools`, `GET|PATCH|DELETE /api/v1/tools/ID`;
//! - `GET /api/v1/registrations`, `GET /api/v1/statistics`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get};
use axum::{Json, Router};
use dialtone_switch::tools::manage::ManageError;
use dialtone_switch::tools::ToolContext;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};

use super::{authorized, error, Principal, Reply};
use crate::http::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/personas", get(list_personas).post(create_persona))
        .route(
            "/api/v1/personas/{id}",
            get(get_persona)
                .patch(update_persona)
                .delete(delete_persona),
        )
        .route("/api/v1/numbers", get(list_numbers))
        .route("/api/v1/numbers/{id}", get(get_number))
        .route("/api/v1/scheduled-calls", get(list_scheduled))
        .route("/api/v1/scheduled-calls/{id}", delete(cancel_scheduled))
        .route("/api/v1/tools", get(list_tools).post(create_tool))
        .route(
            "/api/v1/tools/{id}",
            get(get_tool).patch(update_tool).delete(delete_tool),
        )
        .route("/api/v1/registrations", get(list_registrations))
        .route("/api/v1/statistics", get(statistics))
        .route("/api/v1/bans", get(list_bans))
        .route("/api/v1/bans/{address}", delete(lift_ban))
}

/// What a refused request answers.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ApiError {
    /// What went wrong, and what to do about it.
    error: String,
}

/// The HTTP status of an operation's refusal.
fn status_of(e: &ManageError) -> StatusCode {
    match e {
        ManageError::Invalid(_) => StatusCode::BAD_REQUEST,
        ManageError::NotFound(_) => StatusCode::NOT_FOUND,
        ManageError::Conflict(_) => StatusCode::CONFLICT,
        ManageError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        ManageError::Forbidden(_) => StatusCode::FORBIDDEN,
    }
}

/// Runs operation `name` with `args` for an authorized request; `ok` is
/// the status of a success.
pub(crate) async fn run(
    state: &AppState,
    headers: &HeaderMap,
    peer: SocketAddr,
    name: &str,
    args: Value,
    ok: StatusCode,
) -> Reply {
    let who = match authorized(state, headers, peer).await {
        Ok(w) => w,
        Err(e) => return e,
    };
    let ctx = ToolContext {
        account_id: match who {
            Principal::Operator => None,
            Principal::Account(a) => Some(a),
        },
        ..ToolContext::default()
    };
    let control = state.switch.control();
    let Some(op) = control.tools().operation(name) else {
        return error(StatusCode::NOT_FOUND, format!("no operation {name}"));
    };
    match op.run(&control, &ctx, args).await {
        Ok(v) => (ok, Json(v)),
        Err(e) => error(status_of(&e), e.to_string()),
    }
}

/// A request body with the path's id put in as `key`.
fn with_id(body: Option<Json<Value>>, key: &str, id: String) -> Value {
    let mut v = body.map(|Json(v)| v).unwrap_or_else(|| json!({}));
    if let Some(o) = v.as_object_mut() {
        o.insert(key.into(), Value::String(id));
    }
    v
}

/// Query parameters as operation arguments (only those given).
fn query_args<Q: serde::Serialize>(q: &Q) -> Value {
    match serde_json::to_value(q) {
        Ok(Value::Object(o)) => {
            Value::Object(o.into_iter().filter(|(_, v)| !v.is_null()).collect())
        }
        _ => json!({}),
    }
}

#[utoipa::path(get, path = "/api/v1/personas", tag = "assistants",
    responses((status = 200, body = dialtone_switch::tools::manage::AssistantList),
              (status = 401, body = ApiError)))]
pub async fn list_personas(
    State(s): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    h: HeaderMap,
) -> Reply {
    run(&s, &h, peer, "list_assistants", json!({}), StatusCode::OK).await
}

#[utoipa::path(post, path = "/api/v1/personas", tag = "assistants",
    request_body = dialtone_switch::tools::manage::CreateAssistant,
    responses((status = 201, body = dialtone_switch::tools::manage::Assistant),
              (status = 400, body = ApiError), (status = 409, body = ApiError)))]
pub async fn create_persona(
    State(s): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    h: HeaderMap,
    Json(body): Json<Value>,
) -> Reply {
    run(&s, &h, peer, "create_assistant", body, StatusCode::CREATED).await
}

#[utoipa::path(get, path = "/api/v1/personas/{id}", tag = "assistants",
    params(("id" = String, Path, description = "The persona's id or name")),
    responses((status = 200, body = dialtone_switch::tools::manage::Assistant),
              (status = 404, body = ApiError)))]
pub async fn get_persona(
    State(s): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    h: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    let args = json!({ "assistantId": id });
    run(&s, &h, peer, "get_assistant", args, StatusCode::OK).await
}

#[utoipa::path(patch, path = "/api/v1/personas/{id}", tag = "assistants",
    params(("id" = String, Path, description = "The persona's id or name")),
    request_body(content = dialtone_switch::tools::manage::UpdateAssistant,
                 description = "The settings to change (assistantId comes from the path)"),
    responses((status = 200, body = dialtone_switch::tools::manage::Assistant),
              (status = 400, body = ApiError), (status = 404, body = ApiError)))]
pub async fn update_persona(
    State(s): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    h: HeaderMap,
    Path(id): Path<String>,
    body: Option<Json<Value>>,
) -> Reply {
    let args = with_id(body, "assistantId", id);
    run(&s, &h, peer, "update_assistant", args, StatusCode::OK).await
}

#[utoipa::path(delete, path = "/api/v1/personas/{id}", tag = "assistants",
    params(("id" = String, Path, description = "The persona's id or name")),
    responses((status = 200, body = dialtone_switch::tools::manage::Deleted),
              (status = 404, body = ApiError), (status = 409, body = ApiError)))]
pub async fn delete_persona(
    State(s): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    h: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    let args = json!({ "assistantId": id });
    run(&s, &h, peer, "delete_assistant", args, StatusCode::OK).await
}

#[utoipa::path(get, path = "/api/v1/numbers", tag = "numbers",
    responses((status = 200, body = dialtone_switch::tools::manage::PhoneNumberList)))]
pub async fn list_numbers(
    State(s): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    h: HeaderMap,
) -> Reply {
    run(
        &s,
        &h,
        peer,
        "list_phone_numbers",
        json!({}),
        StatusCode::OK,
    )
    .await
}

#[utoipa::path(get, path = "/api/v1/numbers/{id}", tag = "numbers",
    params(("id" = String, Path, description = "The number's id, or the number")),
    responses((status = 200, body = dialtone_switch::tools::manage::PhoneNumber),
              (status = 404, body = ApiError)))]
pub async fn get_number(
    State(s): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    h: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    let args = json!({ "phoneNumberId": id });
    run(&s, &h, peer, "get_phone_number", args, StatusCode::OK).await
}

/// Which scheduled calls.
#[derive(Deserialize, serde::Serialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ScheduledQuery {
    /// pending, fired, cancelled or failed.
    status: Option<String>,
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/scheduled-calls", tag = "calls", params(ScheduledQuery),
    responses((status = 200, body = dialtone_switch::tools::manage::ScheduledCallList)))]
pub async fn list_scheduled(
    State(s): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    h: HeaderMap,
    Query(q): Query<ScheduledQuery>,
) -> Reply {
    let args = query_args(&q);
    run(&s, &h, peer, "list_scheduled_calls", args, StatusCode::OK).await
}

#[utoipa::path(delete, path = "/api/v1/scheduled-calls/{id}", tag = "calls",
    params(("id" = String, Path, description = "The scheduled call's id")),
    responses((status = 200, description = "Cancelled",
               body = dialtone_switch::tools::manage::ScheduledCall),
              (status = 404, body = ApiError),
              (status = 409, description = "Already placed", body = ApiError)))]
pub async fn cancel_scheduled(
    State(s): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    h: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    let args = json!({ "scheduledCallId": id });
    run(&s, &h, peer, "cancel_scheduled_call", args, StatusCode::OK).await
}

/// Whose tools.
#[derive(Deserialize, serde::Serialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ToolsQuery {
    /// Only this persona's (id or name).
    #[serde(skip_serializing_if = "Option::is_none")]
    assistant_id: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/tools", tag = "tools", params(ToolsQuery),
    responses((status = 200, body = dialtone_switch::tools::manage::CustomToolList)))]
pub async fn list_tools(
    State(s): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    h: HeaderMap,
    Query(q): Query<ToolsQuery>,
) -> Reply {
    let args = query_args(&q);
    run(&s, &h, peer, "list_tools", args, StatusCode::OK).await
}

#[utoipa::path(post, path = "/api/v1/tools", tag = "tools",
    request_body = dialtone_switch::tools::manage::CreateTool,
    responses((status = 201, body = dialtone_switch::tools::manage::CustomTool),
              (status = 400, body = ApiError), (status = 409, body = ApiError)))]
pub async fn create_tool(
    State(s): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    h: HeaderMap,
    Json(body): Json<Value>,
) -> Reply {
    run(&s, &h, peer, "create_tool", body, StatusCode::CREATED).await
}

#[utoipa::path(get, path = "/api/v1/tools/{id}", tag = "tools",
    params(("id" = String, Path, description = "The tool's id")),
    responses((status = 200, body = dialtone_switch::tools::manage::CustomTool),
              (status = 404, body = ApiError)))]
pub async fn get_tool(
    State(s): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    h: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    run(
        &s,
        &h,
        peer,
        "get_tool",
        json!({ "toolId": id }),
        StatusCode::OK,
    )
    .await
}

#[utoipa::path(patch, path = "/api/v1/tools/{id}", tag = "tools",
    params(("id" = String, Path, description = "The tool's id")),
    request_body(content = dialtone_switch::tools::manage::UpdateTool,
                 description = "The fields to change (toolId comes from the path)"),
    responses((status = 200, body = dialtone_switch::tools::manage::CustomTool),
              (status = 400, body = ApiError), (status = 404, body = ApiError)))]
pub async fn update_tool(
    State(s): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    h: HeaderMap,
    Path(id): Path<String>,
    body: Option<Json<Value>>,
) -> Reply {
    let args = with_id(body, "toolId", id);
    run(&s, &h, peer, "update_tool", args, StatusCode::OK).await
}

#[utoipa::path(delete, path = "/api/v1/tools/{id}", tag = "tools",
    params(("id" = String, Path, description = "The tool's id")),
    responses((status = 200, body = dialtone_switch::tools::manage::Deleted),
              (status = 404, body = ApiError)))]
pub async fn delete_tool(
    State(s): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    h: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    run(
        &s,
        &h,
        peer,
        "delete_tool",
        json!({ "toolId": id }),
        StatusCode::OK,
    )
    .await
}

#[utoipa::path(get, path = "/api/v1/registrations", tag = "numbers",
    responses((status = 200, body = dialtone_switch::tools::manage::RegistrationList)))]
pub async fn list_registrations(
    State(s): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    h: HeaderMap,
) -> Reply {
    run(
        &s,
        &h,
        peer,
        "list_registrations",
        json!({}),
        StatusCode::OK,
    )
    .await
}

#[utoipa::path(get, path = "/api/v1/bans", tag = "security",
    responses((status = 200, body = dialtone_switch::tools::manage::BanList),
              (status = 403, body = ApiError)))]
pub async fn list_bans(
    State(s): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    h: HeaderMap,
) -> Reply {
    run(&s, &h, peer, "list_bans", json!({}), StatusCode::OK).await
}

#[utoipa::path(delete, path = "/api/v1/bans/{address}", tag = "security",
    params(("address" = String, Path, description = "The banned source's IP address")),
    responses((status = 200, body = dialtone_switch::tools::manage::LiftedBan),
              (status = 400, body = ApiError), (status = 403, body = ApiError),
              (status = 404, body = ApiError)))]
pub async fn lift_ban(
    State(s): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    h: HeaderMap,
    Path(address): Path<String>,
) -> Reply {
    let args = json!({ "address": address });
    run(&s, &h, peer, "lift_ban", args, StatusCode::OK).await
}

/// The period (RFC 3339 times; default the last 24 hours).
#[derive(Deserialize, serde::Serialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PeriodQuery {
    since: Option<String>,
    until: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/statistics", tag = "calls", params(PeriodQuery),
    responses((status = 200, body = dialtone_switch::tools::manage::CallStatistics),
              (status = 400, body = ApiError)))]
pub async fn statistics(
    State(s): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    h: HeaderMap,
    Query(q): Query<PeriodQuery>,
) -> Reply {
    let args = query_args(&q);
    run(&s, &h, peer, "get_call_statistics", args, StatusCode::OK).await
}

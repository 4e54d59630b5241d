//! `/api/v1/calls`: live calls and the call commands, for operators and
//! scripts. A request carries either the operator token
//! (`Authorization: Bearer <http.api_token>`: every call, and transfers
//! with the operator's authority) or an account's API key (`X-API-Key:
//! KEY` or `Authorization: Bearer KEY`: that account's calls only, another
//! account's being "no live call" exactly as an unknown id, and transfers
//! with the account's authority). Failed keys are logged and rate-limited
//! per source address, with the MCP server's. With no token configured and
//! no credentials sent the API is off (404). It is one more front end
//! of the switch's [`CallControl`]: commands are parsed by
//! `CallCommand::from_action`, sent to the call's actor, and answered with
//! the real outcome (a transfer answers when the new party answers or
//! fails).
//!
//! - `GET /api/v1/calls`: `{"calls": [snapshot, …]}`, live calls oldest first;
//!   with any of `status`, `since`, `until`, `limit`: `{"calls": [call, …]}`,
//!   live and ended calls newest first as the `list_calls` tool gives them;
//! - `POST /api/v1/calls`: place a call now, or at `scheduledAt` (the
//!   `create_call` tool);
//! - `GET /api/v1/calls/ID`: a live call's snapshot (by call id or any leg's
//!   SIP Call-ID), else its record with the transcript, else 404;
//! - `POST /api/v1/calls/ID/ACTION` with a JSON object: hangup, hold,
//!   resume, dtmf, transfer, bridge;
//! - the management endpoints (`manage`) and listings (`objects`), and
//!   `GET /api/v1/openapi.json`: this API's OpenAPI document, generated
//!   from the handlers and types (`openapi`).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use dialtone_mcp::auth::{bearer, AuthError};
use dialtone_mcp::presented_key;
use dialtone_store::KEY_PREFIX;
use dialtone_switch::call::{Authority, CallCommand, CommandError, CommandOutcome};
use dialtone_switch::control::Scope;
use serde_json::{json, Value};

use crate::http::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/calls", get(list_calls).post(create_call))
        .route("/api/v1/calls/{id}", get(get_call))
        .route("/api/v1/calls/{id}/{action}", post(command))
        .route("/api/v1/openapi.json", get(openapi::document))
        .merge(objects::routes())
        .merge(manage::routes())
}

mod manage;
mod objects;
mod openapi;

type Reply = (StatusCode, Json<Value>);

pub(crate) fn error(status: StatusCode, msg: impl Into<String>) -> Reply {
    (status, Json(json!({ "error": msg.into() })))
}

/// Who a request acts as.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Principal {
    Operator,
    /// An API key's account (its id).
    Account(String),
}

impl Principal {
    fn scope(&self) -> Scope<'_> {
        match self {
            Principal::Operator => Scope::Operator,
            Principal::Account(a) => Scope::Account(a),
        }
    }

    fn authority(&self) -> Authority {
        match self {
            Principal::Operator => Authority::Operator,
            Principal::Account(a) => Authority::Account(a.clone()),
        }
    }
}

/// Constant-time comparison: the operator token is a secret.
fn same_secret(given: &str, token: &str) -> bool {
    given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

fn auth_error(e: AuthError) -> Reply {
    let status = e.status();
    let msg = match e {
        AuthError::Missing => {
            "missing credentials: Authorization: Bearer TOKEN or X-API-Key: KEY".into()
        }
        AuthError::Invalid => "wrong bearer token or API key".into(),
        other => other.to_string(),
    };
    error(status, msg)
}

pub(crate) async fn authorized(
    state: &AppState,
    headers: &HeaderMap,
    peer: SocketAddr,
) -> Result<Principal, Reply> {
    let peer = Some(peer);
    state.keys.admit(peer).map_err(auth_error)?;
    let sent_key = headers.contains_key("x-api-key");
    let given = presented_key(headers);
    // A bearer that is the operator token; anything else must be a key.
    let is_bearer = !sent_key && given.is_some() && bearer(headers) == given;
    if state.api_token.is_empty() {
        // Without a token the API is off for everyone but API keys: a
        // request that sends none (no X-API-Key, no bearer of a key's form)
        // is told so rather than refused.
        let key_like = given.is_some_and(|g| !is_bearer || g.starts_with(KEY_PREFIX));
        if !key_like {
            return Err(error(
                StatusCode::NOT_FOUND,
                "the API is off: set http.api_token, or send an account's API key",
            ));
        }
    }
    let Some(given) = given else {
        return Err(auth_error(state.keys.failed(peer, AuthError::Missing)));
    };
    if is_bearer && !state.api_token.is_empty() && same_secret(given, &state.api_token) {
        return Ok(Principal::Operator);
    }
    let who = state.keys.verify(given, peer).await.map_err(auth_error)?;
    Ok(Principal::Account(who.account_id))
}

/// The filters of the call listing (any of them: the `list_calls` view).
#[derive(serde::Deserialize, serde::Serialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct CallsQuery {
    /// live, ringing, in-progress, ended, answered, failed, or an outcome
    /// (busy, no_answer, cancelled, rejected, unavailable).
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    /// RFC 3339: calls that started at or after this time.
    #[serde(skip_serializing_if = "Option::is_none")]
    since: Option<String>,
    /// RFC 3339: calls that started before this time.
    #[serde(skip_serializing_if = "Option::is_none")]
    until: Option<String>,
    /// At most this many (default 50).
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<u32>,
}

/// Calls: the live ones' snapshots; with a filter, live and ended calls.
#[utoipa::path(get, path = "/api/v1/calls", tag = "calls", params(CallsQuery),
    responses((status = 200, description = "Without parameters `{\"calls\": [snapshot]}`, the \
        live calls oldest first; with any, the call objects of `list_calls`, newest first",
        body = dialtone_switch::tools::manage::CallList),
        (status = 401, body = manage::ApiError)))]
pub(crate) async fn list_calls(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<CallsQuery>,
) -> Reply {
    let filtered =
        q.status.is_some() || q.since.is_some() || q.until.is_some() || q.limit.is_some();
    if filtered {
        let args = serde_json::to_value(&q).unwrap_or(Value::Null);
        return manage::run(&state, &headers, peer, "list_calls", args, StatusCode::OK).await;
    }
    let who = match authorized(&state, &headers, peer).await {
        Ok(w) => w,
        Err(e) => return e,
    };
    let calls = state.switch.control().list(who.scope());
    (StatusCode::OK, Json(json!({ "calls": calls })))
}

/// Places a call now, or stores it for `scheduledAt`.
#[utoipa::path(post, path = "/api/v1/calls", tag = "calls",
    request_body = dialtone_switch::tools::manage::CreateCall,
    responses((status = 201, body = dialtone_switch::tools::manage::CreateCallResult),
              (status = 400, body = manage::ApiError), (status = 404, body = manage::ApiError)))]
pub(crate) async fn create_call(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Reply {
    manage::run(
        &state,
        &headers,
        peer,
        "create_call",
        body,
        StatusCode::CREATED,
    )
    .await
}

/// A live call's snapshot, else its record.
#[utoipa::path(get, path = "/api/v1/calls/{id}", tag = "calls",
    params(("id" = String, Path, description = "The call id, or a live leg's SIP Call-ID")),
    responses((status = 200, description = "`{\"live\": bool, \"call\": snapshot or record}`",
               body = Object),
              (status = 404, body = manage::ApiError)))]
pub(crate) async fn get_call(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    let who = match authorized(&state, &headers, peer).await {
        Ok(w) => w,
        Err(e) => return e,
    };
    if let Ok(s) = state.switch.control().snapshot(&id, who.scope()) {
        return (StatusCode::OK, Json(json!({ "live": true, "call": s })));
    }
    // An account sees only its own records, as it sees only its own calls.
    let visible = |r: &dialtone_store::CallRecord| match &who {
        Principal::Operator => true,
        Principal::Account(a) => r.account_id.as_deref() == Some(a.as_str()),
    };
    match state.switch.control().record(&id).await {
        Ok(Some(r)) if visible(&r) => (
            StatusCode::OK,
            Json(json!({ "live": false, "call": crate::cli::call_json(&r) })),
        ),
        Ok(_) => error(StatusCode::NOT_FOUND, format!("no call {id}")),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("database: {e}")),
    }
}

/// A call command, answered with its real outcome.
#[utoipa::path(post, path = "/api/v1/calls/{id}/{action}", tag = "calls",
    params(("id" = String, Path, description = "The live call"),
           ("action" = String, Path,
            description = "hangup, hold, resume, dtmf, transfer or bridge")),
    request_body(content = Object, description = "The action's arguments"),
    responses((status = 200, description = "`{\"outcome\": …}`", body = Object),
              (status = 400, body = manage::ApiError), (status = 404, body = manage::ApiError),
              (status = 409, body = manage::ApiError)))]
pub(crate) async fn command(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    body: Option<Json<Value>>,
) -> Reply {
    let who = match authorized(&state, &headers, peer).await {
        Ok(w) => w,
        Err(e) => return e,
    };
    let args = body.map(|Json(v)| v).unwrap_or(Value::Null);
    let cmd = match CallCommand::from_action(&action, &args, who.authority()) {
        Ok(c) => c,
        Err(e) => return command_error(&id, e),
    };
    // The actor finds a bridge's other call by id alone: an account may
    // only name one of its own.
    if let CallCommand::Bridge { other_call, .. } = &cmd {
        if let Err(e) = state.switch.control().find(other_call, who.scope()) {
            return command_error(other_call, e);
        }
    }
    match state.switch.control().command(&id, who.scope(), cmd).await {
        Ok(outcome) => (StatusCode::OK, Json(outcome_json(&outcome))),
        Err(e) => command_error(&id, e),
    }
}

fn command_error(id: &str, e: CommandError) -> Reply {
    match e {
        CommandError::NoSuchCall => error(StatusCode::NOT_FOUND, format!("no live call {id}")),
        CommandError::CallEnded => error(StatusCode::NOT_FOUND, format!("call {id} has ended")),
        CommandError::UnknownAction(a) => {
            error(StatusCode::NOT_FOUND, format!("no such call action {a:?}"))
        }
        CommandError::InvalidState(m) => error(StatusCode::CONFLICT, m),
        CommandError::Invalid(m) => error(StatusCode::BAD_REQUEST, m),
        CommandError::Refused(m) => error(StatusCode::TOO_MANY_REQUESTS, m),
    }
}

fn outcome_json(o: &CommandOutcome) -> Value {
    match o {
        CommandOutcome::Failed { status, reason } => {
            json!({ "outcome": o.kind(), "status": status, "reason": reason })
        }
        _ => json!({ "outcome": o.kind() }),
    }
}

//! `/api/v1/calls`: live calls and the call commands, for operators and
//! scripts. Every request carries `Authorization: Bearer <http.api_token>`;
//! with no token configured the API is off (404). It is one more front end
//! of the switch's [`CallControl`]: commands are parsed by
//! `CallCommand::from_action`, sent to the call's actor, and answered with
//! the real outcome (a transfer answers when the new party answers or
//! fails).
//!
//! - `GET /api/v1/calls`: `{"calls": [snapshot, …]}`, live calls oldest first;
//! - `GET /api/v1/calls/ID`: a live call's snapshot (by call id or any leg's
//!   SIP Call-ID), else its record with the transcript, else 404;
//! - `POST /api/v1/calls/ID/ACTION` with a JSON object: hangup, hold,
//!   resume, dtmf, transfer, bridge.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use dialtone_switch::call::{Authority, CallCommand, CommandError, CommandOutcome};
use dialtone_switch::control::Scope;
use serde_json::{json, Value};

use crate::http::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/calls", get(list_calls))
        .route("/api/v1/calls/{id}", get(get_call))
        .route("/api/v1/calls/{id}/{action}", post(command))
}

type Reply = (StatusCode, Json<Value>);

fn error(status: StatusCode, msg: impl Into<String>) -> Reply {
    (status, Json(json!({ "error": msg.into() })))
}

fn authorized(state: &AppState, headers: &HeaderMap) -> Result<(), Reply> {
    if state.api_token.is_empty() {
        return Err(error(
            StatusCode::NOT_FOUND,
            "the API is off: set http.api_token",
        ));
    }
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    // Constant-time comparison: the token is a secret.
    let ok = given.is_some_and(|g| {
        g.len() == state.api_token.len()
            && g.bytes()
                .zip(state.api_token.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    });
    if ok {
        Ok(())
    } else {
        Err(error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token",
        ))
    }
}

async fn list_calls(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Reply {
    if let Err(e) = authorized(&state, &headers) {
        return e;
    }
    let calls = state.switch.control().list(Scope::Operator);
    (StatusCode::OK, Json(json!({ "calls": calls })))
}

async fn get_call(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    if let Err(e) = authorized(&state, &headers) {
        return e;
    }
    if let Ok(s) = state.switch.control().snapshot(&id, Scope::Operator) {
        return (StatusCode::OK, Json(json!({ "live": true, "call": s })));
    }
    match state.store.calls().get(&id).await {
        Ok(Some(r)) => (
            StatusCode::OK,
            Json(json!({ "live": false, "call": crate::cli::call_json(&r) })),
        ),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no call {id}")),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("database: {e}")),
    }
}

async fn command(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    body: Option<Json<Value>>,
) -> Reply {
    if let Err(e) = authorized(&state, &headers) {
        return e;
    }
    let args = body.map(|Json(v)| v).unwrap_or(Value::Null);
    let cmd = match CallCommand::from_action(&action, &args, Authority::Operator) {
        Ok(c) => c,
        Err(e) => return command_error(&id, e),
    };
    match state
        .switch
        .control()
        .command(&id, Scope::Operator, cmd)
        .await
    {
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

//! `/api/v1/calls`: live calls and the call commands, for operators and
//! scripts. Every request carries `Authorization: Bearer <http.api_token>`;
//! with no token configured the API is off (404), since accounts and API
//! keys arrive with the MCP server. Each command goes to the call's actor as
//! the same `CallCommand` every other front end sends, and the answer is the
//! real outcome (a transfer answers when the new party answers or fails).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use dialtone_switch::call::{CallCommand, CommandError, CommandOutcome, Destination, Party};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::http::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/calls", get(list_calls))
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
    let ids: Vec<String> = state
        .switch
        .calls()
        .registry
        .all()
        .iter()
        .map(|h| h.id.to_string())
        .collect();
    (StatusCode::OK, Json(json!({ "calls": ids })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Args {
    cause: Option<String>,
    party: Option<String>,
    to: Option<String>,
    digits: Option<String>,
    keep: Option<String>,
    other_call: Option<String>,
    other_keep: Option<String>,
}

fn party(v: Option<&str>, field: &str) -> Result<Party, Reply> {
    match v {
        Some("caller") => Ok(Party::Caller),
        Some("callee") => Ok(Party::Callee),
        other => Err(error(
            StatusCode::BAD_REQUEST,
            format!("{field} must be \"caller\" or \"callee\", not {other:?}"),
        )),
    }
}

fn destination(to: &str) -> Destination {
    if to.starts_with("sip:") || to.starts_with("sips:") || to.starts_with('<') {
        Destination::Uri(to.to_string())
    } else {
        Destination::Dial(to.to_string())
    }
}

fn to_command(action: &str, a: Args) -> Result<CallCommand, Reply> {
    let need = |v: Option<String>, field: &str| {
        v.ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                format!("{action} needs \"{field}\""),
            )
        })
    };
    Ok(match action {
        "hangup" => CallCommand::Hangup {
            cause: a.cause.unwrap_or_else(|| "api hangup".into()),
        },
        "hold" => CallCommand::Hold {
            party: party(a.party.as_deref(), "party")?,
        },
        "resume" => CallCommand::Resume {
            party: party(a.party.as_deref(), "party")?,
        },
        "dtmf" => CallCommand::SendDtmf {
            to: party(a.to.as_deref(), "to")?,
            digits: need(a.digits, "digits")?,
        },
        "transfer" => CallCommand::Transfer {
            keep: party(a.keep.as_deref(), "keep")?,
            to: destination(&need(a.to, "to")?),
        },
        "bridge" => CallCommand::Bridge {
            keep: party(a.keep.as_deref(), "keep")?,
            other_call: need(a.other_call, "other_call")?,
            other_keep: party(a.other_keep.as_deref(), "other_keep")?,
        },
        other => {
            return Err(error(
                StatusCode::NOT_FOUND,
                format!("no such call action {other:?}"),
            ))
        }
    })
}

async fn command(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    body: Option<Json<Args>>,
) -> Reply {
    if let Err(e) = authorized(&state, &headers) {
        return e;
    }
    let cmd = match to_command(&action, body.map(|Json(a)| a).unwrap_or_default()) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let Some(call) = state.switch.calls().registry.get(&id) else {
        return error(StatusCode::NOT_FOUND, format!("no live call {id}"));
    };
    match call.command(cmd).await {
        Ok(outcome) => (StatusCode::OK, Json(outcome_json(&outcome))),
        Err(CommandError::NoSuchCall | CommandError::CallEnded) => {
            error(StatusCode::NOT_FOUND, format!("call {id} has ended"))
        }
        Err(CommandError::InvalidState(m)) => error(StatusCode::CONFLICT, m),
        Err(CommandError::Invalid(m)) => error(StatusCode::BAD_REQUEST, m),
    }
}

fn outcome_json(o: &CommandOutcome) -> Value {
    match o {
        CommandOutcome::Done => json!({ "outcome": "done" }),
        CommandOutcome::Answered => json!({ "outcome": "answered" }),
        CommandOutcome::Busy => json!({ "outcome": "busy" }),
        CommandOutcome::NoAnswer => json!({ "outcome": "no_answer" }),
        CommandOutcome::Failed { status, reason } => {
            json!({ "outcome": "failed", "status": status, "reason": reason })
        }
    }
}

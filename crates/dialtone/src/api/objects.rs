//! The REST listings of what the tools work with, in the JSON the CLI's
//! `--json` prints, and scoped like the calls: the operator sees every
//! account's, an API key only its own account's.
//!
//! - `GET /api/v1/leads`, `GET /api/v1/leads/ID` (with its cases);
//! - `GET /api/v1/contacts`;
//! - `GET /api/v1/queues`;
//! - `GET /api/v1/personas/NAME/tools`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use dialtone_store::{Store, StoreError};
use serde_json::{json, Value};

use super::{authorized, error, Principal, Reply};
use crate::cli::{contacts, leads, queues, tools};
use crate::http::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/leads", get(list_leads))
        .route("/api/v1/leads/{id}", get(get_lead))
        .route("/api/v1/contacts", get(list_contacts))
        .route("/api/v1/queues", get(list_queues))
        .route("/api/v1/personas/{name}/tools", get(list_tools))
}

/// Whether `who` may see what belongs to `account_id`.
fn sees(who: &Principal, account_id: &str) -> bool {
    match who {
        Principal::Operator => true,
        Principal::Account(a) => a == account_id,
    }
}

fn db(e: StoreError) -> Reply {
    error(StatusCode::SERVICE_UNAVAILABLE, format!("database: {e}"))
}

async fn account_names(store: &Store) -> Result<HashMap<String, String>, Reply> {
    Ok(store
        .accounts()
        .list()
        .await
        .map_err(db)?
        .into_iter()
        .map(|a| (a.id, a.name))
        .collect())
}

/// Runs `f` for an authorized request: the principal, the store.
async fn with_auth<F, Fut>(state: &AppState, headers: &HeaderMap, peer: SocketAddr, f: F) -> Reply
where
    F: FnOnce(Principal) -> Fut,
    Fut: std::future::Future<Output = Result<Value, Reply>>,
{
    match authorized(state, headers, peer).await {
        Ok(who) => match f(who).await {
            Ok(v) => (StatusCode::OK, Json(v)),
            Err(e) => e,
        },
        Err(e) => e,
    }
}

#[utoipa::path(get, path = "/api/v1/leads", tag = "listings",
    responses((status = 200, description = "`{\"leads\": [lead]}`", body = Object)))]
pub(crate) async fn list_leads(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Reply {
    let store = state.store.clone();
    with_auth(&state, &headers, peer, |who| async move {
        let names = account_names(&store).await?;
        let counts = store.leads().case_counts().await.map_err(db)?;
        let rows: Vec<Value> = store
            .leads()
            .list()
            .await
            .map_err(db)?
            .iter()
            .filter(|l| sees(&who, &l.account_id))
            .map(|l| {
                let n = counts.get(&l.id).copied().unwrap_or(0);
                let account = names.get(&l.account_id).map_or("", String::as_str);
                leads::lead_json(l, account, json!(n))
            })
            .collect();
        Ok(json!({ "leads": rows }))
    })
    .await
}

#[utoipa::path(get, path = "/api/v1/leads/{id}", tag = "listings",
    params(("id" = String, Path, description = "The lead's id")),
    responses((status = 200, description = "`{\"lead\": lead with its cases}`", body = Object),
              (status = 404, body = super::manage::ApiError)))]
pub(crate) async fn get_lead(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    let store = state.store.clone();
    with_auth(&state, &headers, peer, |who| async move {
        let names = account_names(&store).await?;
        match store.leads().get(&id).await.map_err(db)? {
            Some((l, cases)) if sees(&who, &l.account_id) => {
                let account = names.get(&l.account_id).map_or("", String::as_str);
                let cases: Vec<Value> = cases.iter().map(leads::case_json).collect();
                Ok(json!({ "lead": leads::lead_json(&l, account, Value::Array(cases)) }))
            }
            _ => Err(error(StatusCode::NOT_FOUND, format!("no lead {id}"))),
        }
    })
    .await
}

#[utoipa::path(get, path = "/api/v1/contacts", tag = "listings",
    responses((status = 200, description = "`{\"contacts\": [contact]}`", body = Object)))]
pub(crate) async fn list_contacts(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Reply {
    let store = state.store.clone();
    with_auth(&state, &headers, peer, |who| async move {
        let names = account_names(&store).await?;
        let rows: Vec<Value> = store
            .contacts()
            .list(None)
            .await
            .map_err(db)?
            .iter()
            .filter(|c| sees(&who, &c.account_id))
            .map(|c| contacts::contact_json(c, names.get(&c.account_id).map_or("", String::as_str)))
            .collect();
        Ok(json!({ "contacts": rows }))
    })
    .await
}

#[utoipa::path(get, path = "/api/v1/queues", tag = "listings",
    responses((status = 200, description = "`{\"queues\": [queue]}`", body = Object)))]
pub(crate) async fn list_queues(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Reply {
    let store = state.store.clone();
    with_auth(&state, &headers, peer, |who| async move {
        let names = account_names(&store).await?;
        let numbers = store.numbers().list().await.map_err(db)?;
        let rows: Vec<Value> = store
            .queues()
            .list()
            .await
            .map_err(db)?
            .iter()
            .filter(|q| sees(&who, &q.account_id))
            .map(|q| {
                let routed: Vec<String> = numbers
                    .iter()
                    .filter(|n| n.target_kind.as_str() == "queue" && n.target == q.name)
                    .map(|n| n.number.clone())
                    .collect();
                queues::json_of(
                    q,
                    names.get(&q.account_id).map_or("", String::as_str),
                    &routed,
                )
            })
            .collect();
        Ok(json!({ "queues": rows }))
    })
    .await
}

#[utoipa::path(get, path = "/api/v1/personas/{name}/tools", tag = "listings",
    operation_id = "list_persona_tools",
    params(("name" = String, Path, description = "The persona's name")),
    responses((status = 200, description = "`{\"persona\": name, \"tools\": [tool]}` as \
        `dialtone tool show --json` prints them", body = Object),
              (status = 404, body = super::manage::ApiError)))]
pub(crate) async fn list_tools(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Reply {
    let store = state.store.clone();
    with_auth(&state, &headers, peer, |who| async move {
        let persona = store
            .personas()
            .get(&name)
            .await
            .map_err(db)?
            .filter(|p| sees(&who, &p.account_id))
            .ok_or_else(|| error(StatusCode::NOT_FOUND, format!("no persona {name}")))?;
        let rows: Vec<Value> = store
            .persona_tools()
            .list_for_persona(&persona.id)
            .await
            .map_err(db)?
            .iter()
            .map(|t| tools::json_of(t, &persona.name))
            .collect();
        Ok(json!({ "persona": persona.name, "tools": rows }))
    })
    .await
}

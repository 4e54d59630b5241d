//! An assistant's own tools: `list_tools`, `get_tool`, `create_tool`,
//! `update_tool`, `delete_tool` — a transfer to a given user or queue, or
//! an HTTP API request built from templates, offered to that assistant's
//! model beside the global tools. The store checks name, description and
//! request (the checks `dialtone tool add` gets); here, as on the command
//! line, a transfer's user or queue must exist (in the account).

use dialtone_store::{
    ApiRequest, Persona, PersonaTool, PersonaToolKind, PersonaToolUpdate, Store, StoreError,
    ToolVariable, VariableKind, DEFAULT_TOOL_TIMEOUT_MS,
};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::views::{ApiRequestView, CustomTool, CustomToolList, Deleted, Header, ToolVariableView};
use super::{args, db, operation, sees, time_text, to_json, Kind, ManageError, Operation};
use crate::control::CallControl;
use crate::tools::ToolContext;

const KINDS: [&str; 3] = ["transfer_user", "transfer_queue", "api_request"];

pub(super) fn operations() -> Vec<Operation> {
    vec![
        operation::<ListTools, CustomToolList>(
            "list_tools",
            "List the assistants' own tools (transfers to a user or queue, HTTP API \
             requests), of one assistant or all of the account's.",
            Kind::Read,
            |c, ctx, a| Box::pin(list(c, ctx, a)),
        ),
        operation::<ToolId, CustomTool>(
            "get_tool",
            "One of an assistant's own tools, by id.",
            Kind::Read,
            |c, ctx, a| Box::pin(get(c, ctx, a)),
        ),
        operation::<CreateTool, CustomTool>(
            "create_tool",
            "Give an assistant a tool of its own: type transfer_user (user), transfer_queue \
             (queue) or api_request (url with {variable} placeholders and ${ENV} secrets, \
             method, headers, body, variables the model fills in).",
            Kind::Write,
            |c, ctx, a| Box::pin(create(c, ctx, a)),
        ),
        operation::<UpdateTool, CustomTool>(
            "update_tool",
            "Change an assistant's tool (by id): each field given replaces the stored one.",
            Kind::Write,
            |c, ctx, a| Box::pin(update(c, ctx, a)),
        ),
        operation::<ToolId, Deleted>(
            "delete_tool",
            "Delete an assistant's tool (by id).",
            Kind::Delete,
            |c, ctx, a| Box::pin(delete(c, ctx, a)),
        ),
    ]
}

/// Whose tools.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ListTools {
    /// Only this assistant's (id or name).
    pub assistant_id: Option<String>,
}

/// Names one tool.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ToolId {
    pub tool_id: String,
}

/// The fields of a tool's type, as given.
#[derive(Default)]
struct ToolKindFields {
    user: Option<String>,
    queue: Option<String>,
    url: Option<String>,
    method: Option<String>,
    headers: Option<Vec<Header>>,
    body: Option<String>,
    variables: Option<Vec<ToolVariableView>>,
    timeout_ms: Option<u32>,
}

impl ToolKindFields {
    fn any(&self) -> bool {
        self.user.is_some() || self.queue.is_some() || self.api_any()
    }

    fn api_any(&self) -> bool {
        self.url.is_some()
            || self.method.is_some()
            || self.headers.is_some()
            || self.body.is_some()
            || self.variables.is_some()
            || self.timeout_ms.is_some()
    }
}

/// The type fields of a request struct (serde's flatten does not go with
/// deny_unknown_fields, so each request lists them).
macro_rules! kind_fields {
    ($v:expr) => {
        ToolKindFields {
            user: $v.user,
            queue: $v.queue,
            url: $v.url,
            method: $v.method,
            headers: $v.headers,
            body: $v.body,
            variables: $v.variables,
            timeout_ms: $v.timeout_ms,
        }
    };
}

/// A new tool.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateTool {
    /// The assistant (id or name).
    pub assistant_id: String,
    /// The function name the model calls: letters, digits, _ and -.
    pub name: String,
    /// What the model is told the tool does.
    pub description: String,
    /// transfer_user, transfer_queue or api_request.
    #[serde(rename = "type")]
    pub kind: String,
    /// transfer_user: the user to transfer to.
    pub user: Option<String>,
    /// transfer_queue: the queue to transfer to.
    pub queue: Option<String>,
    /// api_request: http:// or https:// URL; {variable} and ${ENV} in path and query.
    pub url: Option<String>,
    /// api_request: GET, POST, PUT, PATCH or DELETE (default GET, or POST with a body).
    pub method: Option<String>,
    pub headers: Option<Vec<Header>>,
    /// api_request: the body template.
    pub body: Option<String>,
    /// api_request: the arguments the model fills in.
    pub variables: Option<Vec<ToolVariableView>>,
    /// api_request: give up after this long (default 5000).
    pub timeout_ms: Option<u32>,
}

/// Changes to a tool.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateTool {
    pub tool_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    /// A new type needs its fields.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// transfer_user: the user to transfer to.
    pub user: Option<String>,
    /// transfer_queue: the queue to transfer to.
    pub queue: Option<String>,
    /// api_request: http:// or https:// URL; {variable} and ${ENV} in path and query.
    pub url: Option<String>,
    /// api_request: GET, POST, PUT, PATCH or DELETE (default GET, or POST with a body).
    pub method: Option<String>,
    pub headers: Option<Vec<Header>>,
    /// api_request: the body template.
    pub body: Option<String>,
    /// api_request: the arguments the model fills in.
    pub variables: Option<Vec<ToolVariableView>>,
    /// api_request: give up after this long (default 5000).
    pub timeout_ms: Option<u32>,
}

fn view(t: PersonaTool, persona: &str) -> CustomTool {
    let parameters = t.input_schema();
    let (user, queue, request) = match t.kind {
        PersonaToolKind::TransferUser { user } => (Some(user), None, None),
        PersonaToolKind::TransferQueue { queue } => (None, Some(queue), None),
        PersonaToolKind::ApiRequest(r) => (None, None, Some(request_view(r))),
    };
    let kind = match (&user, &queue) {
        (Some(_), _) => KINDS[0],
        (_, Some(_)) => KINDS[1],
        _ => KINDS[2],
    };
    CustomTool {
        id: t.id,
        assistant_id: t.persona_id,
        assistant: persona.to_owned(),
        name: t.name,
        description: t.description,
        kind: kind.into(),
        user,
        queue,
        request,
        parameters,
        created_at: time_text(t.created_at.saturating_mul(1000)),
        updated_at: time_text(t.updated_at.saturating_mul(1000)),
    }
}

fn request_view(r: ApiRequest) -> ApiRequestView {
    ApiRequestView {
        method: r.method,
        url: r.url,
        headers: r
            .headers
            .into_iter()
            .map(|(name, value)| Header { name, value })
            .collect(),
        body: r.body,
        variables: r
            .variables
            .into_iter()
            .map(|v| ToolVariableView {
                name: v.name,
                kind: v.kind.as_str().into(),
                options: match v.kind {
                    VariableKind::Options(o) => Some(o),
                    _ => None,
                },
                description: v.description,
                required: v.required,
            })
            .collect(),
        timeout_ms: r.timeout_ms,
    }
}

/// The personas in the context's view.
async fn personas(store: &Store, ctx: &ToolContext) -> Result<Vec<Persona>, ManageError> {
    match &ctx.account_id {
        Some(a) => store.personas().list_for_account(a).await,
        None => store.personas().list().await,
    }
    .map_err(db)
}

/// The tool `id` and its persona, if the context sees them.
async fn find(
    store: &Store,
    ctx: &ToolContext,
    id: &str,
) -> Result<(PersonaTool, Persona), ManageError> {
    for p in personas(store, ctx).await? {
        let tools = store
            .persona_tools()
            .list_for_persona(&p.id)
            .await
            .map_err(db)?;
        if let Some(t) = tools.into_iter().find(|t| t.id == id) {
            return Ok((t, p));
        }
    }
    Err(ManageError::NotFound(format!(
        "no tool {id:?} (list_tools gives the ids)"
    )))
}

/// The kind `kind` from `f`, over what `current` has (on update).
async fn build_kind(
    store: &Store,
    ctx: &ToolContext,
    kind: &str,
    f: ToolKindFields,
    current: Option<&PersonaToolKind>,
) -> Result<PersonaToolKind, ManageError> {
    let invalid = |m: String| Err(ManageError::Invalid(m));
    let api_fields = f.api_any();
    match kind {
        "transfer_user" | "transfer_queue" if api_fields => invalid(format!(
            "url, method, headers, body, variables and timeoutMs are for api_request, not {kind}"
        )),
        "transfer_user" => {
            let user = match (f.user, current) {
                (Some(u), _) => u,
                (None, Some(PersonaToolKind::TransferUser { user })) => user.clone(),
                _ => return invalid("type transfer_user needs user (a user name)".into()),
            };
            let found = store.users().get(&user).await.map_err(db)?;
            if !found.is_some_and(|u| sees(ctx, &u.account_id)) {
                return invalid(format!("user {user:?}: no such user"));
            }
            Ok(PersonaToolKind::TransferUser { user })
        }
        "transfer_queue" => {
            let queue = match (f.queue, current) {
                (Some(q), _) => q,
                (None, Some(PersonaToolKind::TransferQueue { queue })) => queue.clone(),
                _ => return invalid("type transfer_queue needs queue (a queue name)".into()),
            };
            let found = store.queues().get(&queue).await.map_err(db)?;
            if !found.is_some_and(|q| sees(ctx, &q.account_id)) {
                return invalid(format!("queue {queue:?}: no such queue"));
            }
            Ok(PersonaToolKind::TransferQueue { queue })
        }
        "api_request" => {
            if f.user.is_some() || f.queue.is_some() {
                return invalid("user and queue are for the transfer types".into());
            }
            let old = match current {
                Some(PersonaToolKind::ApiRequest(r)) => Some(r),
                _ => None,
            };
            let Some(url) = f.url.or_else(|| old.map(|r| r.url.clone())) else {
                return invalid("type api_request needs url".into());
            };
            let body = f.body.or_else(|| old.and_then(|r| r.body.clone()));
            let method = match f.method {
                Some(m) => m.to_ascii_uppercase(),
                None => match old {
                    Some(r) => r.method.clone(),
                    None if body.is_some() => "POST".into(),
                    None => "GET".into(),
                },
            };
            let headers = match f.headers {
                Some(h) => h.into_iter().map(|h| (h.name, h.value)).collect(),
                None => old.map(|r| r.headers.clone()).unwrap_or_default(),
            };
            let variables = match f.variables {
                Some(v) => v.into_iter().map(variable).collect::<Result<_, _>>()?,
                None => old.map(|r| r.variables.clone()).unwrap_or_default(),
            };
            let timeout_ms = f
                .timeout_ms
                .or(old.map(|r| r.timeout_ms))
                .unwrap_or(DEFAULT_TOOL_TIMEOUT_MS);
            Ok(PersonaToolKind::ApiRequest(ApiRequest {
                method,
                url,
                headers,
                body,
                variables,
                timeout_ms,
            }))
        }
        other => invalid(format!("type {other:?} is not one of {}", KINDS.join(", "))),
    }
}

fn variable(v: ToolVariableView) -> Result<ToolVariable, ManageError> {
    let kind = match (v.kind.as_str(), v.options) {
        ("text", None) => VariableKind::Text,
        ("number", None) => VariableKind::Number,
        ("options", Some(o)) => VariableKind::Options(o),
        ("options", None) => {
            return Err(ManageError::Invalid(format!(
                "variable {}: type options needs options (the allowed values)",
                v.name
            )))
        }
        (t, _) => {
            return Err(ManageError::Invalid(format!(
                "variable {}: type {t:?} (with options only for \"options\") is not one of \
                 text, number, options",
                v.name
            )))
        }
    };
    Ok(ToolVariable {
        name: v.name,
        kind,
        description: v.description,
        required: v.required,
    })
}

fn write_error(e: StoreError, name: &str, persona: &str) -> ManageError {
    match e {
        StoreError::Invalid { reason } => ManageError::Invalid(reason),
        StoreError::Conflict { .. } => ManageError::Conflict(format!(
            "assistant {persona} already has a tool named {name:?}"
        )),
        StoreError::NotFound { what } => ManageError::NotFound(format!("{what} not found")),
        other => db(other),
    }
}

async fn list(control: &CallControl, ctx: &ToolContext, a: Value) -> Result<Value, ManageError> {
    let ListTools { assistant_id } = args(a)?;
    let store = control.store();
    let chosen = match assistant_id {
        Some(id) => vec![super::assistants::find(store, ctx, &id).await?],
        None => personas(store, ctx).await?,
    };
    let mut tools = Vec::new();
    for p in chosen {
        let own = store
            .persona_tools()
            .list_for_persona(&p.id)
            .await
            .map_err(db)?;
        tools.extend(own.into_iter().map(|t| view(t, &p.name)));
    }
    to_json(&CustomToolList { tools })
}

async fn get(control: &CallControl, ctx: &ToolContext, a: Value) -> Result<Value, ManageError> {
    let ToolId { tool_id } = args(a)?;
    let (t, p) = find(control.store(), ctx, &tool_id).await?;
    to_json(&view(t, &p.name))
}

async fn create(control: &CallControl, ctx: &ToolContext, a: Value) -> Result<Value, ManageError> {
    let c: CreateTool = args(a)?;
    let store = control.store();
    let p = super::assistants::find(store, ctx, &c.assistant_id).await?;
    let (name, description, kind_name) = (c.name.clone(), c.description.clone(), c.kind.clone());
    let kind = build_kind(store, ctx, &kind_name, kind_fields!(c), None).await?;
    match store
        .persona_tools()
        .create(&p.id, &name, &description, kind)
        .await
    {
        Ok(t) => to_json(&view(t, &p.name)),
        Err(e) => Err(write_error(e, &name, &p.name)),
    }
}

async fn update(control: &CallControl, ctx: &ToolContext, a: Value) -> Result<Value, ManageError> {
    let u: UpdateTool = args(a)?;
    let store = control.store();
    let (t, p) = find(store, ctx, &u.tool_id).await?;
    let (new_name, description, kind_name) =
        (u.name.clone(), u.description.clone(), u.kind.clone());
    let f = kind_fields!(u);
    let kind = if kind_name.is_some() || f.any() {
        let name = kind_name.unwrap_or_else(|| t.kind.as_str().to_owned());
        Some(build_kind(store, ctx, &name, f, Some(&t.kind)).await?)
    } else {
        None
    };
    let changes = PersonaToolUpdate {
        name: new_name,
        description,
        kind,
    };
    if changes == PersonaToolUpdate::default() {
        return Err(ManageError::Invalid(
            "nothing to update: give at least one field besides toolId".into(),
        ));
    }
    let new_name = changes.name.clone().unwrap_or_else(|| t.name.clone());
    match store.persona_tools().update(&p.id, &t.name, changes).await {
        Ok(t) => to_json(&view(t, &p.name)),
        Err(e) => Err(write_error(e, &new_name, &p.name)),
    }
}

async fn delete(control: &CallControl, ctx: &ToolContext, a: Value) -> Result<Value, ManageError> {
    let ToolId { tool_id } = args(a)?;
    let store = control.store();
    let (t, p) = find(store, ctx, &tool_id).await?;
    let removed = store
        .persona_tools()
        .remove(&p.id, &t.name)
        .await
        .map_err(db)?;
    to_json(&Deleted {
        id: t.id,
        deleted: removed,
    })
}

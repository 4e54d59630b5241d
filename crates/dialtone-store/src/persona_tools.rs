//! Persona tools: the custom tools of one persona, offered to its model
//! beside the global ones — transfer the caller to a given user or queue, or
//! make an HTTP API request from templates filled with the model's arguments
//! (`template`). A tool's name is unique within its persona, is a valid
//! function name and never shadows a global tool; everything is checked
//! before it is stored (`check`), so the CLI and the MCP server refuse the
//! same things with the same words. Secrets are never stored: a template says
//! `${NAME}` and the environment variable is read when the request is made.
//! Removing a persona removes its tools.

mod check;
mod template;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{json, Value};
use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;

use crate::error::{is_foreign_key_violation, is_unique_violation};
use crate::store::unix_now;
use crate::{Store, StoreError};

pub(crate) use check::check_headers;
pub use check::{check_description, check_kind, check_tool_name, METHODS, TIMEOUT_MS_RANGE};
pub use template::{parse_template, TemplatePart};

/// The tools every persona has; a persona's own tool may not take these names.
pub const GLOBAL_TOOL_NAMES: [&str; 6] = [
    "transfer_call",
    "hangup_call",
    "is_office_open",
    "lookup_contact",
    "check_user_availability",
    "create_lead",
];

/// How long an API-request tool waits when no timeout is given.
pub const DEFAULT_TOOL_TIMEOUT_MS: u32 = 5000;

/// A persona's own tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonaTool {
    pub id: String,
    pub persona_id: String,
    /// The function name the model calls; unique within the persona.
    pub name: String,
    /// What the model is told the tool does.
    pub description: String,
    pub kind: PersonaToolKind,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// What a persona tool does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersonaToolKind {
    /// Transfer the caller to this user (by username).
    TransferUser { user: String },
    /// Transfer the caller to this queue (by name).
    TransferQueue { queue: String },
    /// Make an HTTP request and give the model the answer.
    ApiRequest(ApiRequest),
}

impl PersonaToolKind {
    /// "transfer_user", "transfer_queue" or "api_request" (also how it is stored).
    pub fn as_str(&self) -> &'static str {
        match self {
            PersonaToolKind::TransferUser { .. } => "transfer_user",
            PersonaToolKind::TransferQueue { .. } => "transfer_queue",
            PersonaToolKind::ApiRequest(_) => "api_request",
        }
    }
}

/// An HTTP request made from templates (see `parse_template`): `{name}` is the
/// model's argument `name` (the switch percent-encodes it in the URL and
/// JSON-escapes it in a JSON body), `${NAME}` the environment variable NAME.
/// The URL's host is always literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRequest {
    /// One of [`METHODS`].
    pub method: String,
    /// http:// or https://.
    pub url: String,
    /// Header name and value template, in order.
    pub headers: Vec<(String, String)>,
    /// Body template; None: no body.
    pub body: Option<String>,
    /// The arguments the model fills in; each is used in a template.
    pub variables: Vec<ToolVariable>,
    /// Give up after this long.
    pub timeout_ms: u32,
}

/// An argument of an API-request tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolVariable {
    /// An identifier: `{name}` in the templates.
    pub name: String,
    pub kind: VariableKind,
    /// Told to the model.
    pub description: Option<String>,
    /// The model must give it (else it is filled with "").
    pub required: bool,
}

/// The type of a tool argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VariableKind {
    Text,
    Number,
    /// One of these strings.
    Options(Vec<String>),
}

impl VariableKind {
    /// "text", "number" or "options" (also how it is stored).
    pub fn as_str(&self) -> &'static str {
        match self {
            VariableKind::Text => "text",
            VariableKind::Number => "number",
            VariableKind::Options(_) => "options",
        }
    }
}

impl PersonaTool {
    /// The JSON schema of the tool's arguments, as offered to the model and
    /// listed over MCP: an object with one property per variable.
    pub fn input_schema(&self) -> Value {
        let PersonaToolKind::ApiRequest(request) = &self.kind else {
            return json!({"type": "object", "properties": {}, "additionalProperties": false});
        };
        let mut properties = serde_json::Map::new();
        for v in &request.variables {
            let mut property = match &v.kind {
                VariableKind::Text => json!({"type": "string"}),
                VariableKind::Number => json!({"type": "number"}),
                VariableKind::Options(options) => json!({"type": "string", "enum": options}),
            };
            if let (Some(description), Some(map)) = (&v.description, property.as_object_mut()) {
                map.insert("description".into(), Value::from(description.as_str()));
            }
            properties.insert(v.name.clone(), property);
        }
        let required: Vec<&str> = request
            .variables
            .iter()
            .filter(|v| v.required)
            .map(|v| v.name.as_str())
            .collect();
        json!({
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": false,
        })
    }
}

/// What [`PersonaTools::update`] changes; None keeps the stored value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersonaToolUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub kind: Option<PersonaToolKind>,
}

/// The persona_tools table. Obtained from [`Store::persona_tools`].
#[derive(Debug, Clone, Copy)]
pub struct PersonaTools<'a> {
    store: &'a Store,
}

const SELECT_TOOLS: &str = "SELECT id, persona_id, name, description, kind, target, method, url, \
     headers, body, variables, timeout_ms, created_at, updated_at FROM persona_tools";

impl<'a> PersonaTools<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        PersonaTools { store }
    }

    /// Creates a tool of the persona (by id). [`StoreError::Invalid`] when the
    /// name, description or kind is refused (see `check_tool_name`,
    /// `check_kind`), [`StoreError::Conflict`] when the persona has a tool of
    /// that name, [`StoreError::NotFound`] when the persona does not exist.
    /// Whether a transfer's user or queue exists is the caller's to check.
    pub async fn create(
        &self,
        persona_id: &str,
        name: &str,
        description: &str,
        kind: PersonaToolKind,
    ) -> Result<PersonaTool, StoreError> {
        check_all(name, description, &kind)?;
        let now = unix_now();
        let tool = PersonaTool {
            id: Uuid::new_v4().to_string(),
            persona_id: persona_id.to_owned(),
            name: name.to_owned(),
            description: description.to_owned(),
            kind,
            created_at: now,
            updated_at: now,
        };
        let columns = Columns::of(&tool.kind)?;
        let inserted = sqlx::query(
            "INSERT INTO persona_tools (id, persona_id, name, description, kind, target, method, \
             url, headers, body, variables, timeout_ms, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(tool.id.as_str())
        .bind(persona_id)
        .bind(name)
        .bind(description)
        .bind(tool.kind.as_str())
        .bind(columns.target)
        .bind(columns.method)
        .bind(columns.url)
        .bind(columns.headers)
        .bind(columns.body)
        .bind(columns.variables)
        .bind(columns.timeout_ms)
        .bind(now)
        .bind(now)
        .execute(self.store.pool())
        .await;
        match inserted {
            Ok(_) => Ok(tool),
            Err(e) => Err(write_error(e, persona_id, name)),
        }
    }

    /// The persona's tools, ordered by name.
    pub async fn list_for_persona(&self, persona_id: &str) -> Result<Vec<PersonaTool>, StoreError> {
        let rows = sqlx::query(&format!("{SELECT_TOOLS} WHERE persona_id = $1"))
            .bind(persona_id)
            .fetch_all(self.store.pool())
            .await?;
        let mut tools = rows
            .iter()
            .map(tool_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        // Sorted in Rust so both backends agree (see `Accounts::list`).
        tools.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(tools)
    }

    /// The persona's tool with that name, if any.
    pub async fn get(
        &self,
        persona_id: &str,
        name: &str,
    ) -> Result<Option<PersonaTool>, StoreError> {
        let row = sqlx::query(&format!(
            "{SELECT_TOOLS} WHERE persona_id = $1 AND name = $2"
        ))
        .bind(persona_id)
        .bind(name)
        .fetch_optional(self.store.pool())
        .await?;
        Ok(row.as_ref().map(tool_from_row).transpose()?)
    }

    /// Applies `changes` (checked as on create) and returns the tool as
    /// stored. [`StoreError::NotFound`] when there is no such tool,
    /// [`StoreError::Conflict`] when a new name is taken, [`StoreError::Invalid`].
    pub async fn update(
        &self,
        persona_id: &str,
        name: &str,
        changes: PersonaToolUpdate,
    ) -> Result<PersonaTool, StoreError> {
        let mut tx = self.store.begin_write().await?;
        let row = sqlx::query(&format!(
            "{SELECT_TOOLS} WHERE persona_id = $1 AND name = $2"
        ))
        .bind(persona_id)
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Err(StoreError::NotFound {
                what: format!("tool {name:?}"),
            });
        };
        let mut tool = tool_from_row(&row)?;
        if let Some(new_name) = changes.name {
            tool.name = new_name;
        }
        if let Some(description) = changes.description {
            tool.description = description;
        }
        if let Some(kind) = changes.kind {
            tool.kind = kind;
        }
        tool.updated_at = unix_now().max(tool.updated_at);
        let checked = check_all(&tool.name, &tool.description, &tool.kind)
            .and_then(|()| Columns::of(&tool.kind));
        let columns = match checked {
            Ok(columns) => columns,
            Err(e) => {
                tx.rollback().await?;
                return Err(e);
            }
        };
        let updated = sqlx::query(
            "UPDATE persona_tools SET name = $2, description = $3, kind = $4, target = $5, \
             method = $6, url = $7, headers = $8, body = $9, variables = $10, timeout_ms = $11, \
             updated_at = $12 WHERE id = $1",
        )
        .bind(tool.id.as_str())
        .bind(tool.name.as_str())
        .bind(tool.description.as_str())
        .bind(tool.kind.as_str())
        .bind(columns.target)
        .bind(columns.method)
        .bind(columns.url)
        .bind(columns.headers)
        .bind(columns.body)
        .bind(columns.variables)
        .bind(columns.timeout_ms)
        .bind(tool.updated_at)
        .execute(&mut *tx)
        .await;
        match updated {
            Ok(_) => {
                tx.commit().await?;
                Ok(tool)
            }
            Err(e) => {
                tx.rollback().await?;
                Err(write_error(e, persona_id, &tool.name))
            }
        }
    }

    /// Removes the persona's tool; Ok(false) when there was none.
    pub async fn remove(&self, persona_id: &str, name: &str) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM persona_tools WHERE persona_id = $1 AND name = $2")
            .bind(persona_id)
            .bind(name)
            .execute(self.store.pool())
            .await?
            .rows_affected();
        Ok(deleted > 0)
    }
}

fn check_all(name: &str, description: &str, kind: &PersonaToolKind) -> Result<(), StoreError> {
    check_tool_name(name)
        .and_then(|()| check_description(description))
        .and_then(|()| check_kind(kind))
        .map_err(|reason| StoreError::Invalid { reason })
}

fn write_error(e: sqlx::Error, persona_id: &str, name: &str) -> StoreError {
    if is_unique_violation(&e) {
        StoreError::Conflict {
            what: format!("tool {name:?}"),
        }
    } else if is_foreign_key_violation(&e) {
        StoreError::NotFound {
            what: format!("persona {persona_id:?}"),
        }
    } else {
        e.into()
    }
}

/// A kind as its nullable columns.
#[derive(Default)]
struct Columns {
    target: Option<String>,
    method: Option<String>,
    url: Option<String>,
    headers: Option<String>,
    body: Option<String>,
    variables: Option<String>,
    timeout_ms: Option<i64>,
}

impl Columns {
    fn of(kind: &PersonaToolKind) -> Result<Columns, StoreError> {
        Ok(match kind {
            PersonaToolKind::TransferUser { user } => Columns {
                target: Some(user.clone()),
                ..Columns::default()
            },
            PersonaToolKind::TransferQueue { queue } => Columns {
                target: Some(queue.clone()),
                ..Columns::default()
            },
            PersonaToolKind::ApiRequest(r) => Columns {
                method: Some(r.method.clone()),
                url: Some(r.url.clone()),
                headers: Some(headers_json(&r.headers)?),
                body: r.body.clone(),
                variables: Some(variables_json(&r.variables)?),
                timeout_ms: Some(i64::from(r.timeout_ms)),
                ..Columns::default()
            },
        })
    }
}

/// A JSON object, keys in the order given.
pub(crate) fn headers_json(headers: &[(String, String)]) -> Result<String, StoreError> {
    struct Ordered<'a>(&'a [(String, String)]);
    impl Serialize for Ordered<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
        }
    }
    serde_json::to_string(&Ordered(headers)).map_err(json_error)
}

/// Header pairs from the JSON object text, in the text's order.
pub(crate) fn headers_from_json(text: &str) -> Result<Vec<(String, String)>, serde_json::Error> {
    struct Pairs(Vec<(String, String)>);
    impl<'de> Deserialize<'de> for Pairs {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct PairsVisitor;
            impl<'de> Visitor<'de> for PairsVisitor {
                type Value = Pairs;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a JSON object of header names to values")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Pairs, A::Error> {
                    let mut pairs = Vec::new();
                    while let Some(pair) = map.next_entry::<String, String>()? {
                        pairs.push(pair);
                    }
                    Ok(Pairs(pairs))
                }
            }
            d.deserialize_map(PairsVisitor)
        }
    }
    serde_json::from_str::<Pairs>(text).map(|p| p.0)
}

/// How a variable is stored in the `variables` JSON array.
#[derive(Serialize, Deserialize)]
struct StoredVariable {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    options: Option<Vec<String>>,
    required: bool,
}

fn variables_json(variables: &[ToolVariable]) -> Result<String, StoreError> {
    let stored: Vec<StoredVariable> = variables
        .iter()
        .map(|v| StoredVariable {
            name: v.name.clone(),
            kind: v.kind.as_str().to_owned(),
            description: v.description.clone(),
            options: match &v.kind {
                VariableKind::Options(o) => Some(o.clone()),
                _ => None,
            },
            required: v.required,
        })
        .collect();
    serde_json::to_string(&stored).map_err(json_error)
}

fn variables_from_json(text: &str) -> Result<Vec<ToolVariable>, String> {
    let stored: Vec<StoredVariable> = serde_json::from_str(text).map_err(|e| e.to_string())?;
    stored
        .into_iter()
        .map(|v| {
            let kind = match (v.kind.as_str(), v.options) {
                ("text", _) => VariableKind::Text,
                ("number", _) => VariableKind::Number,
                ("options", Some(options)) => VariableKind::Options(options),
                (other, _) => return Err(format!("unknown variable type {other:?}")),
            };
            Ok(ToolVariable {
                name: v.name,
                kind,
                description: v.description,
                required: v.required,
            })
        })
        .collect()
}

fn json_error(e: serde_json::Error) -> StoreError {
    StoreError::Invalid {
        reason: format!("cannot encode the tool as JSON: {e}"),
    }
}

fn decode_error(column: &str, message: String) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: column.into(),
        source: message.into(),
    }
}

fn tool_from_row(row: &AnyRow) -> Result<PersonaTool, sqlx::Error> {
    let kind: String = row.try_get("kind")?;
    let target: Option<String> = row.try_get("target")?;
    let kind = match kind.as_str() {
        "transfer_user" => PersonaToolKind::TransferUser {
            user: target.unwrap_or_default(),
        },
        "transfer_queue" => PersonaToolKind::TransferQueue {
            queue: target.unwrap_or_default(),
        },
        "api_request" => {
            let headers: Option<String> = row.try_get("headers")?;
            let variables: Option<String> = row.try_get("variables")?;
            let timeout: Option<i64> = row.try_get("timeout_ms")?;
            let method: Option<String> = row.try_get("method")?;
            let url: Option<String> = row.try_get("url")?;
            PersonaToolKind::ApiRequest(ApiRequest {
                method: method.unwrap_or_default(),
                url: url.unwrap_or_default(),
                headers: headers_from_json(headers.as_deref().unwrap_or("{}"))
                    .map_err(|e| decode_error("headers", e.to_string()))?,
                body: row.try_get("body")?,
                variables: variables_from_json(variables.as_deref().unwrap_or("[]"))
                    .map_err(|e| decode_error("variables", e))?,
                timeout_ms: u32::try_from(timeout.unwrap_or(0))
                    .map_err(|e| decode_error("timeout_ms", e.to_string()))?,
            })
        }
        other => return Err(decode_error("kind", format!("unknown tool kind {other:?}"))),
    };
    Ok(PersonaTool {
        id: row.try_get("id")?,
        persona_id: row.try_get("persona_id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        kind,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

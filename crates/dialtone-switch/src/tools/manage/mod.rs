//! The management tools: what an assistant outside any call (Claude
//! Desktop, an agent framework, a script) uses to run an account's phone
//! system, in the shapes hosted voice platforms made familiar —
//! assistants (personas), phone numbers, calls (placed now or scheduled),
//! the assistants' custom tools, registrations and call statistics.
//!
//! Each is an [`Operation`]: a spec whose input and output schemas are
//! generated from the argument and result types (the same types the REST
//! API's OpenAPI document is generated from), and an async function of the
//! call control, the context and the JSON arguments that answers with a
//! JSON object whose entities carry an `id`. The MCP door serves them from
//! the [`ToolRegistry`](super::ToolRegistry) (structured content plus the
//! same JSON as text); the REST door calls the very same functions through
//! [`call`]. None is call-bound; none is offered to a persona's model (a
//! context with a persona does not list them). They act within the
//! context's account: another account's objects are "not found", exactly as
//! unknown ones; the operator (no account) sees everything.

mod assistants;
mod bans;
mod calls;
mod custom_tools;
mod numbers;
mod outbound;
mod stats;
mod views;

use std::future::Future;
use std::pin::Pin;

use dialtone_store::{Account, StoreError};
use serde::de::DeserializeOwned;
use serde_json::Value;
use utoipa::ToSchema;

use super::{ToolAnnotations, ToolContext, ToolError, ToolFuture, ToolOutput, ToolSpec};
use crate::control::{CallControl, Scope};

pub use assistants::{CreateAssistant, UpdateAssistant};
pub use bans::{Ban, BanAddress, BanList, LiftedBan};
pub use calls::{call_from_record, call_from_snapshot};
pub use custom_tools::{CreateTool, UpdateTool};
pub use outbound::{
    schedule_call, scheduled_view, CreateCall, CreateCallResult, Customer, Overrides,
};
pub use views::*;

/// Why a management operation failed: the message says what to do about
/// it; the kind picks the REST status.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ManageError {
    /// Arguments that cannot be used as given (400).
    #[error("{0}")]
    Invalid(String),
    /// Nothing of that id in this account (404).
    #[error("{0}")]
    NotFound(String),
    /// It exists already, or is in use (409).
    #[error("{0}")]
    Conflict(String),
    /// The database or the switch could not do it now (503).
    #[error("{0}")]
    Unavailable(String),
    /// Not for this principal: the operator's alone (403).
    #[error("{0}")]
    Forbidden(String),
}

impl From<ManageError> for ToolError {
    fn from(e: ManageError) -> ToolError {
        match e {
            ManageError::Invalid(m) => ToolError::InvalidArguments(m),
            other => ToolError::Failed(other.to_string()),
        }
    }
}

/// A database failure, as an operation reports it.
pub(crate) fn db(e: StoreError) -> ManageError {
    ManageError::Unavailable(format!("the database failed: {e}"))
}

/// What an operation's function returns.
pub type ManageFuture<'a> = Pin<Box<dyn Future<Output = Result<Value, ManageError>> + Send + 'a>>;
/// An operation's function.
pub type Op = for<'a> fn(&'a CallControl, &'a ToolContext, Value) -> ManageFuture<'a>;

/// One management tool: its spec and its function.
pub struct Operation {
    spec: ToolSpec,
    run: Op,
}

impl Operation {
    pub fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    /// Runs it: the JSON result, or why not.
    pub async fn run(
        &self,
        control: &CallControl,
        ctx: &ToolContext,
        args: Value,
    ) -> Result<Value, ManageError> {
        let args = match args {
            Value::Null => Value::Object(Default::default()),
            Value::Object(o) => Value::Object(o),
            _ => {
                return Err(ManageError::Invalid(
                    "arguments must be a JSON object".into(),
                ))
            }
        };
        (self.run)(control, ctx, args).await
    }
}

impl super::Tool for Operation {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn call<'a>(
        &'a self,
        control: &'a CallControl,
        ctx: &'a ToolContext,
        args: Value,
    ) -> ToolFuture<'a> {
        Box::pin(async move {
            let value = self.run(control, ctx, args).await?;
            // The same JSON as text, for clients that read only the text.
            Ok(ToolOutput::with(value.to_string(), value))
        })
    }
}

/// What an operation does to the world.
#[derive(Clone, Copy)]
enum Kind {
    Read,
    Write,
    Delete,
    /// Places calls: reaches phones outside dialtone.
    Dial,
}

/// An operation taking `A` and answering `R`.
fn operation<A: ToSchema, R: ToSchema>(
    name: &str,
    description: &str,
    kind: Kind,
    run: Op,
) -> Operation {
    let annotations = match kind {
        Kind::Read => ToolAnnotations {
            read_only: true,
            idempotent: true,
            ..Default::default()
        },
        Kind::Write => ToolAnnotations::default(),
        Kind::Delete => ToolAnnotations {
            destructive: true,
            idempotent: true,
            ..Default::default()
        },
        Kind::Dial => ToolAnnotations {
            open_world: true,
            ..Default::default()
        },
    };
    Operation {
        spec: ToolSpec {
            name: name.into(),
            description: description.into(),
            input_schema: json_schema::<A>(),
            output_schema: Some(json_schema::<R>()),
            annotations,
            call_bound: false,
        },
        run,
    }
}

/// Every management operation.
pub fn operations() -> Vec<Operation> {
    let mut all = Vec::new();
    all.extend(assistants::operations());
    all.extend(numbers::operations());
    all.extend(calls::operations());
    all.extend(outbound::operations());
    all.extend(custom_tools::operations());
    all.extend(bans::operations());
    all.push(stats::operation());
    all
}

/// `T`'s schema as one self-contained JSON schema: the references to
/// other types' schemas (as an OpenAPI document has them) replaced by
/// those schemas, as MCP tool schemas need.
pub fn json_schema<T: ToSchema>() -> Value {
    let mut named = Vec::new();
    T::schemas(&mut named);
    let named: Vec<(String, Value)> = named
        .into_iter()
        .filter_map(|(n, s)| serde_json::to_value(s).ok().map(|v| (n, v)))
        .collect();
    let root = serde_json::to_value(T::schema()).unwrap_or(Value::Null);
    inline_refs(root, &named, 0)
}

fn inline_refs(v: Value, named: &[(String, Value)], depth: usize) -> Value {
    const REF: &str = "#/components/schemas/";
    match v {
        Value::Object(map) => {
            if let Some(name) = map
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix(REF))
            {
                // Bounded: the management types are not recursive, and a
                // loop must not hang a listing.
                if let Some((_, s)) = named.iter().find(|(n, _)| n == name) {
                    if depth < 8 {
                        return inline_refs(s.clone(), named, depth + 1);
                    }
                }
                return serde_json::json!({"type": "object"});
            }
            Value::Object(
                map.into_iter()
                    .map(|(k, v)| (k, inline_refs(v, named, depth)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| inline_refs(v, named, depth))
                .collect(),
        ),
        other => other,
    }
}

/// Reads the arguments into `T` (whose serde derive denies unknown fields).
pub(crate) fn args<T: DeserializeOwned>(args: Value) -> Result<T, ManageError> {
    serde_json::from_value(args).map_err(|e| ManageError::Invalid(e.to_string()))
}

/// The result `r` as JSON.
pub(crate) fn to_json<R: serde::Serialize>(r: &R) -> Result<Value, ManageError> {
    serde_json::to_value(r).map_err(|e| ManageError::Unavailable(format!("encoding: {e}")))
}

/// Whether the context sees what belongs to `account_id`.
pub(crate) fn sees(ctx: &ToolContext, account_id: &str) -> bool {
    ctx.account_id.as_deref().is_none_or(|a| a == account_id)
}

/// The context's view of the calls.
pub(crate) fn scope(ctx: &ToolContext) -> Scope<'_> {
    ctx.scope()
}

/// The account new things belong to: the context's; for the operator the
/// one named (created when missing), else "default".
pub(crate) async fn owner(
    control: &CallControl,
    ctx: &ToolContext,
    named: Option<&str>,
) -> Result<Account, ManageError> {
    let accounts = control.store().accounts();
    match (&ctx.account_id, named) {
        (Some(id), _) => accounts
            .get(id)
            .await
            .map_err(db)?
            .ok_or_else(|| ManageError::NotFound(format!("no account {id}"))),
        (None, name) => {
            let name = name.unwrap_or("default");
            if name.trim().is_empty() {
                return Err(ManageError::Invalid("account must not be empty".into()));
            }
            accounts.ensure(name).await.map_err(db)
        }
    }
}

/// RFC 3339 text of unix milliseconds.
pub(crate) fn time_text(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
}

/// Unix milliseconds of RFC 3339 text (`field` names it in the error).
pub(crate) fn time_ms(field: &str, text: &str) -> Result<i64, ManageError> {
    text.trim()
        .parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|e| {
            ManageError::Invalid(format!(
                "{field} {text:?} is not an RFC 3339 time such as 2030-01-31T09:30:00Z ({e})"
            ))
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_operation_has_a_self_contained_object_schema() {
        let ops = operations();
        let mut names = HashSet::new();
        for op in &ops {
            let s = op.spec();
            assert!(names.insert(s.name.clone()), "{} twice", s.name);
            assert_eq!(s.input_schema["type"], "object", "{}", s.name);
            let text = s.input_schema.to_string() + &s.output_schema.clone().unwrap().to_string();
            assert!(!text.contains("$ref"), "{}: {text}", s.name);
            assert!(!s.call_bound);
            if s.name.starts_with("list_") || s.name.starts_with("get_") {
                assert!(s.annotations.read_only, "{}", s.name);
            }
            if s.name.starts_with("delete_") {
                assert!(s.annotations.destructive, "{}", s.name);
            }
        }
        for n in [
            "list_assistants",
            "get_assistant",
            "create_assistant",
            "update_assistant",
            "delete_assistant",
            "list_phone_numbers",
            "get_phone_number",
            "list_calls",
            "get_call",
            "create_call",
            "list_scheduled_calls",
            "cancel_scheduled_call",
            "list_tools",
            "get_tool",
            "create_tool",
            "update_tool",
            "delete_tool",
            "list_registrations",
            "get_call_statistics",
            "list_bans",
            "lift_ban",
        ] {
            assert!(names.contains(n), "{n} missing");
        }
        let create = ops.iter().find(|o| o.spec().name == "create_call").unwrap();
        assert!(create.spec().annotations.open_world);
        let props = &create.spec().input_schema["properties"];
        assert_eq!(props["customer"]["type"], "object", "{props}");
        assert_eq!(create.spec().input_schema["additionalProperties"], false);
    }

    #[test]
    fn times_read_and_write_rfc3339() {
        assert_eq!(time_ms("at", "1970-01-01T00:00:01Z").unwrap(), 1000);
        assert_eq!(time_ms("at", "1970-01-01T01:00:01+01:00").unwrap(), 1000);
        assert_eq!(time_text(1500), "1970-01-01T00:00:01.5Z");
        let e = time_ms("scheduledAt", "tomorrow").unwrap_err();
        assert!(e.to_string().contains("scheduledAt \"tomorrow\""), "{e}");
    }

    #[test]
    fn errors_reach_the_model_as_tool_errors() {
        let e: ToolError = ManageError::Invalid("customer.number is missing".into()).into();
        assert_eq!(
            e.to_string(),
            "invalid arguments: customer.number is missing"
        );
        let e: ToolError = ManageError::NotFound("no assistant \"x\"".into()).into();
        assert_eq!(e.to_string(), "no assistant \"x\"");
    }
}

//! The tool registry: every tool an AI can call — the agent inside a call
//! (through its realtime session) and assistants outside it (through MCP)
//! — with its name, description, JSON schema and handler. One registry,
//! two doors: both reach the same handlers, which act through
//! [`CallControl`] and so get the real outcome.
//!
//! A tool runs in a [`ToolContext`]: the account, persona, call and caller
//! number it acts for. Call-bound tools (`transfer_call`, `hangup_call`)
//! need a call in the context; listing leaves them out without one. The
//! management tools ([`manage`]: assistants, numbers, calls, scheduled
//! calls, custom tools, statistics) are for contexts without a persona: a
//! persona's model is never offered them.

mod availability;
mod call_tools;
mod contacts;
mod hours;
pub mod http;
mod leads;
pub mod manage;
mod persona;
mod sip;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::call::CallHandle;
use crate::control::{CallControl, Scope};

pub use contacts::ContactSource;
pub use hours::{office_status, OfficeStatus};

/// A boxed future a tool handler returns.
pub type ToolFuture<'a> = Pin<Box<dyn Future<Output = Result<ToolOutput, ToolError>> + Send + 'a>>;

/// Hints about what a tool does (MCP tool annotations).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ToolAnnotations {
    /// It changes nothing.
    pub read_only: bool,
    /// It may end or change something irreversibly (hang up, transfer).
    pub destructive: bool,
    /// Calling it twice has the effect of calling it once.
    pub idempotent: bool,
    /// It reaches outside dialtone (phones, other systems).
    pub open_world: bool,
}

/// What a tool is, for listings.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON schema of the arguments (an object schema).
    pub input_schema: Value,
    /// JSON schema of the structured result, when the tool gives one.
    pub output_schema: Option<Value>,
    pub annotations: ToolAnnotations,
    /// It acts on the live call of its context.
    pub call_bound: bool,
}

/// Whom and what a tool call acts for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolContext {
    /// The tenant; None: the operator (sees every call).
    pub account_id: Option<String>,
    pub persona: Option<String>,
    /// dialtone's call id or the SIP Call-ID of a leg.
    pub call_id: Option<String>,
    pub caller_number: Option<String>,
}

impl ToolContext {
    fn scope(&self) -> Scope<'_> {
        match &self.account_id {
            Some(a) => Scope::Account(a),
            None => Scope::Operator,
        }
    }

    /// The account this context acts for (its row), required.
    pub async fn account_row(
        &self,
        control: &CallControl,
    ) -> Result<dialtone_store::Account, ToolError> {
        let id = self.account_id.as_deref().ok_or_else(|| {
            ToolError::Failed("this tool acts for an account, and none was given".into())
        })?;
        control
            .store()
            .accounts()
            .get(id)
            .await
            .map_err(|e| ToolError::Failed(format!("accounts unavailable: {e}")))?
            .ok_or_else(|| ToolError::Failed(format!("no account {id}")))
    }

    /// The persona this context names (by name or id), required, and of
    /// the context's account when one is given.
    pub async fn persona_row(
        &self,
        control: &CallControl,
    ) -> Result<dialtone_store::Persona, ToolError> {
        let p = self.persona.as_deref().ok_or_else(|| {
            ToolError::Failed("this tool needs a persona (persona_id) in its context".into())
        })?;
        let personas = control.store().personas();
        let unavailable =
            |e: dialtone_store::StoreError| ToolError::Failed(format!("personas unavailable: {e}"));
        let found = match personas.get(p).await.map_err(unavailable)? {
            Some(row) => Some(row),
            None => personas.get_by_id(p).await.map_err(unavailable)?,
        };
        found
            .filter(|row| {
                self.account_id
                    .as_ref()
                    .is_none_or(|a| *a == row.account_id)
            })
            .ok_or_else(|| ToolError::Failed(format!("no persona {p:?}")))
    }

    /// The live call this context names.
    pub fn call(&self, control: &CallControl) -> Result<CallHandle, ToolError> {
        let id = self.call_id.as_deref().ok_or(ToolError::NoCall)?;
        control
            .find(id, self.scope())
            .map_err(|_| ToolError::NoSuchCall(id.to_string()))
    }
}

/// A tool's answer: text for the model, and the same as JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolOutput {
    pub text: String,
    pub structured: Option<Value>,
}

impl ToolOutput {
    pub fn text(text: impl Into<String>) -> ToolOutput {
        ToolOutput {
            text: text.into(),
            structured: None,
        }
    }

    pub fn with(text: impl Into<String>, structured: Value) -> ToolOutput {
        ToolOutput {
            text: text.into(),
            structured: Some(structured),
        }
    }
}

/// Why a tool call failed; every message is one a model can act on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "error", content = "message", rename_all = "snake_case")]
pub enum ToolError {
    #[error("unknown tool {0:?}")]
    UnknownTool(String),
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    #[error("this tool acts on a live call, and no call_id was given")]
    NoCall,
    #[error("no such call: {0}")]
    NoSuchCall(String),
    #[error("{0}")]
    Failed(String),
}

/// One tool.
pub trait Tool: Send + Sync {
    fn spec(&self) -> &ToolSpec;
    fn call<'a>(
        &'a self,
        control: &'a CallControl,
        ctx: &'a ToolContext,
        args: Value,
    ) -> ToolFuture<'a>;
}

/// A tool's handler: an async function of the call control, the context
/// and the arguments.
pub type Run = for<'a> fn(&'a CallControl, &'a ToolContext, Value) -> ToolFuture<'a>;

/// A tool made of its spec and a handler: how the built-in tools are
/// written.
pub struct FnTool {
    spec: ToolSpec,
    run: Run,
}

impl FnTool {
    pub fn new(spec: ToolSpec, run: Run) -> FnTool {
        FnTool { spec, run }
    }
}

impl Tool for FnTool {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn call<'a>(
        &'a self,
        control: &'a CallControl,
        ctx: &'a ToolContext,
        args: Value,
    ) -> ToolFuture<'a> {
        (self.run)(control, ctx, args)
    }
}

/// Reads a tool's arguments into `T` (whose serde derive should deny
/// unknown fields); a mismatch is an [`ToolError::InvalidArguments`]
/// naming the problem.
pub fn arguments<T: DeserializeOwned>(args: Value) -> Result<T, ToolError> {
    let args = match args {
        Value::Null => Value::Object(Default::default()),
        a => a,
    };
    serde_json::from_value(args).map_err(|e| ToolError::InvalidArguments(e.to_string()))
}

/// The own tools of the context's persona.
async fn persona_tools(
    control: &CallControl,
    ctx: &ToolContext,
) -> Result<Vec<dialtone_store::PersonaTool>, ToolError> {
    let p = ctx.persona_row(control).await?;
    control
        .store()
        .persona_tools()
        .list_for_persona(&p.id)
        .await
        .map_err(|e| ToolError::Failed(format!("persona tools unavailable: {e}")))
}

/// Every tool, by name.
pub struct ToolRegistry {
    tools: Vec<Arc<dyn Tool>>,
    /// The SIP-account tools (sip_configure, sip_call, …): an operator's
    /// or assistant's, listed and callable without a persona only — a
    /// persona's model never configures trunks or places test calls.
    account: Vec<Arc<dyn Tool>>,
    /// The management operations: listed and callable without a persona.
    management: Vec<Arc<manage::Operation>>,
}

impl ToolRegistry {
    /// An empty registry.
    pub fn empty() -> ToolRegistry {
        ToolRegistry {
            tools: Vec::new(),
            account: Vec::new(),
            management: Vec::new(),
        }
    }

    /// The management operation `name` (what the REST API runs).
    pub fn operation(&self, name: &str) -> Option<&manage::Operation> {
        self.management
            .iter()
            .find(|o| o.spec().name == name)
            .map(|o| &**o)
    }

    /// The global tools every persona's model is offered.
    pub fn with_globals() -> ToolRegistry {
        let mut r = ToolRegistry::empty();
        for tool in [
            call_tools::transfer_call(),
            call_tools::hangup_call(),
            hours::is_office_open(),
            contacts::lookup_contact(),
            availability::check_user_availability(),
            leads::create_lead(),
        ] {
            r.register(Arc::new(tool));
        }
        r.account = [
            sip::sip_configure(),
            sip::sip_call(),
            sip::sip_status(),
            sip::sip_statistics(),
            sip::sip_reset(),
        ]
        .into_iter()
        .map(|t| Arc::new(t) as Arc<dyn Tool>)
        .collect();
        r.management = manage::operations().into_iter().map(Arc::new).collect();
        r
    }

    /// Adds (or replaces, by name) a tool.
    pub fn register(&mut self, tool: Arc<dyn Tool>) {
        let name = tool.spec().name.clone();
        self.tools.retain(|t| t.spec().name != name);
        self.tools.push(tool);
    }

    /// The tools usable in `ctx`: the global ones, and the persona's own
    /// when the context names a persona; call-bound ones only with a call.
    pub async fn list(&self, control: &CallControl, ctx: &ToolContext) -> Vec<ToolSpec> {
        let mut out: Vec<ToolSpec> = self.tools.iter().map(|t| t.spec().clone()).collect();
        if ctx.persona.is_none() {
            out.extend(self.account.iter().map(|t| t.spec().clone()));
            out.extend(self.management.iter().map(|o| o.spec().clone()));
        }
        if ctx.persona.is_some() {
            match persona_tools(control, ctx).await {
                Ok(tools) => out.extend(tools.iter().map(persona::spec)),
                Err(e) => tracing::warn!(error = %e, "persona tools not listed"),
            }
        }
        out.retain(|s| !s.call_bound || ctx.call_id.is_some());
        out
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.tools.iter().find(|t| t.spec().name == name)
    }

    /// Calls tool `name` with `args` in `ctx`: on the node that owns the
    /// call it names when that is another node of the cluster, else here.
    pub async fn call(
        &self,
        control: &CallControl,
        ctx: &ToolContext,
        name: &str,
        args: Value,
    ) -> Result<ToolOutput, ToolError> {
        let cluster = &control.context().cluster;
        if let Some(answer) = cluster.forward(control, ctx, name, &args).await {
            return answer;
        }
        self.call_here(control, ctx, name, args).await
    }

    /// Calls tool `name` on this node (a forwarded tool call lands here).
    pub async fn call_here(
        &self,
        control: &CallControl,
        ctx: &ToolContext,
        name: &str,
        args: Value,
    ) -> Result<ToolOutput, ToolError> {
        if !args.is_object() && !args.is_null() {
            return Err(ToolError::InvalidArguments(
                "arguments must be a JSON object".into(),
            ));
        }
        if let Some(tool) = self.get(name) {
            return tool.call(control, ctx, args).await;
        }
        if ctx.persona.is_none() {
            if let Some(t) = self.account.iter().find(|t| t.spec().name == name) {
                return t.call(control, ctx, args).await;
            }
            if let Some(op) = self.operation(name) {
                return Tool::call(op, control, ctx, args).await;
            }
        }
        if ctx.persona.is_some() {
            if let Some(t) = persona_tools(control, ctx)
                .await?
                .into_iter()
                .find(|t| t.name == name)
            {
                return persona::call(&t, control, ctx, args).await;
            }
        }
        Err(ToolError::UnknownTool(name.to_string()))
    }
}

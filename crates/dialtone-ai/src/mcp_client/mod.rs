//! The MCP client for a persona's external MCP servers (a company's CRM, its
//! calendar): [`ExternalTools::connect`] opens every configured server at
//! once within a time budget — Streamable HTTP, the older HTTP+SSE
//! transport, or a child process speaking stdio — lists their tools, and
//! offers them to the model as `{server}__{tool}` ([`ExternalTools::specs`]);
//! [`ExternalTools::call`] forwards the model's call to its server with the
//! server's timeout and turns the result into a [`ToolReply`]. A server that
//! cannot be reached is reported, not fatal: the rest keep working.
//! Dropping the set (or [`ExternalTools::close`]) closes every connection
//! and kills stdio servers (their whole process group).
//!
//! Header values may say `${NAME}`: the environment variable is read when
//! the connection is made, so secrets live in the switch's environment, and
//! they never reach a log (`Debug` shows header names only).
//!
//! Files: `connect.rs` one server's connection and tool listing, `sse.rs`
//! the HTTP+SSE transport (rmcp has none), `reply.rs` MCP results into
//! replies and schemas into tool specs.

mod connect;
mod reply;
mod sse;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use rmcp::model::{CallToolRequestParams, JsonObject};
use rmcp::service::RunningService;
use rmcp::RoleClient;

use crate::agent::ToolReply;
use crate::protocol::ToolSpec;

pub use connect::ConnectFailure;

/// What joins a server's name and its tool's name in the model's function name.
pub const SEPARATOR: &str = "__";
/// The longest function name the realtime models accept.
pub const MAX_FUNCTION_NAME: usize = 64;
/// How long [`ExternalTools::close`] waits for each server to close.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// How to reach an MCP server.
#[derive(Clone, PartialEq, Eq)]
pub enum ServerTransport {
    /// Streamable HTTP at this URL.
    Http { url: String },
    /// The HTTP+SSE transport: GET this URL for the event stream.
    Sse { url: String },
    /// A child process: the program and its arguments.
    Stdio { program: String, args: Vec<String> },
}

/// One external MCP server of a persona.
#[derive(Clone)]
pub struct ExternalServer {
    /// `^[a-z0-9_]{1,32}$`: the prefix of its tools' names.
    pub name: String,
    pub transport: ServerTransport,
    /// Sent on every HTTP request; values may hold `${NAME}` (an
    /// environment variable, read at connect time).
    pub headers: Vec<(String, String)>,
    /// The server's tools to offer; empty: all.
    pub allow: Vec<String>,
    /// How long one tool call may take.
    pub timeout: Duration,
}

/// Written by hand: header values (which may be secrets once resolved, or
/// literal ones) never reach a log.
impl fmt::Debug for ExternalServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let transport = match &self.transport {
            ServerTransport::Http { url } => format!("http {url}"),
            ServerTransport::Sse { url } => format!("sse {url}"),
            ServerTransport::Stdio { program, args } => {
                format!("stdio {program} ({} arguments)", args.len())
            }
        };
        let headers: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("ExternalServer")
            .field("name", &self.name)
            .field("transport", &transport)
            .field("headers", &headers)
            .field("allow", &self.allow)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A connected server.
struct Connection {
    name: String,
    service: RunningService<RoleClient, rmcp::model::ClientConfig>,
    timeout: Duration,
}

/// Where a function name goes: a server (index) and its own tool name.
#[derive(Clone, Debug)]
struct Route {
    server: usize,
    tool: String,
}

/// The tools of a persona's external MCP servers, connected.
#[derive(Default)]
pub struct ExternalTools {
    servers: Vec<Connection>,
    routes: HashMap<String, Route>,
    specs: Vec<ToolSpec>,
}

/// A tool call on its way to its server.
pub type ToolCall = Pin<Box<dyn Future<Output = ToolReply> + Send + 'static>>;

impl ExternalTools {
    /// Connects to every server at once and lists its tools, all within
    /// `budget`. Returns what connected, and each server that did not with
    /// the reason (a sentence for logs and the call record, never a secret).
    pub async fn connect(
        servers: Vec<ExternalServer>,
        budget: Duration,
    ) -> (ExternalTools, Vec<(String, String)>) {
        let deadline = tokio::time::Instant::now() + budget;
        let attempts = servers.into_iter().map(|s| async move {
            let outcome = tokio::time::timeout_at(deadline, connect::connect(&s)).await;
            (s, outcome)
        });
        let mut tools = ExternalTools::default();
        let mut failures = Vec::new();
        for (server, outcome) in futures_util::future::join_all(attempts).await {
            let (service, listed) = match outcome {
                Ok(Ok(connected)) => connected,
                Ok(Err(e)) => {
                    failures.push((server.name.clone(), e.to_string()));
                    continue;
                }
                Err(_) => {
                    failures.push((
                        server.name.clone(),
                        format!(
                            "{}",
                            ConnectFailure::Timeout {
                                budget_ms: u64::try_from(budget.as_millis()).unwrap_or(u64::MAX),
                            }
                        ),
                    ));
                    continue;
                }
            };
            tools.add(server, service, listed);
        }
        (tools, failures)
    }

    /// Registers a connected server and the tools it listed.
    fn add(
        &mut self,
        server: ExternalServer,
        service: RunningService<RoleClient, rmcp::model::ClientConfig>,
        listed: Vec<rmcp::model::Tool>,
    ) {
        let index = self.servers.len();
        let mut offered = 0;
        for tool in listed {
            let name = tool.name.to_string();
            if !server.allow.is_empty() && !server.allow.contains(&name) {
                continue;
            }
            let function = format!("{}{SEPARATOR}{name}", server.name);
            if let Err(why) = function_name_ok(&function) {
                tracing::warn!(server = %server.name, tool = %name, %why, "MCP tool not offered");
                continue;
            }
            if self.routes.contains_key(&function) {
                tracing::warn!(server = %server.name, tool = %name, %function,
                    "MCP tool not offered: another tool already has its name");
                continue;
            }
            self.specs.push(reply::spec(&function, &tool));
            self.routes.insert(
                function,
                Route {
                    server: index,
                    tool: name,
                },
            );
            offered += 1;
        }
        for wanted in &server.allow {
            if !self
                .routes
                .values()
                .any(|r| r.server == index && &r.tool == wanted)
            {
                tracing::warn!(server = %server.name, tool = %wanted,
                    "an allowed MCP tool is not offered (the server does not list it, or its name does not fit)");
            }
        }
        tracing::info!(server = %server.name, tools = offered, "MCP server connected");
        self.servers.push(Connection {
            name: server.name,
            service,
            timeout: server.timeout,
        });
    }

    /// The function specs to offer the model.
    pub fn specs(&self) -> Vec<ToolSpec> {
        self.specs.clone()
    }

    /// Whether no tool is offered.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Stops offering the tools whose names `taken` claims (dialtone's own
    /// tools win a name clash).
    pub fn remove_names(&mut self, taken: impl Fn(&str) -> bool) {
        let clashing: Vec<String> = self.routes.keys().filter(|n| taken(n)).cloned().collect();
        for name in clashing {
            tracing::warn!(function = %name, "MCP tool not offered: a built-in tool has its name");
            self.routes.remove(&name);
            self.specs.retain(|s| s.name != name);
        }
    }

    /// The time a tool call of `name` may take, if it is one of ours.
    pub fn timeout(&self, name: &str) -> Option<Duration> {
        let route = self.routes.get(name)?;
        self.servers.get(route.server).map(|s| s.timeout)
    }

    /// Forwards the model's call of `name` (`arguments`: a JSON object's
    /// text) to its server; None when `name` is not one of these tools.
    pub fn call(&self, name: &str, arguments: &str) -> Option<ToolCall> {
        let route = self.routes.get(name)?;
        let server = self.servers.get(route.server)?;
        let peer = server.service.peer().clone();
        let timeout = server.timeout;
        let server_name = server.name.clone();
        let tool = route.tool.clone();
        let args = parse_arguments(arguments);
        Some(Box::pin(async move {
            let args = match args {
                Ok(a) => a,
                Err(e) => return failed(e),
            };
            let mut params = CallToolRequestParams::new(tool.clone());
            params.arguments = args;
            match tokio::time::timeout(timeout, peer.call_tool(params)).await {
                Ok(Ok(result)) => reply::from_result(&result),
                Ok(Err(e)) => {
                    tracing::warn!(server = %server_name, %tool, error = %e, "MCP tool call failed");
                    failed(format!(
                        "the {server_name} server could not run {tool}: {e}"
                    ))
                }
                Err(_) => failed(format!(
                    "the {server_name} server did not answer within {} ms",
                    timeout.as_millis()
                )),
            }
        }))
    }

    /// Closes every connection (each given a moment to close cleanly).
    pub async fn close(self) {
        let closing = self.servers.into_iter().map(|mut s| async move {
            if let Err(e) = s.service.close_with_timeout(CLOSE_WAIT).await {
                tracing::debug!(server = %s.name, error = %e, "MCP connection did not close cleanly");
            }
        });
        futures_util::future::join_all(closing).await;
    }
}

fn failed(why: String) -> ToolReply {
    ToolReply {
        output: format!("error: {why}"),
        ok: false,
    }
}

/// The model's arguments as the JSON object MCP wants; empty text or null
/// is no arguments.
fn parse_arguments(arguments: &str) -> Result<Option<JsonObject>, String> {
    if arguments.trim().is_empty() {
        return Ok(None);
    }
    match serde_json::from_str::<serde_json::Value>(arguments) {
        Ok(serde_json::Value::Object(o)) => Ok(Some(o)),
        Ok(serde_json::Value::Null) => Ok(None),
        Ok(_) => Err("the arguments must be a JSON object".into()),
        Err(e) => Err(format!("the arguments are not valid JSON: {e}")),
    }
}

/// Whether a realtime model accepts `name` as a function name:
/// `^[a-zA-Z0-9_-]{1,64}$`.
fn function_name_ok(name: &str) -> Result<(), String> {
    if name.len() > MAX_FUNCTION_NAME {
        return Err(format!(
            "{name} is longer than {MAX_FUNCTION_NAME} characters"
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(format!(
            "{name} has characters a function name cannot have (letters, digits, _ and - only)"
        ));
    }
    Ok(())
}

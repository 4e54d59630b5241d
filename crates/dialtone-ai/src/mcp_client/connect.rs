//! One server's connection: its headers with `${NAME}` resolved from the
//! environment, the transport (rmcp's Streamable HTTP client on our own
//! reqwest client, our HTTP+SSE transport, or a child process in its own
//! process group with its stderr logged), the MCP `initialize` handshake,
//! and the listing of its tools.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use process_wrap::tokio::CommandWrap;
#[cfg(unix)]
use process_wrap::tokio::ProcessGroup;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use rmcp::model::{ClientCapabilities, ClientConfig, Implementation, ProtocolVersion, Tool};
use rmcp::service::{ClientInitializeError, RunningService, ServiceError};
use rmcp::transport::streamable_http_client::{
    AuthRequiredError, HttpStatusError, InsufficientScopeError,
    StreamableHttpClientTransportConfig, StreamableHttpError,
};
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use tokio::io::AsyncReadExt;

use super::sse::{self, SseError};
use super::{ExternalServer, ServerTransport};

/// Why a server could not be used; a sentence for logs and call records
/// that never holds a header value.
#[derive(Debug, thiserror::Error)]
pub enum ConnectFailure {
    #[error("environment variable {0} (used in header {1}) is not set")]
    MissingEnv(String, String),
    #[error("header {0}: {1}")]
    BadHeader(String, String),
    #[error("HTTP client: {0}")]
    Client(String),
    #[error("cannot start the command: {0}")]
    Spawn(std::io::Error),
    #[error("cannot open the event stream: {0}")]
    Sse(#[from] SseError),
    #[error("the MCP handshake failed: {0}")]
    Initialize(String),
    #[error("listing its tools failed: {0}")]
    ListTools(String),
    #[error("no answer within {budget_ms} ms")]
    Timeout { budget_ms: u64 },
}

impl From<ClientInitializeError> for ConnectFailure {
    fn from(e: ClientInitializeError) -> Self {
        let why = match &e {
            ClientInitializeError::TransportError { error, context } => {
                describe(error.error.as_ref()).unwrap_or_else(|| format!("{context}: {error}"))
            }
            other => describe(other).unwrap_or_else(|| other.to_string()),
        };
        ConnectFailure::Initialize(why)
    }
}

impl From<ServiceError> for ConnectFailure {
    fn from(e: ServiceError) -> Self {
        ConnectFailure::ListTools(describe(&e).unwrap_or_else(|| e.to_string()))
    }
}

/// What an HTTP transport's error chain says in a few words (a status, a
/// refused connection), rather than rmcp's nested wrappers; None when the
/// chain holds nothing of the kind.
fn describe(top: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(top);
    while let Some(e) = next {
        if e.is::<AuthRequiredError>() {
            return Some("HTTP 401: the server asks for authorization (check the headers)".into());
        }
        if e.is::<InsufficientScopeError>() {
            return Some("HTTP 403: the credentials do not allow this".into());
        }
        if let Some(s) = e.downcast_ref::<HttpStatusError>() {
            return Some(format!("HTTP {}", s.status));
        }
        if let Some(s) = e.downcast_ref::<SseError>() {
            return Some(s.to_string());
        }
        if let Some(r) = e.downcast_ref::<reqwest::Error>() {
            if let Some(words) = reqwest_words(r) {
                return Some(words);
            }
        }
        // rmcp's HTTP client error does not name the reqwest error as its source.
        if let Some(StreamableHttpError::Client(r)) =
            e.downcast_ref::<StreamableHttpError<reqwest::Error>>()
        {
            if let Some(words) = reqwest_words(r) {
                return Some(words);
            }
        }
        next = e.source();
    }
    None
}

fn reqwest_words(r: &reqwest::Error) -> Option<String> {
    if let Some(status) = r.status() {
        return Some(format!("HTTP {}", status.as_u16()));
    }
    if r.is_timeout() {
        return Some("the request timed out".into());
    }
    if r.is_connect() {
        // The innermost cause says why (refused, unreachable, DNS).
        let mut cause: &(dyn std::error::Error + 'static) = r;
        while let Some(inner) = cause.source() {
            cause = inner;
        }
        return Some(format!("cannot connect: {cause}"));
    }
    None
}

pub(super) type Connected = (RunningService<RoleClient, ClientConfig>, Vec<Tool>);

/// Connects to `server`, initializes and lists its tools.
pub(super) async fn connect(server: &ExternalServer) -> Result<Connected, ConnectFailure> {
    let info = ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("dialtone", env!("CARGO_PKG_VERSION")),
    )
    // The newest revision with an `initialize` handshake, which servers of
    // every revision answer (they may negotiate down).
    .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE);
    let service = match &server.transport {
        ServerTransport::Http { url } => {
            let headers = resolve_headers(&server.headers)?;
            let custom: HashMap<HeaderName, HeaderValue> = headers
                .iter()
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect();
            let config = StreamableHttpClientTransportConfig::with_uri(url.as_str())
                .custom_headers(custom)
                // Not re-initialized behind the model's back mid-call.
                .reinit_on_expired_session(false);
            let transport = StreamableHttpClientTransport::with_client(http_client()?, config);
            info.serve(transport).await?
        }
        ServerTransport::Sse { url } => {
            let headers = resolve_headers(&server.headers)?;
            let transport = sse::LegacySse::connect(http_client()?, url, headers).await?;
            info.serve(transport).await?
        }
        ServerTransport::Stdio { program, args } => {
            let mut command = tokio::process::Command::new(program);
            command.args(args).kill_on_drop(true);
            #[allow(unused_mut)]
            let mut wrapped = CommandWrap::from(command);
            // Its own process group, so that killing it also kills what it
            // started (`npx` runs node, a shell script runs its server).
            #[cfg(unix)]
            wrapped.wrap(ProcessGroup::leader());
            let (transport, stderr) = TokioChildProcess::builder(wrapped)
                .stderr(Stdio::piped())
                .spawn()
                .map_err(ConnectFailure::Spawn)?;
            if let Some(stderr) = stderr {
                tokio::spawn(log_stderr(server.name.clone(), stderr));
            }
            info.serve(transport).await?
        }
    };
    let tools = service.peer().list_all_tools().await?;
    Ok((service, tools))
}

/// The shared HTTP client: rustls with the ring provider (as the realtime
/// sessions), a short connect timeout, no redirects (a redirect would carry
/// the headers, secrets included, elsewhere), and no idle connection pool
/// (rmcp's advice: a reused connection whose last body was not drained
/// stalls on delayed ACKs).
fn http_client() -> Result<reqwest::Client, ConnectFailure> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            // Only the first install in the process takes effect.
            let _ = rustls::crypto::ring::default_provider().install_default();
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(3))
                .redirect(reqwest::redirect::Policy::none())
                .pool_max_idle_per_host(0)
                .user_agent(concat!("dialtone/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(ConnectFailure::Client)
}

/// The headers with every `${NAME}` replaced by the environment variable
/// NAME, marked sensitive (reqwest keeps them out of its `Debug`).
pub(super) fn resolve_headers(headers: &[(String, String)]) -> Result<HeaderMap, ConnectFailure> {
    let mut map = HeaderMap::new();
    for (name, template) in headers {
        let value = resolve_env(template, |var| std::env::var(var).ok()).map_err(|e| match e {
            Unresolved::Missing(var) => ConnectFailure::MissingEnv(var, name.clone()),
            Unresolved::Malformed(why) => ConnectFailure::BadHeader(name.clone(), why),
        })?;
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| ConnectFailure::BadHeader(name.clone(), e.to_string()))?;
        let mut value = HeaderValue::from_str(&value).map_err(|_| {
            ConnectFailure::BadHeader(
                name.clone(),
                "the value (after ${…} is replaced) is not a valid header value".into(),
            )
        })?;
        value.set_sensitive(true);
        map.insert(header, value);
    }
    Ok(map)
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Unresolved {
    /// This variable is not set (or empty).
    Missing(String),
    /// A `${` without a name and `}`.
    Malformed(String),
}

/// `template` with each `${NAME}` replaced by `lookup(NAME)`; the rest
/// (a lone `$`, `{x}`) is literal.
pub(super) fn resolve_env(
    template: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, Unresolved> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let Some(end) = after.find('}') else {
            return Err(Unresolved::Malformed(
                "\"${\" is not closed with \"}\"".into(),
            ));
        };
        let var = &after[..end];
        let identifier = var
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !identifier {
            return Err(Unresolved::Malformed(format!(
                "\"${{{var}}}\" is not an environment variable name"
            )));
        }
        match lookup(var) {
            Some(v) if !v.is_empty() => out.push_str(&v),
            _ => return Err(Unresolved::Missing(var.to_owned())),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Logs what a stdio server writes on stderr (its own logs), a chunk at a
/// time, until it closes.
async fn log_stderr(server: String, mut stderr: tokio::process::ChildStderr) {
    let mut buf = vec![0u8; 2048];
    loop {
        match stderr.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let text = String::from_utf8_lossy(&buf[..n]);
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    tracing::debug!(server = %server, line, "MCP server stderr");
                }
            }
        }
    }
}

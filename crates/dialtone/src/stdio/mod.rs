//! `dialtone mcp-stdio`: an MCP server on stdin/stdout for clients that
//! only start servers as child processes (Claude Desktop and the like),
//! proxying every message to a running dialtone's `/mcp`. It is a plain
//! JSON-RPC relay rather than an rmcp client bridged to an rmcp server:
//! each line read from stdin is POSTed as it is (Streamable HTTP, with the
//! session id `initialize` got and the negotiated protocol version), and
//! each message the switch answers with — a JSON body or a stream of
//! events — is written to stdout as one line. Being typeless it passes any
//! method, id and field through untouched, and the switch stays the only
//! MCP implementation that decides anything. Server notifications outside
//! a request (resource updates) come from the session's GET stream.
//!
//! Failures become answers, never a crash: a refused key (401), a rate
//! limit (429), an unreachable switch or a broken stream are JSON-RPC
//! errors to the requests concerned; a session the switch forgot (it
//! restarted) is opened again with the client's own `initialize` and the
//! request retried once. Logs go to stderr only.

mod framing;
mod session;

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use framing::{Kind, Line, SseParser};

/// The longest message read from stdin or from one HTTP answer.
const MAX_MESSAGE: usize = 16 * 1024 * 1024;
/// How long in-flight requests may finish after stdin closes.
const DRAIN: Duration = Duration::from_secs(10);
/// Silence on an answer or the GET stream after which it counts as broken
/// (the switch sends keep-alives well within it).
const READ_TIMEOUT: Duration = Duration::from_secs(300);
/// Error codes: the switch's own for auth, and the implementation-defined
/// server-error range for the proxy's.
const UNAUTHORIZED: i64 = -32001;
const PROXY_ERROR: i64 = -32000;
const PARSE_ERROR: i64 = -32700;

/// `dialtone mcp-stdio` arguments.
#[derive(clap::Args)]
pub struct McpStdioArgs {
    /// The switch's MCP endpoint; default: /mcp on the config's http.listen.
    #[arg(long)]
    url: Option<String>,
    /// The environment variable holding the API key.
    #[arg(long, default_value = "DIALTONE_API_KEY")]
    api_key_env: String,
    /// A context header sent with every request, e.g. 'persona_id: rec'
    /// (repeatable).
    #[arg(long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,
}

/// Why a message got no answer from the switch.
enum Failure {
    /// The switch refused the key (401) or rate-limited it (429).
    Auth(StatusCode, String),
    /// Any other HTTP refusal.
    Status(StatusCode, String),
    /// No connection, or it broke.
    Transport(String),
}

/// The session `initialize` opened; `generation` tells renewals apart.
#[derive(Clone)]
struct Session {
    id: String,
    version: Option<String>,
    generation: u64,
}

struct Proxy {
    http: reqwest::Client,
    url: String,
    key: Option<String>,
    key_env: String,
    headers: HeaderMap,
    session: Mutex<Option<Session>>,
    /// The client's initialize request, replayed when the session is lost.
    init: Mutex<Option<Value>>,
    renewing: tokio::sync::Mutex<()>,
    generations: AtomicU64,
    out: mpsc::Sender<Value>,
    stop: CancellationToken,
}

pub async fn run(listen: &str, args: McpStdioArgs) -> Result<()> {
    let url = args.url.unwrap_or_else(|| framing::default_url(listen));
    let mut headers = HeaderMap::new();
    for h in &args.headers {
        let (name, value) = framing::parse_header(h).map_err(anyhow::Error::msg)?;
        let name = HeaderName::from_bytes(name.as_bytes())
            .with_context(|| format!("--header {h:?}: not a header name"))?;
        let value = HeaderValue::from_str(&value)
            .with_context(|| format!("--header {h:?}: not a header value"))?;
        headers.append(name, value);
    }
    let key = std::env::var(&args.api_key_env)
        .ok()
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty());
    if key.is_none() {
        tracing::warn!(var = %args.api_key_env, "no API key in the environment: requests will be refused");
    }
    // Only the first install in the process takes effect (for https URLs).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .read_timeout(READ_TIMEOUT)
        .user_agent(concat!("dialtone-mcp-stdio/", env!("CARGO_PKG_VERSION")));
    if is_loopback(&url) {
        // A proxy from the environment must not take loopback traffic away.
        http = http.no_proxy();
    }
    let (out_tx, out_rx) = mpsc::channel::<Value>(256);
    let writer = tokio::spawn(write_stdout(out_rx));
    let proxy = Arc::new(Proxy {
        http: http.build().context("building the HTTP client")?,
        url,
        key,
        key_env: args.api_key_env,
        headers,
        session: Mutex::new(None),
        init: Mutex::new(None),
        renewing: tokio::sync::Mutex::new(()),
        generations: AtomicU64::new(0),
        out: out_tx,
        stop: CancellationToken::new(),
    });
    tracing::info!(url = %proxy.url, "MCP stdio proxy started");
    let result = proxy.clone().read_stdin().await;
    proxy.stop.cancel();
    proxy.close_session().await;
    drop(proxy);
    // The writer ends once the last task holding the proxy has (bounded:
    // a GET stream may take a moment to notice the stop).
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
    result
}

fn is_loopback(url: &str) -> bool {
    let Ok(u) = reqwest::Url::parse(url) else {
        return false;
    };
    let host = u.host_str().unwrap_or("").trim_matches(['[', ']']);
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Writes each message as one line; stops when every sender is gone or
/// stdout is closed.
async fn write_stdout(mut rx: mpsc::Receiver<Value>) {
    let mut stdout = tokio::io::stdout();
    while let Some(msg) = rx.recv().await {
        // serde_json escapes newlines in strings: one message, one line.
        let mut line = match serde_json::to_vec(&msg) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "a message could not be written");
                continue;
            }
        };
        line.push(b'\n');
        if let Err(e) = async {
            stdout.write_all(&line).await?;
            stdout.flush().await
        }
        .await
        {
            tracing::warn!(error = %e, "stdout closed");
            return;
        }
    }
}

impl Proxy {
    async fn emit(&self, msg: Value) {
        let _ = self.out.send(msg).await;
    }

    async fn read_stdin(self: Arc<Self>) -> Result<()> {
        let mut stdin = BufReader::new(tokio::io::stdin());
        let mut buf = Vec::new();
        let mut tasks = JoinSet::new();
        while let Some(line) = framing::next_line(&mut stdin, MAX_MESSAGE, &mut buf)
            .await
            .context("reading stdin")?
        {
            // Reap finished requests as we go, so the set stays small.
            while tasks.try_join_next().is_some() {}
            let msg = match line {
                Line::Message(m) => m,
                Line::Blank => continue,
                Line::Bad(why) => {
                    self.emit(framing::error_response(Value::Null, PARSE_ERROR, &why))
                        .await;
                    continue;
                }
            };
            match framing::kind(&msg) {
                // The session id its answer brings is needed by what follows.
                Kind::Initialize => self.initialize(msg).await,
                Kind::Request => {
                    let me = self.clone();
                    tasks.spawn(async move { me.forward(msg).await });
                }
                // Notifications and responses keep their order.
                Kind::Other => self.forward(msg).await,
            }
        }
        if tokio::time::timeout(DRAIN, async { while tasks.join_next().await.is_some() {} })
            .await
            .is_err()
        {
            tracing::warn!("requests still unanswered when stdin closed were dropped");
        }
        Ok(())
    }

    fn current(&self) -> Option<Session> {
        self.session
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A POST (or GET/DELETE) with the key, the context headers and the
    /// session's headers.
    fn request(&self, method: Method, session: Option<&Session>) -> reqwest::RequestBuilder {
        let mut req = self
            .http
            .request(method, &self.url)
            .headers(self.headers.clone())
            .header(ACCEPT, "application/json, text/event-stream");
        if let Some(k) = &self.key {
            req = req.header("X-API-Key", k);
        }
        if let Some(s) = session {
            req = req.header("Mcp-Session-Id", &s.id);
            if let Some(v) = &s.version {
                req = req.header("MCP-Protocol-Version", v);
            }
        }
        req
    }

    async fn post(
        &self,
        msg: &Value,
        session: Option<&Session>,
    ) -> Result<reqwest::Response, Failure> {
        let body = serde_json::to_vec(msg).map_err(|e| Failure::Transport(e.to_string()))?;
        let resp = self
            .request(Method::POST, session)
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| {
                Failure::Transport(format!("cannot reach dialtone at {}: {e}", self.url))
            })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let text = read_body(resp).await.unwrap_or_default();
        // The switch's refusals are JSON-RPC error bodies; say what they say.
        let message = serde_json::from_slice::<Value>(&text)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| {
                String::from_utf8_lossy(&text)
                    .trim()
                    .chars()
                    .take(300)
                    .collect()
            });
        Err(match status {
            StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS => {
                Failure::Auth(status, message)
            }
            _ => Failure::Status(status, message),
        })
    }

    /// The JSON-RPC error a failure is answered with.
    fn explain(&self, f: &Failure) -> (i64, String) {
        match f {
            Failure::Auth(StatusCode::TOO_MANY_REQUESTS, m) => (UNAUTHORIZED, format!("dialtone refused the request (HTTP 429): {m}")),
            Failure::Auth(status, m) if self.key.is_none() => (
                UNAUTHORIZED,
                format!(
                    "dialtone refused the request (HTTP {}: {m}): the environment variable {} holding the API key is not set (create a key with `dialtone apikey create --account NAME`)",
                    status.as_u16(),
                    self.key_env
                ),
            ),
            Failure::Auth(status, m) => (
                UNAUTHORIZED,
                format!(
                    "dialtone refused the API key in {} (HTTP {}: {m})",
                    self.key_env,
                    status.as_u16()
                ),
            ),
            Failure::Status(status, m) => (PROXY_ERROR, format!("dialtone answered HTTP {}: {m}", status.as_u16())),
            Failure::Transport(m) => (PROXY_ERROR, m.clone()),
        }
    }

    /// Answers each of `ids` with the failure.
    async fn fail(&self, ids: &[Value], f: &Failure) {
        let (code, message) = self.explain(f);
        if ids.is_empty() {
            tracing::warn!(%message, "a notification or response was not delivered");
        }
        for id in ids {
            self.emit(framing::error_response(id.clone(), code, &message))
                .await;
        }
    }

    /// Relays what the switch answered (JSON or an event stream) to stdout;
    /// `seen` gets the id of every response, `inspect` sees every message.
    async fn relay(
        &self,
        resp: reqwest::Response,
        seen: &mut Vec<Value>,
        inspect: &mut (dyn FnMut(&Value) + Send),
    ) -> Result<(), Failure> {
        let sse = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let mut deliver = |msg: Value, out: &mut Vec<Value>| {
            inspect(&msg);
            if let Some(id) = framing::response_id(&msg) {
                seen.push(id.clone());
            }
            out.push(msg);
        };
        if !sse {
            let body = read_body(resp).await?;
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(());
            }
            let v: Value = serde_json::from_slice(&body)
                .map_err(|e| Failure::Transport(format!("dialtone answered non-JSON: {e}")))?;
            let mut out = Vec::new();
            match v {
                Value::Array(items) => items.into_iter().for_each(|m| deliver(m, &mut out)),
                m => deliver(m, &mut out),
            }
            for m in out {
                self.emit(m).await;
            }
            return Ok(());
        }
        let mut resp = resp;
        let mut parser = SseParser::default();
        loop {
            let chunk = tokio::select! {
                _ = self.stop.cancelled() => return Ok(()),
                c = resp.chunk() => c.map_err(|e| Failure::Transport(format!("the answer broke off: {e}")))?,
            };
            let Some(chunk) = chunk else { return Ok(()) };
            let mut out = Vec::new();
            for event in parser.push(&chunk).map_err(Failure::Transport)? {
                // Priming events and keep-alives carry no message.
                if event.data.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<Value>(&event.data) {
                    Ok(m) => deliver(m, &mut out),
                    Err(e) => tracing::warn!(error = %e, "an event that is not JSON was skipped"),
                }
            }
            for m in out {
                self.emit(m).await;
            }
        }
    }

    /// Forwards one message in the current session, renewing a lost
    /// session once; every request in it gets an answer.
    async fn forward(self: &Arc<Self>, msg: Value) {
        let ids = framing::request_ids(&msg);
        let mut seen = Vec::new();
        let mut retried = false;
        let outcome = loop {
            let session = self.current();
            match self.post(&msg, session.as_ref()).await {
                Ok(resp) => break self.relay(resp, &mut seen, &mut |_| {}).await,
                Err(Failure::Status(StatusCode::NOT_FOUND, _)) if session.is_some() && !retried => {
                    retried = true;
                    if let Some(s) = session {
                        if let Err(f) = self.renew(s.generation).await {
                            break Err(f);
                        }
                    }
                }
                Err(f) => break Err(f),
            }
        };
        let missing: Vec<Value> = ids.into_iter().filter(|id| !seen.contains(id)).collect();
        match outcome {
            Err(f) => self.fail(&missing, &f).await,
            Ok(()) if !missing.is_empty() => {
                let f = Failure::Transport("dialtone closed the answer without a response".into());
                self.fail(&missing, &f).await;
            }
            Ok(()) => {}
        }
    }
}

/// A whole (bounded) response body.
async fn read_body(mut resp: reqwest::Response) -> Result<Vec<u8>, Failure> {
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| Failure::Transport(format!("the answer broke off: {e}")))?
    {
        if body.len() + chunk.len() > MAX_MESSAGE {
            return Err(Failure::Transport(format!(
                "dialtone's answer is longer than {MAX_MESSAGE} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

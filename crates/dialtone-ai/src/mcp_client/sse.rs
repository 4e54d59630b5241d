//! The HTTP+SSE transport of MCP 2024-11-05, which many deployed servers
//! still speak and rmcp no longer has: GET the server's URL for an event
//! stream whose first `endpoint` event names where to POST (on the same
//! origin: the headers, secrets included, go nowhere else), POST each
//! JSON-RPC message there (the server answers 202), and read the server's
//! messages as `message` events on the stream. The stream ending ends the
//! transport. Events are parsed here (`SseParser`) with a size bound.

use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use reqwest::header::{HeaderMap, ACCEPT, CACHE_CONTROL, CONTENT_TYPE};
use reqwest::Url;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::Transport;
use rmcp::RoleClient;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The largest event accepted (a tool's answer travels in one).
const MAX_EVENT: usize = 4 * 1024 * 1024;
/// A POST is answered at once (202); the answer comes on the stream.
const POST_TIMEOUT: Duration = Duration::from_secs(10);
/// Server messages waiting for the client to read them.
const QUEUE: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum SseError {
    #[error("{0}")]
    Http(reqwest::Error),
    #[error("invalid URL: {0}")]
    Url(String),
    #[error("HTTP {0}")]
    Status(u16),
    #[error("the answer is not an event stream (content type {0:?})")]
    NotEventStream(String),
    #[error("the event stream ended before it named its message endpoint")]
    NoEndpoint,
    #[error("the message endpoint {0:?} is not usable: {1}")]
    BadEndpoint(String, String),
    #[error("an event is larger than {MAX_EVENT} bytes")]
    EventTooLarge,
    #[error("cannot encode a message: {0}")]
    Encode(serde_json::Error),
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SseEvent {
    /// The `event:` field; "message" when there is none.
    pub event: String,
    pub data: String,
}

/// Turns a byte stream into events (the WHATWG rules: lines end with CRLF,
/// LF or CR; `data:` lines join with LF; a blank line ends an event; lines
/// starting with ':' are comments; `id` and `retry` are not used here).
#[derive(Default)]
pub(super) struct SseParser {
    line: Vec<u8>,
    event: Option<String>,
    data: String,
    has_data: bool,
    after_cr: bool,
}

impl SseParser {
    /// The events `chunk` completes.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        let mut events = Vec::new();
        for &b in chunk {
            let after_cr = std::mem::replace(&mut self.after_cr, b == b'\r');
            match b {
                b'\n' if after_cr => {}
                b'\n' | b'\r' => {
                    if let Some(ev) = self.end_line() {
                        events.push(ev);
                    }
                }
                _ => {
                    if self.line.len() + self.data.len() >= MAX_EVENT {
                        return Err(SseError::EventTooLarge);
                    }
                    self.line.push(b);
                }
            }
        }
        Ok(events)
    }

    fn end_line(&mut self) -> Option<SseEvent> {
        let line = String::from_utf8_lossy(&std::mem::take(&mut self.line)).into_owned();
        if line.is_empty() {
            let event = self.event.take();
            let data = std::mem::take(&mut self.data);
            if !std::mem::take(&mut self.has_data) {
                return None;
            }
            return Some(SseEvent {
                event: event.unwrap_or_else(|| "message".into()),
                data,
            });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_str(), ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            _ => {}
        }
        None
    }
}

/// Aborts the stream reader when the transport goes.
struct Reader(JoinHandle<()>);

impl Drop for Reader {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A connected HTTP+SSE transport.
pub(super) struct LegacySse {
    client: reqwest::Client,
    endpoint: Url,
    headers: HeaderMap,
    rx: mpsc::Receiver<ServerJsonRpcMessage>,
    reader: Reader,
}

impl LegacySse {
    /// Opens the event stream at `url` and waits for its endpoint.
    pub async fn connect(
        client: reqwest::Client,
        url: &str,
        headers: HeaderMap,
    ) -> Result<LegacySse, SseError> {
        let base = Url::parse(url).map_err(|e| SseError::Url(e.to_string()))?;
        let resp = client
            .get(base.clone())
            .headers(headers.clone())
            .header(ACCEPT, "text/event-stream")
            .header(CACHE_CONTROL, "no-cache")
            .send()
            .await
            .map_err(|e| SseError::Http(e.without_url()))?;
        if !resp.status().is_success() {
            return Err(SseError::Status(resp.status().as_u16()));
        }
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        if !content_type
            .to_ascii_lowercase()
            .starts_with("text/event-stream")
        {
            return Err(SseError::NotEventStream(content_type));
        }
        let mut stream = Box::pin(resp.bytes_stream());
        let mut parser = SseParser::default();
        let mut pending: VecDeque<SseEvent> = VecDeque::new();
        let endpoint = loop {
            if let Some(ev) = pending.pop_front() {
                if ev.event == "endpoint" {
                    break ev.data;
                }
                continue;
            }
            match stream.next().await {
                Some(Ok(chunk)) => pending.extend(parser.feed(&chunk)?),
                Some(Err(e)) => return Err(SseError::Http(e.without_url())),
                None => return Err(SseError::NoEndpoint),
            }
        };
        let endpoint = endpoint_url(&base, &endpoint)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let reader = Reader(tokio::spawn(read_messages(stream, parser, pending, tx)));
        Ok(LegacySse {
            client,
            endpoint,
            headers,
            rx,
            reader,
        })
    }
}

/// Where the `endpoint` event says to POST: relative to the stream's URL,
/// and on its origin.
pub(super) fn endpoint_url(base: &Url, endpoint: &str) -> Result<Url, SseError> {
    let endpoint = endpoint.trim();
    let url = base
        .join(endpoint)
        .map_err(|e| SseError::BadEndpoint(endpoint.to_owned(), e.to_string()))?;
    if url.origin() != base.origin() {
        return Err(SseError::BadEndpoint(
            endpoint.to_owned(),
            "it is on another origin than the event stream".into(),
        ));
    }
    Ok(url)
}

/// Hands the stream's `message` events to the client until the stream ends
/// (or the client goes away).
async fn read_messages<S, B, E>(
    mut stream: S,
    mut parser: SseParser,
    pending: VecDeque<SseEvent>,
    tx: mpsc::Sender<ServerJsonRpcMessage>,
) where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    E: std::fmt::Display,
{
    for ev in pending {
        if !deliver(ev, &tx).await {
            return;
        }
    }
    while let Some(chunk) = stream.next().await {
        let events = match chunk.map(|c| parser.feed(c.as_ref())) {
            Ok(Ok(events)) => events,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "MCP event stream refused");
                return;
            }
            Err(e) => {
                tracing::debug!(error = %e, "MCP event stream ended");
                return;
            }
        };
        for ev in events {
            if !deliver(ev, &tx).await {
                return;
            }
        }
    }
    tracing::debug!("MCP event stream closed by the server");
}

/// False once nobody reads.
async fn deliver(ev: SseEvent, tx: &mpsc::Sender<ServerJsonRpcMessage>) -> bool {
    if ev.event != "message" {
        tracing::debug!(event = %ev.event, "MCP event ignored");
        return true;
    }
    match serde_json::from_str::<ServerJsonRpcMessage>(&ev.data) {
        Ok(msg) => tx.send(msg).await.is_ok(),
        Err(e) => {
            tracing::debug!(error = %e, "an MCP event that is not a JSON-RPC message, ignored");
            true
        }
    }
}

impl Transport<RoleClient> for LegacySse {
    type Error = SseError;

    fn send(
        &mut self,
        item: ClientJsonRpcMessage,
    ) -> impl Future<Output = Result<(), SseError>> + Send + 'static {
        let body = serde_json::to_vec(&item);
        let request = self
            .client
            .post(self.endpoint.clone())
            .headers(self.headers.clone())
            .header(CONTENT_TYPE, "application/json")
            .timeout(POST_TIMEOUT);
        async move {
            let body = body.map_err(SseError::Encode)?;
            let resp = request
                .body(body)
                .send()
                .await
                .map_err(|e| SseError::Http(e.without_url()))?;
            if !resp.status().is_success() {
                return Err(SseError::Status(resp.status().as_u16()));
            }
            Ok(())
        }
    }

    fn receive(&mut self) -> impl Future<Output = Option<ServerJsonRpcMessage>> + Send {
        self.rx.recv()
    }

    fn close(&mut self) -> impl Future<Output = Result<(), SseError>> + Send {
        self.reader.0.abort();
        self.rx.close();
        std::future::ready(Ok(()))
    }
}

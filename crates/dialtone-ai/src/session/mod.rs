//! The websocket session driver: [`connect`] opens the provider's websocket
//! (API key in the handshake headers), sends the adapter's opening messages
//! and waits for the provider to be ready, all within the configured
//! timeout; then a writer task turns [`ClientCommand`]s into wire messages
//! and a reader task turns wire messages into [`ServerEvent`]s, ending with
//! [`ServerEvent::Closed`]. `tasks.rs` holds those two tasks.

mod tasks;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::protocol::{ClientCommand, Provider, RealtimeProtocol, ServerEvent, SessionConfig};

pub use crate::error::{ConnectError, SessionClosed};

/// The adapter, shared by the writer (encode) and the reader (decode); held
/// only for the time of one encode or decode, never across an await.
type SharedProtocol = Arc<Mutex<Box<dyn RealtimeProtocol>>>;

/// Talks to an open session. Cheap to clone; when every clone is dropped
/// the websocket is closed.
#[derive(Clone)]
pub struct SessionHandle {
    tx: mpsc::UnboundedSender<ClientCommand>,
    provider: Provider,
    closed: Arc<AtomicBool>,
}

impl SessionHandle {
    /// Queues a command for the writer task; never waits. Fails once the
    /// session has ended or [`ClientCommand::Close`] was sent.
    pub fn send(&self, cmd: ClientCommand) -> Result<(), SessionClosed> {
        if self.closed.load(Ordering::Acquire) {
            return Err(SessionClosed);
        }
        let closing = matches!(cmd, ClientCommand::Close);
        self.tx.send(cmd).map_err(|_| SessionClosed)?;
        if closing {
            self.closed.store(true, Ordering::Release);
        }
        Ok(())
    }

    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// True once the websocket has ended or a Close was sent.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire) || self.tx.is_closed()
    }
}

/// Opens a session: the websocket handshake (with the adapter's headers),
/// the opening messages, and the provider's "ready", all within
/// `cfg.connect_timeout`. An error from the provider before it is ready
/// fails with [`ConnectError::Rejected`]. Afterwards every provider message
/// becomes events on the receiver (a message that cannot be decoded is
/// logged and skipped); when the socket ends the receiver gets
/// [`ServerEvent::Closed`] and then ends.
pub async fn connect(
    cfg: SessionConfig,
) -> Result<(SessionHandle, mpsc::UnboundedReceiver<ServerEvent>), ConnectError> {
    let protocol = cfg.provider.protocol();
    let request = request(&cfg, protocol.as_ref())?;
    match tokio::time::timeout(cfg.connect_timeout, open(cfg, protocol, request)).await {
        Ok(result) => result,
        Err(_) => Err(ConnectError::Timeout),
    }
}

/// Handshake, opening messages, ready; then the two tasks.
async fn open(
    cfg: SessionConfig,
    mut protocol: Box<dyn RealtimeProtocol>,
    request: Request,
) -> Result<(SessionHandle, mpsc::UnboundedReceiver<ServerEvent>), ConnectError> {
    if request.uri().scheme_str() == Some("wss") {
        install_crypto_provider();
    }
    // Nagle off: audio frames are small and late ones are useless.
    let (ws, _response) = tokio_tungstenite::connect_async_with_config(request, None, true)
        .await
        .map_err(handshake_error)?;
    let (mut sink, mut stream) = ws.split();
    for msg in protocol.open(&cfg) {
        sink.send(Message::text(msg)).await.map_err(|e| {
            ConnectError::Refused(format!("the connection failed during set-up: {e}"))
        })?;
    }

    let provider = cfg.provider;
    let mut after_ready = Vec::new();
    'ready: loop {
        let msg = match stream.next().await {
            Some(Ok(msg)) => msg,
            Some(Err(e)) => {
                return Err(ConnectError::Refused(format!(
                    "the connection failed during set-up: {e}"
                )))
            }
            None => {
                return Err(ConnectError::Rejected(
                    "the model closed the connection before it was ready".into(),
                ))
            }
        };
        let bytes: &[u8] = match &msg {
            Message::Text(t) => t.as_bytes(),
            Message::Binary(b) => b,
            Message::Close(frame) => {
                return Err(ConnectError::Rejected(tasks::close_text(frame.as_ref())));
            }
            _ => continue,
        };
        let events = match protocol.decode(bytes) {
            Ok(events) => events,
            Err(e) => {
                tasks::log_undecodable(provider, bytes, &e);
                continue;
            }
        };
        let mut events = events.into_iter();
        for ev in events.by_ref() {
            match ev {
                // Ready itself is not forwarded: connect returning says it.
                ServerEvent::Ready => {
                    after_ready.extend(events);
                    break 'ready;
                }
                ServerEvent::Error { message, code, .. } => {
                    let text = match code {
                        Some(code) => format!("{message} ({code})"),
                        None => message,
                    };
                    return Err(ConnectError::Rejected(text));
                }
                _ => {}
            }
        }
    }
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    for ev in after_ready {
        let _ = events_tx.send(ev);
    }
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let closed = Arc::new(AtomicBool::new(false));
    let protocol: SharedProtocol = Arc::new(Mutex::new(protocol));
    let (closing_tx, closing_rx) = watch::channel(false);
    let (reader_done_tx, reader_done_rx) = oneshot::channel();
    tokio::spawn(tasks::write(tasks::Writer {
        sink,
        commands: cmd_rx,
        protocol: protocol.clone(),
        closed: closed.clone(),
        closing: closing_tx,
        reader_done: reader_done_rx,
    }));
    tokio::spawn(tasks::read(tasks::Reader {
        stream,
        events: events_tx,
        protocol,
        closed: closed.clone(),
        closing: closing_rx,
        _done: reader_done_tx,
    }));
    tracing::debug!(%provider, "realtime session ready");
    Ok((
        SessionHandle {
            tx: cmd_tx,
            provider,
            closed,
        },
        events_rx,
    ))
}

/// The handshake request: the adapter's URL and headers, the key marked
/// sensitive so that no debug output shows it.
fn request(cfg: &SessionConfig, protocol: &dyn RealtimeProtocol) -> Result<Request, ConnectError> {
    let url = protocol.url(cfg);
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    if !matches!(scheme.as_deref(), Some("ws" | "wss")) {
        return Err(ConnectError::BadUrl(format!(
            "{} is not a ws:// or wss:// URL",
            shown(&url)
        )));
    }
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| ConnectError::BadUrl(format!("{}: {e}", shown(&url))))?;
    if request.uri().host().is_none_or(str::is_empty) {
        return Err(ConnectError::BadUrl(format!(
            "{} names no host",
            shown(&url)
        )));
    }
    let headers = request.headers_mut();
    let agent = concat!("dialtone/", env!("CARGO_PKG_VERSION"));
    headers.insert("user-agent", HeaderValue::from_static(agent));
    for (name, value) in protocol.handshake_headers(cfg) {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            ConnectError::Refused(format!("{name:?} is not a valid HTTP header name"))
        })?;
        let mut value = HeaderValue::from_str(&value).map_err(|_| {
            ConnectError::Refused(format!(
                "the {name} header (the API key) holds characters HTTP does not allow"
            ))
        })?;
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    Ok(request)
}

/// The URL for an error text, without its query (which may hold a key).
fn shown(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?…"),
        None => url.to_string(),
    }
}

fn handshake_error(e: WsError) -> ConnectError {
    match e {
        WsError::Http(response) => ConnectError::Http {
            status: response.status().as_u16(),
        },
        WsError::Url(e) => ConnectError::BadUrl(e.to_string()),
        WsError::HttpFormat(e) => ConnectError::BadUrl(e.to_string()),
        WsError::Io(e) => ConnectError::Refused(e.to_string()),
        WsError::Tls(e) => ConnectError::Refused(format!("TLS failed: {e}")),
        other => ConnectError::Refused(other.to_string()),
    }
}

/// rustls needs a process-wide crypto provider when more than one could be
/// chosen; ring is the one this crate builds with (no cmake needed).
fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err: another part of the process installed one already; fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

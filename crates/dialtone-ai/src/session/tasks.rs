//! The two tasks of an open session. The writer encodes commands and sends
//! them in order; on Close (or when every handle is gone) it sends a close
//! frame and tells the reader to stop waiting for long. The reader decodes
//! every message into events, answers pings by reading on, and when the
//! socket ends sends [`ServerEvent::Closed`] with the reason as the last
//! event.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, MutexGuard};
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::SharedProtocol;
use crate::error::DecodeError;
use crate::json::message_kind;
use crate::protocol::{ClientCommand, Provider, RealtimeProtocol, ServerEvent};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long the reader waits for the provider's answer to our close frame
/// (or for anything at all after a failed write) before it gives up.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

pub(super) struct Writer {
    pub sink: SplitSink<Ws, Message>,
    pub commands: mpsc::UnboundedReceiver<ClientCommand>,
    pub protocol: SharedProtocol,
    pub closed: Arc<AtomicBool>,
    /// true: we are closing; the reader should not wait long any more.
    pub closing: watch::Sender<bool>,
    /// Resolves (with an error) when the reader has ended.
    pub reader_done: oneshot::Receiver<()>,
}

pub(super) struct Reader {
    pub stream: SplitStream<Ws>,
    pub events: mpsc::UnboundedSender<ServerEvent>,
    pub protocol: SharedProtocol,
    pub closed: Arc<AtomicBool>,
    pub closing: watch::Receiver<bool>,
    /// Dropped when the reader ends, which wakes the writer.
    pub _done: oneshot::Sender<()>,
}

pub(super) async fn write(mut w: Writer) {
    loop {
        let cmd = tokio::select! {
            cmd = w.commands.recv() => cmd,
            // The socket is gone; nothing left to send or close.
            _ = &mut w.reader_done => break,
        };
        let Some(cmd) = cmd.filter(|c| !matches!(c, ClientCommand::Close)) else {
            // Close, or every handle dropped: end the session politely.
            w.closed.store(true, Ordering::Release);
            let frame = CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            };
            if let Err(e) = w.sink.send(Message::Close(Some(frame))).await {
                tracing::debug!(error = %e, "could not send the close frame");
            }
            let _ = w.closing.send(true);
            break;
        };
        let messages = lock(&w.protocol).encode(&cmd);
        for msg in messages {
            if let Err(e) = w.sink.send(Message::text(msg)).await {
                tracing::warn!(error = %e, "sending to the model failed; the session ends");
                w.closed.store(true, Ordering::Release);
                let _ = w.closing.send(true);
                return;
            }
        }
    }
    w.closed.store(true, Ordering::Release);
}

pub(super) async fn read(mut r: Reader) {
    let provider = lock(&r.protocol).provider();
    let mut deadline: Option<Instant> = None;
    let mut close_frame: Option<Option<CloseFrame>> = None;
    let reason = loop {
        let next = match deadline {
            Some(at) => match tokio::time::timeout_at(at, r.stream.next()).await {
                Ok(next) => next,
                Err(_) => break "closed by dialtone (the model did not answer the close)".into(),
            },
            None => tokio::select! {
                next = r.stream.next() => next,
                changed = r.closing.changed() => {
                    // A dropped sender means the writer is gone: closing too.
                    if changed.is_err() || *r.closing.borrow() {
                        deadline = Some(Instant::now() + CLOSE_GRACE);
                    }
                    continue;
                }
            },
        };
        match next {
            Some(Ok(Message::Text(t))) => dispatch(&r, provider, t.as_bytes()),
            Some(Ok(Message::Binary(b))) => dispatch(&r, provider, &b),
            // tungstenite answers it; the stream ends after the handshake.
            Some(Ok(Message::Close(frame))) => close_frame = Some(frame),
            // Pings are answered by tungstenite as we read on.
            Some(Ok(_)) => {}
            None | Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => {
                break ended(deadline.is_some(), close_frame);
            }
            Some(Err(e)) if deadline.is_some() => {
                tracing::debug!(error = %e, "the connection failed while closing");
                break "closed by dialtone".into();
            }
            Some(Err(e)) => break format!("the connection to the model failed: {e}"),
        }
    };
    r.closed.store(true, Ordering::Release);
    tracing::debug!(%provider, %reason, "realtime session closed");
    let _ = r.events.send(ServerEvent::Closed { reason });
}

/// Why a socket that ended cleanly ended.
fn ended(we_closed: bool, close_frame: Option<Option<CloseFrame>>) -> String {
    match close_frame {
        _ if we_closed => "closed by dialtone".into(),
        Some(frame) => close_text(frame.as_ref()),
        None => "the connection to the model ended without a close frame".into(),
    }
}

/// A close frame from the provider in words (Gemini puts its errors here:
/// a bad model name, a bad setup field …).
pub(super) fn close_text(frame: Option<&CloseFrame>) -> String {
    match frame {
        Some(f) if !f.reason.is_empty() => {
            let code = u16::from(f.code);
            format!(
                "the model closed the connection: {} (code {code})",
                f.reason.as_str()
            )
        }
        Some(f) => format!(
            "the model closed the connection (code {})",
            u16::from(f.code)
        ),
        None => "the model closed the connection".into(),
    }
}

fn dispatch(r: &Reader, provider: Provider, msg: &[u8]) {
    let decoded = lock(&r.protocol).decode(msg);
    match decoded {
        Ok(events) => {
            for ev in events {
                // Nobody listens any more: keep the socket serviced anyway
                // until the handles close it.
                let _ = r.events.send(ev);
            }
        }
        Err(e) => log_undecodable(provider, msg, &e),
    }
}

/// A message we skip: its kind and what was wrong, never its content.
pub(super) fn log_undecodable(provider: Provider, msg: &[u8], e: &DecodeError) {
    let kind = message_kind(msg);
    tracing::warn!(
        %provider,
        kind = kind.as_deref().unwrap_or("-"),
        bytes = msg.len(),
        error = %e,
        "skipped a message from the model"
    );
}

/// The adapter; a panic elsewhere while it was held leaves it usable.
fn lock(protocol: &SharedProtocol) -> MutexGuard<'_, Box<dyn RealtimeProtocol>> {
    protocol
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

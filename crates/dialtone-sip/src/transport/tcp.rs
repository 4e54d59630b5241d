//! The stream transports, TCP and TLS: accepted and outbound connections
//! (TLS ones through a rustls handshake first), each with a reader that
//! frames messages by Content-Length (RFC 3261 §18.3) and a writer fed by a
//! channel, registered by peer so that responses and later requests to that
//! peer reuse the connection. [`TcpLimits`] bound the connections one source
//! may hold and how long a message (or a TLS handshake) may take.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Peer, Protocol, TcpLimits, TransportError, Transports};
use crate::message::framing::{frame, FrameResult};

/// A peer that sends more than this without completing a message is cut off.
const MAX_BUFFERED: usize = 256 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) async fn accept_loop(t: Transports, listener: TcpListener, protocol: Protocol) {
    let acceptor = t
        .inner
        .tls
        .as_ref()
        .and_then(|tls| tls.server.clone())
        .map(tokio_rustls::TlsAcceptor::from);
    loop {
        match listener.accept().await {
            Ok((stream, remote)) => {
                let Some(slot) = SourceSlot::take(&t, remote.ip()) else {
                    t.inner.tcp_refused.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(%remote, %protocol, limit = t.inner.tcp_limits.per_source, "connection refused: too many from this source");
                    drop(stream);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let local = stream.local_addr().unwrap_or(remote);
                match (protocol, &acceptor) {
                    (Protocol::Tls, Some(acceptor)) => {
                        let (t, acceptor) = (t.clone(), acceptor.clone());
                        // The handshake is due as a message is (slowloris).
                        let limit = t.inner.tcp_limits.message_timeout;
                        tokio::spawn(async move {
                            match tokio::time::timeout(limit, acceptor.accept(stream)).await {
                                Ok(Ok(tls)) => {
                                    start(
                                        &t,
                                        tls,
                                        Peer::new(Protocol::Tls, remote),
                                        local,
                                        Some(slot),
                                    );
                                }
                                Ok(Err(e)) => {
                                    tracing::info!(%remote, error = %e, "tls handshake failed");
                                }
                                Err(_) => {
                                    t.inner.tcp_timed_out.fetch_add(1, Ordering::Relaxed);
                                    tracing::info!(%remote, "tls handshake not finished in time");
                                }
                            }
                        });
                    }
                    _ => {
                        start(
                            &t,
                            stream,
                            Peer::new(Protocol::Tcp, remote),
                            local,
                            Some(slot),
                        );
                    }
                }
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "tcp accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Sends over the open connection to `peer`, connecting first if there is none.
pub(super) async fn send(t: &Transports, bytes: Bytes, peer: Peer) -> Result<(), TransportError> {
    if let Some(tx) = t.inner.tcp_conns.get(&peer).map(|c| c.clone()) {
        if tx.send(bytes.clone()).is_ok() {
            return Ok(());
        }
        t.inner.tcp_conns.remove(&peer);
    }
    let timed_out = |what: &str| TransportError::Io {
        peer,
        source: std::io::Error::new(std::io::ErrorKind::TimedOut, format!("{what} timed out")),
    };
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(peer.addr))
        .await
        .map_err(|_| timed_out("connect"))?
        .map_err(|source| TransportError::Io { peer, source })?;
    let _ = stream.set_nodelay(true);
    let local = stream.local_addr().unwrap_or(peer.addr);
    let tx = if peer.protocol == Protocol::Tls {
        let tls = t
            .inner
            .tls
            .as_ref()
            .ok_or(TransportError::NoTransport(Protocol::Tls, peer.addr))?;
        let name = match t.inner.tls_names.get(&peer.addr) {
            Some(n) => ServerName::try_from(n.clone())
                .map_err(|e| TransportError::Config(format!("tls name {:?}: {e}", n.as_str())))?,
            None => ServerName::IpAddress(peer.addr.ip().into()),
        };
        let connector = tokio_rustls::TlsConnector::from(tls.client.clone());
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, stream))
            .await
            .map_err(|_| timed_out("tls handshake"))?
            .map_err(|source| TransportError::Io { peer, source })?;
        start(t, stream, peer, local, None)
    } else {
        start(t, stream, peer, local, None)
    };
    tx.send(bytes).map_err(|_| TransportError::Closed(peer))
}

/// One accepted connection counted against its source's limit, given back
/// when the connection closes.
struct SourceSlot {
    t: Transports,
    ip: IpAddr,
}

impl SourceSlot {
    /// A slot for a connection from `ip`, unless its source is at the limit.
    fn take(t: &Transports, ip: IpAddr) -> Option<SourceSlot> {
        let limits = &t.inner.tcp_limits;
        let mut n = t.inner.tcp_sources.entry(ip).or_insert(0);
        if limits.per_source > 0 && *n >= limits.per_source && !(limits.exempt)(ip) {
            return None;
        }
        *n += 1;
        Some(SourceSlot { t: t.clone(), ip })
    }
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        self.t.inner.tcp_sources.remove_if_mut(&self.ip, |_, n| {
            *n = n.saturating_sub(1);
            *n == 0
        });
    }
}

fn start<S>(
    t: &Transports,
    stream: S,
    peer: Peer,
    local: SocketAddr,
    slot: Option<SourceSlot>,
) -> mpsc::UnboundedSender<Bytes>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (reader, writer) = tokio::io::split(stream);
    let (tx, rx) = mpsc::unbounded_channel();
    t.inner.tcp_conns.insert(peer, tx.clone());
    tokio::spawn(write_loop(writer, rx));
    let t2 = t.clone();
    let tx2 = tx.clone();
    tokio::spawn(async move {
        let accepted = slot.is_some();
        read_loop(&t2, reader, peer, local, &tx2, accepted).await;
        drop(slot);
        // Only forget the connection if it is still this one.
        t2.inner
            .tcp_conns
            .remove_if(&peer, |_, v| v.same_channel(&tx2));
    });
    tx
}

async fn write_loop(mut w: impl AsyncWrite + Unpin, mut rx: mpsc::UnboundedReceiver<Bytes>) {
    while let Some(b) = rx.recv().await {
        if let Err(e) = w.write_all(&b).await {
            tracing::debug!(error = %e, "tcp write failed");
            break;
        }
    }
    let _ = w.shutdown().await;
}

async fn read_loop(
    t: &Transports,
    mut r: impl AsyncRead + Unpin,
    peer: Peer,
    local: SocketAddr,
    tx: &mpsc::UnboundedSender<Bytes>,
    accepted: bool,
) {
    let limits: &TcpLimits = &t.inner.tcp_limits;
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 16 * 1024];
    // When the message being received began (for an accepted connection,
    // the accept itself: its first message is due as any other).
    let mut message_since = accepted.then(Instant::now);
    let mut last_byte = Instant::now();
    loop {
        // Take every complete message out of the buffer.
        let mut took = false;
        loop {
            match frame(&buf) {
                FrameResult::NeedMore => break,
                FrameResult::Keepalive { len } => {
                    // RFC 5626 §3.5.1: answer a double-CRLF ping with a CRLF pong.
                    buf.drain(..len);
                    took = true;
                    let _ = tx.send(Bytes::from_static(b"\r\n"));
                }
                FrameResult::Complete { len } => {
                    took = true;
                    let msg: Vec<u8> = buf.drain(..len).collect();
                    if let Some(reply) = t.ingest(&msg, peer, local).await {
                        let _ = tx.send(Bytes::from(reply));
                    }
                }
                FrameResult::Invalid(reason) => {
                    // RFC 4475 §3.1.2.3: answer if we can, then close, since
                    // the stream can no longer be framed.
                    tracing::debug!(%peer, %reason, "unframeable tcp stream, closing");
                    if let Some(reply) = unframeable_reply(&buf, &reason) {
                        let _ = tx.send(Bytes::from(reply));
                    }
                    return;
                }
            }
        }
        if buf.len() > MAX_BUFFERED {
            tracing::debug!(%peer, "tcp message too large, closing");
            return;
        }
        if took || message_since.is_none() {
            message_since = (!buf.is_empty()).then(Instant::now);
        }
        let deadline = match message_since {
            Some(since) => since + limits.message_timeout,
            None => last_byte + limits.idle_timeout,
        };
        match tokio::time::timeout_at(deadline, r.read(&mut chunk)).await {
            Err(_) => {
                t.inner.tcp_timed_out.fetch_add(1, Ordering::Relaxed);
                let why = if message_since.is_some() {
                    "a message not finished in time"
                } else {
                    "idle"
                };
                tracing::info!(%peer, why, "tcp connection closed");
                return;
            }
            Ok(Ok(0) | Err(_)) => return,
            Ok(Ok(n)) => {
                last_byte = Instant::now();
                buf.extend_from_slice(&chunk[..n]);
            }
        }
    }
}

/// The 400 for a stream message that cannot be framed (no or a bad
/// Content-Length): never delivered, since its end is unknown.
fn unframeable_reply(buf: &[u8], reason: &str) -> Option<Vec<u8>> {
    use crate::message::{parse, reply, to_bytes, ParseError, SipMessage};
    match parse(buf) {
        Ok(SipMessage::Request(req)) if req.method != rsip::Method::Ack => {
            let mut r = reply::response_to(&req, 400, Some(reason));
            reply::with_to_tag(&mut r, &reply::new_tag());
            Some(to_bytes(&SipMessage::Response(r)))
        }
        Err(ParseError::Reject { response, .. }) => Some(response),
        _ => None,
    }
}

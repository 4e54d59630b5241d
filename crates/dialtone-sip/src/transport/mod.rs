//! Transports (RFC 3261 §18): UDP, TCP and TLS (§26.2) sockets on the
//! configured addresses, IPv4 and IPv6. Incoming bytes are framed and parsed here and
//! handed up as [`Incoming`] messages; requests get `received`/`rport`
//! stamped on their top Via (RFC 3581). Outgoing messages go to a [`Peer`]:
//! over the TCP or TLS connection to that address when one is open (so
//! responses return on the connection their request came on), over a new
//! connection otherwise, or as a UDP datagram.

mod peer;
mod tcp;
mod tls;
mod udp;
pub mod via;
pub mod wire;

pub use peer::{Listen, Peer, Protocol};
pub use tls::TlsSetup;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use dashmap::DashMap;
use rsip::SipMessage;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util_shim::TaskSet;

/// A message that arrived, with where it came from and which local socket took it.
#[derive(Debug)]
pub struct Incoming {
    pub msg: SipMessage,
    pub from: Peer,
    pub local: SocketAddr,
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("transport configuration: {0}")]
    Config(String),
    #[error("no {0} transport for address family of {1}")]
    NoTransport(Protocol, SocketAddr),
    #[error("i/o error to {peer}: {source}")]
    Io {
        peer: Peer,
        #[source]
        source: std::io::Error,
    },
    #[error("connection to {0} closed")]
    Closed(Peer),
    #[error("bind {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

/// Limits on TCP connections, against floods of connections and peers that
/// hold one open without finishing a message (slowloris).
#[derive(Clone)]
pub struct TcpLimits {
    /// Accepted connections open at once from one address; 0: no limit.
    /// One over it is closed as soon as it is accepted.
    pub per_source: usize,
    /// A message must be complete this long after its first byte, and an
    /// accepted connection's first message this long after the accept.
    pub message_timeout: Duration,
    /// A connection with no message in progress is closed after this long
    /// without a byte (CRLF keepalives count, RFC 5626 §3.5.1).
    pub idle_timeout: Duration,
    /// Addresses the per-source limit does not apply to.
    pub exempt: Arc<dyn Fn(IpAddr) -> bool + Send + Sync>,
}

impl Default for TcpLimits {
    fn default() -> Self {
        TcpLimits {
            per_source: 0,
            message_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(3900),
            exempt: Arc::new(|_| false),
        }
    }
}

impl std::fmt::Debug for TcpLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpLimits")
            .field("per_source", &self.per_source)
            .field("message_timeout", &self.message_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .finish_non_exhaustive()
    }
}

/// What the TCP limits did, for metrics.
#[derive(Clone, Copy, Debug, Default)]
pub struct TcpStats {
    /// Connections open now.
    pub open: u64,
    /// Accepted connections closed at once: their source was at its limit.
    pub refused: u64,
    /// Connections closed for a message not finished in time, or idleness.
    pub timed_out: u64,
}

/// Destinations whose route source is remembered (beyond it, looked up each time).
const ROUTE_CACHE_MAX: usize = 4096;

/// Whether a malformed request (or one with an unknown method) from this
/// address may be answered: such requests never reach the transaction
/// layer's gate, but a flood of them must be limited too.
pub type RejectGate = Arc<dyn Fn(IpAddr) -> bool + Send + Sync>;

/// Takes each parsed message on the task that received it, in place of
/// the `incoming` channel: the transaction layer matches it there, so a
/// message costs no hand-off between tasks before its transaction.
pub type Receiver = Arc<dyn Fn(Incoming) + Send + Sync>;

/// Every open transport; cheap to clone.
#[derive(Clone)]
pub struct Transports {
    inner: Arc<Inner>,
}

struct Inner {
    udp: Vec<(SocketAddr, Arc<UdpSocket>)>,
    /// TCP and TLS listeners.
    stream_listen: Vec<(Protocol, SocketAddr)>,
    /// Open TCP and TLS connections by peer: a writer channel per connection.
    tcp_conns: DashMap<Peer, mpsc::UnboundedSender<Bytes>>,
    tls: Option<TlsSetup>,
    /// The name a TLS server at an address is checked against.
    tls_names: DashMap<SocketAddr, String>,
    /// Written for listeners on the unspecified address.
    advertise: OnceLock<IpAddr>,
    /// The local address each destination is routed from.
    route_sources: DashMap<IpAddr, IpAddr>,
    tcp_limits: TcpLimits,
    /// Accepted connections open, by source address (for `per_source`).
    tcp_sources: DashMap<IpAddr, usize>,
    tcp_refused: AtomicU64,
    tcp_timed_out: AtomicU64,
    /// Asked before a malformed request or unknown method is answered here.
    reject_gate: OnceLock<RejectGate>,
    /// Once set, parsed messages go here instead of to `incoming`.
    receiver: OnceLock<Receiver>,
    incoming: mpsc::Sender<Incoming>,
    /// In unit tests, every sent message lands here instead of on a socket.
    sink: Option<mpsc::UnboundedSender<(Peer, SipMessage)>>,
    tasks: TaskSet,
}

impl Transports {
    /// Binds every listener and starts their receive loops. Parsed messages
    /// are sent to `incoming`.
    pub async fn bind(
        listen: &[Listen],
        incoming: mpsc::Sender<Incoming>,
    ) -> Result<Transports, TransportError> {
        Self::bind_with(listen, incoming, TcpLimits::default()).await
    }

    /// [`bind`](Self::bind) with limits on TCP connections.
    pub async fn bind_with(
        listen: &[Listen],
        incoming: mpsc::Sender<Incoming>,
        tcp_limits: TcpLimits,
    ) -> Result<Transports, TransportError> {
        Self::bind_secure(listen, incoming, tcp_limits, None).await
    }

    /// [`bind_with`](Self::bind_with) and TLS: `tls:` listeners need
    /// `tls.server`; connections to TLS peers use `tls.client`.
    pub async fn bind_secure(
        listen: &[Listen],
        incoming: mpsc::Sender<Incoming>,
        tcp_limits: TcpLimits,
        tls: Option<TlsSetup>,
    ) -> Result<Transports, TransportError> {
        let mut udp = Vec::new();
        let mut tcp_listeners = Vec::new();
        for l in listen {
            match l.protocol {
                Protocol::Udp => {
                    let sock = udp::bind(l.addr).await?;
                    let local = sock.local_addr().map_err(|source| TransportError::Bind {
                        addr: l.addr.to_string(),
                        source,
                    })?;
                    udp.push((local, Arc::new(sock)));
                }
                Protocol::Tcp | Protocol::Tls => {
                    if l.protocol == Protocol::Tls
                        && tls.as_ref().and_then(|t| t.server.as_ref()).is_none()
                    {
                        return Err(TransportError::Config(format!(
                            "tls:{} needs a certificate and private key",
                            l.addr
                        )));
                    }
                    let listener =
                        tokio::net::TcpListener::bind(l.addr)
                            .await
                            .map_err(|source| TransportError::Bind {
                                addr: format!("{}:{}", l.protocol, l.addr),
                                source,
                            })?;
                    tcp_listeners.push((l.protocol, listener));
                }
            }
        }
        let stream_listen = tcp_listeners
            .iter()
            .filter_map(|(p, l)| Some((*p, l.local_addr().ok()?)))
            .collect();
        let t = Transports {
            inner: Arc::new(Inner {
                udp,
                stream_listen,
                tcp_conns: DashMap::new(),
                tls,
                tls_names: DashMap::new(),
                advertise: OnceLock::new(),
                route_sources: DashMap::new(),
                tcp_limits,
                tcp_sources: DashMap::new(),
                tcp_refused: AtomicU64::new(0),
                tcp_timed_out: AtomicU64::new(0),
                reject_gate: OnceLock::new(),
                receiver: OnceLock::new(),
                incoming,
                sink: None,
                tasks: TaskSet::default(),
            }),
        };
        for (local, sock) in &t.inner.udp {
            t.inner
                .tasks
                .spawn(udp::recv_loop(t.clone(), sock.clone(), *local));
        }
        for (protocol, listener) in tcp_listeners {
            t.inner
                .tasks
                .spawn(tcp::accept_loop(t.clone(), listener, protocol));
        }
        Ok(t)
    }

    /// A transport that sends every message to `sink` and receives nothing:
    /// for unit tests of the layers above.
    pub fn sink(
        local: SocketAddr,
        incoming: mpsc::Sender<Incoming>,
    ) -> (Transports, mpsc::UnboundedReceiver<(Peer, SipMessage)>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let t = Transports {
            inner: Arc::new(Inner {
                udp: Vec::new(),
                stream_listen: vec![(Protocol::Tcp, local)],
                tcp_conns: DashMap::new(),
                tls: None,
                tls_names: DashMap::new(),
                advertise: OnceLock::new(),
                route_sources: DashMap::new(),
                tcp_limits: TcpLimits::default(),
                tcp_sources: DashMap::new(),
                tcp_refused: AtomicU64::new(0),
                tcp_timed_out: AtomicU64::new(0),
                reject_gate: OnceLock::new(),
                receiver: OnceLock::new(),
                incoming,
                sink: Some(tx),
                tasks: TaskSet::default(),
            }),
        };
        (t, rx)
    }

    /// The bound addresses, as `(protocol, address)`.
    pub fn local_addrs(&self) -> Vec<(Protocol, SocketAddr)> {
        let udp = self.inner.udp.iter().map(|(a, _)| (Protocol::Udp, *a));
        udp.chain(self.inner.stream_listen.iter().copied())
            .collect()
    }

    /// The address to put in a Via's sent-by or a Contact for messages to `peer`:
    /// the first listener of that protocol in the peer's address family. A
    /// listener on the unspecified address (`0.0.0.0`, `[::]`) is written as
    /// the advertised address ([`set_advertise`](Self::set_advertise)), else
    /// as the local address the system routes to `peer` from.
    pub fn local_for(&self, peer: &Peer) -> Option<SocketAddr> {
        let same_family = |a: &SocketAddr| a.is_ipv4() == peer.addr.is_ipv4();
        let bound = match peer.protocol {
            Protocol::Udp => self.inner.udp.iter().map(|(a, _)| *a).find(same_family),
            p => self
                .inner
                .stream_listen
                .iter()
                .filter(|(lp, _)| *lp == p)
                .map(|(_, a)| *a)
                .find(same_family),
        }
        .or_else(|| {
            self.inner
                .sink
                .as_ref()
                .and(self.inner.stream_listen.first().map(|(_, a)| *a))
        })?;
        if !bound.ip().is_unspecified() {
            return Some(bound);
        }
        let ip = match self.inner.advertise.get() {
            Some(ip) if ip.is_ipv4() == peer.addr.is_ipv4() => *ip,
            _ => self.route_source(peer.addr.ip()).unwrap_or(bound.ip()),
        };
        Some(SocketAddr::new(ip, bound.port()))
    }

    /// The address written for listeners on `0.0.0.0`/`[::]` (the public
    /// address of a host behind NAT); set once.
    pub fn set_advertise(&self, ip: IpAddr) -> bool {
        self.inner.advertise.set(ip).is_ok()
    }

    /// The local address the system would send to `dest` from (a connected
    /// UDP socket sends nothing), remembered per destination.
    fn route_source(&self, dest: IpAddr) -> Option<IpAddr> {
        if let Some(ip) = self.inner.route_sources.get(&dest) {
            return Some(*ip);
        }
        let any: SocketAddr = if dest.is_ipv4() {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let sock = std::net::UdpSocket::bind(any).ok()?;
        sock.connect((dest, 5060)).ok()?;
        let ip = sock.local_addr().ok()?.ip();
        if self.inner.route_sources.len() < ROUTE_CACHE_MAX {
            self.inner.route_sources.insert(dest, ip);
        }
        Some(ip)
    }

    /// Sends one message to `peer`.
    pub async fn send(&self, msg: &SipMessage, peer: &Peer) -> Result<(), TransportError> {
        if let Some(sink) = &self.inner.sink {
            let _ = sink.send((*peer, msg.clone()));
            return Ok(());
        }
        self.send_bytes(Bytes::from(crate::message::to_bytes(msg)), peer)
            .await
    }

    /// Sends a message already written out (a retransmission).
    pub async fn send_bytes(&self, bytes: Bytes, peer: &Peer) -> Result<(), TransportError> {
        if let Some(sink) = &self.inner.sink {
            if let Ok(msg) = crate::message::parse(&bytes) {
                let _ = sink.send((*peer, msg));
            }
            return Ok(());
        }
        wire::sent(&bytes, peer);
        match peer.protocol {
            Protocol::Udp => self
                .udp_socket(peer)?
                .send_to(&bytes, peer.addr)
                .await
                .map(|_| ())
                .map_err(|source| TransportError::Io {
                    peer: *peer,
                    source,
                }),
            Protocol::Tcp | Protocol::Tls => tcp::send(self, bytes, *peer).await,
        }
    }

    /// Sends one message over UDP from the caller's task, without waiting:
    /// the non-blocking `sendto` itself (a full socket buffer is an error,
    /// as a lost datagram would be). Other transports are refused: their
    /// sends may have to wait (a connection, a full stream).
    pub fn send_now(&self, msg: &SipMessage, peer: &Peer) -> Result<(), TransportError> {
        if let Some(sink) = &self.inner.sink {
            let _ = sink.send((*peer, msg.clone()));
            return Ok(());
        }
        if peer.protocol != Protocol::Udp {
            return Err(TransportError::NoTransport(peer.protocol, peer.addr));
        }
        let bytes = crate::message::to_bytes(msg);
        wire::sent(&bytes, peer);
        socket2::SockRef::from(&*self.udp_socket(peer)?)
            .send_to(&bytes, &peer.addr.into())
            .map(|_| ())
            .map_err(|source| TransportError::Io {
                peer: *peer,
                source,
            })
    }

    /// The UDP socket of `peer`'s address family.
    fn udp_socket(&self, peer: &Peer) -> Result<Arc<UdpSocket>, TransportError> {
        self.inner
            .udp
            .iter()
            .find(|(a, _)| a.is_ipv4() == peer.addr.is_ipv4())
            .map(|(_, s)| s.clone())
            .ok_or(TransportError::NoTransport(Protocol::Udp, peer.addr))
    }

    /// The name a TLS server at `addr` must prove (its certificate's DNS
    /// name), e.g. a trunk's host name; without one, its IP address.
    pub fn set_tls_name(&self, addr: SocketAddr, name: &str) {
        self.inner.tls_names.insert(addr, name.to_string());
    }

    /// Puts `gate` before the answers to malformed requests; set once
    /// (false when one was set already).
    pub fn set_reject_gate(&self, gate: RejectGate) -> bool {
        self.inner.reject_gate.set(gate).is_ok()
    }

    /// Hands every parsed message to `receiver` on the receive task
    /// instead of to the `incoming` channel; set once (false when one was
    /// set already).
    pub fn set_receiver(&self, receiver: Receiver) -> bool {
        self.inner.receiver.set(receiver).is_ok()
    }

    /// The TCP limits' counts.
    pub fn tcp_stats(&self) -> TcpStats {
        TcpStats {
            open: self.inner.tcp_conns.len() as u64,
            refused: self.inner.tcp_refused.load(Ordering::Relaxed),
            timed_out: self.inner.tcp_timed_out.load(Ordering::Relaxed),
        }
    }

    /// Stops every receive loop and closes connections.
    pub fn shutdown(&self) {
        self.inner.tasks.abort_all();
        self.inner.tcp_conns.clear();
    }

    async fn deliver(&self, incoming: Incoming) {
        if let Some(receiver) = self.inner.receiver.get() {
            return receiver(incoming);
        }
        // A full queue means the switch is overloaded: wait (back-pressure on
        // this socket) rather than drop, UDP peers will retransmit anyway.
        let _ = self.inner.incoming.send(incoming).await;
    }
}

/// A small set of spawned tasks aborted together (the receive loops).
mod tokio_util_shim {
    use std::sync::Mutex;
    use tokio::task::AbortHandle;

    #[derive(Default)]
    pub struct TaskSet(Mutex<Vec<AbortHandle>>);

    impl TaskSet {
        pub fn spawn<F>(&self, fut: F)
        where
            F: std::future::Future<Output = ()> + Send + 'static,
        {
            let h = tokio::spawn(fut).abort_handle();
            if let Ok(mut v) = self.0.lock() {
                v.retain(|h| !h.is_finished());
                v.push(h);
            }
        }

        pub fn abort_all(&self) {
            if let Ok(mut v) = self.0.lock() {
                for h in v.drain(..) {
                    h.abort();
                }
            }
        }
    }
}

impl Transports {
    /// Parses one message's bytes and hands it up. Returns the bytes of an
    /// error response to send straight back when the message was an
    /// answerable bad request.
    async fn ingest(&self, bytes: &[u8], from: Peer, local: SocketAddr) -> Option<Vec<u8>> {
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return None; // keepalive
        }
        wire::received(bytes, &from, local);
        match crate::message::parse(bytes) {
            Ok(mut msg) => {
                if let SipMessage::Request(req) = &mut msg {
                    via::stamp(req, &from);
                }
                self.deliver(Incoming { msg, from, local }).await;
                None
            }
            Err(crate::message::ParseError::Reject {
                status,
                reason,
                response,
            }) => {
                if self
                    .inner
                    .reject_gate
                    .get()
                    .is_some_and(|gate| !gate(from.addr.ip()))
                {
                    return None;
                }
                tracing::debug!(%from, status, %reason, "rejected malformed request");
                wire::sent(&response, &from);
                Some(response)
            }
            Err(crate::message::ParseError::Drop { reason }) => {
                tracing::debug!(%from, %reason, "dropped unparseable message");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests;

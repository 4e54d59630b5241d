//! Who a message goes to or came from: the transport [`Protocol`], the
//! remote [`Peer`], and a configured [`Listen`] address.

use std::net::SocketAddr;

use super::TransportError;

/// The transport protocol of a message or a listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    Udp,
    Tcp,
    Tls,
}

impl Protocol {
    /// Reliable transports need no retransmissions (RFC 3261 §17: Timers A, E, G
    /// only run on unreliable ones; D, I, J, K are zero on reliable ones).
    pub fn is_reliable(self) -> bool {
        matches!(self, Protocol::Tcp | Protocol::Tls)
    }

    /// The URI parameter that asks for this transport (`;transport=tcp`);
    /// empty for UDP, the default.
    pub fn uri_param(self) -> &'static str {
        match self {
            Protocol::Udp => "",
            Protocol::Tcp => ";transport=tcp",
            Protocol::Tls => ";transport=tls",
        }
    }

    /// The token used in a Via header's sent-protocol.
    pub fn via_token(self) -> &'static str {
        match self {
            Protocol::Udp => "UDP",
            Protocol::Tcp => "TCP",
            Protocol::Tls => "TLS",
        }
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Protocol::Udp => "udp",
            Protocol::Tcp => "tcp",
            Protocol::Tls => "tls",
        })
    }
}

impl std::str::FromStr for Protocol {
    type Err = TransportError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "udp" => Ok(Protocol::Udp),
            "tcp" => Ok(Protocol::Tcp),
            "tls" => Ok(Protocol::Tls),
            other => Err(TransportError::Config(format!(
                "unknown transport {other:?} (udp, tcp or tls)"
            ))),
        }
    }
}

/// The far end of a message: which transport, and the remote address
/// (for TCP and TLS, the two identify the connection).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Peer {
    pub protocol: Protocol,
    pub addr: SocketAddr,
}

impl Peer {
    pub fn new(protocol: Protocol, addr: SocketAddr) -> Self {
        Peer { protocol, addr }
    }
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.protocol, self.addr)
    }
}

/// A listening address as configured: `udp:127.0.0.1:5060`, `tcp:[::1]:5060`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listen {
    pub protocol: Protocol,
    pub addr: SocketAddr,
}

impl std::str::FromStr for Listen {
    type Err = TransportError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (proto, addr) = s.split_once(':').ok_or_else(|| {
            TransportError::Config(format!("{s:?}: expected transport:address:port"))
        })?;
        let addr = addr
            .parse()
            .map_err(|e| TransportError::Config(format!("{s:?}: {e}")))?;
        Ok(Listen {
            protocol: proto.parse()?,
            addr,
        })
    }
}

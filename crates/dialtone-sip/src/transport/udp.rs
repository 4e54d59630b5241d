//! The UDP transport: one socket per configured address, one receive loop
//! each. A datagram is one message (RFC 3261 §18.3: trailing octets past
//! Content-Length are ignored by the parser).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::UdpSocket;

use super::{Peer, Protocol, TransportError, Transports};

/// Largest datagram we accept; SIP over UDP must stay well below it.
const MAX_DATAGRAM: usize = 65_535;

pub(super) async fn bind(addr: SocketAddr) -> Result<UdpSocket, TransportError> {
    UdpSocket::bind(addr)
        .await
        .map_err(|source| TransportError::Bind {
            addr: format!("udp:{addr}"),
            source,
        })
}

pub(super) async fn recv_loop(t: Transports, sock: Arc<UdpSocket>, local: SocketAddr) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, from) = match sock.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                // ICMP port unreachable surfaces here on some systems: not fatal.
                tracing::debug!(%local, error = %e, "udp recv error");
                continue;
            }
        };
        let peer = Peer::new(Protocol::Udp, from);
        if let Some(reply) = t.ingest(&buf[..n], peer, local).await {
            if let Err(e) = sock.send_to(&reply, from).await {
                tracing::debug!(%peer, error = %e, "udp send of error response failed");
            }
        }
    }
}

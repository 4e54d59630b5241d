//! The UDP transport: one socket per configured address, one receive loop
//! each. A datagram is one message (RFC 3261 §18.3: trailing octets past
//! Content-Length are ignored by the parser).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::UdpSocket;

use super::{Peer, Protocol, TransportError, Transports};

/// Largest datagram we accept; SIP over UDP must stay well below it.
const MAX_DATAGRAM: usize = 65_535;

/// Kernel buffer asked for on each SIP socket: a burst of a few thousand
/// messages must queue, not drop, while the switch catches up (the kernel
/// caps it at net.core.rmem_max).
const SOCKET_BUFFER: usize = 4 * 1024 * 1024;

pub(super) async fn bind(addr: SocketAddr) -> Result<UdpSocket, TransportError> {
    use socket2::{Domain, Protocol, Socket, Type};
    let err = |source| TransportError::Bind {
        addr: format!("udp:{addr}"),
        source,
    };
    let sock =
        Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP)).map_err(err)?;
    if addr.is_ipv6() {
        sock.set_only_v6(true).map_err(err)?;
    }
    // Best effort: a smaller buffer still works, it just drops sooner.
    let _ = sock.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = sock.set_send_buffer_size(SOCKET_BUFFER);
    sock.set_nonblocking(true).map_err(err)?;
    sock.bind(&addr.into()).map_err(err)?;
    UdpSocket::from_std(sock.into()).map_err(err)
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

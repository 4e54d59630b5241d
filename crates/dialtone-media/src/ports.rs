//! The RTP/RTCP port-pair allocator: walks the configured range round-robin,
//! binds an even RTP port and the next odd RTCP port, and frees the pair when
//! its [`PortLease`] drops.
//!
//! Round-robin (rather than lowest-free-first) keeps a just-freed pair out of
//! use for as long as possible, so late packets of a finished call do not land
//! in the next one.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use socket2::{Domain, Protocol, Socket, Type};
use tracing::debug;

use crate::MediaError;

/// Receive buffer asked for on each RTP socket: room for a burst of ~1 s of
/// many streams' worth of packets when the relay task is descheduled.
const RTP_RECV_BUFFER: usize = 1 << 20;

pub(crate) struct PortAllocator {
    bind_ip: IpAddr,
    first: u16,
    state: Mutex<AllocState>,
}

struct AllocState {
    /// One flag per pair: allocated by us.
    used: Vec<bool>,
    /// Pair index the next search starts from.
    cursor: usize,
    in_use: usize,
}

/// A bound RTP/RTCP socket pair (non-blocking, not yet registered with tokio)
/// plus the lease that returns the pair to the allocator when dropped.
pub(crate) struct BoundPair {
    pub(crate) rtp: std::net::UdpSocket,
    pub(crate) rtcp: std::net::UdpSocket,
    pub(crate) rtp_port: u16,
    pub(crate) lease: PortLease,
}

/// Holds a pair allocated; dropping it frees the pair.
pub(crate) struct PortLease {
    alloc: Arc<PortAllocator>,
    index: usize,
}

impl Drop for PortLease {
    fn drop(&mut self) {
        let mut st = self.alloc.lock();
        if let Some(used) = st.used.get_mut(self.index) {
            if *used {
                *used = false;
                st.in_use -= 1;
            }
        }
    }
}

impl PortAllocator {
    pub(crate) fn new(bind_ip: IpAddr, first: u16, pairs: usize) -> PortAllocator {
        // Start at a random pair so a restarted process does not reuse the
        // ports its previous run's calls were just using.
        let cursor = if pairs > 0 {
            rand::random::<usize>() % pairs
        } else {
            0
        };
        PortAllocator {
            bind_ip,
            first,
            state: Mutex::new(AllocState {
                used: vec![false; pairs],
                cursor,
                in_use: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AllocState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn in_use(&self) -> usize {
        self.lock().in_use
    }

    /// Binds the next free pair after the previous allocation. Pairs whose
    /// ports another process holds are skipped; any other bind error is
    /// returned, since it would fail the same way for every port.
    pub(crate) fn allocate(self: &Arc<Self>) -> Result<BoundPair, MediaError> {
        let mut st = self.lock();
        let pairs = st.used.len();
        for step in 0..pairs {
            let index = (st.cursor + step) % pairs;
            if st.used[index] {
                continue;
            }
            // `first + 2 * index + 1` fits in u16: validated by MediaConfig::port_pairs.
            let rtp_port = self.first + 2 * index as u16;
            match bind_pair(self.bind_ip, rtp_port) {
                Ok((rtp, rtcp)) => {
                    st.used[index] = true;
                    st.in_use += 1;
                    st.cursor = (index + 1) % pairs;
                    let lease = PortLease {
                        alloc: Arc::clone(self),
                        index,
                    };
                    return Ok(BoundPair {
                        rtp,
                        rtcp,
                        rtp_port,
                        lease,
                    });
                }
                Err(e) if is_port_taken(&e) => {
                    debug!(port = rtp_port, error = %e, "port pair taken by another socket, skipping");
                }
                Err(e) => return Err(MediaError::Io(e)),
            }
        }
        Err(MediaError::PortsExhausted)
    }
}

/// Errors that mean "someone else has this port" rather than "binding cannot
/// work here" (Windows reports excluded or exclusively-held ports as access
/// denied).
fn is_port_taken(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::AddrInUse | io::ErrorKind::PermissionDenied
    )
}

fn bind_pair(ip: IpAddr, rtp_port: u16) -> io::Result<(std::net::UdpSocket, std::net::UdpSocket)> {
    let rtp = bind_udp(SocketAddr::new(ip, rtp_port))?;
    // Best effort: the kernel may cap it (net.core.rmem_max); a smaller buffer
    // still works, it only absorbs shorter scheduling hiccups.
    if let Err(e) = rtp.set_recv_buffer_size(RTP_RECV_BUFFER) {
        debug!(port = rtp_port, error = %e, "could not enlarge RTP receive buffer");
    }
    let rtcp = bind_udp(SocketAddr::new(ip, rtp_port + 1))?;
    Ok((rtp.into(), rtcp.into()))
}

fn bind_udp(addr: SocketAddr) -> io::Result<Socket> {
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // No SO_REUSEADDR: on Linux it would let two sockets that both set it
    // share the port, and the point of binding is to own it.
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    Ok(sock)
}

//! [`MediaEngine`]: the cheap-to-clone handle call control holds; turns the
//! configuration into a port allocator and hands out [`Endpoint`]s.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::net::UdpSocket;

use crate::endpoint::{Endpoint, Shared};
use crate::ports::PortAllocator;
use crate::{MediaConfig, MediaError};

/// Allocates media endpoints. Clones share the same ports and id sequence.
#[derive(Clone)]
pub struct MediaEngine {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: MediaConfig,
    ports: Arc<PortAllocator>,
    next_id: AtomicU64,
}

impl MediaEngine {
    /// Checks that the port range holds at least one even/odd pair.
    pub fn new(cfg: MediaConfig) -> Result<MediaEngine, MediaError> {
        let (first, pairs) = cfg.port_pairs()?;
        let ports = Arc::new(PortAllocator::new(cfg.bind_ip, first, pairs));
        Ok(MediaEngine {
            inner: Arc::new(Inner {
                cfg,
                ports,
                next_id: AtomicU64::new(1),
            }),
        })
    }

    /// Binds an RTP socket on an even port and RTCP on the next odd port,
    /// walking the range round-robin from where the last allocation ended and
    /// skipping ports in use by us or anyone else.
    /// [`MediaError::PortsExhausted`] when no pair is left.
    pub async fn allocate(&self) -> Result<Endpoint, MediaError> {
        let pair = self.inner.ports.allocate()?;
        let rtp = UdpSocket::from_std(pair.rtp)?;
        let rtcp = UdpSocket::from_std(pair.rtcp)?;
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let local = SocketAddr::new(self.inner.cfg.advertise_ip, pair.rtp_port);
        let shared = Shared::new(id, local, rtp, rtcp, self.inner.cfg.rtp_timeout, pair.lease);
        Ok(Endpoint {
            shared: Arc::new(shared),
        })
    }

    /// Port pairs currently allocated (dropping an [`Endpoint`] frees its pair).
    pub fn in_use(&self) -> usize {
        self.inner.ports.in_use()
    }

    pub fn config(&self) -> &MediaConfig {
        &self.inner.cfg
    }
}

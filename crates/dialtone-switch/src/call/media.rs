//! The media of one call: the RTP endpoints of its legs (one per party
//! facing dialtone) and the one bridge that relays between the two parties
//! talking. Endpoints are moved into the bridge while it runs, so changing
//! one (a re-INVITE moved the peer, a transfer swaps a party) stops the
//! bridge, changes it, and starts it again; the media crate keeps each
//! outgoing stream continuous across that.

use std::net::SocketAddr;

use dialtone_media::{
    Bridge, Endpoint, EndpointStats, MediaEngine, MediaError, MediaEvent, Recording,
};
use tokio::sync::mpsc;

/// Index of an endpoint in its call.
pub type Slot = usize;

pub struct CallMedia {
    engine: MediaEngine,
    events: mpsc::UnboundedSender<MediaEvent>,
    endpoints: Vec<Option<Endpoint>>,
    locals: Vec<SocketAddr>,
    bridge: Option<(Slot, Slot, Bridge)>,
    /// Stats of released endpoints, for the call record.
    final_stats: Vec<Option<EndpointStats>>,
    /// The call's recording, fed by every bridge while it runs.
    recording: Option<Recording>,
}

impl CallMedia {
    pub fn new(engine: MediaEngine, events: mpsc::UnboundedSender<MediaEvent>) -> Self {
        CallMedia {
            engine,
            events,
            endpoints: Vec::new(),
            locals: Vec::new(),
            bridge: None,
            final_stats: Vec::new(),
            recording: None,
        }
    }

    /// Starts recording the call into `path` (a stereo WAV file: the first
    /// slot of each bridge on the left channel, the second on the right).
    /// A bridge already running is restarted so that it feeds the recording.
    pub async fn start_recording(
        &mut self,
        path: &std::path::Path,
        sample_rate: u32,
    ) -> Result<(), MediaError> {
        if self.recording.is_some() {
            return Ok(());
        }
        self.recording = Some(Recording::start(path, sample_rate)?);
        if let Some((a, b, _)) = &self.bridge {
            let (a, b) = (*a, *b);
            self.unbridge().await;
            self.bridge(a, b).await;
        }
        Ok(())
    }

    pub async fn allocate(&mut self) -> Result<Slot, MediaError> {
        let ep = self.engine.allocate().await?;
        self.locals.push(ep.local());
        self.endpoints.push(Some(ep));
        self.final_stats.push(None);
        Ok(self.endpoints.len() - 1)
    }

    /// Our RTP address for SDP on this slot.
    pub fn local(&self, slot: Slot) -> SocketAddr {
        self.locals[slot]
    }

    /// Applies `f` to the slot's endpoint, pausing the bridge if it runs.
    pub async fn configure(&mut self, slot: Slot, f: impl FnOnce(&Endpoint)) {
        let rebridge = self.unbridge_if_holds(slot).await;
        if let Some(Some(ep)) = self.endpoints.get(slot) {
            f(ep);
        }
        if let Some((a, b)) = rebridge {
            self.bridge(a, b).await;
        }
    }

    /// Relays between `a` and `b` (stopping any other bridge first).
    pub async fn bridge(&mut self, a: Slot, b: Slot) {
        if let Some((x, y, _)) = &self.bridge {
            if (*x, *y) == (a, b) || (*x, *y) == (b, a) {
                return;
            }
        }
        self.unbridge().await;
        let (Some(ea), Some(eb)) = (
            self.endpoints.get_mut(a).and_then(Option::take),
            self.endpoints.get_mut(b).and_then(Option::take),
        ) else {
            tracing::warn!(a, b, "bridge of a released endpoint ignored");
            return;
        };
        let bridge = Bridge::start_recorded(ea, eb, self.events.clone(), self.recording.as_ref());
        self.bridge = Some((a, b, bridge));
    }

    pub async fn unbridge(&mut self) {
        if let Some((a, b, br)) = self.bridge.take() {
            let (ea, eb) = br.stop().await;
            self.endpoints[a] = Some(ea);
            self.endpoints[b] = Some(eb);
        }
    }

    async fn unbridge_if_holds(&mut self, slot: Slot) -> Option<(Slot, Slot)> {
        match &self.bridge {
            Some((a, b, _)) if *a == slot || *b == slot => {
                let pair = (*a, *b);
                self.unbridge().await;
                Some(pair)
            }
            _ => None,
        }
    }

    pub fn stats(&self, slot: Slot) -> Option<EndpointStats> {
        if let Some((a, b, br)) = &self.bridge {
            let (sa, sb) = br.stats();
            if *a == slot {
                return Some(sa);
            }
            if *b == slot {
                return Some(sb);
            }
        }
        match self.endpoints.get(slot) {
            Some(Some(ep)) => Some(ep.stats()),
            _ => self.final_stats.get(slot).cloned().flatten(),
        }
    }

    /// Frees the slot's ports (stopping the bridge if it used them).
    pub async fn release(&mut self, slot: Slot) {
        // The other endpoint of the bridge stays allocated, unbridged.
        self.unbridge_if_holds(slot).await;
        if let Some(entry) = self.endpoints.get_mut(slot) {
            if let Some(ep) = entry.take() {
                self.final_stats[slot] = Some(ep.stats());
            }
        }
    }

    /// Takes a slot's endpoint out of this call (to hand it to another).
    pub async fn take(&mut self, slot: Slot) -> Option<Endpoint> {
        self.unbridge_if_holds(slot).await;
        let ep = self.endpoints.get_mut(slot)?.take()?;
        self.final_stats[slot] = Some(ep.stats());
        Some(ep)
    }

    /// Takes in an endpoint handed over by another call.
    pub fn adopt(&mut self, ep: Endpoint) -> Slot {
        self.locals.push(ep.local());
        self.endpoints.push(Some(ep));
        self.final_stats.push(None);
        self.endpoints.len() - 1
    }

    /// Frees every slot and completes the recording, if any.
    pub async fn release_all(&mut self) {
        self.unbridge().await;
        for slot in 0..self.endpoints.len() {
            self.release(slot).await;
        }
        if let Some(rec) = self.recording.take() {
            match rec.finish().await {
                Ok(info) => tracing::debug!(path = %info.path.display(),
                    seconds = info.duration.as_secs_f64(), "recording complete"),
                Err(e) => tracing::error!(error = %e, "recording failed"),
            }
        }
    }
}

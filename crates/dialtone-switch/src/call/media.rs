//! The media of one call: the RTP endpoints of its legs (one per party
//! facing dialtone), the one bridge that relays between the two SIP parties
//! talking, and the audio port that gives one endpoint's audio to an AI
//! agent instead. Endpoints are moved into the bridge or the port while it
//! runs, so changing one (a re-INVITE moved the peer, a transfer swaps a
//! party) stops it, changes it, and starts it again; the media crate keeps
//! each outgoing stream continuous across that.

use std::net::SocketAddr;

use dialtone_media::{
    AudioPort, Bridge, Endpoint, EndpointStats, MediaEngine, MediaError, MediaEvents, PortEvent,
    PortFormat, PortOptions, PortPlayer, Recording,
};
use tokio::sync::mpsc;

pub use super::ids::Slot;

pub struct CallMedia {
    engine: MediaEngine,
    events: MediaEvents,
    endpoints: Vec<Option<Endpoint>>,
    locals: Vec<SocketAddr>,
    bridge: Option<(Slot, Slot, Bridge)>,
    /// The endpoint whose audio an AI agent hears and speaks into.
    port: Option<(Slot, AudioPort)>,
    /// Stats of released endpoints, for the call record.
    final_stats: Vec<Option<EndpointStats>>,
    /// The call's recording, fed by every bridge while it runs.
    recording: Option<Recording>,
}

impl CallMedia {
    pub fn new(engine: MediaEngine, events: MediaEvents) -> Self {
        CallMedia {
            engine,
            events,
            endpoints: Vec::new(),
            locals: Vec::new(),
            bridge: None,
            port: None,
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
        Ok(self.adopt(ep))
    }

    /// Our RTP address for SDP on this slot.
    pub fn local(&self, slot: Slot) -> SocketAddr {
        self.locals[slot.0]
    }

    /// Applies `f` to the slot's endpoint, pausing the bridge if it runs. An
    /// audio port keeps running: what `f` changes (the peer's address, the
    /// direction) applies to it at once.
    pub async fn configure(&mut self, slot: Slot, f: impl FnOnce(&Endpoint)) {
        if let Some((s, port)) = &self.port {
            if *s == slot {
                f(port.endpoint());
                return;
            }
        }
        let rebridge = self.unbridge_if_holds(slot).await;
        if let Some(Some(ep)) = self.endpoints.get(slot.0) {
            f(ep);
        }
        if let Some((a, b)) = rebridge {
            self.bridge(a, b).await;
        }
    }

    /// Relays between `a` and `b` (stopping any other bridge, and an audio
    /// port on either, first).
    pub async fn bridge(&mut self, a: Slot, b: Slot) {
        if let Some((x, y, _)) = &self.bridge {
            if (*x, *y) == (a, b) || (*x, *y) == (b, a) {
                return;
            }
        }
        self.unbridge().await;
        if self.port.as_ref().is_some_and(|(s, _)| *s == a || *s == b) {
            self.detach_port().await;
        }
        let (Some(ea), Some(eb)) = (
            self.endpoints.get_mut(a.0).and_then(Option::take),
            self.endpoints.get_mut(b.0).and_then(Option::take),
        ) else {
            tracing::warn!(%a, %b, "bridge of a released endpoint ignored");
            return;
        };
        let bridge = Bridge::start_recorded(ea, eb, self.events.clone(), self.recording.as_ref());
        self.bridge = Some((a, b, bridge));
    }

    pub async fn unbridge(&mut self) {
        if let Some((a, b, br)) = self.bridge.take() {
            let (ea, eb) = br.stop().await;
            self.endpoints[a.0] = Some(ea);
            self.endpoints[b.0] = Some(eb);
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

    /// Gives the slot's audio to an application (an AI agent): caller
    /// frames come out of the receiver, the player queues audio for the
    /// slot's party. A bridge holding the slot is stopped first.
    pub async fn attach_port(
        &mut self,
        slot: Slot,
        caller: PortFormat,
        playout: PortFormat,
        options: PortOptions,
    ) -> Result<(PortPlayer, mpsc::Receiver<PortEvent>), MediaError> {
        self.detach_port().await;
        self.unbridge_if_holds(slot).await;
        let ep = self
            .endpoints
            .get_mut(slot.0)
            .and_then(Option::take)
            .ok_or_else(|| MediaError::Config(format!("no endpoint on slot {slot}")))?;
        match AudioPort::start_with(ep, caller, playout, options, self.events.clone()) {
            Ok((port, frames)) => {
                let player = port.player();
                self.port = Some((slot, port));
                Ok((player, frames))
            }
            Err((e, ep)) => {
                self.endpoints[slot.0] = Some(ep);
                Err(e)
            }
        }
    }

    /// Stops the audio port, if any, and puts its endpoint back in place.
    pub async fn detach_port(&mut self) {
        if let Some((slot, port)) = self.port.take() {
            self.endpoints[slot.0] = Some(port.stop().await);
        }
    }

    /// Whether an audio port runs on `slot`.
    pub fn has_port(&self, slot: Slot) -> bool {
        self.port.as_ref().is_some_and(|(s, _)| *s == slot)
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
        if let Some((s, port)) = &self.port {
            if *s == slot {
                return Some(port.endpoint().stats());
            }
        }
        match self.endpoints.get(slot.0) {
            Some(Some(ep)) => Some(ep.stats()),
            _ => self.final_stats.get(slot.0).cloned().flatten(),
        }
    }

    /// Frees the slot's ports (stopping the bridge or audio port using them).
    pub async fn release(&mut self, slot: Slot) {
        // The other endpoint of the bridge stays allocated, unbridged.
        self.unbridge_if_holds(slot).await;
        if self.has_port(slot) {
            self.detach_port().await;
        }
        if let Some(entry) = self.endpoints.get_mut(slot.0) {
            if let Some(ep) = entry.take() {
                self.final_stats[slot.0] = Some(ep.stats());
            }
        }
    }

    /// Takes a slot's endpoint out of this call (to hand it to another).
    pub async fn take(&mut self, slot: Slot) -> Option<Endpoint> {
        self.unbridge_if_holds(slot).await;
        if self.has_port(slot) {
            self.detach_port().await;
        }
        let ep = self.endpoints.get_mut(slot.0)?.take()?;
        self.final_stats[slot.0] = Some(ep.stats());
        Some(ep)
    }

    /// Takes in an endpoint handed over by another call.
    pub fn adopt(&mut self, ep: Endpoint) -> Slot {
        self.locals.push(ep.local());
        self.endpoints.push(Some(ep));
        self.final_stats.push(None);
        Slot(self.endpoints.len() - 1)
    }

    /// Frees every slot and completes the recording, if any.
    pub async fn release_all(&mut self) {
        self.unbridge().await;
        self.detach_port().await;
        for slot in 0..self.endpoints.len() {
            self.release(Slot(slot)).await;
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

//! The media task of an [`AudioPort`](super::AudioPort): one loop that
//! receives the caller's RTP (audio to the caller path, telephone-events to
//! the DTMF path), sends the playout packets when the [`Pacer`] says, and,
//! in paced timing, pulls one caller frame per tick of its [`FrameClock`].

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, watch};
use tracing::trace;

use crate::codec::CodecError;
use crate::endpoint::{Endpoint, Shared};
use crate::jitter::JitterStats;
use crate::pipeline::{FrameClock, Received, FRAME_MS};
use crate::relay::{forward_rtp, received, received_for_decoding, BUF_LEN};
use crate::rtcp::ReportBlock;
use crate::stats::Counters;
use crate::MediaError;

use super::caller::Caller;
use super::dtmf::KeyPresses;
use super::immediate::Immediate;
use super::pacer::Pacer;
use super::playout::{Outbound, Playout};
use super::{CallerTiming, PortEvent, PortFormat, PortFrame, PortOptions, PortShared, MAX_QUEUED};

/// The caller → application path, by timing.
enum CallerPath {
    Paced(Caller),
    Immediate(Box<Immediate>),
}

impl Received for CallerPath {
    fn stats(&self) -> JitterStats {
        match self {
            CallerPath::Paced(c) => c.stats(),
            CallerPath::Immediate(c) => c.stats(),
        }
    }

    fn report_block(&mut self, lsr: u32, dlsr: u32) -> Option<ReportBlock> {
        match self {
            CallerPath::Paced(c) => c.report_block(lsr, dlsr),
            CallerPath::Immediate(c) => c.report_block(lsr, dlsr),
        }
    }
}

pub(super) struct PortTask {
    caller: CallerPath,
    outbound: Outbound,
    /// The leg's telephone-event payload type and its key presses.
    dtmf: Option<(u8, KeyPresses)>,
    /// Names the port as the source of the endpoint's stream (see
    /// [`forward_rtp`]): distinct from every endpoint id, and from the
    /// transcoders that send to this endpoint (`u64::MAX - other id`).
    source: u64,
    /// The last playout frame carried no queued audio: the stream is in
    /// silence, so audio given now may leave at once.
    idle: bool,
}

impl PortTask {
    /// The task for `ep`, and the playout queue it drains.
    pub(super) fn new(
        ep: &Endpoint,
        caller: PortFormat,
        playout: PortFormat,
        options: PortOptions,
    ) -> Result<(PortTask, Playout), MediaError> {
        caller.check()?;
        playout.check()?;
        let format = ep
            .format()
            .ok_or_else(|| CodecError::Unsupported("no stream format set".into()))?;
        let (outbound, queue) = Outbound::new(&format, playout)?;
        let caller = match options.caller {
            CallerTiming::Paced => CallerPath::Paced(Caller::new(&format, caller)?),
            CallerTiming::Immediate => {
                CallerPath::Immediate(Box::new(Immediate::new(&format, caller)?))
            }
        };
        let task = PortTask {
            caller,
            outbound,
            dtmf: format.dtmf.map(|d| (d.pt, KeyPresses::new(d.clock_rate))),
            source: u64::MAX - ep.id(),
            idle: true,
        };
        let max = (MAX_QUEUED.as_millis() as usize) * playout.frame_len() / FRAME_MS as usize;
        Ok((task, Playout::new(playout, queue, max)))
    }

    pub(super) async fn run(
        mut self,
        ep: Arc<Shared>,
        shared: Arc<PortShared>,
        tx: mpsc::Sender<PortEvent>,
        digits: mpsc::UnboundedSender<PortEvent>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut buf = [0u8; BUF_LEN];
        let mut out = Vec::with_capacity(1500);
        // Paced caller frames and, in both timings, the statistics and RTCP
        // reports (from the pacer's ticks when no caller frames are paced:
        // an interval never polled never wakes the task).
        let mut clock = FrameClock::new();
        let mut pacer = Pacer::new();
        let paced = matches!(self.caller, CallerPath::Paced(_));
        let stopped = stop.changed();
        tokio::pin!(stopped);
        let woken = shared.playout.woken();
        tokio::pin!(woken);
        loop {
            tokio::select! {
                biased;
                _ = &mut stopped => break,
                now = pacer.tick() => {
                    if !self.send(&ep, &shared.playout, &mut out, now) {
                        pacer.silence();
                    }
                    if !paced {
                        clock.bookkeeping(&ep, now, &mut self.caller).await;
                    }
                }
                () = &mut woken => {
                    woken.set(shared.playout.woken());
                    // Not idle: the queue is already being played, and its
                    // next frame leaves on the rhythm (no bursts).
                    if self.idle && shared.playout.has_audio() {
                        pacer.restart();
                        self.send(&ep, &shared.playout, &mut out, Instant::now());
                    }
                }
                now = clock.tick(), if paced => {
                    self.pull(&shared, &tx, now);
                    clock.bookkeeping(&ep, now, &mut self.caller).await;
                }
                r = ep.rtp.recv_from(&mut buf) => {
                    if let Some((n, src)) = received(&ep, r, &mut buf) {
                        self.packet(&ep, &shared, &tx, &digits, &buf[..n], src);
                    }
                }
            }
        }
        // Players fail from now on (also when the port was dropped).
        shared.playout.close();
        ep.set_jitter(self.caller.stats());
    }

    /// Sends the next playout frame; whether it carried queued audio.
    fn send(&mut self, ep: &Shared, playout: &Playout, out: &mut Vec<u8>, now: Instant) -> bool {
        match self.outbound.packet(playout, out) {
            Ok(frame) => {
                self.idle = !frame.audio;
                if frame.send {
                    forward_rtp(ep, self.source, out, now);
                }
                frame.audio
            }
            Err(e) => {
                trace!(endpoint = ep.id, error = %e, "encode failed");
                Counters::add(&ep.counters.dropped, 1);
                // Whatever it took from the queue is gone; the next frame
                // keeps the rhythm.
                self.idle = false;
                false
            }
        }
    }

    /// A paced tick: the next caller frame to the application.
    fn pull(&mut self, shared: &PortShared, tx: &mpsc::Sender<PortEvent>, now: Instant) {
        if let CallerPath::Paced(caller) = &mut self.caller {
            if let Some(frame) = caller.pull(now) {
                offer(shared, tx, frame);
            }
        }
    }

    fn packet(
        &mut self,
        ep: &Shared,
        shared: &PortShared,
        tx: &mpsc::Sender<PortEvent>,
        digits: &mpsc::UnboundedSender<PortEvent>,
        pkt: &[u8],
        src: SocketAddr,
    ) {
        let now = Instant::now();
        let Some(h) = received_for_decoding(ep, pkt, src, now) else {
            return;
        };
        let payload = h.payload(pkt);
        let voice = match &self.caller {
            CallerPath::Paced(c) => c.accepts(h.pt),
            CallerPath::Immediate(c) => c.accepts(h.pt),
        };
        if voice {
            match &mut self.caller {
                CallerPath::Paced(c) => c.push(&h, payload, now),
                CallerPath::Immediate(c) => {
                    c.push(&h, payload, now, |frame| offer(shared, tx, frame));
                }
            }
            return;
        }
        match &mut self.dtmf {
            Some((pt, presses)) if *pt == h.pt => {
                if let CallerPath::Immediate(c) = &mut self.caller {
                    c.observe(&h, now);
                }
                presses.packet(h.ssrc, h.timestamp, payload, |digit, duration| {
                    // Closed only once the port is stopping.
                    let _ = digits.send(PortEvent::Dtmf { digit, duration });
                });
            }
            // Comfort noise and anything not negotiated: nothing to play.
            _ => Counters::add(&ep.counters.dropped, 1),
        }
    }
}

/// Offers caller audio to the application; counted as dropped when its
/// channel is full (it is behind: the RTP path never waits). Closed: it is
/// not listening.
fn offer(shared: &PortShared, tx: &mpsc::Sender<PortEvent>, frame: PortFrame) {
    if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(PortEvent::Audio(frame)) {
        shared.dropped_frames.fetch_add(1, Relaxed);
    }
}

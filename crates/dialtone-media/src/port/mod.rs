//! [`AudioPort`]: one endpoint's audio handed to the application instead of
//! to another endpoint — the media side of an AI leg. See [`AudioPort`] for
//! what happens on each path.

mod caller;
mod playout;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{debug, trace, warn};

use crate::codec::{g711, CodecError, CodecKind};
use crate::endpoint::{Endpoint, Shared};
use crate::pipeline::{FrameClock, Received, FRAME_MS};
use crate::relay::{forward_rtp, received, received_for_decoding, BUF_LEN};
use crate::stats::Counters;
use crate::{reports, watchdog, MediaError, MediaEvent};

use caller::Caller;
use playout::{Outbound, Playout};

/// Caller frames waiting for the application: 1 s.
const CALLER_QUEUE: usize = 50;
/// The most audio the playout queue holds; what [`AudioPort::play`] is given
/// beyond that is dropped (a provider streams faster than real time, but
/// not minutes ahead).
const MAX_QUEUED: Duration = Duration::from_secs(120);

/// What crosses the port: 16-bit PCM at a rate, or G.711 bytes (8 kHz).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PortCodec {
    /// Mono 16-bit linear PCM (`audio/pcm`, OpenAI `pcm16`).
    Pcm16,
    /// G.711 µ-law bytes (`audio/pcmu`, OpenAI `g711_ulaw`).
    Pcmu,
    /// G.711 A-law bytes (`audio/pcma`, OpenAI `g711_alaw`).
    Pcma,
}

/// The audio of one direction of a port: a codec and its sample rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortFormat {
    pub codec: PortCodec,
    /// Samples per second. PCM: 8000..=48000 in steps of 50 Hz (so that
    /// 20 ms is a whole number of samples), e.g. 8000, 16000, 24000, 48000;
    /// G.711: 8000.
    pub rate: u32,
}

impl PortFormat {
    /// 16-bit PCM at `rate`.
    pub const fn pcm16(rate: u32) -> PortFormat {
        PortFormat {
            codec: PortCodec::Pcm16,
            rate,
        }
    }

    /// G.711 µ-law at 8 kHz.
    pub const fn pcmu() -> PortFormat {
        PortFormat {
            codec: PortCodec::Pcmu,
            rate: 8000,
        }
    }

    /// G.711 A-law at 8 kHz.
    pub const fn pcma() -> PortFormat {
        PortFormat {
            codec: PortCodec::Pcma,
            rate: 8000,
        }
    }

    fn check(&self) -> Result<(), MediaError> {
        let ok = match self.codec {
            PortCodec::Pcm16 => (8000..=48000).contains(&self.rate) && self.rate.is_multiple_of(50),
            PortCodec::Pcmu | PortCodec::Pcma => self.rate == 8000,
        };
        if ok {
            Ok(())
        } else {
            Err(CodecError::UnsupportedRate(self.rate).into())
        }
    }

    /// Samples (PCM) or bytes (G.711) in 20 ms.
    fn frame_len(&self) -> usize {
        crate::pipeline::frame_samples(self.rate)
    }

    /// Whether the leg's codec is this format's G.711 law (bytes pass as they are).
    fn same_law(&self, kind: CodecKind) -> bool {
        matches!(
            (self.codec, kind),
            (PortCodec::Pcmu, CodecKind::Pcmu) | (PortCodec::Pcma, CodecKind::Pcma)
        )
    }
}

/// Audio crossing the port: PCM samples or G.711 bytes. From the caller it is
/// always one 20 ms frame; given to [`AudioPort::play`] it is any length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortFrame {
    Pcm(Vec<i16>),
    G711(Vec<u8>),
}

/// A port's G.711 law applied to PCM at 8 kHz.
fn g711_encode(codec: PortCodec, pcm: &[i16], out: &mut Vec<u8>) {
    match codec {
        PortCodec::Pcma => g711::encode_alaw(pcm, out),
        _ => g711::encode_ulaw(pcm, out),
    }
}

fn g711_decode(codec: PortCodec, bytes: &[u8], out: &mut Vec<i16>) {
    match codec {
        PortCodec::Pcma => g711::decode_alaw(bytes, out),
        _ => g711::decode_ulaw(bytes, out),
    }
}

/// State shared between the [`AudioPort`] handle and its task.
struct PortShared {
    playout: Playout,
    /// Caller frames dropped because the application's channel was full.
    dropped_frames: AtomicU64,
}

/// An endpoint's audio, exchanged with the application in 20 ms frames:
/// the media side of an AI leg.
///
/// Caller → application: RTP from the endpoint's peer is latched and counted
/// like the relay does, goes through a jitter buffer and comes out as one
/// 20 ms [`PortFrame`] per tick of the port's clock, in the caller
/// [`PortFormat`]: PCM decoded (with loss concealment) and resampled to the
/// port rate, or G.711 bytes. A G.711 port on a leg of the same law gets the
/// payload bytes untouched (still reordered and paced by the jitter buffer;
/// only frames standing in for lost packets are made, by concealment). While
/// the jitter buffer has nothing to play (before the first packets, while
/// rebuffering) no frames are produced. Frames wait in a bounded channel
/// (1 s); when the application falls behind and it is full, new frames are
/// dropped and counted ([`dropped_frames`](Self::dropped_frames)): the RTP
/// path never waits. telephone-event packets are consumed and not decoded
/// (DTMF from the caller is not reported yet); comfort noise and other
/// payload types are counted as dropped.
///
/// Application → caller: [`play`](Self::play) appends audio of any length to
/// a playout queue in the playout [`PortFormat`]; every 20 ms the port's
/// clock takes one frame from it, encodes it into the leg's codec (a G.711
/// port on a leg of the same law sends the bytes as they are) and sends it as
/// part of the endpoint's one continuous outgoing stream, so a bridge started
/// on the endpoint afterwards splices onto it cleanly. While the queue is
/// empty the clock sends silence (padding a short last frame with it too):
/// the phone's RTP timeout and the NAT bindings on the way stay alive, and
/// timestamps never jump. With Opus DTX negotiated, that silence is not
/// transmitted. [`clear`](Self::clear) (barge-in) empties the queue at once.
///
/// RTCP from the peer is terminated (latched, counted), as on a transcoded
/// leg; the RTP-timeout watchdog runs as in a [`Bridge`](crate::Bridge).
///
/// Dropping the port stops it (the endpoint is dropped too once the tasks
/// have ended); [`stop`](Self::stop) stops it and gives the endpoint back.
pub struct AudioPort {
    ep: Endpoint,
    shared: Arc<PortShared>,
    /// Dropping the sender (with the port) also stops every task.
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl AudioPort {
    /// Starts the port on `ep`: caller audio comes out of the returned
    /// receiver as 20 ms frames in `caller` format, audio given to
    /// [`play`](Self::play) is in `playout` format (they differ for e.g.
    /// Gemini Live: 16 kHz in, 24 kHz out). Datagrams already waiting in the
    /// endpoint's sockets are discarded first (stale). RTP timeouts of the
    /// peer are reported on `events` (once per silence, as by a bridge).
    ///
    /// Fails when a format is unusable or the endpoint has no
    /// [`StreamFormat`](crate::StreamFormat) with a codec dialtone can decode
    /// and encode; the endpoint is handed back with the error.
    ///
    /// # Panics
    /// Outside a tokio runtime (it spawns the port's tasks).
    pub fn start(
        ep: Endpoint,
        caller: PortFormat,
        playout: PortFormat,
        events: mpsc::UnboundedSender<MediaEvent>,
    ) -> Result<(AudioPort, mpsc::Receiver<PortFrame>), (MediaError, Endpoint)> {
        let (task, shared) = match PortTask::new(&ep, caller, playout) {
            Ok(t) => t,
            Err(e) => return Err((e, ep)),
        };
        let sh = &ep.shared;
        crate::bridge::drain(sh.id, &sh.rtp);
        crate::bridge::drain(sh.id, &sh.rtcp);
        // The timeout counts afresh from this port.
        sh.lock().timeout_reported = false;
        let started = Instant::now();
        let (stop, stop_rx) = watch::channel(false);
        let (tx, rx) = mpsc::channel(CALLER_QUEUE);
        let mut tasks = Vec::with_capacity(3);
        tasks.push(tokio::spawn(task.run(
            Arc::clone(sh),
            Arc::clone(&shared),
            tx,
            stop_rx.clone(),
        )));
        tasks.push(tokio::spawn(reports::run(Arc::clone(sh), stop_rx.clone())));
        if !sh.rtp_timeout.is_zero() {
            // The watchdog watches a pair of endpoints; the same one twice is
            // reported once (the first look marks the silence as reported).
            let eps = [Arc::clone(sh), Arc::clone(sh)];
            tasks.push(tokio::spawn(watchdog::run(
                eps,
                started,
                sh.rtp_timeout,
                events,
                stop_rx,
            )));
        }
        debug!(endpoint = sh.id, ?caller, ?playout, "audio port started");
        let port = AudioPort {
            ep,
            shared,
            stop,
            tasks,
        };
        Ok((port, rx))
    }

    /// Queues audio for the caller, in the playout format (PCM samples for a
    /// `Pcm16` port, bytes for a G.711 one), any length. Fails when the kind
    /// does not match the format. Beyond 120 s queued the rest is dropped.
    pub fn play(&self, audio: PortFrame) -> Result<(), MediaError> {
        self.shared.playout.play(audio)
    }

    /// Barge-in: drops everything queued and returns how much that was.
    /// The caller hears the end within a frame or two (the one being sent).
    pub fn clear(&self) -> Duration {
        self.shared.playout.clear()
    }

    /// How much audio is queued (not yet sent).
    pub fn queued(&self) -> Duration {
        self.shared.playout.queued()
    }

    /// How much queued audio has been sent to the caller since the start
    /// (silence sent while the queue was empty not included): what to report
    /// as heard when truncating a response after a barge-in.
    pub fn played(&self) -> Duration {
        self.shared.playout.played()
    }

    /// Caller frames dropped because the application did not read them in
    /// time.
    pub fn dropped_frames(&self) -> u64 {
        self.shared.dropped_frames.load(Relaxed)
    }

    /// The endpoint, to update it from a re-INVITE or read its stats.
    pub fn endpoint(&self) -> &Endpoint {
        &self.ep
    }

    /// Stops the port's tasks and gives the endpoint back (to bridge it to a
    /// human after a transfer; its outgoing stream continues seamlessly).
    pub async fn stop(self) -> Endpoint {
        let AudioPort {
            ep, stop, tasks, ..
        } = self;
        // Send errors only mean every task already ended.
        let _ = stop.send(true);
        for task in tasks {
            if let Err(e) = task.await {
                warn!(error = %e, "audio port task failed");
            }
        }
        debug!(endpoint = ep.id(), "audio port stopped");
        ep
    }
}

impl std::fmt::Debug for AudioPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioPort").field("ep", &self.ep).finish()
    }
}

/// The port's media task: the receive path and the 20 ms clock.
struct PortTask {
    caller: Caller,
    outbound: Outbound,
    /// The leg's telephone-event payload type (consumed, not decoded).
    dtmf_pt: Option<u8>,
    /// Names the port as the source of the endpoint's stream (see
    /// [`forward_rtp`]): distinct from every endpoint id, and from the
    /// transcoders that send to this endpoint (`u64::MAX - other id`).
    source: u64,
}

impl PortTask {
    fn new(
        ep: &Endpoint,
        caller: PortFormat,
        playout: PortFormat,
    ) -> Result<(PortTask, Arc<PortShared>), MediaError> {
        caller.check()?;
        playout.check()?;
        let format = ep
            .format()
            .ok_or_else(|| CodecError::Unsupported("no stream format set".into()))?;
        let (outbound, queue) = Outbound::new(&format, playout)?;
        let task = PortTask {
            caller: Caller::new(&format, caller)?,
            outbound,
            dtmf_pt: format.dtmf.map(|d| d.pt),
            source: u64::MAX - ep.id(),
        };
        let max = (MAX_QUEUED.as_millis() as usize) * playout.frame_len() / FRAME_MS as usize;
        let shared = Arc::new(PortShared {
            playout: Playout::new(playout, queue, max),
            dropped_frames: AtomicU64::new(0),
        });
        Ok((task, shared))
    }

    async fn run(
        mut self,
        ep: Arc<Shared>,
        shared: Arc<PortShared>,
        tx: mpsc::Sender<PortFrame>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut buf = [0u8; BUF_LEN];
        let mut out = Vec::with_capacity(1500);
        let mut clock = FrameClock::new();
        let stopped = stop.changed();
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                biased;
                _ = &mut stopped => break,
                now = clock.tick() => {
                    self.tick(&ep, &shared, &tx, &mut out, now).await;
                    clock.bookkeeping(&ep, now, &mut self.caller).await;
                }
                r = ep.rtp.recv_from(&mut buf) => {
                    if let Some((n, src)) = received(&ep, r) {
                        self.packet(&ep, &buf[..n], src);
                    }
                }
            }
        }
        ep.set_jitter(self.caller.stats());
    }

    /// One tick: the next caller frame to the application, the next playout
    /// frame to the caller.
    async fn tick(
        &mut self,
        ep: &Shared,
        shared: &PortShared,
        tx: &mpsc::Sender<PortFrame>,
        out: &mut Vec<u8>,
        now: Instant,
    ) {
        if let Some(frame) = self.caller.pull(now) {
            // Full: the application is behind; Closed: it is not listening.
            if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(frame) {
                shared.dropped_frames.fetch_add(1, Relaxed);
            }
        }
        match self.outbound.packet(&shared.playout, out) {
            Ok(true) => forward_rtp(ep, self.source, out, now).await,
            Ok(false) => {}
            Err(e) => {
                trace!(endpoint = ep.id, error = %e, "encode failed");
                Counters::add(&ep.counters.dropped, 1);
            }
        }
    }

    fn packet(&mut self, ep: &Shared, pkt: &[u8], src: std::net::SocketAddr) {
        let now = Instant::now();
        let Some(h) = received_for_decoding(ep, pkt, src, now) else {
            return;
        };
        if self.caller.accepts(h.pt) {
            self.caller.push(&h, h.payload(pkt), now);
        } else if self.dtmf_pt != Some(h.pt) {
            // Comfort noise and anything not negotiated: nothing to play.
            // (telephone-event packets are consumed without a count.)
            Counters::add(&ep.counters.dropped, 1);
        }
    }
}

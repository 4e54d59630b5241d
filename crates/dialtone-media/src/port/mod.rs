//! [`AudioPort`]: one endpoint's audio handed to the application instead of
//! to another endpoint — the media side of an AI leg. This module owns the
//! port's public face (formats, [`PortEvent`]s, options, the [`AudioPort`]
//! handle and its cloneable [`PortPlayer`]); the media task is in `task`, the
//! caller → application paths in `caller` (paced) and `immediate`, DTMF in
//! `dtmf`, and the application → caller path in `playout` and `pacer`. See
//! [`AudioPort`] for what happens on each path.

mod caller;
mod dtmf;
mod immediate;
mod pacer;
mod playout;
mod task;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::codec::{g711, CodecError, CodecKind};
use crate::endpoint::Endpoint;
use crate::watchdog::Watchdog;
use crate::{reports, MediaError, MediaEvents};

use playout::Playout;
use task::PortTask;

/// Caller events waiting for the application: 1 s of 20 ms frames.
const CALLER_QUEUE: usize = 50;
/// The most audio the playout queue holds; what [`PortPlayer::play`] is
/// given beyond that is dropped (a provider streams faster than real time,
/// but not minutes ahead).
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
/// one 20 ms frame ([`CallerTiming::Paced`]) or one RTP packet's worth
/// ([`CallerTiming::Immediate`]); given to [`PortPlayer::play`] it is any
/// length.
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

/// What the caller's side of a port produces, in order of arrival.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortEvent {
    /// Caller audio in the caller [`PortFormat`].
    Audio(PortFrame),
    /// A key the caller pressed (RFC 4733 telephone-event), reported once,
    /// when it ended: `0`-`9`, `*`, `#`, `A`-`D`; `duration` is how long it
    /// was held.
    Dtmf { digit: char, duration: Duration },
}

/// When caller audio is handed to the application.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CallerTiming {
    /// Through a jitter buffer, one 20 ms frame per tick of the port's
    /// clock: reordered, evenly paced, losses concealed in place (for
    /// consumers that want a steady stream).
    #[default]
    Paced,
    /// Each RTP packet converted and handed over the moment it arrives, as
    /// one frame of that packet's duration (for realtime LLMs, which buffer
    /// themselves: latency is what counts).
    Immediate,
}

/// How [`AudioPort::start_with`] sets a port up.
#[derive(Clone, Copy, Debug, Default)]
pub struct PortOptions {
    pub caller: CallerTiming,
}

/// State shared between the [`AudioPort`] handle, its players and its task.
struct PortShared {
    playout: Playout,
    /// Caller frames dropped because the application's channel was full.
    dropped_frames: AtomicU64,
}

/// An endpoint's audio, exchanged with the application: the media side of
/// an AI leg.
///
/// Caller → application: RTP from the endpoint's peer is latched and counted
/// like the relay does and comes out of the receiver returned by
/// [`start_with`](Self::start_with) as [`PortEvent::Audio`] in the caller
/// [`PortFormat`]: PCM decoded (with loss concealment) and resampled to the
/// port rate, or G.711 bytes; a G.711 port on a leg of the same law gets the
/// payload bytes untouched (only frames standing in for lost packets are
/// made, by concealment). When it is handed over depends on the
/// [`CallerTiming`]:
/// - [`Paced`](CallerTiming::Paced): through a jitter buffer, one 20 ms
///   frame per tick of the port's clock; while the jitter buffer has nothing
///   to play (before the first packets, while rebuffering) no frames come.
/// - [`Immediate`](CallerTiming::Immediate): each packet the moment it
///   arrives, as one frame of its duration (usually 20 ms; Opus 10–60 ms). A
///   packet at or behind the newest sequence number seen is dropped (counted
///   as late or duplicate); a gap of 1 to 5 missing packets is first filled
///   with as many concealment frames; a bigger gap, a new SSRC or a
///   timestamp jump just continues.
///
/// Audio waits in a bounded channel (50 frames: 1 s of 20 ms ones); when
/// the application falls behind and it is full, new frames are dropped and
/// counted ([`dropped_frames`](Self::dropped_frames)): the RTP path never
/// waits.
/// RFC 4733 telephone-events on the leg's negotiated payload type are
/// reported as [`PortEvent::Dtmf`], once per key press, in both timings; they
/// are never dropped (they wait for room in the channel on a path of their
/// own). Comfort noise and other payload types are counted as dropped.
///
/// Application → caller: [`PortPlayer::play`] (or [`play`](Self::play))
/// appends audio of any length to a playout queue in the playout
/// [`PortFormat`]; each frame taken from it is encoded into the leg's codec
/// (a G.711 port on a leg of the same law sends the bytes as they are) and
/// sent as part of the endpoint's one continuous outgoing stream, so a bridge
/// started on the endpoint afterwards splices onto it cleanly. While the
/// queue has audio, packets leave exactly 20 ms apart, however fast it is
/// filled. While it is empty the port sends silence every 20 ms (padding a
/// short last frame with it too): the phone's RTP timeout and the NAT
/// bindings on the way stay alive, and timestamps never jump; with Opus DTX
/// negotiated, that silence is not transmitted. Audio given while the stream
/// is in silence goes out at once rather than at the next 20 ms mark, and the
/// 20 ms rhythm restarts from there (sequence numbers and timestamps stay
/// continuous: that packet is up to 20 ms early for its timestamp, which the
/// phone's jitter buffer absorbs; the silence that follows the audio gives
/// that time back, 2 ms per packet, so early starts do not add up over a
/// call). [`PortPlayer::clear`] (barge-in) empties the queue at once.
///
/// RTCP from the peer is terminated (latched, counted), as on a transcoded
/// leg; the RTP-timeout watchdog runs as in a [`Bridge`](crate::Bridge).
///
/// Dropping the port stops it (the endpoint is dropped too once the tasks
/// have ended); [`stop`](Self::stop) stops it and gives the endpoint back.
/// [`PortPlayer`]s outlive it harmlessly: their `play` then fails.
pub struct AudioPort {
    ep: Endpoint,
    shared: Arc<PortShared>,
    /// Dropping the sender (with the port) also stops every task.
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl AudioPort {
    /// [`start_with`](Self::start_with) with the default options:
    /// [`CallerTiming::Paced`].
    ///
    /// # Panics
    /// Outside a tokio runtime (it spawns the port's tasks).
    pub fn start(
        ep: Endpoint,
        caller: PortFormat,
        playout: PortFormat,
        events: impl Into<MediaEvents>,
    ) -> Result<(AudioPort, mpsc::Receiver<PortEvent>), (MediaError, Endpoint)> {
        AudioPort::start_with(ep, caller, playout, PortOptions::default(), events)
    }

    /// Starts the port on `ep`: caller audio and DTMF come out of the
    /// returned receiver, caller audio in `caller` format timed as `options`
    /// say; audio given to [`PortPlayer::play`] is in `playout` format (they
    /// differ for e.g. Gemini Live: 16 kHz in, 24 kHz out). Datagrams
    /// already waiting in the endpoint's sockets are discarded first
    /// (stale). RTP timeouts of the peer are reported on `events` (once per
    /// silence, as by a bridge).
    ///
    /// Fails when a format is unusable or the endpoint has no
    /// [`StreamFormat`](crate::StreamFormat) with a codec dialtone can decode
    /// and encode; the endpoint is handed back with the error.
    ///
    /// # Panics
    /// Outside a tokio runtime (it spawns the port's tasks).
    pub fn start_with(
        ep: Endpoint,
        caller: PortFormat,
        playout: PortFormat,
        options: PortOptions,
        events: impl Into<MediaEvents>,
    ) -> Result<(AudioPort, mpsc::Receiver<PortEvent>), (MediaError, Endpoint)> {
        let (task, playout_queue) = match PortTask::new(&ep, caller, playout, options) {
            Ok(t) => t,
            Err(e) => return Err((e, ep)),
        };
        let shared = Arc::new(PortShared {
            playout: playout_queue,
            dropped_frames: AtomicU64::new(0),
        });
        let sh = &ep.shared;
        crate::bridge::drain(sh.id, &sh.rtp);
        crate::bridge::drain(sh.id, &sh.rtcp);
        // The timeout counts afresh from this port.
        sh.lock().timeout_reported = false;
        let started = Instant::now();
        let (stop, stop_rx) = watch::channel(false);
        let (tx, rx) = mpsc::channel(CALLER_QUEUE);
        let (digits, digits_rx) = mpsc::unbounded_channel();
        let mut tasks = Vec::with_capacity(4);
        tasks.push(tokio::spawn(task.run(
            Arc::clone(sh),
            Arc::clone(&shared),
            tx.clone(),
            digits,
            stop_rx.clone(),
        )));
        tasks.push(tokio::spawn(dtmf::deliver(digits_rx, tx, stop_rx.clone())));
        tasks.push(tokio::spawn(reports::run(Arc::clone(sh), stop_rx.clone())));
        let pair = [Arc::clone(sh), Arc::clone(sh)];
        if let Some(watchdog) = Watchdog::new(pair, started, sh.rtp_timeout, events.into()) {
            tasks.push(tokio::spawn(watchdog.run(stop_rx)));
        }
        debug!(
            endpoint = sh.id,
            ?caller,
            ?playout,
            ?options,
            "audio port started"
        );
        let port = AudioPort {
            ep,
            shared,
            stop,
            tasks,
        };
        Ok((port, rx))
    }

    /// A handle that plays into this port's queue, for another task (the
    /// one talking to the LLM) while this one keeps the port.
    pub fn player(&self) -> PortPlayer {
        PortPlayer {
            shared: Arc::clone(&self.shared),
        }
    }

    /// See [`PortPlayer::play`].
    pub fn play(&self, audio: PortFrame) -> Result<(), MediaError> {
        self.shared.playout.play(audio)
    }

    /// See [`PortPlayer::clear`].
    pub fn clear(&self) -> Duration {
        self.shared.playout.clear()
    }

    /// See [`PortPlayer::queued`].
    pub fn queued(&self) -> Duration {
        self.shared.playout.queued()
    }

    /// See [`PortPlayer::played`].
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
    /// Players fail from now on.
    pub async fn stop(self) -> Endpoint {
        let AudioPort {
            ep,
            shared,
            stop,
            tasks,
        } = self;
        shared.playout.close();
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

/// Plays into an [`AudioPort`]'s queue: a cheap, cloneable handle for the
/// task that talks to the LLM, while the call keeps the port itself. Every
/// clone plays into the same queue. Once the port has stopped,
/// [`play`](Self::play) fails and the rest report an empty queue.
#[derive(Clone)]
pub struct PortPlayer {
    shared: Arc<PortShared>,
}

impl PortPlayer {
    /// Queues audio for the caller, in the playout format (PCM samples for a
    /// `Pcm16` port, bytes for a G.711 one), any length. Given while the
    /// stream is in silence, its first packet leaves at once. Fails when the
    /// kind does not match the format, or the port has stopped. Beyond 120 s
    /// queued the rest is dropped.
    pub fn play(&self, audio: PortFrame) -> Result<(), MediaError> {
        self.shared.playout.play(audio)
    }

    /// Barge-in: drops everything queued and returns how much that was.
    /// The caller hears the end within a frame (the one being sent).
    pub fn clear(&self) -> Duration {
        self.shared.playout.clear()
    }

    /// How much audio is queued (not yet sent).
    pub fn queued(&self) -> Duration {
        self.shared.playout.queued()
    }

    /// How much queued audio has been sent to the caller since the start
    /// (silence sent while the queue was empty, and padding, not included):
    /// what to report as heard when truncating a response after a barge-in.
    pub fn played(&self) -> Duration {
        self.shared.playout.played()
    }
}

impl std::fmt::Debug for PortPlayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortPlayer")
            .field("queued", &self.queued())
            .field("played", &self.played())
            .finish()
    }
}

//! The application → caller path of an [`AudioPort`](super::AudioPort): a
//! playout queue that the port's task drains into RTP packets, one 20 ms
//! frame at a time (when, the [`Pacer`](super::pacer::Pacer) decides), and
//! that wakes the task when audio arrives while the stream is idle.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::futures::Notified;
use tokio::sync::Notify;
use tracing::warn;

use crate::codec::{g711, CodecError};
use crate::pipeline::Encoding;
use crate::{MediaError, StreamFormat};

use super::{g711_decode, PortCodec, PortFormat, PortFrame};

/// Fixed RTP header length (no CSRCs, no extension).
const HEADER: usize = 12;

/// Audio waiting to be sent, at the playout format's rate: PCM samples, or
/// G.711 bytes when they are sent as they are.
pub(super) enum Queue {
    Pcm(VecDeque<i16>),
    Bytes(VecDeque<u8>),
}

impl Queue {
    fn len(&self) -> usize {
        match self {
            Queue::Pcm(q) => q.len(),
            Queue::Bytes(q) => q.len(),
        }
    }
}

/// The playout queue, shared by the port's handles (which fill and clear it)
/// and the port's task (which drains it). Locked briefly on both sides.
pub(super) struct Playout {
    queue: Mutex<Queue>,
    format: PortFormat,
    /// The queue holds G.711 bytes (sent as they are), not PCM.
    bytes: bool,
    /// Most samples (or bytes) queued.
    max: usize,
    /// Samples (or bytes) of queued audio sent so far.
    played: AtomicU64,
    /// Audio was put into an empty queue: the task may send it at once.
    wake: Notify,
    /// The port has stopped: nothing drains the queue any more.
    closed: AtomicBool,
}

impl Playout {
    pub(super) fn new(format: PortFormat, queue: Queue, max: usize) -> Playout {
        Playout {
            bytes: matches!(queue, Queue::Bytes(_)),
            queue: Mutex::new(queue),
            format,
            max,
            played: AtomicU64::new(0),
            wake: Notify::new(),
            closed: AtomicBool::new(false),
        }
    }

    /// Completes when audio was put into an empty queue since the last one
    /// completed (a wake-up given while nobody waits is kept for the next).
    pub(super) fn woken(&self) -> Notified<'_> {
        self.wake.notified()
    }

    /// Whether queued audio is waiting.
    pub(super) fn has_audio(&self) -> bool {
        self.lock().len() > 0
    }

    /// The port stopped: later `play`s fail, and what is queued is dropped
    /// (it will never be sent).
    pub(super) fn close(&self) {
        self.closed.store(true, Relaxed);
        self.clear();
    }

    /// A poisoned lock only means a panic mid-update of plain data.
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn play(&self, audio: PortFrame) -> Result<(), MediaError> {
        if self.closed.load(Relaxed) {
            return Err(MediaError::Io(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                "audio port stopped",
            )));
        }
        let pcm_port = self.format.codec == PortCodec::Pcm16;
        let audio = match audio {
            PortFrame::Pcm(pcm) if pcm_port => PortFrame::Pcm(pcm),
            PortFrame::G711(bytes) if !pcm_port && self.bytes => PortFrame::G711(bytes),
            // For a leg of another codec: expanded here, encoded by the clock.
            PortFrame::G711(bytes) if !pcm_port => {
                let mut pcm = Vec::with_capacity(bytes.len());
                g711_decode(self.format.codec, &bytes, &mut pcm);
                PortFrame::Pcm(pcm)
            }
            _ => {
                let what = if pcm_port { "G.711" } else { "PCM" };
                return Err(MediaError::Codec(CodecError::BadFrame(format!(
                    "{what} audio for a {:?} port",
                    self.format.codec
                ))));
            }
        };
        let mut q = self.lock();
        let was_empty = q.len() == 0;
        let room = self.max.saturating_sub(q.len());
        let (given, taken) = match (&mut *q, &audio) {
            (Queue::Pcm(q), PortFrame::Pcm(pcm)) => {
                q.extend(pcm.iter().take(room));
                (pcm.len(), pcm.len().min(room))
            }
            (Queue::Bytes(q), PortFrame::G711(bytes)) => {
                q.extend(bytes.iter().take(room));
                (bytes.len(), bytes.len().min(room))
            }
            // The queue kind follows `self.bytes`, as `audio` does.
            _ => (0, 0),
        };
        drop(q);
        if was_empty && taken > 0 {
            // Stored as a permit when the task is busy: it looks as soon as
            // it waits again.
            self.wake.notify_one();
        }
        if taken < given {
            warn!(
                dropped = ?self.duration(given - taken),
                "audio port playout queue full: audio dropped"
            );
        }
        Ok(())
    }

    pub(super) fn clear(&self) -> Duration {
        let mut q = self.lock();
        let n = q.len();
        match &mut *q {
            Queue::Pcm(q) => q.clear(),
            Queue::Bytes(q) => q.clear(),
        }
        drop(q);
        self.duration(n)
    }

    pub(super) fn queued(&self) -> Duration {
        let n = self.lock().len();
        self.duration(n)
    }

    pub(super) fn played(&self) -> Duration {
        self.duration(self.played.load(Relaxed) as usize)
    }

    fn duration(&self, samples: usize) -> Duration {
        Duration::from_micros(samples as u64 * 1_000_000 / u64::from(self.format.rate))
    }
}

/// Turns one frame of the queue per tick into an RTP packet.
pub(super) enum Outbound {
    /// PCM frames encoded into the leg's codec.
    Encode {
        encoding: Box<Encoding>,
        frame: Vec<i16>,
        len: usize,
    },
    /// G.711 bytes for a leg of the same law, sent as they are.
    Bytes {
        packetizer: Packetizer,
        frame: Vec<u8>,
        len: usize,
        silence: u8,
    },
}

impl Outbound {
    /// The sending side for `port` audio to a leg of `format`, and the queue
    /// it drains.
    pub(super) fn new(
        format: &StreamFormat,
        port: PortFormat,
    ) -> Result<(Outbound, Queue), MediaError> {
        let codec = format
            .codec
            .as_ref()
            .ok_or_else(|| CodecError::Unsupported(format.encoding.clone()))?;
        let len = port.frame_len();
        if port.same_law(codec.kind) {
            let silence = match port.codec {
                PortCodec::Pcma => g711::alaw_encode(0),
                _ => g711::ulaw_encode(0),
            };
            let out = Outbound::Bytes {
                packetizer: Packetizer::new(format.pt),
                frame: Vec::with_capacity(len),
                len,
                silence,
            };
            return Ok((out, Queue::Bytes(VecDeque::new())));
        }
        let out = Outbound::Encode {
            encoding: Box::new(Encoding::new(format, port.rate)?),
            frame: Vec::with_capacity(len),
            len,
        };
        Ok((out, Queue::Pcm(VecDeque::new())))
    }

    /// The next 20 ms of the queue (silence where it runs short) as a whole
    /// RTP packet in `out`.
    pub(super) fn packet(
        &mut self,
        playout: &Playout,
        out: &mut Vec<u8>,
    ) -> Result<Frame, CodecError> {
        let (taken, sent) = match self {
            Outbound::Encode {
                encoding,
                frame,
                len,
            } => {
                frame.clear();
                if let Queue::Pcm(q) = &mut *playout.lock() {
                    let n = q.len().min(*len);
                    frame.extend(q.drain(..n));
                }
                let n = frame.len();
                frame.resize(*len, 0);
                (n, encoding.packet(frame, out)?)
            }
            Outbound::Bytes {
                packetizer,
                frame,
                len,
                silence,
            } => {
                frame.clear();
                if let Queue::Bytes(q) = &mut *playout.lock() {
                    let n = q.len().min(*len);
                    frame.extend(q.drain(..n));
                }
                let n = frame.len();
                frame.resize(*len, *silence);
                packetizer.packet(frame, out);
                (n, true)
            }
        };
        playout.played.fetch_add(taken as u64, Relaxed);
        Ok(Frame {
            send: sent,
            audio: taken > 0,
        })
    }
}

/// What [`Outbound::packet`] made of one frame.
#[derive(Clone, Copy, Debug)]
pub(super) struct Frame {
    /// There is a packet to send (false: Opus DTX silence).
    pub(super) send: bool,
    /// It carries queued audio (false: all silence, the queue was empty).
    pub(super) audio: bool,
}

/// RTP packets of G.711 payloads (8000 Hz clock: one byte, one tick). SSRC,
/// sequence and timestamp start random; the endpoint's stream rewriter maps
/// them onto its continuous outgoing stream anyway.
pub(super) struct Packetizer {
    pt: u8,
    ssrc: u32,
    seq: u16,
    ts: u32,
    first: bool,
}

impl Packetizer {
    fn new(pt: u8) -> Packetizer {
        Packetizer {
            pt: pt & 0x7f,
            ssrc: rand::random(),
            seq: rand::random(),
            ts: rand::random(),
            first: true,
        }
    }

    fn packet(&mut self, payload: &[u8], out: &mut Vec<u8>) {
        out.clear();
        out.reserve(HEADER + payload.len());
        out.push(0x80);
        // The marker starts the first talkspurt (RFC 3551 §4.1).
        out.push(if self.first { 0x80 | self.pt } else { self.pt });
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.ts.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(payload);
        self.first = false;
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(payload.len() as u32);
    }
}

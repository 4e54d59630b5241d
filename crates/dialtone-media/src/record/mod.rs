//! Call recording: a stereo WAV file per call, one channel per party.
//!
//! A [`Recording`] runs one writer task. The bridges of the call give it a
//! copy of every RTP packet each party sends (through a [`Tap`]), whether
//! they relay or transcode; the task decodes each party through its own
//! jitter buffer and writes both channels side by side every 20 ms, with
//! silence where a party sends nothing, so the two channels stay aligned
//! with each other and with the wall clock.

mod writer;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::{MediaError, StreamFormat};

/// Packets waiting for the writer beyond this are dropped (and concealed
/// there) rather than slowing the relay down.
const QUEUE: usize = 512;

/// A call recording being written.
pub struct Recording {
    tx: mpsc::Sender<Msg>,
    task: JoinHandle<Result<RecordingInfo, MediaError>>,
    path: PathBuf,
}

/// What a finished recording holds.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordingInfo {
    pub path: PathBuf,
    pub sample_rate: u32,
    /// Length of the recording.
    pub duration: Duration,
}

/// Where a bridge sends one party's packets for the recording. Cheap to
/// clone; never blocks.
#[derive(Clone)]
pub(crate) struct Tap {
    tx: mpsc::Sender<Msg>,
    channel: usize,
}

enum Msg {
    Format {
        channel: usize,
        format: StreamFormat,
    },
    Packet {
        channel: usize,
        data: Vec<u8>,
        at: Instant,
    },
}

impl Recording {
    /// Creates `path` (and its directory) as a 16-bit stereo WAV file at
    /// `sample_rate` and starts writing it: silence until the parties'
    /// audio arrives.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn start(path: impl Into<PathBuf>, sample_rate: u32) -> Result<Recording, MediaError> {
        let path = path.into();
        let file = writer::create(&path, sample_rate)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(writer::run(file, path.clone(), sample_rate, rx));
        Ok(Recording { tx, task, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The tap for one party: channel 0 is the left channel (the caller),
    /// 1 the right.
    pub(crate) fn tap(&self, channel: usize) -> Tap {
        Tap {
            tx: self.tx.clone(),
            channel: channel.min(1),
        }
    }

    /// Stops recording and completes the file (its header gets the final
    /// length). Bridges still holding taps stop feeding it.
    pub async fn finish(self) -> Result<RecordingInfo, MediaError> {
        let Recording { tx, task, .. } = self;
        drop(tx);
        // The writer ends when every sender is gone; bridges that still hold
        // a tap are stopped by their owner, but do not wait on them.
        match tokio::time::timeout(Duration::from_secs(5), task).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => Err(MediaError::Recording(format!("writer task failed: {e}"))),
            Err(_) => Err(MediaError::Recording("writer did not finish".into())),
        }
    }
}

impl Tap {
    /// The party's format changed (a new bridge, a re-INVITE).
    pub(crate) fn format(&self, format: &StreamFormat) {
        let _ = self.tx.try_send(Msg::Format {
            channel: self.channel,
            format: format.clone(),
        });
    }

    /// A copy of an RTP packet the party sent.
    pub(crate) fn packet(&self, packet: &[u8], at: Instant) {
        let _ = self.tx.try_send(Msg::Packet {
            channel: self.channel,
            data: packet.to_vec(),
            at,
        });
    }
}

impl std::fmt::Debug for Recording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recording")
            .field("path", &self.path)
            .finish()
    }
}

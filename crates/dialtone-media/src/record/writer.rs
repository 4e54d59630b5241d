//! The recording writer task: two decoded channels, interleaved into a WAV
//! file every 20 ms.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hound::{SampleFormat, WavSpec, WavWriter};
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tracing::{debug, warn};

use super::{Msg, RecordingInfo};
use crate::packet::{classify, Datagram};
use crate::pipeline::{frame_samples, Decoding, FRAME_MS};
use crate::MediaError;

type Wav = WavWriter<BufWriter<File>>;

/// How often the header is brought up to date, so a crash loses at most
/// this much of the file's declared length (the samples are there anyway).
const FLUSH_EVERY: Duration = Duration::from_secs(5);

pub(super) fn create(path: &Path, sample_rate: u32) -> Result<Wav, MediaError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| MediaError::Recording(format!("{}: {e}", dir.display())))?;
    }
    let spec = WavSpec {
        channels: 2,
        sample_rate,
        bits_per_sample: 16,
        sample_format: SampleFormat::Int,
    };
    WavWriter::create(path, spec)
        .map_err(|e| MediaError::Recording(format!("{}: {e}", path.display())))
}

pub(super) async fn run(
    mut wav: Wav,
    path: PathBuf,
    rate: u32,
    mut rx: mpsc::Receiver<Msg>,
) -> Result<RecordingInfo, MediaError> {
    let frame = frame_samples(rate);
    let mut channels: [Option<Decoding>; 2] = [None, None];
    let mut tick = tokio::time::interval(Duration::from_millis(u64::from(FRAME_MS)));
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut frames: u64 = 0;
    let mut interleaved = Vec::with_capacity(frame * 2);
    let mut flushed = Instant::now();
    let mut failed: Option<String> = None;
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                None => break,
                Some(Msg::Format { channel, format }) => {
                    channels[channel] = match Decoding::new(&format, rate) {
                        Ok(d) => Some(d),
                        Err(e) => {
                            debug!(error = %e, "party not recordable; silence on its channel");
                            None
                        }
                    };
                }
                Some(Msg::Packet { channel, data, at }) => {
                    if let (Some(dec), Datagram::Rtp(h)) = (&mut channels[channel], classify(&data)) {
                        if dec.accepts(h.pt) {
                            dec.push(&h, h.payload(&data), at);
                        }
                    }
                }
            },
            _ = tick.tick(), if failed.is_none() => {
                let now = Instant::now();
                if let Err(e) = write_frame(&mut wav, &mut channels, &mut interleaved, frame, now) {
                    warn!(path = %path.display(), error = %e, "recording stopped");
                    failed = Some(e.to_string());
                    continue;
                }
                frames += 1;
                if flushed.elapsed() >= FLUSH_EVERY {
                    flushed = now;
                    if let Err(e) = wav.flush() {
                        failed = Some(e.to_string());
                    }
                }
            }
        }
    }
    wav.finalize()
        .map_err(|e| MediaError::Recording(format!("{}: {e}", path.display())))?;
    if let Some(e) = failed {
        return Err(MediaError::Recording(format!("{}: {e}", path.display())));
    }
    Ok(RecordingInfo {
        path,
        sample_rate: rate,
        duration: Duration::from_millis(frames * u64::from(FRAME_MS)),
    })
}

/// One 20 ms frame of both channels, interleaved left/right in
/// `interleaved` (reused from frame to frame).
fn write_frame(
    wav: &mut Wav,
    channels: &mut [Option<Decoding>; 2],
    interleaved: &mut Vec<i16>,
    frame: usize,
    now: Instant,
) -> Result<(), hound::Error> {
    interleaved.clear();
    interleaved.resize(frame * 2, 0);
    for (side, dec) in channels.iter_mut().enumerate() {
        if let Some(pcm) = dec.as_mut().and_then(|d| d.pull(now)) {
            for (slot, s) in interleaved.iter_mut().skip(side).step_by(2).zip(pcm) {
                *slot = *s;
            }
        }
    }
    let mut w = wav.get_i16_writer((frame * 2) as u32);
    for s in interleaved.iter() {
        w.write_sample(*s);
    }
    w.flush()
}

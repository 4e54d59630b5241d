//! Opus through libopus (audiopus): mono encoder and decoder, with decoder
//! PLC and in-band FEC recovery.

use audiopus::coder::{Decoder as LibDecoder, Encoder as LibEncoder};
use audiopus::packet::Packet;
use audiopus::{Application, Bandwidth, Bitrate, Channels, MutSignals, SampleRate, Signal};

use super::{opus_rate_at_least, CodecError, Decoder, Encoder, OpusParams};

/// Largest Opus payload for one frame (RFC 6716 §3.4: 1275 bytes per frame,
/// up to 120 ms); generous for the one-frame packets we make.
const MAX_PAYLOAD: usize = 1500;

/// Expected loss rate told to the encoder when in-band FEC is on, so that it
/// actually spends bits on LBRR frames.
const FEC_LOSS_PERCENT: u8 = 10;

/// Encoder complexity: 5 of 0..=10. Roughly half the CPU of the default (10)
/// with little audible difference at voice bitrates; transcoding runs one
/// encoder per call leg, so per-call cost matters more than the last bit of
/// quality.
const COMPLEXITY: u8 = 5;

fn opus_error(e: audiopus::Error) -> CodecError {
    CodecError::Opus(e.to_string())
}

fn sample_rate(rate: u32) -> Result<SampleRate, CodecError> {
    match rate {
        8000 => Ok(SampleRate::Hz8000),
        12000 => Ok(SampleRate::Hz12000),
        16000 => Ok(SampleRate::Hz16000),
        24000 => Ok(SampleRate::Hz24000),
        48000 => Ok(SampleRate::Hz48000),
        _ => Err(CodecError::UnsupportedRate(rate)),
    }
}

/// Mono Opus encoder.
pub(crate) struct OpusEncoder {
    rate: u32,
    inner: LibEncoder,
}

impl OpusEncoder {
    pub(crate) fn new(params: &OpusParams, rate: u32) -> Result<Self, CodecError> {
        let mut inner = LibEncoder::new(sample_rate(rate)?, Channels::Mono, Application::Voip)
            .map_err(opus_error)?;
        // What the far end renders, limited by what we are fed.
        let audio_rate = opus_rate_at_least(params.max_playback_rate).min(rate);
        let bandwidth = match audio_rate {
            8000 => Bandwidth::Narrowband,
            12000 => Bandwidth::Mediumband,
            16000 => Bandwidth::Wideband,
            24000 => Bandwidth::Superwideband,
            _ => Bandwidth::Fullband,
        };
        let bitrate = match params.max_average_bitrate {
            Some(b) => b.clamp(6000, 510_000),
            None if audio_rate <= 12000 => 20000,
            None => 32000,
        };
        inner.set_signal(Signal::Voice).map_err(opus_error)?;
        inner.set_complexity(COMPLEXITY).map_err(opus_error)?;
        inner.set_max_bandwidth(bandwidth).map_err(opus_error)?;
        inner
            .set_bitrate(Bitrate::BitsPerSecond(bitrate as i32))
            .map_err(opus_error)?;
        inner
            .set_inband_fec(params.inband_fec)
            .map_err(opus_error)?;
        if params.inband_fec {
            inner
                .set_packet_loss_perc(FEC_LOSS_PERCENT)
                .map_err(opus_error)?;
        }
        inner.set_dtx(params.dtx).map_err(opus_error)?;
        Ok(OpusEncoder { rate, inner })
    }
}

impl Encoder for OpusEncoder {
    fn rate(&self) -> u32 {
        self.rate
    }

    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError> {
        let start = out.len();
        out.resize(start + MAX_PAYLOAD, 0);
        match self.inner.encode(pcm, &mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                Ok(())
            }
            Err(e) => {
                out.truncate(start);
                Err(CodecError::BadFrame(format!(
                    "opus cannot encode {} samples at {} Hz: {e}",
                    pcm.len(),
                    self.rate
                )))
            }
        }
    }
}

/// Mono Opus decoder.
pub(crate) struct OpusDecoder {
    rate: u32,
    sample_rate: SampleRate,
    inner: LibDecoder,
}

impl OpusDecoder {
    pub(crate) fn new(rate: u32) -> Result<Self, CodecError> {
        let sample_rate = sample_rate(rate)?;
        let inner = LibDecoder::new(sample_rate, Channels::Mono).map_err(opus_error)?;
        Ok(OpusDecoder {
            rate,
            sample_rate,
            inner,
        })
    }

    /// Samples in 120 ms, the most one opus_decode call produces.
    fn max_frame(&self) -> usize {
        self.rate as usize * 120 / 1000
    }

    /// Samples in 2.5 ms, the granularity of PLC and FEC decoding.
    fn granule(&self) -> usize {
        self.rate as usize / 400
    }

    /// Runs libopus on `packet` (None: PLC) for `samples` samples (rounded
    /// up to 2.5 ms, the excess dropped), appending them to `out`.
    fn decode_into(
        &mut self,
        packet: Option<&[u8]>,
        fec: bool,
        samples: usize,
        out: &mut Vec<i16>,
    ) -> Result<usize, CodecError> {
        let granule = self.granule();
        let frame = samples.div_ceil(granule) * granule;
        let start = out.len();
        out.resize(start + frame, 0);
        match lib_decode(&mut self.inner, packet, fec, &mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n.min(samples));
                Ok(n.min(samples))
            }
            Err(e) => {
                out.truncate(start);
                Err(opus_error(e))
            }
        }
    }
}

fn lib_decode(
    decoder: &mut LibDecoder,
    packet: Option<&[u8]>,
    fec: bool,
    pcm: &mut [i16],
) -> audiopus::Result<usize> {
    let packet = packet.map(Packet::try_from).transpose()?;
    decoder.decode(packet, MutSignals::try_from(pcm)?, fec)
}

impl Decoder for OpusDecoder {
    fn rate(&self) -> u32 {
        self.rate
    }

    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, CodecError> {
        if payload.is_empty() {
            return Err(CodecError::BadFrame("empty Opus payload".into()));
        }
        let max = self.max_frame();
        self.decode_into(Some(payload), false, max, out)
    }

    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        let max = self.max_frame();
        let mut left = samples;
        while left > 0 {
            let chunk = left.min(max);
            let start = out.len();
            if self.decode_into(None, false, chunk, out).is_err() {
                out.truncate(start);
                out.resize(start + chunk, 0);
            }
            // Should libopus give fewer samples than asked, pad with silence.
            out.resize(start + chunk, 0);
            left -= chunk;
        }
    }

    fn recover(&mut self, next: &[u8], samples: usize, out: &mut Vec<i16>) -> bool {
        if samples == 0 || samples > self.max_frame() || !has_lbrr(next) {
            return false;
        }
        let start = out.len();
        match self.decode_into(Some(next), true, samples, out) {
            Ok(_) => {
                out.resize(start + samples, 0);
                true
            }
            Err(_) => false,
        }
    }

    fn samples_in(&self, payload: &[u8]) -> Option<usize> {
        let packet = Packet::try_from(payload).ok()?;
        audiopus::packet::nb_samples(packet, self.sample_rate).ok()
    }
}

/// Whether an Opus packet carries in-band FEC (SILK LBRR data) for the
/// packet before it; a port of `opus_packet_has_lbrr` (libopus 1.5).
///
/// The LBRR flag is the first range-coded bit after the per-frame VAD flags
/// of the first SILK frame; coded with probability 1/2 as the first
/// symbols of a fresh range coder, those bits are plain MSB-first bits of
/// the frame's first byte.
pub(crate) fn has_lbrr(packet: &[u8]) -> bool {
    let Some(&toc) = packet.first() else {
        return false;
    };
    let config = toc >> 3;
    if config >= 16 {
        return false; // CELT only.
    }
    // SILK-only frames of 40 and 60 ms hold 2 and 3 20 ms SILK frames
    // (configs 0..=11 cycle through 10/20/40/60 ms; hybrid is 10/20 ms).
    let silk_frames = match config & 3 {
        2 if config < 12 => 2,
        3 if config < 12 => 3,
        _ => 1,
    };
    let stereo = toc & 0x04 != 0;
    let Some(first) = first_frame(packet) else {
        return false;
    };
    let Some(&byte) = first.first() else {
        return false;
    };
    let mid = (byte >> (7 - silk_frames)) & 1 != 0;
    let side = stereo && (byte >> (6 - 2 * silk_frames)) & 1 != 0;
    mid || side
}

/// The first frame of an Opus packet (RFC 6716 §3.2), if well-formed.
fn first_frame(packet: &[u8]) -> Option<&[u8]> {
    let toc = *packet.first()?;
    let rest = &packet[1..];
    match toc & 3 {
        0 => Some(rest),
        1 => rest
            .len()
            .is_multiple_of(2)
            .then(|| &rest[..rest.len() / 2]),
        2 => {
            let (size, used) = frame_length(rest)?;
            rest.get(used..used + size)
        }
        _ => {
            let count_byte = *rest.first()?;
            let count = usize::from(count_byte & 0x3F);
            if count == 0 {
                return None;
            }
            let mut pos = 1;
            let mut padding = 0usize;
            if count_byte & 0x40 != 0 {
                loop {
                    let b = *rest.get(pos)?;
                    pos += 1;
                    if b == 255 {
                        padding += 254;
                    } else {
                        padding += usize::from(b);
                        break;
                    }
                }
            }
            if count_byte & 0x80 != 0 {
                // VBR: the first frame's length comes first.
                let (size, used) = frame_length(rest.get(pos..)?)?;
                pos += used;
                // Skip the other lengths.
                for _ in 1..count {
                    let (_, used) = frame_length(rest.get(pos..)?)?;
                    pos += used;
                }
                rest.get(pos..pos + size)
            } else {
                let data = rest.len().checked_sub(pos + padding)?;
                if !data.is_multiple_of(count) {
                    return None;
                }
                rest.get(pos..pos + data / count)
            }
        }
    }
}

/// A frame length coded in 1 or 2 bytes (RFC 6716 §3.2.1) and how many
/// bytes it took.
fn frame_length(b: &[u8]) -> Option<(usize, usize)> {
    let first = usize::from(*b.first()?);
    if first < 252 {
        Some((first, 1))
    } else {
        Some((first + 4 * usize::from(*b.get(1)?), 2))
    }
}

//! The two halves of every path that touches audio rather than packets:
//! [`Decoding`] turns one received RTP stream into 20 ms PCM frames
//! (jitter buffer, decoder with loss concealment, resampler) and
//! [`Encoding`] turns 20 ms PCM frames into one outgoing RTP stream
//! (resampler, encoder, packetizer). Transcoding joins a decoding to an
//! encoding; the recorder runs one decoding per party; the audio port gives
//! the application a decoding and an encoding of its own.

mod clock;
mod decode;
mod encode;

pub(crate) use clock::{FrameClock, Received};
pub(crate) use decode::Decoding;
pub(crate) use encode::Encoding;

/// Frames are 20 ms everywhere inside the media engine.
pub(crate) const FRAME_MS: u32 = 20;

/// Samples in one 20 ms frame at `rate`.
pub(crate) fn frame_samples(rate: u32) -> usize {
    (rate * FRAME_MS / 1000) as usize
}

/// The PCM rate to run `codec` at when the other end of the path wants
/// `rate`: Opus decodes and encodes natively at 8, 12, 16, 24 and 48 kHz, so
/// it runs at `rate` when that is one of them (no resampling at all between
/// Opus and G.711); G.711 only runs at 8 kHz.
pub(crate) fn codec_rate(codec: &crate::codec::Codec, rate: u32) -> u32 {
    use crate::codec::CodecKind;
    match codec.kind {
        CodecKind::Opus if matches!(rate, 8000 | 12000 | 16000 | 24000 | 48000) => rate,
        _ => codec.native_rate(),
    }
}

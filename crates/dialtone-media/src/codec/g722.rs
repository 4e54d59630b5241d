//! ITU-T G.722 (sub-band ADPCM, 7 kHz audio) at 64 kbit/s, through the
//! `audio-codec` crate's implementation.
//!
//! G.722 samples at 16 kHz but its RTP clock runs at 8000 Hz (RFC 3551
//! §4.5.2, kept for historical reasons), so a 20 ms packet is 160 bytes,
//! 320 samples and 160 timestamp units. One byte carries one 6+2-bit code
//! pair, which decodes to two samples.
//!
//! The codec has no loss concealment of its own: lost packets are concealed
//! with the same pitch repetition as G.711 ([`Plc`]), and the ADPCM state
//! carries on with the next packet, as desk phones do.

use audio_codec::g722::{Bitrate, G722Decoder as Inner, G722Encoder as InnerEncoder};
use audio_codec::{Decoder as _, Encoder as _};

use super::plc::Plc;
use super::{CodecError, Decoder, Encoder};

/// The PCM rate G.722 codes.
pub(crate) const RATE: u32 = 16000;

fn check_rate(rate: u32) -> Result<(), CodecError> {
    if rate == RATE {
        Ok(())
    } else {
        Err(CodecError::UnsupportedRate(rate))
    }
}

/// G.722 decoder (16 kHz out) with concealment.
pub(crate) struct G722Decoder {
    inner: Inner,
    plc: Plc,
    buf: Vec<i16>,
}

impl G722Decoder {
    pub(crate) fn new(rate: u32) -> Result<Self, CodecError> {
        check_rate(rate)?;
        Ok(G722Decoder {
            // 64 kbit/s, one code per byte (not packed), 16 kHz output.
            inner: Inner::with_options(Bitrate::Mode1_64000, false, false),
            plc: Plc::new(RATE),
            buf: Vec::new(),
        })
    }
}

impl Decoder for G722Decoder {
    fn rate(&self) -> u32 {
        RATE
    }

    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, CodecError> {
        if payload.is_empty() {
            return Err(CodecError::BadFrame("empty G.722 payload".into()));
        }
        self.buf
            .resize(self.inner.max_decode_samples(payload.len()), 0);
        let n = self
            .inner
            .decode_into(payload, &mut self.buf)
            .map_err(|e| CodecError::BadFrame(format!("G.722: {e:?}")))?;
        let start = out.len();
        out.extend_from_slice(&self.buf[..n]);
        self.plc.good(&mut out[start..]);
        Ok(n)
    }

    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        self.plc.conceal(samples, out);
    }

    fn recover(&mut self, _next: &[u8], _samples: usize, _out: &mut Vec<i16>) -> bool {
        false
    }

    fn samples_in(&self, payload: &[u8]) -> Option<usize> {
        Some(payload.len() * 2)
    }
}

/// G.722 encoder (16 kHz in), 64 kbit/s.
pub(crate) struct G722Encoder {
    inner: InnerEncoder,
    buf: Vec<u8>,
}

impl G722Encoder {
    pub(crate) fn new(rate: u32) -> Result<Self, CodecError> {
        check_rate(rate)?;
        Ok(G722Encoder {
            inner: InnerEncoder::with_options(Bitrate::Mode1_64000, false, false),
            buf: Vec::new(),
        })
    }
}

impl Encoder for G722Encoder {
    fn rate(&self) -> u32 {
        RATE
    }

    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError> {
        if pcm.is_empty() || !pcm.len().is_multiple_of(2) {
            return Err(CodecError::BadFrame(format!(
                "G.722 codes sample pairs, got {} samples",
                pcm.len()
            )));
        }
        self.buf.resize(self.inner.max_encode_bytes(pcm.len()), 0);
        let n = self
            .inner
            .encode_into(pcm, &mut self.buf)
            .map_err(|e| CodecError::BadFrame(format!("G.722: {e:?}")))?;
        out.extend_from_slice(&self.buf[..n]);
        Ok(())
    }
}

//! [`Encoding`]: 20 ms PCM frames at a chosen rate → one outgoing RTP stream.

use crate::codec::{self, CodecError, CodecKind, Encoder};
use crate::dsp::Resampler;
use crate::StreamFormat;

use super::{codec_rate, frame_samples, FRAME_MS};

/// Fixed RTP header length (no CSRCs, no extension).
const HEADER: usize = 12;

pub(crate) struct Encoding {
    pt: u8,
    ssrc: u32,
    seq: u16,
    /// Timestamp of the next audio frame.
    ts: u32,
    /// RTP clock ticks per 20 ms frame.
    step: u32,
    encoder: Box<dyn Encoder>,
    resampler: Option<Resampler>,
    /// Opus DTX: payloads of two bytes or less are not sent.
    dtx: bool,
    /// The last frame was not sent (DTX), so the next one starts a talkspurt.
    silent: bool,
    first: bool,
    pcm: Vec<i16>,
    payload: Vec<u8>,
}

impl Encoding {
    /// Encodes frames at `rate` into `format`'s voice codec. Fails when the
    /// format has no codec dialtone can encode.
    pub(crate) fn new(format: &StreamFormat, rate: u32) -> Result<Encoding, CodecError> {
        let codec = format
            .codec
            .as_ref()
            .ok_or_else(|| CodecError::Unsupported(format.encoding.clone()))?;
        let encoder = codec::encoder(codec, codec_rate(codec, rate))?;
        let resampler = (encoder.rate() != rate).then(|| Resampler::new(rate, encoder.rate()));
        Ok(Encoding {
            pt: format.pt & 0x7f,
            ssrc: rand::random(),
            seq: rand::random(),
            ts: rand::random(),
            step: format.clock_rate * FRAME_MS / 1000,
            encoder,
            resampler,
            dtx: codec.kind == CodecKind::Opus && codec.opus.dtx,
            silent: false,
            first: true,
            pcm: Vec::with_capacity(frame_samples(48000)),
            payload: Vec::with_capacity(1500),
        })
    }

    /// Encodes one 20 ms frame into a whole RTP packet in `out` (replacing
    /// its contents). Returns false when there is nothing to send (Opus DTX
    /// silence); the timestamp advances either way, so the receiver sees the
    /// gap as the silence it is.
    pub(crate) fn packet(&mut self, frame: &[i16], out: &mut Vec<u8>) -> Result<bool, CodecError> {
        let pcm = match &mut self.resampler {
            Some(r) => {
                self.pcm.clear();
                r.process(frame, &mut self.pcm);
                &self.pcm[..]
            }
            None => frame,
        };
        self.payload.clear();
        self.encoder.encode(pcm, &mut self.payload)?;
        let ts = self.ts;
        self.ts = self.ts.wrapping_add(self.step);
        if self.dtx && self.payload.len() <= 2 {
            self.silent = true;
            return Ok(false);
        }
        // The marker starts a talkspurt: the first packet, and the first
        // after a DTX pause (RFC 3551 §4.1).
        let marker = self.first || self.silent;
        self.first = false;
        self.silent = false;
        self.header(out, self.pt, marker, ts);
        out.extend_from_slice(&self.payload);
        Ok(true)
    }

    /// A 20 ms tick with nothing to send (the input paused: hold, mute, a
    /// phone with VAD). Once the stream has started, its clock runs on, and
    /// the next packet starts a talkspurt (marker), as after DTX silence
    /// (RFC 3550 §5.1, RFC 3551 §4.1).
    pub(crate) fn skip(&mut self) {
        if !self.first {
            self.ts = self.ts.wrapping_add(self.step);
            self.silent = true;
        }
    }

    /// A telephone-event packet on this stream (same SSRC and sequence).
    pub(crate) fn event_packet(
        &mut self,
        pt: u8,
        ts: u32,
        payload: &[u8],
        marker: bool,
        out: &mut Vec<u8>,
    ) {
        self.header(out, pt & 0x7f, marker, ts);
        out.extend_from_slice(payload);
    }

    /// The timestamp the next audio frame will carry ("now" on this stream's
    /// clock), where a new telephone event is anchored.
    pub(crate) fn timestamp(&self) -> u32 {
        self.ts
    }

    fn header(&mut self, out: &mut Vec<u8>, pt: u8, marker: bool, ts: u32) {
        out.clear();
        out.reserve(HEADER + self.payload.len());
        out.push(0x80);
        out.push(if marker { 0x80 | pt } else { pt });
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&ts.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        self.seq = self.seq.wrapping_add(1);
    }
}

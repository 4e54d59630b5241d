//! [`Decoding`]: one received RTP stream → 20 ms PCM frames at a chosen rate.

use std::time::Instant;

use crate::codec::{self, CodecError, Decoder};
use crate::dsp::Resampler;
use crate::jitter::{JitterBuffer, JitterConfig, JitterStats, Playout};
use crate::packet::RtpHeader;
use crate::rtcp::ReportBlock;
use crate::StreamFormat;

use super::{codec_rate, frame_samples, FRAME_MS};

/// At most this many packets are taken from the jitter buffer for one
/// frame (10 ms Opus packets need two; more means something is off).
const MAX_POPS_PER_FRAME: usize = 6;

pub(crate) struct Decoding {
    pt: u8,
    clock_rate: u32,
    jitter: JitterBuffer,
    decoder: Box<dyn Decoder>,
    resampler: Option<Resampler>,
    /// Decoded audio at the output rate not yet handed out.
    pcm: Vec<i16>,
    /// Decoder output before resampling.
    scratch: Vec<i16>,
    frame: usize,
    /// Frames in a row made up entirely by concealment.
    concealed_run: usize,
    /// Past this many such frames, `pull` gives nothing until packets come
    /// again (see [`Decoding::limit_concealment`]).
    conceal_limit: Option<usize>,
}

impl Decoding {
    /// Decodes `format`'s voice codec into frames at `rate`. Fails when the
    /// format has no codec dialtone can decode.
    pub(crate) fn new(format: &StreamFormat, rate: u32) -> Result<Decoding, CodecError> {
        let codec = format
            .codec
            .as_ref()
            .ok_or_else(|| CodecError::Unsupported(format.encoding.clone()))?;
        let decoder = codec::decoder(codec, codec_rate(codec, rate))?;
        let resampler = (decoder.rate() != rate).then(|| Resampler::new(decoder.rate(), rate));
        let jitter = JitterBuffer::new(JitterConfig {
            clock_rate: format.clock_rate,
            frame_ms: FRAME_MS,
            ..JitterConfig::default()
        });
        Ok(Decoding {
            pt: format.pt,
            clock_rate: format.clock_rate.max(1),
            jitter,
            decoder,
            resampler,
            pcm: Vec::with_capacity(frame_samples(rate) * 4),
            scratch: Vec::with_capacity(frame_samples(48000) * 3),
            frame: frame_samples(rate),
            concealed_run: 0,
            conceal_limit: None,
        })
    }

    /// Stops making audio up after `frames` concealed frames in a row: a
    /// peer that stopped sending (hold, mute, hang-up, a VAD phone) is then
    /// passed on as the pause it is rather than as seconds of fading
    /// concealment. Without a limit, concealment runs until the jitter
    /// buffer gives up waiting (what a recorder or an AI listener wants:
    /// continuous audio).
    pub(crate) fn limit_concealment(mut self, frames: usize) -> Decoding {
        self.conceal_limit = Some(frames);
        self
    }

    /// Whether `pt` is this stream's voice payload type.
    pub(crate) fn accepts(&self, pt: u8) -> bool {
        pt == self.pt
    }

    /// A received packet of the voice codec.
    pub(crate) fn push(&mut self, h: &RtpHeader, payload: &[u8], now: Instant) {
        self.jitter
            .push(h.seq, h.timestamp, h.ssrc, h.marker, payload, now);
    }

    /// The next 20 ms frame, or `None` while the jitter buffer has nothing
    /// to play yet (before the first packets, or while rebuffering).
    pub(crate) fn pull(&mut self, now: Instant) -> Option<&[i16]> {
        let mut pops = 0;
        let mut heard = false;
        while self.pcm.len() < self.frame {
            if pops == MAX_POPS_PER_FRAME {
                return None;
            }
            pops += 1;
            self.scratch.clear();
            match self.jitter.pop(now) {
                Playout::Packet { payload, .. } => {
                    heard = true;
                    if self.decoder.decode(&payload, &mut self.scratch).is_err() {
                        let n = self.frame_at_decoder();
                        self.decoder.conceal(n, &mut self.scratch);
                    }
                }
                Playout::Missing { samples, next } => {
                    let n = (u64::from(samples) * u64::from(self.decoder.rate())
                        / u64::from(self.clock_rate)) as usize;
                    let recovered = next
                        .as_deref()
                        .is_some_and(|next| self.decoder.recover(next, n, &mut self.scratch));
                    if !recovered {
                        self.decoder.conceal(n, &mut self.scratch);
                    }
                }
                Playout::Idle => return None,
            }
            match &mut self.resampler {
                Some(r) => r.process(&self.scratch, &mut self.pcm),
                None => self.pcm.extend_from_slice(&self.scratch),
            }
        }
        self.concealed_run = if heard { 0 } else { self.concealed_run + 1 };
        if self
            .conceal_limit
            .is_some_and(|limit| self.concealed_run > limit)
        {
            self.pcm.clear();
            return None;
        }
        // Hand out the first frame; keep the rest for the next pull.
        let rest = self.pcm.len() - self.frame;
        self.scratch.clear();
        self.scratch.extend_from_slice(&self.pcm[self.frame..]);
        self.pcm.truncate(self.frame);
        std::mem::swap(&mut self.pcm, &mut self.scratch);
        debug_assert_eq!(self.pcm.len(), rest);
        Some(&self.scratch[..])
    }

    fn frame_at_decoder(&self) -> usize {
        frame_samples(self.decoder.rate())
    }
}

impl super::Received for Decoding {
    fn stats(&self) -> JitterStats {
        self.jitter.stats()
    }

    fn report_block(&mut self, lsr: u32, dlsr: u32) -> Option<ReportBlock> {
        self.jitter.report_block(lsr, dlsr)
    }
}

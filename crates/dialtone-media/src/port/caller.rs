//! The caller → application path of an [`AudioPort`](super::AudioPort) in
//! [`CallerTiming::Paced`](super::CallerTiming::Paced): received RTP →
//! jitter buffer → one 20 ms [`PortFrame`] per tick of the port's clock.

use std::time::Instant;

use crate::codec::{self, Decoder};
use crate::jitter::{JitterBuffer, JitterConfig, JitterStats, Playout};
use crate::packet::RtpHeader;
use crate::pipeline::{Decoding, Received, FRAME_MS};
use crate::rtcp::ReportBlock;
use crate::{MediaError, StreamFormat};

use super::{g711_encode, PortCodec, PortFormat, PortFrame};

/// At most this many packets are taken from the jitter buffer for one frame
/// (as in [`Decoding`]).
const MAX_POPS_PER_FRAME: usize = 6;

pub(super) enum Caller {
    /// Decoded (with concealment) and resampled to the port rate; for a
    /// G.711 port then companded.
    Decode {
        decoding: Box<Decoding>,
        codec: PortCodec,
    },
    /// A G.711 port on a leg of the same law.
    Bytes(Box<Passthrough>),
}

impl Caller {
    pub(super) fn new(format: &StreamFormat, port: PortFormat) -> Result<Caller, MediaError> {
        let same_law = format.codec.as_ref().is_some_and(|c| port.same_law(c.kind));
        Ok(if same_law {
            Caller::Bytes(Box::new(Passthrough::new(format, port)?))
        } else {
            Caller::Decode {
                decoding: Box::new(Decoding::new(format, port.rate)?),
                codec: port.codec,
            }
        })
    }

    /// Whether `pt` is the leg's voice payload type.
    pub(super) fn accepts(&self, pt: u8) -> bool {
        match self {
            Caller::Decode { decoding, .. } => decoding.accepts(pt),
            Caller::Bytes(p) => p.pt == pt,
        }
    }

    pub(super) fn push(&mut self, h: &RtpHeader, payload: &[u8], now: Instant) {
        match self {
            Caller::Decode { decoding, .. } => decoding.push(h, payload, now),
            Caller::Bytes(p) => p
                .jitter
                .push(h.seq, h.timestamp, h.ssrc, h.marker, payload, now),
        }
    }

    /// The next 20 ms frame, or `None` while the jitter buffer has nothing to
    /// play.
    pub(super) fn pull(&mut self, now: Instant) -> Option<PortFrame> {
        match self {
            Caller::Decode { decoding, codec } => {
                let pcm = decoding.pull(now)?;
                Some(match codec {
                    PortCodec::Pcm16 => PortFrame::Pcm(pcm.to_vec()),
                    law => {
                        let mut bytes = Vec::with_capacity(pcm.len());
                        g711_encode(*law, pcm, &mut bytes);
                        PortFrame::G711(bytes)
                    }
                })
            }
            Caller::Bytes(p) => p.pull(now).map(PortFrame::G711),
        }
    }
}

impl Received for Caller {
    fn stats(&self) -> JitterStats {
        match self {
            Caller::Decode { decoding, .. } => decoding.stats(),
            Caller::Bytes(p) => p.jitter.stats(),
        }
    }

    fn report_block(&mut self, lsr: u32, dlsr: u32) -> Option<ReportBlock> {
        match self {
            Caller::Decode { decoding, .. } => decoding.report_block(lsr, dlsr),
            Caller::Bytes(p) => p.jitter.report_block(lsr, dlsr),
        }
    }
}

/// G.711 payload bytes through the jitter buffer, untouched. A G.711
/// decoder runs alongside only to conceal lost packets: it learns from every
/// payload, and what it conceals is companded back into bytes.
pub(super) struct Passthrough {
    pt: u8,
    codec: PortCodec,
    jitter: JitterBuffer,
    plc: Box<dyn Decoder>,
    /// Bytes not handed out yet (packets need not be 20 ms).
    bytes: Vec<u8>,
    pcm: Vec<i16>,
    frame: usize,
}

impl Passthrough {
    fn new(format: &StreamFormat, port: PortFormat) -> Result<Passthrough, MediaError> {
        let codec = format
            .codec
            .as_ref()
            .ok_or_else(|| codec::CodecError::Unsupported(format.encoding.clone()))?;
        Ok(Passthrough {
            pt: format.pt,
            codec: port.codec,
            jitter: JitterBuffer::new(JitterConfig {
                clock_rate: format.clock_rate,
                frame_ms: FRAME_MS,
                ..JitterConfig::default()
            }),
            plc: codec::decoder(codec, 8000)?,
            bytes: Vec::with_capacity(port.frame_len() * 4),
            pcm: Vec::with_capacity(port.frame_len() * 3),
            frame: port.frame_len(),
        })
    }

    fn pull(&mut self, now: Instant) -> Option<Vec<u8>> {
        let mut pops = 0;
        while self.bytes.len() < self.frame {
            if pops == MAX_POPS_PER_FRAME {
                return None;
            }
            pops += 1;
            self.pcm.clear();
            match self.jitter.pop(now) {
                Playout::Packet { payload, .. } => {
                    // Only to keep the concealment's history current.
                    let _ = self.plc.decode(&payload, &mut self.pcm);
                    self.bytes.extend_from_slice(&payload);
                }
                Playout::Missing { samples, .. } => {
                    self.plc.conceal(samples as usize, &mut self.pcm);
                    g711_encode(self.codec, &self.pcm, &mut self.bytes);
                }
                Playout::Idle => return None,
            }
        }
        Some(self.bytes.drain(..self.frame).collect())
    }
}

//! The caller → application path of an [`AudioPort`](super::AudioPort) in
//! [`CallerTiming::Immediate`](super::CallerTiming::Immediate): each RTP
//! packet converted to the port format the moment it arrives and handed over
//! as one [`PortFrame`] of its duration — no jitter buffer, no clock. What a
//! jitter buffer would do is cut down to what costs no waiting: packets
//! behind the newest one are dropped, and a short gap before a packet is
//! filled with concealment first. The RFC 3550 sequence state and the
//! counters are kept as the paced path keeps them, for the endpoint's stats
//! and RTCP reports.

use std::time::Instant;

use crate::codec::{self, CodecError, Decoder};
use crate::dsp::Resampler;
use crate::jitter::{JitterStats, SeqClass, Source};
use crate::packet::RtpHeader;
use crate::pipeline::{codec_rate, frame_samples, Received};
use crate::rtcp::ReportBlock;
use crate::{MediaError, StreamFormat};

use super::{g711_encode, PortCodec, PortFormat, PortFrame};

/// The longest run of missing packets filled with concealment; after a
/// longer one the stream just continues (the caller paused, or the network
/// did: made-up audio would only delay what is real).
const MAX_CONCEALED: i64 = 5;
/// The longest packet duration believed for a gap (Opus allows 120 ms);
/// timestamps further apart are a jump, not a loss.
const MAX_PACKET_MS: i64 = 120;

pub(super) struct Immediate {
    pt: u8,
    sequence: Sequence,
    convert: Convert,
}

impl Immediate {
    pub(super) fn new(format: &StreamFormat, port: PortFormat) -> Result<Immediate, MediaError> {
        let codec = format
            .codec
            .as_ref()
            .ok_or_else(|| CodecError::Unsupported(format.encoding.clone()))?;
        let clock_rate = format.clock_rate.max(1);
        let convert = if port.same_law(codec.kind) {
            Convert::Bytes {
                plc: codec::decoder(codec, 8000)?,
                codec: port.codec,
                pcm: Vec::with_capacity(frame_samples(8000) * 6),
            }
        } else {
            let decoder = codec::decoder(codec, codec_rate(codec, port.rate))?;
            let rate = decoder.rate();
            Convert::Decode {
                resampler: (rate != port.rate).then(|| Box::new(Resampler::new(rate, port.rate))),
                decoder,
                codec: port.codec,
                // Up to 120 ms at the decoder's rate.
                pcm: Vec::with_capacity(frame_samples(rate) * 6),
                resampled: Vec::with_capacity(frame_samples(port.rate) * 6),
            }
        };
        Ok(Immediate {
            pt: format.pt,
            sequence: Sequence::new(clock_rate),
            convert,
        })
    }

    /// Whether `pt` is the leg's voice payload type.
    pub(super) fn accepts(&self, pt: u8) -> bool {
        pt == self.pt
    }

    /// A packet of the voice codec: `emit` gets the concealment frames for
    /// the packets missing just before it, then its own frame; nothing when
    /// it is late or a duplicate.
    pub(super) fn push(
        &mut self,
        h: &RtpHeader,
        payload: &[u8],
        now: Instant,
        mut emit: impl FnMut(PortFrame),
    ) {
        let Some(gap) = self.sequence.admit(h, now) else {
            return;
        };
        for i in 0..gap.missing {
            // The packet right before this one may be in its in-band FEC.
            let next = (i + 1 == gap.missing).then_some(payload);
            if let Some(f) = self
                .convert
                .conceal(gap.per, self.sequence.clock_rate, next)
            {
                self.sequence.concealed += 1;
                emit(f);
            }
        }
        if let Some(f) = self.convert.packet(payload) {
            self.sequence.played += 1;
            emit(f);
        }
    }

    /// Another packet of the same stream (a telephone-event): it takes a
    /// sequence number, so it must not look like a lost audio packet.
    pub(super) fn observe(&mut self, h: &RtpHeader, now: Instant) {
        let _ = self.sequence.admit(h, now);
    }
}

impl Received for Immediate {
    fn stats(&self) -> JitterStats {
        self.sequence.stats()
    }

    fn report_block(&mut self, lsr: u32, dlsr: u32) -> Option<ReportBlock> {
        let src = self.sequence.src.as_mut()?;
        Some(ReportBlock {
            ssrc: src.ssrc,
            fraction_lost: src.take_fraction(),
            cumulative_lost: src
                .cumulative_lost()
                .clamp(i32::MIN.into(), i32::MAX.into()) as i32,
            highest_seq: src.highest_seq(),
            jitter: src.jitter as u32,
            lsr,
            dlsr,
        })
    }
}

/// Packets missing before one to play: `missing` to conceal, `per` RTP
/// ticks each.
struct Gap {
    missing: i64,
    per: u32,
}

/// Where each packet falls in the stream, and the counters of
/// [`JitterStats`] that apply without a buffer.
struct Sequence {
    clock_rate: u32,
    src: Option<Source>,
    /// After a sequence jump: the number that confirms a restart (RFC 3550
    /// A.1), as in the jitter buffer.
    bad_seq: Option<u16>,
    /// Reference for arrival times (interarrival jitter).
    epoch: Option<Instant>,
    received: u64,
    played: u64,
    lost: u64,
    late: u64,
    duplicates: u64,
    concealed: u64,
}

impl Sequence {
    fn new(clock_rate: u32) -> Sequence {
        Sequence {
            clock_rate,
            src: None,
            bad_seq: None,
            epoch: None,
            received: 0,
            played: 0,
            lost: 0,
            late: 0,
            duplicates: 0,
            concealed: 0,
        }
    }

    /// Admits a packet: `None` to drop it (late, duplicate, or a jump not
    /// confirmed yet), else the gap before it.
    fn admit(&mut self, h: &RtpHeader, now: Instant) -> Option<Gap> {
        if self.src.as_ref().is_some_and(|s| s.ssrc != h.ssrc) {
            self.src = None;
            self.bad_seq = None;
        }
        let src = self
            .src
            .get_or_insert_with(|| Source::new(h.ssrc, h.seq, h.timestamp));
        let (ext, ts_u) = match src.classify(h.seq, h.timestamp) {
            SeqClass::Ok { ext, ts_u } => (ext, ts_u),
            SeqClass::Duplicate => {
                self.duplicates += 1;
                return None;
            }
            // One packet far off is garbage or very late; a marked one, or
            // the next one following it, is a restart.
            SeqClass::Jump if !h.marker && self.bad_seq != Some(h.seq) => {
                self.bad_seq = Some(h.seq.wrapping_add(1));
                return None;
            }
            SeqClass::Jump => {
                let src = self.src.insert(Source::new(h.ssrc, h.seq, h.timestamp));
                match src.classify(h.seq, h.timestamp) {
                    SeqClass::Ok { ext, ts_u } => (ext, ts_u),
                    _ => return None,
                }
            }
        };
        self.bad_seq = None;
        let src = self.src.as_mut()?;
        let highest = src.highest;
        let ts_gap = src.ts_jump(ts_u);
        let epoch = *self.epoch.get_or_insert(now);
        let transit = now.saturating_duration_since(epoch).as_secs_f64()
            * f64::from(self.clock_rate)
            - ts_u as f64;
        src.accept(ext, h.timestamp, ts_u, transit);
        self.received += 1;
        if ext <= highest {
            self.late += 1;
            return None;
        }
        let missing = ext - highest - 1;
        self.lost += missing as u64;
        let per = ts_gap / (missing + 1);
        let max_per = i64::from(self.clock_rate) * MAX_PACKET_MS / 1000;
        let conceal = (1..=MAX_CONCEALED).contains(&missing) && (1..=max_per).contains(&per);
        Some(Gap {
            missing: if conceal { missing } else { 0 },
            per: per.clamp(0, max_per) as u32,
        })
    }

    fn stats(&self) -> JitterStats {
        let mut stats = JitterStats {
            received: self.received,
            played: self.played,
            lost: self.lost,
            late: self.late,
            duplicates: self.duplicates,
            concealed: self.concealed,
            ..JitterStats::default()
        };
        if let Some(src) = &self.src {
            stats.jitter_ms = src.jitter * 1000.0 / f64::from(self.clock_rate);
            stats.highest_seq = src.highest_seq();
            stats.base_seq = src.base_seq();
            stats.expected = src.expected();
            stats.cumulative_lost = src.cumulative_lost();
            stats.fraction_lost = src.fraction();
        }
        stats
    }
}

/// One packet's payload (or a missing packet) → a frame in the port format.
/// Scratch buffers are reused; only the frame handed over is allocated.
enum Convert {
    /// Decoded (concealment from the decoder), resampled to the port rate;
    /// for a G.711 port then companded.
    Decode {
        decoder: Box<dyn Decoder>,
        resampler: Option<Box<Resampler>>,
        codec: PortCodec,
        pcm: Vec<i16>,
        resampled: Vec<i16>,
    },
    /// A G.711 port on a leg of the same law: payload bytes untouched. A
    /// G.711 decoder learns from every payload only to conceal losses.
    Bytes {
        plc: Box<dyn Decoder>,
        codec: PortCodec,
        pcm: Vec<i16>,
    },
}

impl Convert {
    fn packet(&mut self, payload: &[u8]) -> Option<PortFrame> {
        match self {
            Convert::Decode { decoder, pcm, .. } => {
                pcm.clear();
                if decoder.decode(payload, pcm).is_err() {
                    // Garbage still took its 20 ms: keep the timing.
                    let n = frame_samples(decoder.rate());
                    decoder.conceal(n, pcm);
                }
                self.output()
            }
            Convert::Bytes { plc, pcm, .. } => {
                if payload.is_empty() {
                    return None;
                }
                pcm.clear();
                // Only to keep the concealment's history current.
                let _ = plc.decode(payload, pcm);
                Some(PortFrame::G711(payload.to_vec()))
            }
        }
    }

    /// A frame standing in for a missing packet of `ticks` RTP clock ticks;
    /// `next` is the packet after it (Opus may recover it from its FEC).
    fn conceal(&mut self, ticks: u32, clock_rate: u32, next: Option<&[u8]>) -> Option<PortFrame> {
        match self {
            Convert::Decode { decoder, pcm, .. } => {
                let n = samples(ticks, decoder.rate(), clock_rate);
                pcm.clear();
                let recovered = next.is_some_and(|next| decoder.recover(next, n, pcm));
                if !recovered {
                    decoder.conceal(n, pcm);
                }
                self.output()
            }
            Convert::Bytes { plc, codec, pcm } => {
                pcm.clear();
                plc.conceal(samples(ticks, plc.rate(), clock_rate), pcm);
                let mut bytes = Vec::with_capacity(pcm.len());
                g711_encode(*codec, pcm, &mut bytes);
                (!bytes.is_empty()).then_some(PortFrame::G711(bytes))
            }
        }
    }

    /// The decoded `pcm` in the port format.
    fn output(&mut self) -> Option<PortFrame> {
        let Convert::Decode {
            resampler,
            codec,
            pcm,
            resampled,
            ..
        } = self
        else {
            return None;
        };
        let frame = match (codec, resampler) {
            (PortCodec::Pcm16, Some(r)) => {
                let mut out = Vec::with_capacity(
                    r.to_rate() as usize * pcm.len() / r.from_rate() as usize + 2,
                );
                r.process(pcm, &mut out);
                PortFrame::Pcm(out)
            }
            (PortCodec::Pcm16, None) => PortFrame::Pcm(pcm.clone()),
            (law, resampler) => {
                let pcm = match resampler {
                    Some(r) => {
                        resampled.clear();
                        r.process(pcm, resampled);
                        &resampled[..]
                    }
                    None => &pcm[..],
                };
                let mut bytes = Vec::with_capacity(pcm.len());
                g711_encode(*law, pcm, &mut bytes);
                PortFrame::G711(bytes)
            }
        };
        let empty = match &frame {
            PortFrame::Pcm(s) => s.is_empty(),
            PortFrame::G711(b) => b.is_empty(),
        };
        (!empty).then_some(frame)
    }
}

/// `ticks` of an RTP clock at `clock_rate` in samples at `rate`.
fn samples(ticks: u32, rate: u32, clock_rate: u32) -> usize {
    (u64::from(ticks) * u64::from(rate) / u64::from(clock_rate.max(1))) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Codec;

    /// A G.711 port on a PCMU leg: each packet's payload is 160 copies of
    /// one byte, so frames tell which packet they are.
    fn port() -> Immediate {
        let format = StreamFormat::of(Codec::pcmu(), 0);
        Immediate::new(&format, PortFormat::pcmu()).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Pushes (seq, ts, ssrc, marker) packets whose payload byte is the low
    /// byte of seq; returns the frames: `Some(byte)` for a packet's own,
    /// `None` for concealment.
    fn push(p: &mut Immediate, pkts: &[(u16, u32, u32, bool)]) -> Vec<Option<u8>> {
        let mut frames = Vec::new();
        let now = Instant::now();
        for &(seq, timestamp, ssrc, marker) in pkts {
            let h = RtpHeader {
                seq,
                timestamp,
                ssrc,
                pt: 0,
                marker,
                payload_offset: 0,
                payload_end: 160,
            };
            let payload = [seq as u8; 160];
            p.push(&h, &payload, now, |f| {
                let PortFrame::G711(b) = f else {
                    panic!("G.711 port, PCM frame");
                };
                assert_eq!(b.len(), 160, "20 ms frames");
                frames.push((b == payload).then_some(seq as u8));
            });
        }
        frames
    }

    #[test]
    fn gaps_up_to_five_are_concealed_longer_ones_and_jumps_continue() {
        let mut p = port();
        let got = push(&mut p, &[(1, 0, 7, false), (7, 960, 7, false)]);
        assert_eq!(got, [Some(1), None, None, None, None, None, Some(7)]);
        let got = push(&mut p, &[(14, 2080, 7, false)]);
        assert_eq!(got, [Some(14)], "six missing: no concealment");
        // One missing, but the timestamp moved 10 s: not a loss to fill.
        let got = push(&mut p, &[(16, 82_080, 7, false)]);
        assert_eq!(got, [Some(16)]);
        let stats = p.stats();
        assert_eq!((stats.lost, stats.concealed, stats.played), (12, 5, 4));
    }

    #[test]
    fn a_new_ssrc_continues_a_sequence_jump_waits_for_confirmation() {
        let mut p = port();
        // A new SSRC is a new stream: no gap, nothing late.
        let got = push(&mut p, &[(100, 0, 1, false), (5, 9_999, 2, false)]);
        assert_eq!(got, [Some(100), Some(5)]);
        // Far off without a marker: dropped until the next one follows it.
        let got = push(&mut p, &[(20_000, 50_000, 2, false)]);
        assert_eq!(got, []);
        let got = push(&mut p, &[(20_001, 50_160, 2, false)]);
        assert_eq!(got, [Some(20_001_u16 as u8)]);
        // With a marker, at once.
        let got = push(&mut p, &[(40_000, 90_000, 2, true)]);
        assert_eq!(got, [Some(40_000_u16 as u8)]);
        // Packets behind it are late, again is a duplicate.
        let got = push(
            &mut p,
            &[(39_999, 89_840, 2, false), (40_000, 90_000, 2, false)],
        );
        assert_eq!(got, []);
        let stats = p.stats();
        assert_eq!((stats.late, stats.duplicates), (1, 1));
    }
}

//! ITU-T G.711 µ-law and A-law, table-driven and bit-exact with the ITU-T
//! G.191 STL reference (`ulaw_compress`, `alaw_compress`, `ulaw_expand`,
//! `alaw_expand` in `g711.c`), on the 16-bit linear scale.
//!
//! Decoding is one lookup in a 256-entry table. Encoding is one lookup in a
//! table indexed by the significant top bits of the sample: the STL works
//! on the 1's complement of negative samples, and since `!(x >> n)` equals
//! `(!x) >> n` for an arithmetic shift, the code only depends on `x >> 2`
//! (µ-law, 14 bits → 16384 entries) or `x >> 4` (A-law, 12 bits → 4096
//! entries). All tables are built at compile time by `const fn`s.
//!
//! [`G711Decoder`] adds packet loss concealment in the spirit of G.711
//! Appendix I (simplified): the last pitch period of the decoded history is
//! repeated, unattenuated for 10 ms, then faded linearly (−20 % per 10 ms) to
//! silence at 60 ms; the first good frame after a loss is cross-faded in
//! over 4 ms.

use super::{CodecError, Decoder, Encoder};

/// µ-law code of a 14-bit two's-complement sample (`x >> 2`), per the STL.
const fn ulaw_code(x14: i32) -> u8 {
    let negative = x14 < 0;
    let magnitude = if negative { !x14 } else { x14 };
    let mut absno = magnitude + 33;
    if absno > 0x1FFF {
        absno = 0x1FFF;
    }
    // Segment 1..=8: one plus the bit length of absno / 64.
    let segno = 1 + (32 - ((absno >> 6) as u32).leading_zeros()) as i32;
    let low_nibble = 0xF - ((absno >> segno) & 0xF);
    let mut code = ((8 - segno) << 4) | low_nibble;
    if !negative {
        code |= 0x80;
    }
    code as u8
}

/// A-law code of a 12-bit two's-complement sample (`x >> 4`), per the STL.
const fn alaw_code(x12: i32) -> u8 {
    let negative = x12 < 0;
    let magnitude = if negative { !x12 } else { x12 };
    let mut code = if magnitude > 15 {
        // Exponent 1..=7: the bit length of magnitude / 16.
        let exponent = (32 - ((magnitude >> 4) as u32).leading_zeros()) as i32;
        (exponent << 4) | ((magnitude >> (exponent - 1)) & 0xF)
    } else {
        magnitude
    };
    if !negative {
        code |= 0x80;
    }
    (code ^ 0x55) as u8
}

/// Linear value (16-bit scale) of a µ-law code.
const fn ulaw_value(code: u8) -> i16 {
    let c = !code as i32;
    let exponent = (c >> 4) & 7;
    let mantissa = c & 0xF;
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    if c & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// Linear value (16-bit scale) of an A-law code.
const fn alaw_value(code: u8) -> i16 {
    let c = (code ^ 0x55) as i32;
    let exponent = (c >> 4) & 7;
    let mantissa = c & 0xF;
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    if c & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

const fn build_ulaw_encode() -> [u8; 16384] {
    let mut table = [0u8; 16384];
    let mut i = 0;
    while i < 16384 {
        // Index is `(x as u16) >> 2`: the upper half holds negative samples.
        let x14 = if i >= 8192 { i - 16384 } else { i };
        table[i as usize] = ulaw_code(x14);
        i += 1;
    }
    table
}

const fn build_alaw_encode() -> [u8; 4096] {
    let mut table = [0u8; 4096];
    let mut i = 0;
    while i < 4096 {
        let x12 = if i >= 2048 { i - 4096 } else { i };
        table[i as usize] = alaw_code(x12);
        i += 1;
    }
    table
}

const fn build_decode(ulaw: bool) -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = if ulaw {
            ulaw_value(i as u8)
        } else {
            alaw_value(i as u8)
        };
        i += 1;
    }
    table
}

static ULAW_ENCODE: [u8; 16384] = build_ulaw_encode();
static ALAW_ENCODE: [u8; 4096] = build_alaw_encode();
static ULAW_DECODE: [i16; 256] = build_decode(true);
static ALAW_DECODE: [i16; 256] = build_decode(false);

/// Encodes one 16-bit linear sample to µ-law.
#[inline]
pub fn ulaw_encode(s: i16) -> u8 {
    ULAW_ENCODE[usize::from(s as u16 >> 2)]
}

/// Decodes one µ-law code to 16-bit linear.
#[inline]
pub fn ulaw_decode(c: u8) -> i16 {
    ULAW_DECODE[usize::from(c)]
}

/// Encodes one 16-bit linear sample to A-law.
#[inline]
pub fn alaw_encode(s: i16) -> u8 {
    ALAW_ENCODE[usize::from(s as u16 >> 4)]
}

/// Decodes one A-law code to 16-bit linear.
#[inline]
pub fn alaw_decode(c: u8) -> i16 {
    ALAW_DECODE[usize::from(c)]
}

/// Appends the µ-law encoding of `pcm` to `out`.
pub fn encode_ulaw(pcm: &[i16], out: &mut Vec<u8>) {
    out.extend(pcm.iter().map(|&s| ulaw_encode(s)));
}

/// Appends the linear decoding of µ-law `bytes` to `out`.
pub fn decode_ulaw(bytes: &[u8], out: &mut Vec<i16>) {
    out.extend(bytes.iter().map(|&c| ulaw_decode(c)));
}

/// Appends the A-law encoding of `pcm` to `out`.
pub fn encode_alaw(pcm: &[i16], out: &mut Vec<u8>) {
    out.extend(pcm.iter().map(|&s| alaw_encode(s)));
}

/// Appends the linear decoding of A-law `bytes` to `out`.
pub fn decode_alaw(bytes: &[u8], out: &mut Vec<i16>) {
    out.extend(bytes.iter().map(|&c| alaw_decode(c)));
}

/// Which G.711 companding law.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Law {
    Ulaw,
    Alaw,
}

/// G.711 decoder (8 kHz) with Appendix-I-style concealment.
pub(crate) struct G711Decoder {
    law: Law,
    plc: Plc,
}

impl G711Decoder {
    pub(crate) fn new(law: Law, rate: u32) -> Result<Self, CodecError> {
        if rate != 8000 {
            return Err(CodecError::UnsupportedRate(rate));
        }
        Ok(G711Decoder {
            law,
            plc: Plc::default(),
        })
    }
}

impl Decoder for G711Decoder {
    fn rate(&self) -> u32 {
        8000
    }

    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, CodecError> {
        let start = out.len();
        match self.law {
            Law::Ulaw => decode_ulaw(payload, out),
            Law::Alaw => decode_alaw(payload, out),
        }
        self.plc.good(&mut out[start..]);
        Ok(payload.len())
    }

    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        self.plc.conceal(samples, out);
    }

    fn recover(&mut self, _next: &[u8], _samples: usize, _out: &mut Vec<i16>) -> bool {
        false
    }

    fn samples_in(&self, payload: &[u8]) -> Option<usize> {
        Some(payload.len())
    }
}

/// G.711 encoder (8 kHz).
pub(crate) struct G711Encoder {
    law: Law,
}

impl G711Encoder {
    pub(crate) fn new(law: Law, rate: u32) -> Result<Self, CodecError> {
        if rate != 8000 {
            return Err(CodecError::UnsupportedRate(rate));
        }
        Ok(G711Encoder { law })
    }
}

impl Encoder for G711Encoder {
    fn rate(&self) -> u32 {
        8000
    }

    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError> {
        match self.law {
            Law::Ulaw => encode_ulaw(pcm, out),
            Law::Alaw => encode_alaw(pcm, out),
        }
        Ok(())
    }
}

/// History kept for concealment: 48.75 ms, as in G.711 Appendix I.
const HISTORY: usize = 390;
/// Pitch search range, 5..15 ms at 8 kHz.
const PITCH_MIN: usize = 40;
const PITCH_MAX: usize = 120;
/// Correlation window for the pitch search (20 ms).
const CORR_LEN: usize = 160;
/// Concealed samples played unattenuated (10 ms).
const FLAT: usize = 80;
/// Samples over which the gain then falls to zero (50 ms: −20 % per 10 ms).
const FADE: usize = 400;
/// Cross-fade from concealment back into real audio (4 ms).
const MERGE: usize = 32;

/// Packet loss concealment state for 8 kHz PCM.
#[derive(Default)]
pub(crate) struct Plc {
    /// The last up to [`HISTORY`] samples of real (or merged) audio.
    history: Vec<i16>,
    /// Samples concealed in the current loss burst (0: not concealing).
    lost: usize,
    /// The pitch period being repeated, taken from the history.
    period: Vec<i16>,
    /// Position in `period` of the next concealment sample.
    phase: usize,
}

impl Plc {
    /// Gain (out of 1.0) of the `n`th concealed sample of a loss burst.
    fn gain(n: usize) -> f32 {
        if n < FLAT {
            1.0
        } else if n < FLAT + FADE {
            1.0 - (n - FLAT) as f32 / FADE as f32
        } else {
            0.0
        }
    }

    /// The next synthetic sample; advances the concealment.
    fn next_synthetic(&mut self) -> i16 {
        let value = if self.period.is_empty() {
            0.0
        } else {
            let v = self.period[self.phase];
            self.phase = (self.phase + 1) % self.period.len();
            f32::from(v) * Self::gain(self.lost)
        };
        self.lost += 1;
        value as i16
    }

    /// Takes in decoded audio, merging it with the concealment if a loss
    /// just ended, and records it as history.
    pub(crate) fn good(&mut self, pcm: &mut [i16]) {
        if self.lost > 0 {
            let n = pcm.len().min(MERGE);
            for (i, sample) in pcm.iter_mut().take(n).enumerate() {
                let synthetic = f32::from(self.next_synthetic());
                let w = (i + 1) as f32 / (MERGE + 1) as f32;
                *sample = (synthetic * (1.0 - w) + f32::from(*sample) * w) as i16;
            }
            self.lost = 0;
        }
        if pcm.len() >= HISTORY {
            self.history.clear();
            self.history.extend_from_slice(&pcm[pcm.len() - HISTORY..]);
        } else {
            let excess = (self.history.len() + pcm.len()).saturating_sub(HISTORY);
            self.history.drain(..excess);
            self.history.extend_from_slice(pcm);
        }
    }

    /// Appends `samples` concealment samples to `out`.
    pub(crate) fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        if self.lost == 0 {
            let period = pitch_period(&self.history);
            self.period.clear();
            self.period
                .extend_from_slice(&self.history[self.history.len() - period..]);
            self.phase = 0;
        }
        out.reserve(samples);
        for _ in 0..samples {
            let s = self.next_synthetic();
            out.push(s);
        }
    }
}

/// The pitch period (in samples) that best predicts the end of `history`
/// from itself, searched over 5..15 ms; the whole history when it is too
/// short to search.
fn pitch_period(history: &[i16]) -> usize {
    let n = history.len();
    if n < CORR_LEN + PITCH_MAX {
        return n.min(CORR_LEN);
    }
    let target = &history[n - CORR_LEN..];
    let mut best = (PITCH_MIN, f64::MIN);
    for p in PITCH_MIN..=PITCH_MAX {
        let lagged = &history[n - CORR_LEN - p..n - p];
        let (mut corr, mut energy) = (0i64, 0i64);
        for (&a, &b) in target.iter().zip(lagged) {
            corr += i64::from(a) * i64::from(b);
            energy += i64::from(b) * i64::from(b);
        }
        let score = if energy == 0 {
            0.0
        } else {
            corr as f64 * (corr as f64).abs() / energy as f64
        };
        if score > best.1 {
            best = (p, score);
        }
    }
    best.0
}

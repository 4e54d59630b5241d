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
//! [`G711Decoder`] conceals lost packets with [`Plc`], in the spirit of
//! G.711 Appendix I.

use super::plc::Plc;
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
            plc: Plc::new(8000),
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

//! G.711 tests against an independent transcription of the ITU-T G.191 STL
//! reference (`g711.c`) and against values from G.711 Tables 1a/2a.

use super::g711::*;
use super::{decoder, Codec};
use crate::dsp::measure::{rms, tone};

/// STL `alaw_compress` for one sample, transcribed loop for loop.
fn stl_alaw_compress(lin: i16) -> u8 {
    let mut ix: i16 = if lin < 0 { (!lin) >> 4 } else { lin >> 4 };
    if ix > 15 {
        let mut iexp: i16 = 1;
        while ix > 16 + 15 {
            ix >>= 1;
            iexp += 1;
        }
        ix -= 16;
        ix += iexp << 4;
    }
    if lin >= 0 {
        ix |= 0x0080;
    }
    (ix ^ 0x0055) as u8
}

/// STL `alaw_expand` for one code.
fn stl_alaw_expand(log: u8) -> i16 {
    let mut ix = i16::from(log) ^ 0x0055;
    ix &= 0x007F;
    let iexp = ix >> 4;
    let mut mant = ix & 0x000F;
    if iexp > 0 {
        mant += 16;
    }
    mant = (mant << 4) + 0x0008;
    if iexp > 1 {
        mant <<= iexp - 1;
    }
    if log > 127 {
        mant
    } else {
        -mant
    }
}

/// STL `ulaw_compress` for one sample.
fn stl_ulaw_compress(lin: i16) -> u8 {
    let mut absno: i16 = if lin < 0 {
        ((!lin) >> 2) + 33
    } else {
        (lin >> 2) + 33
    };
    if absno > 0x1FFF {
        absno = 0x1FFF;
    }
    let mut i = absno >> 6;
    let mut segno: i16 = 1;
    while i != 0 {
        segno += 1;
        i >>= 1;
    }
    let high_nibble = 0x0008 - segno;
    let mut low_nibble = (absno >> segno) & 0x000F;
    low_nibble = 0x000F - low_nibble;
    let mut log = (high_nibble << 4) | low_nibble;
    if lin >= 0 {
        log |= 0x0080;
    }
    log as u8
}

/// STL `ulaw_expand` for one code.
fn stl_ulaw_expand(log: u8) -> i16 {
    let log = i16::from(log);
    let sign: i16 = if log < 0x0080 { -1 } else { 1 };
    let mut mantissa = !log;
    let exponent = (mantissa >> 4) & 0x0007;
    let segment = exponent + 1;
    mantissa &= 0x000F;
    let step: i16 = 4 << segment;
    sign * ((0x0080 << exponent) + step * mantissa + step / 2 - 4 * 33)
}

#[test]
fn decode_tables_match_stl_expand_for_all_codes() {
    for c in 0..=255u8 {
        assert_eq!(ulaw_decode(c), stl_ulaw_expand(c), "µ-law code {c:#04x}");
        assert_eq!(alaw_decode(c), stl_alaw_expand(c), "A-law code {c:#04x}");
    }
}

#[test]
fn decode_spot_values_from_g711_tables() {
    // Table 2a (µ-law), decoder output values on the 14-bit scale (x4 for
    // 16-bit): 8031 at the top, 0 for the zero characters, the first
    // segment in steps of 2 (0, 2, ..., 30), 33 opening the second, 4191
    // opening the last.
    let ulaw = [
        (0x80u8, 8031 * 4),
        (0x00, -8031 * 4),
        (0xFF, 0),
        (0x7F, 0),
        (0xFE, 2 * 4),
        (0x7E, -2 * 4),
        (0xF0, 30 * 4),
        (0xEF, 33 * 4),
        (0x8F, 4191 * 4),
    ];
    for (code, value) in ulaw {
        assert_eq!(i32::from(ulaw_decode(code)), value, "µ-law {code:#04x}");
    }
    // Table 1a (A-law, even bits inverted on the line), decoder outputs on
    // the 12-bit-magnitude scale (x8 for 16-bit): 1 for the smallest
    // characters, 3 next, 33 opening segment 2, 2112 opening the last
    // segment, 4032 at the top.
    let alaw = [
        (0xD5u8, 8),
        (0x55, -8),
        (0xD4, 3 * 8),
        (0xC5, 33 * 8),
        (0xA5, 2112 * 8),
        (0xAA, 4032 * 8),
        (0x2A, -4032 * 8),
    ];
    for (code, value) in alaw {
        assert_eq!(i32::from(alaw_decode(code)), value, "A-law {code:#04x}");
    }
}

#[test]
fn encode_matches_stl_compress_for_all_inputs() {
    for x in i16::MIN..=i16::MAX {
        assert_eq!(ulaw_encode(x), stl_ulaw_compress(x), "µ-law of {x}");
        assert_eq!(alaw_encode(x), stl_alaw_compress(x), "A-law of {x}");
    }
}

#[test]
fn encode_spot_values() {
    assert_eq!(ulaw_encode(0), 0xFF);
    assert_eq!(ulaw_encode(-1), 0x7F);
    assert_eq!(ulaw_encode(i16::MAX), 0x80);
    assert_eq!(ulaw_encode(i16::MIN), 0x00);
    assert_eq!(alaw_encode(0), 0xD5);
    assert_eq!(alaw_encode(-1), 0x55);
    assert_eq!(alaw_encode(i16::MAX), 0xAA);
    assert_eq!(alaw_encode(i16::MIN), 0x2A);
}

#[test]
fn round_trip_is_bit_exact_for_every_code() {
    for c in 0..=255u8 {
        let u = ulaw_decode(c);
        assert_eq!(ulaw_decode(ulaw_encode(u)), u, "µ-law code {c:#04x}");
        let a = alaw_decode(c);
        assert_eq!(alaw_decode(alaw_encode(a)), a, "A-law code {c:#04x}");
    }
}

#[test]
fn slice_helpers_match_scalar_functions() {
    let pcm: Vec<i16> = (0..400)
        .map(|i| ((i * 997) % 65536 - 32768) as i16)
        .collect();
    let (mut u, mut a) = (Vec::new(), Vec::new());
    encode_ulaw(&pcm, &mut u);
    encode_alaw(&pcm, &mut a);
    assert_eq!(u, pcm.iter().map(|&s| ulaw_encode(s)).collect::<Vec<_>>());
    assert_eq!(a, pcm.iter().map(|&s| alaw_encode(s)).collect::<Vec<_>>());
    let (mut du, mut da) = (vec![7i16], Vec::new());
    decode_ulaw(&u, &mut du);
    decode_alaw(&a, &mut da);
    assert_eq!(du[0], 7, "decode appends");
    assert_eq!(
        &du[1..],
        u.iter().map(|&c| ulaw_decode(c)).collect::<Vec<_>>()
    );
    assert_eq!(da, a.iter().map(|&c| alaw_decode(c)).collect::<Vec<_>>());
}

#[test]
fn plc_silent_before_audio_then_repeats_and_fades() {
    let mut dec = decoder(&Codec::pcmu(), 8000).expect("PCMU decoder");
    assert_eq!(dec.rate(), 8000);
    assert_eq!(dec.samples_in(&[0; 160]), Some(160));
    assert!(!dec.recover(&[0; 160], 160, &mut Vec::new()));
    let mut out = Vec::new();
    dec.conceal(160, &mut out);
    assert_eq!(out, vec![0; 160], "nothing decoded yet: silence");

    // A 500 Hz tone (period 16 samples) for 100 ms.
    let sent = tone(8000, 500.0, 8000.0, 0, 800);
    let mut payload = Vec::new();
    encode_ulaw(&sent, &mut payload);
    let mut decoded = Vec::new();
    for chunk in payload.chunks(160) {
        assert_eq!(dec.decode(chunk, &mut decoded).expect("decode"), 160);
    }
    let level = rms(&decoded[400..]);

    // Lose 80 ms.
    let mut lost = Vec::new();
    for _ in 0..4 {
        dec.conceal(160, &mut lost);
    }
    assert_eq!(lost.len(), 640);
    // First 10 ms: the waveform continues, unattenuated (same phase as a
    // continued tone, within µ-law quantisation).
    let continued = tone(8000, 500.0, 8000.0, 800, 80);
    for (i, (&s, &expect)) in lost[..80].iter().zip(&continued).enumerate() {
        assert!(
            (i32::from(s) - i32::from(expect)).abs() < 400,
            "sample {i}: {s} vs {expect}"
        );
    }
    let r = |a: usize, b: usize| rms(&lost[a..b]) / level;
    assert!(r(80, 160) > r(240, 320) && r(240, 320) > r(400, 480));
    assert!(r(160, 240) < 0.9 && r(160, 240) > 0.3);
    assert!(lost[480..].iter().all(|&s| s == 0), "silent after 60 ms");

    // Audio resumes: output is the decoded tone after the 4 ms merge.
    let mut resumed = Vec::new();
    dec.decode(&payload[..160], &mut resumed).expect("decode");
    let mut plain = Vec::new();
    decode_ulaw(&payload[..160], &mut plain);
    assert_eq!(&resumed[32..], &plain[32..]);
}

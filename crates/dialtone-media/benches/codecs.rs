//! Codec cost per 20 ms frame: G.711 (table-driven, against a same-run
//! formula baseline), Opus at narrowband, wideband and fullband, and G.722
//! (against G.711 and wideband Opus in the same run).
//!
//! Run: `cargo bench -p dialtone-media --bench codecs`
//! The input is a speech-like signal: a 120-180 Hz gliding voiced source
//! with 20 harmonics shaped by three formant peaks, a 4 Hz syllabic
//! envelope, and a little noise.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use dialtone_media::codec::{self, g711, Codec, OpusParams};
use std::f64::consts::PI;

/// Frames of input cycled through (1 s), so that no single frame dominates.
const FRAMES: usize = 50;

/// One second of speech-like mono PCM at `rate`.
fn speech_like(rate: u32) -> Vec<i16> {
    let rate_f = f64::from(rate);
    let formants = [(700.0, 1.0), (1200.0, 0.5), (2600.0, 0.25)];
    let mut noise_state: u32 = 0x1234_5678;
    let mut phase = 0.0f64;
    (0..rate as usize)
        .map(|i| {
            let t = i as f64 / rate_f;
            let f0 = 150.0 + 30.0 * (2.0 * PI * 0.7 * t).sin();
            phase += 2.0 * PI * f0 / rate_f;
            let mut voiced = 0.0;
            for h in 1..=20 {
                let f = f0 * f64::from(h);
                if f >= rate_f / 2.0 {
                    break;
                }
                let gain: f64 = formants
                    .iter()
                    .map(|&(fc, g)| g / (1.0 + ((f - fc) / 150.0).powi(2)))
                    .sum();
                voiced += gain * (phase * f64::from(h)).sin();
            }
            let envelope = 0.55 + 0.45 * (2.0 * PI * 4.0 * t).sin();
            noise_state = noise_state
                .wrapping_mul(1_664_525)
                .wrapping_add(1_013_904_223);
            let noise = f64::from(noise_state >> 16) / 65536.0 - 0.5;
            (envelope * 6000.0 * voiced + 300.0 * noise).clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}

/// Straightforward G.711 with segment searches (no lookup tables), bit-exact
/// with the STL; the baseline the table-driven codec is measured against.
mod formula {
    const ULAW_SEG_END: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];
    const ALAW_SEG_END: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];

    fn search(value: i32, ends: &[i32; 8]) -> usize {
        ends.iter().position(|&end| value <= end).unwrap_or(8)
    }

    pub fn ulaw_encode(s: i16) -> u8 {
        let x = i32::from(s);
        let (magnitude, mask) = if x < 0 {
            (!x >> 2, 0x7F)
        } else {
            (x >> 2, 0xFF)
        };
        let biased = (magnitude + 33).min(0x1FFF);
        let seg = search(biased, &ULAW_SEG_END);
        let code = ((seg as i32) << 4) | ((biased >> (seg + 1)) & 0xF);
        (code ^ mask) as u8
    }

    pub fn ulaw_decode(c: u8) -> i16 {
        let c = !i32::from(c);
        let exponent = (c >> 4) & 7;
        let magnitude = ((((c & 0xF) << 3) + 0x84) << exponent) - 0x84;
        (if c & 0x80 != 0 { -magnitude } else { magnitude }) as i16
    }

    pub fn alaw_encode(s: i16) -> u8 {
        let x = i32::from(s);
        let (magnitude, mask) = if x < 0 {
            (!x >> 3, 0x55)
        } else {
            (x >> 3, 0xD5)
        };
        let seg = search(magnitude, &ALAW_SEG_END);
        let code = if seg < 2 {
            (seg as i32) << 4 | ((magnitude >> 1) & 0xF)
        } else {
            (seg as i32) << 4 | ((magnitude >> seg) & 0xF)
        };
        (code ^ mask) as u8
    }

    pub fn alaw_decode(c: u8) -> i16 {
        let c = i32::from(c) ^ 0x55;
        let exponent = (c >> 4) & 7;
        let mantissa = ((c & 0xF) << 4) + 8;
        let magnitude = match exponent {
            0 => mantissa,
            1 => mantissa + 0x100,
            e => (mantissa + 0x100) << (e - 1),
        };
        (if c & 0x80 != 0 { magnitude } else { -magnitude }) as i16
    }
}

type Group<'a> = criterion::BenchmarkGroup<'a, criterion::measurement::WallTime>;

/// Encoding one 20 ms frame per iteration, cycling through `frames`.
fn bench_encode(group: &mut Group<'_>, name: &str, frames: &[&[i16]], encode: impl Fn(i16) -> u8) {
    let mut out = Vec::with_capacity(160);
    let mut i = 0;
    group.bench_function(name, |b| {
        b.iter(|| {
            out.clear();
            out.extend(black_box(frames[i % FRAMES]).iter().map(|&s| encode(s)));
            i += 1;
            black_box(&out);
        })
    });
}

/// Decoding one 20 ms payload per iteration, cycling through `payloads`.
fn bench_decode(
    group: &mut Group<'_>,
    name: &str,
    payloads: &[Vec<u8>],
    decode: impl Fn(u8) -> i16,
) {
    let mut out = Vec::with_capacity(160);
    let mut i = 0;
    group.bench_function(name, |b| {
        b.iter(|| {
            out.clear();
            out.extend(black_box(&payloads[i % FRAMES]).iter().map(|&c| decode(c)));
            i += 1;
            black_box(&out);
        })
    });
}

fn bench_g711(c: &mut Criterion) {
    let pcm = speech_like(8000);
    let frames: Vec<&[i16]> = pcm.chunks_exact(160).collect();
    // The baseline must compute the same thing, or the comparison is moot.
    for s in i16::MIN..=i16::MAX {
        assert_eq!(formula::ulaw_encode(s), g711::ulaw_encode(s));
        assert_eq!(formula::alaw_encode(s), g711::alaw_encode(s));
    }
    for code in 0..=255u8 {
        assert_eq!(formula::ulaw_decode(code), g711::ulaw_decode(code));
        assert_eq!(formula::alaw_decode(code), g711::alaw_decode(code));
    }
    let payloads: Vec<Vec<u8>> = frames
        .iter()
        .map(|f| f.iter().map(|&s| g711::ulaw_encode(s)).collect())
        .collect();
    let alaw_payloads: Vec<Vec<u8>> = frames
        .iter()
        .map(|f| f.iter().map(|&s| g711::alaw_encode(s)).collect())
        .collect();

    // Each codec function is passed as its own (zero-sized) fn item type, so
    // it is monomorphised and inlined like in real use, not called through a
    // pointer per sample.
    let mut group = c.benchmark_group("g711_encode_20ms");
    bench_encode(&mut group, "pcmu_table", &frames, g711::ulaw_encode);
    bench_encode(&mut group, "pcmu_formula", &frames, formula::ulaw_encode);
    bench_encode(&mut group, "pcma_table", &frames, g711::alaw_encode);
    bench_encode(&mut group, "pcma_formula", &frames, formula::alaw_encode);
    group.finish();

    let mut group = c.benchmark_group("g711_decode_20ms");
    bench_decode(&mut group, "pcmu_table", &payloads, g711::ulaw_decode);
    bench_decode(&mut group, "pcmu_formula", &payloads, formula::ulaw_decode);
    bench_decode(&mut group, "pcma_table", &alaw_payloads, g711::alaw_decode);
    bench_decode(
        &mut group,
        "pcma_formula",
        &alaw_payloads,
        formula::alaw_decode,
    );
    group.finish();

    // The same through the boxed Decoder/Encoder the pipeline uses (adds the
    // PLC history bookkeeping and a virtual call).
    let mut group = c.benchmark_group("g711_trait_20ms");
    bench_codec(&mut group, "pcmu", &Codec::pcmu(), 8000);
    group.finish();
}

/// Encoding and decoding one 20 ms frame of speech-like PCM at `rate`
/// through the boxed [`codec::Encoder`] / [`codec::Decoder`] the pipeline
/// uses, as `encode/<label>` and `decode/<label>`.
fn bench_codec(group: &mut Group<'_>, label: &str, codec: &Codec, rate: u32) {
    let pcm = speech_like(rate);
    let frames: Vec<&[i16]> = pcm.chunks_exact(rate as usize / 50).collect();
    let mut enc = codec::encoder(codec, rate).expect("encoder");
    let packets: Vec<Vec<u8>> = frames
        .iter()
        .map(|f| {
            let mut p = Vec::new();
            enc.encode(f, &mut p).expect("encode");
            p
        })
        .collect();
    let mut out = Vec::with_capacity(1500);
    let mut i = 0;
    group.bench_function(BenchmarkId::new("encode", label), |b| {
        b.iter(|| {
            out.clear();
            enc.encode(black_box(frames[i % FRAMES]), &mut out)
                .expect("encode");
            i += 1;
        })
    });
    let mut dec = codec::decoder(codec, rate).expect("decoder");
    let mut pcm_out = Vec::with_capacity(960);
    let mut i = 0;
    group.bench_function(BenchmarkId::new("decode", label), |b| {
        b.iter(|| {
            pcm_out.clear();
            dec.decode(black_box(&packets[i % FRAMES]), &mut pcm_out)
                .expect("decode");
            i += 1;
        })
    });
}

fn bench_opus(c: &mut Criterion) {
    let configs = [
        ("nb_8k", 8000, 8000),
        ("wb_16k", 16000, 48000),
        ("fb_48k", 48000, 48000),
    ];
    let mut group = c.benchmark_group("opus_20ms");
    for (name, rate, max_playback_rate) in configs {
        let codec = Codec::opus(OpusParams {
            max_playback_rate,
            ..OpusParams::default()
        });
        bench_codec(&mut group, name, &codec, rate);
    }
    group.finish();
}

/// G.722 against the two codecs a call would use instead, in the same run:
/// G.711 (narrowband, the cheapest) and Opus at 16 kHz (the other wideband
/// codec).
fn bench_g722(c: &mut Criterion) {
    let mut group = c.benchmark_group("wideband_20ms");
    bench_codec(&mut group, "g722_16k", &Codec::g722(), 16000);
    bench_codec(
        &mut group,
        "opus_wb_16k",
        &Codec::opus(OpusParams::default()),
        16000,
    );
    bench_codec(&mut group, "pcmu_8k", &Codec::pcmu(), 8000);
    group.finish();
}

criterion_group!(benches, bench_g711, bench_opus, bench_g722);
criterion_main!(benches);

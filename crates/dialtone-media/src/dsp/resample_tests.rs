//! Tests of the polyphase resampler: levels, aliasing, streaming, lengths.

use super::*;
use crate::dsp::measure::{db, rms, tone};

const AMP: f64 = 16000.0;

/// Deterministic test signal: two tones plus pseudo-random noise.
fn mixed(rate: u32, len: usize) -> Vec<i16> {
    let mut seed: u32 = 0x1234_5678;
    let a = tone(rate, 440.0, 9000.0, 0, len);
    let b = tone(rate, 2900.0, 6000.0, 0, len);
    a.iter()
        .zip(&b)
        .map(|(&x, &y)| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let noise = i32::from((seed >> 16) as i16) / 8;
            (i32::from(x) + i32::from(y) + noise).clamp(-32768, 32767) as i16
        })
        .collect()
}

fn resample(from: u32, to: u32, input: &[i16]) -> (Resampler, Vec<i16>) {
    let mut r = Resampler::new(from, to);
    let mut out = Vec::new();
    r.process(input, &mut out);
    (r, out)
}

/// The output after the filter's start-up transient (2 × delay) and a margin.
fn steady<'a>(r: &Resampler, out: &'a [i16]) -> &'a [i16] {
    &out[2 * r.delay() + 16..]
}

/// Frequency from interpolated rising zero crossings.
fn zero_cross_freq(x: &[i16], rate: u32) -> f64 {
    let mut crossings = Vec::new();
    for n in 1..x.len() {
        let (a, b) = (f64::from(x[n - 1]), f64::from(x[n]));
        if a < 0.0 && b >= 0.0 {
            crossings.push((n - 1) as f64 + a / (a - b));
        }
    }
    assert!(crossings.len() >= 3, "too few zero crossings");
    let span = crossings[crossings.len() - 1] - crossings[0];
    (crossings.len() - 1) as f64 / span * f64::from(rate)
}

/// Least-squares fit of a sinusoid at `freq`: returns (rms of the fit, rms of the residual).
fn sine_fit(x: &[i16], rate: u32, freq: f64) -> (f64, f64) {
    let w = 2.0 * std::f64::consts::PI * freq / f64::from(rate);
    let (mut cc, mut cs, mut ss, mut yc, mut ys) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (n, &v) in x.iter().enumerate() {
        let (s, c) = (w * n as f64).sin_cos();
        let y = f64::from(v);
        cc += c * c;
        cs += c * s;
        ss += s * s;
        yc += y * c;
        ys += y * s;
    }
    let det = cc * ss - cs * cs;
    let a = (yc * ss - ys * cs) / det;
    let b = (ys * cc - yc * cs) / det;
    let mut res = 0.0;
    for (n, &v) in x.iter().enumerate() {
        let (s, c) = (w * n as f64).sin_cos();
        res += (f64::from(v) - a * c - b * s).powi(2);
    }
    (
        (a * a + b * b).sqrt() / 2f64.sqrt(),
        (res / x.len() as f64).sqrt(),
    )
}

const PAIRS: [(u32, u32); 8] = [
    (48000, 8000),
    (8000, 48000),
    (8000, 16000),
    (16000, 8000),
    (8000, 24000),
    (24000, 8000),
    (48000, 16000),
    (48000, 24000),
];

/// Checks level (±0.5 dB), frequency and purity of a resampled tone.
fn check_passband(from: u32, to: u32, freq: f64) {
    let input = tone(from, freq, AMP, 0, from as usize / 2);
    let (r, out) = resample(from, to, &input);
    let y = steady(&r, &out);
    let level = db(rms(y) / (AMP / 2f64.sqrt()));
    assert!(
        level.abs() <= 0.5,
        "{from}->{to} {freq} Hz: level {level:.3} dB"
    );
    let f = zero_cross_freq(y, to);
    assert!(
        (f / freq - 1.0).abs() < 1e-3,
        "{from}->{to} {freq} Hz: measured {f:.2} Hz"
    );
    // Everything but the tone (images, aliases, distortion) is well below it.
    let (fit, residual) = sine_fit(y, to, freq);
    let purity = db(residual / fit);
    assert!(
        purity < -50.0,
        "{from}->{to} {freq} Hz: residual {purity:.1} dB"
    );
}

#[test]
fn passband_tones_keep_level_and_frequency() {
    for (from, to) in PAIRS {
        let low_nyquist = f64::from(from.min(to)) / 2.0;
        for freq in [300.0, 1000.0, 0.8 * low_nyquist, 0.85 * low_nyquist] {
            check_passband(from, to, freq);
        }
    }
}

#[test]
fn stopband_tones_are_attenuated_40_db() {
    let cases: [(u32, u32, &[f64]); 5] = [
        (48000, 8000, &[5000.0, 6000.0, 10000.0, 20000.0]),
        (16000, 8000, &[5000.0, 7000.0]),
        (48000, 16000, &[9000.0, 12000.0]),
        (24000, 8000, &[5000.0, 9000.0]),
        (48000, 24000, &[13000.0, 20000.0]),
    ];
    for (from, to, freqs) in cases {
        for &freq in freqs {
            let input = tone(from, freq, AMP, 0, from as usize / 2);
            let (r, out) = resample(from, to, &input);
            let atten = -db(rms(steady(&r, &out)) / rms(&input));
            eprintln!("{from}->{to} {freq} Hz: {atten:.1} dB");
            assert!(atten >= 40.0, "{from}->{to} {freq} Hz: only {atten:.1} dB");
        }
    }
}

/// Spec check of the whole converter (cascades included): every tone from
/// the output Nyquist up to the input Nyquist is attenuated by at least 60 dB.
#[test]
fn stopband_sweep_at_least_60_db() {
    let pairs = [
        (48000, 8000),
        (16000, 8000),
        (24000, 8000),
        (48000, 16000),
        (48000, 24000),
        (32000, 8000),
        (44100, 8000),
        (48000, 44100),
    ];
    for (from, to) in pairs {
        let low_nyquist = f64::from(from.min(to)) / 2.0;
        let high = f64::from(from) / 2.0;
        let mut worst = f64::INFINITY;
        for i in 0..=160 {
            let freq = low_nyquist + (high - low_nyquist) * f64::from(i) / 160.5;
            let input = tone(from, freq, 30000.0, 0, from as usize / 10);
            let (r, out) = resample(from, to, &input);
            let atten = -db(rms(steady(&r, &out)) / rms(&input));
            assert!(
                atten >= 60.0,
                "{from}->{to} {freq:.0} Hz: only {atten:.1} dB"
            );
            worst = worst.min(atten);
        }
        eprintln!("{from}->{to}: stopband >= {worst:.1} dB");
    }
}

/// Spec check: flat (±0.1 dB) to 0.85 of the lower Nyquist, and whatever is
/// not the tone (images when upsampling) is at least 60 dB down.
#[test]
fn passband_sweep_flat_and_image_free() {
    let pairs = PAIRS
        .iter()
        .copied()
        .chain([(8000, 32000), (16000, 24000), (44100, 48000)]);
    for (from, to) in pairs {
        let edge = 0.85 * f64::from(from.min(to)) / 2.0;
        let (mut ripple, mut worst) = (0.0f64, f64::NEG_INFINITY);
        for i in 1..=20 {
            let freq = edge * f64::from(i) / 20.0;
            let input = tone(from, freq, AMP, 0, from as usize / 5);
            let (r, out) = resample(from, to, &input);
            let y = steady(&r, &out);
            let (fit, residual) = sine_fit(y, to, freq);
            ripple = ripple.max(db(fit / (AMP / 2f64.sqrt())).abs());
            worst = worst.max(db(residual / fit));
        }
        eprintln!("{from}->{to}: ripple {ripple:.3} dB, residual {worst:.1} dB");
        assert!(ripple <= 0.1, "{from}->{to}: ripple {ripple:.3} dB");
        assert!(worst <= -60.0, "{from}->{to}: residual {worst:.1} dB");
    }
}

#[test]
fn chunked_streaming_matches_one_call() {
    let pairs = PAIRS.iter().copied().chain([
        (44100, 48000),
        (48000, 44100),
        (8000, 11025),
        (16000, 24000),
    ]);
    for (from, to) in pairs {
        let input = mixed(from, from as usize);
        let (_, whole) = resample(from, to, &input);
        for chunk in [from as usize / 50, 7, 333, 1] {
            let mut r = Resampler::new(from, to);
            let mut out = Vec::new();
            for c in input.chunks(chunk) {
                r.process(c, &mut out);
            }
            assert!(out == whole, "{from}->{to} in chunks of {chunk} differs");
        }
    }
}

#[test]
fn output_length_is_exact() {
    for (from, to) in PAIRS
        .iter()
        .copied()
        .chain([(44100, 48000), (48000, 44100)])
    {
        let input = mixed(from, from as usize);
        let mut r = Resampler::new(from, to);
        let mut out = Vec::new();
        for c in input.chunks(from as usize / 50) {
            let before = out.len();
            r.process(c, &mut out);
            assert_eq!(
                out.len() - before,
                to as usize / 50,
                "{from}->{to} per 20 ms"
            );
        }
        assert_eq!(out.len(), to as usize, "{from}->{to} over 1 s");
        // Odd chunks: ceil(n * to / from) after every call.
        let mut r = Resampler::new(from, to);
        let mut out = Vec::new();
        let mut fed = 0u64;
        for c in input.chunks(333) {
            r.process(c, &mut out);
            fed += c.len() as u64;
            let expect = (fed * u64::from(to)).div_ceil(u64::from(from));
            assert_eq!(out.len() as u64, expect, "{from}->{to} after {fed}");
        }
    }
}

#[test]
fn same_rate_is_exact_pass_through() {
    let input = mixed(16000, 16000);
    let mut r = Resampler::new(16000, 16000);
    let mut out = vec![7];
    for c in input.chunks(333) {
        r.process(c, &mut out);
    }
    assert_eq!(out[0], 7, "appends");
    assert_eq!(&out[1..], &input[..]);
    assert_eq!(r.delay(), 0);
    assert_eq!((r.from_rate(), r.to_rate()), (16000, 16000));
}

#[test]
fn reset_forgets_history() {
    let input = mixed(48000, 4800);
    let mut r = Resampler::new(48000, 8000);
    let mut first = Vec::new();
    r.process(&input, &mut first);
    let mut second = Vec::new();
    r.reset();
    r.process(&input, &mut second);
    assert_eq!(first, second);
}

/// A full-scale square wave overshoots (Gibbs); the output must saturate,
/// never wrap around to the opposite sign.
#[test]
fn full_scale_square_saturates_without_wrapping() {
    for (from, to) in [(8000, 48000), (48000, 8000), (16000, 8000), (8000, 16000)] {
        let period = from as usize / 250;
        let square = |amp: i16| -> Vec<i16> {
            (0..from as usize)
                .map(|n| {
                    if (n / (period / 2)) % 2 == 1 {
                        -amp
                    } else {
                        amp
                    }
                })
                .collect()
        };
        let (_, full) = resample(from, to, &square(32767));
        let (_, half) = resample(from, to, &square(16384));
        let mut clipped = 0;
        for (n, (&f, &h)) in full.iter().zip(&half).enumerate() {
            let ideal = (2.0 * f64::from(h)).clamp(-32768.0, 32767.0);
            assert!(
                (f64::from(f) - ideal).abs() <= 8.0,
                "{from}->{to} sample {n}: {f} vs {ideal}"
            );
            clipped += usize::from(f == i16::MAX || f == i16::MIN);
        }
        assert!(
            clipped > 0,
            "{from}->{to}: the overshoot never reached full scale"
        );
    }
}

#[test]
fn cd_rate_to_48k_length_and_level() {
    for (from, to) in [(44100, 48000), (48000, 44100)] {
        let mut r = Resampler::new(from, to);
        let input = tone(from, 1000.0, AMP, 0, from as usize);
        let mut out = Vec::new();
        for c in input.chunks(from as usize / 50) {
            r.process(c, &mut out);
        }
        assert_eq!(out.len(), to as usize);
        let y = steady(&r, &out);
        let level = db(rms(y) / (AMP / 2f64.sqrt()));
        assert!(level.abs() <= 0.5, "{from}->{to}: level {level:.3} dB");
        let f = zero_cross_freq(y, to);
        assert!((f / 1000.0 - 1.0).abs() < 1e-3, "{from}->{to}: {f:.2} Hz");
    }
}

#[test]
fn ratios_and_stages() {
    let stages = |r: &Resampler| match &r.chain {
        Chain::Copy => vec![],
        Chain::One(s) => vec![(s.up, s.down, s.k)],
        Chain::Two(a, b) => vec![(a.up, a.down, a.k), (b.up, b.down, b.k)],
    };
    // (from, to, [(L, M, taps per phase) per stage])
    type Case = (u32, u32, &'static [(usize, usize, usize)]);
    let cases: [Case; 8] = [
        (44100, 48000, &[(160, 147, 56)]),
        (48000, 44100, &[(147, 160, 64)]),
        (16000, 24000, &[(3, 2, 56)]),
        (24000, 8000, &[(1, 3, 160)]),
        (48000, 16000, &[(1, 3, 160)]),
        (48000, 8000, &[(1, 3, 24), (1, 2, 112)]),
        (8000, 48000, &[(2, 1, 56), (3, 1, 8)]),
        (8000, 8000, &[]),
    ];
    for (from, to, expect) in cases {
        assert_eq!(stages(&Resampler::new(from, to)), expect, "{from}->{to}");
    }
    let r = Resampler::new(48000, 8000);
    // Stage 1 centre (24-1)/2 at 48k = 3.83 at 16k; stage 2 (112-1)/2/2 at 8k.
    assert_eq!(
        r.delay(),
        (23.0 / 2.0 / 3.0 / 2.0 + 111.0 / 4.0_f64).round() as usize
    );
}

/// The reported delay is where a click comes out.
#[test]
fn delay_matches_impulse_peak() {
    for (from, to) in PAIRS {
        let mut input = vec![0i16; from as usize / 10];
        input[0] = 30000;
        let (r, out) = resample(from, to, &input);
        let peak = (0..out.len())
            .max_by_key(|&n| out[n].unsigned_abs())
            .unwrap_or(0);
        assert!(
            peak.abs_diff(r.delay()) <= 1,
            "{from}->{to}: peak at {peak}, delay {}",
            r.delay()
        );
    }
}

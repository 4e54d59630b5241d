//! Signal generation and measurement on 16-bit PCM: sine tones, RMS level,
//! decibels, the power or amplitude of one frequency (Goertzel) and the
//! strongest frequency in a band. Small and allocation-light, for tone
//! detection as well as for checking what a codec or resampler produced.

use std::f64::consts::PI;

/// `n` samples of a sine of `freq` Hz and peak `amplitude` at `rate`,
/// starting at sample index `start` (so consecutive calls continue the
/// phase): sample `i` is `amplitude · sin(2π · freq · (start + i) / rate)`,
/// rounded and saturated to 16 bits.
pub fn tone(rate: u32, freq: f64, amplitude: f64, start: usize, n: usize) -> Vec<i16> {
    let rate = f64::from(rate);
    (start..start + n)
        .map(|i| {
            let v = amplitude * (2.0 * PI * freq * i as f64 / rate).sin();
            v.round().clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16
        })
        .collect()
}

/// Root mean square of `x` (0 for no samples).
pub fn rms(x: &[i16]) -> f64 {
    if x.is_empty() {
        return 0.0;
    }
    let sum: f64 = x.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / x.len() as f64).sqrt()
}

/// An amplitude ratio in dB: `20 · log10(ratio)`.
pub fn db(ratio: f64) -> f64 {
    20.0 * ratio.log10()
}

/// Goertzel power of `x` at `freq` Hz (any frequency, not only bin
/// centres): `|DFT(x)(freq)|²`, with no window.
pub fn goertzel(x: &[i16], rate: u32, freq: f64) -> f64 {
    power(x.iter().map(|&s| f64::from(s)), rate, freq)
}

/// [`goertzel`] of `x` under a Hann window: far less leakage from
/// neighbouring tones and from a segment that cuts a tone off mid-cycle.
pub fn goertzel_windowed(x: &[i16], rate: u32, freq: f64) -> f64 {
    power(hann(x).0.iter().copied(), rate, freq)
}

/// The peak amplitude (same scale as the samples) of the component of `x`
/// at `freq` Hz, measured under a Hann window (0 for fewer than 2 samples).
pub fn tone_amplitude(x: &[i16], rate: u32, freq: f64) -> f64 {
    if x.len() < 2 {
        return 0.0;
    }
    let (xs, sum) = hann(x);
    2.0 * power(xs.iter().copied(), rate, freq).max(0.0).sqrt() / sum
}

/// The frequency in `lo..=hi` Hz with the most power in `x` (Hann-windowed):
/// a 10 Hz scan from `lo`, then 0.1 Hz steps within ±10 Hz of the best.
pub fn dominant_frequency(x: &[i16], rate: u32, lo: f64, hi: f64) -> f64 {
    let (xs, _) = hann(x);
    let best = |freqs: &mut dyn Iterator<Item = f64>| {
        freqs
            .map(|f| (f, power(xs.iter().copied(), rate, f)))
            .fold((lo, f64::MIN), |a, b| if b.1 > a.1 { b } else { a })
            .0
    };
    let steps = ((hi - lo) / 10.0).floor().max(0.0) as u32;
    let coarse = best(&mut (0..=steps).map(|k| lo + f64::from(k) * 10.0));
    best(
        &mut (-100..=100)
            .map(|k| coarse + f64::from(k) * 0.1)
            .filter(|f| (lo..=hi).contains(f)),
    )
}

/// `|DFT|²` of `xs` at `freq` Hz: the Goertzel recurrence.
fn power(xs: impl Iterator<Item = f64>, rate: u32, freq: f64) -> f64 {
    let coeff = 2.0 * (2.0 * PI * freq / f64::from(rate)).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for x in xs {
        let s0 = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    s1 * s1 + s2 * s2 - coeff * s1 * s2
}

/// `x` under a Hann window, and the window's sum.
fn hann(x: &[i16]) -> (Vec<f64>, f64) {
    let step = 2.0 * PI / (x.len().max(2) - 1) as f64;
    let win = |i: usize| 0.5 - 0.5 * (step * i as f64).cos();
    let xs = x
        .iter()
        .enumerate()
        .map(|(i, &s)| f64::from(s) * win(i))
        .collect();
    (xs, (0..x.len()).map(win).sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tone_continues_the_phase_and_saturates() {
        let whole = tone(8000, 440.0, 10_000.0, 0, 300);
        let mut parts = tone(8000, 440.0, 10_000.0, 0, 100);
        parts.extend(tone(8000, 440.0, 10_000.0, 100, 200));
        assert_eq!(whole, parts);
        assert_eq!(tone(8000, 2000.0, 1000.0, 0, 4), [0, 1000, 0, -1000]);
        let loud = tone(8000, 2000.0, 1e6, 0, 4);
        assert_eq!((loud[1], loud[3]), (i16::MAX, i16::MIN));
    }

    #[test]
    fn finds_a_1khz_tone() {
        for rate in [8000, 16000, 48000] {
            let x = tone(rate, 1000.0, 8000.0, 0, rate as usize / 5);
            let f = dominant_frequency(&x, rate, 50.0, f64::from(rate) / 2.0);
            assert!((f - 1000.0).abs() <= 0.5, "{rate} Hz: dominant {f} Hz");
            // A weaker second tone, found by a scan that leaves out the first.
            let weak = tone(rate, 2500.0, 2000.0, 0, x.len());
            let mix: Vec<i16> = x.iter().zip(&weak).map(|(&a, &b)| a + b).collect();
            let f = dominant_frequency(&mix, rate, 50.0, 3500.0);
            assert!((f - 1000.0).abs() <= 0.5, "{rate} Hz: dominant {f} Hz");
            let f = dominant_frequency(&mix, rate, 2000.0, 3500.0);
            assert!((f - 2500.0).abs() <= 0.5, "{rate} Hz: in 2-3.5 kHz {f} Hz");
        }
    }

    #[test]
    fn rms_of_a_sine_is_amplitude_over_root_two() {
        // A whole number of cycles: 50 Hz at 8 kHz for 1 s.
        let x = tone(8000, 50.0, 10_000.0, 0, 8000);
        let expect = 10_000.0 / std::f64::consts::SQRT_2;
        assert!((rms(&x) / expect - 1.0).abs() < 0.001, "rms {}", rms(&x));
        assert_eq!(rms(&[]), 0.0);
    }

    #[test]
    fn db_of_a_half_is_minus_6() {
        assert!((db(0.5) + 6.0206).abs() < 1e-3, "{}", db(0.5));
        assert_eq!(db(1.0), 0.0);
    }

    #[test]
    fn goertzel_measures_one_component() {
        let rate = 8000;
        let a = tone(rate, 1000.0, 8000.0, 0, 800);
        let b = tone(rate, 400.0, 800.0, 0, 800);
        let mix: Vec<i16> = a.iter().zip(&b).map(|(&x, &y)| x + y).collect();
        // Unwindowed, a bin-centred tone of N samples has power (A·N/2)².
        let p = goertzel(&a, rate, 1000.0);
        assert!((p.sqrt() / (8000.0 * 400.0) - 1.0).abs() < 0.001, "{p}");
        assert!(goertzel(&a, rate, 1500.0) < p * 1e-6);
        assert!(goertzel_windowed(&a, rate, 1000.0) > goertzel_windowed(&a, rate, 1050.0) * 1e3);
        let own = tone_amplitude(&mix, rate, 1000.0);
        let other = tone_amplitude(&mix, rate, 400.0);
        assert!((own / 8000.0 - 1.0).abs() < 0.01, "amplitude {own}");
        assert!((other / 800.0 - 1.0).abs() < 0.01, "amplitude {other}");
        assert_eq!(tone_amplitude(&[5], rate, 1000.0), 0.0);
    }
}

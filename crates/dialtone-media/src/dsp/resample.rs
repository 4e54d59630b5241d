//! Rational polyphase resampling of 16-bit mono PCM.
//!
//! A conversion `from` → `to` Hz is reduced to `L/M` (`L = to/g`, `M = from/g`,
//! `g = gcd(from, to)`). Conceptually the input is upsampled by `L` (zero
//! stuffing), low-pass filtered by a windowed-sinc (Kaiser) prototype, and
//! decimated by `M`; in practice only the needed products are computed: the
//! prototype is split into `L` polyphase branches of `K` taps, and every output
//! sample is one `K`-tap `f32` dot product with the branch selected by an
//! integer phase.
//!
//! Filter specification, relative to the lower of the two Nyquist frequencies:
//! passband to 0.85 (3.4 kHz when one side is 8 kHz, ripple ~0.005 dB),
//! stopband from 1.0 (nothing above the output Nyquist aliases back, nothing
//! above the input Nyquist is imaged, by more than the stopband level), sinc
//! cutoff halfway at 0.925, Kaiser window designed for 65 dB.
//!
//! Integer ratios of 4 or more whose half-way rate is an integer multiple
//! (48k→8k, 32k→8k, 8k→48k, 8k→32k, ...) run as two stages through twice the
//! lower rate: the stage next to the high rate only has to clear the band that
//! would fold onto the final 0..Nyquist, so its transition is wide and it needs
//! few taps. This halves the work of 48k→8k and 8k→48k for the same response.

/// Passband edge, as a fraction of the lower Nyquist frequency.
const PASS_EDGE: f64 = 0.85;
/// Stopband attenuation the Kaiser windows are designed for, in dB.
const DESIGN_ATTEN_DB: f64 = 65.0;
/// Taps per phase are rounded up to a multiple of this (the dot-product width).
const LANES: usize = 8;

/// Streaming sample-rate converter for 16-bit mono PCM: rational polyphase
/// windowed-sinc (Kaiser) filter with precomputed `f32` taps.
///
/// Memory is `L × K` taps per stage (`L` the reduced output factor, `K` taps
/// per phase: 56 for upsampling, about `56 × M/L` for downsampling), e.g.
/// ~9k taps for 44100 → 48000. [`Resampler::process`] does not allocate once
/// its internal buffers have grown to the largest input seen (and `out` has
/// room).
#[derive(Debug, Clone)]
pub struct Resampler {
    from: u32,
    to: u32,
    chain: Chain,
    /// Group delay in output samples.
    delay: usize,
}

#[derive(Debug, Clone)]
enum Chain {
    /// `from == to`.
    Copy,
    One(Stage),
    /// The first stage writes into the second one's input.
    Two(Stage, Stage),
}

impl Resampler {
    /// Converts `from` Hz to `to` Hz. Any positive rates are accepted; the
    /// ratio is reduced by their gcd (48000→8000 is 1/6, 8000→24000 is 3/1,
    /// 16000→24000 is 3/2, 44100→48000 is 160/147). `from == to` is a cheap
    /// pass-through copy.
    ///
    /// # Panics
    /// If either rate is zero.
    pub fn new(from: u32, to: u32) -> Resampler {
        assert!(from > 0 && to > 0, "sample rates must be positive");
        let (f, t) = (u64::from(from), u64::from(to));
        let low_nyquist = f64::from(from.min(to)) / 2.0;
        let pass = PASS_EDGE * low_nyquist;
        let chain = if from == to {
            Chain::Copy
        } else if f >= 4 * t && f % (2 * t) == 0 {
            // Down through 2×to: stage 1 must only clear what folds onto
            // 0..to/2 at rate 2×to, i.e. everything above 1.5×to.
            let mid = 2 * t;
            Chain::Two(
                Stage::new(f, mid, pass, 1.5 * t as f64),
                Stage::new(mid, t, pass, low_nyquist),
            )
        } else if t >= 4 * f && t % (2 * f) == 0 {
            // Up through 2×from: stage 2 must only remove the images of
            // 0..from/2 around multiples of 2×from, i.e. from 1.5×from up.
            let mid = 2 * f;
            Chain::Two(
                Stage::new(f, mid, pass, low_nyquist),
                Stage::new(mid, t, pass, 1.5 * f as f64),
            )
        } else {
            Chain::One(Stage::new(f, t, pass, low_nyquist))
        };
        let delay = match &chain {
            Chain::Copy => 0.0,
            Chain::One(s) => s.delay,
            Chain::Two(a, b) => a.delay * b.up as f64 / b.down as f64 + b.delay,
        };
        Resampler {
            from,
            to,
            chain,
            delay: delay.round() as usize,
        }
    }

    /// The input rate in Hz.
    pub fn from_rate(&self) -> u32 {
        self.from
    }

    /// The output rate in Hz.
    pub fn to_rate(&self) -> u32 {
        self.to
    }

    /// Resamples `input`, continuing from the previous call's state, and
    /// appends the output to `out`.
    ///
    /// Over many calls the output count tracks `input × to / from` exactly
    /// (after `n` input samples in total, exactly `ceil(n × to / from)` have
    /// been output), so there is no drift; when a 20 ms frame is a whole number
    /// of samples at both rates (8k/12k/16k/24k/32k/48k, 44.1k↔48k) every
    /// 20 ms call outputs exactly 20 ms. The output is rounded and saturated
    /// to `i16`. Chunking does not change the output: it is bit-identical to
    /// one call with the concatenated input.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        let pcm = input.iter().map(|&s| f32::from(s));
        let est = u128::from(self.to) * input.len() as u128 / u128::from(self.from);
        out.reserve(usize::try_from(est).unwrap_or(0).saturating_add(2));
        match &mut self.chain {
            Chain::Copy => out.extend_from_slice(input),
            Chain::One(s) => {
                s.work.extend(pcm);
                s.run(|y| out.push(to_i16(y)));
            }
            Chain::Two(a, b) => {
                a.work.extend(pcm);
                let next = &mut b.work;
                a.run(|y| next.push(y));
                b.run(|y| out.push(to_i16(y)));
            }
        }
    }

    /// Group delay in output samples (the filters' linear-phase delay,
    /// rounded), for aligning channels. 0 for pass-through.
    pub fn delay(&self) -> usize {
        self.delay
    }

    /// Forgets history (e.g. after a stream restart): the next call behaves
    /// like the first call on a new resampler.
    pub fn reset(&mut self) {
        match &mut self.chain {
            Chain::Copy => {}
            Chain::One(s) => s.reset(),
            Chain::Two(a, b) => {
                a.reset();
                b.reset();
            }
        }
    }
}

/// One rational polyphase stage, `f32` in and out.
#[derive(Debug, Clone)]
struct Stage {
    /// Reduced upsampling factor `L` (number of phases).
    up: usize,
    /// Reduced decimation factor `M`.
    down: usize,
    /// Whole input samples to advance per output sample (`M / L`).
    step_int: usize,
    /// Phase increment per output sample (`M % L`).
    step_frac: usize,
    /// Taps per phase, a multiple of [`LANES`].
    k: usize,
    /// `L` branches of `k` taps each, stored reversed so that branch `p` dotted
    /// with `x[i-k+1..=i]` gives the output whose newest input sample is `x[i]`.
    taps: Vec<f32>,
    /// The last `k - 1` input samples, then the input not yet consumed.
    work: Vec<f32>,
    /// Index in `work` of the newest input sample the next output uses.
    pos: usize,
    /// Polyphase branch of the next output, `0..L`.
    phase: usize,
    /// Group delay in this stage's output samples.
    delay: f64,
}

impl Stage {
    /// `from` → `to` Hz, flat to `pass_hz`, attenuating from `stop_hz` up.
    fn new(from: u64, to: u64, pass_hz: f64, stop_hz: f64) -> Stage {
        let g = gcd(from, to);
        let (up, down) = ((to / g) as usize, (from / g) as usize);
        let rate = up as f64 * from as f64;
        let (k, taps) = design(up, pass_hz / rate, stop_hz / rate);
        let mut s = Stage {
            up,
            down,
            step_int: down / up,
            step_frac: down % up,
            k,
            taps,
            work: Vec::new(),
            pos: 0,
            phase: 0,
            // The prototype (length k*L) is linear phase with its centre at
            // (k*L - 1)/2 upsampled samples; output n sits at upsampled n*M.
            delay: (k * up - 1) as f64 / 2.0 / down as f64,
        };
        s.reset();
        s
    }

    fn reset(&mut self) {
        self.work.clear();
        self.work.resize(self.k - 1, 0.0);
        self.pos = self.k - 1;
        self.phase = 0;
    }

    /// Emits every output whose input is in `work`, keeping `k - 1` samples.
    #[inline]
    fn run(&mut self, mut emit: impl FnMut(f32)) {
        let k = self.k;
        let n = self.work.len();
        while self.pos < n {
            let x = &self.work[self.pos + 1 - k..=self.pos];
            let h = &self.taps[self.phase * k..(self.phase + 1) * k];
            emit(dot(h, x));
            self.pos += self.step_int;
            self.phase += self.step_frac;
            if self.phase >= self.up {
                self.phase -= self.up;
                self.pos += 1;
            }
        }
        // `pos >= n` now, so the next output needs at most the last k-1.
        let drop = n - (k - 1);
        self.work.copy_within(drop.., 0);
        self.work.truncate(k - 1);
        self.pos -= drop;
    }
}

/// Dot product of two equal-length slices whose length is a multiple of
/// [`LANES`], with independent lane accumulators so that it vectorizes.
#[inline]
fn dot(h: &[f32], x: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    for (hc, xc) in h.chunks_exact(LANES).zip(x.chunks_exact(LANES)) {
        for j in 0..LANES {
            acc[j] += hc[j] * xc[j];
        }
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

/// Rounds half away from zero and saturates: `as` saturates (NaN gives 0),
/// so full-scale overshoot clips instead of wrapping around. (Cheaper than
/// `f32::round`, which is a libm call on baseline x86-64.)
#[inline]
fn to_i16(y: f32) -> i16 {
    (if y >= 0.0 { y + 0.5 } else { y - 0.5 }) as i16
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Kaiser β for a stopband attenuation of `atten_db` > 50 dB.
fn kaiser_beta(atten_db: f64) -> f64 {
    0.1102 * (atten_db - 8.7)
}

/// Zeroth-order modified Bessel function of the first kind (power series).
fn bessel_i0(x: f64) -> f64 {
    let q = x * x / 4.0;
    let (mut sum, mut term, mut j) = (1.0, 1.0, 1.0);
    while term > sum * 1e-17 {
        term *= q / (j * j);
        sum += term;
        j += 1.0;
    }
    sum
}

/// The Kaiser-windowed sinc prototype at the upsampled rate, for `up` phases,
/// with passband edge `pass` and stopband edge `stop` in cycles per upsampled
/// sample, normalized to a DC gain of `up`. Its length is `k × up` with `k`
/// (taps per phase) the smallest multiple of [`LANES`] that meets
/// [`DESIGN_ATTEN_DB`] by Kaiser's length formula.
fn prototype(up: usize, pass: f64, stop: f64) -> (usize, Vec<f64>) {
    use std::f64::consts::PI;
    let cutoff = (pass + stop) / 2.0;
    let needed = (DESIGN_ATTEN_DB - 7.95) / (2.285 * 2.0 * PI * (stop - pass)) + 1.0;
    let k = ((needed / up as f64).ceil() as usize)
        .div_ceil(LANES)
        .max(1)
        * LANES;
    let len = k * up;
    let beta = kaiser_beta(DESIGN_ATTEN_DB);
    let centre = (len - 1) as f64 / 2.0;
    let i0_beta = bessel_i0(beta);
    let mut h: Vec<f64> = (0..len)
        .map(|j| {
            let t = j as f64 - centre;
            let sinc = if t == 0.0 {
                2.0 * cutoff
            } else {
                (2.0 * PI * cutoff * t).sin() / (PI * t)
            };
            let r = t / centre;
            sinc * bessel_i0(beta * (1.0 - r * r).max(0.0).sqrt()) / i0_beta
        })
        .collect();
    let gain = up as f64 / h.iter().sum::<f64>();
    h.iter_mut().for_each(|v| *v *= gain);
    (k, h)
}

/// The prototype split into `up` reversed polyphase branches of `k` taps:
/// branch `p` tap `j` is `h[p + (k-1-j)·L]`.
fn design(up: usize, pass: f64, stop: f64) -> (usize, Vec<f32>) {
    let (k, h) = prototype(up, pass, stop);
    let mut taps = Vec::with_capacity(up * k);
    for p in 0..up {
        taps.extend((0..k).map(|j| h[p + (k - 1 - j) * up] as f32));
    }
    (k, taps)
}

#[cfg(test)]
#[path = "resample_tests.rs"]
mod tests;

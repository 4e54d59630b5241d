//! Packet loss concealment for waveform codecs that have none of their own
//! (G.711, G.722), in the spirit of G.711 Appendix I (simplified): the last
//! pitch period of the decoded history is repeated, unattenuated for 10 ms,
//! then faded linearly (−20 % per 10 ms) to silence at 60 ms; the first good
//! frame after a loss is cross-faded in over 4 ms.
//!
//! The figures are in milliseconds, so one [`Plc`] serves any PCM rate.

/// History kept for concealment: 48.75 ms, as in G.711 Appendix I.
const HISTORY_US: usize = 48_750;
/// Pitch search range, 5..15 ms.
const PITCH_MIN_MS: usize = 5;
const PITCH_MAX_MS: usize = 15;
/// Correlation window for the pitch search.
const CORR_MS: usize = 20;
/// Concealment played unattenuated.
const FLAT_MS: usize = 10;
/// Time over which the gain then falls to zero (−20 % per 10 ms).
const FADE_MS: usize = 50;
/// Cross-fade from concealment back into real audio.
const MERGE_MS: usize = 4;

/// The concealment figures in samples at one rate.
struct Lengths {
    history: usize,
    pitch_min: usize,
    pitch_max: usize,
    corr: usize,
    flat: usize,
    fade: usize,
    merge: usize,
}

impl Lengths {
    fn at(rate: u32) -> Lengths {
        let per_ms = (rate / 1000).max(1) as usize;
        Lengths {
            history: HISTORY_US * per_ms / 1000,
            pitch_min: PITCH_MIN_MS * per_ms,
            pitch_max: PITCH_MAX_MS * per_ms,
            corr: CORR_MS * per_ms,
            flat: FLAT_MS * per_ms,
            fade: FADE_MS * per_ms,
            merge: MERGE_MS * per_ms,
        }
    }
}

/// Packet loss concealment state for mono PCM at one rate.
pub(crate) struct Plc {
    len: Lengths,
    /// The last up to `len.history` samples of real (or merged) audio.
    history: Vec<i16>,
    /// Samples concealed in the current loss burst (0: not concealing).
    lost: usize,
    /// The pitch period being repeated, taken from the history.
    period: Vec<i16>,
    /// Position in `period` of the next concealment sample.
    phase: usize,
}

impl Plc {
    /// Concealment for PCM at `rate` Hz.
    pub(crate) fn new(rate: u32) -> Plc {
        Plc {
            len: Lengths::at(rate),
            history: Vec::new(),
            lost: 0,
            period: Vec::new(),
            phase: 0,
        }
    }

    /// Gain (out of 1.0) of the `n`th concealed sample of a loss burst.
    fn gain(&self, n: usize) -> f32 {
        let (flat, fade) = (self.len.flat, self.len.fade);
        if n < flat {
            1.0
        } else if n < flat + fade {
            1.0 - (n - flat) as f32 / fade as f32
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
            f32::from(v) * self.gain(self.lost)
        };
        self.lost += 1;
        value as i16
    }

    /// Takes in decoded audio, merging it with the concealment if a loss
    /// just ended, and records it as history.
    pub(crate) fn good(&mut self, pcm: &mut [i16]) {
        if self.lost > 0 {
            let merge = self.len.merge;
            let n = pcm.len().min(merge);
            for (i, sample) in pcm.iter_mut().take(n).enumerate() {
                let synthetic = f32::from(self.next_synthetic());
                let w = (i + 1) as f32 / (merge + 1) as f32;
                *sample = (synthetic * (1.0 - w) + f32::from(*sample) * w) as i16;
            }
            self.lost = 0;
        }
        let keep = self.len.history;
        if pcm.len() >= keep {
            self.history.clear();
            self.history.extend_from_slice(&pcm[pcm.len() - keep..]);
        } else {
            let excess = (self.history.len() + pcm.len()).saturating_sub(keep);
            self.history.drain(..excess);
            self.history.extend_from_slice(pcm);
        }
    }

    /// Appends `samples` concealment samples to `out`.
    pub(crate) fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        if self.lost == 0 {
            let period = self.pitch_period();
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

    /// The pitch period (in samples) that best predicts the end of the
    /// history from itself, searched over 5..15 ms; the whole history when
    /// it is too short to search.
    fn pitch_period(&self) -> usize {
        let Lengths {
            pitch_min,
            pitch_max,
            corr,
            ..
        } = self.len;
        let history = &self.history;
        let n = history.len();
        if n < corr + pitch_max {
            return n.min(corr);
        }
        let target = &history[n - corr..];
        let mut best = (pitch_min, f64::MIN);
        for p in pitch_min..=pitch_max {
            let lagged = &history[n - corr - p..n - p];
            let (mut dot, mut energy) = (0i64, 0i64);
            for (&a, &b) in target.iter().zip(lagged) {
                dot += i64::from(a) * i64::from(b);
                energy += i64::from(b) * i64::from(b);
            }
            let score = if energy == 0 {
                0.0
            } else {
                dot as f64 * (dot as f64).abs() / energy as f64
            };
            if score > best.1 {
                best = (p, score);
            }
        }
        best.0
    }
}

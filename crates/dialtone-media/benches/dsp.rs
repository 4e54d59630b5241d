//! Cost of resampling one 20 ms mono frame, ours against rubato.
//!
//! For each rate pair, three contestants process one 20 ms input frame per
//! iteration (state carried across iterations, as on a live call):
//! - `ours`: [`dialtone_media::dsp::Resampler`] (i16 in, i16 out; 48k↔8k run
//!   as two stages through 16k).
//! - `rubato_sinc`: rubato's `Async::new_sinc` (fixed input), f32, with
//!   `sinc_len` equal to the taps per phase of our single-stage design (same
//!   transition band: 320 for 48k→8k, 56 for upsampling), the same relative
//!   cutoff (0.925),
//!   BlackmanHarris2 window and linear interpolation between 256 oversampled
//!   sincs (its cheapest sinc mode: two `sinc_len` dot products per output).
//! - `rubato_fft`: rubato's synchronous `Fft` resampler (fixed input), f32,
//!   the recommended choice for a fixed ratio.
//!
//! The rubato runs include the i16 ↔ f32 conversion our pipeline would need.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use dialtone_media::dsp::Resampler;
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{
    Async, Fft, FixedAsync, FixedSync, SincInterpolationParameters, SincInterpolationType,
    WindowFunction,
};

const PAIRS: [(u32, u32); 5] = [
    (48000, 8000),
    (8000, 48000),
    (8000, 24000),
    (24000, 8000),
    (16000, 8000),
];

/// One 20 ms frame of a two-tone signal at `rate`.
fn frame(rate: u32) -> Vec<i16> {
    let len = rate as usize / 50;
    (0..len)
        .map(|n| {
            let t = n as f64 / f64::from(rate);
            let v = 9000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()
                + 6000.0 * (2.0 * std::f64::consts::PI * 2900.0 * t).sin();
            v as i16
        })
        .collect()
}

/// Our taps per phase for a pair (mirrors the design in `dsp::resample`:
/// 65 dB Kaiser, transition 0.85..1.0 of the lower Nyquist, rounded up to 8).
fn taps_per_phase(from: u32, to: u32) -> usize {
    let (mut a, mut b) = (from, to);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    let (up, down) = (f64::from(to / a), f64::from(from / a));
    let width = 2.0 * std::f64::consts::PI * 0.075 / up.max(down);
    let len = (65.0 - 7.95) / (2.285 * width) + 1.0;
    ((len / up).ceil() as usize).div_ceil(8) * 8
}

/// Runs one rubato resampler on a 20 ms i16 frame, converting in and out.
struct Rubato {
    r: Box<dyn rubato::Resampler<f32>>,
    input: Vec<f32>,
    output: Vec<f32>,
    pcm: Vec<i16>,
}

impl Rubato {
    fn new(r: Box<dyn rubato::Resampler<f32>>, frame_len: usize) -> Rubato {
        let output = vec![0.0; r.output_frames_max()];
        Rubato {
            r,
            input: vec![0.0; frame_len],
            output,
            pcm: Vec::with_capacity(frame_len * 8),
        }
    }

    fn process(&mut self, frame: &[i16]) -> usize {
        for (d, &s) in self.input.iter_mut().zip(frame) {
            *d = f32::from(s) / 32768.0;
        }
        let frames = self.r.input_frames_next();
        let cap = self.output.len();
        let input = InterleavedSlice::new(&self.input, 1, frames).expect("input adapter");
        let mut output = InterleavedSlice::new_mut(&mut self.output, 1, cap).expect("adapter");
        let (_, written) = self
            .r
            .process_into_buffer(&input, &mut output, None)
            .expect("rubato process");
        self.pcm.clear();
        self.pcm.extend(
            self.output[..written]
                .iter()
                .map(|&v| (v * 32768.0).round() as i16),
        );
        written
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("resample_20ms");
    for (from, to) in PAIRS {
        let name = format!("{}k->{}k", from / 1000, to / 1000);
        let input = frame(from);
        let frame_len = input.len();

        let mut ours = Resampler::new(from, to);
        let mut out = Vec::with_capacity(to as usize / 25);
        group.bench_function(BenchmarkId::new("ours", &name), |b| {
            b.iter(|| {
                out.clear();
                ours.process(black_box(&input), &mut out);
                black_box(out.len())
            })
        });

        let ratio = f64::from(to) / f64::from(from);
        let params = SincInterpolationParameters::new(
            taps_per_phase(from, to),
            WindowFunction::BlackmanHarris2,
        )
        .f_cutoff(0.925)
        .oversampling_factor(256)
        .interpolation(SincInterpolationType::Linear);
        let sinc = Async::<f32>::new_sinc(ratio, 1.0, &params, frame_len, 1, FixedAsync::Input)
            .expect("rubato sinc");
        let mut sinc = Rubato::new(Box::new(sinc), frame_len);
        group.bench_function(BenchmarkId::new("rubato_sinc", &name), |b| {
            b.iter(|| black_box(sinc.process(black_box(&input))))
        });

        let fft = Fft::<f32>::new(from as usize, to as usize, frame_len, 1, FixedSync::Input)
            .expect("rubato fft");
        let mut fft = Rubato::new(Box::new(fft), frame_len);
        group.bench_function(BenchmarkId::new("rubato_fft", &name), |b| {
            b.iter(|| black_box(fft.process(black_box(&input))))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

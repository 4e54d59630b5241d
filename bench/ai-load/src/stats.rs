//! Lock-free latency histograms (2 µs buckets up to 100 ms, the rest kept
//! as an overflow count and the exact maximum), written by every task and
//! read once at the end; and the µ-law tone and markers both sides put in
//! their payloads.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

use serde_json::{json, Value};

const RES_NS: u64 = 2_000;
const BUCKETS: usize = 50_000;

pub struct Hist {
    buckets: Box<[AtomicU64]>,
    over: AtomicU64,
    count: AtomicU64,
    sum_ns: AtomicU64,
    max_ns: AtomicU64,
}

/// Quantiles of a [`Hist`], in microseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct Quantiles {
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Hist {
    pub fn new() -> Hist {
        Hist {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            over: AtomicU64::new(0),
            count: AtomicU64::new(0),
            sum_ns: AtomicU64::new(0),
            max_ns: AtomicU64::new(0),
        }
    }

    pub fn record(&self, ns: u64) {
        let b = (ns / RES_NS) as usize;
        match self.buckets.get(b) {
            Some(slot) => slot.fetch_add(1, Relaxed),
            None => self.over.fetch_add(1, Relaxed),
        };
        self.count.fetch_add(1, Relaxed);
        self.sum_ns.fetch_add(ns, Relaxed);
        self.max_ns.fetch_max(ns, Relaxed);
    }

    pub fn quantiles(&self) -> Quantiles {
        let count = self.count.load(Relaxed);
        if count == 0 {
            return Quantiles::default();
        }
        let max = self.max_ns.load(Relaxed) as f64 / 1e3;
        let q = |p: f64| -> f64 {
            let target = ((p * count as f64).ceil() as u64).max(1);
            let mut seen = 0;
            for (i, b) in self.buckets.iter().enumerate() {
                seen += b.load(Relaxed);
                if seen >= target {
                    // The bucket's middle, never above the true maximum.
                    return ((i as f64 + 0.5) * RES_NS as f64 / 1e3).min(max);
                }
            }
            max
        };
        Quantiles {
            count,
            mean: self.sum_ns.load(Relaxed) as f64 / count as f64 / 1e3,
            p50: q(0.50),
            p90: q(0.90),
            p99: q(0.99),
            p999: q(0.999),
            max,
        }
    }
}

impl Quantiles {
    pub fn json(&self) -> Value {
        json!({
            "count": self.count, "mean_us": r1(self.mean), "p50_us": r1(self.p50),
            "p90_us": r1(self.p90), "p99_us": r1(self.p99), "p999_us": r1(self.p999),
            "max_us": r1(self.max),
        })
    }
}

pub fn r1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Send times by sequence number: the last RING packets or frames of one
/// call, written by the sending task and read by the receiving one.
pub struct Ring {
    at: Box<[AtomicU64]>,
    seq: Box<[AtomicU32]>,
}

const RING: usize = 512;

impl Ring {
    pub fn new() -> Ring {
        Ring {
            at: (0..RING).map(|_| AtomicU64::new(0)).collect(),
            seq: (0..RING).map(|_| AtomicU32::new(u32::MAX)).collect(),
        }
    }

    pub fn put(&self, seq: u32, ns: u64) {
        let i = seq as usize % RING;
        if let (Some(a), Some(s)) = (self.at.get(i), self.seq.get(i)) {
            a.store(ns, Relaxed);
            s.store(seq, Relaxed);
        }
    }

    pub fn get(&self, seq: u32) -> Option<u64> {
        let i = seq as usize % RING;
        let s = self.seq.get(i)?.load(Relaxed);
        (s == seq).then(|| self.at.get(i).map(|a| a.load(Relaxed)))?
    }
}

/// The first bytes of every caller payload: magic, call index, sequence.
pub const CALLER_MAGIC: [u8; 2] = [0xC1, 0xA1];
/// The first bytes of every agent (model audio) frame.
pub const AGENT_MAGIC: [u8; 2] = [0xA9, 0x5D];
/// 20 ms of G.711 at 8 kHz.
pub const FRAME: usize = 160;

/// One 20 ms µ-law frame of a sine (`freq` divides 8000/160 evenly for a
/// seamless loop: 400 Hz and 1 kHz do), 0.3 of full scale.
pub fn tone(freq: f64) -> [u8; FRAME] {
    let mut out = [0u8; FRAME];
    for (i, b) in out.iter_mut().enumerate() {
        let s = 0.3 * 32767.0 * (2.0 * std::f64::consts::PI * freq * i as f64 / 8000.0).sin();
        *b = ulaw(s as i16);
    }
    out
}

fn ulaw(sample: i16) -> u8 {
    let mut s = i32::from(sample);
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    s = s.min(32635) + 0x84;
    let exp = (24 - (s as u32).leading_zeros() as i32).clamp(0, 7);
    let mant = (s >> (exp + 3)) & 0x0F;
    !((sign | (exp << 4) | mant) as u8)
}

/// Writes magic, call index and sequence into a frame's first 8 bytes.
pub fn mark(frame: &mut [u8], magic: [u8; 2], call: u32, seq: u32) {
    if frame.len() >= 8 {
        frame[..2].copy_from_slice(&magic);
        frame[2..4].copy_from_slice(&(call as u16).to_be_bytes());
        frame[4..8].copy_from_slice(&seq.to_be_bytes());
    }
}

/// (call index, sequence) when the frame starts with `magic`.
pub fn marker(frame: &[u8], magic: [u8; 2]) -> Option<(u32, u32)> {
    if frame.len() < 8 || frame[..2] != magic {
        return None;
    }
    let call = u16::from_be_bytes([frame[2], frame[3]]);
    let seq = u32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    Some((u32::from(call), seq))
}

/// µ-law silence (0xFF, or its negative-zero twin 0x7F) throughout.
pub fn is_silence(frame: &[u8]) -> bool {
    frame.iter().all(|&b| b == 0xFF || b == 0x7F)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_matches_the_reference_points() {
        assert_eq!(ulaw(0), 0xFF);
        assert_eq!(ulaw(-1), 0x7F);
        assert_eq!(ulaw(32767), 0x80);
        assert_eq!(ulaw(-32768), 0x00);
        assert!(!is_silence(&tone(400.0)));
    }

    #[test]
    fn markers_round_trip() {
        let mut f = tone(1000.0);
        mark(&mut f, CALLER_MAGIC, 499, 123_456);
        assert_eq!(marker(&f, CALLER_MAGIC), Some((499, 123_456)));
        assert_eq!(marker(&f, AGENT_MAGIC), None);
    }

    #[test]
    fn quantiles_from_buckets() {
        let h = Hist::new();
        for us in 1..=1000u64 {
            h.record(us * 1000);
        }
        let q = h.quantiles();
        assert_eq!(q.count, 1000);
        assert!((q.p50 - 500.0).abs() < 3.0, "{q:?}");
        assert!((q.p99 - 990.0).abs() < 3.0, "{q:?}");
        assert_eq!(q.max, 1000.0);
    }
}

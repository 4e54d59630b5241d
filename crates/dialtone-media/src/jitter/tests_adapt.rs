//! Jitter buffer tests of the estimates: RFC 3550 jitter, delay adaptation,
//! report blocks, timestamp gaps.

use super::tests::{cfg, played, Pkt, Sim};
use super::{JitterConfig, Playout};

/// A tiny deterministic generator (PCG constants).
struct Lcg(u64);

impl Lcg {
    /// Uniform in `-amp..=amp`.
    fn between(&mut self, amp: i64) -> i64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % (2 * amp as u64 + 1)) as i64 - amp
    }
}

fn pkt(seq: u16, ts: u32, at_us: u64) -> Pkt {
    Pkt {
        seq,
        ts,
        ssrc: 1,
        marker: false,
        at_us,
    }
}

/// RFC 3550 §6.4.1 / A.8, computed independently, in RTP units: arrivals
/// (µs, in arrival order) and timestamps.
fn rfc_jitter(clock: f64, packets: &[(u64, u32)]) -> f64 {
    let mut j = 0.0;
    let mut prev: Option<f64> = None;
    for &(at_us, ts) in packets {
        let transit = at_us as f64 / 1e6 * clock - f64::from(ts);
        if let Some(p) = prev {
            j += ((transit - p).abs() - j) / 16.0;
        }
        prev = Some(transit);
    }
    j
}

#[test]
fn rfc3550_jitter_of_constant_transit_is_zero() {
    let mut sim = Sim::new(cfg(48000, 20));
    for seq in 0..200u16 {
        sim.send(pkt(
            seq,
            90_000 + u32::from(seq) * 960,
            37_000 + u64::from(seq) * 20_000,
        ));
    }
    sim.run(220);
    assert!(sim.jb.stats().jitter_ms.abs() < 1e-6);
    let rb = sim.jb.report_block(0, 0).expect("a source");
    assert_eq!(rb.jitter, 0);
}

#[test]
fn rfc3550_jitter_of_alternating_delay() {
    let mut sim = Sim::new(cfg(8000, 40));
    let mut arrivals = Vec::new();
    for seq in 0..100u16 {
        // Transit alternates between d and d + 10 ms.
        let at_us = 5_000 + u64::from(seq) * 20_000 + u64::from(seq % 2) * 10_000;
        let ts = 1000 + u32::from(seq) * 160;
        arrivals.push((at_us, ts));
        sim.send(pkt(seq, ts, at_us));
    }
    sim.run(110);
    let want = rfc_jitter(8000.0, &arrivals);
    assert!(
        (want - 80.0).abs() < 1.0,
        "converges on the 10 ms (80 tick) step: {want}"
    );
    let got = sim.jb.stats().jitter_ms;
    assert!((got - want / 8.0).abs() < 1e-9, "{got} ms vs {want} ticks");
    assert_eq!(
        sim.jb.report_block(0, 0).map(|rb| rb.jitter),
        Some(want as u32)
    );
}

#[test]
fn report_block_fraction_lost_per_interval() {
    let mut sim = Sim::new(cfg(8000, 20));
    assert!(sim.jb.report_block(1, 2).is_none(), "no source yet");
    for seq in (0..100u16).filter(|s| s % 10 != 5) {
        sim.send(pkt(seq, u32::from(seq) * 160, u64::from(seq) * 20_000));
    }
    sim.run(100);
    assert_eq!(sim.jb.stats().fraction_lost, 25, "10 of 100: 2560 / 100");
    assert_eq!(
        sim.jb.stats().fraction_lost,
        25,
        "stats() does not end the interval"
    );
    let rb = sim.jb.report_block(0x1234_5678, 99).expect("a source");
    assert_eq!((rb.ssrc, rb.fraction_lost, rb.cumulative_lost), (1, 25, 10));
    assert_eq!((rb.highest_seq, rb.lsr, rb.dlsr), (99, 0x1234_5678, 99));
    assert_eq!(sim.jb.stats().fraction_lost, 0, "new interval");
    for seq in 100..200u16 {
        sim.send(pkt(seq, u32::from(seq) * 160, u64::from(seq) * 20_000));
    }
    sim.run(100);
    let rb = sim.jb.report_block(0, 0).expect("a source");
    assert_eq!(
        (rb.fraction_lost, rb.cumulative_lost, rb.highest_seq),
        (0, 10, 199)
    );
    assert_eq!(sim.jb.stats().lost, 10);
}

#[test]
fn timestamp_gap_is_filled_keeping_the_delay() {
    let mut sim = Sim::new(cfg(8000, 60));
    for seq in 0..20u16 {
        // DTX: 100 ms without packets after seq 9, seq numbers continuous.
        let gap = if seq >= 10 { 800 } else { 0 };
        let at_us = u64::from(seq) * 20_000 + u64::from(gap) * 125;
        sim.send(pkt(seq, u32::from(seq) * 160 + gap, at_us));
    }
    let out = sim.run(27);
    assert_eq!(played(&out), (0..20).collect::<Vec<u16>>());
    // 10 arrives at 300 ms and is played 40 ms later, like every packet.
    assert_eq!(
        out[17],
        Playout::Packet {
            payload: vec![0, 10],
            timestamp: 2400
        }
    );
    let s = sim.jb.stats();
    assert_eq!(
        (s.concealed, s.lost, s.discarded, s.max_delay_ms),
        (5, 0, 0, 60)
    );
}

/// 5 s calm, 30 s of ±40 ms jitter (packets 250..1750), 30 s calm.
fn jittery_stream() -> Vec<Pkt> {
    let mut rng = Lcg(7);
    (0..3250u16)
        .map(|seq| {
            let jitter = if (250..1750).contains(&seq) {
                rng.between(40_000)
            } else {
                0
            };
            let at_us = (100_000 + i64::from(seq) * 20_000 + jitter) as u64;
            pkt(seq, u32::from(seq) * 160, at_us)
        })
        .collect()
}

#[test]
fn target_delay_follows_jitter_then_shrinks_back() {
    // The same stream into a buffer that cannot adapt: the reference.
    let mut fixed = Sim::new(JitterConfig {
        max_delay_ms: 20,
        ..cfg(8000, 20)
    });
    jittery_stream().into_iter().for_each(|p| fixed.send(p));
    fixed.run(1755);
    let fixed = fixed.jb.stats();
    assert!(
        fixed.late > 150,
        "at 20 ms, reordering makes many late: {fixed:?}"
    );

    let mut sim = Sim::new(cfg(8000, 20));
    jittery_stream().into_iter().for_each(|p| sim.send(p));
    let mut out = sim.run(255);
    let s = sim.jb.stats();
    assert_eq!(
        (s.late, s.delay_ms, s.max_delay_ms),
        (0, 20, 20),
        "calm start"
    );
    out.extend(sim.run(50));
    let first = sim.jb.stats();
    assert!(
        first.delay_ms >= 80,
        "grown within 1 s of jitter: {first:?}"
    );
    out.extend(sim.run(950));
    let mid = sim.jb.stats();
    out.extend(sim.run(500));
    let s = sim.jb.stats();
    assert!(
        s.late * 50 < fixed.late,
        "{} late vs {} without adaptation",
        s.late,
        fixed.late
    );
    let late_last = s.late - mid.late;
    assert!(
        late_last <= first.late,
        "fewer late once adapted: {late_last} in the last 10 s"
    );
    assert!(s.delay_ms >= 80 && s.max_delay_ms <= 120, "{s:?}");
    let discarded_jittery = s.discarded;

    out.extend(sim.run(1510));
    let s = sim.jb.stats();
    assert!(s.delay_ms <= 25, "back near the minimum: {s:?}");
    assert!(
        s.discarded > discarded_jittery,
        "shrunk by dropping frames: {s:?}"
    );

    let seqs = played(&out);
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order");
    assert_eq!(
        s.played + s.late + s.discarded,
        3250,
        "every packet accounted for: {s:?}"
    );
    assert_eq!(s.lost, s.late, "nothing lost but the late ones");
    assert_eq!((s.received, s.duplicates), (3250, 0));
}

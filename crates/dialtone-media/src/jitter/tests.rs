//! Jitter buffer tests with scripted arrival and playout times: ordering,
//! loss, lateness, duplicates, wrap-around, resync, overflow.

use std::time::{Duration, Instant};

use super::{JitterBuffer, JitterConfig, Playout};

/// One scripted packet; its payload is its sequence number.
#[derive(Clone, Copy, Debug)]
pub(super) struct Pkt {
    pub seq: u16,
    pub ts: u32,
    pub ssrc: u32,
    pub marker: bool,
    /// Arrival, in microseconds after the start.
    pub at_us: u64,
}

/// Drives a buffer: packets are pushed when their arrival time has come,
/// and `pop` is called every 20 ms (after the pushes of that instant).
pub(super) struct Sim {
    pub jb: JitterBuffer,
    pub t0: Instant,
    pending: Vec<Pkt>,
    pub tick: u64,
}

impl Sim {
    pub fn new(cfg: JitterConfig) -> Sim {
        Sim {
            jb: JitterBuffer::new(cfg),
            t0: Instant::now(),
            pending: Vec::new(),
            tick: 0,
        }
    }

    pub fn send(&mut self, pkt: Pkt) {
        self.pending.push(pkt);
    }

    /// `n` packets from `seq0` at 20 ms pacing (`frame` ticks apart), each
    /// arriving at `start_ms + 20 i`.
    pub fn paced(&mut self, seq0: u16, ts0: u32, frame: u32, n: u16, start_ms: u64) {
        for i in 0..n {
            self.send(Pkt {
                seq: seq0.wrapping_add(i),
                ts: ts0.wrapping_add(u32::from(i) * frame),
                ssrc: 1,
                marker: false,
                at_us: (start_ms + 20 * u64::from(i)) * 1000,
            });
        }
    }

    pub fn at(&self, us: u64) -> Instant {
        self.t0 + Duration::from_micros(us)
    }

    /// Runs `ticks` playout ticks, returning what each produced.
    pub fn run(&mut self, ticks: u64) -> Vec<Playout> {
        self.pending.sort_by_key(|p| p.at_us);
        let mut out = Vec::new();
        for _ in 0..ticks {
            let now_us = self.tick * 20_000;
            let due = self.pending.partition_point(|p| p.at_us <= now_us);
            for p in self.pending.drain(..due).collect::<Vec<_>>() {
                let payload = p.seq.to_be_bytes();
                let at = self.at(p.at_us);
                self.jb.push(p.seq, p.ts, p.ssrc, p.marker, &payload, at);
            }
            out.push(self.jb.pop(self.at(now_us)));
            self.tick += 1;
        }
        out
    }
}

/// The sequence numbers of the packets played.
pub(super) fn played(out: &[Playout]) -> Vec<u16> {
    out.iter()
        .filter_map(|p| match p {
            Playout::Packet { payload, .. } => Some(u16::from_be_bytes([payload[0], payload[1]])),
            _ => None,
        })
        .collect()
}

pub(super) fn cfg(clock_rate: u32, min_delay_ms: u32) -> JitterConfig {
    JitterConfig {
        clock_rate,
        min_delay_ms,
        ..JitterConfig::default()
    }
}

fn missing(samples: u32, next: Option<u16>) -> Playout {
    Playout::Missing {
        samples,
        next: next.map(|s| s.to_be_bytes().to_vec()),
    }
}

fn packet(seq: u16, timestamp: u32) -> Playout {
    Playout::Packet {
        payload: seq.to_be_bytes().to_vec(),
        timestamp,
    }
}

#[test]
fn in_order_stream_plays_everything_at_min_delay() {
    for (clock, frame) in [(8000, 160), (48000, 960)] {
        let mut sim = Sim::new(cfg(clock, 20));
        assert_eq!(sim.jb.pop(sim.t0), Playout::Idle, "before the first packet");
        sim.paced(1000, 4_000_000_000, frame, 500, 0);
        let out = sim.run(500);
        let want: Vec<Playout> = (0..500u16)
            .map(|i| {
                packet(
                    1000 + i,
                    4_000_000_000u32.wrapping_add(u32::from(i) * frame),
                )
            })
            .collect();
        assert_eq!(out, want);
        let s = sim.jb.stats();
        assert_eq!((s.received, s.played, s.lost, s.late), (500, 500, 0, 0));
        assert_eq!((s.concealed, s.discarded, s.duplicates), (0, 0, 0));
        assert_eq!((s.delay_ms, s.max_delay_ms), (20, 20));
        assert_eq!(
            (s.base_seq, s.highest_seq, s.expected, s.cumulative_lost),
            (1000, 1499, 500, 0)
        );
        assert!(s.jitter_ms < 1e-6, "{}", s.jitter_ms);
    }
}

#[test]
fn reordered_within_the_delay_is_played_in_order() {
    let mut sim = Sim::new(cfg(8000, 60));
    sim.paced(0, 0, 160, 3, 0);
    // 4 arrives just after 5, 8 well after 9 (both before their slot).
    for (seq, at_ms) in [
        (3, 60),
        (5, 100),
        (4, 101),
        (6, 120),
        (7, 140),
        (9, 180),
        (8, 195),
    ] {
        sim.send(Pkt {
            seq,
            ts: u32::from(seq) * 160,
            ssrc: 1,
            marker: false,
            at_us: at_ms * 1000,
        });
    }
    sim.paced(10, 1600, 160, 10, 200);
    let out = sim.run(22);
    assert_eq!(
        &out[..2],
        &[Playout::Idle, Playout::Idle],
        "buffering 40 ms"
    );
    assert_eq!(played(&out), (0..20).collect::<Vec<u16>>());
    assert_eq!(
        &out[2..22],
        &played(&out)
            .iter()
            .map(|&s| packet(s, u32::from(s) * 160))
            .collect::<Vec<_>>()[..]
    );
    let s = sim.jb.stats();
    assert_eq!((s.lost, s.late, s.concealed, s.discarded), (0, 0, 0, 0));
}

#[test]
fn lost_packets_are_concealed_in_their_slot() {
    for (clock, frame) in [(8000u32, 160u32), (48000, 960)] {
        for min_delay in [20, 60] {
            let mut sim = Sim::new(cfg(clock, min_delay));
            let lost = [10u16, 11, 25];
            for seq in (0..40u16).filter(|s| !lost.contains(s)) {
                sim.send(Pkt {
                    seq,
                    ts: u32::from(seq) * frame,
                    ssrc: 1,
                    marker: false,
                    at_us: u64::from(seq) * 20_000,
                });
            }
            let out = sim.run(40);
            let skip = (min_delay / 20 - 1) as usize; // Idle ticks
            assert!(out[..skip].iter().all(|p| *p == Playout::Idle));
            let buffered = min_delay > 20;
            let want: Vec<Playout> = (0..40 - skip as u16)
                .map(|seq| match seq {
                    10 => missing(frame, None),
                    11 => missing(frame, Some(12).filter(|_| buffered)),
                    25 => missing(frame, Some(26).filter(|_| buffered)),
                    _ => packet(seq, u32::from(seq) * frame),
                })
                .collect();
            assert_eq!(
                out[skip..],
                want[..],
                "clock {clock}, min delay {min_delay}"
            );
            let s = sim.jb.stats();
            assert_eq!((s.lost, s.concealed, s.late), (3, 3, 0));
            assert_eq!((s.expected, s.cumulative_lost), (40, 3));
        }
    }
}

#[test]
fn packet_after_its_concealed_slot_is_late() {
    let mut sim = Sim::new(cfg(8000, 60));
    for seq in 0..30u16 {
        let at_ms = if seq == 10 { 300 } else { u64::from(seq) * 20 };
        sim.send(Pkt {
            seq,
            ts: u32::from(seq) * 160,
            ssrc: 1,
            marker: false,
            at_us: at_ms * 1000,
        });
    }
    let out = sim.run(60);
    assert_eq!(out[12], missing(160, Some(11)), "slot of 10 at 240 ms");
    let want: Vec<u16> = (0..30).filter(|&s| s != 10).collect();
    assert_eq!(played(&out), want);
    let s = sim.jb.stats();
    assert_eq!((s.late, s.lost, s.received), (1, 1, 30));
    // It came 100 ms after the fastest path: the target now covers that.
    assert_eq!(s.max_delay_ms, 120);
    assert_eq!(s.cumulative_lost, 0, "RFC 3550 loss counts it as received");
}

#[test]
fn duplicates_are_counted_and_ignored() {
    let mut sim = Sim::new(cfg(8000, 20));
    sim.paced(0, 0, 160, 20, 0);
    // A duplicate still buffered (5 twice at 100 ms, before its slot) and
    // one long played (3 again at 300 ms).
    sim.send(Pkt {
        seq: 5,
        ts: 800,
        ssrc: 1,
        marker: false,
        at_us: 100_000,
    });
    sim.send(Pkt {
        seq: 3,
        ts: 480,
        ssrc: 1,
        marker: false,
        at_us: 300_000,
    });
    let out = sim.run(20);
    assert_eq!(played(&out), (0..20).collect::<Vec<u16>>());
    let s = sim.jb.stats();
    assert_eq!((s.duplicates, s.received, s.late, s.played), (2, 20, 0, 20));
}

#[test]
fn sequence_wrap_around_is_seamless() {
    let mut sim = Sim::new(cfg(8000, 40));
    let ts0 = u32::MAX - 800;
    sim.paced(65530, ts0, 160, 20, 0);
    let out = sim.run(21);
    let want: Vec<u16> = (0..20).map(|i: u16| 65530u16.wrapping_add(i)).collect();
    assert_eq!(played(&out), want);
    let s = sim.jb.stats();
    assert_eq!((s.lost, s.concealed, s.late), (0, 0, 0));
    assert_eq!(s.base_seq, 65530);
    assert_eq!(s.highest_seq, 65536 + 13, "one cycle, then seq 13");
    assert_eq!((s.expected, s.cumulative_lost), (20, 0));
}

#[test]
fn new_ssrc_resyncs() {
    let mut sim = Sim::new(cfg(8000, 20));
    sim.paced(100, 5000, 160, 10, 0);
    let mut out = sim.run(10);
    for i in 0..10u16 {
        sim.send(Pkt {
            seq: 40000 + i,
            ts: 77 + u32::from(i) * 160,
            ssrc: 2,
            marker: i == 0,
            at_us: 200_000 + u64::from(i) * 20_000,
        });
    }
    out.extend(sim.run(10));
    let want: Vec<u16> = (100..110).chain(40000..40010).collect();
    assert_eq!(played(&out), want);
    let s = sim.jb.stats();
    assert_eq!(sim.jb.ssrc(), Some(2));
    assert_eq!((s.base_seq, s.expected, s.received), (40000, 10, 20));
    assert_eq!((s.lost, s.late), (0, 0));
}

#[test]
fn marker_with_big_jump_resyncs_and_plain_jump_needs_confirmation() {
    let mut sim = Sim::new(cfg(8000, 20));
    sim.paced(100, 5000, 160, 10, 0);
    let jump = |seq: u16, ts: u32, marker: bool, at_ms: u64| Pkt {
        seq,
        ts,
        ssrc: 1,
        marker,
        at_us: at_ms * 1000,
    };
    // Marker and a big seq jump: a restart, at once.
    sim.send(jump(30000, 9_000_000, true, 200));
    sim.send(jump(30001, 9_000_160, false, 220));
    // A talkspurt after 1 s of silence: marker, seq + 1, timestamp 1 s on:
    // not a restart (the buffer goes idle meanwhile and buffers again).
    sim.send(jump(30002, 9_008_160, true, 1240));
    // No marker: the first packet of a jump is dropped, the second believed.
    sim.send(jump(50000, 1_000_000, false, 1260));
    sim.send(jump(50001, 1_000_160, false, 1280));
    sim.send(jump(50002, 1_000_320, false, 1300));
    let mut out = sim.run(63);
    assert_eq!(out[60], Playout::Idle);
    let s = sim.jb.stats();
    assert_eq!((s.base_seq, s.highest_seq), (30000, 30002), "talkspurt");
    out.extend(sim.run(17));
    assert_eq!(
        played(&out),
        [100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 30000, 30001, 30002, 50001, 50002]
    );
    let s = sim.jb.stats();
    assert_eq!((s.base_seq, s.highest_seq, s.expected), (50001, 50002, 2));
    assert_eq!((s.received, s.lost, s.late), (15, 0, 0));
}

#[test]
fn reset_restarts_buffering_and_keeps_counters() {
    let mut sim = Sim::new(cfg(8000, 40));
    sim.paced(0, 0, 160, 6, 0);
    let out = sim.run(6);
    assert_eq!(played(&out), [0, 1, 2, 3, 4]);
    sim.jb.reset();
    assert_eq!(sim.jb.pop(sim.at(120_000)), Playout::Idle, "buffer emptied");
    // After hold: the stream carries on 2 s later.
    sim.paced(10, 1600 + 16000, 160, 10, 2000);
    sim.tick = 100;
    let out = sim.run(12);
    assert_eq!(out[0], Playout::Idle);
    assert_eq!(played(&out), (10..20).collect::<Vec<u16>>());
    let s = sim.jb.stats();
    assert_eq!((s.received, s.played, s.lost, s.late), (16, 15, 0, 0));
}

#[test]
fn overflow_drops_the_oldest() {
    let mut jb = JitterBuffer::new(JitterConfig {
        max_packets: 5,
        ..JitterConfig::default()
    });
    let t0 = Instant::now();
    for seq in 0..10u16 {
        jb.push(seq, u32::from(seq) * 160, 1, false, &seq.to_be_bytes(), t0);
    }
    // A burst looks like jitter: the buffer stretches before playing on.
    let out: Vec<Playout> = (0..20)
        .map(|i| jb.pop(t0 + Duration::from_millis(20 * i)))
        .collect();
    assert_eq!(played(&out), [5, 6, 7, 8, 9]);
    let s = jb.stats();
    assert_eq!((s.discarded, s.received, s.lost), (5, 10, 0));
}

/// Packets of 30 ms (ptime 30) drained by a 20 ms clock that pops only when
/// its decoded audio runs short (as the decoder does): every packet is
/// played, nothing is made up once playout has started.
#[test]
fn thirty_ms_packets_on_a_twenty_ms_clock() {
    let t0 = Instant::now();
    let mut jb = JitterBuffer::new(JitterConfig::default());
    let mut held_ms = 0u64; // decoded audio not yet played
    let mut log = Vec::new();
    let mut next_pkt = 0u16;
    for tick in 0..150u64 {
        let now = t0 + Duration::from_millis(tick * 20);
        // Packets due by now (one per 30 ms, each arriving as it is sent).
        // They arrive 7 ms out of phase with the clock.
        while u64::from(next_pkt) * 30 + 7 <= tick * 20 && next_pkt < 90 {
            let at = t0 + Duration::from_millis(u64::from(next_pkt) * 30 + 7);
            jb.push(
                next_pkt,
                u32::from(next_pkt) * 240,
                7,
                next_pkt == 0,
                &[0; 4],
                at,
            );
            next_pkt += 1;
        }
        let mut started = false;
        while held_ms < 20 {
            match jb.pop(now) {
                Playout::Packet { .. } => {
                    held_ms += 30;
                    log.push('P');
                }
                Playout::Missing { samples, .. } => {
                    held_ms += u64::from(samples) / 8;
                    log.push('M');
                }
                Playout::Idle => {
                    log.push('.');
                    break;
                }
            }
            started = true;
        }
        if started || held_ms >= 20 {
            held_ms = held_ms.saturating_sub(20);
        }
    }
    let s: String = log.into_iter().collect();
    // From the first packet played to the last (after it, the stream ended).
    let body = &s[s.find('P').unwrap_or(0)..=s.rfind('P').unwrap_or(0)];
    assert_eq!(body.matches('P').count(), 90, "{s}");
    assert!(
        !body.contains('M'),
        "made-up frames while packets flowed: {s}"
    );
}

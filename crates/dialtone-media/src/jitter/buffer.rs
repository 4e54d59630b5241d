//! [`JitterBuffer`]: admission of received packets and the playout decision
//! of each tick.

use std::collections::BTreeMap;
use std::time::Instant;

use super::delay::Delay;
use super::source::{SeqClass, Source};
use super::{JitterConfig, JitterStats, Playout};
use crate::rtcp::ReportBlock;

/// Ticks the playout delay must stay a frame above target before a packet is
/// dropped.
const SHRINK_TICKS: u32 = 10;
/// An underrun longer than this goes back to buffering ([`Playout::Idle`]).
const REBUFFER_MS: u32 = 500;
/// A marker packet whose timestamp moves forward by more than this is a
/// restart of the stream.
const MAX_TS_JUMP_S: i64 = 60;

#[derive(Debug)]
struct Entry {
    ts: u32,
    ts_u: i64,
    payload: Vec<u8>,
}

#[derive(Debug, Default)]
struct Counters {
    received: u64,
    played: u64,
    lost: u64,
    late: u64,
    duplicates: u64,
    discarded: u64,
    concealed: u64,
}

/// An adaptive jitter buffer for one received RTP stream; see the
/// [module documentation](super) for how it plays out and adapts.
#[derive(Debug)]
pub struct JitterBuffer {
    clock: i64,
    /// Default frame, in RTP units and in microseconds.
    frame: i64,
    frame_us: i64,
    max_us: i64,
    /// Longest packet duration or timestamp gap believed, in RTP units.
    max_fill: i64,
    max_packets: usize,
    rebuffer_ticks: u32,
    /// Reference for arrival times.
    epoch: Option<Instant>,
    src: Option<Source>,
    /// After a sequence jump: the next number that confirms a restart.
    bad_seq: Option<u16>,
    packets: BTreeMap<i64, Entry>,
    playing: bool,
    /// Extended sequence number of the next slot; kept while rebuffering.
    next_seq: Option<i64>,
    /// Timestamp (unwrapped) where the next slot starts.
    seq_ts: i64,
    /// Concealed while waiting for `next_seq` (RTP units): the playout
    /// position is `seq_ts + waited`.
    waited: i64,
    last_dur: i64,
    empty_ticks: u32,
    over_ticks: u32,
    delay: Delay,
    n: Counters,
}

impl JitterBuffer {
    /// An empty buffer, waiting for its first packet.
    pub fn new(cfg: JitterConfig) -> JitterBuffer {
        let clock = i64::from(cfg.clock_rate.max(1));
        let frame_ms = i64::from(cfg.frame_ms.max(1));
        let max_ms = i64::from(cfg.max_delay_ms.max(cfg.min_delay_ms));
        JitterBuffer {
            clock,
            frame: (clock * frame_ms / 1000).max(1),
            frame_us: frame_ms * 1000,
            max_us: max_ms * 1000,
            max_fill: (clock * max_ms.max(frame_ms) / 1000).max(1),
            max_packets: cfg.max_packets.max(2),
            rebuffer_ticks: REBUFFER_MS / cfg.frame_ms.max(1),
            epoch: None,
            src: None,
            bad_seq: None,
            packets: BTreeMap::new(),
            playing: false,
            next_seq: None,
            seq_ts: 0,
            waited: 0,
            last_dur: (clock * frame_ms / 1000).max(1),
            empty_ticks: 0,
            over_ticks: 0,
            delay: Delay::new(
                frame_ms * 1000,
                i64::from(cfg.min_delay_ms) * 1000,
                max_ms * 1000,
            ),
            n: Counters::default(),
        }
    }

    /// A received packet. Handles seq wrap-around (extended 32-bit seq),
    /// duplicates (dropped, counted), packets older than what was already
    /// played (dropped, counted as late), a new SSRC or a marker bit with a
    /// big seq/ts jump (resync: flush and restart), overflow (drop oldest,
    /// counted). A big sequence jump without marker is believed once the
    /// next packet follows it (RFC 3550 A.1).
    pub fn push(
        &mut self,
        seq: u16,
        timestamp: u32,
        ssrc: u32,
        marker: bool,
        payload: &[u8],
        arrival: Instant,
    ) {
        let Some((ext, ts_u)) = self.admit(seq, timestamp, ssrc, marker) else {
            return;
        };
        let epoch = *self.epoch.get_or_insert(arrival);
        let since = arrival.saturating_duration_since(epoch);
        let d_us = since.as_micros() as i64 - self.ticks_us(ts_u);
        if self
            .delay
            .min_delay()
            .is_some_and(|min| (d_us - min).abs() > super::delay::DISCONTINUITY_US)
        {
            if let Some(src) = self.src.as_mut() {
                src.forget_transit();
            }
        }
        let transit = since.as_secs_f64() * self.clock as f64 - ts_u as f64;
        if let Some(src) = self.src.as_mut() {
            src.accept(ext, timestamp, ts_u, transit);
        }
        self.n.received += 1;
        self.delay.observe(d_us, arrival);
        if self.next_seq.is_some_and(|next| ext < next) {
            self.n.late += 1;
            self.delay.boost(d_us, arrival);
            return;
        }
        if self.playing && ts_u < self.seq_ts + self.waited {
            // Its slot time has passed: the buffer was waiting for it.
            self.delay.boost(d_us, arrival);
        }
        if self.packets.len() >= self.max_packets && !self.drop_oldest(ext) {
            return;
        }
        let entry = Entry {
            ts: timestamp,
            ts_u,
            payload: payload.to_vec(),
        };
        self.packets.insert(ext, entry);
    }

    /// Called every `frame_ms` by the playout clock; returns what to play for
    /// this tick: [`Playout::Idle`] until the first buffered packet has
    /// waited `target − frame` (the buffered span reaches the target delay),
    /// then one packet per call in sequence order, a [`Playout::Missing`] for
    /// each packet not there in time, for each frame inserted to grow the
    /// delay, and across timestamp gaps (DTX). After an underrun of 500 ms it
    /// buffers again.
    pub fn pop(&mut self, now: Instant) -> Playout {
        if !self.playing && !self.try_start(now) {
            return Playout::Idle;
        }
        self.delay.tick(now);
        if let Some(pd) = self.playout_delay(now) {
            let target = self.delay.target_us() - self.frame_us;
            if pd < target - self.frame_us / 2 {
                // Stretch: play a concealment frame, keep the packets.
                self.over_ticks = 0;
                self.n.concealed += 1;
                return Playout::Missing {
                    samples: self.last_dur as u32,
                    next: None,
                };
            }
            if pd >= target + self.frame_us {
                self.over_ticks += 1;
            } else {
                self.over_ticks = 0;
            }
            let shrink = self.over_ticks >= SHRINK_TICKS || pd > self.max_us + self.frame_us;
            if shrink && self.drop_head() {
                self.over_ticks = 0;
            }
        }
        self.play_slot()
    }

    /// Counters and estimates; see [`JitterStats`].
    pub fn stats(&self) -> JitterStats {
        let n = &self.n;
        let mut stats = JitterStats {
            received: n.received,
            played: n.played,
            lost: n.lost,
            late: n.late,
            duplicates: n.duplicates,
            discarded: n.discarded,
            concealed: n.concealed,
            delay_ms: ((self.delay.target_us() + 500) / 1000) as u32,
            max_delay_ms: ((self.delay.peak_us() + 500) / 1000) as u32,
            ..JitterStats::default()
        };
        if let Some(src) = &self.src {
            stats.jitter_ms = src.jitter * 1000.0 / self.clock as f64;
            stats.highest_seq = src.highest_seq();
            stats.base_seq = src.base_seq();
            stats.expected = src.expected();
            stats.cumulative_lost = src.cumulative_lost();
            stats.fraction_lost = src.fraction();
        }
        stats
    }

    /// The RTCP report block about the current source (RFC 3550 §6.4.1,
    /// A.3), with the caller's `lsr`/`dlsr` (see [`crate::rtcp::lsr`] and
    /// [`crate::rtcp::dlsr`]); starts a new interval for `fraction_lost`.
    /// `None` before the first packet.
    pub fn report_block(&mut self, lsr: u32, dlsr: u32) -> Option<ReportBlock> {
        let src = self.src.as_mut()?;
        Some(ReportBlock {
            ssrc: src.ssrc,
            fraction_lost: src.take_fraction(),
            cumulative_lost: src
                .cumulative_lost()
                .clamp(i32::MIN.into(), i32::MAX.into()) as i32,
            highest_seq: src.highest_seq(),
            jitter: src.jitter as u32,
            lsr,
            dlsr,
        })
    }

    /// SSRC of the source being received.
    pub fn ssrc(&self) -> Option<u32> {
        self.src.as_ref().map(|s| s.ssrc)
    }

    /// Empties the buffer (e.g. after hold) and restarts buffering, keeping
    /// counters, the source's sequence state and the target delay.
    pub fn reset(&mut self) {
        self.packets.clear();
        self.restart_playout();
        if let Some(src) = self.src.as_mut() {
            src.forget_transit();
        }
    }

    /// Finds the packet's place in the source, resyncing on a new SSRC or a
    /// (marked or confirmed) jump. `None`: drop it.
    fn admit(&mut self, seq: u16, ts: u32, ssrc: u32, marker: bool) -> Option<(i64, i64)> {
        if self.src.as_ref().is_some_and(|s| s.ssrc != ssrc) {
            self.resync();
        }
        let src = self.src.get_or_insert_with(|| Source::new(ssrc, seq, ts));
        let class = src.classify(seq, ts);
        let restart = match class {
            SeqClass::Duplicate => {
                self.n.duplicates += 1;
                return None;
            }
            SeqClass::Jump if !marker && self.bad_seq != Some(seq) => {
                self.bad_seq = Some(seq.wrapping_add(1));
                return None;
            }
            SeqClass::Jump => true,
            SeqClass::Ok { ts_u, .. } => {
                let jump = src.ts_jump(ts_u);
                marker && (jump < -self.max_fill || jump > MAX_TS_JUMP_S * self.clock)
            }
        };
        self.bad_seq = None;
        if !restart {
            return match class {
                SeqClass::Ok { ext, ts_u } => Some((ext, ts_u)),
                _ => None,
            };
        }
        self.resync();
        let src = self.src.insert(Source::new(ssrc, seq, ts));
        match src.classify(seq, ts) {
            SeqClass::Ok { ext, ts_u } => Some((ext, ts_u)),
            _ => None,
        }
    }

    /// A new source or a restart of the stream: flush, forget the stream.
    fn resync(&mut self) {
        self.n.discarded += self.packets.len() as u64;
        self.packets.clear();
        self.src = None;
        self.bad_seq = None;
        self.restart_playout();
    }

    fn restart_playout(&mut self) {
        self.playing = false;
        self.next_seq = None;
        self.waited = 0;
        self.empty_ticks = 0;
        self.over_ticks = 0;
        self.last_dur = self.frame;
        self.delay.clear_window();
    }

    /// The buffer is full: drop the oldest packet, or the new one `ext` if
    /// older still. Whether to keep the new one.
    fn drop_oldest(&mut self, ext: i64) -> bool {
        self.n.discarded += 1;
        if self
            .packets
            .first_key_value()
            .is_none_or(|(&first, _)| ext < first)
        {
            return false;
        }
        if let Some((seq, e)) = self.packets.pop_first() {
            if self.next_seq.is_some_and(|next| next <= seq) {
                self.next_seq = Some(seq + 1);
                self.seq_ts = e.ts_u + self.last_dur;
                self.waited = 0;
            }
        }
        true
    }

    /// Starts playout once the first buffered packet has waited long enough.
    fn try_start(&mut self, now: Instant) -> bool {
        let Some((&seq, head)) = self.packets.first_key_value() else {
            return false;
        };
        let Some(pd) = self.delay_at(now, head.ts_u) else {
            return false;
        };
        if pd < self.delay.target_us() - self.frame_us {
            return false;
        }
        if let Some(next) = self.next_seq {
            // Rebuffering after a long underrun.
            self.n.lost += (seq - next).max(0) as u64;
        }
        self.next_seq = Some(seq);
        self.seq_ts = head.ts_u;
        self.waited = 0;
        self.empty_ticks = 0;
        self.over_ticks = 0;
        self.playing = true;
        true
    }

    /// How long a packet of timestamp `ts_u` that took the fastest recent
    /// path has been waiting at `now` (negative: it would not be here yet).
    fn delay_at(&self, now: Instant, ts_u: i64) -> Option<i64> {
        let min = self.delay.min_delay()?;
        let since = now.saturating_duration_since(self.epoch?);
        Some(since.as_micros() as i64 - self.ticks_us(ts_u) - min)
    }

    /// The playout delay: [`Self::delay_at`] the current playout position.
    fn playout_delay(&self, now: Instant) -> Option<i64> {
        self.delay_at(now, self.seq_ts + self.waited)
    }

    /// Plays the next slot: its packet, or a concealment frame.
    fn play_slot(&mut self) -> Playout {
        let Some((&seq, head)) = self.packets.first_key_value() else {
            return self.underrun();
        };
        let head_ts = head.ts_u;
        self.empty_ticks = 0;
        let mut next = self.next_seq.unwrap_or(seq);
        if seq > next {
            // Packets next..seq are missing; some slots may already have been
            // concealed while the buffer was empty.
            let missing = seq - next;
            let per = self.duration((head_ts - self.seq_ts) / missing);
            let covered = ((self.waited + per / 2) / per).min(missing);
            next += covered;
            self.seq_ts += covered * per;
            self.waited = (self.waited - covered * per).max(0);
            self.n.lost += covered as u64;
            self.next_seq = Some(next);
            if next < seq {
                let fec = self.packets.get(&(next + 1)).map(|e| e.payload.clone());
                self.next_seq = Some(next + 1);
                self.seq_ts += per;
                self.n.lost += 1;
                self.n.concealed += 1;
                return Playout::Missing {
                    samples: per as u32,
                    next: fec,
                };
            }
        }
        let gap = head_ts - (self.seq_ts + self.waited);
        if gap > self.last_dur / 2 && gap <= self.max_fill {
            // A gap in the timestamps (DTX): fill it before playing on.
            let samples = gap.min(self.last_dur);
            self.waited += samples;
            self.n.concealed += 1;
            return Playout::Missing {
                samples: samples as u32,
                next: None,
            };
        }
        self.play_head()
    }

    fn play_head(&mut self) -> Playout {
        let Some((seq, e)) = self.packets.pop_first() else {
            return self.underrun();
        };
        let dur = match self.packets.first_key_value() {
            Some((&s, n)) if s == seq + 1 => self.duration(n.ts_u - e.ts_u),
            _ => self.last_dur,
        };
        self.last_dur = dur;
        self.next_seq = Some(seq + 1);
        self.seq_ts = e.ts_u + dur;
        self.waited = 0;
        self.n.played += 1;
        Playout::Packet {
            payload: e.payload,
            timestamp: e.ts,
        }
    }

    /// Nothing buffered: conceal while waiting, then go back to buffering.
    fn underrun(&mut self) -> Playout {
        self.empty_ticks += 1;
        if self.empty_ticks > self.rebuffer_ticks {
            self.playing = false;
            return Playout::Idle;
        }
        self.waited += self.last_dur;
        self.n.concealed += 1;
        Playout::Missing {
            samples: self.last_dur as u32,
            next: None,
        }
    }

    /// Drops the packet due now, when the one after it is here too.
    fn drop_head(&mut self) -> bool {
        let Some(next) = self.next_seq else {
            return false;
        };
        let due = self
            .packets
            .first_key_value()
            .is_some_and(|(&s, _)| s == next);
        let Some(after_ts) = self.packets.get(&(next + 1)).map(|e| e.ts_u) else {
            return false;
        };
        if self.waited > 0 || !due {
            return false;
        }
        self.packets.pop_first();
        self.next_seq = Some(next + 1);
        self.seq_ts = after_ts;
        self.n.discarded += 1;
        true
    }

    /// A packet duration in RTP units if plausible, else the last one.
    fn duration(&self, ticks: i64) -> i64 {
        if ticks > 0 && ticks <= self.max_fill {
            ticks
        } else {
            self.last_dur
        }
    }

    fn ticks_us(&self, ticks: i64) -> i64 {
        ticks * 1_000_000 / self.clock
    }
}

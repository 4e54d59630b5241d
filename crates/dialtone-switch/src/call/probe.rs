//! Test calls (`sip_call`): dialtone calls a number, plays a 1 kHz tone for
//! a while and listens for it to come back (the far end echoes), then hangs
//! up. What it measured — whether the echo came back, the RTP counts, loss
//! and jitter — goes into the call record and the running totals that
//! `sip_statistics` reports until `sip_reset`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use dialtone_media::{EndpointStats, PortEvent, PortFrame, PortPlayer};
use serde::Serialize;
use tokio::sync::mpsc;

/// The port's rate: narrowband is enough for a tone.
pub const RATE: u32 = 8000;
const TONE_HZ: f64 = 1000.0;
/// Queued ahead of the clock, refilled as it drains.
const AHEAD: Duration = Duration::from_secs(2);

/// What one test call measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ProbeReport {
    pub seconds: f64,
    /// 20 ms frames heard from the far end.
    pub frames_heard: u64,
    /// Of those, frames that carried the tone back.
    pub echo_frames: u64,
    /// The tone came back for most of the call.
    pub echo: bool,
    pub rtp_sent: u64,
    pub rtp_received: u64,
    pub lost: u64,
    pub jitter_ms: f64,
}

impl ProbeReport {
    /// Adds the endpoint's counters to what the listener heard.
    pub fn with_stats(mut self, stats: Option<&EndpointStats>) -> ProbeReport {
        if let Some(s) = stats {
            self.rtp_sent = s.rtp_out;
            self.rtp_received = s.rtp_in;
            if let Some(j) = &s.jitter {
                self.lost = j.lost;
                self.jitter_ms = (j.jitter_ms * 100.0).round() / 100.0;
            }
        }
        self
    }
}

/// One second of the tone at [`RATE`], at -10 dBFS.
fn tone_second(phase: &mut u64) -> Vec<i16> {
    let n = RATE as u64;
    let out = (*phase..*phase + n)
        .map(|i| {
            let t = i as f64 / f64::from(RATE);
            (0.3 * 32767.0 * (2.0 * std::f64::consts::PI * TONE_HZ * t).sin()) as i16
        })
        .collect();
    *phase += n;
    out
}

/// The share of a frame's energy at the tone's frequency (Goertzel), and
/// whether the frame is loud enough to count.
fn tone_share(pcm: &[i16]) -> (f64, bool) {
    let coeff = 2.0 * (2.0 * std::f64::consts::PI * TONE_HZ / f64::from(RATE)).cos();
    let (mut s1, mut s2, mut energy) = (0.0f64, 0.0f64, 0.0f64);
    for &x in pcm {
        let x = f64::from(x) / 32768.0;
        energy += x * x;
        let s0 = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    let n = pcm.len().max(1) as f64;
    // A pure tone's Goertzel power is about energy * n / 2.
    let share = if energy > 0.0 {
        (2.0 * power / (energy * n)).min(1.0)
    } else {
        0.0
    };
    let loud = (energy / n).sqrt() > 0.01;
    (share, loud)
}

/// Plays the tone for `duration` and listens for it.
pub async fn run(
    player: PortPlayer,
    mut frames: mpsc::Receiver<PortEvent>,
    duration: Duration,
) -> ProbeReport {
    let started = Instant::now();
    let mut phase = 0u64;
    let mut report = ProbeReport::default();
    let mut refill = tokio::time::interval(Duration::from_millis(250));
    let end = tokio::time::sleep(duration);
    tokio::pin!(end);
    loop {
        tokio::select! {
            _ = &mut end => break,
            _ = refill.tick() => {
                if player.queued() < AHEAD {
                    let _ = player.play(PortFrame::Pcm(tone_second(&mut phase)));
                }
            }
            ev = frames.recv() => match ev {
                Some(PortEvent::Audio(PortFrame::Pcm(pcm))) => {
                    report.frames_heard += 1;
                    let (share, loud) = tone_share(&pcm);
                    if loud && share > 0.5 {
                        report.echo_frames += 1;
                    }
                }
                Some(_) => {}
                None => break,
            },
        }
    }
    player.clear();
    report.seconds = started.elapsed().as_secs_f64();
    // The echo starts after a round trip: most frames of the rest carry it.
    report.echo = report.frames_heard > 0 && report.echo_frames * 2 >= report.frames_heard;
    report
}

/// Running totals of the test calls, until reset.
#[derive(Debug, Default)]
pub struct ProbeStats(Mutex<Totals>);

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Totals {
    pub calls: u64,
    pub answered: u64,
    pub failed: u64,
    pub echo_ok: u64,
    pub rtp_sent: u64,
    pub rtp_received: u64,
    pub lost: u64,
    /// Mean of the calls' jitter.
    pub jitter_ms: f64,
    /// The live test calls' ids.
    #[serde(skip)]
    pub live: Vec<String>,
}

impl ProbeStats {
    fn lock(&self) -> std::sync::MutexGuard<'_, Totals> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn placed(&self, call_id: &str) {
        let mut t = self.lock();
        t.calls += 1;
        t.live.push(call_id.to_string());
    }

    pub fn ended(&self, call_id: &str, report: Option<&ProbeReport>) {
        let mut t = self.lock();
        // A call placed before the last reset does not count.
        if !t.live.iter().any(|c| c == call_id) {
            return;
        }
        t.live.retain(|c| c != call_id);
        match report {
            Some(r) => {
                t.answered += 1;
                t.echo_ok += u64::from(r.echo);
                t.rtp_sent += r.rtp_sent;
                t.rtp_received += r.rtp_received;
                t.lost += r.lost;
                let n = t.answered as f64;
                t.jitter_ms += (r.jitter_ms - t.jitter_ms) / n;
            }
            None => t.failed += 1,
        }
    }

    pub fn totals(&self) -> Totals {
        self.lock().clone()
    }

    /// Zeroes the totals; returns the live test calls (to end them).
    pub fn reset(&self) -> Vec<String> {
        let mut t = self.lock();
        let live = std::mem::take(&mut t.live);
        *t = Totals::default();
        live
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tone_is_recognised_and_noise_is_not() {
        let mut phase = 0;
        let tone = tone_second(&mut phase);
        let (share, loud) = tone_share(&tone[..160]);
        assert!(loud && share > 0.9, "{share}");
        let other: Vec<i16> = (0..160)
            .map(|i| {
                (8000.0 * (2.0 * std::f64::consts::PI * 400.0 * i as f64 / 8000.0).sin()) as i16
            })
            .collect();
        assert!(tone_share(&other).0 < 0.2);
        assert!(!tone_share(&[0; 160]).1);
    }

    #[test]
    fn totals_add_up_and_reset() {
        let s = ProbeStats::default();
        s.placed("a");
        s.placed("b");
        let r = ProbeReport {
            echo: true,
            rtp_sent: 100,
            rtp_received: 98,
            lost: 2,
            jitter_ms: 3.0,
            ..ProbeReport::default()
        };
        s.ended("a", Some(&r));
        s.ended("b", None);
        let t = s.totals();
        assert_eq!(
            (t.calls, t.answered, t.failed, t.echo_ok, t.lost),
            (2, 1, 1, 1, 2)
        );
        s.placed("c");
        assert_eq!(s.reset(), vec!["c".to_string()]);
        assert_eq!(s.totals().calls, 0);
    }
}

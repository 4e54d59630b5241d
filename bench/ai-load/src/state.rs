//! What the tasks share: the run's configuration and clock, one [`Call`]
//! per SIP call (its RTP socket, send-time rings and counters, filled by the
//! RTP tasks on the caller's side and by the websocket session on the
//! model's side), and the run-wide histograms and counters.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;

use crate::stats::{Hist, Ring};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// One short delta (one 20 ms frame) every --delta-every-ms per call:
    /// latency both ways with the playout queue empty.
    Latency,
    /// --talk-ms of agent audio sent at once, speech_started after
    /// --barge-after-ms, every --cycle-ms: barge-in to silence.
    Bargein,
    /// The model streams continuously at real time (--lead-ms ahead,
    /// --chunk-ms deltas): loss, late playout and CPU.
    Load,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub scenario: Scenario,
    pub api_key: Option<String>,
    pub chunk_ms: u32,
    pub lead_ms: u32,
    pub response_ms: u32,
    pub delta_every_ms: u32,
    pub talk_ms: u32,
    pub barge_after_ms: u32,
    pub cycle_ms: u32,
}

/// A barge-in in progress, seen from the caller.
#[derive(Debug, Default)]
pub struct Barge {
    /// When speech_started was sent (ns on the run's clock).
    pub t_s: Option<u64>,
    /// The last agent packet that arrived after t_s.
    pub last_agent_after: Option<u64>,
    /// The first silence packet that arrived after t_s.
    pub first_silence_after: Option<u64>,
    /// Agent frames of this cycle the caller received (before and after t_s).
    pub heard: u32,
}

pub const NONE: u32 = u32::MAX;

pub struct Call {
    pub idx: u32,
    pub sock: UdpSocket,
    pub port: u16,
    /// dialtone's RTP address for this call (from the 200's SDP).
    pub media: OnceLock<SocketAddr>,
    pub rtp_on: AtomicBool,
    /// Caller packets sent (= the next sequence number).
    pub rtp_sent: AtomicU32,
    pub sent_at: Ring,
    // caller -> model, counted by the websocket session
    pub heard_first: AtomicU32,
    pub heard: AtomicU64,
    pub heard_dup: AtomicU64,
    pub heard_unmarked: AtomicU64,
    pub heard_foreign: AtomicU64,
    // model -> caller
    pub agent_sent: AtomicU32,
    pub agent_at: Ring,
    pub agent_rx: AtomicU64,
    pub agent_ooo: AtomicU64,
    pub gaps: AtomicU64,
    pub underruns: AtomicU64,
    pub silence_rx: AtomicU64,
    pub other_rx: AtomicU64,
    pub barge: Mutex<Barge>,
    /// A websocket session claimed this call.
    pub session: AtomicBool,
}

impl Call {
    pub fn new(idx: u32, sock: UdpSocket, port: u16) -> Call {
        Call {
            idx,
            sock,
            port,
            media: OnceLock::new(),
            rtp_on: AtomicBool::new(false),
            rtp_sent: AtomicU32::new(0),
            sent_at: Ring::new(),
            heard_first: AtomicU32::new(NONE),
            heard: AtomicU64::new(0),
            heard_dup: AtomicU64::new(0),
            heard_unmarked: AtomicU64::new(0),
            heard_foreign: AtomicU64::new(0),
            agent_sent: AtomicU32::new(0),
            agent_at: Ring::new(),
            agent_rx: AtomicU64::new(0),
            agent_ooo: AtomicU64::new(0),
            gaps: AtomicU64::new(0),
            underruns: AtomicU64::new(0),
            silence_rx: AtomicU64::new(0),
            other_rx: AtomicU64::new(0),
            barge: Mutex::new(Barge::default()),
            session: AtomicBool::new(false),
        }
    }

    pub fn barge(&self) -> MutexGuard<'_, Barge> {
        self.barge.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Closes the barge-in in progress, if any, into the run's figures.
    pub fn finish_barge(&self, sh: &Shared) {
        let mut b = self.barge();
        if let Some(ts) = b.t_s.take() {
            sh.barges.fetch_add(1, Relaxed);
            match b.last_agent_after {
                Some(t) => sh.barge_last.record(t.saturating_sub(ts)),
                None => {
                    sh.barge_none_after.fetch_add(1, Relaxed);
                    sh.barge_last.record(0);
                }
            }
            match b.first_silence_after {
                Some(t) => sh.barge_silence.record(t.saturating_sub(ts)),
                None => {
                    sh.barge_no_silence.fetch_add(1, Relaxed);
                }
            }
        }
        *b = Barge::default();
    }
}

pub struct Shared {
    pub t0: Instant,
    pub cfg: Config,
    pub calls: Vec<std::sync::Arc<Call>>,
    pub model_on: AtomicBool,
    pub rtp_stop: AtomicBool,
    /// Caller packet -> its append at the model.
    pub lat_up: Hist,
    /// Delta at dialtone -> its first RTP packet at the caller (latency scenario).
    pub lat_down: Hist,
    /// Agent packet inter-arrival at the caller (load scenario).
    pub interarrival: Hist,
    pub barge_last: Hist,
    pub barge_silence: Hist,
    pub barges: AtomicU64,
    pub barge_none_after: AtomicU64,
    pub barge_no_silence: AtomicU64,
    /// Agent packets more than 200 ms after speech_started.
    pub barge_leaks: AtomicU64,
    pub truncate_diff_ms: Mutex<Vec<i64>>,
    pub last_agent_ns: AtomicU64,
    pub ws_accepted: AtomicU64,
    pub ws_refused: AtomicU64,
    pub ws_errors: AtomicU64,
    pub ws_open: AtomicU64,
    pub unexpected: Mutex<BTreeMap<String, u64>>,
    pub send_errors: AtomicU64,
    pub sender_late_5ms: AtomicU64,
    pub sender_max_late_ns: AtomicU64,
    pub setup_ms: Mutex<Vec<f64>>,
    /// (due, fired) of sender ticks more than 5 ms late: the peer stalled.
    pub stalls: Mutex<Vec<(u64, u64)>>,
    /// (last agent packet, this one) of every gap over 40 ms.
    pub gap_spans: Mutex<Vec<(u64, u64)>>,
    pub remote_byes: AtomicU64,
}

impl Shared {
    pub fn new(cfg: Config, calls: Vec<std::sync::Arc<Call>>) -> Shared {
        Shared {
            t0: Instant::now(),
            cfg,
            calls,
            model_on: AtomicBool::new(true),
            rtp_stop: AtomicBool::new(false),
            lat_up: Hist::new(),
            lat_down: Hist::new(),
            interarrival: Hist::new(),
            barge_last: Hist::new(),
            barge_silence: Hist::new(),
            barges: AtomicU64::new(0),
            barge_none_after: AtomicU64::new(0),
            barge_no_silence: AtomicU64::new(0),
            barge_leaks: AtomicU64::new(0),
            truncate_diff_ms: Mutex::new(Vec::new()),
            last_agent_ns: AtomicU64::new(0),
            ws_accepted: AtomicU64::new(0),
            ws_refused: AtomicU64::new(0),
            ws_errors: AtomicU64::new(0),
            ws_open: AtomicU64::new(0),
            unexpected: Mutex::new(BTreeMap::new()),
            send_errors: AtomicU64::new(0),
            sender_late_5ms: AtomicU64::new(0),
            sender_max_late_ns: AtomicU64::new(0),
            setup_ms: Mutex::new(Vec::new()),
            stalls: Mutex::new(Vec::new()),
            gap_spans: Mutex::new(Vec::new()),
            remote_byes: AtomicU64::new(0),
        }
    }

    pub fn now_ns(&self) -> u64 {
        self.t0.elapsed().as_nanos() as u64
    }

    pub fn call(&self, idx: u32) -> Option<&std::sync::Arc<Call>> {
        self.calls.get(idx as usize)
    }

    pub fn unexpected(&self, kind: &str) {
        let mut m = self.unexpected.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry(kind.to_string()).or_insert(0) += 1;
    }

    pub fn sum(&self, f: impl Fn(&Call) -> u64) -> u64 {
        self.calls.iter().map(|c| f(c)).sum()
    }
}

pub fn ms(x: u32) -> Duration {
    Duration::from_millis(u64::from(x))
}

//! The run's summary: the measurement window's /proc samples, the counts
//! and histograms turned into one JSON object (written with --json), and
//! the same as a few lines of text.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;

use serde_json::{json, Value};

use crate::procfs::{self, ProcSample, HZ};
use crate::state::{Scenario, Shared, NONE};
use crate::stats::r1;
use crate::Args;

/// The state of things at one edge of the measurement window.
pub struct Window {
    t_ns: u64,
    dialtone: Option<ProcSample>,
    me: ProcSample,
    host: u64,
    steal: u64,
    gaps: u64,
    underruns: u64,
    late_ticks: u64,
}

impl Window {
    pub fn take(sh: &Shared, pid: Option<u32>) -> Window {
        Window {
            t_ns: sh.now_ns(),
            dialtone: pid.and_then(|p| procfs::sample(&p.to_string()).ok()),
            me: procfs::sample("self").unwrap_or_default(),
            host: procfs::host_busy().map_or(0, |h| h.0),
            steal: procfs::host_busy().map_or(0, |h| h.1),
            gaps: sh.sum(|c| c.gaps.load(Relaxed)),
            underruns: sh.sum(|c| c.underruns.load(Relaxed)),
            late_ticks: sh.sender_late_5ms.load(Relaxed),
        }
    }
}

fn pct(ticks: u64, secs: f64) -> f64 {
    r1(ticks as f64 / HZ / secs * 100.0)
}

#[allow(clippy::too_many_arguments)]
pub fn build(
    args: &Args,
    sh: &Shared,
    w0: &Window,
    w1: &Window,
    up: &[bool],
    codes: &BTreeMap<u16, u32>,
    setup_s: f64,
    loadavg: &str,
) -> Value {
    let n_up = up.iter().filter(|u| **u).count() as u64;
    let secs = (w1.t_ns - w0.t_ns) as f64 / 1e9;
    // Caller -> model, counted from the first packet each model session heard.
    let (mut sent, mut before, mut heard, mut lost) = (0u64, 0u64, 0u64, 0u64);
    for (c, _) in sh.calls.iter().zip(up).filter(|(_, u)| **u) {
        let s = u64::from(c.rtp_sent.load(Relaxed));
        let first = c.heard_first.load(Relaxed);
        let h = c.heard.load(Relaxed);
        let b = if first == NONE { s } else { u64::from(first) };
        sent += s;
        before += b;
        heard += h;
        lost += s.saturating_sub(b).saturating_sub(h);
    }
    let expected = sent - before;
    let agent_sent = sh.sum(|c| u64::from(c.agent_sent.load(Relaxed)));
    let agent_rx = sh.sum(|c| c.agent_rx.load(Relaxed));
    let mut setup = sh.setup_ms.lock().map(|v| v.clone()).unwrap_or_default();
    setup.sort_by(f64::total_cmp);
    let q = |p: f64| -> f64 {
        if setup.is_empty() {
            return 0.0;
        }
        let i = ((p * setup.len() as f64).ceil() as usize).clamp(1, setup.len()) - 1;
        r1(setup[i])
    };
    let mut trunc = sh
        .truncate_diff_ms
        .lock()
        .map(|v| v.clone())
        .unwrap_or_default();
    trunc.sort_unstable();
    let trunc_abs_max = trunc.iter().map(|d| d.abs()).max().unwrap_or(0);
    let trunc_over = trunc.iter().filter(|d| d.abs() > 20).count();
    let (cpu, threads) = match (&w0.dialtone, &w1.dialtone) {
        (Some(a), Some(b)) => {
            let t = b.ticks.saturating_sub(a.ticks);
            let mut th: Vec<(String, f64)> = b
                .threads
                .iter()
                .map(|(name, v)| {
                    let before = a.threads.get(name).copied().unwrap_or(0);
                    (name.clone(), pct(v.saturating_sub(before), secs))
                })
                .filter(|(_, p)| *p > 0.0)
                .collect();
            th.sort_by(|x, y| y.1.total_cmp(&x.1));
            let call_s = n_up as f64 * secs;
            let us_per_call_s = if call_s > 0.0 {
                (t as f64 / HZ * 1e6 / call_s).round()
            } else {
                0.0
            };
            (
                json!({"pct_core": pct(t, secs), "us_per_call_second": us_per_call_s,
                       "rss_kib": b.rss_kib}),
                json!(th.into_iter().collect::<BTreeMap<_, _>>()),
            )
        }
        _ => (Value::Null, Value::Null),
    };
    let me = w1.me.ticks.saturating_sub(w0.me.ticks);
    let me_threads: BTreeMap<String, f64> = w1
        .me
        .threads
        .iter()
        .map(|(n, v)| {
            let before = w0.me.threads.get(n).copied().unwrap_or(0);
            (n.clone(), pct(v.saturating_sub(before), secs))
        })
        .collect();
    let host = w1.host.saturating_sub(w0.host);
    let dt = match (&w0.dialtone, &w1.dialtone) {
        (Some(a), Some(b)) => b.ticks.saturating_sub(a.ticks),
        _ => 0,
    };
    // Gaps during which the peer itself was stalled (its sender late):
    // those say nothing about dialtone.
    let mut stalls = sh.stalls.lock().map(|v| v.clone()).unwrap_or_default();
    stalls.sort_unstable();
    // The latest end among the stalls that start before each index.
    let reach: Vec<u64> = stalls
        .iter()
        .scan(0u64, |m, &(_, e)| {
            *m = (*m).max(e);
            Some(*m)
        })
        .collect();
    let gaps_in_stall = sh
        .gap_spans
        .lock()
        .map(|v| {
            v.iter()
                .filter(|&&(a, b)| {
                    let i = stalls.partition_point(|&(s, _)| s < b);
                    i > 0 && reach.get(i - 1).is_some_and(|&e| e > a)
                })
                .count()
        })
        .unwrap_or(0);
    let unexpected = sh.unexpected.lock().map(|m| m.clone()).unwrap_or_default();
    json!({
        "label": args.label, "scenario": format!("{:?}", args.scenario).to_lowercase(),
        "calls": args.calls, "up": n_up, "invite_codes": codes, "setup_seconds": r1(setup_s),
        "setup_ms": {"p50": q(0.5), "p99": q(0.99), "max": q(1.0)},
        "window_seconds": r1(secs), "loadavg_at_start": loadavg,
        "caller_to_model": {
            "rtp_sent": sent, "before_port": before, "expected": expected, "heard": heard,
            "lost": lost, "loss_pct": if expected > 0 { lost as f64 * 100.0 / expected as f64 } else { 0.0 },
            "duplicates": sh.sum(|c| c.heard_dup.load(Relaxed)),
            "unmarked": sh.sum(|c| c.heard_unmarked.load(Relaxed)),
            "foreign": sh.sum(|c| c.heard_foreign.load(Relaxed)),
            "latency": sh.lat_up.quantiles().json(),
        },
        "model_to_caller": {
            "frames_sent": agent_sent, "frames_received": agent_rx,
            "lost": if args.scenario == Scenario::Bargein { Value::Null } else { json!(agent_sent.saturating_sub(agent_rx)) },
            "out_of_order": sh.sum(|c| c.agent_ooo.load(Relaxed)),
            "gaps_over_40ms": sh.sum(|c| c.gaps.load(Relaxed)),
            "gaps_over_40ms_in_window": w1.gaps - w0.gaps,
            "gaps_over_40ms_while_peer_stalled": gaps_in_stall,
            "underruns": sh.sum(|c| c.underruns.load(Relaxed)),
            "underruns_in_window": w1.underruns - w0.underruns,
            "silence_packets": sh.sum(|c| c.silence_rx.load(Relaxed)),
            "other_packets": sh.sum(|c| c.other_rx.load(Relaxed)),
            "interarrival": sh.interarrival.quantiles().json(),
            "latency": sh.lat_down.quantiles().json(),
        },
        "barge_in": {
            "count": sh.barges.load(Relaxed),
            "to_last_agent_packet": sh.barge_last.quantiles().json(),
            "no_agent_packet_after": sh.barge_none_after.load(Relaxed),
            "to_first_silence_packet": sh.barge_silence.quantiles().json(),
            "no_silence_after": sh.barge_no_silence.load(Relaxed),
            "leaks_over_200ms": sh.barge_leaks.load(Relaxed),
            "truncates": trunc.len(), "truncate_minus_heard_ms_abs_max": trunc_abs_max,
            "truncate_off_by_more_than_20ms": trunc_over,
        },
        "dialtone": cpu, "dialtone_threads_pct": threads,
        "peer": {"pct_core": pct(me, secs), "rss_kib": w1.me.rss_kib, "threads_pct": me_threads,
                 "rtp_slots": args.rtp_slots, "threads": args.threads,
                 "sender_ticks_late_5ms": sh.sender_late_5ms.load(Relaxed),
                 "sender_ticks_late_5ms_in_window": w1.late_ticks - w0.late_ticks,
                 "sender_max_late_ms": r1(sh.sender_max_late_ns.load(Relaxed) as f64 / 1e6),
                 "send_errors": sh.send_errors.load(Relaxed)},
        "others_pct_core": pct(host.saturating_sub(me).saturating_sub(dt), secs),
        "steal_pct_core": pct(w1.steal.saturating_sub(w0.steal), secs),
        "websocket": {"accepted": sh.ws_accepted.load(Relaxed),
                      "calls_claimed": sh.calls.iter().filter(|c| c.session.load(Relaxed)).count(), "refused": sh.ws_refused.load(Relaxed),
                      "errors": sh.ws_errors.load(Relaxed), "unexpected_events": unexpected},
    })
}

/// Adds the hang-up's outcome; whether every call was up, stayed up and
/// was hung up cleanly.
pub fn finish(
    out: &mut Value,
    sh: &Shared,
    byes: &BTreeMap<u16, u32>,
    up: usize,
    calls: usize,
) -> bool {
    let ok_byes: u32 = byes
        .iter()
        .filter(|(c, _)| (200..300).contains(*c))
        .map(|(_, n)| n)
        .sum();
    let remote = sh.remote_byes.load(Relaxed);
    let open = sh.ws_open.load(Relaxed);
    out["sip"] = json!({"bye_codes": byes, "hung_up_by_dialtone": remote,
                        "websockets_still_open": open});
    up == calls && ok_byes as usize == up && remote == 0
}

fn f(v: &Value, path: &str) -> String {
    let mut cur = v;
    for k in path.split('.') {
        cur = &cur[k];
    }
    match cur {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn lat(v: &Value, path: &str) -> String {
    let n = f(v, &format!("{path}.count"));
    if n == "0" {
        return "no samples".into();
    }
    let ms = |k: &str| {
        let us: f64 = f(v, &format!("{path}.{k}")).parse().unwrap_or(0.0);
        format!("{:.3}", us / 1e3)
    };
    format!(
        "p50 {} / p90 {} / p99 {} / p99.9 {} / max {} ms (n={n})",
        ms("p50_us"),
        ms("p90_us"),
        ms("p99_us"),
        ms("p999_us"),
        ms("max_us")
    )
}

pub fn text(v: &Value) -> String {
    let mut s = String::new();
    let mut line = |t: String| {
        s.push_str(&t);
        s.push('\n');
    };
    line(format!(
        "== {} {}: {} calls, {} up (INVITE {}), set-up {} s (p50 {} / p99 {} ms), window {} s, loadavg at start {}",
        f(v, "scenario"), f(v, "label"), f(v, "calls"), f(v, "up"), f(v, "invite_codes"),
        f(v, "setup_seconds"), f(v, "setup_ms.p50"), f(v, "setup_ms.p99"),
        f(v, "window_seconds"), f(v, "loadavg_at_start")
    ));
    line(format!(
        "caller -> model: {} RTP sent, {} before the port, {} heard, {} lost ({:.4} %), {} dup, {} unmarked",
        f(v, "caller_to_model.rtp_sent"), f(v, "caller_to_model.before_port"),
        f(v, "caller_to_model.heard"), f(v, "caller_to_model.lost"),
        v["caller_to_model"]["loss_pct"].as_f64().unwrap_or(0.0),
        f(v, "caller_to_model.duplicates"), f(v, "caller_to_model.unmarked")
    ));
    line(format!(
        "  RTP in -> append out: {}",
        lat(v, "caller_to_model.latency")
    ));
    line(format!(
        "model -> caller: {} frames sent, {} received, lost {}, out of order {}, gaps > 40 ms {} (window {}, {} while the peer stalled), underruns {} (window {}), silence pkts {}, other {}",
        f(v, "model_to_caller.frames_sent"), f(v, "model_to_caller.frames_received"),
        f(v, "model_to_caller.lost"), f(v, "model_to_caller.out_of_order"),
        f(v, "model_to_caller.gaps_over_40ms"), f(v, "model_to_caller.gaps_over_40ms_in_window"),
        f(v, "model_to_caller.gaps_over_40ms_while_peer_stalled"),
        f(v, "model_to_caller.underruns"), f(v, "model_to_caller.underruns_in_window"),
        f(v, "model_to_caller.silence_packets"), f(v, "model_to_caller.other_packets")
    ));
    line(format!(
        "  agent packet inter-arrival: {}",
        lat(v, "model_to_caller.interarrival")
    ));
    line(format!(
        "  delta in -> RTP out: {}",
        lat(v, "model_to_caller.latency")
    ));
    line(format!(
        "barge-in: {} ; speech_started -> last agent packet: {} ({} with none after); -> first silence packet: {} ; leaks {}, truncate vs heard max |diff| {} ms ({} over 20 ms)",
        f(v, "barge_in.count"), lat(v, "barge_in.to_last_agent_packet"),
        f(v, "barge_in.no_agent_packet_after"), lat(v, "barge_in.to_first_silence_packet"),
        f(v, "barge_in.leaks_over_200ms"), f(v, "barge_in.truncate_minus_heard_ms_abs_max"),
        f(v, "barge_in.truncate_off_by_more_than_20ms")
    ));
    line(format!(
        "CPU over the window: dialtone {} % of a core ({} µs per call-second), RSS {} KiB; peer {} % (RSS {} KiB); others on the host {} % (steal {} %)",
        f(v, "dialtone.pct_core"), f(v, "dialtone.us_per_call_second"), f(v, "dialtone.rss_kib"),
        f(v, "peer.pct_core"), f(v, "peer.rss_kib"), f(v, "others_pct_core"), f(v, "steal_pct_core")
    ));
    line(format!(
        "  dialtone threads (% of a core): {}",
        f(v, "dialtone_threads_pct")
    ));
    line(format!(
        "peer: threads {}; sender ticks late > 5 ms {} (window {}, max {} ms), send errors {}; websocket accepted {}, refused {}, errors {}, unexpected {}",
        f(v, "peer.threads_pct"), f(v, "peer.sender_ticks_late_5ms"),
        f(v, "peer.sender_ticks_late_5ms_in_window"), f(v, "peer.sender_max_late_ms"), f(v, "peer.send_errors"),
        f(v, "websocket.accepted"), f(v, "websocket.refused"), f(v, "websocket.errors"),
        f(v, "websocket.unexpected_events")
    ));
    line(format!(
        "sip: BYE {}, hung up by dialtone {}, websockets still open {}",
        f(v, "sip.bye_codes"),
        f(v, "sip.hung_up_by_dialtone"),
        f(v, "sip.websockets_still_open")
    ));
    s
}

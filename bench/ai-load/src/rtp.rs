//! The callers' RTP. One sender for every call, on one 1 ms timer: call i
//! sends on the ticks in its slot (i mod --rtp-slots, 20 by default, so the
//! calls' packets are spread over each 20 ms as independent phones' are),
//! one PCMU packet every 20 ms, its payload a 1 kHz tone with
//! the call index and a sequence number in the first bytes, and notes the
//! send time for the latency to the model. One receiving task per call
//! sorts what dialtone plays into agent frames (the model's markers),
//! silence and anything else, and keeps the counts and timings of the
//! scenario: latency from the delta, gaps, order, barge-in.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::time::MissedTickBehavior;

use crate::state::{Call, Scenario, Shared};
use crate::stats::{is_silence, mark, marker, tone, AGENT_MAGIC, CALLER_MAGIC, FRAME};

const HEADER: usize = 12;
/// A gap between consecutive agent packets longer than this is late playout.
const LATE_NS: u64 = 40_000_000;
/// Agent audio this long after speech_started is a leak, not in flight.
const LEAK_NS: u64 = 200_000_000;

pub async fn sender(sh: Arc<Shared>, slots: u32) {
    let slots = slots.clamp(1, 20);
    // Each slot's calls every 20 ms: the timer ticks every 20/slots ms.
    let mut iv = tokio::time::interval(Duration::from_micros(20_000 / u64::from(slots)));
    let mut tick: u32 = 0;
    iv.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let body = tone(1000.0);
    let mut pkt = [0u8; HEADER + FRAME];
    pkt[0] = 0x80; // V=2
    pkt[1] = 0; // PCMU
    loop {
        let due = iv.tick().await;
        if sh.rtp_stop.load(Relaxed) {
            break;
        }
        let late = Instant::now().saturating_duration_since(due.into_std());
        let late_ns = late.as_nanos() as u64;
        sh.sender_max_late_ns.fetch_max(late_ns, Relaxed);
        if late_ns > 5_000_000 {
            sh.sender_late_5ms.fetch_add(1, Relaxed);
            let due = sh.now_ns().saturating_sub(late_ns);
            if let Ok(mut v) = sh.stalls.lock() {
                v.push((due, due + late_ns));
            }
        }
        let slot = tick % slots;
        tick = tick.wrapping_add(1);
        for call in sh.calls.iter().skip(slot as usize).step_by(slots as usize) {
            if !call.rtp_on.load(Relaxed) {
                continue;
            }
            let Some(dst) = call.media.get() else {
                continue;
            };
            let seq = call.rtp_sent.load(Relaxed);
            pkt[2..4].copy_from_slice(&(seq as u16).to_be_bytes());
            pkt[4..8].copy_from_slice(&seq.wrapping_mul(FRAME as u32).to_be_bytes());
            pkt[8..12].copy_from_slice(&(0x1000_0000 + call.idx).to_be_bytes());
            pkt[HEADER..].copy_from_slice(&body);
            mark(&mut pkt[HEADER..], CALLER_MAGIC, call.idx, seq);
            call.sent_at.put(seq, sh.now_ns());
            match call.sock.try_send_to(&pkt, *dst) {
                Ok(_) => call.rtp_sent.store(seq.wrapping_add(1), Relaxed),
                Err(_) => {
                    sh.send_errors.fetch_add(1, Relaxed);
                }
            }
        }
    }
}

/// The payload of an RTP packet of payload type 0, if it is one.
fn pcmu_payload(pkt: &[u8]) -> Option<&[u8]> {
    if pkt.len() < HEADER || pkt[0] >> 6 != 2 || pkt[1] & 0x7F != 0 {
        return None;
    }
    let mut off = HEADER + 4 * usize::from(pkt[0] & 0x0F);
    if pkt[0] & 0x10 != 0 {
        let ext = pkt.get(off + 2..off + 4)?;
        off += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
    }
    pkt.get(off..)
}

pub async fn receive(call: Arc<Call>, sh: Arc<Shared>) {
    let mut buf = [0u8; 2048];
    let mut last_seq: Option<u32> = None;
    let mut last_at = 0u64;
    let mut silence_run = 0u32;
    let scenario = sh.cfg.scenario;
    loop {
        let n = match call.sock.recv_from(&mut buf).await {
            Ok((n, _)) => n,
            // ICMP port unreachable and the like: keep listening.
            Err(_) => continue,
        };
        let now = sh.now_ns();
        let Some(payload) = buf.get(..n).and_then(pcmu_payload) else {
            call.other_rx.fetch_add(1, Relaxed);
            continue;
        };
        let Some((idx, seq)) = marker(payload, AGENT_MAGIC) else {
            if is_silence(payload) {
                call.silence_rx.fetch_add(1, Relaxed);
                if last_seq.is_some() {
                    silence_run += 1;
                }
                if scenario == Scenario::Bargein {
                    let mut b = call.barge();
                    if let Some(ts) = b.t_s {
                        if now >= ts && b.first_silence_after.is_none() {
                            b.first_silence_after = Some(now);
                        }
                    }
                }
            } else {
                call.other_rx.fetch_add(1, Relaxed);
            }
            continue;
        };
        if idx != call.idx {
            call.other_rx.fetch_add(1, Relaxed);
            continue;
        }
        sh.last_agent_ns.fetch_max(now, Relaxed);
        match last_seq {
            Some(l) if seq <= l => {
                call.agent_ooo.fetch_add(1, Relaxed);
                continue;
            }
            Some(_) => {
                let gap = now.saturating_sub(last_at);
                if scenario == Scenario::Load {
                    sh.interarrival.record(gap);
                    if gap > LATE_NS {
                        call.gaps.fetch_add(1, Relaxed);
                        if let Ok(mut v) = sh.gap_spans.lock() {
                            v.push((last_at, now));
                        }
                    }
                    if silence_run > 0 {
                        call.underruns.fetch_add(1, Relaxed);
                    }
                }
            }
            None => {}
        }
        silence_run = 0;
        last_seq = Some(seq);
        last_at = now;
        call.agent_rx.fetch_add(1, Relaxed);
        match scenario {
            Scenario::Latency => {
                if let Some(t) = call.agent_at.get(seq) {
                    sh.lat_down.record(now.saturating_sub(t));
                }
            }
            Scenario::Bargein => {
                let mut b = call.barge();
                b.heard += 1;
                if let Some(ts) = b.t_s {
                    if now >= ts {
                        b.last_agent_after = Some(now);
                        if now - ts > LEAK_NS {
                            sh.barge_leaks.fetch_add(1, Relaxed);
                        }
                    }
                }
            }
            Scenario::Load => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_after_csrcs_and_extension() {
        let mut p = vec![0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        p.extend_from_slice(&[7; 4]);
        assert_eq!(pcmu_payload(&p), Some(&[7u8; 4][..]));
        let mut q = vec![0x91, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        q.extend_from_slice(&[0; 4]); // one CSRC
        q.extend_from_slice(&[0xBE, 0xDE, 0, 1, 1, 2, 3, 4]); // extension, 1 word
        q.extend_from_slice(&[9; 3]);
        assert_eq!(pcmu_payload(&q), Some(&[9u8; 3][..]));
        assert_eq!(pcmu_payload(&[0x80, 101, 0, 0]), None);
    }
}

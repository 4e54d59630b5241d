//! A stream of datagrams arriving on an RTP port, as the relay and the
//! transcoding pipeline see them: `packet::classify` on each, then for RTP
//! the payload, the telephone-event reading and re-timing, the outgoing
//! stream rewriter, and the jitter buffer feeding a decoder as the
//! pipeline's `Decoding::pull` does (decode, FEC recovery, concealment of
//! what the buffer says is missing) with its 20 ms clock ticking as time
//! passes; for RTCP multiplexed on the port, `rtcp::parse`.
//!
//! Input: one mode byte (bits 0-1: decoder output rate for Opus; 2-3:
//! jitter frame size; 4: a tiny jitter buffer; 5: telephone-events re-timed
//! to 48 kHz; 6-7: PCMU, PCMA, G.722 or Opus), then records of
//! [time step in ms: u8][length: u16 BE][datagram].

#![no_main]

use std::time::{Duration, Instant};

use dialtone_media::codec::dtmf::{EventRetimer, TelephoneEvent};
use dialtone_media::codec::{decoder, Codec, OpusParams};
use dialtone_media::jitter::{JitterBuffer, JitterConfig, Playout};
use dialtone_media::packet::{classify, is_rtcp, Datagram};
use dialtone_media::rewrite::StreamRewriter;
use dialtone_media::rtcp;
use libfuzzer_sys::fuzz_target;

/// Samples of PCM a pull may hold before it is a runaway (10 s at 48 kHz).
const MAX_PCM: usize = 480_000;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let codec = match mode >> 6 {
        0 => Codec::pcmu(),
        1 => Codec::pcma(),
        2 => Codec::g722(),
        _ => Codec::opus(OpusParams::default()),
    };
    let pcm_rate = match codec.kind {
        dialtone_media::codec::CodecKind::Opus => {
            [48000, 16000, 8000, 24000][usize::from(mode & 3)]
        }
        _ => codec.native_rate(),
    };
    let Ok(mut dec) = decoder(&codec, pcm_rate) else {
        panic!("no decoder for {codec:?} at {pcm_rate}");
    };
    let clock_rate = codec.clock_rate();
    let frame_ms = [20, 10, 30, 60][usize::from(mode >> 2 & 3)];
    let mut jitter = JitterBuffer::new(JitterConfig {
        clock_rate,
        frame_ms,
        max_packets: if mode & 0x10 != 0 { 4 } else { 50 },
        ..JitterConfig::default()
    });
    let mut rewriter = StreamRewriter::new(clock_rate);
    let mut retimer = EventRetimer::new(8000, if mode & 0x20 != 0 { 48000 } else { 8000 });
    let start = Instant::now();
    let mut now = start;
    let mut next_tick = start;
    let mut out_ts = 0u32;
    let mut pcm: Vec<i16> = Vec::new();

    while rest.len() >= 3 {
        let step = u64::from(rest[0]);
        let len = usize::from(u16::from_be_bytes([rest[1], rest[2]]));
        let body = &rest[3..];
        let (packet, tail) = body.split_at(len.min(body.len()));
        rest = tail;
        now += Duration::from_millis(step);
        // The playout clock: one pop per frame until it catches up.
        while next_tick <= now {
            pcm.clear();
            match jitter.pop(next_tick) {
                Playout::Packet { payload, .. } => {
                    if dec.decode(&payload, &mut pcm).is_err() {
                        dec.conceal((pcm_rate / 50) as usize, &mut pcm);
                    }
                }
                Playout::Missing { samples, next } => {
                    let n = (u64::from(samples) * u64::from(dec.rate()) / u64::from(clock_rate))
                        as usize;
                    assert!(n <= MAX_PCM, "concealing {n} samples ({samples} RTP ticks)");
                    let recovered = next
                        .as_deref()
                        .is_some_and(|next| dec.recover(next, n, &mut pcm));
                    if !recovered {
                        dec.conceal(n, &mut pcm);
                    }
                }
                Playout::Idle => {}
            }
            assert!(pcm.len() <= MAX_PCM, "{} samples from one pop", pcm.len());
            next_tick += Duration::from_millis(u64::from(frame_ms));
        }

        match classify(packet) {
            Datagram::Rtp(h) => {
                assert!(h.payload_offset <= h.payload_end && h.payload_end <= packet.len());
                let payload = h.payload(packet);
                if let Some(ev) = TelephoneEvent::parse(payload) {
                    let again = TelephoneEvent::parse(&ev.to_bytes());
                    assert_eq!(again.map(|e| e.to_bytes()), Some(ev.to_bytes()));
                    out_ts = out_ts.wrapping_add(160);
                    let _ = retimer.map(h.timestamp, payload, out_ts);
                }
                let _ = dec.samples_in(payload);
                jitter.push(h.seq, h.timestamp, h.ssrc, h.marker, payload, now);
                let mut copy = packet.to_vec();
                let _ = rewriter.rewrite(&mut copy, now);
                assert_eq!(
                    &copy[12..],
                    &packet[12..],
                    "only the fixed header is rewritten"
                );
                let _ = rewriter.position(now);
            }
            Datagram::Rtcp => {
                assert!(is_rtcp(packet));
                let _ = rtcp::parse(packet);
            }
            Datagram::Invalid => {}
        }
    }
    let stats = jitter.stats();
    assert!(stats.played <= stats.received, "{stats:?}");
    let _ = jitter.report_block(0, 0);
    let _ = rewriter.source_changes();
});

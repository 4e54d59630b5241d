//! RFC 4733 telephone-events as a peer sends them: `TelephoneEvent::parse`
//! of each payload and the `EventRetimer` that carries them onto a stream
//! of another clock rate, over a sequence of packets (new events, their
//! retransmitted end packets, long events in segments, late packets of the
//! previous event, garbage).
//!
//! Input: two bytes choosing the input and output clock rates, then records
//! of [input RTP timestamp: u32 BE][output clock advance: u16 BE][payload
//! length: u8][payload].

#![no_main]

use dialtone_media::codec::dtmf::{EventRetimer, TelephoneEvent};
use libfuzzer_sys::fuzz_target;

const RATES: [u32; 8] = [8000, 16000, 48000, 0, 8000, 44100, 1, u32::MAX];

fuzz_target!(|data: &[u8]| {
    let [from, to, rest @ ..] = data else {
        return;
    };
    let from = RATES[usize::from(from & 7)];
    let to = RATES[usize::from(to & 7)];
    let mut retimer = EventRetimer::new(from, to);
    let mut rest = rest;
    let mut out_now = 0u32;
    while rest.len() >= 7 {
        let in_ts = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        out_now = out_now.wrapping_add(u32::from(u16::from_be_bytes([rest[4], rest[5]])));
        let len = usize::from(rest[6]);
        let body = &rest[7..];
        let (payload, tail) = body.split_at(len.min(body.len()));
        rest = tail;

        let parsed = TelephoneEvent::parse(payload);
        assert_eq!(parsed.is_some(), payload.len() >= 4);
        if let Some(ev) = parsed {
            assert!(ev.volume <= 63);
            let bytes = ev.to_bytes();
            assert_eq!(
                TelephoneEvent::parse(&bytes),
                Some(ev),
                "round trip of {payload:?}"
            );
        }
        match retimer.map(in_ts, payload, out_now) {
            Some((_, bytes, _)) => {
                let ev = parsed.unwrap_or_else(|| panic!("mapped an invalid payload {payload:?}"));
                let out = TelephoneEvent::parse(&bytes)
                    .unwrap_or_else(|| unreachable!("4 bytes always parse"));
                assert_eq!(
                    (out.event, out.end, out.volume),
                    (ev.event, ev.end, ev.volume)
                );
            }
            None => assert!(
                parsed.is_none(),
                "a valid event was not mapped: {payload:?}"
            ),
        }
    }
});

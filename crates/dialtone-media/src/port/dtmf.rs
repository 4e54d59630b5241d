//! DTMF from the caller of an [`AudioPort`](super::AudioPort): RFC 4733
//! telephone-event packets turned into one [`PortEvent::Dtmf`] per key press
//! ([`KeyPresses`]), and the path that delivers them to the application
//! without ever dropping one ([`deliver`]).
//!
//! Why a path of its own: caller audio is offered to the application's
//! bounded channel with `try_send` and dropped when it is full (the RTP path
//! never waits), but a lost digit is a wrong menu choice or PIN. Digits go
//! from the port's task into an unbounded channel (a human presses a few
//! keys a second, so it stays tiny) and a small task moves them into the
//! application's channel with `send().await`, waiting for room when the
//! application is behind. Tokio's bounded channel hands a freed slot to a
//! waiting `send` before any later `try_send` can take it, so a digit is
//! next in line as soon as the application reads again.

use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::codec::dtmf::TelephoneEvent;

use super::PortEvent;

/// The longest duration one telephone-event segment carries (RFC 4733
/// §2.5.1.3): a longer press continues in segments 0xFFFF ticks apart.
const SEGMENT: u32 = 0xFFFF;

/// The key an RFC 4733 event code stands for; `None` for the non-DTMF
/// events (flash, tones, ...).
fn digit(event: u8) -> Option<char> {
    match event {
        0..=9 => Some(char::from(b'0' + event)),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + event - 12)),
        _ => None,
    }
}

/// Telephone-event packets of one stream → key presses, each reported once:
/// when its end packet arrives (the retransmitted end packets are not
/// reported again), or when a new event starts while the previous one had
/// no end seen (its end packets were all lost).
pub(super) struct KeyPresses {
    clock_rate: u32,
    ssrc: Option<u32>,
    current: Option<Press>,
}

/// The event being received.
struct Press {
    /// RTP timestamp of its first segment (the event's start).
    ts: u32,
    event: u8,
    /// Longest duration seen, in RTP clock ticks from `ts`.
    ticks: u64,
    /// Reported (its end was seen, or it was reported when superseded).
    reported: bool,
}

impl KeyPresses {
    /// For telephone-events on an RTP clock of `clock_rate` Hz (0 is taken
    /// as 8000).
    pub(super) fn new(clock_rate: u32) -> KeyPresses {
        KeyPresses {
            clock_rate: if clock_rate == 0 { 8000 } else { clock_rate },
            ssrc: None,
            current: None,
        }
    }

    /// A telephone-event packet; `report` is called for each key press it
    /// completes, in order (the previous one, unended, and this one).
    pub(super) fn packet(
        &mut self,
        ssrc: u32,
        ts: u32,
        payload: &[u8],
        mut report: impl FnMut(char, Duration),
    ) {
        let Some(ev) = TelephoneEvent::parse(payload) else {
            return;
        };
        if self.ssrc != Some(ssrc) {
            // A new stream: its timestamps have nothing to do with the old.
            self.supersede(&mut report);
            self.ssrc = Some(ssrc);
        }
        if let Some(cur) = &mut self.current {
            let offset = ts.wrapping_sub(cur.ts);
            let later_segment = ev.event == cur.event
                && !cur.reported
                && offset != 0
                && offset.is_multiple_of(SEGMENT)
                && offset < 1 << 31;
            if offset == 0 || later_segment {
                if cur.reported {
                    // A retransmitted end packet, or a late one.
                    return;
                }
                cur.ticks = cur.ticks.max(u64::from(offset) + u64::from(ev.duration));
                if ev.end {
                    cur.reported = true;
                    Self::report(cur, self.clock_rate, &mut report);
                }
                return;
            }
            if offset >= 1 << 31 {
                // Older than the current event: a late packet of one before.
                return;
            }
        }
        self.supersede(&mut report);
        let mut press = Press {
            ts,
            event: ev.event,
            ticks: u64::from(ev.duration),
            reported: ev.end,
        };
        if ev.end {
            Self::report(&mut press, self.clock_rate, &mut report);
        }
        self.current = Some(press);
    }

    /// A new event starts: the current one is reported if its end never came.
    fn supersede(&mut self, report: &mut impl FnMut(char, Duration)) {
        if let Some(mut cur) = self.current.take() {
            if !cur.reported {
                Self::report(&mut cur, self.clock_rate, report);
            }
        }
    }

    fn report(press: &mut Press, clock_rate: u32, report: &mut impl FnMut(char, Duration)) {
        press.reported = true;
        if let Some(d) = digit(press.event) {
            let micros = press.ticks * 1_000_000 / u64::from(clock_rate);
            report(d, Duration::from_micros(micros));
        }
    }
}

/// Moves key presses from the port's task into the application's channel,
/// waiting for room there (see the module documentation), until the port
/// stops or the application drops its receiver.
pub(super) async fn deliver(
    mut digits: mpsc::UnboundedReceiver<PortEvent>,
    tx: mpsc::Sender<PortEvent>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        // Stop errors (the port dropped) end it too.
        let ev = tokio::select! {
            biased;
            _ = stop.changed() => return,
            ev = digits.recv() => match ev {
                Some(ev) => ev,
                None => return,
            },
        };
        tokio::select! {
            biased;
            _ = stop.changed() => return,
            sent = tx.send(ev) => if sent.is_err() {
                return;
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: u8, end: bool, duration: u16) -> [u8; 4] {
        TelephoneEvent {
            event,
            end,
            volume: 10,
            duration,
        }
        .to_bytes()
    }

    /// Feeds (ssrc, ts, payload) packets; returns what was reported.
    fn run(k: &mut KeyPresses, pkts: &[(u32, u32, [u8; 4])]) -> Vec<(char, Duration)> {
        let mut got = Vec::new();
        for (ssrc, ts, p) in pkts {
            k.packet(*ssrc, *ts, p, |d, t| got.push((d, t)));
        }
        got
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn one_report_per_press_at_its_end() {
        let mut k = KeyPresses::new(8000);
        let got = run(
            &mut k,
            &[
                (1, 800, ev(5, false, 160)),
                (1, 800, ev(5, false, 320)),
                (1, 800, ev(5, false, 480)),
                (1, 800, ev(5, true, 800)),
                (1, 800, ev(5, true, 800)),
                (1, 800, ev(5, true, 800)),
            ],
        );
        assert_eq!(got, [('5', ms(100))]);
        // Every event code that is a key, none that is not.
        let keys: String = (0..=16u8)
            .flat_map(|e| run(&mut k, &[(1, 2000 + u32::from(e) * 1000, ev(e, true, 400))]))
            .map(|(d, _)| d)
            .collect();
        assert_eq!(keys, "0123456789*#ABCD");
    }

    #[test]
    fn a_press_whose_end_was_lost_is_reported_when_the_next_starts() {
        let mut k = KeyPresses::new(8000);
        let got = run(
            &mut k,
            &[
                (1, 800, ev(1, false, 160)),
                (1, 800, ev(1, false, 320)),
                // All three end packets of '1' lost; '2' starts.
                (1, 4000, ev(2, false, 160)),
                // A late packet of '1' starts nothing.
                (1, 800, ev(1, true, 480)),
                (1, 4000, ev(2, true, 640)),
                (1, 4000, ev(2, true, 640)),
            ],
        );
        assert_eq!(got, [('1', ms(40)), ('2', ms(80))]);
        // A lone end packet (the start packets lost) is a press too.
        assert_eq!(
            run(&mut k, &[(1, 9000, ev(11, true, 800))]),
            [('#', ms(100))]
        );
        // As is the same key pressed again.
        assert_eq!(
            run(&mut k, &[(1, 12000, ev(11, true, 400))]),
            [('#', ms(50))]
        );
        // Another SSRC: timestamps start afresh, nothing is taken as late.
        let got = run(
            &mut k,
            &[(2, 100, ev(7, false, 160)), (3, 50, ev(8, true, 160))],
        );
        assert_eq!(got, [('7', ms(20)), ('8', ms(20))]);
        // Invalid payloads are ignored.
        k.packet(3, 99_999, &[1, 2], |_, _| panic!("reported garbage"));
    }

    #[test]
    fn a_long_press_in_segments_is_one_press() {
        let mut k = KeyPresses::new(8000);
        let got = run(
            &mut k,
            &[
                (1, 1000, ev(0, false, 0xFFFF)),
                (1, 1000 + SEGMENT, ev(0, false, 8000)),
                (1, 1000 + SEGMENT, ev(0, true, 16000)),
            ],
        );
        let ticks = u64::from(SEGMENT) + 16000;
        assert_eq!(got, [('0', Duration::from_micros(ticks * 125))]);
        // 48 kHz clock: durations scale.
        let mut k = KeyPresses::new(48000);
        assert_eq!(run(&mut k, &[(1, 5, ev(9, true, 4800))]), [('9', ms(100))]);
    }
}

//! RFC 4733 telephone-event payloads and their re-timing between streams
//! of different clock rates.

/// One RFC 4733 §2.3 telephone-event payload (the first, if the packet
/// carries several).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code (0-9, 10 = `*`, 11 = `#`, 12-15 = A-D, 16 = flash, ...).
    pub event: u8,
    /// E bit: this is (a retransmission of) the final packet of the event.
    pub end: bool,
    /// Power level in −dBm0, 0..=63 (only the low 6 bits are kept).
    pub volume: u8,
    /// Duration so far, in RTP clock units from the event's timestamp.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parses the first 4 bytes of a telephone-event payload; None if
    /// shorter. The reserved R bit is ignored.
    pub fn parse(payload: &[u8]) -> Option<TelephoneEvent> {
        let b: &[u8; 4] = payload.get(..4)?.try_into().ok()?;
        Some(TelephoneEvent {
            event: b[0],
            end: b[1] & 0x80 != 0,
            volume: b[1] & 0x3F,
            duration: u16::from_be_bytes([b[2], b[3]]),
        })
    }

    /// The 4-byte payload (R bit zero, volume masked to 6 bits).
    pub fn to_bytes(&self) -> [u8; 4] {
        let [hi, lo] = self.duration.to_be_bytes();
        let flags = if self.end { 0x80 } else { 0 } | (self.volume & 0x3F);
        [self.event, flags, hi, lo]
    }
}

/// The longest duration one telephone-event segment can carry.
const MAX_SEGMENT: u64 = 0xFFFF;

/// Re-times telephone-event packets from one stream onto another with a
/// different clock rate (8000 <-> 48000) and timeline.
///
/// A new event (new input RTP timestamp) is anchored at the output
/// timestamp given for "now"; later packets of that event (same input
/// timestamp, including the retransmitted end packets) reuse that output
/// timestamp; durations are rescaled by `to/from` (rounded). The previous
/// event is remembered too, so that a late packet of it after a new event
/// started does not start a third one.
///
/// Long events (RFC 4733 §2.5.1.3): a duration the 16-bit field cannot
/// hold at the output rate (a key held for more than 1.36 s at 48 kHz) is
/// sent as successive segments, each starting 0xFFFF ticks after the one
/// before, without the marker. An input that arrives in such segments is
/// recognised (same event, timestamp a multiple of 0xFFFF later) and
/// carried on as the same event.
#[derive(Clone, Debug)]
pub struct EventRetimer {
    from_rate: u32,
    to_rate: u32,
    /// The current event.
    current: Option<Anchor>,
    /// The event before it.
    previous: Option<Anchor>,
}

/// Where an event started on each stream.
#[derive(Clone, Copy, Debug)]
struct Anchor {
    /// Input timestamp of its first segment.
    input: u32,
    /// Output timestamp of its first segment.
    output: u32,
    /// Its event code.
    event: u8,
}

impl Anchor {
    /// Input ticks from this event's start to a packet of it stamped
    /// `in_ts`: 0 for its first segment, a multiple of 0xFFFF for a later
    /// segment of the same event; None for another event.
    fn offset(&self, in_ts: u32, event: u8) -> Option<u64> {
        let offset = u64::from(in_ts.wrapping_sub(self.input));
        let continues =
            event == self.event && offset.is_multiple_of(MAX_SEGMENT) && offset < 1 << 31;
        (offset == 0 || continues).then_some(offset)
    }
}

impl EventRetimer {
    /// A retimer from a stream clocked at `from_rate` to one at `to_rate`
    /// (both in Hz; a zero rate is taken as 8000).
    pub fn new(from_rate: u32, to_rate: u32) -> EventRetimer {
        let nonzero = |r: u32| if r == 0 { 8000 } else { r };
        EventRetimer {
            from_rate: nonzero(from_rate),
            to_rate: nonzero(to_rate),
            current: None,
            previous: None,
        }
    }

    /// Returns (output timestamp, rewritten 4-byte payload, marker) where
    /// marker is true for the first packet of an event; None if the payload
    /// is not a valid event.
    pub fn map(
        &mut self,
        in_ts: u32,
        payload: &[u8],
        out_now_ts: u32,
    ) -> Option<(u32, [u8; 4], bool)> {
        let mut event = TelephoneEvent::parse(payload)?;
        let known = [self.current, self.previous]
            .into_iter()
            .flatten()
            .find_map(|a| a.offset(in_ts, event.event).map(|offset| (a, offset)));
        let (anchor, offset, first) = match known {
            Some((anchor, offset)) => (anchor, offset, false),
            None => {
                let anchor = Anchor {
                    input: in_ts,
                    output: out_now_ts,
                    event: event.event,
                };
                self.previous = self.current.replace(anchor);
                (anchor, 0, true)
            }
        };
        // The event's whole duration so far, at the output rate.
        let from = u64::from(self.from_rate);
        let total =
            ((offset + u64::from(event.duration)) * u64::from(self.to_rate) + from / 2) / from;
        // The segment it falls in: a full segment stays in its own until the
        // next tick, so 0xFFFF is the last duration of segment 0.
        let segment = total.saturating_sub(1) / MAX_SEGMENT;
        let start = segment * MAX_SEGMENT;
        event.duration = u16::try_from(total - start).unwrap_or(u16::MAX);
        let out_ts = anchor.output.wrapping_add(start as u32);
        Some((out_ts, event.to_bytes(), first && segment == 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_to_bytes_round_trip() {
        let bytes = [11, 0x80 | 0x40 | 10, 0x03, 0x20];
        let e = TelephoneEvent::parse(&bytes).expect("4 bytes parse");
        assert_eq!(
            e,
            TelephoneEvent {
                event: 11,
                end: true,
                volume: 10,
                duration: 800
            }
        );
        // The R bit is dropped on the way back.
        assert_eq!(e.to_bytes(), [11, 0x80 | 10, 0x03, 0x20]);
        assert_eq!(TelephoneEvent::parse(&e.to_bytes()), Some(e));
        let start = TelephoneEvent {
            event: 5,
            end: false,
            volume: 63,
            duration: 0xFFFF,
        };
        assert_eq!(start.to_bytes(), [5, 63, 0xFF, 0xFF]);
        assert_eq!(TelephoneEvent::parse(&start.to_bytes()), Some(start));
        assert_eq!(TelephoneEvent::parse(&[1, 2, 3]), None);
        // Extra (redundant) events after the first are ignored.
        assert_eq!(
            TelephoneEvent::parse(&[1, 10, 0, 160, 2, 10, 0, 80]).map(|e| e.event),
            Some(1)
        );
    }

    fn ev(event: u8, end: bool, duration: u16) -> [u8; 4] {
        TelephoneEvent {
            event,
            end,
            volume: 10,
            duration,
        }
        .to_bytes()
    }

    #[test]
    fn retimer_8k_to_48k() {
        let mut r = EventRetimer::new(8000, 48000);
        // Digit 1 at input ts 1000, packets every 20 ms; output clock is elsewhere.
        let out = r.map(1000, &ev(1, false, 160), 777_000);
        assert_eq!(out, Some((777_000, ev(1, false, 960), true)));
        let out = r.map(1000, &ev(1, false, 320), 777_960);
        assert_eq!(out, Some((777_000, ev(1, false, 1920), false)));
        for now in [778_920, 779_880, 780_840] {
            let out = r.map(1000, &ev(1, true, 640), now);
            assert_eq!(out, Some((777_000, ev(1, true, 3840), false)));
        }
        // Next digit: new input ts, anchored at the new "now", marker again.
        let out = r.map(3000, &ev(2, false, 160), 790_000);
        assert_eq!(out, Some((790_000, ev(2, false, 960), true)));
        // A late end packet of the previous digit keeps its old timestamp.
        let out = r.map(1000, &ev(1, true, 640), 791_000);
        assert_eq!(out, Some((777_000, ev(1, true, 3840), false)));

        // Invalid payloads are rejected.
        assert_eq!(r.map(3000, &[1, 2], 800_000), None);
    }

    #[test]
    fn retimer_48k_to_8k_divides_and_rounds() {
        let mut r = EventRetimer::new(48000, 8000);
        let out = r.map(u32::MAX - 10, &ev(9, false, 960), 42);
        assert_eq!(out, Some((42, ev(9, false, 160), true)));
        // 1000 / 6 = 166.67 -> 167; 1001 / 6 = 166.83 -> 167; 998 / 6 = 166.33 -> 166.
        let out = r.map(u32::MAX - 10, &ev(9, false, 1000), 200);
        assert_eq!(out, Some((42, ev(9, false, 167), false)));
        let out = r.map(u32::MAX - 10, &ev(9, true, 998), 400);
        assert_eq!(out, Some((42, ev(9, true, 166), false)));
        let out = r.map(5, &ev(10, false, 0), 1000);
        assert_eq!(out, Some((1000, ev(10, false, 0), true)));
    }

    #[test]
    fn long_event_is_cut_into_segments_at_48k() {
        let mut r = EventRetimer::new(8000, 48000);
        let seg = 0xFFFF_u32;
        let out = r.map(500, &ev(5, false, 160), 1_000);
        assert_eq!(out, Some((1_000, ev(5, false, 960), true)));
        // 10922 ticks at 8 kHz = 65532 at 48 kHz: still segment 0.
        let out = r.map(500, &ev(5, false, 10_922), 1_500);
        assert_eq!(out, Some((1_000, ev(5, false, 65_532), false)));
        // 10923 -> 65538: segment 1 starts 0xFFFF later, 3 ticks in, no marker.
        let out = r.map(500, &ev(5, false, 10_923), 2_000);
        assert_eq!(out, Some((1_000 + seg, ev(5, false, 3), false)));
        // 3 s (24000 at 8 kHz = 144000 at 48 kHz): segment 2, ended there.
        let out = r.map(500, &ev(5, true, 24_000), 3_000);
        assert_eq!(
            out,
            Some((
                1_000 + 2 * seg,
                ev(5, true, (144_000 - 2 * seg) as u16),
                false
            ))
        );
    }

    #[test]
    fn segmented_input_continues_one_event() {
        let mut r = EventRetimer::new(48000, 8000);
        let seg = 0xFFFF_u32;
        let t0 = u32::MAX - 100; // the segments wrap the timestamp
        let out = r.map(t0, &ev(3, false, 960), 7_000);
        assert_eq!(out, Some((7_000, ev(3, false, 160), true)));
        let out = r.map(t0, &ev(3, false, 0xFFFF), 7_500);
        assert_eq!(out, Some((7_000, ev(3, false, 10_923), false)));
        // The sender's next segment: same event, one more 0xFFFF on.
        let out = r.map(t0.wrapping_add(seg), &ev(3, true, 6_000), 8_000);
        assert_eq!(out, Some((7_000, ev(3, true, 11_923), false)));
        // Another digit at such an offset is a new event.
        let out = r.map(t0.wrapping_add(2 * seg), &ev(4, false, 960), 9_000);
        assert_eq!(out, Some((9_000, ev(4, false, 160), true)));
    }
}

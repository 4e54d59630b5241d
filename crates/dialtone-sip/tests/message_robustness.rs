//! Robustness of `dialtone_sip::message` on hostile input: every RFC 4475
//! fixture truncated at every byte, and thousands of seeded mutations of
//! them, go through framing, parsing, serializing and the typed headers. A
//! panic anywhere fails the test; whatever parses must serialize stably,
//! read back through rsip's typed views, and be unchanged by normalizing.

#![allow(clippy::unwrap_used)]

mod common;

use common::{fixtures, named_fixtures};

use dialtone_sip::message::framing::frame;
use dialtone_sip::message::headers::{ExtHeader, NameAddr};
use dialtone_sip::message::{
    header_name_value, parse, to_bytes, uas_check, ParseError, SipMessage, UasPolicy,
};

// ---- properties over every fixture --------------------------------------

#[test]
fn parsed_fixtures_serialize_stably_and_read_with_rsip_typed_views() {
    use rsip::prelude::*;
    for (name, bytes) in named_fixtures() {
        let name = name.as_str();
        let Ok(msg) = parse(&bytes) else {
            continue;
        };
        let once = to_bytes(&msg);
        let again = parse(&once).unwrap_or_else(|e| panic!("{name}: reparse: {e}"));
        assert_eq!(to_bytes(&again), once, "{name}: serialization not stable");
        let cseq = msg.cseq_header().and_then(|c| c.typed());
        assert!(cseq.is_ok(), "{name}: rsip cannot read CSeq");
        if name != "transports" {
            assert!(
                msg.via_header().and_then(|v| v.typed()).is_ok(),
                "{name}: top Via"
            );
        }
    }
}

#[test]
fn normalizing_first_changes_nothing() {
    use dialtone_sip::message::compact::normalize;
    for (name, raw) in named_fixtures() {
        let normal = normalize(&raw);
        match (parse(&raw), parse(&normal)) {
            (Ok(a), Ok(b)) => assert_eq!(to_bytes(&a), to_bytes(&b), "{name}"),
            (Err(a), Err(b)) => assert_eq!(a.status(), b.status(), "{name}"),
            (a, b) => panic!("{name}: {a:?} vs {b:?}"),
        }
        // Already-normal input is borrowed, not copied.
        let again = normalize(&normal);
        assert!(matches!(again, std::borrow::Cow::Borrowed(_)), "{name}");
    }
}

// ---- robustness -------------------------------------------------------------

/// A small deterministic PRNG (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Everything the module offers on arbitrary bytes; a panic fails the test.
fn exercise(bytes: &[u8]) {
    let _ = frame(bytes);
    let _ = dialtone_sip::message::compact::normalize(bytes);
    match parse(bytes) {
        Ok(msg) => {
            let out = to_bytes(&msg);
            let again = parse(&out).unwrap_or_else(|e| {
                panic!(
                    "reserialized message does not parse: {e}\n{}",
                    String::from_utf8_lossy(&out)
                )
            });
            assert_eq!(to_bytes(&again), out, "unstable serialization");
            let headers = match &msg {
                SipMessage::Request(r) => {
                    let _ = uas_check(r, &UasPolicy::default());
                    let _ = dialtone_sip::message::response_to(r, 200, None);
                    &r.headers
                }
                SipMessage::Response(r) => &r.headers,
            };
            for h in headers.iter() {
                let (_, v) = header_name_value(h);
                let _ = NameAddr::parse(v);
                let _ = dialtone_sip::message::headers::Replaces::parse(v);
                let _ = dialtone_sip::message::headers::ReferTo::parse(v).map(|r| r.replaces());
                let _ = dialtone_sip::message::headers::SessionExpires::parse(v);
                let _ = dialtone_sip::message::headers::RAck::parse(v);
            }
        }
        Err(ParseError::Reject { response, .. }) => {
            assert!(response.starts_with(b"SIP/2.0 "));
            assert!(response.ends_with(b"\r\n\r\n"));
        }
        Err(ParseError::Drop { .. }) => {}
    }
}

#[test]
fn no_panic_on_truncated_fixtures() {
    for bytes in fixtures() {
        for cut in 0..=bytes.len() {
            exercise(&bytes[..cut]);
        }
    }
}

#[test]
fn no_panic_on_mutated_fixtures() {
    const SPICE: &[u8] = b" \t\r\n:;,=<>\"\\%@?/[]0\x00\xff\xc3";
    let fixtures = fixtures();
    let mut rng = Rng(0x5eed_d1a1_70ae_4475);
    for _ in 0..6000 {
        let mut m = fixtures[rng.below(fixtures.len())].clone();
        for _ in 0..1 + rng.below(6) {
            let at = rng.below(m.len() + 1);
            match rng.below(5) {
                0 if at < m.len() => m[at] = SPICE[rng.below(SPICE.len())],
                1 => m.insert(at, SPICE[rng.below(SPICE.len())]),
                2 if at < m.len() => {
                    m.remove(at);
                }
                3 if at < m.len() => m[at] = rng.next() as u8,
                _ => {
                    let end = (at + rng.below(40)).min(m.len());
                    let chunk = m[at..end].to_vec();
                    let to = rng.below(m.len() + 1);
                    m.splice(to..to, chunk);
                }
            }
        }
        exercise(&m);
    }
}

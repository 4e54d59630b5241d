//! Fuzzing the parser with every truncation of the fixtures and seeded
//! byte mutations of them: errors are expected, panics are not, and whatever
//! parses must go through every accessor, `anchor` and `OriginState` without
//! panicking and serialize to a fixed point (writing what we read and
//! reading it back changes nothing more).

use std::net::IpAddr;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::fixtures::{crlf, ALL};
use super::*;

/// Bytes that matter to the grammar, plus a few that should not.
const ALPHABET: &[u8] = b"vosciumabtrzkp=:/ \t\r\n0123456789.-IN IP4 IP6 RTP/AVP\x00\xff\xc3";

/// Everything a caller may do with a parsed SDP; returns whether it parsed.
fn exercise(bytes: &[u8]) -> bool {
    let Ok(sdp) = Sdp::parse(bytes) else {
        return false;
    };
    for m in &sdp.media {
        let _ = m.direction(&sdp);
        let _ = m.rtp_addr(&sdp);
        let _ = m.rtcp_addr(&sdp);
        for r in m.rtpmaps() {
            let _ = m.fmtp(r.pt);
        }
        let mut m2 = m.clone();
        m2.set_direction(Direction::Inactive);
        assert_eq!(m2.direction(&sdp), Direction::Inactive);
    }
    let ip: IpAddr = [192, 0, 2, 1].into();
    let mut anchored = anchor(&sdp, ip, &[4000, 65535, 0]);
    OriginState::new(ip).stamp(&mut anchored);
    for s in [&sdp, &anchored] {
        let once = s.to_bytes();
        let reparsed = Sdp::parse(&once)
            .unwrap_or_else(|e| panic!("our own output failed to parse: {e}\n{once:?}"));
        assert_eq!(reparsed.to_bytes(), once, "not a fixed point: {bytes:?}");
    }
    true
}

#[test]
fn truncated_fixtures_never_panic() {
    let mut accepted = 0;
    let mut total = 0;
    for f in ALL {
        let wire = crlf(f);
        for end in 0..=wire.len() {
            total += 1;
            if exercise(&wire[..end]) {
                accepted += 1;
            }
        }
    }
    // Truncations after s= are valid SDPs, those before are not: both
    // paths must have been taken.
    assert!(total > 2000, "{total}");
    assert!(
        accepted > total / 2 && accepted < total,
        "{accepted}/{total}"
    );
}

#[test]
fn mutated_fixtures_never_panic() {
    let mut rng = StdRng::seed_from_u64(8866);
    let (mut accepted, mut rejected) = (0, 0);
    for _ in 0..4000 {
        let mut b = crlf(ALL[rng.gen_range(0..ALL.len())]);
        for _ in 0..rng.gen_range(1..6) {
            let at = rng.gen_range(0..=b.len());
            let byte = if rng.gen_bool(0.8) {
                ALPHABET[rng.gen_range(0..ALPHABET.len())]
            } else {
                rng.gen()
            };
            match rng.gen_range(0..4) {
                0 => b.insert(at, byte),
                1 if at < b.len() => b[at] = byte,
                2 if at < b.len() => {
                    b.remove(at);
                }
                // Swap a chunk elsewhere: reorders and splices lines.
                _ => {
                    let len = rng.gen_range(0..20).min(b.len() - at);
                    let chunk: Vec<u8> = b.drain(at..at + len).collect();
                    let to = rng.gen_range(0..=b.len());
                    b.splice(to..to, chunk);
                }
            }
        }
        if exercise(&b) {
            accepted += 1;
        } else {
            rejected += 1;
        }
    }
    assert!(accepted > 500 && rejected > 500, "{accepted} / {rejected}");
}

//! RFC 4475 torture tests against `dialtone_sip::message`: every fixture's
//! expected handling is listed in `CASES` (with the RFC section), checked by
//! one table-driven test that reports every mismatch by name, plus
//! per-fixture assertions on interesting fields and the error responses.
//! The per-fixture checks are split by RFC section: `valid.rs` (§3.1.1),
//! `invalid.rs` (§3.1.2), `application.rs` (§3.2–3.4). The no-panic sweep
//! over the same fixtures is `message_robustness.rs`.

#![allow(clippy::unwrap_used)]

mod application;
#[path = "../common/mod.rs"]
mod common;
mod invalid;
mod valid;

use common::fixture;

use dialtone_sip::message::framing::{frame, FrameResult};
use dialtone_sip::message::headers::NameAddr;
use dialtone_sip::message::{
    header_name_value, parse, to_bytes, uas_check, Header, Method, ParseError, Request, Response,
    Scheme, SipMessage, StatusCode, UasPolicy, UntypedHeader,
};

/// What RFC 4475 (and dialtone's policy) expects for a fixture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Parses; a request also passes `uas_check` with the default policy.
    Valid,
    /// Parses, then `uas_check` refuses it with this status.
    Uas(u16),
    /// `parse` refuses it with an error response of this status.
    Reject(u16),
    /// `parse` drops it silently.
    Drop,
}

use Expect::*;

const CASES: &[(&str, &str, Expect)] = &[
    // 3.1.1 valid messages
    ("wsinv", "3.1.1.1", Valid),
    // Unknown method: rsip::Method has no extension variant, so the
    // well-formed request is answered 501 (RFC 3261 §21.5.2) by parse.
    ("intmeth", "3.1.1.2", Reject(501)),
    ("esc01", "3.1.1.3", Valid),
    ("escnull", "3.1.1.4", Valid),
    // RE%47IST%45R is an unknown method (not REGISTER): 501, as intmeth.
    ("esc02", "3.1.1.5", Reject(501)),
    ("lwsdisp", "3.1.1.6", Valid),
    ("longreq", "3.1.1.7", Valid),
    ("dblreq", "3.1.1.8", Valid),
    ("semiuri", "3.1.1.9", Valid),
    ("transports", "3.1.1.10", Valid),
    // Parses; a MESSAGE with a multipart body is outside the default policy.
    ("mpart01", "3.1.1.11", Uas(415)),
    ("unreason", "3.1.1.12", Valid),
    ("noreason", "3.1.1.13", Valid),
    // 3.1.2 invalid messages
    ("badinv01", "3.1.2.1", Reject(400)),
    ("clerr", "3.1.2.2", Reject(400)),
    ("ncl", "3.1.2.3", Reject(400)),
    ("scalar02", "3.1.2.4", Reject(400)),
    ("scalarlg", "3.1.2.5", Drop),
    ("quotbal", "3.1.2.6", Reject(400)),
    ("ltgtruri", "3.1.2.7", Reject(400)),
    ("lwsruri", "3.1.2.8", Reject(400)),
    ("lwsstart", "3.1.2.9", Valid),
    ("trws", "3.1.2.10", Valid),
    ("escruri", "3.1.2.11", Reject(400)),
    ("baddate", "3.1.2.12", Valid),
    ("regbadct", "3.1.2.13", Reject(400)),
    ("badaspec", "3.1.2.14", Reject(400)),
    ("baddn", "3.1.2.15", Reject(400)),
    ("badvers", "3.1.2.16", Reject(505)),
    ("mismatch01", "3.1.2.17", Reject(400)),
    ("mismatch02", "3.1.2.18", Reject(501)),
    ("bigcode", "3.1.2.19", Drop),
    // 3.2 transaction layer: parses; RFC 2543 matching is the transaction layer's.
    ("badbranch", "3.2.1", Valid),
    // 3.3 application layer
    // No From, To or Call-ID: no well-formed response can be built, so drop.
    ("insuf", "3.3.1", Drop),
    ("unkscm", "3.3.2", Uas(416)),
    ("novelsc", "3.3.3", Uas(416)),
    // A registrar answers 400: To must be a SIP or SIPS AOR (RFC 4475 §3.3.4).
    ("unksm2", "3.3.4", Uas(400)),
    ("bext01", "3.3.5", Uas(420)),
    ("invut", "3.3.6", Uas(415)),
    // The 401 challenge is the registrar's job; the request itself is fine.
    ("regaut01", "3.3.7", Valid),
    ("multi01", "3.3.8", Uas(400)),
    ("mcl01", "3.3.9", Uas(400)),
    ("bcast", "3.3.10", Valid),
    // A UAS processes Max-Forwards 0; only a proxy would answer 483.
    ("zeromf", "3.3.11", Valid),
    ("cparam01", "3.3.12", Valid),
    ("cparam02", "3.3.13", Valid),
    ("regescrt", "3.3.14", Valid),
    ("sdp01", "3.3.15", Uas(406)),
    // 3.4 backward compatibility
    ("inv2543", "3.4.1", Valid),
];

fn outcome(bytes: &[u8]) -> Expect {
    match parse(bytes) {
        Ok(SipMessage::Request(req)) => match uas_check(&req, &UasPolicy::default()) {
            Ok(()) => Valid,
            Err(r) => Uas(r.status),
        },
        Ok(SipMessage::Response(_)) => Valid,
        Err(ParseError::Reject { status, .. }) => Reject(status),
        Err(ParseError::Drop { .. }) => Drop,
    }
}

#[test]
fn every_fixture_gets_its_verdict() {
    assert_eq!(CASES.len(), 49);
    let mut mismatches = Vec::new();
    for &(name, section, expect) in CASES {
        let got = outcome(&fixture(name));
        if got != expect {
            mismatches.push(format!(
                "{name} (§{section}): expected {expect:?}, got {got:?}"
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "mismatches:\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn the_fixture_list_is_complete() {
    let on_disk: Vec<String> = common::named_fixtures()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let mut listed: Vec<String> = CASES.iter().map(|c| c.0.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
}

// ---- helpers -------------------------------------------------------------

fn request(name: &str) -> Request {
    match parse(&fixture(name)) {
        Ok(SipMessage::Request(r)) => r,
        other => panic!("{name}: expected a request, got {other:?}"),
    }
}

fn response(name: &str) -> Response {
    match parse(&fixture(name)) {
        Ok(SipMessage::Response(r)) => r,
        other => panic!("{name}: expected a response, got {other:?}"),
    }
}

fn values<'a>(headers: &'a dialtone_sip::message::Headers, name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .map(header_name_value)
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .collect()
}

fn one<'a>(headers: &'a dialtone_sip::message::Headers, name: &str) -> &'a str {
    let v = values(headers, name);
    assert_eq!(v.len(), 1, "{name}: {v:?}");
    v[0]
}

fn rejection(name: &str) -> (u16, String, String) {
    match parse(&fixture(name)) {
        Err(ParseError::Reject {
            status,
            reason,
            response,
        }) => (
            status,
            reason,
            String::from_utf8_lossy(&response).into_owned(),
        ),
        other => panic!("{name}: expected a rejection, got {other:?}"),
    }
}

fn start_line(msg: &SipMessage) -> String {
    let bytes = to_bytes(msg);
    let s = String::from_utf8_lossy(&bytes);
    s.split("\r\n").next().unwrap_or_default().to_string()
}

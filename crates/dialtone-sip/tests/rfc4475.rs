//! RFC 4475 torture tests against `dialtone_sip::message`: every fixture's
//! expected handling is listed in `CASES` (with the RFC section), checked by
//! one table-driven test that reports every mismatch by name, plus
//! per-fixture assertions on interesting fields and the error responses.
//! The no-panic sweep over the same fixtures is `message_robustness.rs`.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

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

fn fixture(name: &str) -> Vec<u8> {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests/fixtures/rfc4475",
        &format!("{name}.dat"),
    ]
    .iter()
    .collect();
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

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
    let dir: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests/fixtures/rfc4475"]
        .iter()
        .collect();
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .expect("fixture dir")
        .filter_map(|e| {
            let p = e.ok()?.path();
            if p.extension()? != "dat" {
                return None;
            }
            Some(p.file_stem()?.to_string_lossy().into_owned())
        })
        .collect();
    on_disk.sort();
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

// ---- 3.1.1 valid messages ------------------------------------------------

#[test]
fn wsinv_whitespace_everywhere() {
    let r = request("wsinv");
    assert_eq!(r.method, Method::Invite);
    assert_eq!(r.uri.user(), Some("vivekg"));
    assert_eq!(
        one(&r.headers, "To"),
        "sip:vivekg@chair-dnrc.example.com;tag=1918181833n"
    );
    let from = NameAddr::parse(one(&r.headers, "From")).unwrap();
    assert_eq!(from.tag(), Some("98asjd8"));
    assert_eq!(
        from.display_name_unquoted().as_deref(),
        Some("J Rosenberg \\\"")
    );
    assert_eq!(one(&r.headers, "Max-Forwards"), "0068");
    assert_eq!(one(&r.headers, "CSeq"), "0009 INVITE");
    assert_eq!(
        values(&r.headers, "Via"),
        [
            "SIP/2.0/UDP 192.0.2.2;branch=390skdjuw",
            "SIP/2.0/TCP spindle.example.com;branch=z9hG4bK9ikj8",
            "SIP/2.0/UDP 192.168.255.111;branch=z9hG4bK30239",
        ]
    );
    let contact = NameAddr::parse(one(&r.headers, "Contact")).unwrap();
    assert_eq!(contact.param("newparam"), Some(Some("newvalue")));
    assert_eq!(contact.param("secondparam"), Some(None));
    assert_eq!(contact.param("q"), Some(Some("0.33")));
    assert_eq!(one(&r.headers, "Subject"), "");
    assert_eq!(
        one(&r.headers, "NewFangledHeader"),
        "newfangled value continued newfangled value"
    );
    assert_eq!(r.body.len(), 150);
    // rsip's typed views read the canonical values.
    use rsip::prelude::*;
    assert_eq!(r.cseq_header().unwrap().typed().unwrap().seq, 9);
    assert_eq!(r.max_forwards_header().unwrap().num().unwrap(), 68);
    assert_eq!(
        r.to_header().unwrap().tag().unwrap().unwrap().value(),
        "1918181833n"
    );
}

#[test]
fn intmeth_unknown_method_answered_501() {
    let (status, _, resp) = rejection("intmeth");
    assert_eq!(status, 501);
    assert!(resp.starts_with("SIP/2.0 501 Not Implemented\r\n"));
    assert!(resp.contains("\r\nCSeq: 139122385 !interesting-Method0123456789_*+`.%indeed'~\r\n"));
    assert!(resp.contains("\r\nCall-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{\r\n"));
    assert!(resp.contains("\r\nVia: SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~\r\n"));
    // The To with BEL, NUL and DEL in its quoted display name is copied and tagged.
    assert!(resp.contains("To: \"BEL:\\\u{7} NUL:\\\u{0} DEL:\\\u{7f}\" <sip:"));
    assert!(resp.contains("@example.com>;tag="));
}

#[test]
fn esc01_escapes_stay_escaped() {
    let r = request("esc01");
    assert_eq!(r.uri.user(), Some("sips%3Auser%40example.com"));
    assert_eq!(r.uri.host().to_string(), "example.net");
    assert_eq!(
        one(&r.headers, "Contact"),
        "<sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>"
    );
    assert_eq!(one(&r.headers, "Content-Type"), "application/sdp");
    assert_eq!(
        one(&r.headers, "Call-ID"),
        "esc01.239409asdfakjkn23onasd0-3234"
    );
    let from = NameAddr::parse(one(&r.headers, "From")).unwrap();
    assert_eq!(from.uri.user(), Some("I%20have%20spaces"));
}

#[test]
fn escnull_escaped_nul() {
    let r = request("escnull");
    let to = NameAddr::parse(one(&r.headers, "To")).unwrap();
    assert_eq!(to.uri.user(), Some("null-%00-null"));
    assert_eq!(values(&r.headers, "Contact").len(), 2);
    assert_eq!(one(&r.headers, "Content-Length"), "0");
}

#[test]
fn esc02_percent_is_not_an_escape_in_methods() {
    let (status, _, resp) = rejection("esc02");
    assert_eq!(status, 501);
    assert!(resp.contains("\r\nCSeq: 29344 RE%47IST%45R\r\n"));
    assert!(resp.contains("\r\nTo: \"%Z%45\" <sip:resource@example.com>;tag="));
}

#[test]
fn lwsdisp_no_space_before_laquot() {
    let r = request("lwsdisp");
    let from = NameAddr::parse(one(&r.headers, "From")).unwrap();
    assert_eq!(from.display_name.as_deref(), Some("caller"));
    assert_eq!(from.tag(), Some("323"));
}

#[test]
fn longreq_long_values_and_many_vias() {
    let r = request("longreq");
    assert_eq!(r.headers.iter().count(), 43);
    assert_eq!(values(&r.headers, "Via").len(), 34);
    let to = NameAddr::parse(one(&r.headers, "To")).unwrap();
    assert_eq!(to.uri.port().map(|p| *p.value()), Some(6000));
    assert!(to
        .display_name_unquoted()
        .is_some_and(|d| d.ends_with("extreme proportion")));
    assert!(one(&r.headers, "Call-ID").ends_with("reallylongcallid"));
    assert_eq!(r.body.len(), 150);
}

#[test]
fn dblreq_first_message_only() {
    let bytes = fixture("dblreq");
    let r = request("dblreq");
    assert_eq!(r.method, Method::Register);
    assert!(r.body.is_empty());
    assert_eq!(
        one(&r.headers, "Call-ID"),
        "dblreq.0ha0isndaksdj99sdfafnl3lk233412"
    );
    // On a stream the same bytes frame as the REGISTER alone.
    match frame(&bytes) {
        FrameResult::Complete { len } => {
            assert!(String::from_utf8_lossy(&bytes[len..]).starts_with("\r\nINVITE sip:joe@"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn semiuri_semicolon_in_user_part() {
    let r = request("semiuri");
    assert_eq!(r.uri.user(), Some("user;par=u%40example.net"));
    assert_eq!(r.uri.host().to_string(), "example.com");
    assert!(r.uri.params.is_empty());
    assert_eq!(
        one(&r.headers, "Accept"),
        "application/sdp, application/pkcs7-mime, multipart/mixed, multipart/signed, message/sip, message/sipfrag"
    );
}

#[test]
fn transports_all_via_transports() {
    let r = request("transports");
    let transports: Vec<&str> = values(&r.headers, "Via")
        .iter()
        .map(|v| {
            v.split(' ')
                .next()
                .unwrap_or_default()
                .rsplit('/')
                .next()
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(transports, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
    assert_eq!(
        one(&r.headers, "Call-ID"),
        "transports.kijh4akdnaqjkwendsasfdj"
    );
}

#[test]
fn mpart01_binary_multipart_body_survives() {
    let bytes = fixture("mpart01");
    let r = request("mpart01");
    assert_eq!(r.method, Method::Message);
    assert_eq!(r.body.len(), 553);
    assert!(bytes.ends_with(&r.body));
    assert_eq!(
        one(&r.headers, "Content-Type"),
        "multipart/mixed;boundary=7a9cbec02ceef655"
    );
    let out = to_bytes(&SipMessage::Request(r.clone()));
    assert!(out.ends_with(&r.body), "body must be written byte for byte");
    let mut policy = UasPolicy::default();
    policy.accepted_content_types.push("multipart/mixed".into());
    assert!(uas_check(&r, &policy).is_ok());
}

#[test]
fn unreason_and_noreason_responses() {
    let r = response("unreason");
    assert_eq!(r.status_code, StatusCode::OK);
    assert_eq!(r.body.len(), 154);
    let r = response("noreason");
    assert_eq!(r.status_code, StatusCode::Trying);
    assert!(start_line(&SipMessage::Response(r)).starts_with("SIP/2.0 100 "));
}

// ---- 3.1.2 invalid messages ----------------------------------------------

#[test]
fn error_responses_copy_the_request_identity() {
    for &(name, _, expect) in CASES {
        let Reject(status) = expect else { continue };
        let (got, reason, resp) = rejection(name);
        assert_eq!(got, status, "{name}");
        assert!(
            resp.starts_with(&format!("SIP/2.0 {status} ")),
            "{name}: {resp}"
        );
        assert!(!reason.is_empty());
        assert!(resp.ends_with("\r\nContent-Length: 0\r\n\r\n"), "{name}");
        let lines: Vec<&str> = resp.split("\r\n").collect();
        for h in ["Via: ", "From: ", "To: ", "Call-ID: ", "CSeq: "] {
            assert!(lines.iter().any(|l| l.starts_with(h)), "{name}: no {h}");
        }
        let to = lines
            .iter()
            .find(|l| l.starts_with("To: "))
            .copied()
            .unwrap_or_default();
        assert!(to.contains("tag="), "{name}: untagged {to}");
    }
}

#[test]
fn invalid_verdict_details() {
    let (_, reason, resp) = rejection("badinv01");
    assert!(reason.contains("Via"), "{reason}");
    assert!(resp.contains("Via: SIP/2.0/UDP 192.0.2.15;;,;,,\r\n"));
    assert!(rejection("clerr").1.contains("Content-Length"));
    assert!(rejection("ncl").1.contains("Content-Length"));
    assert!(rejection("scalar02").1.contains("CSeq"));
    assert!(rejection("quotbal").1.contains("To"));
    assert!(rejection("ltgtruri").1.contains("Request-URI"));
    assert!(rejection("lwsruri").1.contains("Request-URI"));
    assert!(rejection("escruri").1.contains("Request-URI"));
    assert!(rejection("regbadct").1.contains("Contact"));
    assert!(rejection("badaspec").1.contains("To"));
    assert!(rejection("baddn").1.contains("From"));
    assert!(rejection("mismatch01").1.contains("CSeq"));
    let (_, _, resp) = rejection("badvers");
    assert!(resp.starts_with("SIP/2.0 505 Version Not Supported\r\n"));
    // The error response for a request whose From/To/CSeq parse can itself
    // be parsed (the others echo the malformed values, as they must).
    for name in [
        "clerr",
        "mismatch01",
        "badvers",
        "mismatch02",
        "ncl",
        "ltgtruri",
    ] {
        let (status, _, resp) = rejection(name);
        match parse(resp.as_bytes()) {
            Ok(SipMessage::Response(r)) => assert_eq!(r.status_code.code(), status, "{name}"),
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn tolerated_start_line_whitespace_is_not_forwarded() {
    let r = request("lwsstart");
    assert_eq!(
        start_line(&SipMessage::Request(r)),
        "INVITE sip:user@example.com SIP/2.0"
    );
    let r = request("trws");
    assert_eq!(
        start_line(&SipMessage::Request(r)),
        "OPTIONS sip:remote-target@example.com SIP/2.0"
    );
}

#[test]
fn baddate_is_ignored() {
    let r = request("baddate");
    assert_eq!(one(&r.headers, "Date"), "Fri, 01 Jan 2010 16:00:00 EST");
}

#[test]
fn dropped_responses() {
    for name in ["scalarlg", "bigcode"] {
        assert!(
            matches!(parse(&fixture(name)), Err(ParseError::Drop { .. })),
            "{name}"
        );
    }
}

// ---- 3.2 / 3.3 / 3.4 -------------------------------------------------------

#[test]
fn badbranch_bare_magic_cookie() {
    let r = request("badbranch");
    assert_eq!(
        one(&r.headers, "Via"),
        "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK"
    );
}

#[test]
fn application_verdict_details() {
    let r = request("unkscm");
    assert_eq!(
        r.uri.scheme,
        Some(Scheme::Other("nobodyKnowsThisScheme".into()))
    );
    assert_eq!(
        start_line(&SipMessage::Request(r)),
        "OPTIONS nobodyKnowsThisScheme:totallyopaquecontent SIP/2.0"
    );
    let r = request("novelsc");
    assert_eq!(
        start_line(&SipMessage::Request(r.clone())),
        "OPTIONS soap.beep://192.0.2.103:3002 SIP/2.0"
    );
    let mut policy = UasPolicy::default();
    policy.supported_schemes.push("soap.beep".into());
    assert!(uas_check(&r, &policy).is_ok());

    let r = request("unksm2");
    let to = NameAddr::parse(one(&r.headers, "To")).unwrap();
    assert_eq!(to.uri.scheme, Some(Scheme::Other("isbn".into())));
    assert!(NameAddr::parse(one(&r.headers, "Contact")).is_ok());

    let r = request("bext01");
    let rej = uas_check(&r, &UasPolicy::default()).unwrap_err();
    assert_eq!(rej.headers.len(), 1);
    assert_eq!(
        header_name_value(&rej.headers[0]),
        (
            "Unsupported",
            "nothingSupportsThis, nothingSupportsThisEither"
        )
    );
    let resp = rej.response(&r);
    assert_eq!(resp.status_code.code(), 420);
    assert_eq!(
        one(&resp.headers, "Unsupported"),
        "nothingSupportsThis, nothingSupportsThisEither"
    );

    let r = request("invut");
    let rej = uas_check(&r, &UasPolicy::default()).unwrap_err();
    assert!(
        matches!(&rej.headers[..], [Header::Accept(a)] if a.value().contains("application/sdp"))
    );

    let r = request("regaut01");
    assert_eq!(
        one(&r.headers, "Authorization"),
        "NoOneKnowsThisScheme opaque-data=here"
    );

    let r = request("multi01");
    assert_eq!(values(&r.headers, "CSeq").len(), 2);
    let r = request("mcl01");
    assert_eq!(values(&r.headers, "Content-Length"), ["13", "5"]);
    assert_eq!(r.body, b"There's no wa");

    let r = response("bcast");
    assert_eq!(values(&r.headers, "Via").len(), 2);

    let r = request("zeromf");
    assert_eq!(one(&r.headers, "Max-Forwards"), "0");

    let r = request("cparam01");
    let c = NameAddr::parse(one(&r.headers, "Contact")).unwrap();
    assert_eq!(
        c.param("unknownparam"),
        Some(None),
        "addr-spec: a header parameter"
    );
    assert!(c.uri.params.is_empty());
    let r = request("cparam02");
    let c = NameAddr::parse(one(&r.headers, "Contact")).unwrap();
    assert!(c.params.is_empty(), "inside <>: a URI parameter");
    assert_eq!(
        c.uri.params,
        [rsip::Param::Other("unknownparam".into(), None)]
    );
    let r = request("regescrt");
    let c = NameAddr::parse(one(&r.headers, "Contact")).unwrap();
    assert_eq!(
        c.uri_headers.as_deref(),
        Some("Route=%3Csip:sip.example.com%3E")
    );
    assert_eq!(
        c.to_string(),
        "<sip:user@example.com?Route=%3Csip:sip.example.com%3E>"
    );

    let r = request("sdp01");
    let rej = uas_check(&r, &UasPolicy::default()).unwrap_err();
    assert_eq!(rej.status, 406);
}

#[test]
fn inv2543_rfc2543_syntax() {
    let r = request("inv2543");
    assert!(values(&r.headers, "Max-Forwards").is_empty());
    assert_eq!(one(&r.headers, "Via"), "SIP/2.0/UDP iftgw.example.com");
    let from = NameAddr::parse(one(&r.headers, "From")).unwrap();
    assert_eq!(from.tag(), None);
    // No Content-Length on a datagram: the body is the rest of it.
    assert!(r.body.starts_with(b"v=0\r\n"));
    assert!(r.body.ends_with(b"RTP/AVP 0\r\n"));
}

//! RFC 4475 §3.1.2: invalid messages get the RFC's verdict, and the error
//! responses copy the request's identity.

use super::*;

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

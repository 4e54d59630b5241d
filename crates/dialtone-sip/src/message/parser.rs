//! The parse pipeline behind [`super::parse`]: split the datagram into start
//! line, header section and body; read the header lines (unfolded, compact
//! names expanded); check and canonicalise them ([`super::validate`]); frame
//! the body by Content-Length; build the rsip `Request`/`Response`. On
//! failure a request gets an error response built from its raw header lines
//! ([`super::reply::reject_bytes`]) when that is possible; responses, ACKs
//! and anything unanswerable are dropped.

use rsip::headers::UntypedHeader;
use rsip::{Header, Request, Response, SipMessage, Version};

use super::compact::{find_crlf, find_crlf_crlf, header_lines, RawHeader};
use super::grammar::{find_byte, is_wsp};
use super::reply::reject_bytes;
use super::validate::{cseq_parts, known_method, push_header, request_line, status_line, Fail};
use super::ParseError;

/// Parses one message from a datagram (or a frame cut by
/// [`super::framing::frame`]).
pub(crate) fn parse(bytes: &[u8]) -> Result<SipMessage, ParseError> {
    let mut msg = bytes;
    while let Some(rest) = msg.strip_prefix(b"\r\n") {
        msg = rest;
    }
    if msg.is_empty() {
        return Err(drop("empty message"));
    }
    let Some(sl_end) = find_crlf(msg) else {
        return Err(drop("no complete start line"));
    };
    let start_line = &msg[..sl_end];
    // RFC 3261 §18.3: on a datagram, octets after the message are ignored;
    // a missing empty line means the datagram ended with the headers.
    let (section, body) = match find_crlf_crlf(&msg[sl_end..]) {
        Some(i) => (&msg[sl_end + 2..sl_end + i + 2], &msg[sl_end + i + 4..]),
        None => (&msg[sl_end + 2..], &msg[msg.len()..]),
    };
    // A CR or LF on its own would end a header line for some receivers and
    // not for others: refuse it rather than forward it.
    let bare_cr_lf = has_bare_cr_or_lf(section);
    let mut raw: Vec<RawHeader<'_>> = Vec::with_capacity(16);
    let mut malformed = None;
    for line in header_lines(section) {
        match line {
            Ok(h) => raw.push(h),
            Err(m) => {
                malformed.get_or_insert(m);
            }
        }
    }
    let is_response = start_line.len() >= 4 && start_line[..4].eq_ignore_ascii_case(b"SIP/");
    if is_response {
        let result = (|| {
            let status_code = status_line(start_line)?;
            if malformed.is_some() || bare_cr_lf {
                return Err("malformed header line".to_string());
            }
            let (headers, body) = build(&raw, body, None).map_err(|f| f.reason)?;
            Ok(SipMessage::Response(Response {
                status_code,
                version: Version::V2,
                headers: headers.into(),
                body: body.to_vec(),
            }))
        })();
        return result.map_err(|reason| drop(&format!("response dropped: {reason}")));
    }
    let line = match request_line(start_line) {
        Ok(line) => line,
        Err(f) if f.status == 0 => return Err(drop(&f.reason)),
        Err(f) => return Err(reject(&raw, start_line, f)),
    };
    if malformed.is_some() {
        return Err(reject(&raw, start_line, Fail::bad("Malformed header line")));
    }
    if bare_cr_lf {
        return Err(reject(
            &raw,
            start_line,
            Fail::bad("Bare CR or LF in header section"),
        ));
    }
    match build(&raw, body, Some(line.method)) {
        Ok((headers, body)) => match known_method(line.method) {
            Some(method) => Ok(SipMessage::Request(Request {
                method,
                uri: line.uri,
                version: Version::V2,
                headers: headers.into(),
                body: body.to_vec(),
            })),
            // rsip's Method has no extension variant: an unknown method is
            // answered here, after the whole request was found well-formed.
            None => Err(reject(&raw, start_line, Fail::new(501, "Not Implemented"))),
        },
        Err(f) => Err(reject(&raw, start_line, f)),
    }
}

/// Converts and checks the headers, checks the mandatory ones and the CSeq,
/// and frames the body. `method` is the request method (None: response).
fn build<'b>(
    raw: &[RawHeader<'_>],
    body: &'b [u8],
    method: Option<&str>,
) -> Result<(Vec<Header>, &'b [u8]), Fail> {
    let mut headers = Vec::with_capacity(raw.len() + 2);
    for h in raw {
        push_header(&mut headers, h.name, &h.value)?;
    }
    let mut have = [false; 5];
    let mut cseq = None;
    let mut content_length = None;
    for h in &headers {
        match h {
            Header::Via(_) => have[0] = true,
            Header::From(_) => have[1] = true,
            Header::To(_) => have[2] = true,
            Header::CallId(_) => have[3] = true,
            Header::CSeq(c) => {
                have[4] = true;
                cseq.get_or_insert(c.value());
            }
            Header::ContentLength(l) => {
                content_length.get_or_insert(l.value());
            }
            _ => {}
        }
    }
    const NAMES: [&str; 5] = ["Via", "From", "To", "Call-ID", "CSeq"];
    if let Some(i) = have.iter().position(|h| !h) {
        return Err(Fail::bad(format!("Missing {} header", NAMES[i])));
    }
    let (_, cseq_method) = cseq_parts(cseq.unwrap_or_default()).map_err(Fail::bad)?;
    match method {
        Some(m) => {
            // An unknown method is 501 whatever its CSeq says (RFC 4475
            // §3.1.2.18); a known one must match its CSeq exactly.
            if known_method(m).is_some() && cseq_method != m {
                return Err(Fail::bad("CSeq method does not match the request method"));
            }
        }
        None => {
            if known_method(cseq_method).is_none() {
                return Err(Fail::bad(format!("unknown CSeq method {cseq_method}")));
            }
        }
    }
    let body = match content_length {
        None => body,
        Some(cl) => {
            let n = super::framing::parse_length(cl.as_bytes()).map_err(Fail::bad)?;
            body.get(..n)
                .ok_or_else(|| Fail::bad("Content-Length larger than the message body"))?
        }
    };
    Ok((headers, body))
}

/// Whether a CR not followed by LF, or an LF not preceded by CR, occurs.
fn has_bare_cr_or_lf(section: &[u8]) -> bool {
    let mut from = 0;
    while let Some(i) = find_byte(b'\n', &section[from..]) {
        let lf = from + i;
        if lf == 0 || section[lf - 1] != b'\r' {
            return true;
        }
        from = lf + 1;
    }
    let mut from = 0;
    while let Some(i) = find_byte(b'\r', &section[from..]) {
        let cr = from + i;
        if section.get(cr + 1) != Some(&b'\n') {
            return true;
        }
        from = cr + 1;
    }
    false
}

fn drop(reason: &str) -> ParseError {
    ParseError::Drop {
        reason: reason.to_string(),
    }
}

/// The error for a request that failed `fail`: a ready response when one
/// can be built (never for ACK), else a drop.
fn reject(raw: &[RawHeader<'_>], start_line: &[u8], fail: Fail) -> ParseError {
    let method = start_line.split(|&b| is_wsp(b)).find(|p| !p.is_empty());
    let is_ack = method == Some(b"ACK".as_slice());
    let response = if is_ack {
        None
    } else {
        reject_bytes(raw, fail.status, &fail.reason)
    };
    match response {
        Some(response) => ParseError::Reject {
            status: fail.status,
            reason: fail.reason,
            response,
        },
        None => ParseError::Drop {
            reason: format!("{} ({}; cannot answer)", fail.reason, fail.status),
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const HEAD: &str = "Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\n";

    fn req(method: &str, cseq: &str, extra: impl AsRef<[u8]>, body: &str) -> Vec<u8> {
        let mut m = format!("{method} sip:c@d SIP/2.0\r\n{HEAD}CSeq: {cseq}\r\n").into_bytes();
        m.extend_from_slice(extra.as_ref());
        m.extend_from_slice(b"\r\n");
        m.extend_from_slice(body.as_bytes());
        m
    }

    fn status(bytes: &[u8]) -> Option<u16> {
        match parse(bytes) {
            Ok(_) => Some(0),
            Err(e) => e.status(),
        }
    }

    #[test]
    fn leading_crlf_and_missing_empty_line() {
        let mut m = b"\r\n\r\n".to_vec();
        m.extend(req("OPTIONS", "1 OPTIONS", "", ""));
        assert_eq!(status(&m), Some(0));
        let m = format!("OPTIONS sip:c@d SIP/2.0\r\n{HEAD}CSeq: 1 OPTIONS\r\n");
        assert_eq!(status(m.as_bytes()), Some(0));
    }

    #[test]
    fn methods_and_cseq() {
        assert_eq!(status(&req("INVITE", "1 INVITE", "", "")), Some(0));
        assert_eq!(status(&req("invite", "1 invite", "", "")), Some(501));
        assert_eq!(status(&req("FOO", "1 BAR", "", "")), Some(501));
        assert_eq!(status(&req("OPTIONS", "1 INVITE", "", "")), Some(400));
        assert_eq!(status(&req("CANCEL", "1 INVITE", "", "")), Some(400));
        // ACK never gets a response, not even an error.
        assert!(matches!(
            parse(&req("ACK", "1 INVITE", "", "")),
            Err(ParseError::Drop { .. })
        ));
    }

    #[test]
    fn body_framing() {
        let m = req("MESSAGE", "1 MESSAGE", "Content-Length: 3\r\n", "abcdef");
        match parse(&m) {
            Ok(SipMessage::Request(r)) => assert_eq!(r.body, b"abc"),
            other => panic!("{other:?}"),
        }
        let m = req("MESSAGE", "1 MESSAGE", "", "abcdef");
        match parse(&m) {
            Ok(SipMessage::Request(r)) => assert_eq!(r.body, b"abcdef"),
            other => panic!("{other:?}"),
        }
        let m = req("MESSAGE", "1 MESSAGE", "Content-Length: 7\r\n", "abcdef");
        assert_eq!(status(&m), Some(400));
    }

    #[test]
    fn header_section_errors() {
        assert_eq!(
            status(&req("OPTIONS", "1 OPTIONS", "X: a\nVia: b\r\n", "")),
            Some(400)
        );
        assert_eq!(
            status(&req("OPTIONS", "1 OPTIONS", "X: a\rb\r\n", "")),
            Some(400)
        );
        assert_eq!(
            status(&req("OPTIONS", "1 OPTIONS", "no colon\r\n", "")),
            Some(400)
        );
        assert_eq!(
            status(&req("OPTIONS", "1 OPTIONS", b"From: \xff\r\n", "")),
            Some(400)
        );
        // Missing Call-ID: nothing to answer with.
        let m = b"OPTIONS sip:c@d SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:a@b>\r\nTo: <sip:c@d>\r\nCSeq: 1 OPTIONS\r\n\r\n";
        assert!(matches!(parse(m), Err(ParseError::Drop { reason }) if reason.contains("Call-ID")));
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\n\r\n"),
            Err(ParseError::Drop { .. })
        ));
        assert!(matches!(parse(b""), Err(ParseError::Drop { .. })));
    }

    #[test]
    fn unknown_headers_are_kept_lossily() {
        let m = req("OPTIONS", "1 OPTIONS", b"X-Latin: caf\xe9\r\n", "");
        match parse(&m) {
            Ok(SipMessage::Request(r)) => {
                assert!(r
                    .headers
                    .iter()
                    .any(|h| *h == Header::Other("X-Latin".into(), "caf\u{fffd}".into())));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn responses() {
        let ok = |cseq: &str| format!("SIP/2.0 200 OK\r\n{HEAD}CSeq: {cseq}\r\n\r\n");
        assert!(matches!(
            parse(ok("1 INVITE").as_bytes()),
            Ok(SipMessage::Response(_))
        ));
        // A response to a method dialtone never sends cannot match anything.
        assert!(matches!(
            parse(ok("1 FOO").as_bytes()),
            Err(ParseError::Drop { .. })
        ));
        let no_via = "SIP/2.0 200 OK\r\nCall-ID: x\r\n\r\n";
        assert!(matches!(
            parse(no_via.as_bytes()),
            Err(ParseError::Drop { .. })
        ));
    }
}

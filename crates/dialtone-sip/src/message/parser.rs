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
        return Err(reject(&raw, start_line, Fail::bad("Bare CR or LF in header section")));
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

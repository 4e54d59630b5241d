//! Serialization (behind [`super::to_bytes`]): the start line is written by
//! dialtone (rsip prints reason phrases as `NotFound` and mangles IPv6 and
//! non-SIP URIs), headers use rsip's `Name: value` Display, exactly one
//! Content-Length is written with the real body length (in place of the
//! first one, or last when there was none), and the body is copied as
//! bytes (rsip's Display would run it through a lossy UTF-8 conversion).

use std::io::Write as _;

use rsip::{Header, SipMessage, StatusCode};

use super::names::name_value;
use super::reply::{reason_phrase, sanitize};
use super::uri::write_uri;

/// Serializes `msg` with a correct Content-Length.
pub(crate) fn to_bytes(msg: &SipMessage) -> Vec<u8> {
    let (headers, body) = match msg {
        SipMessage::Request(r) => (&r.headers, &r.body),
        SipMessage::Response(r) => (&r.headers, &r.body),
    };
    let mut out = Vec::with_capacity(512 + body.len());
    match msg {
        SipMessage::Request(r) => {
            let mut line = String::with_capacity(96);
            line.push_str(&r.method.to_string());
            line.push(' ');
            write_uri(&mut line, &r.uri);
            line.push(' ');
            out.extend_from_slice(line.as_bytes());
            let _ = write!(out, "{}\r\n", r.version);
        }
        SipMessage::Response(r) => {
            let code = r.status_code.code();
            let reason = match &r.status_code {
                StatusCode::Other(_, reason) if !reason.is_empty() && reason != "Other" => {
                    sanitize(reason)
                }
                _ => reason_phrase(code).to_string(),
            };
            let _ = write!(out, "{} {code} {reason}\r\n", r.version);
        }
    }
    let mut wrote_length = false;
    for h in headers.iter() {
        if is_content_length(h) {
            if !wrote_length {
                let _ = write!(out, "Content-Length: {}\r\n", body.len());
                wrote_length = true;
            }
            continue;
        }
        let (name, value) = name_value(h);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !wrote_length {
        let _ = write!(out, "Content-Length: {}\r\n", body.len());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

fn is_content_length(h: &Header) -> bool {
    match h {
        Header::ContentLength(_) => true,
        Header::Other(name, _) => {
            name.eq_ignore_ascii_case("Content-Length") || name.eq_ignore_ascii_case("l")
        }
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rsip::headers::{self as h, UntypedHeader};
    use rsip::{Response, Version};

    #[test]
    fn content_length_fixed_in_place_and_never_duplicated() {
        let resp = Response {
            status_code: StatusCode::NotFound,
            version: Version::V2,
            headers: vec![
                Header::ContentLength(h::ContentLength::new("99")),
                Header::CallId(h::CallId::new("x")),
                Header::Other("l".into(), "3".into()),
            ]
            .into(),
            body: vec![0xff, 0x00, b'a'],
        };
        let out = to_bytes(&SipMessage::Response(resp));
        let mut expect =
            b"SIP/2.0 404 Not Found\r\nContent-Length: 3\r\nCall-ID: x\r\n\r\n".to_vec();
        expect.extend_from_slice(&[0xff, 0x00, b'a']);
        assert_eq!(out, expect);
    }

    #[test]
    fn inserts_content_length_and_keeps_custom_reason() {
        let resp = Response {
            status_code: StatusCode::Other(299, "Fine\r\nX".into()),
            version: Version::V2,
            headers: vec![Header::CallId(h::CallId::new("x"))].into(),
            body: Vec::new(),
        };
        let out = String::from_utf8(to_bytes(&SipMessage::Response(resp))).unwrap();
        assert_eq!(
            out,
            "SIP/2.0 299 Fine  X\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n"
        );
    }
}

//! Building responses (RFC 3261 §8.2.6): [`response_to`] copies Via, From,
//! To, Call-ID and CSeq from a request; [`with_to_tag`] adds the UAS tag;
//! [`reject_bytes`] builds the error response for a request that did not
//! parse, straight from its raw header lines. Also the random identifiers
//! dialtone mints: tags, branches and Call-IDs (§19.3, §8.1.1.7, §8.1.1.4).

use std::fmt::Write as _;
use std::sync::OnceLock;

use rand::Rng;
use rsip::headers::{self as h, UntypedHeader};
use rsip::{Header, Request, Response, StatusCode, Version};

use super::compact::RawHeader;
use super::headers::NameAddr;

/// The response to `req` with `status`: all Via (in order), From, To (as it
/// is; the caller adds the tag with [`with_to_tag`]), Call-ID, CSeq,
/// Timestamp on a 100 (§8.2.6.1) and `Content-Length: 0`.
///
/// With `reason`, the status is `StatusCode::Other(status, reason)` (the
/// only rsip variant that keeps a reason phrase), so compare with `.code()`.
pub fn response_to(req: &Request, status: u16, reason: Option<&str>) -> Response {
    let status_code = match reason {
        Some(r) if reason_phrase(status) != r => StatusCode::Other(status, sanitize(r)),
        _ => match StatusCode::from(status) {
            StatusCode::Other(code, _) => StatusCode::Other(code, reason_phrase(code).into()),
            known => known,
        },
    };
    let mut headers: Vec<Header> = Vec::with_capacity(8);
    headers.extend(
        req.headers
            .iter()
            .filter(|h| matches!(h, Header::Via(_)))
            .cloned(),
    );
    let first = |f: fn(&Header) -> bool| req.headers.iter().find(|h| f(h)).cloned();
    headers.extend(first(|h| matches!(h, Header::From(_))));
    headers.extend(first(|h| matches!(h, Header::To(_))));
    headers.extend(first(|h| matches!(h, Header::CallId(_))));
    headers.extend(first(|h| matches!(h, Header::CSeq(_))));
    if status == 100 {
        headers.extend(first(|h| matches!(h, Header::Timestamp(_))));
    }
    // §12.1.1: a response that establishes a dialog (early or confirmed)
    // carries the request's Record-Route, in order, so the caller's route
    // set goes through the proxies that asked to stay on the path.
    let creates_dialog = matches!(
        req.method,
        rsip::Method::Invite | rsip::Method::Subscribe | rsip::Method::Refer
    );
    if creates_dialog && (101..300).contains(&status) {
        headers.extend(
            req.headers
                .iter()
                .filter(|h| matches!(h, Header::RecordRoute(_)))
                .cloned(),
        );
    }
    headers.push(Header::ContentLength(h::ContentLength::new("0")));
    Response {
        status_code,
        version: Version::V2,
        headers: headers.into(),
        body: Vec::new(),
    }
}

/// Adds `;tag=<tag>` to the response's To header unless it already has a
/// tag.
pub fn with_to_tag(resp: &mut Response, tag: &str) {
    for header in resp.headers.iter_mut() {
        if let Header::To(to) = header {
            if !has_tag(to.value()) {
                let v = format!("{};tag={tag}", to.value());
                to.replace(v);
            }
            return;
        }
    }
}

/// Whether a To/From value carries a `tag` parameter (crude fallback for
/// values that do not parse).
fn has_tag(value: &str) -> bool {
    match NameAddr::parse_tag(value) {
        Ok(tag) => tag.is_some(),
        Err(_) => {
            let after = value.rfind('>').map_or(value, |i| &value[i..]);
            after
                .to_ascii_lowercase()
                .replace([' ', '\t'], "")
                .contains(";tag=")
        }
    }
}

/// A new tag: 64 random bits in hex (§19.3 asks for at least 32).
pub fn new_tag() -> String {
    format!("{:016x}", rand::thread_rng().gen::<u64>())
}

/// A new RFC 3261 branch: the magic cookie `z9hG4bK` plus 96 random bits.
pub fn new_branch() -> String {
    let mut rng = rand::thread_rng();
    format!("z9hG4bK{:016x}{:08x}", rng.gen::<u64>(), rng.gen::<u32>())
}

/// A new Call-ID: 128 random bits in hex, `@host` when a host is given.
pub fn new_call_id(host: &str) -> String {
    let id = format!("{:032x}", rand::thread_rng().gen::<u128>());
    if host.is_empty() {
        id
    } else {
        format!("{id}@{host}")
    }
}

/// The RFC 3261 §21 reason phrase for a status code (a generic one for
/// codes the RFCs do not name).
pub fn reason_phrase(code: u16) -> &'static str {
    known_phrase(code).unwrap_or(match code / 100 {
        1 => "Provisional",
        2 => "Success",
        3 => "Redirection",
        4 => "Client Error",
        5 => "Server Error",
        _ => "Global Failure",
    })
}

fn known_phrase(code: u16) -> Option<&'static str> {
    Some(match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        199 => "Early Dialog Terminated",
        200 => "OK",
        202 => "Accepted",
        204 => "No Notification",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        305 => "Use Proxy",
        380 => "Alternative Service",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        412 => "Conditional Request Failed",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        417 => "Unknown Resource-Priority",
        420 => "Bad Extension",
        421 => "Extension Required",
        422 => "Session Interval Too Small",
        423 => "Interval Too Brief",
        428 => "Use Identity Header",
        429 => "Provide Referrer Identity",
        433 => "Anonymity Disallowed",
        436 => "Bad Identity-Info",
        437 => "Unsupported Certificate",
        438 => "Invalid Identity Header",
        439 => "First Hop Lacks Outbound Support",
        440 => "Max-Breadth Exceeded",
        469 => "Bad Info Package",
        470 => "Consent Needed",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        485 => "Ambiguous",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        489 => "Bad Event",
        491 => "Request Pending",
        493 => "Undecipherable",
        494 => "Security Agreement Required",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        580 => "Precondition Failure",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        607 => "Unwanted",
        _ => return None,
    })
}

/// A reason phrase without CR, LF or other control characters.
pub(crate) fn sanitize(reason: &str) -> String {
    reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

/// Builds `SIP/2.0 <status> <reason>` for a request that could not be
/// parsed, from its raw (unfolded, compact-expanded) header lines: all Via
/// in order, the first From, To (tagged), Call-ID and CSeq, and
/// `Content-Length: 0`. `None` when any of those is missing.
pub fn reject_bytes(raw: &[RawHeader<'_>], status: u16, reason: &str) -> Option<Vec<u8>> {
    let first = |n: &str| {
        raw.iter()
            .find(|h| h.name.eq_ignore_ascii_case(n))
            .map(|h| clean(&h.value))
    };
    let vias: Vec<Vec<u8>> = raw
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("Via"))
        .map(|h| clean(&h.value))
        .collect();
    if vias.is_empty() {
        return None;
    }
    let (from, mut to, call_id, cseq) = (
        first("From")?,
        first("To")?,
        first("Call-ID")?,
        first("CSeq")?,
    );
    if !has_tag(&String::from_utf8_lossy(&to)) {
        let tag = stateless_tag(&[&vias[0], &from, &call_id, &cseq]);
        to.extend_from_slice(format!(";tag={tag}").as_bytes());
    }
    let mut out = Vec::with_capacity(256);
    let mut line = String::new();
    let mut reason = sanitize(reason);
    if let Some((cut, _)) = reason.char_indices().nth(160) {
        reason.truncate(cut);
    }
    let _ = write!(line, "SIP/2.0 {status} {reason}\r\n");
    out.extend_from_slice(line.as_bytes());
    let mut put = |name: &str, value: &[u8]| {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    };
    for v in &vias {
        put("Via", v);
    }
    put("From", &from);
    put("To", &to);
    put("Call-ID", &call_id);
    put("CSeq", &cseq);
    put("Content-Length", b"0");
    out.extend_from_slice(b"\r\n");
    Some(out)
}

/// The To tag of a stateless response: RFC 3261 §8.2.7 wants the same tag
/// for every retransmission of a request, so it is a keyed hash of the
/// request's identity (the key is random per process, so tags stay
/// unpredictable).
fn stateless_tag(identity: &[&[u8]]) -> String {
    use std::hash::{Hash, Hasher};
    static KEY: OnceLock<u64> = OnceLock::new();
    let key = *KEY.get_or_init(|| rand::thread_rng().gen());
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut hasher);
    identity.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// A raw value with any stray CR/LF turned into spaces.
fn clean(v: &[u8]) -> Vec<u8> {
    v.iter()
        .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn raw<'a>(pairs: &[(&'a str, &'a str)]) -> Vec<RawHeader<'a>> {
        pairs
            .iter()
            .map(|(n, v)| RawHeader {
                name: n,
                value: Cow::Borrowed(v.as_bytes()),
            })
            .collect()
    }

    #[test]
    fn dialog_creating_responses_carry_the_record_route() {
        let raw = "INVITE sip:5001@dialtone SIP/2.0\r\n\
            Via: SIP/2.0/UDP 127.0.0.4:5060;branch=z9hG4bKk\r\n\
            Record-Route: <sip:127.0.0.4:5060;lr=on;ftag=1>\r\n\
            Record-Route: <sip:edge.example.net;lr>\r\n\
            From: <sip:a@x>;tag=1\r\nTo: <sip:5001@dialtone>\r\nCall-ID: c\r\n\
            CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
        let req = Request::try_from(raw).unwrap_or_else(|e| panic!("{e}"));
        let rr = |r: &Response| {
            r.headers
                .iter()
                .filter_map(|h| match h {
                    Header::RecordRoute(v) => Some(v.value().to_string()),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        for status in [180, 183, 200] {
            assert_eq!(
                rr(&response_to(&req, status, None)),
                [
                    "<sip:127.0.0.4:5060;lr=on;ftag=1>",
                    "<sip:edge.example.net;lr>"
                ],
                "{status}"
            );
        }
        for status in [100, 486, 503] {
            assert!(rr(&response_to(&req, status, None)).is_empty(), "{status}");
        }
    }

    #[test]
    fn reject_copies_headers_and_tags_to() {
        let r = raw(&[
            ("Via", "SIP/2.0/UDP a;branch=z9hG4bK1"),
            ("To", "Watson, Thomas <sip:t@example.org>"),
            ("From", "sip:c@example.net;tag=1"),
            ("Via", "SIP/2.0/UDP b;branch=z9hG4bK2"),
            ("Call-ID", "abc"),
            ("CSeq", "8 INVITE"),
        ]);
        let out = String::from_utf8(reject_bytes(&r, 400, "Bad\r\nThing").unwrap()).unwrap();
        assert!(out.starts_with("SIP/2.0 400 Bad  Thing\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nVia: SIP/2.0/UDP b;branch=z9hG4bK2\r\n"));
        assert!(out.contains("\r\nTo: Watson, Thomas <sip:t@example.org>;tag="));
        assert!(out.ends_with("\r\nCall-ID: abc\r\nCSeq: 8 INVITE\r\nContent-Length: 0\r\n\r\n"));
        let tagged = raw(&[
            ("Via", "v"),
            ("To", "<sip:t@x>;tag=9"),
            ("From", "f"),
            ("Call-ID", "c"),
            ("CSeq", "1 BYE"),
        ]);
        let out = String::from_utf8(reject_bytes(&tagged, 400, "x").unwrap()).unwrap();
        assert!(out.contains("To: <sip:t@x>;tag=9\r\n"));
        // Stateless: a retransmission gets the same To tag (RFC 3261 §8.2.7).
        let tag = |r: &[RawHeader<'_>]| {
            let out = String::from_utf8(reject_bytes(r, 400, "x").unwrap()).unwrap();
            out.split("\r\n")
                .find(|l| l.starts_with("To: "))
                .unwrap()
                .to_string()
        };
        assert_eq!(tag(&r), tag(&r));
        let mut other = r.clone();
        other[4].value = Cow::Borrowed(b"abd");
        assert_ne!(tag(&r), tag(&other));
        let missing = raw(&[("Via", "v"), ("CSeq", "1 INVITE")]);
        assert!(reject_bytes(&missing, 400, "x").is_none());
    }

    fn request() -> Request {
        let msg = b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nVia: SIP/2.0/UDP b;branch=z9hG4bK2\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\nCall-ID: x@y\r\nCSeq: 1 INVITE\r\nTimestamp: 54\r\nContent-Length: 0\r\n\r\n";
        match crate::message::parse(msg) {
            Ok(rsip::SipMessage::Request(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn response_to_copies_the_right_headers() {
        let req = request();
        let mut resp = response_to(&req, 180, None);
        assert_eq!(resp.status_code, StatusCode::Ringing);
        let names: Vec<_> = resp
            .headers
            .iter()
            .map(|h| crate::message::header_name_value(h).0)
            .collect();
        assert_eq!(
            names,
            [
                "Via",
                "Via",
                "From",
                "To",
                "Call-ID",
                "CSeq",
                "Content-Length"
            ]
        );
        with_to_tag(&mut resp, "abc");
        with_to_tag(&mut resp, "def");
        let to = resp.headers.iter().find_map(|h| match h {
            Header::To(t) => Some(t.value().to_string()),
            _ => None,
        });
        assert_eq!(to.as_deref(), Some("<sip:bob@example.com>;tag=abc"));
        let trying = response_to(&req, 100, None);
        assert!(trying
            .headers
            .iter()
            .any(|h| matches!(h, Header::Timestamp(_))));
        let custom = response_to(&req, 486, Some("Busy Here"));
        assert_eq!(custom.status_code, StatusCode::BusyHere);
        let custom = response_to(&req, 486, Some("On the phone"));
        assert_eq!(
            custom.status_code,
            StatusCode::Other(486, "On the phone".into())
        );
    }

    #[test]
    fn identifiers() {
        assert!(new_branch().starts_with("z9hG4bK"));
        assert_eq!(new_branch().len(), 7 + 24);
        assert_ne!(new_tag(), new_tag());
        assert!(new_call_id("example.com").ends_with("@example.com"));
        assert!(!new_call_id("").contains('@'));
    }
}

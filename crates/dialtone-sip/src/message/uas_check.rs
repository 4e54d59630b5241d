//! The checks a UAS (dialtone's B2BUA legs) applies to a request that
//! parsed, before acting on it (RFC 3261 §8.2, the application verdicts of
//! RFC 4475 §3.3): single-value headers appearing more than once or badly
//! formed (400), an unsupported Request-URI scheme (416), a REGISTER whose
//! To is not a SIP/SIPS AOR (400), unknown Require option-tags (420 with
//! Unsupported), a body of an unsupported type or encoding (415 with Accept
//! or Accept-Encoding) and an INVITE whose Accept rules out SDP (406).
//! Max-Forwards 0 is not an error for a UAS: the request is processed.

use rsip::headers::{self as h, UntypedHeader};
use rsip::{Header, Method, Request, Response};

use super::grammar::squeeze;
use super::headers::NameAddr;
use super::names::name_value;
use super::reply::response_to;
use super::uri::scheme_name;

/// What this UAS supports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UasPolicy {
    /// Option-tags accepted in Require.
    pub supported_extensions: Vec<String>,
    /// Request-URI schemes served (lower case).
    pub supported_schemes: Vec<String>,
    /// Body types understood (`type/subtype`).
    pub accepted_content_types: Vec<String>,
}

impl Default for UasPolicy {
    fn default() -> Self {
        let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect();
        Self {
            supported_extensions: v(&["timer", "replaces", "100rel", "path", "outbound"]),
            supported_schemes: v(&["sip", "sips", "tel"]),
            accepted_content_types: v(&[
                "application/sdp",
                "message/sipfrag",
                "application/dtmf-relay",
            ]),
        }
    }
}

/// Why a request is refused, and the extra headers the response carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    pub reason: String,
    /// E.g. Unsupported for 420, Accept for 415, Accept-Encoding, Warning.
    pub headers: Vec<Header>,
}

impl Rejection {
    fn new(status: u16, reason: impl Into<String>) -> Self {
        Self {
            status,
            reason: reason.into(),
            headers: Vec::new(),
        }
    }

    fn with(mut self, header: Header) -> Self {
        self.headers.push(header);
        self
    }

    /// The response to send: [`response_to`] plus this rejection's headers
    /// (before Content-Length). The caller still adds the To tag.
    pub fn response(&self, req: &Request) -> Response {
        let mut resp = response_to(req, self.status, Some(&self.reason));
        let mut headers: Vec<Header> = resp.headers.into_iter().collect();
        let at = headers.len().saturating_sub(1);
        for (i, h) in self.headers.iter().enumerate() {
            headers.insert(at + i, h.clone());
        }
        resp.headers = headers.into();
        resp
    }
}

/// Checks `req` against `policy`. ACK is never refused (it gets no response).
pub fn uas_check(req: &Request, policy: &UasPolicy) -> Result<(), Rejection> {
    if req.method == Method::Ack {
        return Ok(());
    }
    let values = |name: &'static str| {
        req.headers
            .iter()
            .map(name_value)
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    };
    // Single-value headers: at most once, and present where mandatory.
    for (name, mandatory) in [
        ("From", true),
        ("To", true),
        ("Call-ID", true),
        ("CSeq", true),
        ("Max-Forwards", false),
        ("Content-Length", false),
        ("Content-Type", false),
    ] {
        match values(name).count() {
            0 if mandatory => return Err(Rejection::new(400, format!("Missing {name} header"))),
            0 | 1 => {}
            _ => {
                return Err(Rejection::new(
                    400,
                    format!("Multiple {name} header fields"),
                ))
            }
        }
    }
    if values("Via").next().is_none() {
        return Err(Rejection::new(400, "Missing Via header"));
    }
    for name in ["From", "To", "Contact"] {
        for v in values(name) {
            if !(name == "Contact" && v.trim() == "*") && NameAddr::check(v).is_err() {
                return Err(Rejection::new(400, format!("Bad {name} header")));
            }
        }
    }
    // RFC 3261 §8.2.2.1.
    let scheme = scheme_name(&req.uri);
    if !policy
        .supported_schemes
        .iter()
        .any(|s| s.eq_ignore_ascii_case(&scheme))
    {
        return Err(Rejection::new(416, "Unsupported URI Scheme"));
    }
    // RFC 3261 §10.3 step 3 / RFC 4475 §3.3.4: the AOR must be SIP or SIPS.
    if req.method == Method::Register {
        let aor = values("To").next().and_then(|v| NameAddr::parse(v).ok());
        if !aor.is_some_and(|n| matches!(scheme_name(&n.uri).as_str(), "sip" | "sips")) {
            return Err(Rejection::new(400, "To must be a SIP or SIPS URI"));
        }
    }
    // RFC 3261 §8.2.2.3 (Require is ignored on CANCEL).
    if req.method != Method::Cancel {
        let unknown: Vec<&str> = values("Require")
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .filter(|t| {
                !policy
                    .supported_extensions
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(t))
            })
            .collect();
        if !unknown.is_empty() {
            return Err(Rejection::new(420, "Bad Extension")
                .with(Header::Unsupported(h::Unsupported::new(unknown.join(", ")))));
        }
    }
    // RFC 3261 §8.2.3.
    if !req.body.is_empty() {
        check_body(
            &mut values("Content-Type"),
            &mut values("Content-Encoding"),
            policy,
        )?;
    }
    // RFC 4475 §3.3.15: an INVITE must let us answer with SDP.
    if req.method == Method::Invite {
        let mut accepts = values("Accept").peekable();
        if accepts.peek().is_some() && !accepts.any(accepts_sdp) {
            return Err(Rejection::new(406, "Not Acceptable").with(Header::Warning(
                h::Warning::new("399 dialtone \"Responses can only carry application/sdp\""),
            )));
        }
    }
    Ok(())
}

fn check_body<'a>(
    content_type: &mut dyn Iterator<Item = &'a str>,
    encodings: &mut dyn Iterator<Item = &'a str>,
    policy: &UasPolicy,
) -> Result<(), Rejection> {
    let Some(ct) = content_type.next() else {
        return Err(Rejection::new(400, "Missing Content-Type"));
    };
    let ct = media_range(ct);
    let known = policy
        .accepted_content_types
        .iter()
        .any(|a| media_range(a) == ct);
    if !known {
        let accept = policy.accepted_content_types.join(", ");
        return Err(Rejection::new(415, "Unsupported Media Type")
            .with(Header::Accept(h::Accept::new(accept))));
    }
    let bad_encoding = encodings
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|e| !e.is_empty() && !e.eq_ignore_ascii_case("identity"));
    if bad_encoding {
        return Err(Rejection::new(415, "Unsupported Media Type")
            .with(Header::AcceptEncoding(h::AcceptEncoding::new("identity"))));
    }
    Ok(())
}

/// `type/subtype` of a media type or range, lower case, parameters dropped.
fn media_range(v: &str) -> String {
    let s = squeeze(v);
    s.split(';').next().unwrap_or("").to_ascii_lowercase()
}

/// Whether an Accept value admits application/sdp.
fn accepts_sdp(v: &str) -> bool {
    v.split(',')
        .map(media_range)
        .any(|r| matches!(r.as_str(), "application/sdp" | "application/*" | "*/*"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn req(extra: &str, body: &str) -> Request {
        let msg = format!(
            "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:bob@example.com>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        match crate::message::parse(msg.as_bytes()) {
            Ok(rsip::SipMessage::Request(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    fn check(r: &Request) -> Result<(), u16> {
        uas_check(r, &UasPolicy::default()).map_err(|e| e.status)
    }

    #[test]
    fn verdicts() {
        assert_eq!(check(&req("", "")), Ok(()));
        assert_eq!(
            check(&req("Content-Type: application/sdp\r\n", "v=0\r\n")),
            Ok(())
        );
        assert_eq!(check(&req("Require: timer, 100rel\r\n", "")), Ok(()));
        assert_eq!(check(&req("Require: foo\r\n", "")), Err(420));
        assert_eq!(check(&req("Content-Type: text/plain\r\n", "hi")), Err(415));
        assert_eq!(check(&req("", "hi")), Err(400));
        assert_eq!(
            check(&req(
                "Content-Type: application/sdp\r\nContent-Encoding: gzip\r\n",
                "x"
            )),
            Err(415)
        );
        assert_eq!(check(&req("Accept: text/plain\r\n", "")), Err(406));
        assert_eq!(check(&req("Accept: application/*\r\n", "")), Ok(()));
        assert_eq!(check(&req("Max-Forwards: 0\r\n", "")), Ok(()));
        assert_eq!(check(&req("CSeq: 2 INVITE\r\n", "")), Err(400));
    }

    #[test]
    fn rejection_response_carries_headers() {
        let r = req("Require: foo, bar\r\n", "");
        let rej = uas_check(&r, &UasPolicy::default()).unwrap_err();
        assert_eq!(
            rej.headers,
            vec![Header::Unsupported(h::Unsupported::new("foo, bar"))]
        );
        let resp = rej.response(&r);
        assert_eq!(resp.status_code.code(), 420);
        let names: Vec<_> = resp.headers.iter().map(|h| name_value(h).0).collect();
        assert_eq!(names[names.len() - 2..], ["Unsupported", "Content-Length"]);
    }
}

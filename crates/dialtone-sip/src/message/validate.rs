//! The protocol checks rsip does not do, applied by [`super::parse`]: start
//! lines (version → 505, whitespace or `<>` in the Request-URI → 400, status
//! codes outside 100..=699), and every header dialtone interprets — Via,
//! From, To, Contact, CSeq, Call-ID, Content-Length, Content-Type, Expires,
//! Max-Forwards — must parse (RFC 3261 §25 grammar, liberal about LWS) or
//! the request gets a 400 naming the header. Valid values are stored in a
//! canonical form (insignificant LWS removed, Via and Contact lists split
//! into one header each) so that rsip's typed views can read them.

use rsip::headers::{self as h, UntypedHeader};
use rsip::{Header, Method, StatusCode, Uri};

use super::grammar::{
    check_params, has_ws_or_ctl, is_token, is_token_byte, is_wsp, pos, split_at_byte,
    split_top_level, squeeze,
};
use super::headers::NameAddr;
use super::names::other_header;
use super::uri::{check_hostport, split_uri};

/// A failed check: the status to answer with (requests) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fail {
    pub status: u16,
    pub reason: String,
}

impl Fail {
    pub fn new(status: u16, reason: impl Into<String>) -> Self {
        Self {
            status,
            reason: reason.into(),
        }
    }

    pub fn bad(reason: impl Into<String>) -> Self {
        Self::new(400, reason)
    }
}

/// What a request line says. The method is kept as text because rsip's
/// `Method` has no variant for extension methods.
pub(crate) struct RequestLine<'a> {
    pub method: &'a str,
    pub uri: Uri,
}

/// Parses a request line, tolerating extra SP/HTAB between and after the
/// elements (RFC 4475 §3.1.2.9-10). `Err` with status 0 means "not SIP".
pub(crate) fn request_line(line: &[u8]) -> Result<RequestLine<'_>, Fail> {
    let parts: Vec<&[u8]> = line
        .split(|&b| is_wsp(b))
        .filter(|p| !p.is_empty())
        .collect();
    let Some(version) = parts.last().filter(|_| parts.len() >= 2) else {
        return Err(Fail::new(0, "not a SIP request line"));
    };
    if !starts_with_ignore_case(version, b"SIP/") {
        return Err(Fail::new(0, "not a SIP request line"));
    }
    check_version(version)?;
    if parts.len() == 2 {
        return Err(Fail::bad("Missing Request-URI"));
    }
    if parts.len() > 3 {
        return Err(Fail::bad("Whitespace in Request-URI"));
    }
    let method = std::str::from_utf8(parts[0])
        .ok()
        .filter(|m| is_token(m))
        .ok_or_else(|| Fail::bad("Malformed method"))?;
    let uri = std::str::from_utf8(parts[1]).map_err(|_| Fail::bad("Bad Request-URI"))?;
    if uri.starts_with('<') {
        return Err(Fail::bad("Request-URI enclosed in <>"));
    }
    let parts = split_uri(uri).map_err(|e| Fail::bad(format!("Bad Request-URI: {e}")))?;
    if parts.has_headers() {
        return Err(Fail::bad("Escaped headers in Request-URI"));
    }
    Ok(RequestLine {
        method,
        uri: parts.build().uri,
    })
}

fn starts_with_ignore_case(b: &[u8], prefix: &[u8]) -> bool {
    b.len() >= prefix.len() && b[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// `SIP/2.0` (the "SIP" is case-insensitive); other well-formed versions
/// get 505.
fn check_version(v: &[u8]) -> Result<(), Fail> {
    let num = &v[4..];
    let well_formed = num
        .split(|&b| b == b'.')
        .map(|p| !p.is_empty() && p.iter().all(u8::is_ascii_digit))
        .collect::<Vec<_>>();
    if well_formed.len() != 2 || well_formed.contains(&false) {
        return Err(Fail::bad("Malformed SIP version"));
    }
    if num != b"2.0" {
        return Err(Fail::new(505, "Version Not Supported"));
    }
    Ok(())
}

/// The rsip method for an exactly-spelled (upper-case) known method.
pub(crate) fn known_method(m: &str) -> Option<Method> {
    Some(match m {
        "ACK" => Method::Ack,
        "BYE" => Method::Bye,
        "CANCEL" => Method::Cancel,
        "INFO" => Method::Info,
        "INVITE" => Method::Invite,
        "MESSAGE" => Method::Message,
        "NOTIFY" => Method::Notify,
        "OPTIONS" => Method::Options,
        "PRACK" => Method::PRack,
        "PUBLISH" => Method::Publish,
        "REFER" => Method::Refer,
        "REGISTER" => Method::Register,
        "SUBSCRIBE" => Method::Subscribe,
        "UPDATE" => Method::Update,
        _ => return None,
    })
}

/// Parses a status line: `SIP/2.0 SP 3DIGIT [SP Reason-Phrase]`.
pub(crate) fn status_line(line: &[u8]) -> Result<StatusCode, String> {
    if line.len() < 8 || !line[..8].eq_ignore_ascii_case(b"SIP/2.0 ") {
        return Err("not a SIP/2.0 status line".into());
    }
    let rest = &line[8..];
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits != 3 || rest.get(3).is_some_and(|&b| !is_wsp(b)) {
        return Err("status code is not three digits".into());
    }
    let code = rest[..3]
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    if !(100..=699).contains(&code) {
        return Err(format!("status code {code} out of range"));
    }
    let reason = String::from_utf8_lossy(rest.get(4..).unwrap_or(&[]))
        .trim()
        .to_string();
    Ok(match StatusCode::from(code) {
        StatusCode::Other(code, _) => StatusCode::Other(code, reason),
        known => known,
    })
}

/// Headers dialtone interprets, which must parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Via,
    From,
    To,
    Contact,
    CSeq,
    CallId,
    ContentLength,
    ContentType,
    Expires,
    MaxForwards,
}

fn kind(name: &str) -> Option<Kind> {
    const KINDS: [(&str, Kind); 10] = [
        ("Via", Kind::Via),
        ("From", Kind::From),
        ("To", Kind::To),
        ("Contact", Kind::Contact),
        ("CSeq", Kind::CSeq),
        ("Call-ID", Kind::CallId),
        ("Content-Length", Kind::ContentLength),
        ("Content-Type", Kind::ContentType),
        ("Expires", Kind::Expires),
        ("Max-Forwards", Kind::MaxForwards),
    ];
    KINDS
        .iter()
        .find(|(n, _)| n.len() == name.len() && n.eq_ignore_ascii_case(name))
        .map(|&(_, k)| k)
}

/// Validates one logical header and appends its rsip form(s) to `out`.
pub(crate) fn push_header(out: &mut Vec<Header>, name: &str, value: &[u8]) -> Result<(), Fail> {
    let Some(kind) = kind(name) else {
        let value = String::from_utf8_lossy(value).into_owned();
        out.push(other_header(name, value));
        return Ok(());
    };
    let bad = |detail: String| Fail::bad(format!("Bad {name} header: {detail}"));
    let value = std::str::from_utf8(value).map_err(|_| bad("not UTF-8".into()))?;
    match kind {
        Kind::Via => {
            for via in via_list(value).map_err(bad)? {
                out.push(Header::Via(h::Via::new(via)));
            }
        }
        Kind::Contact => {
            let s = squeeze(value);
            if s == "*" {
                out.push(Header::Contact(h::Contact::new("*")));
            } else {
                for c in split_top_level(&s, b',') {
                    NameAddr::check_squeezed(c).map_err(bad)?;
                    out.push(Header::Contact(h::Contact::new(c)));
                }
            }
        }
        Kind::From | Kind::To => {
            let s = squeeze(value);
            NameAddr::check_squeezed(&s).map_err(bad)?;
            let s = s.into_owned();
            out.push(match kind {
                Kind::From => Header::From(h::From::new(s)),
                _ => Header::To(h::To::new(s)),
            });
        }
        Kind::CSeq => {
            let s = squeeze(value);
            cseq_parts(&s).map_err(bad)?;
            out.push(Header::CSeq(h::CSeq::new(s.into_owned())));
        }
        Kind::CallId => {
            if value.is_empty() || has_ws_or_ctl(value) {
                return Err(bad("empty or contains whitespace".into()));
            }
            out.push(Header::CallId(h::CallId::new(value)));
        }
        Kind::ContentLength => {
            super::framing::parse_length(value.as_bytes()).map_err(bad)?;
            out.push(Header::ContentLength(h::ContentLength::new(value)));
        }
        Kind::ContentType => {
            let s = squeeze(value);
            media_type(&s).map_err(bad)?;
            out.push(Header::ContentType(h::ContentType::new(s.into_owned())));
        }
        Kind::Expires => {
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("not delta-seconds".into()));
            }
            // RFC 3261 §20.19 caps the value at 2^32-1; larger is read as that.
            let v = match value.parse::<u32>() {
                Ok(_) => value.to_string(),
                Err(_) => u32::MAX.to_string(),
            };
            out.push(Header::Expires(h::Expires::new(v)));
        }
        Kind::MaxForwards => {
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("not a number".into()));
            }
            value
                .parse::<u32>()
                .map_err(|_| bad("out of range".into()))?;
            out.push(Header::MaxForwards(h::MaxForwards::new(value)));
        }
    }
    Ok(())
}

/// Splits and checks a Via value: `sent-protocol LWS sent-by *(SEMI
/// via-params)`, comma-separated.
fn via_list(value: &str) -> Result<Vec<String>, String> {
    let s = squeeze(value);
    let mut out = Vec::with_capacity(1);
    for via in split_top_level(&s, b',') {
        let (protocol, rest) = split_at_byte(via, b' ').ok_or("missing sent-by")?;
        let mut fields = protocol.split('/');
        let ok = (0..3).all(|_| fields.next().is_some_and(is_token)) && fields.next().is_none();
        if !ok {
            return Err(format!("bad sent-protocol {protocol:?}"));
        }
        let (sent_by, params) = match pos(rest, b';') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        check_hostport(sent_by)?;
        check_params(params)?;
        out.push(via.to_string());
    }
    Ok(out)
}

/// `1*DIGIT SP Method` with the number within 0..=2^32-1.
pub(crate) fn cseq_parts(s: &str) -> Result<(u32, &str), String> {
    let (num, method) = split_at_byte(s, b' ').ok_or("expected number and method")?;
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("sequence number {num:?} is not a number"));
    }
    let n = num
        .parse::<u32>()
        .map_err(|_| "sequence number exceeds 2^32-1".to_string())?;
    if !is_token(method) {
        return Err(format!("bad method {method:?}"));
    }
    Ok((n, method))
}

/// `type "/" subtype *(SEMI m-parameter)`.
fn media_type(s: &str) -> Result<(), String> {
    let (ty, rest) = split_at_byte(s, b'/').ok_or("missing '/'")?;
    let end = rest
        .bytes()
        .position(|b| !is_token_byte(b))
        .unwrap_or(rest.len());
    if !is_token(ty) || end == 0 {
        return Err(format!("bad media type {s:?}"));
    }
    check_params(&rest[end..])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::message::names::name_value;

    fn push(name: &str, value: &str) -> Result<Vec<Header>, Fail> {
        let mut out = Vec::new();
        push_header(&mut out, name, value.as_bytes()).map(|_| out)
    }

    #[test]
    fn request_lines() {
        let rl = request_line(b"INVITE  sip:user@example.com  SIP/2.0  ")
            .map_err(|f| f.reason)
            .unwrap();
        assert_eq!(rl.method, "INVITE");
        assert_eq!(
            request_line(b"OPTIONS sip:a SIP/7.0")
                .err()
                .map(|f| f.status),
            Some(505)
        );
        assert_eq!(
            request_line(b"INVITE sip:a; lr SIP/2.0")
                .err()
                .map(|f| f.status),
            Some(400)
        );
        assert_eq!(
            request_line(b"INVITE <sip:a> SIP/2.0")
                .err()
                .map(|f| f.status),
            Some(400)
        );
        assert_eq!(
            request_line(b"INVITE sip:a?Route=x SIP/2.0")
                .err()
                .map(|f| f.status),
            Some(400)
        );
        assert_eq!(
            request_line(b"GET / HTTP/1.1").err().map(|f| f.status),
            Some(0)
        );
        assert_eq!(
            request_line(b"INVITE sip:a SIP/2.x")
                .err()
                .map(|f| f.status),
            Some(400)
        );
        assert_eq!(
            request_line(b"INVITE SIP/2.0").err().map(|f| f.status),
            Some(400)
        );
    }

    #[test]
    fn status_lines() {
        assert_eq!(status_line(b"SIP/2.0 200 OK"), Ok(StatusCode::OK));
        assert_eq!(status_line(b"SIP/2.0 100 "), Ok(StatusCode::Trying));
        assert_eq!(status_line(b"SIP/2.0 100"), Ok(StatusCode::Trying));
        assert_eq!(
            status_line(b"SIP/2.0 299 Fine"),
            Ok(StatusCode::Other(299, "Fine".into()))
        );
        assert!(status_line(b"SIP/2.0 4294967301 x").is_err());
        assert!(status_line(b"SIP/2.0 099 x").is_err());
        assert!(status_line(b"SIP/2.0 700 x").is_err());
        assert!(status_line(b"SIP/3.0 200 OK").is_err());
    }

    #[test]
    fn methods() {
        assert_eq!(known_method("INVITE"), Some(Method::Invite));
        assert_eq!(known_method("PRACK"), Some(Method::PRack));
        assert_eq!(known_method("invite"), None);
        assert_eq!(known_method("NEWMETHOD"), None);
    }

    #[test]
    fn interpreted_headers() {
        let v = push("Via", "SIP  / 2.0  / TCP spindle.example.com ;\tbranch = z9 , SIP/2.0/UDP [::1]:5060;received=[::2]").unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(
            name_value(&v[0]),
            ("Via", "SIP/2.0/TCP spindle.example.com;branch=z9")
        );
        assert!(push("Via", "SIP/2.0/UDP 192.0.2.15;;,;,,").is_err());
        assert!(push("Via", "SIP/2.0/UDP").is_err());
        let c = push("Contact", "<sip:a@b>;q=0.5, \"x,y\" <sip:c@d>").unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(push("Contact", " * ").unwrap().len(), 1);
        assert!(push("Contact", "\"Joe\" <sip:joe@example.org>;;;;").is_err());
        assert!(push(
            "Contact",
            "sip:user@example.com?Route=%3Csip:sip.example.com%3E"
        )
        .is_err());
        assert!(push("To", "\"Mr. J. User <sip:j.user@example.com>").is_err());
        assert!(push("From", "Bell, Alexander <sip:a.g.bell@example.com>;tag=43").is_err());
        assert!(push("CSeq", "36893488147419103232 REGISTER").is_err());
        assert_eq!(
            name_value(&push("CSeq", "0009   INVITE").unwrap()[0]).1,
            "0009 INVITE"
        );
        assert!(push("Call-ID", "a b").is_err());
        assert!(push("Content-Length", "-999").is_err());
        assert!(push("Max-Forwards", "x").is_err());
        assert!(push("Max-Forwards", "99999999999").is_err());
        assert_eq!(
            name_value(&push("Expires", "100000000000000").unwrap()[0]).1,
            "4294967295"
        );
        assert!(push("Expires", "soon").is_err());
        assert_eq!(
            name_value(&push("Content-Type", "multipart/mixed ; boundary = x").unwrap()[0]).1,
            "multipart/mixed;boundary=x"
        );
        assert!(push("Content-Type", "sdp").is_err());
    }

    #[test]
    fn other_headers_map_to_rsip_variants() {
        assert!(matches!(
            push("require", "100rel").unwrap()[0],
            Header::Require(_)
        ));
        assert!(matches!(
            push("X-Long-Header-Name-Beyond-Buffer", "v").unwrap()[0],
            Header::Other(..)
        ));
        assert_eq!(
            name_value(&push("Refer-To", "<sip:a@b>").unwrap()[0]),
            ("Refer-To", "<sip:a@b>")
        );
    }
}

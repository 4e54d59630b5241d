//! URI parsing into `rsip::Uri` and URI formatting back to text.
//!
//! rsip 0.4's own URI tokenizer mis-splits users containing `.`, cannot read
//! IPv6 references and prints non-SIP schemes as `scheme://`, so dialtone
//! parses URIs itself (RFC 3261 §19.1, liberal about user and parameter
//! characters) and formats them with [`format_uri`] when serializing.
//!
//! Representation: for `sip:`/`sips:` the usual fields are filled (user and
//! password stay %-escaped, as on the wire; IPv6 hosts are `Host::IpAddr`).
//! Any other scheme is opaque: `scheme = Some(Scheme::Other(name))` and the
//! whole remainder after `name:` sits verbatim in `host_with_port.host` as a
//! `Host::Domain`. URI headers (`?h=v`) have no place in `rsip::Uri`; the
//! parser returns them separately and callers decide (the Request-URI
//! rejects them, name-addr headers keep them).

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv6Addr};

use rsip::{Auth, Domain, Host, HostWithPort, Param, Port, Scheme, Uri};

use super::grammar::pos;

/// A parsed URI: the rsip form plus the raw `?headers` part, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedUri {
    pub uri: Uri,
    /// The `hname=hvalue&...` part after `?`, still escaped.
    pub headers: Option<String>,
}

/// Parses an absolute URI. SIP and SIPS URIs are parsed in full; other
/// schemes only need a valid scheme name and a non-empty remainder.
pub fn parse_uri(s: &str) -> Result<ParsedUri, String> {
    Ok(split_uri(s)?.build())
}

/// A URI split into its parts, borrowing the text.
pub(crate) struct UriParts<'a> {
    scheme: UriScheme<'a>,
    user: Option<(&'a str, Option<&'a str>)>,
    host: Host0<'a>,
    port: Option<u16>,
    /// `;name[=value]...` as written (already checked).
    params: &'a str,
    headers: Option<&'a str>,
}

enum UriScheme<'a> {
    Sip,
    Sips,
    /// Scheme name and the opaque rest.
    Other(&'a str, &'a str),
}

enum Host0<'a> {
    Ip(IpAddr),
    Name(&'a str),
}

impl UriParts<'_> {
    pub(crate) fn has_headers(&self) -> bool {
        self.headers.is_some()
    }

    pub(crate) fn build(self) -> ParsedUri {
        let scheme = match self.scheme {
            UriScheme::Sip => Scheme::Sip,
            UriScheme::Sips => Scheme::Sips,
            UriScheme::Other(name, rest) => {
                return ParsedUri {
                    uri: Uri {
                        scheme: Some(Scheme::Other(name.to_string())),
                        host_with_port: HostWithPort::from(Host::Domain(Domain::from(
                            rest.to_string(),
                        ))),
                        ..Default::default()
                    },
                    headers: None,
                }
            }
        };
        let host = match self.host {
            Host0::Ip(ip) => Host::IpAddr(ip),
            Host0::Name(n) => Host::Domain(Domain::from(n.to_string())),
        };
        ParsedUri {
            uri: Uri {
                scheme: Some(scheme),
                auth: self.user.map(|(user, password)| Auth {
                    user: user.to_string(),
                    password: password.map(str::to_string),
                }),
                host_with_port: HostWithPort {
                    host,
                    port: self.port.map(Port::from),
                },
                params: uri_params(self.params)
                    .map(|(n, v)| make_param(n, v))
                    .collect(),
                headers: Vec::new(),
            },
            headers: self.headers.map(str::to_string),
        }
    }
}

/// Splits and checks a URI.
pub(crate) fn split_uri(s: &str) -> Result<UriParts<'_>, String> {
    if s.is_empty() {
        return Err("empty URI".into());
    }
    if s.bytes()
        .any(|b| b <= b' ' || matches!(b, 0x7f | b'<' | b'>' | b'"'))
    {
        return Err(format!("whitespace or illegal character in URI {s:?}"));
    }
    let colon = pos(s, b':').ok_or_else(|| format!("URI without scheme: {s:?}"))?;
    let (scheme, rest) = (&s[..colon], &s[colon + 1..]);
    let valid_scheme = scheme
        .as_bytes()
        .first()
        .is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !valid_scheme {
        return Err(format!("bad URI scheme {scheme:?}"));
    }
    if rest.is_empty() {
        return Err(format!("empty {scheme} URI"));
    }
    if scheme.eq_ignore_ascii_case("sip") {
        split_sip(UriScheme::Sip, rest)
    } else if scheme.eq_ignore_ascii_case("sips") {
        split_sip(UriScheme::Sips, rest)
    } else {
        Ok(UriParts {
            scheme: UriScheme::Other(scheme, rest),
            user: None,
            host: Host0::Name(rest),
            port: None,
            params: "",
            headers: None,
        })
    }
}

fn split_sip<'a>(scheme: UriScheme<'a>, rest: &'a str) -> Result<UriParts<'a>, String> {
    // The user part may contain ';', '?', '/' and ',' but never '@', and
    // nothing after the host may contain '@': the first '@' ends userinfo.
    let (user, after) = match pos(rest, b'@') {
        Some(at) => {
            let userinfo = &rest[..at];
            let (user, password) = match pos(userinfo, b':') {
                Some(c) => (&userinfo[..c], Some(&userinfo[c + 1..])),
                None => (userinfo, None),
            };
            if user.is_empty() {
                return Err("empty user part in SIP URI".into());
            }
            (Some((user, password)), &rest[at + 1..])
        }
        None => (None, rest),
    };
    let (before_headers, headers) = match pos(after, b'?') {
        Some(q) => (&after[..q], Some(&after[q + 1..])),
        None => (after, None),
    };
    if headers.is_some_and(|h| h.is_empty() || pos(h, b'@').is_some()) {
        return Err("bad URI headers".into());
    }
    let (hostport, params) = match pos(before_headers, b';') {
        Some(p) => (&before_headers[..p], &before_headers[p..]),
        None => (before_headers, ""),
    };
    let (host, port) = split_hostport(hostport)?;
    Ok(UriParts {
        scheme,
        user,
        host,
        port,
        params: check_uri_params(params)?,
        headers,
    })
}

/// `host [ ":" port ]`, host being a hostname, an IPv4 address or an IPv6
/// reference in brackets.
pub fn parse_hostport(s: &str) -> Result<HostWithPort, String> {
    let (host, port) = split_hostport(s)?;
    Ok(HostWithPort {
        host: match host {
            Host0::Ip(ip) => Host::IpAddr(ip),
            Host0::Name(n) => Host::Domain(Domain::from(n.to_string())),
        },
        port: port.map(Port::from),
    })
}

/// Checks `host [ ":" port ]` without building it.
pub(crate) fn check_hostport(s: &str) -> Result<(), String> {
    split_hostport(s).map(|_| ())
}

fn split_hostport(s: &str) -> Result<(Host0<'_>, Option<u16>), String> {
    let (host, port) = if let Some(inner) = s.strip_prefix('[') {
        let close = pos(inner, b']').ok_or("unterminated IPv6 reference")?;
        let addr: Ipv6Addr = inner[..close]
            .parse()
            .map_err(|_| format!("bad IPv6 address {:?}", &inner[..close]))?;
        let tail = &inner[close + 1..];
        let port = match tail {
            "" => None,
            t => Some(t.strip_prefix(':').ok_or("junk after IPv6 reference")?),
        };
        (Host0::Ip(IpAddr::V6(addr)), port)
    } else {
        let (name, port) = match pos(s, b':') {
            Some(c) => (&s[..c], Some(&s[c + 1..])),
            None => (s, None),
        };
        let ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
        if !ok {
            return Err(format!("bad host {name:?}"));
        }
        let host = match name.parse::<std::net::Ipv4Addr>() {
            Ok(v4) => Host0::Ip(IpAddr::V4(v4)),
            Err(_) => Host0::Name(name),
        };
        (host, port)
    };
    let port = match port {
        None => None,
        Some(p) => {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("bad port {p:?}"));
            }
            Some(
                p.parse::<u16>()
                    .map_err(|_| format!("port out of range {p:?}"))?,
            )
        }
    };
    Ok((host, port))
}

/// The `(name, value)` pairs of `;name[=value]...`.
fn uri_params(s: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    s.split(';').skip(1).map(|raw| match raw.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (raw, None),
    })
}

/// Checks `;name[=value]` URI parameters (liberal about characters, strict
/// about structure: no empty names or values) and returns them as given.
fn check_uri_params(s: &str) -> Result<&str, String> {
    for (name, value) in uri_params(s) {
        if name.is_empty() {
            return Err("empty URI parameter".into());
        }
        if value.is_some_and(|v| v.is_empty() || v.contains('=')) {
            return Err(format!("bad value for URI parameter {name}"));
        }
    }
    Ok(s)
}

/// Builds an rsip `Param`, falling back to `Param::Other` where rsip's typed
/// conversion fails (unknown transport or method).
pub fn make_param(name: &str, value: Option<&str>) -> Param {
    match Param::try_from((name, value)) {
        Ok(p) => p,
        Err(_) => Param::Other(name.into(), value.map(Into::into)),
    }
}

/// Formats a URI as it goes on the wire (see the module doc for the
/// representation of non-SIP schemes).
pub fn format_uri(uri: &Uri) -> String {
    let mut out = String::with_capacity(64);
    write_uri(&mut out, uri);
    out
}

/// Appends the wire form of `uri` to `out`.
pub fn write_uri(out: &mut String, uri: &Uri) {
    match &uri.scheme {
        Some(Scheme::Sip) => out.push_str("sip:"),
        Some(Scheme::Sips) => out.push_str("sips:"),
        Some(Scheme::Other(s)) => {
            out.push_str(s);
            out.push(':');
        }
        None => {}
    }
    if let Some(auth) = &uri.auth {
        out.push_str(&auth.user);
        if let Some(p) = &auth.password {
            out.push(':');
            out.push_str(p);
        }
        out.push('@');
    }
    match &uri.host_with_port.host {
        Host::IpAddr(IpAddr::V6(v6)) => {
            let _ = write!(out, "[{v6}]");
        }
        Host::IpAddr(v4) => {
            let _ = write!(out, "{v4}");
        }
        Host::Domain(d) => {
            let _ = write!(out, "{d}");
        }
    }
    if let Some(port) = &uri.host_with_port.port {
        let _ = write!(out, ":{port}");
    }
    for p in &uri.params {
        let _ = write!(out, "{p}");
    }
}

/// The scheme name of a URI in lower case ("sip" when none is set, as rsip
/// defaults to).
pub fn scheme_name(uri: &Uri) -> String {
    match &uri.scheme {
        Some(Scheme::Sips) => "sips".into(),
        Some(Scheme::Other(s)) => s.to_ascii_lowercase(),
        Some(Scheme::Sip) | None => "sip".into(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rt(s: &str) -> String {
        format_uri(&parse_uri(s).unwrap().uri)
    }

    #[test]
    fn sip_uris() {
        let p = parse_uri("sip:sips%3Auser%40example.com@example.net").unwrap();
        assert_eq!(p.uri.user(), Some("sips%3Auser%40example.com"));
        assert_eq!(p.uri.host().to_string(), "example.net");
        let p = parse_uri("sip:j.user@example.com:5070;transport=tcp;lr").unwrap();
        assert_eq!(p.uri.user(), Some("j.user"));
        assert_eq!(p.uri.port().map(|p| *p.value()), Some(5070));
        assert_eq!(p.uri.params.len(), 2);
        let p = parse_uri("sip:user;par=u%40example.net@example.com").unwrap();
        assert_eq!(p.uri.user(), Some("user;par=u%40example.net"));
        let p = parse_uri("sips:[2001:db8::1]:5061").unwrap();
        assert_eq!(format_uri(&p.uri), "sips:[2001:db8::1]:5061");
        let p = parse_uri("sip:user@example.com?Route=%3Csip:example.com%3E").unwrap();
        assert_eq!(p.headers.as_deref(), Some("Route=%3Csip:example.com%3E"));
        assert_eq!(
            rt("sip:a:pw@10.0.0.1;maddr=x;%6C%72"),
            "sip:a:pw@10.0.0.1;maddr=x;%6C%72"
        );
        assert_eq!(rt("sip:example.com"), "sip:example.com");
    }

    #[test]
    fn other_schemes_are_opaque() {
        let p = parse_uri("nobodyKnowsThisScheme:totallyopaquecontent").unwrap();
        assert_eq!(scheme_name(&p.uri), "nobodyknowsthisscheme");
        assert_eq!(
            format_uri(&p.uri),
            "nobodyKnowsThisScheme:totallyopaquecontent"
        );
        assert_eq!(
            rt("soap.beep://192.0.2.103:3002"),
            "soap.beep://192.0.2.103:3002"
        );
        assert_eq!(
            rt("tel:+1-201-555-0123;phone-context=x"),
            "tel:+1-201-555-0123;phone-context=x"
        );
    }

    #[test]
    fn bad_uris() {
        for bad in [
            "",
            "sip:",
            "sip:user@",
            "sip:@host",
            "sip:host:",
            "sip:host:99999",
            "sip:ho st",
            "<sip:x>",
            "sip:[::1",
            "sip:host;;",
            "sip:host;a=",
            "1x:foo",
            "nocolon",
            "sip:h?",
            "sip:a b@c",
        ] {
            assert!(parse_uri(bad).is_err(), "{bad:?} should fail");
        }
    }
}

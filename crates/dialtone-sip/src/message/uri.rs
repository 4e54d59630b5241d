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

use super::grammar::has_ws_or_ctl;

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
    if s.is_empty() {
        return Err("empty URI".into());
    }
    if has_ws_or_ctl(s) {
        return Err(format!("whitespace or control character in URI {s:?}"));
    }
    if s.contains(['<', '>', '"']) {
        return Err(format!("illegal character in URI {s:?}"));
    }
    let colon = s.find(':').ok_or_else(|| format!("URI without scheme: {s:?}"))?;
    let (scheme, rest) = (&s[..colon], &s[colon + 1..]);
    let valid_scheme = scheme.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
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
        parse_sip(Scheme::Sip, rest)
    } else if scheme.eq_ignore_ascii_case("sips") {
        parse_sip(Scheme::Sips, rest)
    } else {
        Ok(ParsedUri {
            uri: Uri {
                scheme: Some(Scheme::Other(scheme.to_string())),
                host_with_port: HostWithPort::from(Host::Domain(Domain::from(rest.to_string()))),
                ..Default::default()
            },
            headers: None,
        })
    }
}

fn parse_sip(scheme: Scheme, rest: &str) -> Result<ParsedUri, String> {
    // The user part may contain ';', '?', '/' and ',' but never '@', and
    // nothing after the host may contain '@': the first '@' ends userinfo.
    let (auth, after) = match rest.find('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            let (user, password) = match userinfo.find(':') {
                Some(c) => (&userinfo[..c], Some(&userinfo[c + 1..])),
                None => (userinfo, None),
            };
            if user.is_empty() {
                return Err("empty user part in SIP URI".into());
            }
            let auth = Auth {
                user: user.to_string(),
                password: password.map(str::to_string),
            };
            (Some(auth), &rest[at + 1..])
        }
        None => (None, rest),
    };
    let (before_headers, headers) = match after.find('?') {
        Some(q) => (&after[..q], Some(&after[q + 1..])),
        None => (after, None),
    };
    if headers.is_some_and(|h| h.is_empty() || h.contains('@')) {
        return Err("bad URI headers".into());
    }
    let (hostport, params) = match before_headers.find(';') {
        Some(p) => (&before_headers[..p], &before_headers[p..]),
        None => (before_headers, ""),
    };
    let host_with_port = parse_hostport(hostport)?;
    let params = parse_uri_params(params)?;
    Ok(ParsedUri {
        uri: Uri {
            scheme: Some(scheme),
            auth,
            host_with_port,
            params,
            headers: Vec::new(),
        },
        headers: headers.map(str::to_string),
    })
}

/// `host [ ":" port ]`, host being a hostname, an IPv4 address or an IPv6
/// reference in brackets.
pub fn parse_hostport(s: &str) -> Result<HostWithPort, String> {
    let (host, port) = if let Some(inner) = s.strip_prefix('[') {
        let close = inner.find(']').ok_or("unterminated IPv6 reference")?;
        let addr: Ipv6Addr = inner[..close]
            .parse()
            .map_err(|_| format!("bad IPv6 address {:?}", &inner[..close]))?;
        let tail = &inner[close + 1..];
        let port = match tail {
            "" => None,
            t => Some(t.strip_prefix(':').ok_or("junk after IPv6 reference")?),
        };
        (Host::IpAddr(IpAddr::V6(addr)), port)
    } else {
        let (name, port) = match s.find(':') {
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
            Ok(v4) => Host::IpAddr(IpAddr::V4(v4)),
            Err(_) => Host::Domain(Domain::from(name.to_string())),
        };
        (host, port)
    };
    let port = match port {
        None => None,
        Some(p) => {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("bad port {p:?}"));
            }
            let n: u16 = p.parse().map_err(|_| format!("port out of range {p:?}"))?;
            Some(Port::from(n))
        }
    };
    Ok(HostWithPort { host, port })
}

/// `;name[=value]` URI parameters (liberal about characters, strict about
/// structure: no empty names or values).
fn parse_uri_params(s: &str) -> Result<Vec<Param>, String> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for raw in s[1..].split(';') {
        let (name, value) = match raw.find('=') {
            Some(e) => (&raw[..e], Some(&raw[e + 1..])),
            None => (raw, None),
        };
        if name.is_empty() {
            return Err("empty URI parameter".into());
        }
        if value.is_some_and(|v| v.is_empty() || v.contains('=')) {
            return Err(format!("bad value for URI parameter {name}"));
        }
        out.push(make_param(name, value));
    }
    Ok(out)
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
        assert_eq!(rt("sip:a:pw@10.0.0.1;maddr=x;%6C%72"), "sip:a:pw@10.0.0.1;maddr=x;%6C%72");
        assert_eq!(rt("sip:example.com"), "sip:example.com");
    }

    #[test]
    fn other_schemes_are_opaque() {
        let p = parse_uri("nobodyKnowsThisScheme:totallyopaquecontent").unwrap();
        assert_eq!(scheme_name(&p.uri), "nobodyknowsthisscheme");
        assert_eq!(format_uri(&p.uri), "nobodyKnowsThisScheme:totallyopaquecontent");
        assert_eq!(rt("soap.beep://192.0.2.103:3002"), "soap.beep://192.0.2.103:3002");
        assert_eq!(rt("tel:+1-201-555-0123;phone-context=x"), "tel:+1-201-555-0123;phone-context=x");
    }

    #[test]
    fn bad_uris() {
        for bad in [
            "", "sip:", "sip:user@", "sip:@host", "sip:host:", "sip:host:99999", "sip:ho st",
            "<sip:x>", "sip:[::1", "sip:host;;", "sip:host;a=", "1x:foo", "nocolon", "sip:h?",
            "sip:a b@c",
        ] {
            assert!(parse_uri(bad).is_err(), "{bad:?} should fail");
        }
    }
}

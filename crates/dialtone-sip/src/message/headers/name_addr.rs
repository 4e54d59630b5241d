//! `name-addr / addr-spec` values with header parameters (RFC 3261 §20.10,
//! §25.1): the shape of From, To, Contact, Route, Refer-To, Referred-By and
//! P-Asserted-Identity. [`NameAddr::parse`] is strict about structure
//! (balanced quotes, display names made of tokens or one quoted string, no
//! whitespace inside `<>`, `?`/`,`/`;` only allowed inside `<>`) and liberal
//! about LWS around separators. Unlike rsip's typed From/To/Contact it
//! splits `user@host` correctly for users containing dots, reads IPv6 hosts,
//! keeps URI headers (`?Replaces=...`) and quoted parameter values. URI
//! parameters become rsip `Param`s, so `transport=tcp` prints as
//! `transport=TCP`; header parameters are kept exactly as written.

use std::fmt;

use rsip::{Param, Uri};

use super::HeaderError;
use crate::message::grammar::{
    check_params, is_token_byte, parse_params, pos, quoted_end, squeeze, GenericParam,
};
use crate::message::uri::{make_param, split_uri, write_uri, UriParts};

/// A parsed `name-addr` or `addr-spec` with its header parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// The display name as written: a quoted string keeps its quotes and
    /// escapes; a token sequence has its LWS collapsed to single spaces.
    pub display_name: Option<String>,
    pub uri: Uri,
    /// The escaped `?hname=hvalue&...` part of the URI (name-addr form only).
    pub uri_headers: Option<String>,
    /// Header parameters (after `>` or after the addr-spec).
    pub params: Vec<GenericParam>,
    /// Whether the value used `<...>` (serialization keeps the form, and
    /// always uses `<>` when the URI needs them).
    pub angle_brackets: bool,
}

impl NameAddr {
    /// Builds a name-addr for `uri` with no display name or parameters.
    pub fn new(uri: Uri) -> Self {
        Self {
            display_name: None,
            uri,
            uri_headers: None,
            params: Vec::new(),
            angle_brackets: true,
        }
    }

    /// Parses one value (not a comma-separated list).
    pub fn parse(value: &str) -> Result<Self, HeaderError> {
        let s = squeeze(value);
        parse_one(&s).map_err(|e| HeaderError::new("name-addr", e))
    }

    /// Checks one value as [`parse`](Self::parse) does, without building
    /// it (no URI, no strings).
    pub fn check(value: &str) -> Result<(), HeaderError> {
        with_params(value, |_| ())
    }

    /// The `tag` parameter of one value, which is checked as
    /// [`parse`](Self::parse) checks it but not built: what the
    /// transaction layer asks of every From and To.
    pub fn parse_tag(value: &str) -> Result<Option<String>, HeaderError> {
        with_params(value, |params| {
            params
                .into_iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("tag"))
                .and_then(|(_, v)| v.map(str::to_string))
        })
    }

    /// Checks one squeezed value without building it.
    pub(crate) fn check_squeezed(value: &str) -> Result<(), String> {
        split_one(value).map(|_| ())
    }

    /// Parses a comma-separated list of values.
    pub fn parse_list(value: &str) -> Result<Vec<Self>, HeaderError> {
        let s = squeeze(value);
        crate::message::grammar::split_top_level(&s, b',')
            .into_iter()
            .map(|part| parse_one(part).map_err(|e| HeaderError::new("name-addr", e)))
            .collect()
    }

    /// The value of parameter `name` (case-insensitive): `Some(None)` for a
    /// parameter without value.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| p.value.as_deref())
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&str> {
        self.param("tag").flatten()
    }

    /// Display name with quotes and escapes removed.
    pub fn display_name_unquoted(&self) -> Option<String> {
        let d = self.display_name.as_deref()?;
        let Some(inner) = d.strip_prefix('"').and_then(|d| d.strip_suffix('"')) else {
            return Some(d.to_string());
        };
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => out.extend(chars.next()),
                c => out.push(c),
            }
        }
        Some(out)
    }

    /// The header parameters as rsip `Param`s (for rsip's typed headers).
    pub fn rsip_params(&self) -> Vec<Param> {
        self.params
            .iter()
            .map(|p| make_param(&p.name, p.value.as_deref()))
            .collect()
    }
}

/// rsip's typed From, To and Contact share NameAddr's shape.
macro_rules! into_rsip_typed {
    ($($t:ty),*) => {$(
        impl From<NameAddr> for $t {
            fn from(n: NameAddr) -> Self {
                let params = n.rsip_params();
                Self {
                    display_name: n.display_name,
                    uri: n.uri,
                    params,
                }
            }
        }
    )*};
}

into_rsip_typed!(rsip::typed::From, rsip::typed::To, rsip::typed::Contact);

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut uri = String::with_capacity(64);
        write_uri(&mut uri, &self.uri);
        if let Some(h) = &self.uri_headers {
            uri.push('?');
            uri.push_str(h);
        }
        let angle = self.angle_brackets
            || self.display_name.is_some()
            || self.uri_headers.is_some()
            || !self.uri.params.is_empty()
            || uri.contains([',', ';', '?']);
        match (&self.display_name, angle) {
            (Some(d), _) => write!(f, "{d} <{uri}>")?,
            (None, true) => write!(f, "<{uri}>")?,
            (None, false) => f.write_str(&uri)?,
        }
        for p in &self.params {
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// A value split into its parts, borrowing the squeezed text.
struct Parts<'a> {
    display_name: Option<&'a str>,
    uri: UriParts<'a>,
    /// Header parameters as written (checked).
    params: &'a str,
    angle_brackets: bool,
}

/// Parses one squeezed value.
fn parse_one(s: &str) -> Result<NameAddr, String> {
    let p = split_one(s)?;
    let uri = p.uri.build();
    Ok(NameAddr {
        display_name: p.display_name.map(str::to_string),
        uri: uri.uri,
        uri_headers: uri.headers,
        params: parse_params(p.params)?
            .into_iter()
            .map(|(n, v)| GenericParam::new(n, v.map(str::to_string)))
            .collect(),
        angle_brackets: p.angle_brackets,
    })
}

/// Checks one value and gives `read` its header parameters.
fn with_params<T>(
    value: &str,
    read: impl FnOnce(Vec<(&str, Option<&str>)>) -> T,
) -> Result<T, HeaderError> {
    let s = squeeze(value);
    let params = split_one(&s)
        .and_then(|p| parse_params(p.params))
        .map_err(|e| HeaderError::new("name-addr", e))?;
    Ok(read(params))
}

/// Splits and checks one squeezed value.
fn split_one(s: &str) -> Result<Parts<'_>, String> {
    if s.is_empty() {
        return Err("empty value".into());
    }
    let b = s.as_bytes();
    // Does a '<' appear outside a quoted string? Then it is name-addr.
    let mut i = 0;
    let mut display_end = None;
    while i < b.len() {
        match b[i] {
            b'"' => i += quoted_end(&s[i..]).ok_or("unbalanced quotes")?,
            b'<' => {
                display_end = Some(i);
                break;
            }
            _ => i += 1,
        }
    }
    let Some(lt) = display_end else {
        if s.contains('"') {
            return Err("quoted display name without <URI>".into());
        }
        return split_addr_spec(s);
    };
    let display_name = check_display_name(s[..lt].trim_end())?;
    let gt = pos(&s[lt..], b'>').map(|g| lt + g).ok_or("missing '>'")?;
    let uri = split_uri(&s[lt + 1..gt]).map_err(|e| format!("bad URI in <>: {e}"))?;
    let params = &s[gt + 1..];
    check_params(params)?;
    Ok(Parts {
        display_name,
        uri,
        params,
        angle_brackets: true,
    })
}

fn split_addr_spec(s: &str) -> Result<Parts<'_>, String> {
    let (uri, params) = match pos(s, b';') {
        Some(p) => (&s[..p], &s[p..]),
        None => (s, ""),
    };
    if uri.bytes().any(|b| b == b'?' || b == b',') {
        return Err("URI with '?' or ',' must be enclosed in <>".into());
    }
    if pos(uri, b' ').is_some() {
        return Err("display name without <URI>, or whitespace in URI".into());
    }
    let uri = split_uri(uri)?;
    check_params(params)?;
    Ok(Parts {
        display_name: None,
        uri,
        params,
        angle_brackets: false,
    })
}

/// `display-name = *(token LWS) / quoted-string`.
fn check_display_name(d: &str) -> Result<Option<&str>, String> {
    if d.is_empty() {
        return Ok(None);
    }
    if d.starts_with('"') {
        return match quoted_end(d) {
            Some(end) if end == d.len() => Ok(Some(d)),
            _ => Err(format!("junk around quoted display name {d:?}")),
        };
    }
    for word in d.split(' ') {
        if word.is_empty() || !word.bytes().all(is_token_byte) {
            return Err(format!(
                "display name {d:?} must be tokens or a quoted string"
            ));
        }
    }
    Ok(Some(d))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rt(s: &str) -> String {
        NameAddr::parse(s).unwrap().to_string()
    }

    #[test]
    fn forms() {
        let n =
            NameAddr::parse("\"J Rosenberg \\\\\\\"\"  <sip:jdrosen@example.com> ; tag = 98asjd8")
                .unwrap();
        assert_eq!(n.display_name.as_deref(), Some("\"J Rosenberg \\\\\\\"\""));
        assert_eq!(
            n.display_name_unquoted().as_deref(),
            Some("J Rosenberg \\\"")
        );
        assert_eq!(n.tag(), Some("98asjd8"));
        assert_eq!(n.uri.user(), Some("jdrosen"));
        let n = NameAddr::parse("sip:j.user@example.com;tag=1").unwrap();
        assert_eq!(n.uri.user(), Some("j.user"));
        assert_eq!(n.tag(), Some("1"));
        assert!(!n.angle_brackets);
        let n = NameAddr::parse("caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(n.display_name.as_deref(), Some("caller"));
        let n = NameAddr::parse("<sip:u@example.com?Route=%3Csip:sip.example.com%3E>").unwrap();
        assert_eq!(
            n.uri_headers.as_deref(),
            Some("Route=%3Csip:sip.example.com%3E")
        );
        let n = NameAddr::parse("token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;fromParam''~+*_!.-%=\"ж\";tag=_token~1'+`*%!-.").unwrap();
        assert_eq!(n.param("fromParam''~+*_!.-%"), Some(Some("\"ж\"")));
        let n = NameAddr::parse("isbn:2983792873").unwrap();
        assert_eq!(crate::message::uri::scheme_name(&n.uri), "isbn");
    }

    #[test]
    fn round_trips() {
        for s in [
            "<sip:a@b>;tag=1",
            "sip:a@b;tag=1",
            "\"A B\" <sip:a@b;transport=TCP>;expires=60;+sip.instance=\"<urn:x>\"",
            "Bob <sips:bob@[2001:db8::1]:5061>",
            "<sip:a@b?Replaces=x%40y%3Bto-tag%3D1>",
            "<tel:+12015550123>",
        ] {
            assert_eq!(rt(s), s);
        }
        assert_eq!(rt("sip:a@b ;  tag = 1"), "sip:a@b;tag=1");
        // URI parameters go through rsip's Param: transport values print upper case.
        assert_eq!(rt("<sip:a@b;transport=tcp>"), "<sip:a@b;transport=TCP>");
    }

    #[test]
    fn rejects() {
        for bad in [
            "\"Mr. J. User <sip:j.user@example.com>",
            "Bell, Alexander <sip:a.g.bell@example.com>;tag=43",
            "\"Watson, Thomas\" < sip:t.watson@example.org >",
            "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            "<sip:a@b>;;",
            "<sip:a@b",
            "\"x\" y <sip:a@b>",
            "",
            "\"q\" sip:a@b",
        ] {
            assert!(NameAddr::parse(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn check_and_parse_tag_agree_with_parse() {
        for s in [
            "\"J Rosenberg \\\\\\\"\"  <sip:jdrosen@example.com> ; tag = 98asjd8",
            "sip:j.user@example.com;tag=1",
            "<sip:a@b;tag=uri-param-not-header>;x=1",
            "<sip:a@b>;TAG=up;tag=second",
            "<sip:a@b>;tag",
            "\"a>b;tag=no\" <sip:a@b>",
            "\"Mr. J. User <sip:j.user@example.com>",
            "<sip:a@b>;;",
            "",
        ] {
            let full = NameAddr::parse(s);
            assert_eq!(NameAddr::check(s).is_ok(), full.is_ok(), "{s:?}");
            assert_eq!(
                NameAddr::parse_tag(s).ok().flatten(),
                full.ok().and_then(|n| n.tag().map(str::to_string)),
                "{s:?}"
            );
        }
        assert_eq!(
            NameAddr::parse_tag("<sip:a@b>;TAG=up").unwrap().as_deref(),
            Some("up")
        );
        assert_eq!(NameAddr::parse_tag("<sip:a@b;tag=u>").unwrap(), None);
    }

    #[test]
    fn lists() {
        let v = NameAddr::parse_list("\"a,b\" <sip:a@b>, <sip:c@d>;q=0.5").unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].param("q"), Some(Some("0.5")));
        assert!(NameAddr::parse_list("<sip:a@b>,,").is_err());
    }
}

//! Call transfer headers: Refer-To (RFC 3515 §2.1), Referred-By (RFC 3892)
//! and Replaces (RFC 3891), including the Replaces header that a Refer-To
//! URI carries escaped in its `?Replaces=` part for attended transfer.

use std::fmt;

use rsip::Uri;

use super::{generic_params, ExtHeader, GenericParam, HeaderError, NameAddr};
use crate::message::grammar::{has_ws_or_ctl, percent_decode, squeeze};

/// `Refer-To: (name-addr / addr-spec) *(SEMI generic-param)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferTo(pub NameAddr);

impl ReferTo {
    /// A Refer-To for `uri`, in `<>`.
    pub fn new(uri: Uri) -> Self {
        Self(NameAddr::new(uri))
    }

    /// The target URI.
    pub fn uri(&self) -> &Uri {
        &self.0.uri
    }

    /// The Replaces header embedded in the URI (`?Replaces=...`), decoded:
    /// `None` when there is none, `Some(Err)` when it does not parse.
    pub fn replaces(&self) -> Option<Result<Replaces, HeaderError>> {
        let headers = self.0.uri_headers.as_deref()?;
        let raw = headers.split('&').find_map(|h| {
            let (name, value) = h.split_once('=')?;
            name.eq_ignore_ascii_case("Replaces").then_some(value)
        })?;
        let decoded = percent_decode(raw);
        Some(match String::from_utf8(decoded) {
            Ok(s) => Replaces::parse(&s),
            Err(_) => Err(HeaderError::new("Replaces", "escaped value is not UTF-8")),
        })
    }

    /// Embeds `replaces` in the URI (replacing any URI headers).
    pub fn set_replaces(&mut self, replaces: &Replaces) {
        self.0.uri_headers = Some(format!("Replaces={}", escape_hvalue(&replaces.to_string())));
        self.0.angle_brackets = true;
    }
}

impl ExtHeader for ReferTo {
    const NAME: &'static str = "Refer-To";
    const COMPACT: Option<&'static str> = Some("r");

    fn parse(value: &str) -> Result<Self, HeaderError> {
        NameAddr::parse(value)
            .map(Self)
            .map_err(|e| HeaderError::new(Self::NAME, e.detail))
    }
}

impl fmt::Display for ReferTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// `Referred-By: (name-addr / addr-spec) *(SEMI (referredby-id-param / generic-param))`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferredBy(pub NameAddr);

impl ReferredBy {
    /// The referrer's URI.
    pub fn uri(&self) -> &Uri {
        &self.0.uri
    }

    /// The `cid` parameter (Content-ID of an authenticated token), unquoted.
    pub fn cid(&self) -> Option<&str> {
        self.0.param("cid").flatten().map(|c| c.trim_matches('"'))
    }
}

impl ExtHeader for ReferredBy {
    const NAME: &'static str = "Referred-By";
    const COMPACT: Option<&'static str> = Some("b");

    fn parse(value: &str) -> Result<Self, HeaderError> {
        NameAddr::parse(value)
            .map(Self)
            .map_err(|e| HeaderError::new(Self::NAME, e.detail))
    }
}

impl fmt::Display for ReferredBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// `Replaces: callid *(SEMI (to-tag / from-tag / early-flag / generic-param))`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaces {
    pub call_id: String,
    pub to_tag: String,
    pub from_tag: String,
    /// `early-only`: only replace an early dialog.
    pub early_only: bool,
    /// Any other parameters.
    pub params: Vec<GenericParam>,
}

impl ExtHeader for Replaces {
    const NAME: &'static str = "Replaces";

    fn parse(value: &str) -> Result<Self, HeaderError> {
        let s = squeeze(value);
        let (call_id, rest) = match s.find(';') {
            Some(i) => (&s[..i], &s[i..]),
            None => (&s[..], ""),
        };
        if call_id.is_empty() || has_ws_or_ctl(call_id) {
            return Err(HeaderError::new(
                Self::NAME,
                format!("bad Call-ID {call_id:?}"),
            ));
        }
        let mut to_tag = None;
        let mut from_tag = None;
        let mut early_only = false;
        let mut params = Vec::new();
        for p in generic_params(rest, Self::NAME)? {
            let slot = match p.name.to_ascii_lowercase().as_str() {
                "to-tag" => &mut to_tag,
                "from-tag" => &mut from_tag,
                "early-only" if p.value.is_none() => {
                    early_only = true;
                    continue;
                }
                _ => {
                    params.push(p);
                    continue;
                }
            };
            if slot.is_some() {
                return Err(HeaderError::new(
                    Self::NAME,
                    format!("duplicate {}", p.name),
                ));
            }
            *slot = Some(p.value.ok_or_else(|| {
                HeaderError::new(Self::NAME, format!("{} without value", p.name))
            })?);
        }
        let missing = |what| HeaderError::new(Self::NAME, format!("missing {what}"));
        Ok(Self {
            call_id: call_id.to_string(),
            to_tag: to_tag.ok_or_else(|| missing("to-tag"))?,
            from_tag: from_tag.ok_or_else(|| missing("from-tag"))?,
            early_only,
            params,
        })
    }
}

impl fmt::Display for Replaces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{};to-tag={};from-tag={}",
            self.call_id, self.to_tag, self.from_tag
        )?;
        if self.early_only {
            f.write_str(";early-only")?;
        }
        for p in &self.params {
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// %-escapes everything `hvalue` (RFC 3261 §25.1) does not allow.
fn escape_hvalue(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric() || b"-_.!~*'()[]/?:+$".contains(&b);
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn replaces_round_trip() {
        let s = "98732@sip.example.com;to-tag=ff87ff;from-tag=r33th4x0r;early-only";
        let r = Replaces::parse(s).unwrap();
        assert_eq!(r.call_id, "98732@sip.example.com");
        assert_eq!(r.to_tag, "ff87ff");
        assert_eq!(r.from_tag, "r33th4x0r");
        assert!(r.early_only);
        assert_eq!(r.to_string(), s);
        // Other order and LWS parse to the same thing.
        let r2 = Replaces::parse(
            "98732@sip.example.com ; from-tag = r33th4x0r;to-tag=ff87ff;early-only",
        )
        .unwrap();
        assert_eq!(r, r2);
        assert_eq!(Replaces::parse(&r.to_string()).unwrap(), r);
        assert!(Replaces::parse("abc;to-tag=1").is_err());
        assert!(Replaces::parse(";to-tag=1;from-tag=2").is_err());
        assert!(Replaces::parse("a;to-tag=1;to-tag=2;from-tag=3").is_err());
    }

    #[test]
    fn refer_to_with_embedded_replaces() {
        let v = "<sips:dave@chicago.example.com?Replaces=12345%40192.168.118.3%3Bto-tag%3D12345%3Bfrom-tag%3D5FFE-3994>";
        let r = ReferTo::parse(v).unwrap();
        assert_eq!(r.to_string(), v);
        let rep = r.replaces().unwrap().unwrap();
        assert_eq!(rep.call_id, "12345@192.168.118.3");
        assert_eq!(rep.to_tag, "12345");
        assert_eq!(rep.from_tag, "5FFE-3994");
        let mut again = ReferTo::new(r.uri().clone());
        again.set_replaces(&rep);
        assert_eq!(again.replaces().unwrap().unwrap(), rep);
        assert_eq!(ReferTo::parse(&again.to_string()).unwrap(), again);
        assert!(ReferTo::parse("sip:a@b").unwrap().replaces().is_none());
        assert!(ReferTo::parse("<sip:a@b?Replaces=x>")
            .unwrap()
            .replaces()
            .unwrap()
            .is_err());
    }

    #[test]
    fn refer_to_and_referred_by_round_trip() {
        for s in [
            "<sip:bob@biloxi.example.net>;method=INVITE",
            "sip:carol@example.com",
        ] {
            assert_eq!(ReferTo::parse(s).unwrap().to_string(), s);
        }
        let rb = ReferredBy::parse("\"Alice\" <sip:alice@atlanta.example.com>;cid=\"20398823.2UWQFN309shb3@atlanta.example.com\"").unwrap();
        assert_eq!(rb.cid(), Some("20398823.2UWQFN309shb3@atlanta.example.com"));
        assert_eq!(ReferredBy::parse(&rb.to_string()).unwrap(), rb);
        assert!(ReferTo::parse("<sip:a@b").is_err());
    }
}

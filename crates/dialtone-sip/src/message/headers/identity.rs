//! Asserted identity (RFC 3325 §9.1): P-Asserted-Identity, one or more
//! name-addr/addr-spec values separated by commas (typically one SIP or SIPS
//! URI and at most one tel URI).

use std::fmt;

use super::{ExtHeader, HeaderError, NameAddr};

/// `P-Asserted-Identity: PAssertedID-value *(COMMA PAssertedID-value)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PAssertedIdentity(pub Vec<NameAddr>);

impl PAssertedIdentity {
    /// The first identity whose URI scheme is `scheme` (e.g. "sip", "tel").
    pub fn by_scheme(&self, scheme: &str) -> Option<&NameAddr> {
        self.0
            .iter()
            .find(|n| crate::message::uri::scheme_name(&n.uri).eq_ignore_ascii_case(scheme))
    }
}

impl ExtHeader for PAssertedIdentity {
    const NAME: &'static str = "P-Asserted-Identity";

    fn parse(value: &str) -> Result<Self, HeaderError> {
        let list =
            NameAddr::parse_list(value).map_err(|e| HeaderError::new(Self::NAME, e.detail))?;
        Ok(Self(list))
    }
}

impl fmt::Display for PAssertedIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, n) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            n.fmt(f)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pai() {
        let s = "\"Cullen Jennings\" <sip:fluffy@cisco.com>, <tel:+14085264000>";
        let p = PAssertedIdentity::parse(s).unwrap();
        assert_eq!(p.0.len(), 2);
        assert_eq!(p.to_string(), s);
        assert_eq!(
            p.by_scheme("tel").map(|n| n.to_string()).as_deref(),
            Some("<tel:+14085264000>")
        );
        assert_eq!(
            p.by_scheme("sip").and_then(|n| n.uri.user()),
            Some("fluffy")
        );
        assert_eq!(
            PAssertedIdentity::parse("sip:a@b").unwrap().to_string(),
            "sip:a@b"
        );
        assert!(PAssertedIdentity::parse("").is_err());
        assert!(PAssertedIdentity::parse("<sip:a@b>,").is_err());
    }
}

//! Typed access to the extension headers rsip 0.4 keeps as
//! `Header::Other(name, value)`: Refer-To, Referred-By, Replaces,
//! Session-Expires, Min-SE, RSeq, RAck and P-Asserted-Identity, plus the
//! [`NameAddr`] parser they (and From/To/Contact) share. Each type parses
//! from a header value with `parse` and prints back with `Display`; the
//! [`header`] and [`headers_all`] functions fetch them from `Headers` by name
//! (case-insensitive, compact forms included).

mod identity;
mod name_addr;
mod prack;
mod refer;
mod timers;

pub use identity::PAssertedIdentity;
pub use name_addr::NameAddr;
pub use prack::{RAck, RSeq};
pub use refer::{ReferTo, ReferredBy, Replaces};
pub use timers::{MinSe, Refresher, SessionExpires};

pub use super::grammar::GenericParam;

use rsip::{Header, Headers};

/// A header value that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad {header} header: {detail}")]
pub struct HeaderError {
    /// Which header (or value kind) failed.
    pub header: &'static str,
    /// What is wrong with it.
    pub detail: String,
}

impl HeaderError {
    pub fn new(header: &'static str, detail: impl Into<String>) -> Self {
        Self {
            header,
            detail: detail.into(),
        }
    }
}

/// An extension header with a typed form.
pub trait ExtHeader: Sized + std::fmt::Display {
    /// Canonical header name.
    const NAME: &'static str;
    /// Compact form, if the header has one.
    const COMPACT: Option<&'static str> = None;

    /// Parses a header value.
    fn parse(value: &str) -> Result<Self, HeaderError>;

    /// This header as an rsip `Header` (always `Header::Other`).
    fn to_header(&self) -> Header {
        Header::Other(Self::NAME.to_string(), self.to_string())
    }

    /// Whether `name` names this header.
    fn matches(name: &str) -> bool {
        name.eq_ignore_ascii_case(Self::NAME)
            || Self::COMPACT.is_some_and(|c| name.eq_ignore_ascii_case(c))
    }
}

/// The first `T` header in `headers`: `None` when absent, `Some(Err)` when
/// present but malformed.
pub fn header<T: ExtHeader>(headers: &Headers) -> Option<Result<T, HeaderError>> {
    headers.iter().find_map(|h| match h {
        Header::Other(name, value) if T::matches(name) => Some(T::parse(value)),
        _ => None,
    })
}

/// Every `T` header in `headers`, in order.
pub fn headers_all<T: ExtHeader>(headers: &Headers) -> Vec<Result<T, HeaderError>> {
    headers
        .iter()
        .filter_map(|h| match h {
            Header::Other(name, value) if T::matches(name) => Some(T::parse(value)),
            _ => None,
        })
        .collect()
}

/// Parses `1*DIGIT` into a u32 (`what` names the field for errors).
pub(crate) fn parse_u32(s: &str, header: &'static str, what: &str) -> Result<u32, HeaderError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HeaderError::new(
            header,
            format!("{what} is not a number: {s:?}"),
        ));
    }
    s.parse()
        .map_err(|_| HeaderError::new(header, format!("{what} out of range: {s}")))
}

/// Parses `;name[=value]` generic parameters (squeezed input).
pub(crate) fn generic_params(
    s: &str,
    header: &'static str,
) -> Result<Vec<GenericParam>, HeaderError> {
    super::grammar::parse_params(s)
        .map(|v| {
            v.into_iter()
                .map(|(n, v)| GenericParam::new(n, v.map(str::to_string)))
                .collect()
        })
        .map_err(|e| HeaderError::new(header, e))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fetch_by_name_and_compact_form() {
        let headers: Headers = vec![
            Header::Other("x".into(), "1800;refresher=uac".into()),
            Header::Other("RSEQ".into(), "7".into()),
            Header::Other("RSeq".into(), "x".into()),
        ]
        .into();
        let se = header::<SessionExpires>(&headers).unwrap().unwrap();
        assert_eq!(se.delta, 1800);
        assert_eq!(header::<RSeq>(&headers).unwrap().unwrap(), RSeq(7));
        let all = headers_all::<RSeq>(&headers);
        assert_eq!(all.len(), 2);
        assert!(all[1].is_err());
        assert!(header::<MinSe>(&headers).is_none());
        assert_eq!(
            RSeq(5).to_header(),
            Header::Other("RSeq".into(), "5".into())
        );
    }
}

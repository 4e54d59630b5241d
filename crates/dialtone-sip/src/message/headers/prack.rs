//! Reliable provisional response headers (RFC 3262 §7): RSeq on the
//! provisional response and RAck on the PRACK that acknowledges it.

use std::fmt;

use rsip::Method;

use super::{parse_u32, ExtHeader, HeaderError};
use crate::message::grammar::squeeze;

/// `RSeq: response-num` (1 .. 2^31-1 on the first response, RFC 3262 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RSeq(pub u32);

impl ExtHeader for RSeq {
    const NAME: &'static str = "RSeq";

    fn parse(value: &str) -> Result<Self, HeaderError> {
        parse_u32(value.trim(), Self::NAME, "response-num").map(Self)
    }
}

impl fmt::Display for RSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// `RAck: response-num LWS CSeq-num LWS Method`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RAck {
    /// The RSeq of the acknowledged response.
    pub rseq: u32,
    /// The CSeq number of the acknowledged response.
    pub cseq: u32,
    /// The CSeq method of the acknowledged response.
    pub method: Method,
}

impl ExtHeader for RAck {
    const NAME: &'static str = "RAck";

    fn parse(value: &str) -> Result<Self, HeaderError> {
        let s = squeeze(value);
        let mut parts = s.split(' ');
        let (Some(r), Some(c), Some(m), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(HeaderError::new(
                Self::NAME,
                "expected response-num CSeq-num Method",
            ));
        };
        let method = m
            .parse::<Method>()
            .ok()
            .filter(|p| p.to_string() == m)
            .ok_or_else(|| HeaderError::new(Self::NAME, format!("unknown method {m:?}")))?;
        Ok(Self {
            rseq: parse_u32(r, Self::NAME, "response-num")?,
            cseq: parse_u32(c, Self::NAME, "CSeq-num")?,
            method,
        })
    }
}

impl fmt::Display for RAck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.rseq, self.cseq, self.method)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rseq() {
        assert_eq!(RSeq::parse("988789").unwrap(), RSeq(988789));
        assert_eq!(RSeq(988789).to_string(), "988789");
        assert!(RSeq::parse("").is_err());
        assert!(RSeq::parse("1 2").is_err());
        assert!(RSeq::parse("4294967296").is_err());
    }

    #[test]
    fn rack() {
        let r = RAck::parse("776656 1 INVITE").unwrap();
        assert_eq!((r.rseq, r.cseq, r.method), (776656, 1, Method::Invite));
        assert_eq!(r.to_string(), "776656 1 INVITE");
        assert_eq!(RAck::parse("  776656\t 1   INVITE ").unwrap(), r);
        for bad in [
            "776656 1",
            "776656 1 invite",
            "a 1 INVITE",
            "1 2 INVITE x",
            "1 2 FOO",
        ] {
            assert!(RAck::parse(bad).is_err(), "{bad:?}");
        }
    }
}

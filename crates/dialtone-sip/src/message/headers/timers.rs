//! Session timer headers (RFC 4028 §4, §5): Session-Expires (compact `x`)
//! with its `refresher` parameter, and Min-SE.

use std::fmt;

use super::{generic_params, parse_u32, ExtHeader, GenericParam, HeaderError};
use crate::message::grammar::squeeze;

/// Which side refreshes the session (`refresher=uac|uas`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresher {
    Uac,
    Uas,
}

impl fmt::Display for Refresher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Uac => "uac",
            Self::Uas => "uas",
        })
    }
}

/// `Session-Expires: delta-seconds *(SEMI (refresher-param / generic-param))`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionExpires {
    pub delta: u32,
    pub refresher: Option<Refresher>,
    /// Parameters other than `refresher`.
    pub params: Vec<GenericParam>,
}

impl SessionExpires {
    pub fn new(delta: u32, refresher: Option<Refresher>) -> Self {
        Self {
            delta,
            refresher,
            params: Vec::new(),
        }
    }
}

/// Splits `delta;params` and parses both.
fn delta_and_params(
    value: &str,
    header: &'static str,
) -> Result<(u32, Vec<GenericParam>), HeaderError> {
    let s = squeeze(value);
    let (delta, rest) = match s.find(';') {
        Some(i) => (&s[..i], &s[i..]),
        None => (&s[..], ""),
    };
    Ok((
        parse_u32(delta, header, "delta-seconds")?,
        generic_params(rest, header)?,
    ))
}

impl ExtHeader for SessionExpires {
    const NAME: &'static str = "Session-Expires";
    const COMPACT: Option<&'static str> = Some("x");

    fn parse(value: &str) -> Result<Self, HeaderError> {
        let (delta, all) = delta_and_params(value, Self::NAME)?;
        let mut refresher = None;
        let mut params = Vec::new();
        for p in all {
            if p.name.eq_ignore_ascii_case("refresher") {
                let r = match p.value.as_deref().map(str::to_ascii_lowercase).as_deref() {
                    Some("uac") => Refresher::Uac,
                    Some("uas") => Refresher::Uas,
                    other => {
                        return Err(HeaderError::new(
                            Self::NAME,
                            format!("refresher must be uac or uas, not {other:?}"),
                        ))
                    }
                };
                if refresher.replace(r).is_some() {
                    return Err(HeaderError::new(Self::NAME, "duplicate refresher"));
                }
            } else {
                params.push(p);
            }
        }
        Ok(Self {
            delta,
            refresher,
            params,
        })
    }
}

impl fmt::Display for SessionExpires {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.delta)?;
        if let Some(r) = self.refresher {
            write!(f, ";refresher={r}")?;
        }
        for p in &self.params {
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// `Min-SE: delta-seconds *(SEMI generic-param)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinSe {
    pub delta: u32,
    pub params: Vec<GenericParam>,
}

impl MinSe {
    pub fn new(delta: u32) -> Self {
        Self {
            delta,
            params: Vec::new(),
        }
    }
}

impl ExtHeader for MinSe {
    const NAME: &'static str = "Min-SE";

    fn parse(value: &str) -> Result<Self, HeaderError> {
        let (delta, params) = delta_and_params(value, Self::NAME)?;
        Ok(Self { delta, params })
    }
}

impl fmt::Display for MinSe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.delta)?;
        for p in &self.params {
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn session_expires() {
        let se = SessionExpires::parse("4000;refresher=uac").unwrap();
        assert_eq!(se, SessionExpires::new(4000, Some(Refresher::Uac)));
        assert_eq!(se.to_string(), "4000;refresher=uac");
        let se = SessionExpires::parse(" 1800 ; REFRESHER = UAS ; x=1").unwrap();
        assert_eq!(se.refresher, Some(Refresher::Uas));
        assert_eq!(se.to_string(), "1800;refresher=uas;x=1");
        assert_eq!(SessionExpires::parse(&se.to_string()).unwrap(), se);
        assert_eq!(SessionExpires::parse("90").unwrap().to_string(), "90");
        for bad in [
            "",
            "x",
            "-1",
            "99999999999",
            "90;refresher=both",
            "90;refresher",
            "90;;",
        ] {
            assert!(SessionExpires::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn min_se() {
        let m = MinSe::parse("90").unwrap();
        assert_eq!(m, MinSe::new(90));
        assert_eq!(m.to_string(), "90");
        assert_eq!(
            MinSe::parse("120;foo=bar").unwrap().to_string(),
            "120;foo=bar"
        );
        assert!(MinSe::parse("abc").is_err());
    }
}

//! The digest arithmetic of RFC 7616 §3.4.1 / RFC 2617 §3.2.2 (RFC 3261 §22.4):
//! the [`Algorithm`] type, HA1, the request-digest for `qop=auth` and for the
//! RFC 2069 no-qop form, and a constant-time comparison for checking it.

use md5::Md5;
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

use super::AuthError;

/// A digest algorithm we implement. The `-sess` variants are not supported
/// (SIP does not use them in practice and they need server-side session state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    /// The token as written in headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// Lowercase hex of H(data).
    pub(crate) fn hash_hex(self, data: &[u8]) -> String {
        match self {
            Algorithm::Md5 => hex::encode(Md5::digest(data)),
            Algorithm::Sha256 => hex::encode(Sha256::digest(data)),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = AuthError;

    /// Case-insensitive. "SHA256" is accepted too because some stacks (rsip
    /// itself among them) write it without the dash.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("MD5") {
            Ok(Algorithm::Md5)
        } else if s.eq_ignore_ascii_case("SHA-256") || s.eq_ignore_ascii_case("SHA256") {
            Ok(Algorithm::Sha256)
        } else {
            Err(AuthError::UnknownAlgorithm)
        }
    }
}

/// Lowercase hex of H(username:realm:password) — what a user database stores
/// instead of the password (one value per algorithm).
pub fn ha1(alg: Algorithm, username: &str, realm: &str, password: &str) -> String {
    alg.hash_hex(format!("{username}:{realm}:{password}").as_bytes())
}

/// `qop=auth` parameters of a response computation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QopAuth<'a> {
    pub nc: u32,
    pub cnonce: &'a str,
}

/// The request-digest ("response" parameter). `qop = None` is the RFC 2069
/// form `H(HA1:nonce:HA2)`; otherwise `H(HA1:nonce:nc:cnonce:auth:HA2)`.
/// `uri` is hashed exactly as the client wrote it in the digest-uri.
pub(crate) fn response(
    alg: Algorithm,
    ha1: &str,
    nonce: &str,
    method: &str,
    uri: &str,
    qop: Option<QopAuth<'_>>,
) -> String {
    let ha2 = alg.hash_hex(format!("{method}:{uri}").as_bytes());
    let data = match qop {
        Some(q) => format!("{ha1}:{nonce}:{:08x}:{}:auth:{ha2}", q.nc, q.cnonce),
        None => format!("{ha1}:{nonce}:{ha2}"),
    };
    alg.hash_hex(data.as_bytes())
}

/// Compares without an early exit so response-checking time does not reveal
/// how many leading characters matched. Lengths are public (fixed per algorithm).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::*;

    // RFC 7616 §3.9.1.
    const NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    const CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
    const REALM: &str = "http-auth@example.org";

    fn rfc7616(alg: Algorithm) -> String {
        let h = ha1(alg, "Mufasa", REALM, "Circle of Life");
        let q = QopAuth {
            nc: 1,
            cnonce: CNONCE,
        };
        response(alg, &h, NONCE, "GET", "/dir/index.html", Some(q))
    }

    #[test]
    fn rfc7616_md5_vector() {
        assert_eq!(rfc7616(Algorithm::Md5), "8ca523f5e9506fed4657c9700eebdbec");
    }

    #[test]
    fn rfc7616_sha256_vector() {
        assert_eq!(
            rfc7616(Algorithm::Sha256),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn rfc2617_example_vector() {
        // RFC 2617 §3.5; note the password there is "Circle Of Life" (capital O).
        let h = ha1(
            Algorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
        );
        assert_eq!(h, "939e7578ed9e3c518a452acee763bce9");
        let r = response(
            Algorithm::Md5,
            &h,
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            "GET",
            "/dir/index.html",
            Some(QopAuth {
                nc: 1,
                cnonce: "0a4f113b",
            }),
        );
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn sip_md5_independent_vectors() {
        // Computed independently with:
        //   printf 'alice:dialtone:secret' | md5sum
        //   printf 'REGISTER:sip:dialtone' | md5sum
        //   printf 'HA1:abc123:00000002:xyz:auth:HA2' | md5sum   (qop=auth)
        //   printf 'HA1:abc123:0000001a:xyz:auth:HA2' | md5sum   (nc is hex)
        //   printf 'HA1:abc123:HA2' | md5sum                     (RFC 2069)
        let h = ha1(Algorithm::Md5, "alice", "dialtone", "secret");
        assert_eq!(h, "c786f20034503132227791ae74c01d80");
        let q = QopAuth {
            nc: 2,
            cnonce: "xyz",
        };
        let r = response(
            Algorithm::Md5,
            &h,
            "abc123",
            "REGISTER",
            "sip:dialtone",
            Some(q),
        );
        assert_eq!(r, "3a851da4ebdfa35af35fb2daf97f30b1");
        let q = QopAuth {
            nc: 26,
            cnonce: "xyz",
        };
        let r = response(
            Algorithm::Md5,
            &h,
            "abc123",
            "REGISTER",
            "sip:dialtone",
            Some(q),
        );
        assert_eq!(r, "ddcf5d4eddc2cff9ba7cbcfb5a180628");
        let r = response(
            Algorithm::Md5,
            &h,
            "abc123",
            "REGISTER",
            "sip:dialtone",
            None,
        );
        assert_eq!(r, "bdb4b6ef82ac72253011ea5f0192e4d9");
    }

    #[test]
    fn algorithm_parse_and_display() {
        assert_eq!("md5".parse::<Algorithm>(), Ok(Algorithm::Md5));
        assert_eq!("sha-256".parse::<Algorithm>(), Ok(Algorithm::Sha256));
        assert_eq!("SHA256".parse::<Algorithm>(), Ok(Algorithm::Sha256));
        assert_eq!(
            "MD5-sess".parse::<Algorithm>(),
            Err(AuthError::UnknownAlgorithm)
        );
        assert_eq!(Algorithm::Sha256.to_string(), "SHA-256");
        assert_eq!(Algorithm::Md5.to_string(), "MD5");
    }

    #[test]
    fn ct_eq_works() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}

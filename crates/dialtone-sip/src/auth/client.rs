//! The client side of digest authentication: parsing a [`Challenge`] from a
//! WWW-Authenticate / Proxy-Authenticate value and [`answer`]ing a 401/407
//! with the Authorization / Proxy-Authorization header for the retried request.

use rand::RngCore;
use rsip::headers::UntypedHeader;
use rsip::Header;

use super::digest::{self, Algorithm, QopAuth};
use super::params::{self, quote};
use super::AuthError;

/// One Digest challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    /// MD5 when the challenge has no algorithm parameter.
    pub algorithm: Algorithm,
    /// The qop options offered, e.g. `["auth", "auth-int"]`; empty for an
    /// RFC 2069 challenge.
    pub qop: Vec<String>,
    pub stale: bool,
}

impl Challenge {
    /// Parses a WWW-Authenticate / Proxy-Authenticate value. Errors:
    /// `Malformed` (syntax, no realm/nonce), `UnsupportedScheme` (not Digest),
    /// `UnknownAlgorithm` (e.g. MD5-sess, SHA-512-256).
    pub fn parse(header_value: &str) -> Result<Challenge, AuthError> {
        let p = params::parse(header_value)?;
        if !p.is_digest() {
            return Err(AuthError::UnsupportedScheme);
        }
        let req = |name: &str| {
            p.get(name)
                .map(str::to_string)
                .ok_or_else(|| AuthError::Malformed(format!("missing {name}")))
        };
        Ok(Challenge {
            realm: req("realm")?,
            nonce: req("nonce")?,
            opaque: p.get("opaque").map(str::to_string),
            algorithm: match p.get("algorithm") {
                Some(a) => a.parse()?,
                None => Algorithm::Md5,
            },
            qop: p
                .get("qop")
                .map(|q| {
                    q.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            stale: p
                .get("stale")
                .is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }

    fn offers_auth(&self) -> bool {
        self.qop.iter().any(|q| q.eq_ignore_ascii_case("auth"))
    }

    /// We can answer with qop=auth, or with no qop if none is offered.
    fn usable(&self) -> bool {
        self.qop.is_empty() || self.offers_auth()
    }

    /// The credentials header value answering this challenge.
    pub(crate) fn credentials_value(
        &self,
        method: &str,
        uri: &str,
        username: &str,
        password: &str,
        nc: u32,
        cnonce: &str,
    ) -> String {
        let ha1 = digest::ha1(self.algorithm, username, &self.realm, password);
        let qop = self.offers_auth().then_some(QopAuth { nc, cnonce });
        let response = digest::response(self.algorithm, &ha1, &self.nonce, method, uri, qop);
        let mut v = format!(
            "Digest username={}, realm={}, nonce={}, uri={}, response=\"{response}\", algorithm={}",
            quote(username),
            quote(&self.realm),
            quote(&self.nonce),
            quote(uri),
            self.algorithm,
        );
        if let Some(q) = qop {
            v.push_str(&format!(
                ", qop=auth, nc={:08x}, cnonce={}",
                q.nc,
                quote(q.cnonce)
            ));
        }
        if let Some(o) = &self.opaque {
            v.push_str(&format!(", opaque={}", quote(o)));
        }
        v
    }
}

/// Answers a 401 (→ Authorization) or 407 (→ Proxy-Authorization) for a retry
/// of `method` to `uri`. Picks SHA-256 over MD5 (first of each otherwise),
/// skipping challenges that do not parse or that we cannot do (other schemes,
/// unknown algorithms, only `auth-int`). `nc` is the nonce-count for this
/// nonce: 1 on first use, incremented on each reuse. A random cnonce is used.
/// Errors: `NotAChallenge` (other status), `NoUsableChallenge`.
pub fn answer(
    resp: &rsip::Response,
    method: &rsip::Method,
    uri: &rsip::Uri,
    username: &str,
    password: &str,
    nc: u32,
) -> Result<Header, AuthError> {
    let proxy = match resp.status_code.code() {
        401 => false,
        407 => true,
        _ => return Err(AuthError::NotAChallenge),
    };
    let mut best: Option<Challenge> = None;
    for h in resp.headers.iter() {
        let value = match (proxy, h) {
            (false, Header::WwwAuthenticate(c)) => c.value(),
            (true, Header::ProxyAuthenticate(c)) => c.value(),
            _ => continue,
        };
        let Ok(c) = Challenge::parse(value) else {
            continue;
        };
        if !c.usable() {
            continue;
        }
        let better = match &best {
            None => true,
            Some(b) => rank(c.algorithm) > rank(b.algorithm),
        };
        if better {
            best = Some(c);
        }
    }
    let c = best.ok_or(AuthError::NoUsableChallenge)?;
    let mut cnonce = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut cnonce);
    let value = c.credentials_value(
        &method.to_string(),
        &uri.to_string(),
        username,
        password,
        nc,
        &hex::encode(cnonce),
    );
    Ok(if proxy {
        Header::ProxyAuthorization(value.into())
    } else {
        Header::Authorization(value.into())
    })
}

fn rank(a: Algorithm) -> u8 {
    match a {
        Algorithm::Md5 => 0,
        Algorithm::Sha256 => 1,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::*;
    use crate::auth::Credentials;

    #[test]
    fn parses_challenge() {
        let c = Challenge::parse(
            r#"Digest realm="trunk \"x\", inc", qop="auth, auth-int", algorithm=sha-256, nonce="n1", opaque="o", stale=TRUE"#,
        )
        .unwrap();
        assert_eq!(c.realm, r#"trunk "x", inc"#);
        assert_eq!(c.qop, vec!["auth", "auth-int"]);
        assert_eq!(c.algorithm, Algorithm::Sha256);
        assert_eq!(c.opaque.as_deref(), Some("o"));
        assert!(c.stale);
        let c = Challenge::parse(r#"Digest realm="r", nonce="n""#).unwrap();
        assert_eq!(c.algorithm, Algorithm::Md5);
        assert!(c.qop.is_empty() && !c.stale && c.opaque.is_none());
    }

    #[test]
    fn challenge_errors() {
        assert_eq!(
            Challenge::parse(r#"Basic realm="r""#),
            Err(AuthError::UnsupportedScheme)
        );
        assert_eq!(
            Challenge::parse(r#"Digest realm="r", nonce="n", algorithm=MD5-sess"#),
            Err(AuthError::UnknownAlgorithm)
        );
        assert!(matches!(
            Challenge::parse(r#"Digest realm="r""#),
            Err(AuthError::Malformed(_))
        ));
    }

    #[test]
    fn rfc7616_authorization_header() {
        // The RFC 7616 §3.9.1 exchange, through the header we write and the
        // server-side parser.
        let c = Challenge::parse(
            r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#,
        )
        .unwrap();
        let v = c.credentials_value(
            "GET",
            "/dir/index.html",
            "Mufasa",
            "Circle of Life",
            1,
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        );
        let cr = Credentials::parse(&v).unwrap();
        assert_eq!(
            cr.response,
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
        assert_eq!(cr.nc, Some(1));
        assert_eq!(cr.qop.as_deref(), Some("auth"));
        assert!(v.contains("nc=00000001"));
        let v = c.credentials_value("GET", "/", "u", "p", 26, "cn");
        assert!(v.contains("nc=0000001a"), "{v}");
        assert_eq!(Credentials::parse(&v).unwrap().nc, Some(26));
        assert_eq!(cr.opaque, c.opaque);
    }

    #[test]
    fn rfc2069_answer_has_no_qop() {
        let c = Challenge::parse(r#"Digest realm="testrealm@host.com", nonce="abc""#).unwrap();
        let v = c.credentials_value("GET", "/", "u", "p", 1, "cn");
        let cr = Credentials::parse(&v).unwrap();
        assert!(cr.qop.is_none() && cr.nc.is_none() && cr.cnonce.is_none());
        let ha1 = digest::ha1(Algorithm::Md5, "u", "testrealm@host.com", "p");
        let want = digest::response(Algorithm::Md5, &ha1, "abc", "GET", "/", None);
        assert_eq!(cr.response, want);
    }
}

//! The server side of digest authentication: [`DigestServer`] builds 401/407
//! challenges, extracts [`Credentials`] from requests, and verifies them
//! against a stored HA1, including nonce expiry and nonce-count replay checks.
//! Nonces are stateless (see `nonce`); the only state is the highest nc
//! accepted per nonce, dropped by [`DigestServer::purge`] once nonces expire.

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use rsip::headers::UntypedHeader;
use rsip::Header;
use std::time::{Duration, SystemTime};

use super::digest::{self, ct_eq, Algorithm, QopAuth};
use super::nonce::{unix_secs, Clock, NonceKey};
use super::params::{self, quote, AuthParams};
use super::{AuthError, ChallengeKind};

/// Server settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestConfig {
    pub realm: String,
    /// How long a nonce is accepted (whole seconds count). Default 300 s.
    pub nonce_ttl: Duration,
    /// Offered in this order, one challenge each. Default `[Sha256, Md5]`
    /// (RFC 7616 §3.7 / RFC 8760: strongest first; MD5 for older UAs).
    /// An empty list means the default.
    pub algorithms: Vec<Algorithm>,
}

impl DigestConfig {
    pub fn new(realm: impl Into<String>) -> Self {
        DigestConfig {
            realm: realm.into(),
            ..Default::default()
        }
    }
}

impl Default for DigestConfig {
    fn default() -> Self {
        DigestConfig {
            realm: String::new(),
            nonce_ttl: Duration::from_secs(300),
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
        }
    }
}

/// Digest credentials from an Authorization / Proxy-Authorization header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    /// The digest-uri exactly as the client wrote it (it is hashed verbatim).
    pub uri: String,
    pub response: String,
    /// MD5 when the header has no algorithm parameter (RFC 2617 default).
    pub algorithm: Algorithm,
    pub qop: Option<String>,
    pub nc: Option<u32>,
    pub cnonce: Option<String>,
    pub opaque: Option<String>,
}

impl Credentials {
    /// Parses a credentials header value (`Digest username="..", ...`).
    /// Errors: `Malformed` (syntax, missing field, bad nc), `UnsupportedScheme`,
    /// `UnknownAlgorithm`.
    pub fn parse(header_value: &str) -> Result<Credentials, AuthError> {
        Self::from_params(&params::parse(header_value)?)
    }

    fn from_params(p: &AuthParams) -> Result<Credentials, AuthError> {
        if !p.is_digest() {
            return Err(AuthError::UnsupportedScheme);
        }
        let req = |name: &str| {
            p.get(name)
                .map(str::to_string)
                .ok_or_else(|| AuthError::Malformed(format!("missing {name}")))
        };
        let algorithm = match p.get("algorithm") {
            Some(a) => a.parse()?,
            None => Algorithm::Md5,
        };
        let nc = p.get("nc").map(parse_nc).transpose()?;
        let creds = Credentials {
            username: req("username")?,
            realm: req("realm")?,
            nonce: req("nonce")?,
            uri: req("uri")?,
            response: req("response")?,
            algorithm,
            qop: p.get("qop").map(str::to_string),
            nc,
            cnonce: p.get("cnonce").map(str::to_string),
            opaque: p.get("opaque").map(str::to_string),
        };
        if creds.qop.is_some() && (creds.nc.is_none() || creds.cnonce.is_none()) {
            return Err(AuthError::Malformed("qop without nc/cnonce".into()));
        }
        Ok(creds)
    }
}

// nc-value = 8LHEX. Exactly eight digits, since the client hashed the string it
// sent and we hash the canonical `{:08x}` form.
fn parse_nc(s: &str) -> Result<u32, AuthError> {
    let bad = || AuthError::Malformed(format!("bad nc {s:?}"));
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    u32::from_str_radix(s, 16).map_err(|_| bad())
}

/// Highest nonce-count accepted for one nonce, and when that nonce was issued
/// (so `purge` can tell when it expired without re-decoding it).
struct Seen {
    nc: u32,
    issued: u64,
}

/// Issues challenges and verifies digest credentials. `Send + Sync`; share it
/// through an `Arc`.
pub struct DigestServer {
    cfg: DigestConfig,
    key: NonceKey,
    clock: Clock,
    seen: DashMap<String, Seen, foldhash::fast::RandomState>,
}

impl DigestServer {
    /// A server with a fresh random nonce secret (nonces do not survive a
    /// restart: old ones get `BadNonce` and the client is re-challenged).
    pub fn new(cfg: DigestConfig) -> Self {
        Self::with_clock(cfg, SystemTime::now)
    }

    /// A server whose nonces every server built from the same `secret`
    /// accepts (several nodes behind one load balancer: the answer to one
    /// node's challenge may reach another). Replayed nonce counts are only
    /// caught per node.
    pub fn with_shared_secret(cfg: DigestConfig, secret: &[u8]) -> Self {
        let mut server = Self::new(cfg);
        server.key = NonceKey::from_secret(secret);
        server
    }

    /// As [`new`](Self::new) but reading time from `clock` (tests age nonces with it).
    pub fn with_clock(
        mut cfg: DigestConfig,
        clock: impl Fn() -> SystemTime + Send + Sync + 'static,
    ) -> Self {
        let mut algs = Vec::new();
        for a in cfg.algorithms.drain(..) {
            if !algs.contains(&a) {
                algs.push(a);
            }
        }
        cfg.algorithms = if algs.is_empty() {
            DigestConfig::default().algorithms
        } else {
            algs
        };
        DigestServer {
            cfg,
            key: NonceKey::random(),
            clock: Box::new(clock),
            seen: DashMap::default(),
        }
    }

    pub fn config(&self) -> &DigestConfig {
        &self.cfg
    }

    fn now(&self) -> u64 {
        unix_secs((self.clock)())
    }

    fn is_stale(&self, issued: u64, now: u64) -> bool {
        let ttl = self.cfg.nonce_ttl.as_secs();
        // The second test catches a clock stepped far backwards.
        now.saturating_sub(issued) > ttl || issued > now.saturating_add(ttl)
    }

    /// One header per configured algorithm, each with its own nonce, for a
    /// 401 (`Www`: WWW-Authenticate) or 407 (`Proxy`: Proxy-Authenticate):
    /// `Digest realm="..", qop="auth", algorithm=SHA-256, nonce="..", opaque="..", stale=false`.
    pub fn challenge(&self, kind: ChallengeKind, stale: bool) -> Vec<Header> {
        let now = self.now();
        self.cfg
            .algorithms
            .iter()
            .map(|alg| {
                let nonce = self.key.mint(now);
                let value = format!(
                    "Digest realm={}, qop=\"auth\", algorithm={alg}, nonce=\"{nonce}\", opaque=\"{}\", stale={stale}",
                    quote(&self.cfg.realm),
                    self.key.opaque(&nonce),
                );
                match kind {
                    ChallengeKind::Www => Header::WwwAuthenticate(value.into()),
                    ChallengeKind::Proxy => Header::ProxyAuthenticate(value.into()),
                }
            })
            .collect()
    }

    /// The Digest credentials for our realm in `req` (Authorization for
    /// `Www`, Proxy-Authorization for `Proxy`; headers for other realms or
    /// other schemes are skipped, since proxies on the path may add their own).
    ///
    /// `None`: nothing for us → challenge. `Some(Err(e))`: credentials are
    /// unusable; answer 400 if `e.is_bad_request()` (`Malformed`, `UriMismatch`:
    /// digest-uri ≠ Request-URI), otherwise (`UnknownAlgorithm`) challenge.
    pub fn credentials(
        &self,
        req: &rsip::Request,
        kind: ChallengeKind,
    ) -> Option<Result<Credentials, AuthError>> {
        let mut first_err = None;
        for h in req.headers.iter() {
            let value = match (kind, h) {
                (ChallengeKind::Www, Header::Authorization(a)) => a.value(),
                (ChallengeKind::Proxy, Header::ProxyAuthorization(a)) => a.value(),
                _ => continue,
            };
            let parsed = params::parse(value).and_then(|p| {
                if !p.is_digest() || p.get("realm").is_some_and(|r| r != self.cfg.realm) {
                    return Ok(None);
                }
                Credentials::from_params(&p).map(Some)
            });
            match parsed {
                Ok(Some(c)) if uri_matches(&c.uri, &req.uri) => return Some(Ok(c)),
                Ok(Some(_)) => return Some(Err(AuthError::UriMismatch)),
                Ok(None) => {}
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        first_err.map(Err)
    }

    /// Checks `creds` given the user's stored HA1 (hex) for `creds.algorithm`.
    /// In order: realm, algorithm offered, qop=auth (RFC 2069 no-qop answers
    /// are refused: without nc a captured answer could be replayed for the
    /// nonce's lifetime), nonce authentic, opaque, response hash, nonce
    /// expiry (`Stale`, only reported once the response proved the password),
    /// nonce-count strictly increasing (`Replay`).
    pub fn verify(
        &self,
        creds: &Credentials,
        method: &rsip::Method,
        ha1: &str,
    ) -> Result<(), AuthError> {
        if creds.realm != self.cfg.realm {
            return Err(AuthError::WrongRealm);
        }
        if !self.cfg.algorithms.contains(&creds.algorithm) {
            return Err(AuthError::UnknownAlgorithm);
        }
        let (nc, cnonce) = match creds.qop.as_deref() {
            None => return Err(AuthError::QopRequired),
            Some(q) if q.eq_ignore_ascii_case("auth") => match (creds.nc, &creds.cnonce) {
                (Some(nc), Some(c)) if nc > 0 => (nc, c.as_str()),
                _ => return Err(AuthError::Malformed("bad nc/cnonce".into())),
            },
            Some(q) => return Err(AuthError::UnsupportedQop(q.to_string())),
        };
        let issued = self.key.verify(&creds.nonce)?;
        let opaque = self.key.opaque(&creds.nonce);
        if !creds
            .opaque
            .as_deref()
            .is_some_and(|o| ct_eq(o.as_bytes(), opaque.as_bytes()))
        {
            return Err(AuthError::OpaqueMismatch);
        }
        let expected = digest::response(
            creds.algorithm,
            &ha1.trim().to_ascii_lowercase(),
            &creds.nonce,
            &method.to_string(),
            &creds.uri,
            Some(QopAuth { nc, cnonce }),
        );
        let got = creds.response.to_ascii_lowercase();
        if !ct_eq(expected.as_bytes(), got.as_bytes()) {
            return Err(AuthError::BadResponse);
        }
        if self.is_stale(issued, self.now()) {
            return Err(AuthError::Stale);
        }
        // The entry lock makes check-and-update atomic against a concurrent
        // verify of the same nonce.
        match self.seen.entry(creds.nonce.clone()) {
            Entry::Occupied(mut e) => {
                if nc <= e.get().nc {
                    return Err(AuthError::Replay);
                }
                e.get_mut().nc = nc;
            }
            Entry::Vacant(e) => {
                e.insert(Seen { nc, issued });
            }
        }
        Ok(())
    }

    /// Drops nonce-count state for expired nonces. Call periodically (e.g.
    /// every TTL). Entries are only created by successful verifications, so
    /// the table holds at most the nonces used in the last TTL.
    pub fn purge(&self) {
        let now = self.now();
        self.seen.retain(|_, s| !self.is_stale(s.issued, now));
    }

    #[cfg(test)]
    pub(crate) fn tracked_nonces(&self) -> usize {
        self.seen.len()
    }
}

/// digest-uri must name the Request-URI. Compared as strings; if they differ
/// only because rsip re-serialized the Request-URI (parameter spacing, scheme
/// case), the digest-uri run through the same serializer must match.
fn uri_matches(digest_uri: &str, req_uri: &rsip::Uri) -> bool {
    let canon = req_uri.to_string();
    digest_uri == canon || rsip::Uri::try_from(digest_uri).is_ok_and(|u| u.to_string() == canon)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::*;

    const OK: &str = r#"Digest username="bob", realm="r", nonce="n", uri="sip:r", response="ab", qop=auth, nc=0000001A, cnonce="c""#;

    #[test]
    fn parses_credentials() {
        let c = Credentials::parse(OK).unwrap();
        assert_eq!(c.username, "bob");
        assert_eq!(c.algorithm, Algorithm::Md5, "MD5 is the default");
        assert_eq!(c.nc, Some(26), "nc is hex");
        assert_eq!(c.opaque, None);
    }

    #[test]
    fn credential_errors() {
        let malformed = |s: &str| {
            assert!(
                matches!(Credentials::parse(s), Err(AuthError::Malformed(_))),
                "accepted {s:?}"
            )
        };
        for field in ["username", "realm", "nonce", "uri", "response"] {
            let at = OK.find(&format!("{field}=")).unwrap();
            let end = OK[at..].find(", ").unwrap() + at + 2;
            malformed(&format!("{}{}", &OK[..at], &OK[end..]));
        }
        malformed(&OK.replace("nc=0000001A", "nc=1a"));
        malformed(&OK.replace("nc=0000001A", "nc=0000001g"));
        malformed(&OK.replace("nc=0000001A", "nc=+0000001"));
        malformed(&OK.replace(", cnonce=\"c\"", ""));
        malformed(&OK.replace(", nc=0000001A", ""));
        assert_eq!(
            Credentials::parse(&OK.replace("Digest", "Basic")),
            Err(AuthError::UnsupportedScheme)
        );
        assert_eq!(
            Credentials::parse(&format!("{OK}, algorithm=SHA-512-256")),
            Err(AuthError::UnknownAlgorithm)
        );
    }
}

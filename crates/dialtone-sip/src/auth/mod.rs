//! HTTP Digest authentication for SIP (RFC 3261 §22, RFC 7616; MD5 and
//! SHA-256 with `qop=auth`). [`DigestServer`] issues challenges and checks
//! credentials (registrar, INVITE authentication); [`answer`] lets dialtone
//! respond to a trunk's 401/407. Submodules: `params` (the `Digest k=v` syntax),
//! `digest` (hash arithmetic), `nonce` (stateless HMAC-signed nonces),
//! `server`, `client`; `tests` and `fuzz_tests` exercise them end to end.
//!
//! Server flow:
//! 1. `credentials(req, kind)`: `None` → send 401/407 with `challenge(kind, false)`;
//!    `Some(Err(e))` → if `e.is_bad_request()` send 400, else challenge;
//! 2. look the user up, get the HA1 for `creds.algorithm`;
//! 3. `verify(&creds, method, ha1)`: `Err(Stale)` → challenge with `stale=true`
//!    (not a failed attempt), other errors → challenge again (and count it).

mod client;
mod digest;
#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod fuzz_tests;
mod nonce;
mod params;
mod server;
#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests;

pub use client::{answer, Challenge};
pub use digest::{ha1, Algorithm};
pub use server::{Credentials, DigestConfig, DigestServer};

/// Which header pair a challenge uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChallengeKind {
    /// 401 with WWW-Authenticate, answered with Authorization (registrar, UAS).
    Www,
    /// 407 with Proxy-Authenticate, answered with Proxy-Authorization (proxy).
    Proxy,
}

/// Why authentication failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The header does not follow the digest syntax or lacks a required field.
    #[error("malformed digest header: {0}")]
    Malformed(String),
    /// Not a `Digest` header (e.g. `Basic`).
    #[error("unsupported auth scheme")]
    UnsupportedScheme,
    /// Credentials are for a realm other than ours.
    #[error("wrong realm")]
    WrongRealm,
    /// Algorithm not implemented, or not one this server offered.
    #[error("unknown or unoffered algorithm")]
    UnknownAlgorithm,
    /// The credentials carry no qop (RFC 2069 style); we always offer
    /// `qop=auth` and require it, because without nc there is no replay defence.
    #[error("qop required")]
    QopRequired,
    /// A qop other than `auth` (we do not offer `auth-int`).
    #[error("unsupported qop {0}")]
    UnsupportedQop(String),
    /// The nonce was not issued by this server (forged, altered, or from
    /// before a restart).
    #[error("bad nonce")]
    BadNonce,
    /// Our nonce, correct response, but past its lifetime: re-challenge with
    /// `stale=true`; not a failed attempt.
    #[error("stale nonce")]
    Stale,
    /// The opaque does not belong to the nonce.
    #[error("opaque mismatch")]
    OpaqueMismatch,
    /// digest-uri differs from the Request-URI (RFC 2617 §3.2.2.5: answer 400).
    #[error("digest uri does not match request uri")]
    UriMismatch,
    /// The response hash is wrong (wrong password, usually).
    #[error("bad response")]
    BadResponse,
    /// nonce-count not above the last one accepted for this nonce.
    #[error("replayed nonce count")]
    Replay,
    /// `answer` was given a response that is not a 401 or 407.
    #[error("not a 401/407 response")]
    NotAChallenge,
    /// A 401/407 without any challenge we can answer (no Digest, only
    /// unsupported algorithms or qops).
    #[error("no usable challenge")]
    NoUsableChallenge,
}

impl AuthError {
    /// True if the request should get 400 Bad Request rather than a
    /// challenge: the credentials are syntactically broken or name a URI
    /// other than the Request-URI; re-challenging would not help.
    pub fn is_bad_request(&self) -> bool {
        matches!(self, AuthError::Malformed(_) | AuthError::UriMismatch)
    }
}

//! API-key authentication for dialtone's HTTP front ends (the MCP server
//! and the REST API): which key a request presents (`X-API-Key: KEY` or
//! `Authorization: Bearer KEY`), whether the store knows it and it is not
//! revoked, and two guards around that — a per-source-address token bucket
//! that answers 429 without looking once an address has failed too often
//! (successful requests never spend from it), and a throttle so a key's
//! `last_used_at` is written at most once a minute rather than on every
//! request.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, StatusCode};
use dialtone_store::Store;
use dialtone_switch::token_bucket::TokenBucket;

/// Failed authentications an address may make per [`FAILURE_WINDOW`].
pub const MAX_FAILURES: u32 = 10;
/// The window [`MAX_FAILURES`] refill over.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// A key's `last_used_at` is written at most this often.
const TOUCH_EVERY_SECS: i64 = 60;
/// The bucket map is pruned of refilled buckets past this many addresses,
/// so a scan from many addresses cannot grow it without bound.
const PRUNE_AT: usize = 4096;

/// The account a request authenticated as, by which key. The MCP
/// middleware puts it into the request's extensions for the handlers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authenticated {
    pub key_id: String,
    pub account_id: String,
}

/// Why a request was not let in.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing API key: send X-API-Key: KEY or Authorization: Bearer KEY")]
    Missing,
    #[error("invalid or revoked API key")]
    Invalid,
    #[error("too many failed authentications from this address; try again in a minute")]
    Limited,
    #[error("the key store is unavailable: {0}")]
    Unavailable(String),
}

impl AuthError {
    /// The HTTP status it is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::Missing | AuthError::Invalid => StatusCode::UNAUTHORIZED,
            AuthError::Limited => StatusCode::TOO_MANY_REQUESTS,
            AuthError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// The key a request presents: `X-API-Key` first, else an
/// `Authorization` header with the Bearer scheme (any case). Blank values
/// count as absent.
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get("x-api-key") {
        return v.to_str().ok().map(str::trim).filter(|k| !k.is_empty());
    }
    bearer(headers)
}

/// The token of an `Authorization: Bearer TOKEN` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A token bucket per source address that failures spend from.
pub struct FailureLimiter {
    burst: f64,
    refill_per_sec: f64,
    buckets: Mutex<HashMap<IpAddr, TokenBucket>>,
}

impl FailureLimiter {
    /// `failures` per `window`, refilled continuously.
    pub fn new(failures: u32, window: Duration) -> FailureLimiter {
        let burst = f64::from(failures.max(1));
        FailureLimiter {
            burst,
            refill_per_sec: burst / window.as_secs_f64().max(0.001),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `ip` may still try (it has a failure left to spend).
    pub fn allows(&self, ip: IpAddr, now: Instant) -> bool {
        let buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        buckets
            .get(&ip)
            .is_none_or(|b| b.level(self.refill_per_sec, self.burst, now) >= 1.0)
    }

    /// Spends one failure of `ip`'s.
    pub fn failed(&self, ip: IpAddr, now: Instant) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let bucket = buckets
            .entry(ip)
            .or_insert_with(|| TokenBucket::full(self.burst, now));
        // Out of failures already: nothing left to spend.
        let _ = bucket.take(self.refill_per_sec, self.burst, now);
        if buckets.len() > PRUNE_AT {
            let (rate, burst) = (self.refill_per_sec, self.burst);
            buckets.retain(|_, b| !b.is_full(rate, burst, now));
        }
    }

    /// Addresses with a partly spent bucket (for tests and metrics).
    pub fn tracked(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// Remembers when each key's use was last written.
#[derive(Default)]
pub struct TouchThrottle {
    last: Mutex<HashMap<String, i64>>,
}

impl TouchThrottle {
    /// True (and noted) when key `id`'s use should be written at `now`.
    pub fn due(&self, id: &str, now_secs: i64) -> bool {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        match last.get(id) {
            Some(t) if now_secs - *t < TOUCH_EVERY_SECS => false,
            _ => {
                last.insert(id.to_string(), now_secs);
                true
            }
        }
    }
}

/// Checks API keys against the store, with the failure limiter and the
/// touch throttle. One is shared by the MCP server and the REST API, so
/// failures on either count together.
pub struct KeyAuth {
    store: Store,
    limiter: FailureLimiter,
    touches: TouchThrottle,
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl KeyAuth {
    pub fn new(store: Store) -> KeyAuth {
        KeyAuth::with_limit(store, MAX_FAILURES, FAILURE_WINDOW)
    }

    pub fn with_limit(store: Store, failures: u32, window: Duration) -> KeyAuth {
        KeyAuth {
            store,
            limiter: FailureLimiter::new(failures, window),
            touches: TouchThrottle::default(),
        }
    }

    /// The key the headers present, checked; every failure is counted.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        peer: Option<SocketAddr>,
    ) -> Result<Authenticated, AuthError> {
        self.admit(peer)?;
        match presented_key(headers) {
            Some(key) => self.verify(key, peer).await,
            None => Err(self.failed(peer, AuthError::Missing)),
        }
    }

    /// Err(Limited) when `peer` has used up its failures: it is refused
    /// without looking at what it sent.
    pub fn admit(&self, peer: Option<SocketAddr>) -> Result<(), AuthError> {
        match peer {
            Some(p) if !self.limiter.allows(p.ip(), Instant::now()) => Err(AuthError::Limited),
            _ => Ok(()),
        }
    }

    /// Checks `key` (not counting a missing one: the caller decides).
    pub async fn verify(
        &self,
        key: &str,
        peer: Option<SocketAddr>,
    ) -> Result<Authenticated, AuthError> {
        match self.store.api_keys().verify(key).await {
            Ok(Some(k)) => {
                self.touch(&k.id);
                Ok(Authenticated {
                    key_id: k.id,
                    account_id: k.account_id,
                })
            }
            Ok(None) => Err(self.failed(peer, AuthError::Invalid)),
            Err(e) => {
                tracing::error!(error = %e, "API key check failed: store unavailable");
                Err(AuthError::Unavailable(e.to_string()))
            }
        }
    }

    /// Logs and counts a failed authentication from `peer`, and returns
    /// `err` for the caller to answer with.
    pub fn failed(&self, peer: Option<SocketAddr>, err: AuthError) -> AuthError {
        let source = peer.map_or_else(|| "unknown".to_string(), |p| p.to_string());
        tracing::warn!(%source, reason = %err, "HTTP authentication failed");
        if let Some(p) = peer {
            self.limiter.failed(p.ip(), Instant::now());
        }
        err
    }

    /// Records the key's use in the background, at most once a minute.
    fn touch(&self, id: &str) {
        let now = now_secs();
        if !self.touches.due(id, now) {
            return;
        }
        let store = self.store.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            if let Err(e) = store.api_keys().touch(&id, now).await {
                tracing::debug!(error = %e, key = %id, "could not record API key use");
            }
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn keys_come_from_x_api_key_or_bearer() {
        assert_eq!(presented_key(&headers(&[("x-api-key", "k1")])), Some("k1"));
        assert_eq!(
            presented_key(&headers(&[("authorization", "Bearer k2")])),
            Some("k2")
        );
        assert_eq!(
            presented_key(&headers(&[("authorization", "bearer   k3 ")])),
            Some("k3")
        );
        // X-API-Key wins when both are sent.
        assert_eq!(
            presented_key(&headers(&[
                ("x-api-key", "a"),
                ("authorization", "Bearer b")
            ])),
            Some("a")
        );
        assert_eq!(
            presented_key(&headers(&[("authorization", "Basic xyz")])),
            None
        );
        assert_eq!(
            presented_key(&headers(&[("authorization", "Bearer ")])),
            None
        );
        assert_eq!(presented_key(&headers(&[("x-api-key", "  ")])), None);
        assert_eq!(presented_key(&headers(&[])), None);
    }

    #[test]
    fn ten_failures_a_minute_then_refused_until_refilled() {
        let limiter = FailureLimiter::new(10, Duration::from_secs(60));
        let ip: IpAddr = "127.0.0.9".parse().unwrap();
        let other: IpAddr = "::1".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..10 {
            assert!(limiter.allows(ip, t0));
            limiter.failed(ip, t0);
        }
        assert!(!limiter.allows(ip, t0));
        // Another address is not affected.
        assert!(limiter.allows(other, t0));
        // One failure's worth refills in 6 s.
        assert!(!limiter.allows(ip, t0 + Duration::from_secs(5)));
        assert!(limiter.allows(ip, t0 + Duration::from_secs(6)));
        limiter.failed(ip, t0 + Duration::from_secs(6));
        assert!(!limiter.allows(ip, t0 + Duration::from_secs(6)));
        // A full minute refills the whole bucket, and no more.
        let later = t0 + Duration::from_secs(600);
        for _ in 0..10 {
            assert!(limiter.allows(ip, later));
            limiter.failed(ip, later);
        }
        assert!(!limiter.allows(ip, later));
    }

    #[test]
    fn the_bucket_map_is_pruned_of_refilled_addresses() {
        let limiter = FailureLimiter::new(10, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..PRUNE_AT as u32 {
            limiter.failed(IpAddr::from(i.to_be_bytes()), t0);
        }
        assert_eq!(limiter.tracked(), PRUNE_AT);
        limiter.failed("127.0.0.1".parse().unwrap(), t0 + Duration::from_secs(60));
        assert_eq!(limiter.tracked(), 1);
    }

    #[test]
    fn a_key_is_touched_at_most_once_a_minute() {
        let t = TouchThrottle::default();
        assert!(t.due("k", 1000));
        assert!(!t.due("k", 1001));
        assert!(!t.due("k", 1059));
        assert!(t.due("other", 1059));
        assert!(t.due("k", 1060));
        assert!(!t.due("k", 1100));
    }

    #[test]
    fn errors_map_to_statuses() {
        assert_eq!(AuthError::Missing.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(AuthError::Invalid.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(AuthError::Limited.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            AuthError::Unavailable("x".into()).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}

//! Digest authentication of requests against the users in the store, with
//! failed attempts counted per source address: after `max_failures`
//! failures within `window`, that address is banned for `ban_for` (see
//! [`abuse::bans`](crate::abuse::bans)); its requests are answered 403, or
//! not at all.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use dialtone_sip::auth::{AuthError, ChallengeKind, DigestServer};
use dialtone_store::{Store, User};
use rsip::Request;

use crate::abuse::{BanConfig, Bans};

/// What to do with an address over its failure limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lockout {
    /// Answer 403 Forbidden.
    Forbidden,
    /// Send nothing: a scanner learns nothing and spends its timers.
    Silence,
}

#[derive(Clone, Debug)]
pub struct GuardConfig {
    pub max_failures: u32,
    pub window: Duration,
    /// How long a source that reached `max_failures` stays banned.
    pub ban_for: Duration,
    pub lockout: Lockout,
}

/// The verdict on one request.
pub enum Verdict {
    /// Authenticated as this user.
    Authenticated(User),
    /// No (usable) credentials, or a stale nonce: send this challenge.
    Challenge { stale: bool },
    /// Wrong credentials: counted; challenge again.
    Failed,
    /// Malformed Authorization header.
    Malformed(String),
    /// The source is locked out.
    Locked(Lockout),
    /// The store failed; answer 500 and do not count it against the peer.
    StoreError(String),
}

/// Authenticates requests and keeps the per-address failure counts.
pub struct AuthGuard {
    digest: Arc<DigestServer>,
    store: Store,
    cfg: GuardConfig,
    bans: Arc<Bans>,
}

impl AuthGuard {
    pub fn new(digest: Arc<DigestServer>, store: Store, cfg: GuardConfig) -> Self {
        let bans = Arc::new(Bans::new(BanConfig {
            max_failures: cfg.max_failures,
            window: cfg.window,
            ban_for: cfg.ban_for,
        }));
        AuthGuard {
            digest,
            store,
            cfg,
            bans,
        }
    }

    /// The ban list this guard feeds (the request gate reads it too).
    pub fn bans(&self) -> &Arc<Bans> {
        &self.bans
    }

    pub fn lockout(&self) -> Lockout {
        self.cfg.lockout
    }

    pub fn digest(&self) -> &DigestServer {
        &self.digest
    }

    fn record_failure(&self, ip: IpAddr) {
        self.bans.failed(ip);
    }

    /// Checks the request's credentials (`kind` says which header).
    pub async fn check(&self, req: &Request, kind: ChallengeKind, source: IpAddr) -> Verdict {
        self.check_with(req, kind, source, false).await
    }

    /// [`check`](Self::check) for a REGISTER: the user's HA1 comes from the
    /// registrar's user cache (`Users::get_cached`) when the switch keeps
    /// one. Calls read the user afresh: its limits and policies apply at once.
    pub async fn check_register(&self, req: &Request, source: IpAddr) -> Verdict {
        self.check_with(req, ChallengeKind::Www, source, true).await
    }

    async fn check_with(
        &self,
        req: &Request,
        kind: ChallengeKind,
        source: IpAddr,
        cached: bool,
    ) -> Verdict {
        if self.bans.is_banned(source) {
            return Verdict::Locked(self.cfg.lockout);
        }
        let creds = match self.digest.credentials(req, kind) {
            None => return Verdict::Challenge { stale: false },
            // Malformed syntax or a digest-uri that is not the Request-URI
            // is a bad request (RFC 2617 §3.2.2.5); anything else (an
            // algorithm we did not offer, say) gets a fresh challenge.
            Some(Err(e)) if e.is_bad_request() => return Verdict::Malformed(e.to_string()),
            Some(Err(_)) => return Verdict::Challenge { stale: false },
            Some(Ok(c)) => c,
        };
        let users = self.store.users();
        let user = if cached {
            users.get_cached(&creds.username).await
        } else {
            users.get(&creds.username).await
        };
        let user = match user {
            Ok(Some(u)) => u,
            Ok(None) => {
                // Same answer as a wrong password: do not reveal which users exist.
                self.record_failure(source);
                return Verdict::Failed;
            }
            Err(e) => return Verdict::StoreError(e.to_string()),
        };
        let ha1 = match creds.algorithm {
            dialtone_sip::auth::Algorithm::Md5 => &user.ha1_md5,
            dialtone_sip::auth::Algorithm::Sha256 => &user.ha1_sha256,
        };
        match self.digest.verify(&creds, &req.method, ha1) {
            Ok(()) => Verdict::Authenticated(user),
            Err(AuthError::Stale) => Verdict::Challenge { stale: true },
            Err(e) => {
                tracing::info!(%source, user = %creds.username, error = %e, "authentication failed");
                self.record_failure(source);
                Verdict::Failed
            }
        }
    }

    /// Forgets stale nonces (the bans are purged with the gate).
    pub fn purge(&self) {
        self.digest.purge();
    }
}

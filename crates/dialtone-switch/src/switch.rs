//! [`Switch`]: reads what the transaction layer delivers and routes each
//! request by method after the UAS checks of RFC 3261 §8.2 (scheme,
//! Require, Content-Type, …). Every request is handled in its own task so
//! one slow database call never holds up the others.

use std::sync::Arc;
use std::time::Duration;

use dialtone_sip::auth::{Algorithm, DigestConfig, DigestServer};
use dialtone_sip::message::uas_check::{uas_check, UasPolicy};
use dialtone_sip::transaction::{ServerTransaction, TransactionLayer, TuEvent};
use dialtone_store::Store;
use rsip::{Header, Method};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::auth_guard::{AuthGuard, GuardConfig};
use crate::registrar::{Registrar, RegistrarConfig};

/// The methods dialtone handles today; grows with each capability.
pub const ALLOW: &str = "REGISTER, OPTIONS, ACK, CANCEL";
/// What we accept as a body.
pub const ACCEPT: &str = "application/sdp";
/// Option tags we support (none yet: timer, replaces and 100rel come with calls).
pub const SUPPORTED: &str = "";

#[derive(Clone, Debug)]
pub struct SwitchConfig {
    /// The SIP domain, also the digest realm.
    pub domain: String,
    pub user_agent: String,
    pub registrar: RegistrarConfig,
    pub nonce_ttl: Duration,
    /// Digest algorithms offered, most preferred first (one challenge each).
    pub algorithms: Vec<Algorithm>,
    pub guard: GuardConfig,
    pub purge_interval: Duration,
}

pub struct Switch {
    cfg: SwitchConfig,
    layer: TransactionLayer,
    store: Store,
    registrar: Registrar,
    guard: AuthGuard,
    policy: UasPolicy,
}

impl Switch {
    pub fn new(cfg: SwitchConfig, layer: TransactionLayer, store: Store) -> Arc<Self> {
        let digest = Arc::new(DigestServer::new(DigestConfig {
            realm: cfg.domain.clone(),
            nonce_ttl: cfg.nonce_ttl,
            algorithms: cfg.algorithms.clone(),
        }));
        Arc::new(Switch {
            registrar: Registrar::new(cfg.registrar.clone(), store.clone()),
            guard: AuthGuard::new(digest, store.clone(), cfg.guard.clone()),
            policy: UasPolicy::default(),
            cfg,
            layer,
            store,
        })
    }

    pub fn layer(&self) -> &TransactionLayer {
        &self.layer
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Serves until `shutdown` turns true, then waits (bounded) for the
    /// requests in hand to finish.
    pub async fn run(
        self: Arc<Self>,
        mut events: mpsc::Receiver<TuEvent>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut tasks = JoinSet::new();
        let mut purge = tokio::time::interval(self.cfg.purge_interval);
        loop {
            tokio::select! {
                ev = events.recv() => match ev {
                    Some(TuEvent::Request(tx)) => {
                        let me = self.clone();
                        tasks.spawn(async move { me.on_request(tx).await });
                    }
                    Some(TuEvent::Ack { .. }) | Some(TuEvent::Response { .. }) => {}
                    None => break,
                },
                _ = purge.tick() => {
                    match self.registrar.purge().await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(bindings = n, "purged expired registrations"),
                        Err(e) => tracing::warn!(error = %e, "purge of expired registrations failed"),
                    }
                    self.guard.purge();
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                _ = shutdown.changed() => break,
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
    }

    async fn on_request(&self, tx: ServerTransaction) {
        if let Err(rej) = uas_check(tx.request(), &self.policy) {
            let mut r = tx.response(rej.status);
            r.headers.extend(rej.headers);
            let _ = tx.respond(r);
            return;
        }
        match tx.request().method {
            Method::Register => self.registrar.handle(tx, &self.guard).await,
            Method::Options => {
                let _ = tx.respond(self.options(&tx));
            }
            // No dialogs exist yet: anything in-dialog is for no one.
            Method::Bye
            | Method::Info
            | Method::Update
            | Method::Refer
            | Method::Notify
            | Method::PRack => {
                let _ = tx.reply(481);
            }
            _ => {
                let mut r = tx.response(405);
                r.headers
                    .push(Header::Allow(rsip::headers::Allow::from(ALLOW)));
                let _ = tx.respond(r);
            }
        }
    }

    /// §11.2: 200 with what we can do.
    fn options(&self, tx: &ServerTransaction) -> rsip::Response {
        let mut r = tx.response(200);
        r.headers
            .push(Header::Allow(rsip::headers::Allow::from(ALLOW)));
        r.headers
            .push(Header::Accept(rsip::headers::Accept::from(ACCEPT)));
        r.headers
            .push(Header::Supported(rsip::headers::Supported::from(SUPPORTED)));
        r.headers.push(Header::Server(rsip::headers::Server::from(
            self.cfg.user_agent.as_str(),
        )));
        r
    }
}

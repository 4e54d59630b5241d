//! [`Switch`]: takes what the transaction layer delivers and routes each
//! request by method after the UAS checks of RFC 3261 §8.2 (scheme,
//! Require, Content-Type, …). What memory answers is answered on the
//! receiving task; a REGISTER or a new INVITE gets a task of its own, so
//! one slow database call never holds up the others. A new INVITE is
//! accepted from a trunk (by source address) or from a user who
//! authenticates (407), routed, and handed to a new call; in-dialog
//! requests, stray ACKs and 2xx retransmissions go to the call whose leg
//! they name.

use std::sync::Arc;
use std::time::Duration;

use dialtone_sip::auth::{Algorithm, DigestConfig, DigestServer};
use dialtone_sip::message::uas_check::{uas_check, UasPolicy};
use dialtone_sip::transaction::{ServerTransaction, TransactionLayer, TuEvent};
use dialtone_store::Store;
use rsip::{Header, Method};
use tokio::sync::watch;
use tokio_util::task::TaskTracker;

use std::sync::atomic::AtomicU64;

use dialtone_media::MediaEngine;
use dialtone_sip::auth::ChallengeKind;
use dialtone_sip::transaction::{tag_of, Party as TagParty};
use rsip::headers::UntypedHeader;

use crate::abuse::{AbuseConfig, Shield, Trusted};
use crate::auth_guard::{AuthGuard, GuardConfig, Lockout, Verdict};
use crate::call::{self, AiStats, CallConfig, CallContext, CallEvent, CallRegistry, Origin};
use crate::cluster::{Cluster, ClusterConfig};
use crate::control::CallControl;
use crate::registrar::{Registrar, RegistrarConfig};
use crate::router::{self, Caller, RouteError};
use crate::tools::ToolRegistry;
use crate::with_reason;

/// The methods dialtone handles today; grows with each capability.
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, REFER, NOTIFY, INFO, UPDATE";
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
    /// Per-source request rates, scanners, trusted networks.
    pub abuse: AbuseConfig,
    pub purge_interval: Duration,
    pub calls: CallConfig,
    /// SIP proxies in front (see [`crate::front_proxy`]).
    pub front_proxies: Trusted,
    pub cluster: ClusterConfig,
}

pub struct Switch {
    cfg: SwitchConfig,
    calls: Arc<CallContext>,
    layer: TransactionLayer,
    store: Store,
    registrar: Registrar,
    guard: AuthGuard,
    shield: Arc<Shield>,
    policy: UasPolicy,
    /// The tasks of requests in hand (REGISTERs, new INVITEs).
    requests: TaskTracker,
}

impl Switch {
    pub fn new(
        cfg: SwitchConfig,
        layer: TransactionLayer,
        store: Store,
        media: MediaEngine,
    ) -> Arc<Self> {
        let digest_cfg = DigestConfig {
            realm: cfg.domain.clone(),
            nonce_ttl: cfg.nonce_ttl,
            algorithms: cfg.algorithms.clone(),
        };
        let digest = Arc::new(if cfg.cluster.enabled {
            // A challenge from this node may be answered to another.
            DigestServer::with_shared_secret(digest_cfg, cfg.cluster.secret.as_bytes())
        } else {
            DigestServer::new(digest_cfg)
        });
        let guard = AuthGuard::new(digest, store.clone(), cfg.guard.clone());
        let calls = Arc::new(CallContext {
            layer: layer.clone(),
            store: store.clone(),
            registry: CallRegistry::default(),
            media,
            cfg: cfg.calls.clone(),
            total: AtomicU64::new(0),
            tools: Arc::new(ToolRegistry::with_globals()),
            ai: Arc::new(AiStats::default()),
            uplinks: Arc::default(),
            probes: Arc::default(),
            admission: Arc::default(),
            cluster: Arc::new(Cluster::new(cfg.cluster.clone())),
            records: Arc::default(),
            bans: guard.bans().clone(),
        });
        let shield = Arc::new(Shield::new(
            cfg.abuse.clone(),
            guard.bans().clone(),
            guard.lockout(),
        ));
        let malformed = shield.clone();
        if !layer.set_gate(shield.clone())
            || !layer
                .transports()
                .set_reject_gate(Arc::new(move |ip| malformed.may_answer_malformed(ip)))
        {
            tracing::warn!("a request gate was already set; abuse limits not applied");
        }
        Arc::new(Switch {
            calls,
            registrar: Registrar::new(cfg.registrar.clone(), store.clone()),
            guard,
            shield,
            policy: UasPolicy::default(),
            requests: TaskTracker::new(),
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

    /// Live calls, media and counters, for health and metrics.
    pub fn calls(&self) -> &CallContext {
        &self.calls
    }

    /// The abuse limits (bans, request rates), for metrics.
    pub fn shield(&self) -> &Shield {
        &self.shield
    }

    /// Trunks' inbound addresses are trusted by the request rates: read
    /// them again (at start and on every purge tick).
    async fn refresh_trunks(&self) -> Result<(), dialtone_store::StoreError> {
        let trunks = self.store.trunks().list().await?;
        self.shield
            .set_trunks(trunks.into_iter().flat_map(|t| t.inbound_ips).collect());
        Ok(())
    }

    /// The facade every front end acts on calls through.
    pub fn control(&self) -> CallControl {
        CallControl::new(self.calls.clone())
    }

    /// Runs the switch's background tasks until `shutdown` turns true,
    /// then waits (bounded) for the requests in hand to finish. Requests
    /// arrive through [`on_event`](Self::on_event).
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let uplinks = tokio::spawn(crate::uplink::run(
            self.layer.clone(),
            self.store.clone(),
            self.cfg.user_agent.clone(),
            self.calls.uplinks.clone(),
            shutdown.clone(),
        ));
        let mut scheduler = tokio::spawn(crate::scheduler::run(
            self.control(),
            self.cfg.calls.node.clone(),
            shutdown.clone(),
        ));
        let heartbeat = tokio::spawn(crate::cluster::run_heartbeat(
            self.calls.cluster.clone(),
            self.store.clone(),
            shutdown.clone(),
        ));
        let store = self.store.clone();
        let bindings = tokio::spawn({
            let shutdown = shutdown.clone();
            async move { store.run_write_behind(shutdown).await }
        });
        let records = tokio::spawn(crate::call::outbox::run(
            self.calls.records.clone(),
            self.store.clone(),
            shutdown.clone(),
        ));
        if let Err(e) = self.refresh_trunks().await {
            tracing::warn!(error = %e, "trunk addresses not read for the abuse limits");
        }
        // Housekeeping on its own task: with the database away its queries
        // wait for the pool, and the requests must not wait behind them.
        let housekeeping = tokio::spawn(self.clone().housekeeping(shutdown.clone()));
        let _ = shutdown.wait_for(|stop| *stop).await;
        // New REGISTERs and INVITEs are refused from here (503).
        self.requests.close();
        uplinks.abort();
        heartbeat.abort();
        housekeeping.abort();
        // No new scheduled calls once shutting down (it finishes those it
        // is placing).
        let _ = tokio::time::timeout(Duration::from_secs(3), &mut scheduler).await;
        scheduler.abort();
        // End every call (BYE, CANCEL, 503) and let each write its record.
        for call in self.calls.registry.all() {
            call.send(CallEvent::Shutdown);
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            self.requests.wait().await;
            while !self.calls.registry.is_empty() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        // The records of calls that ended while the database was away, and
        // the registrations not yet written.
        records.abort();
        bindings.abort();
        self.store.flush_write_behind(Duration::from_secs(2)).await;
        self.calls
            .records
            .flush(&self.store, Duration::from_secs(2))
            .await;
    }

    /// Every `purge_interval`: expired bindings, auth and abuse state, and
    /// the trunks' addresses for the abuse limits.
    async fn housekeeping(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut purge = tokio::time::interval(self.cfg.purge_interval);
        purge.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut outage =
            crate::outage::Outage::new("housekeeping (expired bindings, trunk addresses)");
        loop {
            tokio::select! {
                _ = purge.tick() => {}
                _ = shutdown.changed() => return,
            }
            let purged = self.registrar.purge().await;
            if let Ok(n @ 1..) = purged {
                tracing::info!(bindings = n, "purged expired registrations");
            }
            self.guard.purge();
            self.shield.purge();
            let refreshed = self.refresh_trunks().await;
            // One database: one outage to log (its first error, its end).
            outage.note(&purged.and(refreshed));
        }
    }

    /// The caller's address: the packet's source, or the one a front proxy
    /// relayed for.
    fn caller_ip(&self, tx: &ServerTransaction) -> std::net::IpAddr {
        crate::front_proxy::caller_ip(tx.request(), tx.source().addr.ip(), &self.cfg.front_proxies)
    }

    fn call_of(&self, headers: &rsip::Headers) -> Option<crate::call::CallHandle> {
        let call_id = headers.iter().find_map(|h| match h {
            Header::CallId(c) => Some(c.value().to_string()),
            _ => None,
        })?;
        self.calls.registry.by_sip_call_id(&call_id)
    }

    /// What the transaction layer hands the TU, on the task that received
    /// it: requests answered from memory (UAS checks, in-dialog requests
    /// for a call's actor, OPTIONS) are dealt with here; a REGISTER or a
    /// new INVITE, which may wait for the database, gets a task of its own.
    pub fn on_event(self: &Arc<Self>, ev: TuEvent) {
        match ev {
            TuEvent::Request(tx) => {
                let Some(tx) = self.answer_at_once(tx) else {
                    return;
                };
                if self.requests.is_closed() {
                    // Shutting down: another node (or this one, restarted)
                    // takes it (RFC 3261 §21.5.4).
                    let mut r = with_reason(tx.response(503), "Shutting Down");
                    r.headers
                        .push(Header::RetryAfter(rsip::headers::RetryAfter::from("5")));
                    let _ = tx.respond(r);
                } else {
                    self.start_request(tx);
                }
            }
            // A retransmitted ACK for a 2xx after its transaction ended:
            // nothing left to do.
            TuEvent::Ack { .. } => {}
            TuEvent::Response { response, .. } => {
                if let Some(call) = self.call_of(&response.headers) {
                    call.send(CallEvent::StrayResponse(response));
                }
            }
        }
    }

    /// Runs [`on_request`](Self::on_request) on this task as far as it
    /// goes without waiting: a REGISTER whose user and bindings are in
    /// memory is answered here, with no hand-off to another task. What has
    /// to wait (the database, a new call's media) goes on as a task of
    /// its own from where it stopped.
    fn start_request(self: &Arc<Self>, tx: ServerTransaction) {
        use std::future::Future;
        use std::task::{Context, Waker};
        let me = self.clone();
        let mut request = Box::pin(async move { me.on_request(tx).await });
        // A future may be polled with another waker each time: the task's
        // takes over from this one, which no one is woken through.
        let mut now = Context::from_waker(Waker::noop());
        if request.as_mut().poll(&mut now).is_pending() {
            self.requests.spawn(request);
        }
    }

    /// Answers `tx` when that needs nothing but memory; gives it back when
    /// it needs [`on_request`](Self::on_request).
    fn answer_at_once(&self, tx: ServerTransaction) -> Option<ServerTransaction> {
        if let Err(rej) = uas_check(tx.request(), &self.policy) {
            let mut r = tx.response(rej.status);
            r.headers.extend(rej.headers);
            let _ = tx.respond(r);
            return None;
        }
        let in_dialog = tag_of(&tx.request().headers, TagParty::To).is_some_and(|t| !t.is_empty());
        if in_dialog {
            match self.call_of(&tx.request().headers) {
                Some(call) => {
                    call.send(CallEvent::Request(Box::new(tx)));
                }
                None => {
                    let _ = tx.reply(481);
                }
            }
            return None;
        }
        match tx.request().method {
            Method::Register | Method::Invite => return Some(tx),
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
        None
    }

    /// A REGISTER or a new INVITE, on a task of its own.
    async fn on_request(&self, tx: ServerTransaction) {
        match tx.request().method {
            Method::Register => {
                let source = self.caller_ip(&tx);
                self.registrar.handle(tx, &self.guard, source).await
            }
            _ => self.on_invite(tx).await,
        }
    }

    /// A new call: who is calling (a trunk by source address, else a user
    /// by digest), where it goes, and a Call actor to carry it.
    async fn on_invite(&self, tx: ServerTransaction) {
        let source = self.caller_ip(&tx);
        let matches = |t: &dialtone_store::Trunk| router::trunk_matches(t, source);
        let trunk = match self.store.trunks().find_cached(matches).await {
            Ok(trunk) => trunk,
            Err(e) => {
                tracing::error!(error = %e, "trunk lookup failed");
                let _ = tx.respond(with_reason(tx.response(500), "Database Unavailable"));
                return;
            }
        };
        let mut account = None;
        let srtp;
        let caller = match trunk {
            Some(t) => {
                srtp = t.srtp;
                Caller::Trunk(t)
            }
            None => match self
                .guard
                .check(tx.request(), ChallengeKind::Proxy, source)
                .await
            {
                Verdict::Authenticated(u) => {
                    account = Some(u.account_id.clone());
                    srtp = u.srtp;
                    Caller::User(u.username)
                }
                Verdict::Challenge { stale } => return self.challenge_proxy(&tx, stale),
                Verdict::Failed => return self.challenge_proxy(&tx, false),
                Verdict::Malformed(_) => {
                    let _ = tx.respond(with_reason(
                        tx.response(400),
                        "Malformed Proxy-Authorization",
                    ));
                    return;
                }
                Verdict::Locked(Lockout::Forbidden) => {
                    let _ = tx.respond(with_reason(tx.response(403), "Too Many Failed Attempts"));
                    return;
                }
                Verdict::Locked(Lockout::Silence) => return,
                Verdict::StoreError(_) => {
                    let _ = tx.respond(with_reason(tx.response(500), "Database Unavailable"));
                    return;
                }
            },
        };
        let dialled = tx
            .request()
            .uri
            .auth
            .as_ref()
            .map(|a| a.user.clone())
            .unwrap_or_default();
        let routed = match router::route(&self.store, &caller, &dialled).await {
            Ok(t) => t,
            Err(RouteError::NotFound(_)) => {
                let _ = tx.reply(404);
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, dialled, "routing failed");
                let _ = tx.respond(with_reason(tx.response(500), "Routing Failed"));
                return;
            }
        };
        let label = match &caller {
            Caller::Trunk(t) => format!("trunk:{}", t.name),
            Caller::User(u) => format!("user:{u}"),
            // Only trunks and users place calls over SIP.
            other => format!("{other:?}"),
        };
        let origin = Origin {
            label,
            from_trunk: matches!(caller, Caller::Trunk(_)),
            caller,
            account_id: account,
            srtp,
        };
        call::start_inbound(self.calls.clone(), tx, origin, routed).await;
    }

    fn challenge_proxy(&self, tx: &ServerTransaction, stale: bool) {
        let mut r = tx.response(407);
        for h in self.guard.digest().challenge(ChallengeKind::Proxy, stale) {
            r.headers.push(h);
        }
        let _ = tx.respond(r);
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

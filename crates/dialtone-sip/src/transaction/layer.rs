//! [`TransactionLayer`]: the tables of live transactions, the matching of
//! every incoming message to one of them (or to the TU when none matches),
//! and the creation of new server and client transactions.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use dashmap::DashMap;
use rsip::{Header, Method, Request, Response, SipMessage};
use tokio::sync::{mpsc, oneshot};

use super::client_invite::ClientInvite;
use super::client_non_invite::ClientNonInvite;
use super::driver::{self, Inline, Machine};
use super::gate::{Admit, RequestGate};
use super::handles::{ClientTransaction, ServerInputs, ServerTransaction};
use super::key::{AckKey, ClientKey, ServerKey, MAGIC_COOKIE};
use super::linger::{self, Echo, Linger, Slot};
use super::server_invite::ServerInvite;
use super::server_non_invite::ServerNonInvite;
use super::timer::TimerConfig;
use super::tu::ToTu;
use super::{ClientInput, ServerInput, TransactionError};
use crate::message::reply;
use crate::transport::{via, Incoming, Peer, Protocol, Transports};

/// What the layer hands the TU.
pub enum TuEvent {
    /// A new request (never an ACK or a CANCEL: CANCELs are answered here
    /// and reach the INVITE's TU as [`ServerEvent::Cancelled`](super::ServerEvent)).
    Request(ServerTransaction),
    /// An ACK that matched no transaction: a late retransmission of the ACK
    /// for a 2xx, or an ACK for a 2xx the TU sent statelessly.
    Ack { request: Request, from: Peer },
    /// A response that matched no client transaction: a 2xx retransmitted
    /// after the INVITE transaction ended (the TU re-sends its ACK).
    Response { response: Response, from: Peer },
}

type Hasher = foldhash::fast::RandomState;

/// Where [`TransactionLayer::serve`] hands what the TU must see.
pub type TuHandler = Arc<dyn Fn(TuEvent) + Send + Sync>;

/// The transaction layer; cheap to clone.
#[derive(Clone)]
pub struct TransactionLayer {
    inner: Arc<Inner>,
}

struct Inner {
    transports: Transports,
    config: TimerConfig,
    // foldhash, seeded per table: SipHash was 5 % of a REGISTER's CPU.
    server: DashMap<ServerKey, Slot<ServerInput>, Hasher>,
    client: DashMap<ClientKey, Slot<ClientInput>, Hasher>,
    /// The sweeper of lingering entries, started with the first.
    sweeper: OnceLock<()>,
    /// INVITE server transactions waiting for the ACK of their 2xx.
    acks: DashMap<AckKey, mpsc::UnboundedSender<ServerInput>, Hasher>,
    /// The TU's admission policy for new requests, once set.
    gate: OnceLock<Arc<dyn RequestGate>>,
}

impl TransactionLayer {
    pub fn new(transports: Transports, config: TimerConfig) -> Self {
        TransactionLayer {
            inner: Arc::new(Inner {
                transports,
                config,
                server: DashMap::default(),
                client: DashMap::default(),
                acks: DashMap::default(),
                gate: OnceLock::new(),
                sweeper: OnceLock::new(),
            }),
        }
    }

    /// Starts a task that feeds every message from `incoming` through the
    /// layer, and returns the channel the TU reads.
    pub fn start(&self, mut incoming: mpsc::Receiver<Incoming>) -> mpsc::Receiver<TuEvent> {
        let (tx, rx) = mpsc::channel(4096);
        let layer = self.clone();
        tokio::spawn(async move {
            while let Some(msg) = incoming.recv().await {
                if let Some(ev) = layer.on_incoming(msg) {
                    if tx.send(ev).await.is_err() {
                        break;
                    }
                }
            }
        });
        rx
    }

    /// Matches every message the transports receive on the task that
    /// received it, and hands `tu` what it must see there, with no task
    /// or channel in between (the switch spawns a task per request).
    /// Set once, before traffic flows: false when the transports already
    /// have a receiver.
    pub fn serve(&self, tu: TuHandler) -> bool {
        // Weak: the transports live inside the layer, and must not keep
        // it alive through their receiver.
        let layer = Arc::downgrade(&self.inner);
        self.inner
            .transports
            .set_receiver(Arc::new(move |incoming: Incoming| {
                let Some(inner) = layer.upgrade() else {
                    return;
                };
                if let Some(ev) = (TransactionLayer { inner }).on_incoming(incoming) {
                    tu(ev);
                }
            }))
    }

    /// Puts `gate` in front of every new request (see [`RequestGate`]).
    /// Set once, before traffic flows: false when a gate was already set.
    pub fn set_gate(&self, gate: Arc<dyn RequestGate>) -> bool {
        self.inner.gate.set(gate).is_ok()
    }

    pub fn transports(&self) -> &Transports {
        &self.inner.transports
    }

    pub fn config(&self) -> TimerConfig {
        self.inner.config
    }

    /// Live (server, client) transactions, for metrics and leak checks
    /// (those waiting out their last timer included).
    pub fn counts(&self) -> (usize, usize) {
        let now = tokio::time::Instant::now();
        (
            linger::live_count(&self.inner.server, now),
            linger::live_count(&self.inner.client, now),
        )
    }

    /// Entries in the two tables, ended ones not yet swept included.
    #[cfg(test)]
    pub(crate) fn table_sizes(&self) -> (usize, usize) {
        (self.inner.server.len(), self.inner.client.len())
    }

    /// Matches one incoming message; returns what the TU must see, if anything.
    pub fn on_incoming(&self, incoming: Incoming) -> Option<TuEvent> {
        match incoming.msg {
            SipMessage::Request(req) => self.on_request(req, incoming.from, incoming.local),
            SipMessage::Response(resp) => self.on_response(resp, incoming.from),
        }
    }

    fn on_request(&self, req: Request, from: Peer, local: SocketAddr) -> Option<TuEvent> {
        let Some(key) = ServerKey::for_request(&req) else {
            tracing::debug!(%from, "request without a usable Via dropped");
            return None;
        };
        if let Some(slot) = linger::find(&self.inner.server, &key) {
            match &*slot {
                Slot::Live(tx) => {
                    let _ = tx.send(ServerInput::Request(Box::new(req)));
                }
                Slot::Inline(machine) => {
                    // Not under the table's lock: the machine takes it
                    // when it ends.
                    let machine = machine.clone();
                    drop(slot);
                    machine.input(ServerInput::Request(Box::new(req)));
                }
                // An ACK is absorbed; a retransmitted request gets the
                // final response again, if it had one to resend.
                Slot::Lingering { echo, peer, .. } => {
                    if req.method != Method::Ack {
                        self.echo(echo, *peer);
                    }
                }
            }
            return None;
        }
        if req.method != Method::Ack && !self.admitted(&req, &from) {
            return None;
        }
        match req.method {
            Method::Ack => {
                if let Some(tx) = AckKey::for_request(&req)
                    .and_then(|k| self.inner.acks.get(&k).map(|t| t.clone()))
                {
                    let _ = tx.send(ServerInput::Ack2xx(Box::new(req)));
                    return None;
                }
                Some(TuEvent::Ack { request: req, from })
            }
            Method::Cancel => {
                self.on_cancel(req, key, from, local);
                None
            }
            _ => Some(TuEvent::Request(self.new_server(req, key, from, local))),
        }
    }

    /// Asks the gate about a new request; answers a rejected one
    /// statelessly (RFC 3261 §8.2.6, with a To tag of our own).
    fn admitted(&self, req: &Request, from: &Peer) -> bool {
        let Some(gate) = self.inner.gate.get() else {
            return true;
        };
        match gate.admit(req, from) {
            Admit::Pass => true,
            Admit::Drop => false,
            Admit::Reject {
                status,
                reason,
                retry_after,
            } => {
                let mut resp = reply::response_to(req, status, Some(reason));
                reply::with_to_tag(&mut resp, &reply::new_tag());
                if let Some(secs) = retry_after {
                    resp.headers
                        .push(Header::RetryAfter(rsip::headers::RetryAfter::from(
                            secs.to_string(),
                        )));
                }
                let to = via::response_target(req, from);
                let transports = self.inner.transports.clone();
                tokio::spawn(async move {
                    let _ = transports.send(&SipMessage::Response(resp), &to).await;
                });
                false
            }
        }
    }

    /// §9.2: a CANCEL is answered 200 when it matches a pending INVITE
    /// (which is told), 481 when it matches nothing.
    fn on_cancel(&self, req: Request, key: ServerKey, from: Peer, local: SocketAddr) {
        // Some(None): the INVITE was answered already and only lingers; the
        // CANCEL is answered 200 and has no effect (§9.2).
        let invite = ServerKey::for_request_as(&req, &Method::Invite).and_then(|k| {
            let slot = linger::find(&self.inner.server, &k)?;
            Some(match &*slot {
                Slot::Live(tx) => Some(tx.clone()),
                Slot::Inline(_) | Slot::Lingering { .. } => None,
            })
        });
        let tx = self.new_server(req, key, from, local);
        // The 200 is queued before the INVITE hears of the CANCEL, so it
        // leaves before the INVITE's 487.
        let _ = tx.reply(if invite.is_some() { 200 } else { 481 });
        if let Some(Some(invite)) = invite {
            let _ = invite.send(ServerInput::Cancel);
        }
    }

    /// Carries out a lingering transaction's [`Echo`] for a retransmission.
    fn echo(&self, echo: &Echo, peer: Peer) {
        if let Echo::Resend(bytes) = echo {
            let bytes = bytes.clone();
            let transports = self.inner.transports.clone();
            tokio::spawn(async move {
                if let Err(e) = transports.send_bytes(bytes, &peer).await {
                    tracing::debug!(%peer, error = %e, "retransmission not sent");
                }
            });
        }
    }

    fn new_server(
        &self,
        req: Request,
        key: ServerKey,
        from: Peer,
        local: SocketAddr,
    ) -> ServerTransaction {
        let reply_to = via::response_target(&req, &from);
        if req.method != Method::Invite && reply_to.protocol == Protocol::Udp {
            return self.new_inline_server(req, key, from, local, reply_to);
        }
        let (input_tx, input_rx) = mpsc::unbounded_channel();
        let (to_tu, event_rx) = ToTu::channel();
        self.inner
            .server
            .insert(key.clone(), Slot::Live(input_tx.clone()));
        let ack_key = if req.method == Method::Invite {
            AckKey::for_request(&req)
        } else {
            None
        };
        if let Some(k) = &ack_key {
            self.inner.acks.insert(k.clone(), input_tx.clone());
        }
        let inner = self.inner.clone();
        let mine = input_tx.clone();
        let done = move |linger: Option<Linger>| {
            if let Some(k) = ack_key {
                inner.acks.remove_if(&k, |_, v| v.same_channel(&mine));
            }
            Inner::finish(
                &inner,
                &inner.server,
                key,
                |v| v.is_live(&mine),
                linger,
                reply_to,
            );
        };
        let handle = ServerTransaction {
            to_tag: ServerTransaction::tag_of(&req),
            request: req.clone(),
            source: from,
            local,
            input: ServerInputs::Task(input_tx),
            events: Some(event_rx),
            to_tu: Some(to_tu.redirect()),
        };
        if req.method == Method::Invite {
            self.spawn(
                ServerInvite::new(req),
                input_rx,
                to_tu,
                reply_to,
                None,
                done,
            );
        } else {
            self.spawn(
                ServerNonInvite::new(),
                input_rx,
                to_tu,
                reply_to,
                None,
                done,
            );
        }
        handle
    }

    /// A non-INVITE server transaction over UDP: no task, the machine run
    /// by whoever brings it an input ([`Inline`]).
    fn new_inline_server(
        &self,
        req: Request,
        key: ServerKey,
        from: Peer,
        local: SocketAddr,
        reply_to: Peer,
    ) -> ServerTransaction {
        let machine = Arc::new_cyclic(|me: &std::sync::Weak<Inline<ServerNonInvite>>| {
            // Weak both ways: the table holds the machine.
            let (inner, me) = (Arc::downgrade(&self.inner), me.clone());
            let entry = key.clone();
            let done = move |linger: Option<Linger>| {
                let Some(inner) = inner.upgrade() else {
                    return;
                };
                let mine = |v: &Slot<ServerInput>| matches!(v, Slot::Inline(m) if std::ptr::eq(Arc::as_ptr(m), me.as_ptr()));
                Inner::finish(&inner, &inner.server, entry, mine, linger, reply_to);
            };
            Inline::new(
                ServerNonInvite::new(),
                self.inner.transports.clone(),
                reply_to,
                self.inner.config,
                Box::new(done),
            )
        });
        self.inner.server.insert(key, Slot::Inline(machine.clone()));
        ServerTransaction {
            to_tag: ServerTransaction::tag_of(&req),
            request: req,
            source: from,
            local,
            input: ServerInputs::Inline(machine),
            events: None,
            to_tu: None,
        }
    }

    fn on_response(&self, response: Response, from: Peer) -> Option<TuEvent> {
        let slot =
            ClientKey::for_response(&response).and_then(|k| linger::find(&self.inner.client, &k));
        let Some(slot) = slot else {
            return Some(TuEvent::Response { response, from });
        };
        let code = response.status_code.code();
        match &*slot {
            Slot::Live(tx) => {
                let _ = tx.send(ClientInput::Response(Box::new(response)));
                None
            }
            // Only server transactions run inline.
            Slot::Inline(_) => None,
            Slot::Lingering { echo, peer, .. } => match echo {
                Echo::PassToTu if (200..300).contains(&code) => {
                    Some(TuEvent::Response { response, from })
                }
                Echo::Resend(_) if code >= 300 => {
                    self.echo(echo, *peer);
                    None
                }
                _ => None,
            },
        }
    }

    /// Sends a request in a new client transaction, with our Via (a fresh
    /// branch, `rport`) on top.
    pub fn send_request(
        &self,
        req: Request,
        to: Peer,
    ) -> Result<ClientTransaction, TransactionError> {
        let req = self.with_our_via(req, &to)?;
        self.start_client(req, to)
    }

    /// Sends the ACK for a 2xx (§13.2.2.4): a transaction of its own that
    /// has no state, so it just gets our Via and goes.
    pub async fn send_ack(&self, ack: Request, to: Peer) -> Result<(), TransactionError> {
        let ack = self.with_our_via(ack, &to)?;
        self.send_stateless(ack, to).await
    }

    fn with_our_via(&self, mut req: Request, to: &Peer) -> Result<Request, TransactionError> {
        let local = self
            .inner
            .transports
            .local_for(to)
            .ok_or(TransactionError::NoTransport(*to))?;
        let via = format!(
            "SIP/2.0/{} {};branch={};rport",
            to.protocol.via_token(),
            local,
            reply::new_branch()
        );
        let mut headers = vec![Header::Via(rsip::headers::Via::from(via))];
        headers.extend(std::mem::take(&mut req.headers));
        req.headers = headers.into();
        Ok(req)
    }

    /// Sends a CANCEL for a pending INVITE (§9.1): same branch and peer.
    pub fn cancel(
        &self,
        invite: &ClientTransaction,
    ) -> Result<ClientTransaction, TransactionError> {
        self.cancel_request(invite.request(), invite.peer())
    }

    /// Sends a CANCEL for the INVITE `invite` (as sent, with our Via) to `peer`.
    pub fn cancel_request(
        &self,
        invite: &Request,
        peer: Peer,
    ) -> Result<ClientTransaction, TransactionError> {
        self.start_client(super::cancel_for(invite), peer)
    }

    /// Sends a message outside any transaction: the ACK for a 2xx (§13.2.2.4),
    /// or a 2xx retransmission by a UAS core.
    pub async fn send_stateless(
        &self,
        msg: impl Into<SipMessage>,
        to: Peer,
    ) -> Result<(), TransactionError> {
        self.inner
            .transports
            .send(&msg.into(), &to)
            .await
            .map_err(|e| TransactionError::Transport(e.to_string()))
    }

    fn start_client(&self, req: Request, to: Peer) -> Result<ClientTransaction, TransactionError> {
        let key = ClientKey::for_request(&req)
            .filter(|k| k.branch.starts_with(MAGIC_COOKIE))
            .ok_or(TransactionError::NoKey)?;
        let (input_tx, input_rx) = mpsc::unbounded_channel();
        let (to_tu, event_rx) = ToTu::channel();
        self.inner
            .client
            .insert(key.clone(), Slot::Live(input_tx.clone()));
        let inner = self.inner.clone();
        let done = move |linger: Option<Linger>| {
            Inner::finish(
                &inner,
                &inner.client,
                key,
                |v| v.is_live(&input_tx),
                linger,
                to,
            );
        };
        let (sent_tx, sent_rx) = oneshot::channel();
        let handle = ClientTransaction {
            request: req.clone(),
            peer: to,
            events: Some(event_rx),
            to_tu: to_tu.redirect(),
            sent: Some(sent_rx),
        };
        let started = Some(sent_tx);
        if req.method == Method::Invite {
            self.spawn(ClientInvite::new(req), input_rx, to_tu, to, started, done);
        } else {
            self.spawn(
                ClientNonInvite::new(req),
                input_rx,
                to_tu,
                to,
                started,
                done,
            );
        }
        Ok(handle)
    }

    fn spawn<M: Machine>(
        &self,
        machine: M,
        inputs: mpsc::UnboundedReceiver<M::Input>,
        events: ToTu<M::Event>,
        peer: Peer,
        started: Option<oneshot::Sender<()>>,
        done: impl FnOnce(Option<Linger>) + Send + 'static,
    ) {
        let transports = self.inner.transports.clone();
        let config = self.inner.config;
        tokio::spawn(driver::run(
            machine, inputs, events, transports, peer, config, started, done,
        ));
    }
}

impl Inner {
    /// Ends the transaction whose entry `mine` recognises: removes the
    /// entry, or, with a `linger` still to run, turns it into a lingering
    /// one until `linger.until`.
    fn finish<K, I>(
        this: &Arc<Inner>,
        table: &DashMap<K, Slot<I>, Hasher>,
        key: K,
        mine: impl Fn(&Slot<I>) -> bool,
        linger: Option<Linger>,
        peer: Peer,
    ) where
        K: Eq + std::hash::Hash,
    {
        let Some(linger) = linger.filter(|l| l.until > tokio::time::Instant::now()) else {
            table.remove_if(&key, |_, v| mine(v));
            return;
        };
        if let Some(mut slot) = table.get_mut(&key).filter(|slot| mine(slot)) {
            *slot = Slot::Lingering {
                echo: linger.echo,
                peer,
                until: linger.until,
            };
        }
        this.sweeper.get_or_init(|| {
            tokio::spawn(linger::sweep(Arc::downgrade(this), Inner::sweep));
        });
    }

    /// The sweeper's round: frees the entries whose timer has fired.
    fn sweep(&self, now: tokio::time::Instant) {
        linger::sweep_table(&self.server, now);
        linger::sweep_table(&self.client, now);
    }
}

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
use super::driver::{self, Machine};
use super::gate::{Admit, RequestGate};
use super::handles::{ClientTransaction, ServerTransaction};
use super::key::{AckKey, ClientKey, ServerKey, MAGIC_COOKIE};
use super::server_invite::ServerInvite;
use super::server_non_invite::ServerNonInvite;
use super::timer::TimerConfig;
use super::{ClientInput, ServerInput, TransactionError};
use crate::message::reply;
use crate::transport::{via, Incoming, Peer, Transports};

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

/// The transaction layer; cheap to clone.
#[derive(Clone)]
pub struct TransactionLayer {
    inner: Arc<Inner>,
}

struct Inner {
    transports: Transports,
    config: TimerConfig,
    server: DashMap<ServerKey, mpsc::UnboundedSender<ServerInput>>,
    client: DashMap<ClientKey, mpsc::UnboundedSender<ClientInput>>,
    /// INVITE server transactions waiting for the ACK of their 2xx.
    acks: DashMap<AckKey, mpsc::UnboundedSender<ServerInput>>,
    /// The TU's admission policy for new requests, once set.
    gate: OnceLock<Arc<dyn RequestGate>>,
}

impl TransactionLayer {
    pub fn new(transports: Transports, config: TimerConfig) -> Self {
        TransactionLayer {
            inner: Arc::new(Inner {
                transports,
                config,
                server: DashMap::new(),
                client: DashMap::new(),
                acks: DashMap::new(),
                gate: OnceLock::new(),
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

    /// Live (server, client) transactions, for metrics and leak checks.
    pub fn counts(&self) -> (usize, usize) {
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
        if let Some(tx) = self.inner.server.get(&key) {
            let _ = tx.send(ServerInput::Request(Box::new(req)));
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
        let invite = ServerKey::for_request_as(&req, &Method::Invite)
            .and_then(|k| self.inner.server.get(&k).map(|t| t.clone()));
        let tx = self.new_server(req, key, from, local);
        // The 200 is queued before the INVITE hears of the CANCEL, so it
        // leaves before the INVITE's 487.
        let _ = tx.reply(if invite.is_some() { 200 } else { 481 });
        if let Some(invite) = invite {
            let _ = invite.send(ServerInput::Cancel);
        }
    }

    fn new_server(
        &self,
        req: Request,
        key: ServerKey,
        from: Peer,
        local: SocketAddr,
    ) -> ServerTransaction {
        let (input_tx, input_rx) = mpsc::unbounded_channel();
        let (event_tx, event_rx) = mpsc::unbounded_channel();
        let reply_to = via::response_target(&req, &from);
        self.inner.server.insert(key.clone(), input_tx.clone());
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
        let done = move || {
            inner.server.remove_if(&key, |_, v| v.same_channel(&mine));
            if let Some(k) = ack_key {
                inner.acks.remove_if(&k, |_, v| v.same_channel(&mine));
            }
        };
        let handle = ServerTransaction {
            to_tag: ServerTransaction::tag_of(&req),
            request: req.clone(),
            source: from,
            local,
            input: input_tx,
            events: Some(event_rx),
        };
        if req.method == Method::Invite {
            self.spawn(
                ServerInvite::new(req),
                input_rx,
                event_tx,
                reply_to,
                None,
                done,
            );
        } else {
            self.spawn(
                ServerNonInvite::new(),
                input_rx,
                event_tx,
                reply_to,
                None,
                done,
            );
        }
        handle
    }

    fn on_response(&self, resp: Response, from: Peer) -> Option<TuEvent> {
        let tx = ClientKey::for_response(&resp)
            .and_then(|k| self.inner.client.get(&k).map(|t| t.clone()));
        match tx {
            Some(tx) => {
                let _ = tx.send(ClientInput::Response(Box::new(resp)));
                None
            }
            None => Some(TuEvent::Response {
                response: resp,
                from,
            }),
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
        let (event_tx, event_rx) = mpsc::unbounded_channel();
        self.inner.client.insert(key.clone(), input_tx.clone());
        let inner = self.inner.clone();
        let done = move || {
            inner
                .client
                .remove_if(&key, |_, v| v.same_channel(&input_tx));
        };
        let (sent_tx, sent_rx) = oneshot::channel();
        let handle = ClientTransaction {
            request: req.clone(),
            peer: to,
            events: event_rx,
            sent: Some(sent_rx),
        };
        let started = Some(sent_tx);
        if req.method == Method::Invite {
            self.spawn(
                ClientInvite::new(req),
                input_rx,
                event_tx,
                to,
                started,
                done,
            );
        } else {
            self.spawn(
                ClientNonInvite::new(req),
                input_rx,
                event_tx,
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
        events: mpsc::UnboundedSender<M::Event>,
        peer: Peer,
        started: Option<oneshot::Sender<()>>,
        done: impl FnOnce() + Send + 'static,
    ) {
        let transports = self.inner.transports.clone();
        let config = self.inner.config;
        tokio::spawn(driver::run(
            machine, inputs, events, transports, peer, config, started, done,
        ));
    }
}

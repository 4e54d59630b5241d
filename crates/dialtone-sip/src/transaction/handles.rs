//! The handles the TU holds: a [`ServerTransaction`] to answer a request
//! and hear of its CANCEL, ACK or failure, and a [`ClientTransaction`] to
//! read the responses to a request it sent.

use std::net::SocketAddr;
use std::sync::Arc;

use rsip::{Request, Response};
use tokio::sync::mpsc;

use super::driver::Inline;
use super::server_non_invite::ServerNonInvite;
use super::tu::{Forward, Redirect};
use super::{ClientEvent, ServerEvent, ServerInput, TransactionError};
use crate::message::reply;
use crate::transport::Peer;

/// A request delivered to the TU, to be answered through this handle.
pub struct ServerTransaction {
    pub(super) request: Request,
    pub(super) source: Peer,
    pub(super) local: SocketAddr,
    pub(super) input: ServerInputs,
    pub(super) events: Option<mpsc::UnboundedReceiver<ServerEvent>>,
    /// Where the transaction tells its events (none when it runs inline).
    pub(super) to_tu: Option<Redirect<ServerEvent>>,
    pub(super) to_tag: String,
}

/// Where a server transaction's inputs go: its task's channel, or the
/// machine itself for one that runs inline (see [`Inline`]).
pub(super) enum ServerInputs {
    Task(mpsc::UnboundedSender<ServerInput>),
    Inline(Arc<Inline<ServerNonInvite>>),
}

impl ServerInputs {
    pub(super) fn send(&self, input: ServerInput) -> Result<(), TransactionError> {
        let taken = match self {
            ServerInputs::Task(tx) => tx.send(input).is_ok(),
            ServerInputs::Inline(machine) => machine.input(input),
        };
        taken.then_some(()).ok_or(TransactionError::Terminated)
    }
}

impl ServerTransaction {
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// Where the request came from (after rport/received processing).
    pub fn source(&self) -> Peer {
        self.source
    }

    /// The local socket the request arrived on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The To tag this transaction puts on its responses: the request's own
    /// tag for an in-dialog request, a fresh one otherwise.
    pub fn to_tag(&self) -> &str {
        &self.to_tag
    }

    /// A response to this request (§8.2.6) with our To tag, to fill in and
    /// pass to [`respond`](Self::respond).
    pub fn response(&self, status: u16) -> Response {
        let mut r = reply::response_to(&self.request, status, None);
        if status > 100 {
            reply::with_to_tag(&mut r, &self.to_tag);
        }
        r
    }

    /// Sends a response through the transaction. A response without a To
    /// tag gets ours (except 100 Trying).
    pub fn respond(&self, mut resp: Response) -> Result<(), TransactionError> {
        if resp.status_code.code() > 100 {
            reply::with_to_tag(&mut resp, &self.to_tag);
        }
        self.input.send(ServerInput::Respond(Box::new(resp)))
    }

    /// Answers with a bare status.
    pub fn reply(&self, status: u16) -> Result<(), TransactionError> {
        self.respond(self.response(status))
    }

    /// Answers with a bare status and waits until the response has gone
    /// to the transport, for a TU that must not let a request of its own
    /// overtake it (the NOTIFY after a REFER's 202, RFC 3515 §2.4.4).
    pub async fn reply_sent(&self, status: u16) -> Result<(), TransactionError> {
        self.reply(status)?;
        let (sent, flushed) = tokio::sync::oneshot::channel();
        // A transaction that ends (or lingers) with this response stops
        // reading its inputs, but only after its driver has flushed it:
        // either way it has gone.
        if self.input.send(ServerInput::Sync(sent)).is_ok() {
            let _ = flushed.await;
        }
        Ok(())
    }

    /// The next event of this transaction (CANCEL, ACK, timeout); None once
    /// it has terminated.
    pub async fn next_event(&mut self) -> Option<ServerEvent> {
        match &mut self.events {
            Some(rx) => rx.recv().await,
            None => None,
        }
    }

    /// Passes this transaction's events (those waiting first) to
    /// `forward`, called on the transaction's task, while the owner keeps
    /// this handle to respond with; `next_event` then returns None.
    pub fn forward_events(&mut self, forward: impl FnMut(ServerEvent) + Send + 'static) {
        if let (Some(events), Some(to_tu)) = (self.events.take(), &self.to_tu) {
            to_tu.to(events, Box::new(forward) as Forward<_>);
        }
    }

    /// Our To tag for responses to `req`: its own tag in a dialog, else
    /// one derived from Call-ID, From tag and branch, so that a CANCEL
    /// (same branch) is answered with the same tag as its INVITE, as
    /// RFC 3261 §9.2 asks, without the two transactions sharing state.
    pub(super) fn tag_of(req: &Request) -> String {
        use std::hash::{BuildHasher, Hash, Hasher};
        use std::sync::OnceLock;
        if let Some(t) =
            super::key::tag_of(&req.headers, super::key::Party::To).filter(|t| !t.is_empty())
        {
            return t;
        }
        // Keyed per process, so tags cannot be predicted from outside.
        static KEY: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
        let mut h = KEY.get_or_init(Default::default).build_hasher();
        super::key::call_id(&req.headers).hash(&mut h);
        super::key::tag_of(&req.headers, super::key::Party::From).hash(&mut h);
        crate::transport::via::top_branch(&req.headers).hash(&mut h);
        format!("{:016x}", h.finish())
    }
}

/// A request sent by the TU, and the responses that come back.
pub struct ClientTransaction {
    pub(super) request: Request,
    pub(super) peer: Peer,
    pub(super) events: Option<mpsc::UnboundedReceiver<ClientEvent>>,
    pub(super) to_tu: Redirect<ClientEvent>,
    pub(super) sent: Option<tokio::sync::oneshot::Receiver<()>>,
}

impl ClientTransaction {
    /// Waits until the request has gone to the transport (or failed to),
    /// for a TU whose next request in the same dialog must not overtake
    /// it: a receiver rejects a lower CSeq than one it has seen with 500
    /// (RFC 3261 §12.2.2), as with a REFER's successive NOTIFYs.
    pub async fn sent(&mut self) {
        if let Some(sent) = self.sent.take() {
            let _ = sent.await;
        }
    }

    /// The request as sent (with our Via and branch).
    pub fn request(&self) -> &Request {
        &self.request
    }

    pub fn peer(&self) -> Peer {
        self.peer
    }

    /// The next response or failure; None once the transaction has ended
    /// (or its events are forwarded).
    pub async fn next_event(&mut self) -> Option<ClientEvent> {
        self.events.as_mut()?.recv().await
    }

    /// Passes this transaction's responses and failures (those waiting
    /// first) to `forward`, called on the transaction's task; the handle
    /// may then be dropped.
    pub fn forward_events(&mut self, forward: impl FnMut(ClientEvent) + Send + 'static) {
        if let Some(events) = self.events.take() {
            self.to_tu.to(events, Box::new(forward) as Forward<_>);
        }
    }

    /// Waits for the final response, skipping provisionals.
    pub async fn final_response(&mut self) -> Result<Response, TransactionError> {
        loop {
            match self.next_event().await {
                Some(ClientEvent::Provisional(_)) => continue,
                Some(ClientEvent::Final(r)) => return Ok(r),
                Some(ClientEvent::Timeout) => return Err(TransactionError::Timeout),
                Some(ClientEvent::TransportError(e)) => return Err(TransactionError::Transport(e)),
                None => return Err(TransactionError::Terminated),
            }
        }
    }
}

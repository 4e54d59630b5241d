//! The transaction layer, RFC 3261 §17. Incoming requests are matched to
//! server transactions (§17.2.3) and responses to client transactions
//! (§17.1.3), on the task that received them; each transaction is an
//! explicit state machine with the RFC's states and timers, run by a task
//! of its own while it has timers to run (`driver`), or with no task at all
//! when it has none (a non-INVITE server transaction over UDP, run by
//! whoever brings it an input). Once it only waits out its last timer it
//! lingers as an entry in the layer's table (`linger`). Retransmissions are
//! absorbed here; the transaction user (the switch) sees each request once,
//! through a [`ServerTransaction`] it answers, and sees responses to its
//! own requests through a [`ClientTransaction`].

mod build;
mod client_invite;
mod client_non_invite;
mod driver;
mod gate;
mod handles;
mod key;
mod layer;
mod linger;
mod server_invite;
mod server_non_invite;
mod timer;
mod tu;

#[cfg(test)]
mod tests;

pub use build::{ack_for_non2xx, cancel_for};
pub use client_invite::ClientInviteState;
pub use client_non_invite::ClientNonInviteState;
pub use gate::{Admit, RequestGate};
pub use handles::{ClientTransaction, ServerTransaction};
pub use key::{tag_of, AckKey, ClientKey, Party, ServerKey, MAGIC_COOKIE};
pub use layer::{TransactionLayer, TuEvent, TuHandler};
pub use server_invite::ServerInviteState;
pub use server_non_invite::ServerNonInviteState;
pub use timer::{Timer, TimerConfig};
pub use tu::Forward;

use rsip::{Request, Response};

/// What a server transaction tells its TU after the request was delivered.
#[derive(Debug)]
pub enum ServerEvent {
    /// A CANCEL matched this INVITE while it was pending (the CANCEL itself
    /// was answered 200 by the layer): the TU answers the INVITE with 487.
    Cancelled,
    /// The ACK for the 2xx this INVITE transaction sent.
    Ack(Box<Request>),
    /// Timer H (no ACK for a non-2xx) or Timer L (no ACK for a 2xx) fired.
    Timeout,
    /// The transport could not deliver a response (§17.2.4).
    TransportError(String),
}

/// What a client transaction tells its TU.
#[derive(Debug)]
pub enum ClientEvent {
    Provisional(Response),
    /// A final response. For an INVITE, every 2xx arrives here (forks,
    /// retransmissions) and the TU sends the ACK; non-2xx are ACKed by the
    /// transaction.
    Final(Response),
    /// Timer B or Timer F fired with no final response.
    Timeout,
    TransportError(String),
}

#[derive(Debug)]
pub(crate) enum ServerInput {
    /// The request again (a retransmission), or the ACK for a non-2xx.
    Request(Box<Request>),
    /// A response from the TU.
    Respond(Box<Response>),
    /// The ACK for a 2xx (a transaction of its own, matched by dialog).
    Ack2xx(Box<Request>),
    /// A CANCEL for this INVITE.
    Cancel,
    /// Answered once every response queued before it has gone to the
    /// transport (the driver flushes after each input).
    Sync(tokio::sync::oneshot::Sender<()>),
}

#[derive(Debug)]
pub(crate) enum ClientInput {
    Response(Box<Response>),
}

#[derive(Debug, thiserror::Error)]
pub enum TransactionError {
    #[error("the transaction has terminated")]
    Terminated,
    #[error("request has no usable Via/CSeq for a transaction key")]
    NoKey,
    #[error("no transport for {0}")]
    NoTransport(crate::transport::Peer),
    #[error("request timed out")]
    Timeout,
    #[error("transport error: {0}")]
    Transport(String),
}

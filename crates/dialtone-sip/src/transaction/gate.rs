//! The gate a new request passes before the layer spends a server
//! transaction on it: where a flood, a banned source or a scanner is turned
//! away (Kamailio runs pike and its ban tables at the same point, before
//! `t_newtran`). Retransmissions of live transactions, ACKs and responses
//! never meet the gate. The policy itself is the TU's: the layer only asks.

use rsip::Request;

use crate::transport::Peer;

/// What happens to a new request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    /// Handled as usual.
    Pass,
    /// Not answered at all: the sender learns nothing and spends its timers.
    Drop,
    /// Answered statelessly with `status` (and `Retry-After` when given),
    /// with no transaction kept.
    Reject {
        status: u16,
        reason: &'static str,
        retry_after: Option<u32>,
    },
}

/// Decides on each new request; called on the layer's receive path, so it
/// must not block.
pub trait RequestGate: Send + Sync + 'static {
    fn admit(&self, req: &Request, from: &Peer) -> Admit;
}

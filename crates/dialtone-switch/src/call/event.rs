//! What a Call actor reads from its one channel: commands, in-dialog
//! requests routed to it by the switch, the events of the transactions its
//! legs run, media events, its AI agent's events, and its own timers.

use dialtone_ai::agent::AgentEvent;
use dialtone_media::MediaEvent;
use dialtone_sip::transaction::{ClientEvent, ServerEvent, ServerTransaction};
use rsip::Response;
use tokio::sync::oneshot;

use super::command::{CallCommand, CommandResult};
pub use super::ids::LegId;
use super::leg::Leg;

/// Which leg a [`CallEvent::HandOver`] asks for.
pub enum Pick {
    Party(super::command::Party),
    /// The party talking to the leg of this dialog (Call-ID and its two
    /// tags, in either order): what a REFER's Replaces names.
    OtherThan {
        call_id: String,
        tags: (String, String),
    },
}

/// A connected leg moving from one call to another, with its RTP endpoint.
pub struct HandedLeg {
    pub leg: Leg,
    pub endpoint: dialtone_media::Endpoint,
}

/// Which of our requests a client transaction event belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pending {
    /// The INVITE that creates the leg.
    Invite,
    /// A re-INVITE or UPDATE relayed from the other party.
    Relay,
    /// A re-INVITE of our own (hold, resume).
    Own,
    Bye,
    Cancel,
    /// A NOTIFY reporting a REFER's progress.
    Notify,
    /// A session refresh (RFC 4028) of our own.
    Refresh,
}

pub enum CallEvent {
    Command(CallCommand, oneshot::Sender<CommandResult>),
    /// A request inside one of the call's dialogs.
    Request(Box<ServerTransaction>),
    /// A 2xx retransmitted after the INVITE transaction ended: ACK it again.
    StrayResponse(Response),
    Server {
        leg: LegId,
        event: ServerEvent,
    },
    Client {
        leg: LegId,
        pending: Pending,
        event: ClientEvent,
    },
    Media(MediaEvent),
    /// From the call's AI agent (`generation` tells a stale agent's events
    /// from the current one's).
    Agent {
        generation: u64,
        event: AgentEvent,
    },
    RingTimeout {
        attempt: u64,
    },
    /// A test call's tone and echo check are over.
    ProbeDone(super::probe::ProbeReport),
    /// Another call bridges one of our parties into itself (an attended
    /// transfer): give it the leg that `party` names, release the rest of
    /// this call, and end.
    HandOver {
        pick: Pick,
        reply: oneshot::Sender<Option<HandedLeg>>,
    },
    MaxDuration,
    /// Check session timers (RFC 4028).
    SessionTick,
    /// dialtone is stopping: end the call now.
    Shutdown,
    /// A transfer's destination, resolved off the actor.
    Resolved(
        Box<(
            super::transfer::TransferStep,
            Result<super::transfer::ResolvedTransfer, super::transfer::PlanError>,
        )>,
    ),
}

/// Every call's event channel allocates a block of 32 events when it is
/// made: the large variants are boxed so that a call does not carry 10 KiB
/// of empty slots (issue 13's memory per call).
#[cfg(test)]
#[test]
fn call_events_stay_small() {
    assert!(
        std::mem::size_of::<CallEvent>() <= 128,
        "{}",
        std::mem::size_of::<CallEvent>()
    );
}

//! [`CallCommand`]: the one set of actions every front end speaks — a SIP
//! REFER from a phone, an MCP tool call, an LLM function call, the REST API.
//! Each is sent to the Call actor, which answers with the real outcome.

use std::fmt;

/// Where a transfer or a new leg goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// A registered user, by username.
    User(String),
    /// A dialled number or username, routed as if the caller dialled it.
    Dial(String),
    /// A SIP URI, called directly.
    Uri(String),
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::User(u) => write!(f, "user:{u}"),
            Destination::Dial(d) => write!(f, "{d}"),
            Destination::Uri(u) => write!(f, "{u}"),
        }
    }
}

/// Which party of a call a command acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Party {
    /// The leg that started the call.
    Caller,
    /// The leg the call was connected to.
    Callee,
}

#[derive(Debug)]
pub enum CallCommand {
    /// End the call: BYE to answered legs, CANCEL or a final response to pending ones.
    Hangup {
        cause: String,
    },
    /// Connect `keep` to a new destination and release the other party
    /// (a blind transfer). Answers when the new leg answers or fails.
    Transfer {
        keep: Party,
        to: Destination,
    },
    /// Connect `keep` to the remote party `other_leg` of another call (an
    /// attended transfer); both calls' other legs are released.
    Bridge {
        keep: Party,
        other_call: String,
        other_keep: Party,
    },
    /// Send DTMF digits to a party (SIP INFO, application/dtmf-relay).
    SendDtmf {
        to: Party,
        digits: String,
    },
    /// Put a party on hold (re-INVITE with a=sendonly toward it).
    Hold {
        party: Party,
    },
    Resume {
        party: Party,
    },
}

/// What happened. Transfers report how the new leg ended up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandOutcome {
    Done,
    /// The new party answered and is connected.
    Answered,
    Busy,
    NoAnswer,
    /// The new leg failed with this SIP status.
    Failed {
        status: u16,
        reason: String,
    },
}

/// Why a command could not be carried out.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("no such call")]
    NoSuchCall,
    #[error("the call has ended")]
    CallEnded,
    #[error("not possible in the call's current state: {0}")]
    InvalidState(String),
    #[error("{0}")]
    Invalid(String),
}

pub type CommandResult = Result<CommandOutcome, CommandError>;

impl CommandOutcome {
    /// The outcome of a leg that ended with `status` before answering.
    pub fn from_status(status: u16, reason: &str) -> CommandOutcome {
        match status {
            486 | 600 => CommandOutcome::Busy,
            408 | 480 | 487 => CommandOutcome::NoAnswer,
            _ => CommandOutcome::Failed {
                status,
                reason: reason.to_string(),
            },
        }
    }
}

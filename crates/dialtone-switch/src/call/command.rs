//! [`CallCommand`]: the one set of actions every front end speaks — a SIP
//! REFER from a phone, an MCP tool call, an LLM function call, the REST API.
//! Each is sent to the Call actor, which answers with the real outcome.
//! Commands and destinations are parsed here, once, from the words and JSON
//! the front ends receive ([`CallCommand::from_action`], [`Destination::parse`]).

use std::fmt;

use serde_json::Value;

/// Where a transfer or a new leg goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// A registered user, by username.
    User(String),
    /// A dialled number or username, routed as if the party that asked for
    /// the transfer dialled it (numbers, users, outbound routes).
    Dial(String),
    /// A queue, by name.
    Queue(String),
    /// A SIP URI, called directly (the operator's authority only).
    Uri(String),
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::User(u) => write!(f, "user:{u}"),
            Destination::Dial(d) => write!(f, "{d}"),
            Destination::Queue(q) => write!(f, "queue:{q}"),
            Destination::Uri(u) => write!(f, "{u}"),
        }
    }
}

/// Characters a dialled number or a name may hold: the RFC 3261 user part's
/// unreserved set, plus the keypad's `*` and `#`.
fn dialable(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-_.!~*'()#".contains(c))
}

impl Destination {
    /// Reads a destination as people and models write it: `user:NAME`,
    /// `queue:NAME`, `number:N`, a SIP URI (`sip:…`, `sips:…`, `<sip:…>`),
    /// or a bare number or username (dialled). Spaces, dashes and
    /// parentheses inside a phone number are dropped ("(555) 010-0123").
    pub fn parse(s: &str) -> Result<Destination, CommandError> {
        let s = s.trim();
        let bad = |what: &str| {
            CommandError::Invalid(format!(
                "{what}: {s:?} (use a user name, a number, user:NAME, queue:NAME or a sip: URI)"
            ))
        };
        if s.is_empty() {
            return Err(bad("empty destination"));
        }
        let lower = s.to_ascii_lowercase();
        if lower.starts_with("sip:") || lower.starts_with("sips:") || s.starts_with('<') {
            if s.chars().any(|c| c.is_control() || c == ' ') {
                return Err(bad("malformed SIP URI"));
            }
            return Ok(Destination::Uri(s.to_string()));
        }
        let (kind, rest) = match s.split_once(':') {
            Some((k, r)) => (Some(k.to_ascii_lowercase()), r.trim()),
            None => (None, s),
        };
        let number = |r: &str| -> String {
            r.chars()
                .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
                .collect()
        };
        match kind.as_deref() {
            Some("user") if dialable(rest) => Ok(Destination::User(rest.to_string())),
            Some("queue") if dialable(rest) => Ok(Destination::Queue(rest.to_string())),
            Some("number" | "tel") if dialable(&number(rest)) => {
                Ok(Destination::Dial(number(rest)))
            }
            Some(_) => Err(bad("unknown or malformed destination")),
            None => {
                let looks_like_number = rest
                    .chars()
                    .all(|c| c.is_ascii_digit() || " -()+.*#".contains(c));
                let d = if looks_like_number {
                    number(rest)
                } else {
                    rest.to_string()
                };
                if dialable(&d) {
                    Ok(Destination::Dial(d))
                } else {
                    Err(bad("unknown or malformed destination"))
                }
            }
        }
    }
}

/// Which party of a call a command acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Party {
    /// The leg that started the call.
    Caller,
    /// The party the caller is connected to (a SIP leg or an AI agent).
    Callee,
}

impl Party {
    pub fn parse(s: &str, field: &str) -> Result<Party, CommandError> {
        match s {
            "caller" => Ok(Party::Caller),
            "callee" => Ok(Party::Callee),
            other => Err(CommandError::Invalid(format!(
                "{field} must be \"caller\" or \"callee\", not {other:?}"
            ))),
        }
    }
}

/// On whose authority a transfer dials its new leg. A REFER carries the
/// authority of the party that sent it, worked out by the call itself; the
/// front ends say who they act for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Authority {
    /// The operator (REST API token): users, numbers, routes, SIP URIs.
    Operator,
    /// An AI agent's tool call: users, numbers, queues and the outbound
    /// routes, never a raw SIP URI.
    Persona(String),
    /// An account's API key: as a persona.
    Account(String),
}

#[derive(Debug)]
pub enum CallCommand {
    /// End the call: BYE to answered legs, CANCEL or a final response to
    /// pending ones. With `after_playout`, an AI agent's words still
    /// queued for the caller finish first.
    Hangup {
        cause: String,
        after_playout: bool,
    },
    /// Connect `keep` to a new destination and release the other party
    /// (a blind transfer). Answers when the new leg answers or fails; a
    /// failed transfer leaves the call as it was.
    Transfer {
        keep: Party,
        to: Destination,
        by: Authority,
    },
    /// Connect `keep` to the remote party `other_keep` of another call (an
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

/// The JSON object front ends receive with a command (REST body, MCP
/// arguments).
fn field<'a>(args: &'a Value, name: &str) -> Result<Option<&'a str>, CommandError> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(CommandError::Invalid(format!(
            "\"{name}\" must be a string, not {other}"
        ))),
    }
}

impl CallCommand {
    /// The command named `action` ("hangup", "hold", "resume", "dtmf",
    /// "transfer", "bridge") with its arguments from a JSON object; `by`
    /// is the authority a transfer is dialled with.
    pub fn from_action(action: &str, args: &Value, by: Authority) -> Result<Self, CommandError> {
        const KNOWN: [&str; 8] = [
            "cause",
            "party",
            "to",
            "digits",
            "keep",
            "other_call",
            "other_keep",
            "after_playout",
        ];
        match args {
            Value::Null => {}
            Value::Object(m) => {
                if let Some(k) = m.keys().find(|k| !KNOWN.contains(&k.as_str())) {
                    return Err(CommandError::Invalid(format!("unknown argument \"{k}\"")));
                }
            }
            _ => {
                return Err(CommandError::Invalid(
                    "arguments must be a JSON object".into(),
                ))
            }
        }
        let need = |name: &str| -> Result<&str, CommandError> {
            field(args, name)?
                .ok_or_else(|| CommandError::Invalid(format!("{action} needs \"{name}\"")))
        };
        let party = |name: &str| -> Result<Party, CommandError> { Party::parse(need(name)?, name) };
        Ok(match action {
            "hangup" => CallCommand::Hangup {
                cause: field(args, "cause")?.unwrap_or("api hangup").to_string(),
                after_playout: args
                    .get("after_playout")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            },
            "hold" => CallCommand::Hold {
                party: party("party")?,
            },
            "resume" => CallCommand::Resume {
                party: party("party")?,
            },
            "dtmf" => CallCommand::SendDtmf {
                to: party("to")?,
                digits: need("digits")?.to_string(),
            },
            "transfer" => CallCommand::Transfer {
                keep: party("keep")?,
                to: Destination::parse(need("to")?)?,
                by,
            },
            "bridge" => CallCommand::Bridge {
                keep: party("keep")?,
                other_call: need("other_call")?.to_string(),
                other_keep: party("other_keep")?,
            },
            other => {
                return Err(CommandError::UnknownAction(other.to_string()));
            }
        })
    }
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandOutcome {
    Done,
    /// The new party answered and is connected.
    Answered,
    /// The request or the new leg failed with this SIP status.
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
    #[error("no such call action {0:?}")]
    UnknownAction(String),
    /// A call limit refused it (the party and the limit, see
    /// [`crate::admission`]).
    #[error("{0}")]
    Refused(String),
}

pub type CommandResult = Result<CommandOutcome, CommandError>;

impl CommandOutcome {
    /// The outcome of a leg that ended with `status` before answering.
    pub fn from_status(status: u16, reason: &str) -> CommandOutcome {
        CommandOutcome::Failed {
            status,
            reason: reason.to_string(),
        }
    }

    /// One word for scripts: done, answered, busy, no_answer, unavailable,
    /// rejected or failed.
    pub fn kind(&self) -> &'static str {
        match self {
            CommandOutcome::Done => "done",
            CommandOutcome::Answered => "answered",
            CommandOutcome::Failed { status, .. } => match status {
                486 | 600 => "busy",
                408 | 487 => "no_answer",
                480 | 404 | 484 | 503 => "unavailable",
                603 | 403 => "rejected",
                _ => "failed",
            },
        }
    }

    /// A sentence for a person or a model: "busy (486 Busy Here)".
    pub fn describe(&self) -> String {
        match self {
            CommandOutcome::Done => "done".into(),
            CommandOutcome::Answered => "answered".into(),
            CommandOutcome::Failed { status, reason } => {
                let kind = self.kind().replace('_', " ");
                if reason.is_empty() {
                    format!("{kind} ({status})")
                } else {
                    format!("{kind} ({status} {reason})")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn destinations_as_people_write_them() {
        let p = |s| Destination::parse(s);
        assert_eq!(p("1001"), Ok(Destination::Dial("1001".into())));
        assert_eq!(p("user:alice"), Ok(Destination::User("alice".into())));
        assert_eq!(p("queue:sales"), Ok(Destination::Queue("sales".into())));
        assert_eq!(
            p("(555) 010-0123"),
            Ok(Destination::Dial("5550100123".into()))
        );
        assert_eq!(
            p("+1 555 010 0123"),
            Ok(Destination::Dial("+15550100123".into()))
        );
        assert_eq!(p("number:+44 20"), Ok(Destination::Dial("+4420".into())));
        assert_eq!(p("carol"), Ok(Destination::Dial("carol".into())));
        assert_eq!(
            p("sip:bob@example.com"),
            Ok(Destination::Uri("sip:bob@example.com".into()))
        );
        for bad in ["", "  ", "user:", "fax:123", "a b", "sip:a b@c", "x;y"] {
            assert!(p(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn commands_from_json() {
        let by = Authority::Operator;
        let c = CallCommand::from_action(
            "transfer",
            &json!({"keep": "caller", "to": "1003"}),
            by.clone(),
        );
        assert!(matches!(
            c,
            Ok(CallCommand::Transfer { keep: Party::Caller, to: Destination::Dial(ref d), .. }) if d == "1003"
        ));
        let hang = CallCommand::from_action("hangup", &Value::Null, by.clone());
        assert!(
            matches!(hang, Ok(CallCommand::Hangup { ref cause, after_playout: false }) if cause == "api hangup")
        );
        let bad_party = CallCommand::from_action("hold", &json!({"party": "nobody"}), by.clone());
        assert!(matches!(bad_party, Err(CommandError::Invalid(m)) if m.contains("caller")));
        let missing = CallCommand::from_action("dtmf", &json!({"to": "callee"}), by.clone());
        assert!(matches!(missing, Err(CommandError::Invalid(m)) if m.contains("digits")));
        let unknown_arg = CallCommand::from_action("hold", &json!({"prty": "callee"}), by.clone());
        assert!(matches!(unknown_arg, Err(CommandError::Invalid(m)) if m.contains("prty")));
        let wrong_type = CallCommand::from_action("hold", &json!({"party": 3}), by.clone());
        assert!(wrong_type.is_err());
        assert!(matches!(
            CallCommand::from_action("explode", &json!({}), by),
            Err(CommandError::UnknownAction(_))
        ));
    }

    #[test]
    fn outcomes_read_as_sentences() {
        let busy = CommandOutcome::from_status(486, "Busy Here");
        assert_eq!(busy.kind(), "busy");
        assert_eq!(busy.describe(), "busy (486 Busy Here)");
        let gone = CommandOutcome::from_status(480, "Temporarily Unavailable");
        assert_eq!(gone.kind(), "unavailable");
        assert_eq!(CommandOutcome::Answered.describe(), "answered");
    }
}

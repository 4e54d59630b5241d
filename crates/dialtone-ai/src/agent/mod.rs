//! The agent: one realtime session bridged to a call's audio port. It
//! streams the caller's audio to the model as it arrives, queues the
//! model's voice for the port's paced playout, cuts the agent off when the
//! caller talks over it (flushing the playout and telling the model how
//! much was really heard), runs the model's function calls through a
//! [`ToolDispatcher`] with a timeout (a filler line or hold beeps while a
//! slow one runs), turns keypad digits and silence into words for the
//! model, reconnects once when the connection drops, and renews the
//! session before the provider's limit — carrying the conversation over.
//!
//! It knows nothing of SIP: the call hands it an audio port
//! ([`AgentControl::Audio`]) and hears back [`AgentEvent`]s.
//!
//! Before the session opens it connects the persona's external MCP servers
//! ([`crate::mcp_client`]), offers their tools beside the dispatcher's and
//! routes the model's calls of them there; a server that cannot be reached
//! is reported ([`AgentEvent::ExternalToolsUnavailable`]) and left out.
//!
//! Files: `run.rs` the task and its loop, `playout.rs` what was played of
//! which item (barge-in arithmetic), `keys.rs` DTMF digits into text,
//! `hold.rs` the hold beeps, `stats.rs` counters for /metrics,
//! `external.rs` the external MCP servers' tools.

mod external;
mod hold;
mod keys;
mod playout;
mod run;
mod stats;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use dialtone_media::{PortEvent, PortPlayer};
use tokio::sync::mpsc;

use crate::mcp_client::ExternalServer;
use crate::protocol::SessionConfig;

pub use stats::AgentStats;

/// How the agent behaves, besides its session.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    pub session: SessionConfig,
    /// Said (in the model's voice) as soon as the call is answered.
    pub greeting: Option<String>,
    /// The caller must speak this long before the agent is cut off (a guard
    /// against coughs and echo); ZERO cuts at once.
    pub barge_in_min: Duration,
    /// Re-prompt after this much silence, end the call after twice; None:
    /// never.
    pub idle_timeout: Option<Duration>,
    /// A tool that takes longer gets "the tool timed out" as its answer.
    pub tool_timeout: Duration,
    /// After this long a running tool gets a filler (a short line from the
    /// model, or hold beeps); ZERO: never.
    pub filler_after: Duration,
    /// A session is renewed (conversation carried over) after this long;
    /// providers end sessions (OpenAI after 60 minutes).
    pub renew_after: Duration,
    /// How long a hangup waits for the agent's last words at most.
    pub drain_limit: Duration,
    /// External MCP servers whose tools the model is offered too; connected
    /// before the session opens, within `external_budget` together.
    pub external: Vec<ExternalServer>,
    pub external_budget: Duration,
}

/// The answer of a tool, for the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolReply {
    pub output: String,
    /// false: the tool failed (the output says why).
    pub ok: bool,
}

/// Runs the model's function calls. `name` and `arguments` (a JSON
/// object's text) are as the model sent them; the dispatcher validates.
pub trait ToolDispatcher: Send + Sync + 'static {
    fn call(
        &self,
        name: &str,
        arguments: &str,
    ) -> Pin<Box<dyn Future<Output = ToolReply> + Send + 'static>>;

    /// How long a call of `name` may take when it is not the agent's
    /// `tool_timeout` (an external server's own timeout).
    fn timeout(&self, _name: &str) -> Option<Duration> {
        None
    }
}

/// Whose words a transcript line holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Caller,
    Agent,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Caller => "caller",
            Side::Agent => "agent",
        }
    }
}

/// What the agent tells the call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentEvent {
    /// The session is up: the call can be answered.
    Ready,
    /// The model cannot be reached (or was lost and could not be
    /// reconnected); the reason is a sentence for the record.
    Failed { reason: String },
    /// A line of the conversation; the agent's is cut to what was heard
    /// when the caller interrupted it.
    Transcript { side: Side, text: String },
    /// The caller talked over the agent and its voice was stopped.
    BargeIn,
    /// A keypad digit from the caller (also given to the model).
    Dtmf(char),
    /// The connection dropped and was re-established.
    Reconnected,
    /// After [`AgentControl::HangupAfterPlayout`]: the last words are out.
    HangupReady,
    /// The caller stayed silent after a re-prompt: end the call.
    IdleHangup,
    /// An external MCP server could not be used (before [`AgentEvent::Ready`]);
    /// the call goes on without its tools. The reason holds no secret.
    ExternalToolsUnavailable { server: String, reason: String },
}

/// What the call tells the agent.
pub enum AgentControl {
    /// The call is answered: the caller's audio and the playout.
    Audio {
        player: PortPlayer,
        frames: mpsc::Receiver<PortEvent>,
    },
    /// A keypad digit that came by SIP INFO.
    Dtmf(char),
    /// Let the agent finish speaking, then report [`AgentEvent::HangupReady`].
    HangupAfterPlayout,
    /// End the session now.
    Close,
}

/// Where the agent's events go; returns false once nobody listens.
pub type EventSink = Box<dyn Fn(AgentEvent) -> bool + Send + Sync>;

/// Talks to a running agent. Dropping every handle ends it.
#[derive(Clone)]
pub struct AgentHandle {
    tx: mpsc::UnboundedSender<AgentControl>,
}

impl AgentHandle {
    /// False when the agent has ended.
    pub fn send(&self, ctl: AgentControl) -> bool {
        self.tx.send(ctl).is_ok()
    }
}

/// Starts an agent: it connects at once and reports [`AgentEvent::Ready`]
/// or [`AgentEvent::Failed`].
pub fn spawn(
    cfg: AgentConfig,
    tools: Arc<dyn ToolDispatcher>,
    sink: EventSink,
    stats: Arc<AgentStats>,
) -> AgentHandle {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(run::run(cfg, tools, sink, stats, rx));
    AgentHandle { tx }
}

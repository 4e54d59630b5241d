//! Calls. A Call is an actor: one tokio task that owns its legs (SIP
//! dialogs with their RTP endpoints) and reads one channel of
//! [`event::CallEvent`]s: responses to the requests it sent, requests the
//! switch routes to its dialogs, media events, its timers, and
//! [`CallCommand`]s from any front end. The [`CallRegistry`] finds a live
//! call by its id or by the SIP Call-ID of any of its legs.
//!
//! Files: `actor.rs` the call's state and loop and the end of a call,
//! `ids.rs` leg ids and media slots, `live.rs` what the call publishes
//! (snapshots, notices), `agent/` the AI party (a persona's realtime
//! session on the caller's audio port), `dial.rs` placing
//! legs (forking), `progress.rs` their responses (early media, the winning
//! 2xx, trunk auth, failures), `in_dialog.rs` requests
//! inside established dialogs (BYE, re-INVITE/UPDATE/INFO relay),
//! `commands.rs` carrying out commands, `transfer.rs` blind and attended
//! transfers, `session_timer.rs` RFC 4028, `record.rs` the call record, `codecs.rs`
//! which codecs are offered and answered on each leg (transcoding when the
//! parties share none).

mod actor;
mod agent;
mod codecs;
mod command;
mod commands;
mod dial;
mod event;
mod ids;
mod in_dialog;
mod launch;
mod leg;
mod live;
mod media;
mod outbound;
pub mod outbox;
pub mod probe;
mod progress;
mod queue;
mod record;
mod registry;
mod resolve;
mod sdes;
mod session_timer;
mod settle;
mod timers;
mod transfer;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use dialtone_media::MediaEngine;
use dialtone_sip::transaction::{ServerTransaction, TransactionLayer};
use dialtone_store::Store;

pub use agent::{AgentSettings, AiStats};
pub use command::{
    Authority, CallCommand, CommandError, CommandOutcome, CommandResult, Destination, Party,
};
pub(crate) use event::CallEvent;
pub use live::{CallNotice, CallSnapshot, LegView, TranscriptLine};
pub use outbound::{Outbound, Talker};
pub use registry::{CallHandle, CallRegistry};
pub use session_timer::TimerPolicy;

use crate::admission::{self, Admission, Ask, Permits};
use crate::router::{Caller, Routed};
use crate::tools::ToolRegistry;

#[derive(Clone, Debug)]
pub struct CallConfig {
    /// Our SIP domain (From/To hosts of the legs we place).
    pub domain: String,
    pub user_agent: String,
    /// How long a placed leg may ring before it is cancelled.
    pub ring_timeout: Duration,
    /// Calls are ended after this long (ZERO: never).
    pub max_duration: Duration,
    /// Names this instance in call records.
    pub node: String,
    /// RFC 4028 session timers; None turns them off.
    pub timers: Option<TimerPolicy>,
    /// Where and how calls are recorded.
    pub recording: RecordingPolicy,
    /// SRTP policy of parties without their own (`media.srtp`).
    pub srtp: dialtone_store::SrtpPolicy,
    /// How calls to personas talk to their realtime model.
    pub ai: AgentSettings,
}

/// Call recording: which calls, where, at what rate.
#[derive(Clone, Debug)]
pub struct RecordingPolicy {
    /// Record every answered call, whatever the number or route says.
    pub all: bool,
    /// Recordings go to `dir/<call id>.wav`.
    pub dir: std::path::PathBuf,
    /// Sample rate of the WAV files (8000 for narrowband calls; 16000
    /// keeps wideband Opus).
    pub sample_rate: u32,
}

/// What every call shares.
pub struct CallContext {
    pub layer: TransactionLayer,
    pub store: Store,
    pub registry: CallRegistry,
    pub media: MediaEngine,
    pub cfg: CallConfig,
    /// Calls started since this process started.
    pub total: AtomicU64,
    /// The tools AI agents (and the MCP server) call.
    pub tools: Arc<ToolRegistry>,
    /// AI agent counters, for /metrics.
    pub ai: Arc<AiStats>,
    /// Where each upstream trunk registration stands.
    pub uplinks: Arc<crate::uplink::UplinkStatus>,
    /// The test calls `sip_call` placed, and their figures.
    pub probes: Arc<probe::ProbeStats>,
    /// The call limits' counters (see [`crate::admission`]).
    pub admission: Arc<Admission>,
    /// Call records waiting for the database to answer again.
    pub records: Arc<outbox::RecordOutbox>,
    /// This node in the cluster (forwarding, heartbeat counters).
    pub cluster: Arc<crate::cluster::Cluster>,
    /// Sources banned for repeated digest failures (shared with the gate).
    pub bans: Arc<crate::abuse::Bans>,
}

/// Who placed an inbound call: for the record, and the authority its
/// party's transfers are dialled with.
#[derive(Clone, Debug)]
pub struct Origin {
    /// "trunk:NAME" or "user:NAME".
    pub label: String,
    pub from_trunk: bool,
    pub caller: Caller,
    /// The caller's account (a user's), when known.
    pub account_id: Option<String>,
    /// The caller's own SRTP policy (its user's or trunk's), if it has one.
    pub srtp: Option<dialtone_store::SrtpPolicy>,
}

/// Starts a call for an out-of-dialog INVITE routed to `target`, once the
/// call limits admit it; None when they do not (the INVITE is answered
/// with the refusal: 403 or 503, see [`crate::admission`]).
pub async fn start_inbound(
    ctx: Arc<CallContext>,
    invite: ServerTransaction,
    origin: Origin,
    routed: Routed,
) -> Option<CallHandle> {
    let ask = Ask {
        who: &origin.caller,
        account: origin.account_id.as_deref(),
        user: None,
        target: Some(&routed.target),
    };
    match admission::admit(&ctx.admission, &ctx.store, &ask, &Permits::default()).await {
        Ok(permits) => Some(launch::spawn(ctx, invite, origin, routed, permits)),
        Err(refusal) => {
            let _ = invite.respond(refusal.response(&invite));
            None
        }
    }
}

/// Starts a call dialtone places itself (see [`Outbound`]), once the call
/// limits admit it ([`CommandError::Refused`] says which one did not).
pub async fn start_outbound(
    ctx: Arc<CallContext>,
    out: Outbound,
) -> Result<CallHandle, CommandError> {
    let user = match &out.talker {
        Talker::User(u) => Some(u.as_str()),
        _ => None,
    };
    let ask = Ask {
        who: &out.who,
        account: out.account_id.as_deref(),
        user,
        target: Some(&out.customer),
    };
    let permits = admission::admit(&ctx.admission, &ctx.store, &ask, &Permits::default())
        .await
        .map_err(|r| CommandError::Refused(r.detail))?;
    Ok(launch::spawn_outbound(ctx, out, permits))
}

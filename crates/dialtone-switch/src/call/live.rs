//! What a live call shows the outside without being asked: a snapshot of
//! its state (for listings and `call://` resources) that the actor
//! refreshes after every event it handles, and notices (answered, DTMF,
//! transcript lines, transferred, ended) for whoever subscribed. Reading a
//! snapshot never waits for the actor.

use std::sync::{Arc, OnceLock};

use dialtone_sip::sdp::Format;
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, watch};

use super::actor::CallState;
use super::event::CallEvent;
use super::ids::Legs;
use super::leg::LegState;
use super::record::Record;
use super::registry::CallHandle;

/// Notices kept for a slow subscriber before it starts missing some.
const NOTICE_BACKLOG: usize = 256;

/// One line of a call's transcript.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TranscriptLine {
    /// "caller" or "agent".
    pub side: String,
    pub text: String,
    /// Milliseconds since the call started.
    pub at_ms: i64,
}

/// One leg as the outside sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LegView {
    /// "caller", "user:1001", "trunk:carrier", "persona:NAME".
    pub label: String,
    /// "uas" (its INVITE came to us) or "uac" (we placed it).
    pub role: String,
    /// "calling", "early", "connected", "ending", "ended".
    pub state: String,
    pub sip_call_id: String,
    /// "PCMU/8000", "opus/48000".
    pub codec: Option<String>,
}

/// A live call's state, as of the last event it handled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CallSnapshot {
    pub id: String,
    /// "dialing", "answered", "ended".
    pub state: String,
    /// "inbound", "outbound", "internal".
    pub direction: String,
    pub caller: String,
    pub callee: String,
    pub from_uri: String,
    pub to_uri: String,
    /// The AI agent's persona, if one takes part.
    pub persona: Option<String>,
    /// The tenant the call belongs to, when known (a user's or persona's
    /// account).
    pub account_id: Option<String>,
    /// Unix milliseconds.
    pub started_at: i64,
    pub answered_at: Option<i64>,
    pub legs: Vec<LegView>,
    pub transcript: Vec<TranscriptLine>,
}

/// Something that happened on a call, for subscribers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum CallNotice {
    Answered { by: String },
    Dtmf { digit: char },
    Transcript(TranscriptLine),
    Transferred { to: String },
    Ended { outcome: String, cause: String },
}

/// A call's notice channel, made when the first subscriber comes: most
/// calls have none, and a channel holds its whole backlog from the start
/// (256 slots, about 18 KiB).
#[derive(Clone, Debug, Default)]
pub struct Notices(Arc<OnceLock<broadcast::Sender<CallNotice>>>);

impl Notices {
    /// Notices from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<CallNotice> {
        self.0
            .get_or_init(|| broadcast::channel(NOTICE_BACKLOG).0)
            .subscribe()
    }

    fn send(&self, notice: CallNotice) {
        // No subscriber is not an error.
        if let Some(tx) = self.0.get() {
            let _ = tx.send(notice);
        }
    }
}

/// The actor's side: where it publishes.
pub struct Live {
    view: watch::Sender<CallSnapshot>,
    notices: Notices,
    account_id: Option<String>,
}

fn leg_state(s: LegState) -> &'static str {
    match s {
        LegState::Calling => "calling",
        LegState::Early => "early",
        LegState::Connected => "connected",
        LegState::Ending => "ending",
        LegState::Ended => "ended",
    }
}

impl Live {
    /// A new call's publisher and the handle that reads it.
    pub fn new(
        id: Arc<str>,
        events: mpsc::UnboundedSender<CallEvent>,
        record: &Record,
    ) -> (Live, CallHandle) {
        let first = snapshot(CallState::Dialing, record, &Legs::default(), None, None);
        let (view, view_rx) = watch::channel(first);
        let notices = Notices::default();
        let handle = CallHandle::new(id, events, view_rx, notices.clone());
        let live = Live {
            view,
            notices,
            account_id: None,
        };
        (live, handle)
    }

    /// Names the tenant the call belongs to.
    pub fn set_account(&mut self, account_id: Option<String>) {
        self.account_id = account_id;
    }

    pub fn account(&self) -> Option<&str> {
        self.account_id.as_deref()
    }

    pub fn update(&self, state: CallState, record: &Record, legs: &Legs, persona: Option<&str>) {
        let account_id = self.account_id.as_deref();
        self.view.send_if_modified(|cur| {
            if shows(cur, state, record, legs, persona, account_id) {
                false
            } else {
                *cur = snapshot(state, record, legs, persona, account_id.map(str::to_string));
                true
            }
        });
    }

    pub fn notify(&self, notice: CallNotice) {
        self.notices.send(notice);
    }
}

/// Whether `cur` already shows what [`snapshot`] would make of these: most
/// events change nothing a listing shows, and then nothing is copied (the
/// transcript of an AI call among it).
fn shows(
    cur: &CallSnapshot,
    state: CallState,
    record: &Record,
    legs: &Legs,
    persona: Option<&str>,
    account_id: Option<&str>,
) -> bool {
    // Every field named (no `..`): a field added to the snapshot must be
    // compared here too, or its changes would never be published.
    let CallSnapshot {
        id,
        state: shown_state,
        direction,
        caller,
        callee,
        from_uri,
        to_uri,
        persona: shown_persona,
        account_id: shown_account,
        started_at,
        answered_at,
        legs: shown_legs,
        transcript,
    } = cur;
    let r = &record.rec;
    shown_state == state.as_str()
        && *id == r.id
        && *direction == r.direction
        && *caller == r.caller
        && *callee == r.callee
        && *from_uri == r.from_uri
        && *to_uri == r.to_uri
        && shown_persona.as_deref() == persona
        && shown_account.as_deref() == account_id
        && *started_at == r.started_at
        && *answered_at == r.answered_at
        && shown_legs.len() == legs.as_slice().len()
        && shown_legs.iter().zip(legs.iter()).all(|(shown, l)| {
            let LegView {
                label,
                role,
                state,
                sip_call_id,
                codec,
            } = shown;
            *label == l.label
                && role == l.role.as_str()
                && state == leg_state(l.state)
                && *sip_call_id == l.sip_call_id
                && shows_codec(codec.as_deref(), l.codec.as_ref())
        })
        && *transcript == record.transcript
}

/// The leg's codec as a listing names it: "PCMU/8000".
pub(super) fn codec_name(c: &Format) -> String {
    format!("{}/{}", c.encoding, c.clock_rate)
}

fn shows_codec(shown: Option<&str>, codec: Option<&Format>) -> bool {
    match (shown, codec) {
        (None, None) => true,
        (Some(shown), Some(c)) => shown.split_once('/').is_some_and(|(encoding, rate)| {
            encoding == c.encoding && rate.parse::<u32>() == Ok(c.clock_rate)
        }),
        _ => false,
    }
}

fn snapshot(
    state: CallState,
    record: &Record,
    legs: &Legs,
    persona: Option<&str>,
    account_id: Option<String>,
) -> CallSnapshot {
    let r = &record.rec;
    CallSnapshot {
        id: r.id.clone(),
        state: state.as_str().into(),
        direction: r.direction.clone(),
        caller: r.caller.clone(),
        callee: r.callee.clone(),
        from_uri: r.from_uri.clone(),
        to_uri: r.to_uri.clone(),
        persona: persona.map(str::to_string),
        account_id,
        started_at: r.started_at,
        answered_at: r.answered_at,
        legs: legs
            .iter()
            .map(|l| LegView {
                label: l.label.clone(),
                role: l.role.as_str().into(),
                state: leg_state(l.state).into(),
                sip_call_id: l.sip_call_id.clone(),
                codec: l.codec.as_ref().map(codec_name),
            })
            .collect(),
        transcript: record.transcript.clone(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use dialtone_sip::transport::{Peer, Protocol};

    use super::*;
    use crate::call::ids::Slot;
    use crate::call::leg::{Leg, Role};
    use crate::call::Origin;
    use crate::router::Caller;

    fn call() -> (Record, Legs) {
        let origin = Origin {
            label: "user:1001".into(),
            from_trunk: false,
            caller: Caller::User("1001".into()),
            account_id: None,
            srtp: None,
        };
        let record = Record::outbound("c1", "node", &origin, "1001", "1002", "example.com");
        let mut legs = Legs::default();
        let peer = Peer::new(Protocol::Udp, "127.0.0.1:5060".parse().unwrap());
        legs.push(Leg::new(
            Role::Uac,
            peer,
            "sip-1".into(),
            Slot(0),
            "127.0.0.1".parse().unwrap(),
            "user:1002".into(),
            Caller::User("1001".into()),
        ));
        (record, legs)
    }

    #[test]
    fn a_snapshot_shows_what_it_was_made_of_and_no_change_after() {
        let (mut record, mut legs) = call();
        let state = CallState::Dialing;
        let cur = snapshot(state, &record, &legs, None, None);
        assert!(shows(&cur, state, &record, &legs, None, None));

        assert!(!shows(
            &cur,
            CallState::Answered,
            &record,
            &legs,
            None,
            None
        ));
        assert!(!shows(&cur, state, &record, &legs, Some("sales"), None));
        assert!(!shows(&cur, state, &record, &legs, None, Some("acct")));

        legs.iter_mut().next().unwrap().state = LegState::Connected;
        assert!(!shows(&cur, state, &record, &legs, None, None));
        let cur = snapshot(state, &record, &legs, None, None);
        assert!(shows(&cur, state, &record, &legs, None, None));

        legs.iter_mut().next().unwrap().codec = Some(Format::new(0, "PCMU", 8000, None));
        assert!(!shows(&cur, state, &record, &legs, None, None));
        let cur = snapshot(state, &record, &legs, None, None);
        assert_eq!(cur.legs[0].codec.as_deref(), Some("PCMU/8000"));
        assert!(shows(&cur, state, &record, &legs, None, None));

        record.rec.answered_at = Some(1);
        assert!(!shows(&cur, state, &record, &legs, None, None));
        let cur = snapshot(state, &record, &legs, None, None);
        record.transcript_line("caller", "hello");
        assert!(!shows(&cur, state, &record, &legs, None, None));
    }
}

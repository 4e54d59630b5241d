//! Calls: `list_calls` (filters: status, since, until, limit) and
//! `get_call`. A live call is read from its snapshot (what the actor
//! published last), an ended one from its call record; both become the
//! same [`Call`] object with its legs, times, outcome (with the SIP cause)
//! and transcript.

use std::collections::HashSet;

use dialtone_store::CallRecord;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::views::{Call, CallLeg, CallList, TranscriptEntry};
use super::Operation;
use super::{args, db, operation, scope, sees, time_ms, time_text, to_json, Kind, ManageError};
use crate::call::CallSnapshot;
use crate::control::CallControl;
use crate::tools::ToolContext;

/// Statuses `list_calls` filters by, besides the outcomes.
const STATUSES: [&str; 6] = [
    "live",
    "ringing",
    "in-progress",
    "ended",
    "answered",
    "failed",
];
const OUTCOMES: [&str; 5] = ["busy", "no_answer", "cancelled", "rejected", "unavailable"];
const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 1000;

pub(super) fn operations() -> Vec<Operation> {
    vec![
        operation::<ListCalls, CallList>(
            "list_calls",
            "List the account's calls, newest first: live ones and ended ones, with status, \
             from/to, times, duration, outcome and SIP cause. Filter by status (live, ringing, \
             in-progress, ended, answered, failed, or an outcome: busy, no_answer, cancelled, \
             rejected, unavailable) and by start time.",
            Kind::Read,
            |c, ctx, a| Box::pin(list(c, ctx, a)),
        ),
        operation::<CallId, Call>(
            "get_call",
            "One call (by its id, or the SIP Call-ID of a leg while it is live): status, \
             direction, from/to, legs, start/answer/end times, duration, outcome with the SIP \
             cause, the transcript and the recording.",
            Kind::Read,
            |c, ctx, a| Box::pin(get(c, ctx, a)),
        ),
    ]
}

/// Which calls.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ListCalls {
    /// live, ringing, in-progress, ended, answered, failed, or an outcome
    /// (busy, no_answer, cancelled, rejected, unavailable).
    pub status: Option<String>,
    /// Calls that started at or after this RFC 3339 time.
    pub since: Option<String>,
    /// Calls that started before this RFC 3339 time.
    pub until: Option<String>,
    /// At most this many (default 50, at most 1000).
    pub limit: Option<u32>,
}

/// Names one call.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CallId {
    /// The call's id (or, while live, the SIP Call-ID of one of its legs).
    pub call_id: String,
}

fn live_status(state: &str, answered: bool) -> &'static str {
    match state {
        "ended" => "ended",
        _ if answered => "in-progress",
        _ => "ringing",
    }
}

fn seconds_between(from: Option<i64>, to: i64) -> Option<f64> {
    from.map(|a| ((to - a).max(0) as f64) / 1000.0)
}

/// The SIP status a cause starts with ("486 Busy Here" -> 486).
fn sip_status(cause: Option<&str>) -> Option<u16> {
    let code = cause?.split_whitespace().next()?;
    let n: u16 = code.parse().ok()?;
    (100..700).contains(&n).then_some(n)
}

/// A live call's snapshot as a [`Call`].
pub fn call_from_snapshot(s: &CallSnapshot) -> Call {
    let now = dialtone_store::unix_now_ms();
    Call {
        id: s.id.clone(),
        status: live_status(&s.state, s.answered_at.is_some()).into(),
        live: s.state != "ended",
        direction: s.direction.clone(),
        from: s.caller.clone(),
        to: s.callee.clone(),
        assistant: s.persona.clone(),
        account_id: s.account_id.clone(),
        started_at: time_text(s.started_at),
        answered_at: s.answered_at.map(time_text),
        ended_at: None,
        duration_seconds: seconds_between(s.answered_at, now),
        outcome: s.answered_at.map(|_| "answered".into()),
        ended_reason: None,
        sip_status: None,
        hangup_side: None,
        legs: s
            .legs
            .iter()
            .map(|l| CallLeg {
                label: l.label.clone(),
                role: l.role.clone(),
                state: Some(l.state.clone()),
                sip_call_id: l.sip_call_id.clone(),
                codec: l.codec.clone(),
                final_status: None,
            })
            .collect(),
        transcript: s
            .transcript
            .iter()
            .map(|t| TranscriptEntry {
                side: t.side.clone(),
                text: t.text.clone(),
                at_ms: t.at_ms,
            })
            .collect(),
        recording: None,
    }
}

/// JSON text the switch stored, parsed (empty when it does not parse).
fn parsed_array(text: Option<&str>) -> Vec<Value> {
    match text.map(serde_json::from_str::<Value>) {
        Some(Ok(Value::Array(items))) => items,
        _ => Vec::new(),
    }
}

fn text_of(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// A call record as a [`Call`].
pub fn call_from_record(r: &CallRecord) -> Call {
    let end = r.ended_at.unwrap_or_else(dialtone_store::unix_now_ms);
    let status = match r.ended_at {
        Some(_) => "ended",
        None => live_status("", r.answered_at.is_some()),
    };
    Call {
        id: r.id.clone(),
        status: status.into(),
        live: r.ended_at.is_none(),
        direction: r.direction.clone(),
        from: r.caller.clone(),
        to: r.callee.clone(),
        assistant: r.persona.clone(),
        account_id: r.account_id.clone(),
        started_at: time_text(r.started_at),
        answered_at: r.answered_at.map(time_text),
        ended_at: r.ended_at.map(time_text),
        duration_seconds: seconds_between(r.answered_at, end),
        outcome: r.outcome.clone(),
        ended_reason: r.hangup_cause.clone(),
        sip_status: sip_status(r.hangup_cause.as_deref()),
        hangup_side: r.hangup_side.clone(),
        legs: parsed_array(Some(&r.legs))
            .iter()
            .map(|l| CallLeg {
                label: text_of(l, "label").unwrap_or_default(),
                role: text_of(l, "role").unwrap_or_default(),
                state: None,
                sip_call_id: text_of(l, "sip_call_id").unwrap_or_default(),
                codec: None,
                final_status: text_of(l, "final_status"),
            })
            .collect(),
        transcript: parsed_array(r.transcript.as_deref())
            .iter()
            .map(|t| TranscriptEntry {
                side: text_of(t, "side").unwrap_or_default(),
                text: text_of(t, "text").unwrap_or_default(),
                at_ms: t.get("at_ms").and_then(Value::as_i64).unwrap_or(0),
            })
            .collect(),
        recording: r.recording.clone(),
    }
}

/// Whether `c` is in `status` (see [`STATUSES`] and [`OUTCOMES`]).
fn matches(c: &Call, status: &str) -> bool {
    match status {
        "live" => c.live,
        "ringing" | "in-progress" | "ended" => c.status == status,
        "answered" => c.answered_at.is_some(),
        "failed" => !c.live && c.answered_at.is_none(),
        outcome => c.outcome.as_deref() == Some(outcome),
    }
}

async fn list(control: &CallControl, ctx: &ToolContext, a: Value) -> Result<Value, ManageError> {
    let f: ListCalls = args(a)?;
    if let Some(s) = &f.status {
        if !STATUSES.contains(&s.as_str()) && !OUTCOMES.contains(&s.as_str()) {
            return Err(ManageError::Invalid(format!(
                "status {s:?} is not one of {}, {}",
                STATUSES.join(", "),
                OUTCOMES.join(", ")
            )));
        }
    }
    let since = f
        .since
        .as_deref()
        .map(|t| time_ms("since", t))
        .transpose()?;
    let until = f
        .until
        .as_deref()
        .map(|t| time_ms("until", t))
        .transpose()?;
    let limit = f.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let (since, until) = (since.unwrap_or(i64::MIN), until.unwrap_or(i64::MAX));
    let live = control.list(scope(ctx));
    let mut calls: Vec<Call> = live
        .iter()
        .filter(|s| s.started_at >= since && s.started_at < until)
        .map(call_from_snapshot)
        .collect();
    let live_ids: HashSet<&str> = live.iter().map(|s| s.id.as_str()).collect();
    // A status filter is applied after reading: read more rows then.
    let fetch = if f.status.is_some() {
        limit.saturating_mul(20).min(20_000)
    } else {
        limit
    };
    let records = control
        .store()
        .calls()
        .between(ctx.account_id.as_deref(), since, until, fetch)
        .await
        .map_err(db)?;
    calls.extend(
        records
            .iter()
            .filter(|r| !live_ids.contains(r.id.as_str()))
            .filter(|r| match &r.account_id {
                Some(acc) => sees(ctx, acc),
                None => ctx.account_id.is_none(),
            })
            .map(call_from_record),
    );
    if let Some(s) = &f.status {
        calls.retain(|c| matches(c, s));
    }
    // Newest first: RFC 3339 UTC text sorts as time does.
    calls.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(b.id.cmp(&a.id)));
    calls.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    to_json(&CallList { calls })
}

/// The call `id` in the context's view: live, else its record.
pub(super) async fn find(
    control: &CallControl,
    ctx: &ToolContext,
    id: &str,
) -> Result<Call, ManageError> {
    if let Ok(s) = control.snapshot(id, scope(ctx)) {
        return Ok(call_from_snapshot(&s));
    }
    let record = control.record(id).await.map_err(db)?;
    match record {
        Some(r)
            if r.account_id
                .as_deref()
                .map_or(ctx.account_id.is_none(), |a| sees(ctx, a)) =>
        {
            Ok(call_from_record(&r))
        }
        _ => Err(ManageError::NotFound(format!(
            "no call {id:?} (list_calls gives the ids)"
        ))),
    }
}

async fn get(control: &CallControl, ctx: &ToolContext, a: Value) -> Result<Value, ManageError> {
    let CallId { call_id } = args(a)?;
    to_json(&find(control, ctx, &call_id).await?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn records_read_as_calls() {
        let r = CallRecord {
            id: "c1".into(),
            node: "n".into(),
            direction: "outbound".into(),
            from_uri: "<sip:15550100@d>".into(),
            to_uri: "<sip:15551230001@d>".into(),
            caller: "15550100".into(),
            callee: "15551230001".into(),
            started_at: 1_000,
            answered_at: Some(3_000),
            ended_at: Some(13_500),
            outcome: Some("answered".into()),
            hangup_cause: Some("agent hangup".into()),
            hangup_side: Some("callee".into()),
            codecs: None,
            legs: r#"[{"label":"trunk:t","role":"uac","sip_call_id":"x","peer":"p","final_status":"200 OK"}]"#.into(),
            stats: None,
            recording: None,
            persona: Some("rec".into()),
            transcript: Some(r#"[{"side":"agent","text":"Hello","at_ms":5}]"#.into()),
            account_id: Some("a".into()),
        };
        let c = call_from_record(&r);
        assert_eq!((c.status.as_str(), c.live), ("ended", false));
        assert_eq!(c.duration_seconds, Some(10.5));
        assert_eq!(c.legs[0].label, "trunk:t");
        assert_eq!(c.legs[0].final_status.as_deref(), Some("200 OK"));
        assert_eq!(c.transcript[0].text, "Hello");
        assert_eq!(c.sip_status, None);
        assert!(matches(&c, "answered") && matches(&c, "ended") && !matches(&c, "failed"));
        let busy = CallRecord {
            answered_at: None,
            outcome: Some("busy".into()),
            hangup_cause: Some("486 Busy Here".into()),
            ..r
        };
        let c = call_from_record(&busy);
        assert_eq!(c.sip_status, Some(486));
        assert!(matches(&c, "failed") && matches(&c, "busy") && !matches(&c, "live"));
        assert_eq!(c.duration_seconds, None);
    }
}

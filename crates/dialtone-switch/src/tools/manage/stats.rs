//! `get_call_statistics`: how the account's calls went over a period —
//! totals, answered and failed, the success rate, durations, and the same
//! per assistant and per trunk — counted from the call records (a live
//! call counts as "live" until it ends).

use std::collections::{BTreeMap, BTreeSet};

use dialtone_store::CallRecord;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::views::{CallCounts, CallStatistics, NamedCounts};
use super::Operation;
use super::{args, db, sees, time_ms, time_text, to_json, Kind, ManageError};
use crate::control::CallControl;
use crate::tools::ToolContext;

/// Calls counted at most; more in the period sets `truncated`.
const MAX_CALLS: u32 = 100_000;
const DAY_MS: i64 = 24 * 3600 * 1000;

pub(super) fn operation() -> Operation {
    super::operation::<StatisticsArgs, CallStatistics>(
        "get_call_statistics",
        "Call statistics for the account over a period (default: the last 24 hours): \
         total calls, answered and failed, success rate, average duration, and the same \
         per assistant and per trunk.",
        Kind::Read,
        |c, ctx, a| Box::pin(run(c, ctx, a)),
    )
}

/// The period.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatisticsArgs {
    /// RFC 3339 start (default: 24 hours before until).
    pub since: Option<String>,
    /// RFC 3339 end (default: now).
    pub until: Option<String>,
}

/// Running totals of one group.
#[derive(Default)]
struct Tally {
    total: u64,
    answered: u64,
    failed: u64,
    durations_ms: i64,
    ended_answered: u64,
}

impl Tally {
    fn add(&mut self, r: &CallRecord) {
        self.total += 1;
        match (r.answered_at, r.ended_at) {
            (Some(a), Some(e)) => {
                self.answered += 1;
                self.ended_answered += 1;
                self.durations_ms += (e - a).max(0);
            }
            (Some(_), None) => self.answered += 1,
            (None, Some(_)) => self.failed += 1,
            (None, None) => {}
        }
    }

    fn counts(&self) -> CallCounts {
        let decided = self.answered + self.failed;
        let total_duration = self.durations_ms as f64 / 1000.0;
        CallCounts {
            total: self.total,
            answered: self.answered,
            failed: self.failed,
            success_rate: (decided > 0).then(|| self.answered as f64 / decided as f64),
            average_duration_seconds: (self.ended_answered > 0)
                .then(|| total_duration / self.ended_answered as f64),
            total_duration_seconds: total_duration,
        }
    }
}

/// The trunks a record's legs went through ("trunk:NAME" labels).
fn trunks(r: &CallRecord) -> BTreeSet<String> {
    let Ok(Value::Array(legs)) = serde_json::from_str::<Value>(&r.legs) else {
        return BTreeSet::new();
    };
    legs.iter()
        .filter_map(|l| l.get("label").and_then(Value::as_str))
        .filter_map(|l| l.strip_prefix("trunk:"))
        .map(str::to_owned)
        .collect()
}

fn named(groups: BTreeMap<String, Tally>) -> Vec<NamedCounts> {
    groups
        .into_iter()
        .map(|(id, t)| NamedCounts {
            id,
            counts: t.counts(),
        })
        .collect()
}

/// The statistics of `records` (the period's) from `since` to `until`.
fn statistics(records: &[CallRecord], since: i64, until: i64, truncated: bool) -> CallStatistics {
    let mut all = Tally::default();
    let mut by_outcome: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_assistant: BTreeMap<String, Tally> = BTreeMap::new();
    let mut by_trunk: BTreeMap<String, Tally> = BTreeMap::new();
    for r in records {
        all.add(r);
        let outcome = match (&r.ended_at, &r.outcome) {
            (None, _) => "live".to_owned(),
            (Some(_), Some(o)) => o.clone(),
            (Some(_), None) => "failed".to_owned(),
        };
        *by_outcome.entry(outcome).or_default() += 1;
        let persona = r.persona.clone().unwrap_or_else(|| "-".into());
        by_assistant.entry(persona).or_default().add(r);
        for t in trunks(r) {
            by_trunk.entry(t).or_default().add(r);
        }
    }
    CallStatistics {
        since: time_text(since),
        until: time_text(until),
        counts: all.counts(),
        by_outcome,
        by_assistant: named(by_assistant),
        by_trunk: named(by_trunk),
        truncated,
    }
}

async fn run(control: &CallControl, ctx: &ToolContext, a: Value) -> Result<Value, ManageError> {
    let p: StatisticsArgs = args(a)?;
    let until = match &p.until {
        Some(t) => time_ms("until", t)?,
        None => dialtone_store::unix_now_ms(),
    };
    let since = match &p.since {
        Some(t) => time_ms("since", t)?,
        None => until - DAY_MS,
    };
    if since >= until {
        return Err(ManageError::Invalid("since must be before until".into()));
    }
    let mut records = control
        .store()
        .calls()
        .between(ctx.account_id.as_deref(), since, until, MAX_CALLS)
        .await
        .map_err(db)?;
    let truncated = records.len() >= MAX_CALLS as usize;
    // Records without an account are the operator's alone.
    records.retain(|r| match &r.account_id {
        Some(acc) => sees(ctx, acc),
        None => ctx.account_id.is_none(),
    });
    to_json(&statistics(&records, since, until, truncated))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(
        persona: Option<&str>,
        answered: Option<i64>,
        ended: Option<i64>,
        legs: &str,
    ) -> CallRecord {
        CallRecord {
            id: "x".into(),
            node: "n".into(),
            direction: "outbound".into(),
            from_uri: String::new(),
            to_uri: String::new(),
            caller: String::new(),
            callee: String::new(),
            started_at: 0,
            answered_at: answered,
            ended_at: ended,
            outcome: match (answered, ended) {
                (Some(_), _) => Some("answered".into()),
                (None, Some(_)) => Some("busy".into()),
                _ => None,
            },
            hangup_cause: None,
            hangup_side: None,
            codecs: None,
            legs: legs.into(),
            stats: None,
            recording: None,
            persona: persona.map(str::to_owned),
            transcript: None,
            account_id: None,
        }
    }

    #[test]
    fn counts_rates_durations_and_groups() {
        let t = r#"[{"label":"trunk:carrier"},{"label":"persona:rec"}]"#;
        let records = [
            rec(Some("rec"), Some(1_000), Some(11_000), t),
            rec(Some("rec"), None, Some(2_000), t),
            rec(None, Some(0), Some(20_000), "[]"),
            rec(Some("rec"), None, None, "[]"),
        ];
        let s = statistics(&records, 0, 100, false);
        assert_eq!(
            (s.counts.total, s.counts.answered, s.counts.failed),
            (4, 2, 1)
        );
        assert_eq!(s.counts.success_rate, Some(2.0 / 3.0));
        assert_eq!(s.counts.average_duration_seconds, Some(15.0));
        assert_eq!(s.by_outcome["answered"], 2);
        assert_eq!(s.by_outcome["busy"], 1);
        assert_eq!(s.by_outcome["live"], 1);
        let rec_counts = s
            .by_assistant
            .iter()
            .find(|n| n.id == "rec")
            .map(|n| &n.counts);
        assert_eq!(rec_counts.map(|c| (c.total, c.answered)), Some((3, 1)));
        assert_eq!(s.by_trunk.len(), 1);
        assert_eq!(s.by_trunk[0].id, "carrier");
        assert_eq!(s.by_trunk[0].counts.success_rate, Some(0.5));
        let empty = statistics(&[], 0, 1, false);
        assert_eq!(empty.counts.success_rate, None);
    }
}

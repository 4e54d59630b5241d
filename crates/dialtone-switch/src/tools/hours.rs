//! `is_office_open()`: the persona's office hours (per weekday ranges,
//! split shifts, holiday closures) read in its time zone. The answer is
//! exactly one of four sentences, so that a model (or a script) can match
//! on it.

use jiff::ZonedDateTime;
use serde::Deserialize;
use serde_json::{json, Value};

use dialtone_store::OfficeHours;

use super::{arguments, FnTool, ToolAnnotations, ToolContext, ToolError, ToolOutput, ToolSpec};
use crate::control::CallControl;

/// The four answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OfficeStatus {
    Open,
    Closed,
    ClosedToday,
    Open24Hours,
}

impl OfficeStatus {
    pub fn sentence(self) -> &'static str {
        match self {
            OfficeStatus::Open => "Office is currently open",
            OfficeStatus::Closed => "Office is currently closed",
            OfficeStatus::ClosedToday => "Office is closed today",
            OfficeStatus::Open24Hours => "Office is open 24 hours today",
        }
    }

    fn word(self) -> &'static str {
        match self {
            OfficeStatus::Open => "open",
            OfficeStatus::Closed => "closed",
            OfficeStatus::ClosedToday => "closed_today",
            OfficeStatus::Open24Hours => "open_24_hours",
        }
    }
}

/// "HH:MM" as minutes since midnight ("24:00" is 1440).
fn minutes(hhmm: &str) -> Option<u32> {
    let (h, m) = hhmm.trim().split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 24 && m < 60 && h * 60 + m <= 1440).then_some(h * 60 + m)
}

/// The office's state at `now` (already in the persona's time zone).
pub fn office_status(hours: &OfficeHours, now: &ZonedDateTime) -> OfficeStatus {
    let today = now.date().to_string();
    if hours.closures.contains(&today) {
        return OfficeStatus::ClosedToday;
    }
    let day = now.weekday().to_monday_zero_offset() as usize;
    let mut ranges: Vec<(u32, u32)> = hours
        .weekly
        .get(day)
        .map(|r| {
            r.iter()
                .filter_map(|t| Some((minutes(&t.opens)?, minutes(&t.closes)?)))
                .filter(|(a, b)| a < b)
                .collect()
        })
        .unwrap_or_default();
    if ranges.is_empty() {
        return OfficeStatus::ClosedToday;
    }
    ranges.sort_unstable();
    // Covered from midnight to midnight without a gap?
    let mut reach = 0;
    for (a, b) in &ranges {
        if *a > reach {
            break;
        }
        reach = reach.max(*b);
    }
    if reach >= 1440 {
        return OfficeStatus::Open24Hours;
    }
    let t = now.hour() as u32 * 60 + now.minute() as u32;
    if ranges.iter().any(|(a, b)| *a <= t && t < *b) {
        OfficeStatus::Open
    } else {
        OfficeStatus::Closed
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoArgs {}

pub fn is_office_open() -> FnTool {
    FnTool::new(
        ToolSpec {
            name: "is_office_open".into(),
            description: "Whether the office is open now, from the agent's office hours \
            in its time zone. Answers exactly one of: \"Office is currently open\", \
            \"Office is currently closed\", \"Office is closed today\", \
            \"Office is open 24 hours today\"."
                .into(),
            input_schema: json!({"type": "object", "properties": {}, "additionalProperties": false}),
            output_schema: Some(json!({
                "type": "object",
                "properties": {
                    "status": {"type": "string", "enum": ["open", "closed", "closed_today", "open_24_hours"]},
                    "answer": {"type": "string"},
                    "time_zone": {"type": "string"},
                    "local_time": {"type": "string"}
                },
                "required": ["status", "answer"]
            })),
            annotations: ToolAnnotations {
                read_only: true,
                idempotent: true,
                ..Default::default()
            },
            call_bound: false,
        },
        |control, ctx, args| Box::pin(run(control, ctx, args)),
    )
}

async fn run(
    control: &CallControl,
    ctx: &ToolContext,
    args: Value,
) -> Result<ToolOutput, ToolError> {
    let NoArgs {} = arguments(args)?;
    let persona = ctx.persona_row(control).await?;
    let hours = control
        .store()
        .office_hours()
        .get(&persona.id)
        .await
        .map_err(|e| ToolError::Failed(format!("office hours unavailable: {e}")))?
        .ok_or_else(|| {
            ToolError::Failed(format!(
                "no office hours are configured for {} (dialtone hours set {})",
                persona.name, persona.name
            ))
        })?;
    let tz = jiff::tz::TimeZone::get(&persona.timezone).unwrap_or(jiff::tz::TimeZone::UTC);
    let now = jiff::Timestamp::now().to_zoned_datetime(tz);
    let status = office_status(&hours, &now);
    Ok(ToolOutput::with(
        status.sentence(),
        json!({
            "status": status.word(),
            "answer": status.sentence(),
            "time_zone": persona.timezone,
            "local_time": now.strftime("%Y-%m-%d %H:%M %A").to_string(),
        }),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use dialtone_store::TimeRange;

    fn range(a: &str, b: &str) -> TimeRange {
        TimeRange {
            opens: a.into(),
            closes: b.into(),
        }
    }

    fn at(s: &str) -> ZonedDateTime {
        // 2026-12-07 is a Monday.
        format!("{s}[Europe/Berlin]").parse().unwrap()
    }

    fn week() -> OfficeHours {
        let mut weekly: [Vec<TimeRange>; 7] = Default::default();
        weekly[0] = vec![range("09:00", "12:00"), range("13:00", "17:00")];
        weekly[1] = vec![range("00:00", "12:00"), range("12:00", "24:00")];
        OfficeHours {
            weekly,
            closures: vec!["2026-12-25".into()],
        }
    }

    #[test]
    fn the_four_answers() {
        let h = week();
        assert_eq!(
            office_status(&h, &at("2026-12-07T10:00:00")),
            OfficeStatus::Open
        );
        assert_eq!(
            office_status(&h, &at("2026-12-07T12:30:00")),
            OfficeStatus::Closed
        );
        assert_eq!(
            office_status(&h, &at("2026-12-07T17:00:00")),
            OfficeStatus::Closed
        );
        assert_eq!(
            office_status(&h, &at("2026-12-07T08:59:00")),
            OfficeStatus::Closed
        );
        assert_eq!(
            office_status(&h, &at("2026-12-08T03:00:00")),
            OfficeStatus::Open24Hours
        );
        assert_eq!(
            office_status(&h, &at("2026-12-09T10:00:00")),
            OfficeStatus::ClosedToday
        );
        // 2026-12-25 is a Friday; a closure wins over any hours.
        let mut h2 = week();
        h2.weekly[4] = vec![range("00:00", "24:00")];
        assert_eq!(
            office_status(&h2, &at("2026-12-25T10:00:00")),
            OfficeStatus::ClosedToday
        );
        assert_eq!(
            OfficeStatus::Open24Hours.sentence(),
            "Office is open 24 hours today"
        );
    }

    #[test]
    fn times_parse_strictly() {
        assert_eq!(minutes("09:30"), Some(570));
        assert_eq!(minutes("24:00"), Some(1440));
        assert_eq!(minutes("24:01"), None);
        assert_eq!(minutes("9"), None);
        assert_eq!(minutes("ab:cd"), None);
    }
}

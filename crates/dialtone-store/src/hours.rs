//! Office hours of personas: per weekday (Monday first) the ranges the
//! office is open, as `HH:MM` local times in the persona's time zone, and
//! closure days (holidays) as `YYYY-MM-DD`. A weekday without ranges is
//! closed; a persona with neither ranges nor closures has no office hours
//! configured. The store refuses malformed times and dates, ranges that end
//! before they start, and ranges of one day that are out of order or
//! overlap; the checks are public so front ends give the same answers.
//! Removing a persona removes its hours (ON DELETE CASCADE, migration 0005).

use sqlx::Row;

use crate::error::is_foreign_key_violation;
use crate::{Store, StoreError};

/// One opening range of a day, "HH:MM" to "HH:MM" (closes may be "24:00").
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TimeRange {
    pub opens: String,
    pub closes: String,
}

/// A persona's office hours.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OfficeHours {
    /// Monday first; each day's ranges in order, none: closed that day.
    pub weekly: [Vec<TimeRange>; 7],
    /// Closure days, "YYYY-MM-DD", sorted.
    pub closures: Vec<String>,
}

const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

fn invalid(reason: String) -> StoreError {
    StoreError::Invalid { reason }
}

/// Minutes since midnight of "HH:MM" (00:00–23:59; "24:00" only when
/// `closing`).
fn minutes_of(time: &str, closing: bool) -> Result<u16, StoreError> {
    let bytes = time.as_bytes();
    let well_formed = bytes.len() == 5
        && bytes[2] == b':'
        && [0, 1, 3, 4].iter().all(|&i| bytes[i].is_ascii_digit());
    let digit = |i: usize| u16::from(bytes[i] - b'0');
    if well_formed {
        let (h, m) = (digit(0) * 10 + digit(1), digit(3) * 10 + digit(4));
        if (h < 24 && m < 60) || (closing && h == 24 && m == 0) {
            return Ok(h * 60 + m);
        }
    }
    Err(invalid(format!(
        "{time:?} is not a time: use HH:MM from 00:00 to 23:59{}",
        if closing {
            " (or 24:00 to close at midnight)"
        } else {
            ""
        }
    )))
}

impl TimeRange {
    /// A range from `opens` to `closes`, checked: both "HH:MM", `closes` may
    /// be "24:00", and `opens` must be earlier than `closes`.
    pub fn new(opens: &str, closes: &str) -> Result<TimeRange, StoreError> {
        let range = TimeRange {
            opens: opens.to_owned(),
            closes: closes.to_owned(),
        };
        range.minutes()?;
        Ok(range)
    }

    /// "09:00-17:00" as a checked range.
    pub fn parse(text: &str) -> Result<TimeRange, StoreError> {
        let Some((opens, closes)) = text.split_once('-') else {
            return Err(invalid(format!(
                "{text:?} is not a time range: use HH:MM-HH:MM, e.g. 09:00-17:00"
            )));
        };
        TimeRange::new(opens.trim(), closes.trim())
    }

    /// Opening and closing minute of the day; an error if the range is not valid.
    pub fn minutes(&self) -> Result<(u16, u16), StoreError> {
        let opens = minutes_of(&self.opens, false)?;
        let closes = minutes_of(&self.closes, true)?;
        if opens >= closes {
            return Err(invalid(format!(
                "{self}: the office must open before it closes (a range cannot cross \
                 midnight: end the day at 24:00 and start the next at 00:00)"
            )));
        }
        Ok((opens, closes))
    }
}

impl std::fmt::Display for TimeRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.opens, self.closes)
    }
}

/// Checks one day's ranges: each valid, in order, none overlapping the next
/// (one may close when the next opens).
pub fn check_day(ranges: &[TimeRange]) -> Result<(), StoreError> {
    let mut previous: Option<(&TimeRange, u16)> = None;
    for range in ranges {
        let (opens, closes) = range.minutes()?;
        if let Some((before, before_closes)) = previous {
            if opens < before_closes {
                return Err(invalid(format!(
                    "{before} and {range} overlap or are out of order: give a day's ranges \
                     earliest first, each starting no earlier than the previous one ends"
                )));
            }
        }
        previous = Some((range, closes));
    }
    Ok(())
}

/// Checks a calendar date written "YYYY-MM-DD" (years 0001–9999).
pub fn check_date(day: &str) -> Result<(), StoreError> {
    let bytes = day.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = bytes.get(range)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        part.iter()
            .try_fold(0u32, |n, d| Some(n * 10 + u32::from(d - b'0')))
    };
    let valid = bytes.len() == 10 && bytes[4] == b'-' && bytes[7] == b'-' && {
        match (digits(0..4), digits(5..7), digits(8..10)) {
            (Some(y), Some(m), Some(d)) => y >= 1 && d >= 1 && d <= days_in_month(y, m),
            _ => false,
        }
    };
    if valid {
        Ok(())
    } else {
        Err(invalid(format!(
            "{day:?} is not a date: use YYYY-MM-DD, e.g. 2026-12-25"
        )))
    }
}

/// 0 for a month that does not exist.
fn days_in_month(year: u32, month: u32) -> u32 {
    let leap = (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => 0,
    }
}

/// The English name of weekday 0 (Monday) to 6 (Sunday).
pub fn weekday_name(weekday: u8) -> Option<&'static str> {
    WEEKDAYS.get(usize::from(weekday)).copied()
}

fn check_weekday(weekday: u8) -> Result<(), StoreError> {
    if weekday > 6 {
        return Err(invalid(format!(
            "weekday {weekday} does not exist: use 0 (Monday) to 6 (Sunday)"
        )));
    }
    Ok(())
}

impl OfficeHours {
    /// Whether the office is open on `day` ("YYYY-MM-DD", which is a
    /// `weekday`, 0 = Monday) at `minute` minutes after local midnight:
    /// not a closure day, and inside one of that weekday's ranges (opening
    /// minute included, closing minute excluded).
    pub fn is_open_at(&self, day: &str, weekday: u8, minute: u16) -> bool {
        if self.closures.iter().any(|c| c == day) {
            return false;
        }
        self.weekly.get(usize::from(weekday)).is_some_and(|ranges| {
            ranges.iter().any(|r| {
                r.minutes()
                    .is_ok_and(|(opens, closes)| opens <= minute && minute < closes)
            })
        })
    }
}

/// The office_hours and office_closures tables. Obtained from [`Store::office_hours`].
#[derive(Debug, Clone, Copy)]
pub struct Hours<'a> {
    store: &'a Store,
}

type Tx = sqlx::Transaction<'static, sqlx::Any>;

impl<'a> Hours<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Hours { store }
    }

    /// The persona's office hours; None when none are configured (no ranges
    /// and no closures), including for an unknown persona.
    pub async fn get(&self, persona_id: &str) -> Result<Option<OfficeHours>, StoreError> {
        let mut tx = self.store.pool().begin().await?;
        let rows = sqlx::query(
            "SELECT weekday, opens, closes FROM office_hours WHERE persona_id = $1 \
             ORDER BY weekday, position",
        )
        .bind(persona_id)
        .fetch_all(&mut *tx)
        .await?;
        let mut closures: Vec<String> =
            sqlx::query_scalar("SELECT day FROM office_closures WHERE persona_id = $1")
                .bind(persona_id)
                .fetch_all(&mut *tx)
                .await?;
        tx.commit().await?;
        if rows.is_empty() && closures.is_empty() {
            return Ok(None);
        }
        let mut hours = OfficeHours::default();
        for row in &rows {
            let weekday: i64 = row.try_get("weekday")?;
            let day = usize::try_from(weekday)
                .ok()
                .and_then(|d| hours.weekly.get_mut(d))
                .ok_or_else(|| sqlx::Error::ColumnDecode {
                    index: "weekday".into(),
                    source: format!("weekday {weekday} is not 0..=6").into(),
                })?;
            day.push(TimeRange {
                opens: row.try_get("opens")?,
                closes: row.try_get("closes")?,
            });
        }
        // Sorted in Rust so both backends agree (see `Accounts::list`).
        closures.sort();
        hours.closures = closures;
        Ok(Some(hours))
    }

    /// Replaces the persona's whole week (closures stay), in one transaction.
    /// [`StoreError::Invalid`] (nothing changed) if a day's ranges are not
    /// valid, [`StoreError::NotFound`] if there is no such persona.
    pub async fn set_week(
        &self,
        persona_id: &str,
        weekly: &[Vec<TimeRange>; 7],
    ) -> Result<(), StoreError> {
        for (weekday, ranges) in weekly.iter().enumerate() {
            check_day(ranges).map_err(|e| in_day(weekday, e))?;
        }
        let mut tx = self.lock_persona(persona_id).await?;
        sqlx::query("DELETE FROM office_hours WHERE persona_id = $1")
            .bind(persona_id)
            .execute(&mut *tx)
            .await?;
        for (weekday, ranges) in (0u8..).zip(weekly.iter()) {
            insert_day(&mut tx, persona_id, weekday, ranges).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Replaces one weekday's ranges (0 = Monday … 6 = Sunday; none: closed
    /// that day), in one transaction. [`StoreError::Invalid`] for a bad
    /// weekday or ranges, [`StoreError::NotFound`] if there is no such persona.
    pub async fn set_day(
        &self,
        persona_id: &str,
        weekday: u8,
        ranges: &[TimeRange],
    ) -> Result<(), StoreError> {
        check_weekday(weekday)?;
        check_day(ranges).map_err(|e| in_day(usize::from(weekday), e))?;
        let mut tx = self.lock_persona(persona_id).await?;
        sqlx::query("DELETE FROM office_hours WHERE persona_id = $1 AND weekday = $2")
            .bind(persona_id)
            .bind(i64::from(weekday))
            .execute(&mut *tx)
            .await?;
        insert_day(&mut tx, persona_id, weekday, ranges).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Adds a closure day; Ok(false) if it was one already.
    /// [`StoreError::Invalid`] for a bad date, [`StoreError::NotFound`] if
    /// there is no such persona.
    pub async fn add_closure(&self, persona_id: &str, day: &str) -> Result<bool, StoreError> {
        check_date(day)?;
        let inserted = sqlx::query(
            "INSERT INTO office_closures (persona_id, day) VALUES ($1, $2) \
             ON CONFLICT (persona_id, day) DO NOTHING",
        )
        .bind(persona_id)
        .bind(day)
        .execute(self.store.pool())
        .await;
        match inserted {
            Ok(done) => Ok(done.rows_affected() > 0),
            Err(e) if is_foreign_key_violation(&e) => Err(persona_not_found(persona_id)),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes a closure day; Ok(false) if it was not one.
    pub async fn remove_closure(&self, persona_id: &str, day: &str) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM office_closures WHERE persona_id = $1 AND day = $2")
            .bind(persona_id)
            .bind(day)
            .execute(self.store.pool())
            .await?
            .rows_affected();
        Ok(deleted > 0)
    }

    /// Removes the persona's ranges and closures: no office hours configured.
    pub async fn clear(&self, persona_id: &str) -> Result<(), StoreError> {
        let mut tx = self.store.begin_write().await?;
        for table in ["office_hours", "office_closures"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE persona_id = $1"))
                .bind(persona_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A write transaction holding the persona's row lock (a no-op update), so
    /// concurrent changes of its hours apply one after the other on
    /// PostgreSQL (SQLite: BEGIN IMMEDIATE already does); NotFound if there
    /// is no such persona.
    async fn lock_persona(&self, persona_id: &str) -> Result<Tx, StoreError> {
        let mut tx = self.store.begin_write().await?;
        let locked = sqlx::query("UPDATE personas SET updated_at = updated_at WHERE id = $1")
            .bind(persona_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if locked == 0 {
            tx.rollback().await?;
            return Err(persona_not_found(persona_id));
        }
        Ok(tx)
    }
}

async fn insert_day(
    tx: &mut Tx,
    persona_id: &str,
    weekday: u8,
    ranges: &[TimeRange],
) -> Result<(), StoreError> {
    for (position, range) in (0i64..).zip(ranges) {
        sqlx::query(
            "INSERT INTO office_hours (persona_id, weekday, position, opens, closes) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(persona_id)
        .bind(i64::from(weekday))
        .bind(position)
        .bind(range.opens.as_str())
        .bind(range.closes.as_str())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Names the day in a range error.
fn in_day(weekday: usize, e: StoreError) -> StoreError {
    match e {
        StoreError::Invalid { reason } => invalid(format!(
            "{}: {reason}",
            WEEKDAYS.get(weekday).copied().unwrap_or("?")
        )),
        other => other,
    }
}

fn persona_not_found(persona_id: &str) -> StoreError {
    StoreError::NotFound {
        what: format!("persona {persona_id:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(opens: &str, closes: &str) -> TimeRange {
        TimeRange {
            opens: opens.to_owned(),
            closes: closes.to_owned(),
        }
    }

    #[test]
    fn times_and_ranges() {
        assert!(TimeRange::new("00:00", "24:00").is_ok());
        assert!(TimeRange::new("09:00", "09:01").is_ok());
        assert_eq!(
            TimeRange::parse("09:00-17:30")
                .map(|r| r.minutes().ok())
                .ok(),
            Some(Some((540, 1050)))
        );
        for (opens, closes) in [
            ("24:00", "24:00"),
            ("09:00", "09:00"),
            ("17:00", "09:00"),
            ("9:00", "17:00"),
            ("09:60", "17:00"),
            ("09:00", "24:01"),
            ("25:00", "26:00"),
            ("09-00", "17:00"),
            ("", "17:00"),
        ] {
            assert!(
                matches!(
                    TimeRange::new(opens, closes),
                    Err(StoreError::Invalid { .. })
                ),
                "{opens}-{closes}"
            );
        }
        assert!(TimeRange::parse("0900").is_err());
    }

    #[test]
    fn a_days_ranges_are_ordered_and_disjoint() {
        assert!(check_day(&[]).is_ok());
        assert!(check_day(&[range("09:00", "12:00"), range("12:00", "17:00")]).is_ok());
        assert!(check_day(&[range("09:00", "12:00"), range("11:00", "17:00")]).is_err());
        assert!(check_day(&[range("13:00", "17:00"), range("09:00", "12:00")]).is_err());
    }

    #[test]
    fn dates() {
        for ok in ["2026-12-25", "2024-02-29", "2000-02-29", "0001-01-01"] {
            assert!(check_date(ok).is_ok(), "{ok}");
        }
        for bad in [
            "2026-02-29",
            "1900-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-04-31",
            "2026-1-1",
            "26-12-25",
            "2026/12/25",
            "0000-01-01",
            "2026-12-25x",
            "",
        ] {
            assert!(check_date(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn open_at() {
        let mut hours = OfficeHours::default();
        hours.weekly[0] = vec![range("09:00", "12:00"), range("13:00", "24:00")];
        hours.closures = vec!["2026-12-28".to_owned()];
        assert!(hours.is_open_at("2026-12-21", 0, 9 * 60));
        assert!(!hours.is_open_at("2026-12-21", 0, 12 * 60));
        assert!(hours.is_open_at("2026-12-21", 0, 23 * 60 + 59));
        assert!(!hours.is_open_at("2026-12-21", 0, 8 * 60 + 59));
        assert!(!hours.is_open_at("2026-12-22", 1, 10 * 60));
        assert!(!hours.is_open_at("2026-12-28", 0, 10 * 60));
        assert!(!hours.is_open_at("2026-12-21", 9, 10 * 60));
    }
}

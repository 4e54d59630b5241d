//! Call limits: how many calls a user, a trunk or an account may have at
//! once (`max_calls`) and how fast it may start new ones (`max_cps`, new
//! calls per second; below one a second for "N a minute"). The store keeps
//! them (columns of `users`, `trunks` and `accounts`, migration 0009); the
//! switch counts calls in memory and enforces them. `None`: no limit.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Store, StoreError};

/// The limits of one party. The rate is kept in thousandths of a call per
/// second so that "30 a minute" (500) is exact.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CallLimits {
    /// Calls at once; Some(0): no calls at all.
    pub max_calls: Option<u32>,
    /// New calls per second × 1000; Some(0): no new calls at all.
    pub max_cps_milli: Option<u32>,
}

impl CallLimits {
    /// No limit of either kind.
    pub fn is_unlimited(&self) -> bool {
        self.max_calls.is_none() && self.max_cps_milli.is_none()
    }

    /// The rate in calls per second, if limited.
    pub fn max_cps(&self) -> Option<f64> {
        self.max_cps_milli.map(|m| f64::from(m) / 1000.0)
    }

    /// "max_calls=2 max_cps=0.5", "max_calls=- max_cps=-" without limits:
    /// the columns of the CLI listings.
    pub fn describe(&self) -> String {
        let calls = self
            .max_calls
            .map_or_else(|| "-".to_string(), |n| n.to_string());
        let cps = self
            .max_cps_milli
            .map_or_else(|| "-".to_string(), format_rate);
        format!("max_calls={calls} max_cps={cps}")
    }

    pub(crate) fn from_row(row: &AnyRow) -> Result<CallLimits, sqlx::Error> {
        let read = |column: &str| -> Result<Option<u32>, sqlx::Error> {
            Ok(row
                .try_get::<Option<i64>, _>(column)?
                .map(|v| u32::try_from(v.max(0)).unwrap_or(u32::MAX)))
        };
        Ok(CallLimits {
            max_calls: read("max_calls")?,
            max_cps_milli: read("max_cps_milli")?,
        })
    }
}

/// A rate in thousandths as people write it: "2", "0.5", "0.125".
pub fn format_rate(milli: u32) -> String {
    let whole = milli / 1000;
    let frac = milli % 1000;
    if frac == 0 {
        whole.to_string()
    } else {
        let digits = format!("{frac:03}");
        format!("{whole}.{}", digits.trim_end_matches('0'))
    }
}

/// Reads `--max-calls`: a count (0 = no calls), or "none" (no limit).
pub fn parse_max_calls(s: &str) -> Result<Option<u32>, String> {
    let s = s.trim();
    if is_none_word(s) {
        return Ok(None);
    }
    s.parse::<u32>().map(Some).map_err(|_| {
        format!("{s:?} is not a number of calls (a whole number, or \"none\" for no limit)")
    })
}

/// Reads `--max-cps`: calls per second ("5", "0.5"), per minute ("30/min"),
/// 0 for no new calls, or "none" (no limit); in thousandths of a call per
/// second. A rate that rounds to nothing (below 0.001 a second) is refused.
pub fn parse_max_cps(s: &str) -> Result<Option<u32>, String> {
    let s = s.trim();
    if is_none_word(s) {
        return Ok(None);
    }
    let bad = || {
        format!(
            "{s:?} is not a call rate (calls per second such as 5 or 0.5, \
             per minute such as 30/min, or \"none\" for no limit)"
        )
    };
    let (number, per) = match s.split_once('/') {
        Some((n, unit)) => match unit.trim().to_ascii_lowercase().as_str() {
            "s" | "sec" | "second" => (n.trim(), 1.0),
            "m" | "min" | "minute" => (n.trim(), 60.0),
            _ => return Err(bad()),
        },
        None => (s, 1.0),
    };
    let value: f64 = number.parse().map_err(|_| bad())?;
    if !value.is_finite() || value < 0.0 {
        return Err(bad());
    }
    let milli = (value / per * 1000.0).round();
    if milli > f64::from(u32::MAX) {
        return Err(format!("{s:?} is too high a call rate"));
    }
    if value > 0.0 && milli < 1.0 {
        return Err(format!(
            "{s:?} is too low a call rate (at least 0.001 a second, 0.06 a minute)"
        ));
    }
    // In range and not negative: the cast is exact.
    Ok(Some(milli as u32))
}

fn is_none_word(s: &str) -> bool {
    matches!(
        s.to_ascii_lowercase().as_str(),
        "none" | "unlimited" | "off"
    )
}

/// Sets both limits of the row of `table` whose `key` column is `value`;
/// Ok(false) when there is none. `table` and `key` are ours, never input.
pub(crate) async fn set(
    store: &Store,
    table: &str,
    key: &str,
    value: &str,
    limits: CallLimits,
) -> Result<bool, StoreError> {
    let updated = sqlx::query(&format!(
        "UPDATE {table} SET max_calls = $2, max_cps_milli = $3 WHERE {key} = $1"
    ))
    .bind(value)
    .bind(limits.max_calls.map(i64::from))
    .bind(limits.max_cps_milli.map(i64::from))
    .execute(store.pool())
    .await?
    .rows_affected();
    Ok(updated > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_as_people_write_them() {
        assert_eq!(parse_max_cps("5"), Ok(Some(5000)));
        assert_eq!(parse_max_cps("0.5"), Ok(Some(500)));
        assert_eq!(parse_max_cps("30/min"), Ok(Some(500)));
        assert_eq!(parse_max_cps("120 / minute"), Ok(Some(2000)));
        assert_eq!(parse_max_cps("3/s"), Ok(Some(3000)));
        assert_eq!(parse_max_cps("0"), Ok(Some(0)));
        assert_eq!(parse_max_cps("none"), Ok(None));
        assert!(parse_max_cps("-1").is_err());
        assert!(parse_max_cps("fast").is_err());
        assert!(parse_max_cps("5/hour").is_err());
        assert!(parse_max_cps("0.0001").is_err());
        assert!(parse_max_cps("NaN").is_err());
    }

    #[test]
    fn counts_and_their_words() {
        assert_eq!(parse_max_calls("2"), Ok(Some(2)));
        assert_eq!(parse_max_calls("0"), Ok(Some(0)));
        assert_eq!(parse_max_calls("None"), Ok(None));
        assert!(parse_max_calls("-2").is_err());
        assert!(parse_max_calls("two").is_err());
    }

    #[test]
    fn rates_print_back() {
        assert_eq!(format_rate(5000), "5");
        assert_eq!(format_rate(500), "0.5");
        assert_eq!(format_rate(125), "0.125");
        assert_eq!(format_rate(2050), "2.05");
        let l = CallLimits {
            max_calls: Some(3),
            max_cps_milli: Some(500),
        };
        assert_eq!(l.describe(), "max_calls=3 max_cps=0.5");
        assert_eq!(CallLimits::default().describe(), "max_calls=- max_cps=-");
        assert!(CallLimits::default().is_unlimited());
        assert_eq!(l.max_cps(), Some(0.5));
    }
}

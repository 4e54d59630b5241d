//! The SRTP policy of a user or a trunk (column `srtp` of `users` and
//! `trunks`, migration 0011): whether its media is protected by SRTP
//! (RFC 3711) keyed by SDES (RFC 4568). `None` in a row: the configured
//! default (`media.srtp`). The switch negotiates it per leg.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Store, StoreError};

/// How a party's media is protected.
///
/// - `off`: plain RTP only; an offer of RTP/SAVP is refused (488).
/// - `optional`: SRTP when the party offers it (RTP/SAVP, or best-effort
///   `a=crypto` on RTP/AVP); dialtone's own offers to the party are plain.
/// - `required`: dialtone offers RTP/SAVP with SDES keys and refuses plain
///   offers (488).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum SrtpPolicy {
    Off,
    #[default]
    Optional,
    Required,
}

impl SrtpPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            SrtpPolicy::Off => "off",
            SrtpPolicy::Optional => "optional",
            SrtpPolicy::Required => "required",
        }
    }
}

impl std::str::FromStr for SrtpPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" => Ok(SrtpPolicy::Off),
            "optional" => Ok(SrtpPolicy::Optional),
            "required" => Ok(SrtpPolicy::Required),
            _ => Err(format!(
                "{s:?} is not an SRTP policy (off, optional or required)"
            )),
        }
    }
}

impl std::fmt::Display for SrtpPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `srtp` column of a row. A value this version does not know (written
/// by a newer one, or by hand) reads as the default, with a warning: a
/// party must not become unreachable over it.
pub(crate) fn from_row(row: &AnyRow) -> Result<Option<SrtpPolicy>, sqlx::Error> {
    let text: Option<String> = row.try_get("srtp")?;
    Ok(text.and_then(|t| {
        t.parse()
            .map_err(|e: String| tracing::warn!(error = %e, "unknown SRTP policy in the database; using the default"))
            .ok()
    }))
}

/// Sets (or with `None` clears) the policy of the row of `table` whose
/// `key_column` is `key`; Ok(false) when there is no such row.
pub(crate) async fn set(
    store: &Store,
    table: &str,
    key_column: &str,
    key: &str,
    policy: Option<SrtpPolicy>,
) -> Result<bool, StoreError> {
    let updated = sqlx::query(&format!(
        "UPDATE {table} SET srtp = $2 WHERE {key_column} = $1"
    ))
    .bind(key)
    .bind(policy.map(SrtpPolicy::as_str))
    .execute(store.pool())
    .await?
    .rows_affected();
    Ok(updated > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_the_three_words() {
        for p in [SrtpPolicy::Off, SrtpPolicy::Optional, SrtpPolicy::Required] {
            assert_eq!(p.as_str().parse::<SrtpPolicy>(), Ok(p));
            assert_eq!(p.to_string().to_uppercase().parse::<SrtpPolicy>(), Ok(p));
        }
        let err = "maybe".parse::<SrtpPolicy>().err().unwrap_or_default();
        assert!(err.contains("off, optional or required"), "{err}");
        assert_eq!(SrtpPolicy::default(), SrtpPolicy::Optional);
    }
}

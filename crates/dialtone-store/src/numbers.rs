//! Numbers: the dialled numbers (DIDs) dialtone answers for, each pointing at
//! what it rings — a user, a trunk, a persona or a queue, by name.

use std::fmt;
use std::str::FromStr;

use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;

use crate::cache::Table;
use crate::error::is_unique_violation;
use crate::store::unix_now;
use crate::{Store, StoreError};

/// What a number rings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetKind {
    User,
    Trunk,
    Persona,
    Queue,
}

impl TargetKind {
    /// Every kind, in declaration order.
    pub const ALL: [TargetKind; 4] = [
        TargetKind::User,
        TargetKind::Trunk,
        TargetKind::Persona,
        TargetKind::Queue,
    ];

    /// "user", "trunk", "persona" or "queue" (also how it is stored).
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::User => "user",
            TargetKind::Trunk => "trunk",
            TargetKind::Persona => "persona",
            TargetKind::Queue => "queue",
        }
    }
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of "user", "trunk", "persona", "queue".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown target kind {0:?} (expected user, trunk, persona or queue)")]
pub struct ParseTargetKindError(pub String);

impl FromStr for TargetKind {
    type Err = ParseTargetKindError;

    /// Exact, lowercase names only.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TargetKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| ParseTargetKindError(s.to_owned()))
    }
}

/// A number (DID) and what it rings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Number {
    pub id: String,
    /// As entered, e.g. "+15551234567" or "5551234567".
    pub number: String,
    pub target_kind: TargetKind,
    /// The name of the user, trunk, persona or queue.
    pub target: String,
    /// Calls to this number are recorded.
    pub record: bool,
    /// Unix seconds.
    pub created_at: i64,
}

/// The numbers table. Obtained from [`Store::numbers`].
#[derive(Debug, Clone, Copy)]
pub struct Numbers<'a> {
    store: &'a Store,
}

const SELECT_NUMBERS: &str =
    "SELECT id, number, target_kind, target, record, created_at FROM numbers";

impl<'a> Numbers<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Numbers { store }
    }

    /// Creates a number; [`StoreError::Conflict`] if it exists (exactly as written:
    /// "+1555" and "1555" are different numbers, though [`Numbers::lookup`] finds
    /// either). The target is not checked; a trunk that is a target cannot be
    /// removed (see [`crate::Trunks::remove`]). `record`: calls to it are recorded.
    pub async fn create(
        &self,
        number: &str,
        kind: TargetKind,
        target: &str,
        record: bool,
    ) -> Result<Number, StoreError> {
        let created = Number {
            id: Uuid::new_v4().to_string(),
            number: number.to_owned(),
            target_kind: kind,
            target: target.to_owned(),
            record,
            created_at: unix_now(),
        };
        let inserted = sqlx::query(
            "INSERT INTO numbers (id, number, target_kind, target, record, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(created.id.as_str())
        .bind(number)
        .bind(kind.as_str())
        .bind(target)
        .bind(i64::from(record))
        .bind(created.created_at)
        .execute(self.store.pool())
        .await;
        match inserted {
            Ok(_) => {
                self.store.changed(Table::Numbers, number).await?;
                Ok(created)
            }
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict {
                what: format!("number {number:?}"),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Finds a number as dialled: exact match first, then the same digits with/without a leading '+'.
    /// Only one '+' is added or dropped: "++1555" does not find "+1555", nor "+" find "".
    pub async fn lookup(&self, dialled: &str) -> Result<Option<Number>, StoreError> {
        let bare = dialled.strip_prefix('+').unwrap_or(dialled);
        let other = if bare.is_empty() || bare.starts_with('+') {
            // No other form: look the exact text up twice.
            dialled.to_owned()
        } else if bare.len() < dialled.len() {
            bare.to_owned()
        } else {
            format!("+{dialled}")
        };
        let rows = sqlx::query(&format!("{SELECT_NUMBERS} WHERE number IN ($1, $2)"))
            .bind(dialled)
            .bind(other.as_str())
            .fetch_all(self.store.pool())
            .await?;
        let mut found = rows
            .iter()
            .map(number_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        // At most two rows; the exact one wins.
        found.sort_by_key(|n| n.number != dialled);
        Ok(found.into_iter().next())
    }

    /// [`lookup`](Self::lookup) through the switch's cache, when this
    /// process keeps one ([`Store::keep_in_memory`]).
    pub async fn lookup_cached(&self, dialled: &str) -> Result<Option<Number>, StoreError> {
        self.store
            .read_through(|c| &c.numbers, dialled, self.lookup(dialled))
            .await
    }

    /// Every number, ordered by number.
    pub async fn list(&self) -> Result<Vec<Number>, StoreError> {
        let rows = sqlx::query(SELECT_NUMBERS)
            .fetch_all(self.store.pool())
            .await?;
        let mut numbers = rows
            .iter()
            .map(number_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        // Sorted in Rust so both backends agree (see `Accounts::list`).
        numbers.sort_by(|a, b| a.number.cmp(&b.number));
        Ok(numbers)
    }

    /// Switches recording of calls to the number (matched exactly as stored) on or
    /// off; Ok(false) when there is no such number.
    pub async fn set_record(&self, number: &str, record: bool) -> Result<bool, StoreError> {
        let updated = sqlx::query("UPDATE numbers SET record = $2 WHERE number = $1")
            .bind(number)
            .bind(i64::from(record))
            .execute(self.store.pool())
            .await?
            .rows_affected();
        self.store.changed(Table::Numbers, number).await?;
        Ok(updated > 0)
    }

    /// Removes the number (matched exactly as stored); Ok(false) when there was none.
    pub async fn remove(&self, number: &str) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM numbers WHERE number = $1")
            .bind(number)
            .execute(self.store.pool())
            .await?
            .rows_affected();
        self.store.changed(Table::Numbers, number).await?;
        Ok(deleted > 0)
    }
}

fn number_from_row(row: &AnyRow) -> Result<Number, sqlx::Error> {
    let kind: String = row.try_get("target_kind")?;
    Ok(Number {
        id: row.try_get("id")?,
        number: row.try_get("number")?,
        target_kind: kind.parse().map_err(|e| sqlx::Error::ColumnDecode {
            index: "target_kind".into(),
            source: Box::new(e),
        })?,
        target: row.try_get("target")?,
        record: row.try_get::<i64, _>("record")? != 0,
        created_at: row.try_get("created_at")?,
    })
}

//! Call records: one row per call, inserted when the call starts and
//! completed when it ends, so a crash leaves an open ("active") row rather
//! than nothing; the restarted node closes its own open rows with
//! [`Calls::close_orphans`].

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::batch::{self, AnyQuery, MultiRow};
use crate::error::is_unique_violation;
use crate::writer::Lane;
use crate::{Store, StoreError};

/// One call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// dialtone's call id (uuid), chosen by the caller.
    pub id: String,
    /// Which dialtone instance owns it.
    pub node: String,
    /// "inbound" (from a trunk), "outbound" (to a trunk), "internal".
    pub direction: String,
    pub from_uri: String,
    pub to_uri: String,
    /// User or number as shown.
    pub caller: String,
    /// User or number as shown.
    pub callee: String,
    /// Unix MILLISECONDS.
    pub started_at: i64,
    /// Unix milliseconds.
    pub answered_at: Option<i64>,
    /// Unix milliseconds; None while the call is active.
    pub ended_at: Option<i64>,
    /// "answered", "busy", "no_answer", "cancelled", "rejected", "failed", "unavailable".
    pub outcome: Option<String>,
    /// E.g. "486 Busy Here", "BYE", "rtp timeout", "shutdown", "max duration".
    pub hangup_cause: Option<String>,
    /// "caller", "callee", "system".
    pub hangup_side: Option<String>,
    /// E.g. "PCMU/8000".
    pub codecs: Option<String>,
    /// JSON array text of the legs, stored as given.
    pub legs: String,
    /// JSON text (packets per leg etc.), stored as given.
    pub stats: Option<String>,
    /// The recording's WAV file path; None when the call is not recorded.
    pub recording: Option<String>,
    /// The persona's name when an AI agent took part.
    pub persona: Option<String>,
    /// JSON array text `[{"side":"caller"|"agent","text":…,"at_ms":…}]`,
    /// stored as given; None when nothing was transcribed.
    pub transcript: Option<String>,
    /// The account (tenant) the call belongs to; None when unknown.
    pub account_id: Option<String>,
}

/// The calls table. Obtained from [`Store::calls`].
#[derive(Debug, Clone, Copy)]
pub struct Calls<'a> {
    store: &'a Store,
}

/// Columns in the order `call_from_row` reads them.
macro_rules! select_calls {
    ($rest:literal) => {
        concat!(
            "SELECT id, node, direction, from_uri, to_uri, caller, callee, started_at, \
             answered_at, ended_at, outcome, hangup_cause, hangup_side, codecs, legs, stats, \
             recording, persona, transcript, account_id FROM calls ",
            $rest
        )
    };
}

/// What [`Calls::close_orphans`] writes.
const ORPHAN_OUTCOME: &str = "failed";
const ORPHAN_CAUSE: &str = "node restart";
const ORPHAN_SIDE: &str = "system";

/// The columns [`Calls::update`] may change, in the order [`bind_mutable`]
/// binds them; `start` writes them after id, node and started_at.
const MUTABLE_COLUMNS: &str = "direction, from_uri, to_uri, caller, callee, answered_at, \
     ended_at, outcome, hangup_cause, hangup_side, codecs, legs, stats, recording, persona, \
     transcript, account_id";

/// Binds the fields of [`MUTABLE_COLUMNS`], in that order.
fn bind_mutable<'q>(query: AnyQuery<'q>, rec: &'q CallRecord) -> AnyQuery<'q> {
    query
        .bind(rec.direction.as_str())
        .bind(rec.from_uri.as_str())
        .bind(rec.to_uri.as_str())
        .bind(rec.caller.as_str())
        .bind(rec.callee.as_str())
        .bind(rec.answered_at)
        .bind(rec.ended_at)
        .bind(rec.outcome.as_deref())
        .bind(rec.hangup_cause.as_deref())
        .bind(rec.hangup_side.as_deref())
        .bind(rec.codecs.as_deref())
        .bind(rec.legs.as_str())
        .bind(rec.stats.as_deref())
        .bind(rec.recording.as_deref())
        .bind(rec.persona.as_deref())
        .bind(rec.transcript.as_deref())
        .bind(rec.account_id.as_deref())
}

/// The upsert statement, built once (sqlx caches prepared statements by text).
fn upsert_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        let columns: Vec<&str> = MUTABLE_COLUMNS.split(", ").collect();
        let placeholders: Vec<String> = (1..=3 + columns.len()).map(|n| format!("${n}")).collect();
        let assignments: Vec<String> = columns
            .iter()
            .map(|c| format!("{c} = excluded.{c}"))
            .collect();
        format!(
            "INSERT INTO calls (id, node, started_at, {MUTABLE_COLUMNS}) VALUES ({}) \
             ON CONFLICT (id) DO UPDATE SET {}",
            placeholders.join(", "),
            assignments.join(", ")
        )
    })
}

/// [`upsert_sql`] for one row and for many.
static UPSERTS: MultiRow = MultiRow::new(upsert_sql);

/// Binds a record's parameters of [`upsert_sql`].
fn bind_upsert<'q>(query: AnyQuery<'q>, rec: &'q &CallRecord) -> AnyQuery<'q> {
    let query = query
        .bind(rec.id.as_str())
        .bind(rec.node.as_str())
        .bind(rec.started_at);
    bind_mutable(query, rec)
}

impl<'a> Calls<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Calls { store }
    }

    /// Inserts the record as given (normally with the ended fields None).
    /// [`StoreError::Conflict`] if a call with that id exists.
    pub async fn start(&self, rec: &CallRecord) -> Result<(), StoreError> {
        // $1..$3 for id, node, started_at, then one per mutable column.
        let placeholders: Vec<String> = (1..=3 + MUTABLE_COLUMNS.split(", ").count())
            .map(|n| format!("${n}"))
            .collect();
        let sql = format!(
            "INSERT INTO calls (id, node, started_at, {MUTABLE_COLUMNS}) VALUES ({})",
            placeholders.join(", ")
        );
        let query = sqlx::query(&sql)
            .bind(rec.id.as_str())
            .bind(rec.node.as_str())
            .bind(rec.started_at);
        let inserted = bind_mutable(query, rec).execute(self.store.pool()).await;
        match inserted {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict {
                what: format!("call {:?}", rec.id),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes the record whether or not its row exists yet: inserted, or
    /// every field but `id`, `node` and `started_at` overwritten. For a
    /// record whose earlier write may or may not have happened (retried
    /// after the database was unreachable).
    pub async fn upsert(&self, rec: &CallRecord) -> Result<(), StoreError> {
        bind_upsert(sqlx::query(upsert_sql()), &rec)
            .execute(self.store.pool())
            .await?;
        Ok(())
    }

    /// [`upsert`](Self::upsert) for several records (the switch's batched
    /// record writes), all of them or none: multi-row statements
    /// ([`crate::batch`]), in one transaction when there are several. A
    /// call's id appears once in a statement, so of two versions of one
    /// call the later wins, as it would written one after the other.
    pub async fn upsert_all(&self, recs: &[CallRecord]) -> Result<(), StoreError> {
        let mut seen = std::collections::HashSet::with_capacity(recs.len());
        let mut latest: Vec<&CallRecord> = recs
            .iter()
            .rev()
            .filter(|r| seen.insert(r.id.as_str()))
            .collect();
        latest.reverse();
        if latest.is_empty() {
            return Ok(());
        }
        let write =
            async |conn: &mut AnyConnection| UPSERTS.execute(conn, &latest, bind_upsert).await;
        let statements = batch::statements(latest.len());
        self.store
            .write_batch(Lane::Records, statements, write)
            .await
    }

    /// Overwrites every field of the call with `rec.id` except `id`, `node` and
    /// `started_at`, which are fixed at [`Calls::start`] (answer, transfer, end).
    /// [`StoreError::NotFound`] if there is no such call.
    pub async fn update(&self, rec: &CallRecord) -> Result<(), StoreError> {
        let assignments: Vec<String> = MUTABLE_COLUMNS
            .split(", ")
            .enumerate()
            .map(|(n, col)| format!("{col} = ${}", n + 2))
            .collect();
        let sql = format!("UPDATE calls SET {} WHERE id = $1", assignments.join(", "));
        let query = sqlx::query(&sql).bind(rec.id.as_str());
        let updated = bind_mutable(query, rec)
            .execute(self.store.pool())
            .await?
            .rows_affected();
        if updated == 0 {
            return Err(StoreError::NotFound {
                what: format!("call {:?}", rec.id),
            });
        }
        Ok(())
    }

    /// The call with that id, if any.
    pub async fn get(&self, id: &str) -> Result<Option<CallRecord>, StoreError> {
        let row = sqlx::query(select_calls!("WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.store.pool())
            .await?;
        Ok(row.as_ref().map(call_from_row).transpose()?)
    }

    /// Newest first (started_at desc), at most `limit`. Calls that started in the
    /// same millisecond come in descending id order, the same on both backends.
    pub async fn list(&self, limit: u32) -> Result<Vec<CallRecord>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut tx = self.store.pool().begin().await?;
        // The start time of the limit-th newest call bounds the rows to fetch. Ties
        // on that time are all fetched and cut in Rust: a LIMIT would cut them in an
        // order that differs between backends (ids are text, see `Accounts::list`).
        let oldest: Option<i64> = sqlx::query_scalar(
            "SELECT started_at FROM calls ORDER BY started_at DESC LIMIT 1 OFFSET $1",
        )
        .bind(i64::from(limit) - 1)
        .fetch_optional(&mut *tx)
        .await?;
        let rows = sqlx::query(select_calls!("WHERE started_at >= $1"))
            .bind(oldest.unwrap_or(i64::MIN))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let mut calls = rows
            .iter()
            .map(call_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        calls.sort_by(|a, b| (b.started_at, &b.id).cmp(&(a.started_at, &a.id)));
        calls.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(calls)
    }

    /// Calls of one account (or all) that started in `[since_ms, until_ms)`,
    /// newest first (ties by id, descending), at most `limit`: the
    /// management listings and statistics.
    pub async fn between(
        &self,
        account_id: Option<&str>,
        since_ms: i64,
        until_ms: i64,
        limit: u32,
    ) -> Result<Vec<CallRecord>, StoreError> {
        // The account filter only when given: an untyped NULL parameter is
        // an error on PostgreSQL.
        let rows = match account_id {
            Some(a) => {
                sqlx::query(select_calls!(
                    "WHERE started_at >= $1 AND started_at < $2 AND account_id = $3 \
                     ORDER BY started_at DESC LIMIT $4"
                ))
                .bind(since_ms)
                .bind(until_ms)
                .bind(a)
                .bind(i64::from(limit))
                .fetch_all(self.store.pool())
                .await?
            }
            None => {
                sqlx::query(select_calls!(
                    "WHERE started_at >= $1 AND started_at < $2 ORDER BY started_at DESC LIMIT $3"
                ))
                .bind(since_ms)
                .bind(until_ms)
                .bind(i64::from(limit))
                .fetch_all(self.store.pool())
                .await?
            }
        };
        let mut calls = rows
            .iter()
            .map(call_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        calls.sort_by(|a, b| (b.started_at, &b.id).cmp(&(a.started_at, &a.id)));
        Ok(calls)
    }

    /// Rows of `node` still without ended_at (left by a crash): marked ended at `now_ms`
    /// with outcome "failed", cause "node restart", side "system"; returns how many.
    /// Other nodes' calls and calls already ended are untouched.
    pub async fn close_orphans(&self, node: &str, now_ms: i64) -> Result<u64, StoreError> {
        let closed = self.close_open(node, now_ms, ORPHAN_CAUSE).await?;
        if closed > 0 {
            tracing::info!(node, closed, "closed call records left open by a restart");
        }
        Ok(closed)
    }

    /// Closes `node`'s open rows (outcome "failed", side "system") with
    /// `cause`; returns how many.
    pub(crate) async fn close_open(
        &self,
        node: &str,
        now_ms: i64,
        cause: &str,
    ) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE calls SET ended_at = $2, outcome = $3, hangup_cause = $4, hangup_side = $5 \
             WHERE node = $1 AND ended_at IS NULL",
        )
        .bind(node)
        .bind(now_ms)
        .bind(ORPHAN_OUTCOME)
        .bind(cause)
        .bind(ORPHAN_SIDE)
        .execute(self.store.pool())
        .await?
        .rows_affected())
    }

    /// Calls without ended_at, on every node.
    pub async fn count_active(&self) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM calls WHERE ended_at IS NULL")
            .fetch_one(self.store.pool())
            .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}

fn call_from_row(row: &AnyRow) -> Result<CallRecord, sqlx::Error> {
    Ok(CallRecord {
        id: row.try_get("id")?,
        node: row.try_get("node")?,
        direction: row.try_get("direction")?,
        from_uri: row.try_get("from_uri")?,
        to_uri: row.try_get("to_uri")?,
        caller: row.try_get("caller")?,
        callee: row.try_get("callee")?,
        started_at: row.try_get("started_at")?,
        answered_at: row.try_get("answered_at")?,
        ended_at: row.try_get("ended_at")?,
        outcome: row.try_get("outcome")?,
        hangup_cause: row.try_get("hangup_cause")?,
        hangup_side: row.try_get("hangup_side")?,
        codecs: row.try_get("codecs")?,
        legs: row.try_get("legs")?,
        stats: row.try_get("stats")?,
        recording: row.try_get("recording")?,
        persona: row.try_get("persona")?,
        transcript: row.try_get("transcript")?,
        account_id: row.try_get("account_id")?,
    })
}

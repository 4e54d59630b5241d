//! Scheduled calls: calls to place at a given time, kept as rows so they
//! survive restarts. The switch's scheduler asks [`ScheduledCalls::claim_due`]
//! every few hundred milliseconds; claiming turns a row from `pending` to
//! `fired` atomically (PostgreSQL: the due rows are locked with `FOR UPDATE
//! SKIP LOCKED` inside the claiming transaction, so concurrent claimers take
//! different rows; SQLite: the claim is one `UPDATE … RETURNING` inside
//! `BEGIN IMMEDIATE`, so claimers queue on the write lock), which is what
//! makes a call fire exactly once however many nodes share the database.
//! The store checks only what it needs to keep a row meaningful (exactly one
//! speaker, a customer); the switch checks the rest before it schedules.

use std::fmt;
use std::str::FromStr;

use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;

use crate::error::is_foreign_key_violation;
use crate::store::Backend;
use crate::{Store, StoreError};

/// Where a scheduled call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScheduledStatus {
    /// Waiting for its time.
    Pending,
    /// Claimed by a node, which placed it (`call_id`) or is placing it.
    Fired,
    Cancelled,
    /// It could not be placed; `error` says why.
    Failed,
}

impl ScheduledStatus {
    pub const ALL: [ScheduledStatus; 4] = [
        ScheduledStatus::Pending,
        ScheduledStatus::Fired,
        ScheduledStatus::Cancelled,
        ScheduledStatus::Failed,
    ];

    /// "pending", "fired", "cancelled" or "failed" (also how it is stored).
    pub fn as_str(self) -> &'static str {
        match self {
            ScheduledStatus::Pending => "pending",
            ScheduledStatus::Fired => "fired",
            ScheduledStatus::Cancelled => "cancelled",
            ScheduledStatus::Failed => "failed",
        }
    }
}

impl fmt::Display for ScheduledStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ScheduledStatus {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ScheduledStatus::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| StoreError::Invalid {
                reason: format!(
                    "unknown scheduled call status {s:?} (expected pending, fired, cancelled or \
                     failed)"
                ),
            })
    }
}

/// A call to place at `due_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledCall {
    pub id: String,
    pub account_id: String,
    /// The persona (its id) that talks to the customer; else `username`.
    pub persona_id: Option<String>,
    /// The user whose phone rings first (click-to-dial).
    pub username: Option<String>,
    /// The number to call.
    pub customer: String,
    pub customer_name: Option<String>,
    /// Presented as caller ID (and may pick the trunk).
    pub from_number: Option<String>,
    /// The persona's instruction variables, in the order given.
    pub variables: Vec<(String, String)>,
    /// Unix milliseconds.
    pub due_at: i64,
    pub status: ScheduledStatus,
    /// The placed call's id, once fired.
    pub call_id: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// Unix milliseconds.
    pub created_at: i64,
    /// The node that claimed it.
    pub claimed_by: Option<String>,
    /// Unix milliseconds.
    pub claimed_at: Option<i64>,
}

/// What [`ScheduledCalls::create`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewScheduledCall {
    pub account_id: String,
    pub persona_id: Option<String>,
    pub username: Option<String>,
    pub customer: String,
    pub customer_name: Option<String>,
    pub from_number: Option<String>,
    pub variables: Vec<(String, String)>,
    /// Unix milliseconds.
    pub due_at: i64,
}

/// The scheduled_calls table. Obtained from [`Store::scheduled_calls`].
#[derive(Debug, Clone, Copy)]
pub struct ScheduledCalls<'a> {
    store: &'a Store,
}

const COLUMNS: &str = "id, account_id, persona_id, username, customer, customer_name, \
     from_number, variables, due_at, status, call_id, error, created_at, claimed_by, claimed_at";

/// The claim, per backend (see the module docs); $1 node, $2 now, $3 now,
/// $4 limit. On PostgreSQL the due rows are picked (and locked) once, in a
/// CTE: as an `IN (subquery)` the planner may run the LIMITed, SKIP LOCKED
/// subquery more than once and claim more rows than asked.
const CLAIM_POSTGRES: &str = "WITH due AS (SELECT id FROM scheduled_calls \
     WHERE status = 'pending' AND due_at <= $3 ORDER BY due_at LIMIT $4 FOR UPDATE SKIP LOCKED) \
     UPDATE scheduled_calls SET status = 'fired', claimed_by = $1, claimed_at = $2 \
     FROM due WHERE scheduled_calls.id = due.id RETURNING ";
const CLAIM_SQLITE: &str = "UPDATE scheduled_calls SET status = 'fired', claimed_by = $1, \
     claimed_at = $2 WHERE status = 'pending' AND id IN (SELECT id FROM scheduled_calls \
     WHERE status = 'pending' AND due_at <= $3 ORDER BY due_at LIMIT $4) RETURNING ";

/// What the cause of an interrupted claim reads (see [`ScheduledCalls::close_interrupted`]).
pub const INTERRUPTED: &str = "the node that claimed it stopped before the call was placed";

/// The current time in unix milliseconds.
pub fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl<'a> ScheduledCalls<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        ScheduledCalls { store }
    }

    /// Stores a pending call. [`StoreError::Invalid`] unless exactly one of
    /// persona and user is given and the customer is not empty;
    /// [`StoreError::NotFound`] when the account does not exist.
    pub async fn create(&self, new: NewScheduledCall) -> Result<ScheduledCall, StoreError> {
        if new.persona_id.is_some() == new.username.is_some() {
            return Err(StoreError::Invalid {
                reason: "a scheduled call needs either a persona or a user (not both)".into(),
            });
        }
        if new.customer.trim().is_empty() {
            return Err(StoreError::Invalid {
                reason: "a scheduled call needs a customer number".into(),
            });
        }
        let call = ScheduledCall {
            id: Uuid::new_v4().to_string(),
            account_id: new.account_id,
            persona_id: new.persona_id,
            username: new.username,
            customer: new.customer,
            customer_name: new.customer_name,
            from_number: new.from_number,
            variables: new.variables,
            due_at: new.due_at,
            status: ScheduledStatus::Pending,
            call_id: None,
            error: None,
            created_at: unix_now_ms(),
            claimed_by: None,
            claimed_at: None,
        };
        let inserted = sqlx::query(
            "INSERT INTO scheduled_calls (id, account_id, persona_id, username, customer, \
             customer_name, from_number, variables, due_at, status, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(call.id.as_str())
        .bind(call.account_id.as_str())
        .bind(call.persona_id.as_deref())
        .bind(call.username.as_deref())
        .bind(call.customer.as_str())
        .bind(call.customer_name.as_deref())
        .bind(call.from_number.as_deref())
        .bind(variables_json(&call.variables))
        .bind(call.due_at)
        .bind(call.status.as_str())
        .bind(call.created_at)
        .execute(self.store.pool())
        .await;
        match inserted {
            Ok(_) => Ok(call),
            Err(e) if is_foreign_key_violation(&e) => Err(StoreError::NotFound {
                what: format!("account {:?}", call.account_id),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// The scheduled call with that id, if any.
    pub async fn get(&self, id: &str) -> Result<Option<ScheduledCall>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM scheduled_calls WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.store.pool())
        .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    /// Scheduled calls, soonest first (ties by id), of one account or all,
    /// in one status or any; at most `limit`.
    pub async fn list(
        &self,
        account_id: Option<&str>,
        status: Option<ScheduledStatus>,
        limit: u32,
    ) -> Result<Vec<ScheduledCall>, StoreError> {
        // Only the filters given are in the query: an untyped NULL
        // parameter ("$1 IS NULL") is an error on PostgreSQL.
        let mut conditions = Vec::new();
        if account_id.is_some() {
            conditions.push(format!("account_id = ${}", conditions.len() + 1));
        }
        if status.is_some() {
            conditions.push(format!("status = ${}", conditions.len() + 1));
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        let sql = format!("SELECT {COLUMNS} FROM scheduled_calls{filter}");
        let mut query = sqlx::query(&sql);
        if let Some(a) = account_id {
            query = query.bind(a);
        }
        if let Some(s) = status {
            query = query.bind(s.as_str());
        }
        let rows = query.fetch_all(self.store.pool()).await?;
        let mut calls = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
        calls.sort_by(|a, b| (a.due_at, &a.id).cmp(&(b.due_at, &b.id)));
        calls.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(calls)
    }

    /// Cancels a pending call (of `account_id` when given) and returns it.
    /// [`StoreError::NotFound`] when there is no such call (or it is another
    /// account's); [`StoreError::Invalid`] when it is no longer pending.
    pub async fn cancel(
        &self,
        id: &str,
        account_id: Option<&str>,
    ) -> Result<ScheduledCall, StoreError> {
        let sql =
            format!(
            "UPDATE scheduled_calls SET status = 'cancelled' WHERE id = $1 AND status = 'pending' \
             AND account_id = {} RETURNING {COLUMNS}",
            // The operator's cancel matches any account.
            if account_id.is_some() { "$2" } else { "account_id" }
        );
        let mut query = sqlx::query(&sql).bind(id);
        if let Some(a) = account_id {
            query = query.bind(a);
        }
        let row = query.fetch_optional(self.store.pool()).await?;
        if let Some(row) = row {
            return Ok(from_row(&row)?);
        }
        match self.get(id).await? {
            Some(c) if account_id.is_none_or(|a| a == c.account_id) => Err(StoreError::Invalid {
                reason: format!(
                    "scheduled call {id} is {} and can no longer be cancelled",
                    c.status
                ),
            }),
            _ => Err(StoreError::NotFound {
                what: format!("scheduled call {id:?}"),
            }),
        }
    }

    /// Claims up to `limit` pending calls due by `now_ms` for `node`: each
    /// becomes `fired`, claimed by `node` at `now_ms`, and is returned to
    /// exactly one claimer however many claim at once. Soonest first.
    pub async fn claim_due(
        &self,
        now_ms: i64,
        node: &str,
        limit: u32,
    ) -> Result<Vec<ScheduledCall>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let claim = match self.store.backend() {
            Backend::Postgres => CLAIM_POSTGRES,
            Backend::Sqlite => CLAIM_SQLITE,
        };
        let mut tx = self.store.begin_write().await?;
        // Qualified: on PostgreSQL `due` has an id column too.
        let returning: Vec<String> = COLUMNS
            .split(", ")
            .map(|c| format!("scheduled_calls.{c}"))
            .collect();
        let rows = sqlx::query(&format!("{claim}{}", returning.join(", ")))
            .bind(node)
            .bind(now_ms)
            .bind(now_ms)
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let mut calls = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
        calls.sort_by(|a, b| (a.due_at, &a.id).cmp(&(b.due_at, &b.id)));
        Ok(calls)
    }

    /// Records the call placed for a claimed row.
    pub async fn set_fired(&self, id: &str, call_id: &str) -> Result<(), StoreError> {
        self.finish(id, ScheduledStatus::Fired, Some(call_id), None)
            .await
    }

    /// Records why a claimed row could not be placed.
    pub async fn set_failed(&self, id: &str, error: &str) -> Result<(), StoreError> {
        self.finish(id, ScheduledStatus::Failed, None, Some(error))
            .await
    }

    async fn finish(
        &self,
        id: &str,
        status: ScheduledStatus,
        call_id: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let updated = sqlx::query(
            "UPDATE scheduled_calls SET status = $2, call_id = $3, error = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(status.as_str())
        .bind(call_id)
        .bind(error)
        .execute(self.store.pool())
        .await?
        .rows_affected();
        if updated == 0 {
            return Err(StoreError::NotFound {
                what: format!("scheduled call {id:?}"),
            });
        }
        Ok(())
    }

    /// Rows `node` claimed but never recorded a call for (it stopped in
    /// between): marked failed, not fired again — the call may have gone
    /// out, and at most once is the promise. Returns how many.
    pub async fn close_interrupted(&self, node: &str) -> Result<u64, StoreError> {
        let closed = sqlx::query(
            "UPDATE scheduled_calls SET status = 'failed', error = $2 \
             WHERE claimed_by = $1 AND status = 'fired' AND call_id IS NULL",
        )
        .bind(node)
        .bind(INTERRUPTED)
        .execute(self.store.pool())
        .await?
        .rows_affected();
        Ok(closed)
    }
}

/// A JSON object, keys in the order given.
fn variables_json(vars: &[(String, String)]) -> String {
    let body: Vec<String> = vars
        .iter()
        .map(|(k, v)| {
            format!(
                "{}:{}",
                serde_json::Value::from(k.as_str()),
                serde_json::Value::from(v.as_str())
            )
        })
        .collect();
    format!("{{{}}}", body.join(","))
}

/// Pairs from the JSON object text, in the text's order (the keys are
/// read back through `serde_json`'s order-keeping map parser).
fn variables_from_json(text: &str) -> Result<Vec<(String, String)>, serde_json::Error> {
    let pairs: Vec<(String, String)> = serde_json::from_str::<OrderedPairs>(text)?.0;
    Ok(pairs)
}

/// A JSON object of strings read in document order.
struct OrderedPairs(Vec<(String, String)>);

impl<'de> serde::Deserialize<'de> for OrderedPairs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = OrderedPairs;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object of strings")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut m: M,
            ) -> Result<OrderedPairs, M::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, String>()? {
                    out.push((k, v));
                }
                Ok(OrderedPairs(out))
            }
        }
        d.deserialize_map(V)
    }
}

fn from_row(row: &AnyRow) -> Result<ScheduledCall, sqlx::Error> {
    let decode =
        |column: &str, e: Box<dyn std::error::Error + Send + Sync>| sqlx::Error::ColumnDecode {
            index: column.into(),
            source: e,
        };
    let status: String = row.try_get("status")?;
    let variables: String = row.try_get("variables")?;
    Ok(ScheduledCall {
        id: row.try_get("id")?,
        account_id: row.try_get("account_id")?,
        persona_id: row.try_get("persona_id")?,
        username: row.try_get("username")?,
        customer: row.try_get("customer")?,
        customer_name: row.try_get("customer_name")?,
        from_number: row.try_get("from_number")?,
        variables: variables_from_json(&variables).map_err(|e| decode("variables", e.into()))?,
        due_at: row.try_get("due_at")?,
        status: status
            .parse()
            .map_err(|e: StoreError| decode("status", e.to_string().into()))?,
        call_id: row.try_get("call_id")?,
        error: row.try_get("error")?,
        created_at: row.try_get("created_at")?,
        claimed_by: row.try_get("claimed_by")?,
        claimed_at: row.try_get("claimed_at")?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn variables_keep_their_order_and_escape() {
        let vars = vec![
            ("z".to_string(), "1".to_string()),
            ("a \"q\"".to_string(), "line\nbreak".to_string()),
        ];
        let text = variables_json(&vars);
        assert_eq!(variables_from_json(&text).unwrap(), vars);
        assert_eq!(variables_from_json("{}").unwrap(), vec![]);
        assert!(variables_from_json("[1]").is_err());
    }

    #[test]
    fn statuses_round_trip() {
        for s in ScheduledStatus::ALL {
            assert_eq!(s.as_str().parse::<ScheduledStatus>().unwrap(), s);
        }
        assert!("done".parse::<ScheduledStatus>().is_err());
    }
}

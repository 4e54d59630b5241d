//! Queues: groups of users a number (`queue:NAME`) or a transfer rings by a
//! strategy — all at once, round-robin (a cursor in the row, advanced
//! atomically per call), or the member idle longest (when each member's last
//! queue call ended) — for a timeout, then a fallback. A queue has a unique
//! name; its members must be existing users when set, and it cannot be
//! removed while a number, a persona's fallback or a persona tool refers to it.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use uuid::Uuid;

use crate::error::{is_foreign_key_violation, is_unique_violation};
use crate::numbers::TargetKind;
use crate::store::unix_now;
use crate::{Store, StoreError};

/// How a queue picks whom to ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueueStrategy {
    /// Every member at once; the first to answer takes the call.
    RingAll,
    /// One member at a time, starting after the one the last call started with.
    RoundRobin,
    /// One member at a time, the one whose last queue call ended longest ago first.
    LongestIdle,
}

impl QueueStrategy {
    pub const ALL: [QueueStrategy; 3] = [
        QueueStrategy::RingAll,
        QueueStrategy::RoundRobin,
        QueueStrategy::LongestIdle,
    ];

    /// "ring-all", "round-robin" or "longest-idle" (also how it is stored).
    pub fn as_str(self) -> &'static str {
        match self {
            QueueStrategy::RingAll => "ring-all",
            QueueStrategy::RoundRobin => "round-robin",
            QueueStrategy::LongestIdle => "longest-idle",
        }
    }
}

impl fmt::Display for QueueStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of "ring-all", "round-robin", "longest-idle".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown queue strategy {0:?} (expected ring-all, round-robin or longest-idle)")]
pub struct ParseQueueStrategyError(pub String);

impl FromStr for QueueStrategy {
    type Err = ParseQueueStrategyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        QueueStrategy::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| ParseQueueStrategyError(s.to_owned()))
    }
}

/// A call queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    pub id: String,
    pub account_id: String,
    /// Unique across the switch; numbers route to `queue:NAME`.
    pub name: String,
    pub strategy: QueueStrategy,
    /// How long the members ring before the fallback.
    pub timeout_secs: u32,
    /// "user:NAME", "number:N" or "persona:NAME"; None: the caller is hung up on.
    pub fallback: Option<String>,
    /// In order (round-robin goes through them in this order).
    pub members: Vec<QueueMember>,
    /// Unix seconds.
    pub created_at: i64,
}

/// A member of a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMember {
    pub username: String,
    /// When the member's last queue call ended (unix seconds); None: never.
    pub last_call_ended_at: Option<i64>,
}

/// What [`Queues::create`] needs. The store checks that the members are
/// users; the CLI and API check the rest (name, fallback).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewQueue {
    pub account_id: String,
    pub name: String,
    pub strategy: QueueStrategy,
    pub timeout_secs: u32,
    pub fallback: Option<String>,
    /// Usernames, in order.
    pub members: Vec<String>,
}

/// The queues table and its members. Obtained from [`Store::queues`].
#[derive(Debug, Clone, Copy)]
pub struct Queues<'a> {
    store: &'a Store,
}

const SELECT_QUEUES: &str =
    "SELECT id, account_id, name, strategy, timeout_secs, fallback, created_at FROM queues";

impl<'a> Queues<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Queues { store }
    }

    /// Creates a queue. [`StoreError::NotFound`] naming the members that are
    /// not users (or the account), [`StoreError::Conflict`] if the name is taken.
    pub async fn create(&self, new: NewQueue) -> Result<Queue, StoreError> {
        let queue = Queue {
            id: Uuid::new_v4().to_string(),
            account_id: new.account_id,
            name: new.name,
            strategy: new.strategy,
            timeout_secs: new.timeout_secs,
            fallback: new.fallback,
            members: new
                .members
                .into_iter()
                .map(|username| QueueMember {
                    username,
                    last_call_ended_at: None,
                })
                .collect(),
            created_at: unix_now(),
        };
        let mut tx = self.store.begin_write().await?;
        let usernames: Vec<&str> = queue.members.iter().map(|m| m.username.as_str()).collect();
        if let Err(e) = check_users(&mut tx, &usernames).await {
            tx.rollback().await?;
            return Err(e);
        }
        let inserted = async {
            sqlx::query(
                "INSERT INTO queues (id, account_id, name, strategy, timeout_secs, fallback, \
                 rr_next, created_at) VALUES ($1, $2, $3, $4, $5, $6, 0, $7)",
            )
            .bind(queue.id.as_str())
            .bind(queue.account_id.as_str())
            .bind(queue.name.as_str())
            .bind(queue.strategy.as_str())
            .bind(i64::from(queue.timeout_secs))
            .bind(queue.fallback.as_deref())
            .bind(queue.created_at)
            .execute(&mut *tx)
            .await?;
            insert_members(&mut tx, &queue.id, &queue.members).await
        }
        .await;
        match inserted {
            Ok(()) => {
                tx.commit().await?;
                Ok(queue)
            }
            Err(e) => {
                tx.rollback().await?;
                Err(if is_unique_violation(&e) {
                    StoreError::Conflict {
                        what: format!("queue {:?}", queue.name),
                    }
                } else if is_foreign_key_violation(&e) {
                    StoreError::NotFound {
                        what: format!("account {:?}", queue.account_id),
                    }
                } else {
                    e.into()
                })
            }
        }
    }

    /// The queue with that name, if any.
    pub async fn get(&self, name: &str) -> Result<Option<Queue>, StoreError> {
        let mut tx = self.store.pool().begin().await?;
        let rows = sqlx::query(&format!("{SELECT_QUEUES} WHERE name = $1"))
            .bind(name)
            .fetch_all(&mut *tx)
            .await?;
        let member_rows = sqlx::query(
            "SELECT m.queue_id, m.position, m.username, m.last_call_ended_at \
             FROM queue_members m JOIN queues q ON q.id = m.queue_id WHERE q.name = $1",
        )
        .bind(name)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(assemble(&rows, &member_rows)?.into_iter().next())
    }

    /// Every queue, ordered by name.
    pub async fn list(&self) -> Result<Vec<Queue>, StoreError> {
        let mut tx = self.store.pool().begin().await?;
        let rows = sqlx::query(SELECT_QUEUES).fetch_all(&mut *tx).await?;
        let member_rows = sqlx::query(
            "SELECT queue_id, position, username, last_call_ended_at FROM queue_members",
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        assemble(&rows, &member_rows)
    }

    /// Removes the queue and its members; Ok(false) when there was none.
    /// [`StoreError::InUse`] (nothing removed) while a number routes to it,
    /// a persona falls back to it or a persona tool transfers to it, naming them.
    pub async fn remove(&self, name: &str) -> Result<bool, StoreError> {
        let mut tx = self.store.begin_write().await?;
        let Some(id) = sqlx::query_scalar::<_, String>("SELECT id FROM queues WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
        else {
            tx.rollback().await?;
            return Ok(false);
        };
        let mut numbers: Vec<String> =
            sqlx::query_scalar("SELECT number FROM numbers WHERE target_kind = $1 AND target = $2")
                .bind(TargetKind::Queue.as_str())
                .bind(name)
                .fetch_all(&mut *tx)
                .await?;
        let mut fallbacks: Vec<String> =
            sqlx::query_scalar("SELECT name FROM personas WHERE fallback = $1")
                .bind(format!("queue:{name}"))
                .fetch_all(&mut *tx)
                .await?;
        let tool_rows = sqlx::query(
            "SELECT p.name AS persona, t.name AS tool FROM persona_tools t \
             JOIN personas p ON p.id = t.persona_id WHERE t.kind = $1 AND t.target = $2",
        )
        .bind("transfer_queue")
        .bind(name)
        .fetch_all(&mut *tx)
        .await?;
        let mut tools = Vec::with_capacity(tool_rows.len());
        for row in &tool_rows {
            let persona: String = row.try_get("persona")?;
            let tool: String = row.try_get("tool")?;
            tools.push(format!("{persona}/{tool}"));
        }
        if !numbers.is_empty() || !fallbacks.is_empty() || !tools.is_empty() {
            tx.rollback().await?;
            let mut by = Vec::new();
            for (label, list) in [
                ("number(s)", &mut numbers),
                ("persona fallback(s)", &mut fallbacks),
                ("persona tool(s)", &mut tools),
            ] {
                if !list.is_empty() {
                    list.sort();
                    by.push(format!("{label} {list:?}"));
                }
            }
            return Err(StoreError::InUse {
                what: format!("queue {name:?}"),
                by: by.join(" and "),
            });
        }
        sqlx::query("DELETE FROM queue_members WHERE queue_id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM queues WHERE id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Replaces the queue's members (in the order given; a member that stays
    /// keeps its idle time) and returns the queue. [`StoreError::NotFound`]
    /// for an unknown queue or members that are not users (nothing changed).
    pub async fn set_members(&self, name: &str, members: &[String]) -> Result<Queue, StoreError> {
        let mut tx = self.store.begin_write().await?;
        let result = async {
            let id = queue_id(&mut tx, name).await?;
            let usernames: Vec<&str> = members.iter().map(String::as_str).collect();
            check_users(&mut tx, &usernames).await?;
            let rows = sqlx::query(
                "SELECT username, last_call_ended_at FROM queue_members WHERE queue_id = $1",
            )
            .bind(id.as_str())
            .fetch_all(&mut *tx)
            .await?;
            let mut idle: HashMap<String, Option<i64>> = HashMap::new();
            for row in &rows {
                idle.insert(row.try_get("username")?, row.try_get("last_call_ended_at")?);
            }
            let new: Vec<QueueMember> = members
                .iter()
                .map(|username| QueueMember {
                    username: username.clone(),
                    last_call_ended_at: idle.get(username).copied().flatten(),
                })
                .collect();
            sqlx::query("DELETE FROM queue_members WHERE queue_id = $1")
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
            insert_members(&mut tx, &id, &new).await?;
            Ok::<(), StoreError>(())
        }
        .await;
        finish(tx, result).await?;
        self.must_get(name).await
    }

    /// Changes the strategy, the timeout and/or the fallback (`Some(None)`
    /// clears it); None keeps the stored value. Returns the queue;
    /// [`StoreError::NotFound`] for an unknown queue.
    pub async fn update(
        &self,
        name: &str,
        strategy: Option<QueueStrategy>,
        timeout_secs: Option<u32>,
        fallback: Option<Option<String>>,
    ) -> Result<Queue, StoreError> {
        let mut tx = self.store.begin_write().await?;
        let result = async {
            queue_id(&mut tx, name).await?;
            if let Some(strategy) = strategy {
                sqlx::query("UPDATE queues SET strategy = $2 WHERE name = $1")
                    .bind(name)
                    .bind(strategy.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(timeout) = timeout_secs {
                sqlx::query("UPDATE queues SET timeout_secs = $2 WHERE name = $1")
                    .bind(name)
                    .bind(i64::from(timeout))
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(fallback) = &fallback {
                sqlx::query("UPDATE queues SET fallback = $2 WHERE name = $1")
                    .bind(name)
                    .bind(fallback.as_deref())
                    .execute(&mut *tx)
                    .await?;
            }
            Ok::<(), StoreError>(())
        }
        .await;
        finish(tx, result).await?;
        self.must_get(name).await
    }

    /// Where round-robin starts this call: the queue's cursor modulo `count`
    /// (the number of members), advancing the cursor by one in the same
    /// statement, so concurrent callers (several nodes on PostgreSQL) each get
    /// their own value. 0 when `count` is 0. [`StoreError::NotFound`] for an
    /// unknown queue.
    pub async fn next_round_robin(&self, name: &str, count: usize) -> Result<usize, StoreError> {
        // One UPDATE … RETURNING: the row lock (PostgreSQL) or the write lock
        // (SQLite) orders concurrent callers; each reads the value it wrote.
        let next: Option<i64> = sqlx::query_scalar(
            "UPDATE queues SET rr_next = rr_next + 1 WHERE name = $1 RETURNING rr_next",
        )
        .bind(name)
        .fetch_optional(self.store.pool())
        .await?;
        let Some(next) = next else {
            return Err(not_found(name));
        };
        let cursor = u64::try_from(next - 1).unwrap_or(0);
        match u64::try_from(count) {
            Ok(0) | Err(_) => Ok(0),
            Ok(count) => Ok(usize::try_from(cursor % count).unwrap_or(0)),
        }
    }

    /// Records that `username`'s queue call ended at `at` (unix seconds), for
    /// longest-idle; an earlier time than the stored one is ignored.
    /// [`StoreError::NotFound`] when the user is not a member of the queue.
    pub async fn member_call_ended(
        &self,
        name: &str,
        username: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        let updated = sqlx::query(
            "UPDATE queue_members SET last_call_ended_at = $3 \
             WHERE queue_id IN (SELECT id FROM queues WHERE name = $1) AND username = $2 \
             AND (last_call_ended_at IS NULL OR last_call_ended_at < $3)",
        )
        .bind(name)
        .bind(username)
        .bind(at)
        .execute(self.store.pool())
        .await?
        .rows_affected();
        if updated > 0 {
            return Ok(());
        }
        // Nothing changed: a later time was stored already, or no such member.
        let member: Option<String> = sqlx::query_scalar(
            "SELECT m.username FROM queue_members m JOIN queues q ON q.id = m.queue_id \
             WHERE q.name = $1 AND m.username = $2",
        )
        .bind(name)
        .bind(username)
        .fetch_optional(self.store.pool())
        .await?;
        match member {
            Some(_) => Ok(()),
            None => Err(StoreError::NotFound {
                what: format!("member {username:?} of queue {name:?}"),
            }),
        }
    }

    async fn must_get(&self, name: &str) -> Result<Queue, StoreError> {
        self.get(name).await?.ok_or_else(|| not_found(name))
    }
}

fn not_found(name: &str) -> StoreError {
    StoreError::NotFound {
        what: format!("queue {name:?}"),
    }
}

/// Commits on success, rolls back on failure and passes the failure on.
async fn finish(
    tx: Transaction<'static, Any>,
    result: Result<(), StoreError>,
) -> Result<(), StoreError> {
    match result {
        Ok(()) => {
            tx.commit().await?;
            Ok(())
        }
        Err(e) => {
            tx.rollback().await?;
            Err(e)
        }
    }
}

async fn queue_id(tx: &mut Transaction<'static, Any>, name: &str) -> Result<String, StoreError> {
    sqlx::query_scalar::<_, String>("SELECT id FROM queues WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| not_found(name))
}

/// [`StoreError::NotFound`] naming the usernames that are not users.
async fn check_users(
    tx: &mut Transaction<'static, Any>,
    usernames: &[&str],
) -> Result<(), StoreError> {
    let mut missing = Vec::new();
    for username in usernames {
        let found: Option<String> =
            sqlx::query_scalar("SELECT username FROM users WHERE username = $1")
                .bind(*username)
                .fetch_optional(&mut **tx)
                .await?;
        if found.is_none() && !missing.contains(username) {
            missing.push(*username);
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(StoreError::NotFound {
            what: format!("user(s) {missing:?}"),
        })
    }
}

async fn insert_members(
    tx: &mut Transaction<'static, Any>,
    queue_id: &str,
    members: &[QueueMember],
) -> Result<(), sqlx::Error> {
    for (position, m) in (0_i64..).zip(members) {
        sqlx::query(
            "INSERT INTO queue_members (queue_id, position, username, last_call_ended_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(queue_id)
        .bind(position)
        .bind(m.username.as_str())
        .bind(m.last_call_ended_at)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Queues from their rows and their members' rows, sorted by name.
fn assemble(rows: &[AnyRow], member_rows: &[AnyRow]) -> Result<Vec<Queue>, StoreError> {
    let mut members: HashMap<String, Vec<(i64, QueueMember)>> = HashMap::new();
    for row in member_rows {
        let queue_id: String = row.try_get("queue_id")?;
        let position: i64 = row.try_get("position")?;
        members.entry(queue_id).or_default().push((
            position,
            QueueMember {
                username: row.try_get("username")?,
                last_call_ended_at: row.try_get("last_call_ended_at")?,
            },
        ));
    }
    let mut queues = Vec::with_capacity(rows.len());
    for row in rows {
        let id: String = row.try_get("id")?;
        let mut list = members.remove(&id).unwrap_or_default();
        list.sort_by_key(|(position, _)| *position);
        queues.push(queue_from_row(
            row,
            id,
            list.into_iter().map(|(_, m)| m).collect(),
        )?);
    }
    // Sorted in Rust so both backends agree (see `Accounts::list`).
    queues.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(queues)
}

fn queue_from_row(
    row: &AnyRow,
    id: String,
    members: Vec<QueueMember>,
) -> Result<Queue, sqlx::Error> {
    let strategy: String = row.try_get("strategy")?;
    let timeout: i64 = row.try_get("timeout_secs")?;
    Ok(Queue {
        id,
        account_id: row.try_get("account_id")?,
        name: row.try_get("name")?,
        strategy: strategy.parse().map_err(|e| sqlx::Error::ColumnDecode {
            index: "strategy".into(),
            source: Box::new(e),
        })?,
        timeout_secs: u32::try_from(timeout).map_err(|e| sqlx::Error::ColumnDecode {
            index: "timeout_secs".into(),
            source: Box::new(e),
        })?,
        fallback: row.try_get("fallback")?,
        members,
        created_at: row.try_get("created_at")?,
    })
}

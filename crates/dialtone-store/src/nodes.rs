//! The nodes of a cluster sharing this database: who is there, where the
//! others reach it, and when it last said it was alive. A node refreshes its
//! own row every heartbeat; one whose heartbeat is older than the cluster's
//! `dead_after` is dead, and a survivor closes the call rows it owned.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Store, StoreError};

/// One node's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The node id (`cluster.node`).
    pub id: String,
    /// Its SIP address as configured, e.g. "udp:10.0.0.11:5060".
    pub sip: String,
    /// The base URL the other nodes forward tool calls to.
    pub http: String,
    /// Unix milliseconds.
    pub started_at: i64,
    /// Unix milliseconds of its last heartbeat.
    pub heartbeat_at: i64,
    /// Call rows it owns that have not ended.
    pub live_calls: u64,
}

impl Node {
    /// Alive at `now_ms` when its heartbeat is younger than `dead_after_ms`.
    pub fn alive(&self, now_ms: i64, dead_after_ms: i64) -> bool {
        now_ms - self.heartbeat_at < dead_after_ms
    }
}

/// The nodes table. Obtained from [`Store::nodes`].
#[derive(Debug, Clone, Copy)]
pub struct Nodes<'a> {
    store: &'a Store,
}

/// A node's row with its live call count.
const SELECT_NODE: &str = "SELECT n.id, n.sip, n.http, n.started_at, n.heartbeat_at, \
     (SELECT COUNT(*) FROM calls c WHERE c.node = n.id AND c.ended_at IS NULL) AS live \
     FROM nodes n";

/// What [`Nodes::close_calls_of_dead`] writes into a dead node's calls.
pub const NODE_LOST_CAUSE: &str = "node lost";

impl<'a> Nodes<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Nodes { store }
    }

    /// Announces this node at start (a restart keeps the id and refreshes
    /// the row).
    pub async fn join(
        &self,
        id: &str,
        sip: &str,
        http: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO nodes (id, sip, http, started_at, heartbeat_at) VALUES ($1, $2, $3, $4, $4) \
             ON CONFLICT (id) DO UPDATE SET sip = excluded.sip, http = excluded.http, \
             started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at",
        )
        .bind(id)
        .bind(sip)
        .bind(http)
        .bind(now_ms)
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// Refreshes this node's heartbeat; false when its row is gone (it is
    /// then written again by the caller with [`Nodes::join`]).
    pub async fn heartbeat(&self, id: &str, now_ms: i64) -> Result<bool, StoreError> {
        let n = sqlx::query("UPDATE nodes SET heartbeat_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now_ms)
            .execute(self.store.pool())
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    /// Every node, with its live call count, by id.
    pub async fn list(&self) -> Result<Vec<Node>, StoreError> {
        let rows = sqlx::query(&format!("{SELECT_NODE} ORDER BY n.id"))
            .fetch_all(self.store.pool())
            .await?;
        rows.iter()
            .map(node_from_row)
            .collect::<Result<_, _>>()
            .map_err(Into::into)
    }

    /// One node by id (a forwarded tool call looks up its owner).
    pub async fn get(&self, id: &str) -> Result<Option<Node>, StoreError> {
        let row = sqlx::query(&format!("{SELECT_NODE} WHERE n.id = $1"))
            .bind(id)
            .fetch_optional(self.store.pool())
            .await?;
        row.as_ref()
            .map(node_from_row)
            .transpose()
            .map_err(Into::into)
    }

    /// Closes the live call rows of every node other than `me` whose
    /// heartbeat is older than `dead_after_ms` (outcome "failed", cause
    /// [`NODE_LOST_CAUSE`], side "system"); returns (node, calls closed)
    /// for each node that had any. Safe to run on every node at once: a
    /// row is closed once (`ended_at IS NULL` in the update).
    pub async fn close_calls_of_dead(
        &self,
        me: &str,
        now_ms: i64,
        dead_after_ms: i64,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let dead: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM nodes WHERE id <> $1 AND heartbeat_at < $2 ORDER BY id",
        )
        .bind(me)
        .bind(now_ms - dead_after_ms)
        .fetch_all(self.store.pool())
        .await?;
        let mut out = Vec::new();
        for node in dead {
            let closed = self
                .store
                .calls()
                .close_open(&node, now_ms, NODE_LOST_CAUSE)
                .await?;
            if closed > 0 {
                out.push((node, closed));
            }
        }
        Ok(out)
    }
}

fn node_from_row(row: &AnyRow) -> Result<Node, sqlx::Error> {
    let live: i64 = row.try_get("live")?;
    Ok(Node {
        id: row.try_get("id")?,
        sip: row.try_get("sip")?,
        http: row.try_get("http")?,
        started_at: row.try_get("started_at")?,
        heartbeat_at: row.try_get("heartbeat_at")?,
        live_calls: u64::try_from(live).unwrap_or(0),
    })
}

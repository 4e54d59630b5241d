//! The running switch's copy of the hot tables (issue 13): the location
//! table ([`crate::location`]), and the users, numbers and trunks every
//! REGISTER and call reads ([`crate::cache`]), with the task that writes
//! the one behind and keeps the others fresh.
//!
//! Durability: a changed binding is written within [`LINGER`] plus one
//! transaction (well under 100 ms on a healthy database), every batch in
//! one transaction; [`Store::flush_write_behind`] writes what is left at
//! shutdown (SIGTERM); a `kill -9` loses at most the batch in flight and
//! what changed in the last [`LINGER`]. While the database is away the
//! table keeps serving and the batch is retried.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::watch;

use crate::cache::{Caches, Table};
use crate::location::Location;
use crate::registrations::write_changes;
use crate::{Store, StoreError};

/// How long a change waits for others to share its transaction.
pub const LINGER: Duration = Duration::from_millis(20);
/// Bindings per transaction.
const BATCH: usize = 2_000;
/// How often the cached tables' generations are read.
const GENERATION_POLL: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// Counters for /metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteBehindStats {
    /// AORs in the table.
    pub aors: usize,
    /// Bindings changed and not yet in the database.
    pub pending: usize,
    /// Transactions written since start.
    pub batches: u64,
    /// Bindings written (or deleted) since start.
    pub written: u64,
}

impl Store {
    /// Makes this process the keeper of the location table and of the
    /// registrar's user cache (one node on its own database; never several
    /// nodes sharing one). Loads the bindings the database holds.
    pub async fn keep_in_memory(&self) -> Result<(), StoreError> {
        let now = crate::store::unix_now();
        let bindings = self.registrations().list_all(now).await?;
        let n = bindings.len();
        let caches = Caches::default();
        let generations = self.generations().await?;
        for table in Table::ALL {
            caches
                .generation(table)
                .store(generations[table as usize], Ordering::Release);
        }
        if self.memory.location.set(Location::load(bindings)).is_err()
            || self.memory.caches.set(caches).is_err()
        {
            tracing::warn!("the location table was already kept in memory");
        }
        tracing::info!(bindings = n, "location table loaded into memory");
        Ok(())
    }

    /// Writes changed AORs behind and follows the cached tables' generations, until
    /// `shutdown`; then returns (call [`flush_write_behind`](Self::flush_write_behind)).
    pub async fn run_write_behind(&self, mut shutdown: watch::Receiver<bool>) {
        let Some(table) = self.location() else {
            return;
        };
        let mut poll = tokio::time::interval(GENERATION_POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut retry = LINGER;
        let mut failing = false;
        loop {
            tokio::select! {
                _ = table.wake.notified() => {}
                _ = poll.tick() => {
                    self.follow_generations().await;
                    if table.pending() == 0 {
                        continue;
                    }
                }
                _ = shutdown.changed() => return,
            }
            tokio::time::sleep(if failing { retry } else { LINGER }).await;
            match self.write_pending(table).await {
                Ok(()) => {
                    if failing {
                        tracing::info!(
                            "database answers again: the registrations kept meanwhile are written"
                        );
                    }
                    failing = false;
                    retry = LINGER;
                }
                Err(e) => {
                    if !failing {
                        tracing::error!(error = %e, "registrations not written: kept in memory and retried");
                    }
                    failing = true;
                    retry = (retry * 2).clamp(Duration::from_millis(250), RETRY_MAX);
                    table.wake.notify_one();
                }
            }
        }
    }

    /// Writes every changed AOR, trying until `deadline` (shutdown).
    pub async fn flush_write_behind(&self, deadline: Duration) {
        let Some(table) = self.location() else {
            return;
        };
        let end = tokio::time::Instant::now() + deadline;
        while table.pending() > 0 {
            match self.write_pending(table).await {
                Ok(()) => {}
                Err(e) if tokio::time::Instant::now() >= end => {
                    tracing::error!(error = %e, bindings = table.pending(), "database unreachable at shutdown: these registrations are lost");
                    return;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }

    /// The location table's counters; None when it is not kept here.
    pub fn write_behind_stats(&self) -> Option<WriteBehindStats> {
        let t = self.location()?;
        Some(WriteBehindStats {
            aors: t.len(),
            pending: t.pending(),
            batches: t.batches.load(Ordering::Relaxed),
            written: t.written.load(Ordering::Relaxed),
        })
    }

    async fn write_pending(&self, table: &Location) -> Result<(), StoreError> {
        loop {
            let batch = table.take(BATCH);
            if batch.is_empty() {
                return Ok(());
            }
            if let Err(e) = write_changes(self, &batch).await {
                table.retry(&batch);
                return Err(e);
            }
            table.written(batch.len());
        }
    }

    /// Drops a cached table when another process changed it, and the
    /// bindings of users that are gone.
    async fn follow_generations(&self) {
        let (Some(caches), Some(location)) = (self.memory.caches.get(), self.location()) else {
            return;
        };
        let Ok(now) = self.generations().await else {
            return;
        };
        for table in Table::ALL {
            let now = now[table as usize];
            if caches.generation(table).swap(now, Ordering::AcqRel) == now {
                continue;
            }
            caches.clear(table);
            if table == Table::Users {
                self.forget_removed_users(location).await;
            }
        }
    }

    async fn forget_removed_users(&self, location: &Location) {
        let Ok(users) = self.users().list().await else {
            return;
        };
        let known: std::collections::HashSet<String> =
            users.into_iter().map(|u| u.username).collect();
        for aor in location.aors() {
            if !known.contains(&aor) {
                tracing::info!(%aor, "user removed: its bindings go");
                location.forget(&aor);
            }
        }
    }

    /// The cached tables' generations, in [`Table::ALL`]'s order (0 for a
    /// table that has none yet).
    async fn generations(&self) -> Result<[i64; 3], StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as("SELECT name, value FROM generations")
            .fetch_all(self.pool())
            .await?;
        let mut out = [0; 3];
        for (name, value) in rows {
            if let Some(t) = Table::ALL.iter().find(|t| t.name() == name) {
                out[*t as usize] = value;
            }
        }
        Ok(out)
    }

    /// After a change to `table` (`key` the user changed, for users):
    /// drops this process's cached copy, and adds one to the table's
    /// generation so that other processes caching it notice.
    pub(crate) async fn changed(&self, table: Table, key: &str) -> Result<(), StoreError> {
        if let Some(caches) = self.memory.caches.get() {
            caches.drop(table, key);
        }
        sqlx::query(
            "INSERT INTO generations (name, value) VALUES ($1, 1) \
             ON CONFLICT (name) DO UPDATE SET value = generations.value + 1",
        )
        .bind(table.name())
        .execute(self.pool())
        .await?;
        Ok(())
    }
}

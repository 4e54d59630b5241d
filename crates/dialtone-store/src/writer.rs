//! The connections write-behind batches go through (issue 13). Each stream
//! of batches — call records, bindings — keeps one connection from the pool
//! between its batches rather than taking one for each:
//!
//! - sqlx pings a connection when it goes back to the pool, from a task it
//!   spawns for that: on SQLite a round trip to the connection's thread;
//! - the pool hands its idle connections out in turn, and a SQLite
//!   connection that finds the file written by another connection since its
//!   last transaction drops its page cache and reads the pages again.
//!
//! A batch that fails gives its connection back to the pool, which closes it
//! if it is broken (a PostgreSQL restart); the next batch takes a fresh one.
//! The in-memory SQLite database is a single connection that every query
//! needs, so there nothing is kept between batches.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, Connection};

use crate::{Backend, Store, StoreError};

/// A stream of write-behind batches.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Lane {
    Records = 0,
    Bindings = 1,
}

/// The connection each [`Lane`] keeps between batches.
#[derive(Debug)]
pub(crate) struct Writers {
    /// False when the pool's connections must all stay in it.
    keep: bool,
    /// The pool is closing: nothing is kept any more.
    closed: AtomicBool,
    held: [Mutex<Option<PoolConnection<Any>>>; 2],
}

impl Writers {
    pub(crate) fn new(keep: bool) -> Writers {
        Writers {
            keep,
            closed: AtomicBool::new(false),
            held: Default::default(),
        }
    }

    /// Gives the kept connections back to the pool, and keeps none from now
    /// on (before the pool closes, which waits for every connection to come
    /// back, a batch still running among them).
    pub(crate) fn release(&self) {
        self.closed.store(true, Ordering::SeqCst);
        for slot in &self.held {
            drop(slot.lock().ok().and_then(|mut held| held.take()));
        }
    }

    fn take(&self, lane: Lane) -> Option<PoolConnection<Any>> {
        self.held[lane as usize].lock().ok()?.take()
    }

    fn keep(&self, lane: Lane, conn: PoolConnection<Any>) {
        if !self.keep {
            return;
        }
        if let Ok(mut held) = self.held[lane as usize].lock() {
            // Checked under the lock: `release` either finds this
            // connection in the slot or has marked the pool closing first.
            if self.closed.load(Ordering::SeqCst) {
                return;
            }
            // Another batch of this lane that ran meanwhile on a connection
            // of its own (flush at shutdown beside the loop) leaves one.
            *held = Some(conn);
        }
    }
}

impl Store {
    /// Runs `write`, `statements` statements, on `lane`'s connection: in one
    /// transaction when they are more than one (a single statement is
    /// atomic on its own, and BEGIN and COMMIT are a hand-off each). Keeps
    /// the connection for the lane's next batch if it succeeded.
    pub(crate) async fn write_batch<W>(
        &self,
        lane: Lane,
        statements: usize,
        write: W,
    ) -> Result<(), StoreError>
    where
        W: AsyncFnOnce(&mut AnyConnection) -> Result<(), StoreError>,
    {
        let mut conn = match self.writers.take(lane) {
            Some(conn) => conn,
            None => self.pool().acquire().await?,
        };
        let result = if statements > 1 {
            async {
                let mut tx = conn.begin_with(begin_sql(self.backend())).await?;
                write(&mut tx).await?;
                tx.commit().await?;
                Ok(())
            }
            .await
        } else {
            write(&mut conn).await
        };
        if result.is_ok() {
            self.writers.keep(lane, conn);
        }
        result
    }
}

/// How a transaction that will write begins.
pub(crate) fn begin_sql(backend: Backend) -> &'static str {
    match backend {
        // A deferred SQLite transaction that reads and then writes fails at once
        // with SQLITE_BUSY when another writer got in between (the busy timeout
        // does not apply to that upgrade). Taking the write lock at BEGIN makes
        // concurrent writers queue on the busy timeout instead.
        Backend::Sqlite => "BEGIN IMMEDIATE",
        // PostgreSQL writers serialise on row locks (see the `aors` table).
        Backend::Postgres => "BEGIN",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn select_one(conn: &mut AnyConnection) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(conn).await?;
        Ok(())
    }

    fn held(store: &Store, lane: Lane) -> bool {
        store.writers.held[lane as usize].lock().unwrap().is_some()
    }

    #[tokio::test]
    async fn a_lane_keeps_its_connection_after_a_batch_and_drops_it_after_a_failure() {
        let dir = std::env::temp_dir().join(format!("dialtone-writer-{}", std::process::id()));
        let store = Store::connect(&format!("sqlite://{}", dir.join("w.db").display()))
            .await
            .unwrap();
        store
            .write_batch(Lane::Records, 1, select_one)
            .await
            .unwrap();
        assert!(held(&store, Lane::Records));
        assert!(!held(&store, Lane::Bindings));

        let failing = async |conn: &mut AnyConnection| {
            sqlx::query("SELECT * FROM no_such_table")
                .execute(conn)
                .await?;
            Ok(())
        };
        assert!(store.write_batch(Lane::Records, 1, failing).await.is_err());
        assert!(!held(&store, Lane::Records));

        // Closing gives the kept connection back: the pool's close waits
        // for every connection, so it would hang otherwise.
        store
            .write_batch(Lane::Bindings, 1, select_one)
            .await
            .unwrap();
        assert!(held(&store, Lane::Bindings));
        tokio::time::timeout(Duration::from_secs(5), store.close())
            .await
            .expect("the pool closes with a lane's connection kept");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn the_in_memory_database_keeps_its_one_connection_in_the_pool() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        store
            .write_batch(Lane::Records, 1, select_one)
            .await
            .unwrap();
        assert!(!held(&store, Lane::Records));
        sqlx::query("SELECT 1").execute(store.pool()).await.unwrap();
    }
}

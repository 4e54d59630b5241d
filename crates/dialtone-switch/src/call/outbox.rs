//! Where call records wait for the database (issue 13). A call hands its
//! record over when it starts, is answered and ends, and never waits for
//! the write: [`run`] writes what waits in batches, one transaction each,
//! [`LINGER`] after the first record arrives, so a busy switch writes many
//! calls' records in one commit and a call that starts and ends within the
//! linger is written once. Each call has one entry, its latest version.
//!
//! When the database is unreachable (PostgreSQL restarting, a network cut)
//! the records stay here and the batch is retried, backing off, until it
//! answers again. The process keeps them in memory only: SIGTERM flushes
//! them (bounded, [`RecordOutbox::flush`]); a `kill -9` loses the batch in
//! flight and what arrived within the linger (or, during an outage,
//! everything waiting). `/metrics` shows how many wait:
//! `dialtone_call_records_pending`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use dialtone_store::{CallRecord, Store, StoreError, WRITE_BEHIND_LINGER as LINGER};
use tokio::sync::{watch, Notify};

/// How soon a failed batch is tried again, doubling up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(5);
/// Records per transaction.
const BATCH: usize = 500;

#[derive(Debug, Default)]
pub struct RecordOutbox {
    /// Oldest first; one entry per call id, its latest version.
    waiting: Mutex<VecDeque<CallRecord>>,
    wake: Notify,
    /// The last batch failed: the database is away.
    failing: AtomicBool,
    /// Records written after a failed attempt, since start (for /metrics).
    pub written_late: AtomicU64,
    /// Batches (transactions) and records written, since start.
    pub batches: AtomicU64,
    pub written: AtomicU64,
}

impl RecordOutbox {
    /// Hands over the call's latest record: it replaces the version still
    /// waiting, or waits behind the others.
    pub fn put(&self, rec: &CallRecord) {
        if let Ok(mut w) = self.waiting.lock() {
            match w.iter_mut().rev().find(|r| r.id == rec.id) {
                Some(slot) => *slot = rec.clone(),
                None => w.push_back(rec.clone()),
            }
        }
        self.wake.notify_one();
    }

    /// The version of a call's record not yet in the database, if any (so
    /// that this process reads its own writes).
    pub fn latest(&self, id: &str) -> Option<CallRecord> {
        let w = self.waiting.lock().ok()?;
        w.iter().rev().find(|r| r.id == id).cloned()
    }

    /// How many records wait.
    pub fn pending(&self) -> usize {
        self.waiting.lock().map(|w| w.len()).unwrap_or(0)
    }

    /// Writes what waits, a batch per transaction, until nothing does or a
    /// batch fails; returns how many were written.
    async fn drain(&self, store: &Store) -> (u64, Result<(), StoreError>) {
        let mut written = 0;
        loop {
            let batch: Vec<CallRecord> = match self.waiting.lock() {
                Ok(w) => w.iter().take(BATCH).cloned().collect(),
                Err(_) => return (written, Ok(())),
            };
            if batch.is_empty() {
                return (written, Ok(()));
            }
            if let Err(e) = store.calls().upsert_all(&batch).await {
                return (written, Err(e));
            }
            if let Ok(mut w) = self.waiting.lock() {
                // The batch was the front of the queue, and only this task
                // removes entries, so it still is; a newer version `put` in
                // place of one meanwhile stays.
                let mut i = 0;
                w.retain(|r| {
                    let written = batch.get(i).is_some_and(|b| b == r);
                    i += 1;
                    !written
                });
            }
            written += batch.len() as u64;
            self.batches.fetch_add(1, Ordering::Relaxed);
            self.written
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
        }
    }

    /// Writes what waits, trying every [`RETRY_FIRST`] until `deadline`;
    /// what is left is logged as lost (shutdown).
    pub async fn flush(&self, store: &Store, deadline: Duration) {
        let end = tokio::time::Instant::now() + deadline;
        while self.pending() > 0 && tokio::time::Instant::now() < end {
            if self.drain(store).await.1.is_err() {
                tokio::time::sleep(RETRY_FIRST).await;
            }
        }
        let left: Vec<String> = self
            .waiting
            .lock()
            .map(|w| w.iter().map(|r| r.id.clone()).collect())
            .unwrap_or_default();
        if !left.is_empty() {
            tracing::error!(records = left.len(), calls = ?left, "database still unreachable at shutdown: these call records are lost");
        }
    }
}

/// Writes the records that wait, until `shutdown`.
pub async fn run(
    outbox: std::sync::Arc<RecordOutbox>,
    store: Store,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut delay = RETRY_FIRST;
    let mut late = 0u64;
    loop {
        if outbox.pending() == 0 {
            tokio::select! {
                _ = outbox.wake.notified() => {}
                _ = shutdown.changed() => return,
            }
        }
        let failing = outbox.failing.load(Ordering::Acquire);
        tokio::select! {
            _ = tokio::time::sleep(if failing { delay } else { LINGER }) => {}
            _ = shutdown.changed() => return,
        }
        let (written, result) = outbox.drain(&store).await;
        if failing {
            late += written;
            outbox.written_late.fetch_add(written, Ordering::Relaxed);
        }
        match result {
            Ok(()) => {
                if late > 0 {
                    tracing::info!(
                        records = late,
                        "database answers again: the call records kept meanwhile are written"
                    );
                }
                late = 0;
                delay = RETRY_FIRST;
                outbox.failing.store(false, Ordering::Release);
            }
            Err(e) => {
                if !failing {
                    tracing::error!(error = %e, records = outbox.pending(), "database unreachable: call records are kept in memory and written when it answers again");
                    delay = RETRY_FIRST;
                } else {
                    delay = (delay * 2).min(RETRY_MAX);
                }
                outbox.failing.store(true, Ordering::Release);
            }
        }
    }
}

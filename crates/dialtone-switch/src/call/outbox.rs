//! Call records the database could not take. A record is written when its
//! call starts, is answered and ends; when the database is unreachable
//! (PostgreSQL restarting, a network cut) the write is kept here instead of
//! lost, and [`run`] writes what is kept once the database answers again —
//! oldest first, the latest version of each call, as one upsert each. While
//! anything waits, every new write waits too (only the first write of an
//! outage spends the pool's acquire timeout finding the database gone), so
//! a call's writes never overtake each other. The process keeps the records in
//! memory only: SIGTERM flushes them (bounded), a crash during an outage
//! loses them (and `/metrics` shows how many wait:
//! `dialtone_call_records_pending`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dialtone_store::{CallRecord, Store, StoreError};
use tokio::sync::{watch, Notify};

/// How soon a waiting record is tried again, doubling up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(5);
/// How long a call waits for its record's write before leaving it here (a
/// healthy database answers in milliseconds; one that is away may take the
/// pool's acquire timeout, and the pool may queue such attempts behind each
/// other).
const DIRECT_WRITE_LIMIT: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
pub struct RecordOutbox {
    /// Oldest first; one entry per call id.
    waiting: Mutex<VecDeque<CallRecord>>,
    wake: Notify,
    /// Records written late, since start (for /metrics).
    pub written_late: AtomicU64,
    /// Writes running in tasks of their own (`Record::save_behind`).
    running: AtomicUsize,
}

/// One write running in a task of its own, counted until it is dropped,
/// so that [`RecordOutbox::flush`] waits for it at shutdown.
pub struct RunningWrite(Arc<RecordOutbox>);

impl RunningWrite {
    pub fn outbox(&self) -> &RecordOutbox {
        &self.0
    }
}

impl Drop for RunningWrite {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::AcqRel);
    }
}

impl RecordOutbox {
    /// Writes `rec` now (`insert` for the call's first write), or keeps it
    /// when the database cannot take it or an earlier version of the call
    /// is still waiting. An error that retrying cannot mend (a duplicate
    /// id) is logged and dropped.
    pub async fn write(&self, store: &Store, rec: &CallRecord, insert: bool) {
        if self.queue_behind_waiting(rec) {
            return;
        }
        let write = async {
            if insert {
                store.calls().start(rec).await
            } else {
                store.calls().update(rec).await
            }
        };
        let error = match tokio::time::timeout(DIRECT_WRITE_LIMIT, write).await {
            Ok(Ok(())) => return,
            Ok(Err(e @ (StoreError::Conflict { .. } | StoreError::NotFound { .. }))) => {
                tracing::error!(call = %rec.id, error = %e, "call record not written");
                return;
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer in {} ms", DIRECT_WRITE_LIMIT.as_millis()),
        };
        if self.keep(rec.clone()) == 1 {
            tracing::error!(call = %rec.id, %error, "database unreachable: call records are kept in memory and written when it answers again");
        }
    }

    /// Counts a write that is about to run in a task of its own.
    pub fn start_write(self: &Arc<Self>) -> RunningWrite {
        self.running.fetch_add(1, Ordering::AcqRel);
        RunningWrite(Arc::clone(self))
    }

    /// How many records wait.
    pub fn pending(&self) -> usize {
        self.waiting.lock().map(|w| w.len()).unwrap_or(0)
    }

    /// While anything waits (the database is away), `rec` waits too — in
    /// place of its call's waiting version, or behind the others — so this
    /// call does not wait for the database as well; false when nothing
    /// waits.
    fn queue_behind_waiting(&self, rec: &CallRecord) -> bool {
        let Ok(mut w) = self.waiting.lock() else {
            return false;
        };
        if w.is_empty() {
            return false;
        }
        match w.iter_mut().find(|r| r.id == rec.id) {
            Some(slot) => *slot = rec.clone(),
            None => {
                w.push_back(rec.clone());
                self.wake.notify_one();
            }
        }
        true
    }

    /// Keeps `rec` (after any version already waiting); returns how many wait.
    fn keep(&self, rec: CallRecord) -> usize {
        let n = match self.waiting.lock() {
            Ok(mut w) => {
                match w.iter_mut().find(|r| r.id == rec.id) {
                    Some(slot) => *slot = rec,
                    None => w.push_back(rec),
                }
                w.len()
            }
            Err(_) => 0,
        };
        self.wake.notify_one();
        n
    }

    /// Writes the waiting records in order until one fails; returns
    /// (written, still waiting).
    async fn drain(&self, store: &Store) -> (u64, usize) {
        let mut written = 0;
        loop {
            let Some(next) = self.waiting.lock().ok().and_then(|w| w.front().cloned()) else {
                return (written, 0);
            };
            if store.calls().upsert(&next).await.is_err() {
                return (written, self.pending());
            }
            if let Ok(mut w) = self.waiting.lock() {
                // A newer version may have replaced it meanwhile: keep that.
                if w.front().is_some_and(|r| *r == next) {
                    w.pop_front();
                }
            }
            written += 1;
            self.written_late.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Lets the writes running in tasks of their own finish, then writes
    /// what waits, by attempts [`RETRY_FIRST`] apart, at most until
    /// `deadline`; what is left is logged as lost (shutdown).
    pub async fn flush(&self, store: &Store, deadline: Duration) {
        let end = tokio::time::Instant::now() + deadline;
        while self.running.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        while self.pending() > 0 && tokio::time::Instant::now() < end {
            self.drain(store).await;
            if self.pending() > 0 {
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

/// Retries the waiting records until `shutdown`.
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
            // Give the database the first retry interval before trying.
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.changed() => return,
        }
        let (written, left) = outbox.drain(&store).await;
        late += written;
        if left == 0 {
            if late > 0 {
                tracing::info!(
                    records = late,
                    "database answers again: the call records kept meanwhile are written"
                );
            }
            late = 0;
            delay = RETRY_FIRST;
        } else {
            delay = (delay * 2).min(RETRY_MAX);
        }
    }
}

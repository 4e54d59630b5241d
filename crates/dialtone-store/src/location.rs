//! The location table in memory (issue 13), as Kamailio's usrloc keeps it in
//! write-back mode: a running switch answers every REGISTER and every lookup
//! from here, sharded by address of record, and the bindings reach the
//! database behind, a batch of changed AORs in one transaction
//! ([`crate::write_behind`]). Loaded from the database when the switch
//! starts; the database stays the copy that outlives the process, and what
//! other processes (the CLI) read.
//!
//! Only one process may keep the table: several nodes sharing a database
//! (the cluster) read and write the bindings in the database instead.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use dashmap::DashMap;
use tokio::sync::Notify;

use crate::registrations::out_of_order;
use crate::{Binding, BindingChange, StoreError};

#[derive(Debug, Default)]
pub(crate) struct Location {
    /// Unexpired-when-written bindings of each AOR, ordered by contact;
    /// reads skip what has expired since.
    bindings: DashMap<String, Vec<Binding>, foldhash::fast::RandomState>,
    /// Bindings (AOR, contact) changed since their last write to the
    /// database: each is written as it is then, or deleted when it is gone.
    dirty: Mutex<HashSet<(String, String), foldhash::fast::RandomState>>,
    pub(crate) wake: Notify,
    /// Batches and bindings written, for /metrics.
    pub(crate) batches: AtomicU64,
    pub(crate) written: AtomicU64,
}

/// One binding's write: as it is now, or gone.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Change {
    Upsert(Binding),
    Delete { aor: String, contact: String },
}

impl Location {
    /// Fills the table with what the database holds.
    pub(crate) fn load(bindings: Vec<Binding>) -> Location {
        let table = Location::default();
        for b in bindings {
            table.bindings.entry(b.aor.clone()).or_default().push(b);
        }
        for mut e in table.bindings.iter_mut() {
            e.value_mut().sort_by(|a, b| a.contact.cmp(&b.contact));
        }
        table
    }

    /// [`crate::Registrations::apply`] on the table: the same rules, the
    /// AOR's shard locked for the change (no await inside).
    pub(crate) fn apply(
        &self,
        aor: &str,
        call_id: &str,
        cseq: u32,
        changes: &[BindingChange],
        now: i64,
    ) -> Result<Vec<Binding>, StoreError> {
        let mut entry = self.bindings.entry(aor.to_string()).or_default();
        let current = entry.value_mut();
        current.retain(|b| b.expires_at > now);
        let stored: Vec<(&str, &str, i64)> = current
            .iter()
            .map(|b| (b.contact.as_str(), b.call_id.as_str(), i64::from(b.cseq)))
            .collect();
        if out_of_order(&stored, changes, call_id, i64::from(cseq)) {
            tracing::debug!(
                aor,
                call_id,
                cseq,
                "REGISTER out of order; bindings unchanged"
            );
            return Err(StoreError::OutOfOrder);
        }
        let mut touched: Vec<String> = Vec::with_capacity(changes.len());
        for change in changes {
            match change {
                BindingChange::Upsert { contact, .. } => {
                    touched.push(contact.clone());
                    current.retain(|b| &b.contact != contact);
                    // None: an expiry already past, a removal.
                    if let Some(b) = change.binding(aor, call_id, cseq, now) {
                        current.push(b);
                    }
                }
                BindingChange::Remove { contact } => {
                    touched.push(contact.clone());
                    current.retain(|b| &b.contact != contact);
                }
                BindingChange::RemoveAll => {
                    touched.extend(current.drain(..).map(|b| b.contact));
                }
            }
        }
        current.sort_by(|a, b| a.contact.cmp(&b.contact));
        let out = current.clone();
        if out.is_empty() {
            drop(entry);
            self.bindings.remove_if(aor, |_, v| v.is_empty());
        } else {
            drop(entry);
        }
        self.mark(aor, touched);
        Ok(out)
    }

    /// Unexpired bindings of one AOR, ordered by contact.
    pub(crate) fn list(&self, aor: &str, now: i64) -> Vec<Binding> {
        self.bindings
            .get(aor)
            .map(|v| v.iter().filter(|b| b.expires_at > now).cloned().collect())
            .unwrap_or_default()
    }

    /// Every unexpired binding, ordered by AOR then contact.
    pub(crate) fn list_all(&self, now: i64) -> Vec<Binding> {
        let mut all: Vec<Binding> = self
            .bindings
            .iter()
            .flat_map(|e| {
                e.value()
                    .iter()
                    .filter(|b| b.expires_at > now)
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .collect();
        all.sort_by(|a, b| (&a.aor, &a.contact).cmp(&(&b.aor, &b.contact)));
        all
    }

    /// Drops expired bindings; returns how many. The database drops its
    /// own copies with one statement (`purge_expired`), so nothing is marked.
    pub(crate) fn purge(&self, now: i64) -> u64 {
        let mut purged = 0u64;
        self.bindings.retain(|_, v| {
            let before = v.len();
            v.retain(|b| b.expires_at > now);
            purged += (before - v.len()) as u64;
            !v.is_empty()
        });
        purged
    }

    /// Forgets an AOR whose user is gone; the next batch deletes its rows.
    pub(crate) fn forget(&self, aor: &str) {
        if let Some((_, gone)) = self.bindings.remove(aor) {
            self.mark(aor, gone.into_iter().map(|b| b.contact).collect());
        }
    }

    /// How many AORs have bindings.
    pub(crate) fn len(&self) -> usize {
        self.bindings.len()
    }

    /// The AORs in the table.
    pub(crate) fn aors(&self) -> Vec<String> {
        self.bindings.iter().map(|e| e.key().clone()).collect()
    }

    fn mark(&self, aor: &str, contacts: Vec<String>) {
        if contacts.is_empty() {
            return;
        }
        if let Ok(mut d) = self.dirty.lock() {
            d.extend(contacts.into_iter().map(|c| (aor.to_string(), c)));
        }
        self.wake.notify_one();
    }

    /// How many bindings wait for the database.
    pub(crate) fn pending(&self) -> usize {
        self.dirty.lock().map(|d| d.len()).unwrap_or(0)
    }

    /// Takes up to `max` changed bindings as they are now.
    pub(crate) fn take(&self, max: usize) -> Vec<Change> {
        let keys: Vec<(String, String)> = match self.dirty.lock() {
            Ok(mut d) => {
                let picked: Vec<(String, String)> = d.iter().take(max).cloned().collect();
                for k in &picked {
                    d.remove(k);
                }
                picked
            }
            Err(_) => return Vec::new(),
        };
        keys.into_iter()
            .map(|(aor, contact)| {
                let now = self
                    .bindings
                    .get(&aor)
                    .and_then(|v| v.iter().find(|b| b.contact == contact).cloned());
                match now {
                    Some(b) => Change::Upsert(b),
                    None => Change::Delete { aor, contact },
                }
            })
            .collect()
    }

    /// Puts back the bindings of a batch that failed (a change made since
    /// is newer and is written with them).
    pub(crate) fn retry(&self, batch: &[Change]) {
        if let Ok(mut d) = self.dirty.lock() {
            d.extend(batch.iter().map(|c| match c {
                Change::Upsert(b) => (b.aor.clone(), b.contact.clone()),
                Change::Delete { aor, contact } => (aor.clone(), contact.clone()),
            }));
        }
    }

    pub(crate) fn written(&self, n: usize) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.written.fetch_add(n as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upsert(contact: &str, expires_at: i64) -> BindingChange {
        BindingChange::Upsert {
            contact: contact.into(),
            expires_at,
            q: None,
            source: "udp:127.0.0.1:5062".into(),
            user_agent: None,
            instance: None,
            path: None,
        }
    }

    #[test]
    fn applies_refreshes_removals_and_the_ordering_rule() {
        let t = Location::default();
        let b = t
            .apply("alice", "c1", 1, &[upsert("sip:a@h2", 200)], 100)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(b.len(), 1);
        let b = t
            .apply("alice", "c1", 2, &[upsert("sip:a@h1", 300)], 100)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            b.iter().map(|b| b.contact.as_str()).collect::<Vec<_>>(),
            ["sip:a@h1", "sip:a@h2"]
        );
        // Same Call-ID, CSeq not higher: refused, nothing changed.
        assert!(matches!(
            t.apply("alice", "c1", 2, &[BindingChange::RemoveAll], 100),
            Err(StoreError::OutOfOrder)
        ));
        assert_eq!(t.list("alice", 100).len(), 2);
        // Expired bindings are hidden, then purged.
        assert_eq!(t.list("alice", 250).len(), 1);
        assert_eq!(t.purge(250), 1);
        let gone = t
            .apply(
                "alice",
                "c1",
                3,
                &[BindingChange::Remove {
                    contact: "sip:a@h1".into(),
                }],
                260,
            )
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(gone.is_empty());
        assert!(
            t.aors().is_empty(),
            "an AOR with no bindings leaves the table"
        );
        // Every binding touched was marked for the database; both are gone.
        let mut batch = t.take(10);
        batch.sort_by_key(|c| format!("{c:?}"));
        assert_eq!(
            batch,
            ["sip:a@h1", "sip:a@h2"].map(|c| Change::Delete {
                aor: "alice".into(),
                contact: c.into()
            })
        );
        assert_eq!(t.pending(), 0);
    }
}

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
    bindings: DashMap<String, Vec<Binding>>,
    /// AORs changed since their last write to the database.
    dirty: Mutex<HashSet<String>>,
    pub(crate) wake: Notify,
    /// Batches and AORs written, for /metrics.
    pub(crate) batches: AtomicU64,
    pub(crate) aors_written: AtomicU64,
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
        for change in changes {
            match change {
                BindingChange::Upsert {
                    contact,
                    expires_at,
                    q,
                    source,
                    user_agent,
                    instance,
                    path,
                } => {
                    current.retain(|b| &b.contact != contact);
                    // An expiry already past is a removal.
                    if *expires_at > now {
                        current.push(Binding {
                            aor: aor.to_string(),
                            contact: contact.clone(),
                            expires_at: *expires_at,
                            q: *q,
                            call_id: call_id.to_string(),
                            cseq,
                            source: source.clone(),
                            user_agent: user_agent.clone(),
                            instance: instance.clone(),
                            updated_at: now,
                            path: path.clone(),
                        });
                    }
                }
                BindingChange::Remove { contact } => current.retain(|b| &b.contact != contact),
                BindingChange::RemoveAll => current.clear(),
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
        self.mark(aor);
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
        if self.bindings.remove(aor).is_some() {
            self.mark(aor);
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

    fn mark(&self, aor: &str) {
        if let Ok(mut d) = self.dirty.lock() {
            d.insert(aor.to_string());
        }
        self.wake.notify_one();
    }

    /// How many AORs wait for the database.
    pub(crate) fn pending(&self) -> usize {
        self.dirty.lock().map(|d| d.len()).unwrap_or(0)
    }

    /// Takes up to `max` changed AORs with their bindings as they are now
    /// (empty: the AOR has none left, its rows go).
    pub(crate) fn take(&self, max: usize) -> Vec<(String, Vec<Binding>)> {
        let aors: Vec<String> = match self.dirty.lock() {
            Ok(mut d) => {
                let picked: Vec<String> = d.iter().take(max).cloned().collect();
                for a in &picked {
                    d.remove(a);
                }
                picked
            }
            Err(_) => return Vec::new(),
        };
        aors.into_iter()
            .map(|aor| {
                let bindings = self
                    .bindings
                    .get(&aor)
                    .map(|v| v.clone())
                    .unwrap_or_default();
                (aor, bindings)
            })
            .collect()
    }

    /// Puts back AORs whose batch failed (a change made since is newer and
    /// is written with them).
    pub(crate) fn retry(&self, aors: impl IntoIterator<Item = String>) {
        if let Ok(mut d) = self.dirty.lock() {
            d.extend(aors);
        }
    }

    pub(crate) fn written(&self, aors: usize) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.aors_written.fetch_add(aors as u64, Ordering::Relaxed);
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
        // Every change was marked for the database, the last as a deletion.
        let batch = t.take(10);
        assert_eq!(batch, vec![("alice".to_string(), Vec::new())]);
        assert_eq!(t.pending(), 0);
    }
}

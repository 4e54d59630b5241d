//! What a running switch reads on every REGISTER and every call, cached in
//! memory (issue 13): users (the registrar's digest check, a call's
//! callee and limits), numbers (the routing of every dialled number) and
//! trunks (who a call comes from, where it goes). A change made in this
//! process (the REST and MCP doors) drops the cached entries at once; one
//! made by another process (the CLI, another node sharing PostgreSQL)
//! adds one to its table's generation (the `generations` table, migration
//! 0012), which the switch reads four times a second ([`crate::write_behind`])
//! and then drops that whole cache. Nothing absent is cached: a user or
//! number just added is found at once.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use dashmap::DashMap;

use crate::{Number, Store, StoreError, Trunk, User};

/// Entries read from one table, by key, valid for one generation.
#[derive(Debug)]
pub(crate) struct KeyedCache<V> {
    entries: DashMap<String, V, foldhash::fast::RandomState>,
    /// The table's generation the cache is valid for.
    pub(crate) generation: AtomicI64,
    /// Counts local drops, so that a read that raced one is not cached.
    epoch: AtomicU64,
}

impl<V> Default for KeyedCache<V> {
    fn default() -> Self {
        KeyedCache {
            entries: DashMap::default(),
            generation: AtomicI64::new(0),
            epoch: AtomicU64::new(0),
        }
    }
}

/// Caps memory under a flood of distinct valid keys (never reached by a
/// real user base of this size; the cache just starts again).
const MAX_ENTRIES: usize = 1_000_000;

impl<V: Clone> KeyedCache<V> {
    pub(crate) fn get(&self, key: &str) -> Option<V> {
        self.entries.get(key).map(|v| v.clone())
    }

    /// Taken before a database read whose result may be kept.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Keeps `value`, read from the database, when no drop happened since
    /// `epoch` was taken (before the read).
    pub(crate) fn keep(&self, key: &str, value: V, epoch: u64) {
        if self.entries.len() >= MAX_ENTRIES {
            self.clear();
        }
        if self.epoch() == epoch {
            self.entries.insert(key.to_string(), value);
        }
    }

    pub(crate) fn drop_key(&self, key: &str) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.entries.remove(key);
    }

    pub(crate) fn clear(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.entries.clear();
    }
}

/// The tables a running switch caches, each by its `generations` name.
#[derive(Debug, Default)]
pub(crate) struct Caches {
    /// By username.
    pub(crate) users: KeyedCache<User>,
    /// By the number as dialled (both forms of a '+' number may be kept).
    pub(crate) numbers: KeyedCache<Number>,
    /// Every trunk, as one list under [`ALL_TRUNKS`]: a call's source
    /// address is matched against all of them.
    pub(crate) trunks: KeyedCache<Arc<Vec<Trunk>>>,
}

/// The one key of [`Caches::trunks`].
pub(crate) const ALL_TRUNKS: &str = "";

/// A table whose changes are announced through its generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Table {
    Users,
    Numbers,
    Trunks,
}

impl Table {
    pub(crate) const ALL: [Table; 3] = [Table::Users, Table::Numbers, Table::Trunks];

    /// Its row in `generations`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Table::Users => "users",
            Table::Numbers => "numbers",
            Table::Trunks => "trunks",
        }
    }
}

impl Caches {
    pub(crate) fn generation(&self, table: Table) -> &AtomicI64 {
        match table {
            Table::Users => &self.users.generation,
            Table::Numbers => &self.numbers.generation,
            Table::Trunks => &self.trunks.generation,
        }
    }

    /// Drops what is cached of `table`: `key` alone for users, everything
    /// for the others (a number is cached under each form dialled).
    pub(crate) fn drop(&self, table: Table, key: &str) {
        match table {
            Table::Users => self.users.drop_key(key),
            Table::Numbers => self.numbers.clear(),
            Table::Trunks => self.trunks.clear(),
        }
    }

    pub(crate) fn clear(&self, table: Table) {
        match table {
            Table::Users => self.users.clear(),
            Table::Numbers => self.numbers.clear(),
            Table::Trunks => self.trunks.clear(),
        }
    }
}

impl Store {
    /// `key` from the cache `pick` chooses when this process keeps one
    /// ([`Store::keep_in_memory`]), else `read` from the database; what
    /// `read` finds is kept (unless a change raced it), what it does not
    /// find is read again next time.
    pub(crate) async fn read_through<V, F>(
        &self,
        pick: fn(&Caches) -> &KeyedCache<V>,
        key: &str,
        read: F,
    ) -> Result<Option<V>, StoreError>
    where
        V: Clone,
        F: std::future::Future<Output = Result<Option<V>, StoreError>>,
    {
        let Some(cache) = self.memory.caches.get().map(pick) else {
            return read.await;
        };
        if let Some(v) = cache.get(key) {
            return Ok(Some(v));
        }
        let epoch = cache.epoch();
        let found = read.await?;
        if let Some(v) = &found {
            cache.keep(key, v.clone(), epoch);
        }
        Ok(found)
    }
}

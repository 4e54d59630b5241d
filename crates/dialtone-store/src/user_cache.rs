//! Users as the registrar reads them, cached in a running switch (issue 13):
//! a REGISTER checks its digest against the cached HA1 instead of a
//! database read. A change made in this process (the REST and MCP doors)
//! drops the user at once; one made by another process (the CLI) adds one
//! to the `users` generation (migration 0012), which the switch reads once
//! a second ([`crate::write_behind`]) and then drops the whole cache. A
//! user that does not exist is never cached, so a user just added
//! registers at once.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use dashmap::DashMap;

use crate::User;

#[derive(Debug, Default)]
pub(crate) struct UserCache {
    users: DashMap<String, User, foldhash::fast::RandomState>,
    /// The `users` generation the cache is valid for.
    pub(crate) generation: AtomicI64,
    /// Counts local drops, so that a read that raced one is not cached.
    epoch: AtomicU64,
}

/// Caps memory under a flood of distinct valid users (never reached by a
/// real user base of this size; the cache just starts again).
const MAX_USERS: usize = 1_000_000;

impl UserCache {
    pub(crate) fn get(&self, username: &str) -> Option<User> {
        self.users.get(username).map(|u| u.clone())
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Keeps a user read from the database when no drop happened since
    /// `epoch` was taken (before the read).
    pub(crate) fn keep(&self, user: &User, epoch: u64) {
        if self.users.len() >= MAX_USERS {
            self.clear();
        }
        if self.epoch() == epoch {
            self.users.insert(user.username.clone(), user.clone());
        }
    }

    pub(crate) fn drop_user(&self, username: &str) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.users.remove(username);
    }

    pub(crate) fn clear(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.users.clear();
    }
}

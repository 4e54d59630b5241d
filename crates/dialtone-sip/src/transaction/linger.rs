//! The last stretch of a transaction's life, kept compact. Once a
//! transaction only waits out a timer — Completed until Timer D, J or K,
//! Confirmed until Timer I, RFC 6026's Accepted until Timer L (once the 2xx
//! is ACKed) or Timer M — all it does is absorb retransmissions, or answer
//! them with what it sent last. That stretch is most of its life (32 s of
//! Timer J after a REGISTER's 200, 32 s of Timers L and M after every
//! call's answer), so the layer plays it without a task: the transaction's
//! entry in the table becomes a [`Slot::Lingering`], and the layer's one
//! sweeper removes it when its timer would have fired.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;

use super::driver::Inline;
use super::key::{ClientKey, ServerKey};
use super::server_non_invite::ServerNonInvite;
use crate::transport::Peer;

/// What a machine leaves once it only waits out a timer.
pub(crate) struct Linger {
    /// When that timer fires (the transaction terminates).
    pub until: Instant,
    pub echo: Echo,
}

/// What a lingering transaction does with a message that matches it.
pub(crate) enum Echo {
    /// Drops it (Confirmed, Accepted once ACKed, a client's Completed).
    Absorb,
    /// Sends these bytes again: a server non-INVITE's final response for
    /// a retransmitted request (§17.2.2), a client INVITE's ACK for a
    /// retransmitted non-2xx (§17.1.1.2).
    Resend(Bytes),
    /// Hands every 2xx to the TU, which ACKs it (RFC 6026 §8.4, a client
    /// INVITE in Accepted).
    PassToTu,
}

/// A transaction's entry in the layer's tables.
pub(crate) enum Slot<I> {
    /// Its task's input channel.
    Live(mpsc::UnboundedSender<I>),
    /// A non-INVITE server transaction run with no task (server table only).
    Inline(Arc<Inline<ServerNonInvite>>),
    /// Waiting out its timer, with no task (`peer` is where an
    /// [`Echo::Resend`] goes).
    Lingering { echo: Echo, peer: Peer },
}

impl<I> Slot<I> {
    /// Whether this is the live entry fed by `input`.
    pub fn is_live(&self, input: &mpsc::UnboundedSender<I>) -> bool {
        matches!(self, Slot::Live(tx) if tx.same_channel(input))
    }
}

/// A lingering entry's key, for the sweeper.
pub(crate) enum Key {
    Server(ServerKey),
    Client(ClientKey),
}

impl From<ServerKey> for Key {
    fn from(k: ServerKey) -> Key {
        Key::Server(k)
    }
}

impl From<ClientKey> for Key {
    fn from(k: ClientKey) -> Key {
        Key::Client(k)
    }
}

/// When each lingering entry ends, in order; one sweeper task per layer
/// sleeps until the first.
#[derive(Default)]
pub(crate) struct Expiry {
    due: Mutex<BTreeMap<(Instant, u64), Key>>,
    seq: AtomicU64,
    /// Woken when an entry due sooner than any other arrives.
    sooner: Arc<Notify>,
    sweeper: std::sync::OnceLock<()>,
}

impl Expiry {
    /// Schedules `key` to be removed at `until` (starting the sweeper on
    /// first use; `sweep` is how it removes what is due).
    pub fn at<T: Expiring + Send + Sync + 'static>(
        &self,
        until: Instant,
        key: Key,
        owner: Weak<T>,
        sweep: fn(&T, Key),
    ) {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let first = {
            let Ok(mut due) = self.due.lock() else {
                return;
            };
            let sooner = due.first_key_value().is_none_or(|((t, _), _)| until < *t);
            due.insert((until, seq), key);
            sooner
        };
        let sooner = self.sooner.clone();
        self.sweeper.get_or_init(|| {
            tokio::spawn(run_sweeper(owner, sooner, sweep));
        });
        if first {
            self.sooner.notify_one();
        }
    }

    /// Takes every key due by `now`; returns them and the next deadline.
    fn due_by(&self, now: Instant) -> (Vec<Key>, Option<Instant>) {
        let Ok(mut due) = self.due.lock() else {
            return (Vec::new(), None);
        };
        let mut keys = Vec::new();
        while let Some(entry) = due.first_entry() {
            if entry.key().0 > now {
                return (keys, Some(entry.key().0));
            }
            keys.push(entry.remove());
        }
        (keys, None)
    }
}

/// Something that owns an [`Expiry`] (the layer's tables).
pub(crate) trait Expiring {
    fn expiry(&self) -> &Expiry;
}

async fn run_sweeper<T: Expiring + Send + Sync + 'static>(
    owner: Weak<T>,
    sooner: Arc<Notify>,
    sweep: fn(&T, Key),
) {
    loop {
        let next = {
            // Not held across the wait: the layer may go away meanwhile.
            let Some(owner) = owner.upgrade() else {
                return;
            };
            let (keys, next) = owner.expiry().due_by(Instant::now());
            for key in keys {
                sweep(&owner, key);
            }
            next
        };
        match next {
            Some(at) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    _ = sooner.notified() => {}
                }
            }
            None => sooner.notified().await,
        }
    }
}

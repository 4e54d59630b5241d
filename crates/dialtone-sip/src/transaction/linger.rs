//! The last stretch of a transaction's life, kept compact. Once a
//! transaction only waits out a timer — Completed until Timer D, J or K,
//! Confirmed until Timer I, RFC 6026's Accepted until Timer L (once the 2xx
//! is ACKed) or Timer M — all it does is absorb retransmissions, or answer
//! them with what it sent last. That stretch is most of its life (32 s of
//! Timer J after a REGISTER's 200, 32 s of Timers L and M after every
//! call's answer), so the layer plays it without a task: the transaction's
//! entry in the table becomes a [`Slot::Lingering`] that knows when its
//! timer fires. From then on the entry counts as gone (lookups and counts
//! skip it), and the layer's sweeper frees it within a second.

use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use dashmap::DashMap;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::driver::Inline;
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
    /// Waiting out its timer, with no task, until `until` (`peer` is
    /// where an [`Echo::Resend`] goes).
    Lingering {
        echo: Echo,
        peer: Peer,
        until: Instant,
    },
}

impl<I> Slot<I> {
    /// Whether this is the live entry fed by `input`.
    pub fn is_live(&self, input: &mpsc::UnboundedSender<I>) -> bool {
        matches!(self, Slot::Live(tx) if tx.same_channel(input))
    }

    /// Whether this entry's transaction has terminated: a lingering one
    /// whose timer has fired (the sweeper has yet to free it).
    pub fn ended(&self, now: Instant) -> bool {
        matches!(self, Slot::Lingering { until, .. } if *until <= now)
    }
}

/// How often the sweeper frees the entries whose timer has fired.
const SWEEP: Duration = Duration::from_secs(1);

/// Frees `tables`' ended entries every [`SWEEP`], for as long as their
/// owner lives. One per layer, started with its first lingering entry.
pub(crate) async fn sweep<T: Send + Sync + 'static>(owner: Weak<T>, tables: fn(&T, Instant)) {
    let mut tick = tokio::time::interval(SWEEP);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(owner) = owner.upgrade() else {
            return;
        };
        tables(&owner, Instant::now());
    }
}

/// Drops `table`'s ended entries.
pub(crate) fn sweep_table<K, I, S>(table: &DashMap<K, Slot<I>, S>, now: Instant)
where
    K: Eq + std::hash::Hash,
    S: std::hash::BuildHasher + Clone,
{
    table.retain(|_, v| !v.ended(now));
}

/// `key`'s entry in `table`, unless it only lingers and its timer has
/// fired (it is no transaction any more; the sweeper has yet to free it).
pub(crate) fn find<'a, K, I, S>(
    table: &'a DashMap<K, Slot<I>, S>,
    key: &K,
) -> Option<dashmap::mapref::one::Ref<'a, K, Slot<I>>>
where
    K: Eq + std::hash::Hash,
    S: std::hash::BuildHasher + Clone,
{
    let now = Instant::now();
    table.get(key).filter(|slot| !slot.ended(now))
}

/// The live (not ended) entries of `table`.
pub(crate) fn live_count<K, I, S>(table: &DashMap<K, Slot<I>, S>, now: Instant) -> usize
where
    K: Eq + std::hash::Hash,
    S: std::hash::BuildHasher + Clone,
{
    table.iter().filter(|e| !e.value().ended(now)).count()
}

//! The registry of live calls: finds a Call actor by dialtone's call id or
//! by the SIP Call-ID of any of its legs (in-dialog requests arrive keyed by
//! the latter). Each entry is removed by the actor when it ends.

use std::sync::Arc;

use dashmap::DashMap;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::command::{CallCommand, CommandError, CommandResult};
use super::event::CallEvent;
use super::live::{CallNotice, CallSnapshot, Notices};

/// A cheap handle to talk to one live call.
#[derive(Clone, Debug)]
pub struct CallHandle {
    pub id: Arc<str>,
    tx: mpsc::UnboundedSender<CallEvent>,
    view: watch::Receiver<CallSnapshot>,
    notices: Notices,
}

impl CallHandle {
    pub(crate) fn new(
        id: Arc<str>,
        tx: mpsc::UnboundedSender<CallEvent>,
        view: watch::Receiver<CallSnapshot>,
        notices: Notices,
    ) -> Self {
        CallHandle {
            id,
            tx,
            view,
            notices,
        }
    }

    /// The call's state as of the last event it handled.
    pub fn snapshot(&self) -> CallSnapshot {
        self.view.borrow().clone()
    }

    /// Notices from now on (answered, DTMF, transcript, ended).
    pub fn subscribe(&self) -> broadcast::Receiver<CallNotice> {
        self.notices.subscribe()
    }

    /// A receiver that changes whenever the snapshot does.
    pub fn watch(&self) -> watch::Receiver<CallSnapshot> {
        self.view.clone()
    }

    /// Sends a command and waits for its real outcome.
    pub async fn command(&self, cmd: CallCommand) -> CommandResult {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(CallEvent::Command(cmd, reply))
            .map_err(|_| CommandError::CallEnded)?;
        rx.await.map_err(|_| CommandError::CallEnded)?
    }

    pub(crate) fn send(&self, ev: CallEvent) -> bool {
        self.tx.send(ev).is_ok()
    }

    pub(crate) fn same(&self, other: &CallHandle) -> bool {
        self.tx.same_channel(&other.tx)
    }
}

/// Every live call, by id and by leg Call-ID.
#[derive(Default)]
pub struct CallRegistry {
    by_id: DashMap<Arc<str>, CallHandle, foldhash::fast::RandomState>,
    by_sip_call_id: DashMap<String, CallHandle, foldhash::fast::RandomState>,
}

impl CallRegistry {
    pub fn insert(&self, handle: CallHandle) {
        self.by_id.insert(handle.id.clone(), handle);
    }

    /// Makes the call findable by one of its legs' SIP Call-IDs.
    pub fn add_leg(&self, sip_call_id: &str, handle: &CallHandle) {
        self.by_sip_call_id
            .insert(sip_call_id.to_string(), handle.clone());
    }

    pub fn remove_leg(&self, sip_call_id: &str, handle: &CallHandle) {
        self.by_sip_call_id
            .remove_if(sip_call_id, |_, h| h.same(handle));
    }

    /// Removes an ended call, and the entries of the legs' Call-IDs it
    /// registered that still point at it (a leg handed over to another
    /// call points at that one). A lookup per leg, not a scan of every
    /// live call's legs.
    pub fn remove<'a>(&self, handle: &CallHandle, sip_call_ids: impl IntoIterator<Item = &'a str>) {
        self.by_id.remove_if(&handle.id, |_, h| h.same(handle));
        for call_id in sip_call_ids {
            self.remove_leg(call_id, handle);
        }
    }

    pub fn get(&self, id: &str) -> Option<CallHandle> {
        self.by_id.get(id).map(|h| h.clone())
    }

    pub fn by_sip_call_id(&self, call_id: &str) -> Option<CallHandle> {
        self.by_sip_call_id.get(call_id).map(|h| h.clone())
    }

    /// Live calls.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn all(&self) -> Vec<CallHandle> {
        self.by_id.iter().map(|e| e.value().clone()).collect()
    }
}

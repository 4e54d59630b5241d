//! A call's timers (ring timeout, maximum duration, session refresh): tasks
//! that send the call an event later, hold its channel weakly, and are
//! aborted when it ends.

use super::actor::Call;
use super::event::CallEvent;

impl Call {
    /// Sends `event` to this call after `delay` (a timer the call's end
    /// cancels).
    pub fn after(&mut self, delay: std::time::Duration, event: CallEvent) {
        let mut once = Some(event);
        self.every(delay, move || once.take());
    }

    /// Sends what `next` makes every `period` until it makes nothing or the
    /// call ends. The timer holds the call's channel weakly.
    pub fn every<F>(&mut self, period: std::time::Duration, mut next: F)
    where
        F: FnMut() -> Option<CallEvent> + Send + 'static,
    {
        let events = self.events_tx.downgrade();
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let (Some(tx), Some(ev)) = (events.upgrade(), next()) else {
                    return;
                };
                if tx.send(ev).is_err() {
                    return;
                }
            }
        });
        self.timers.retain(|t| !t.is_finished());
        self.timers.push(task.abort_handle());
    }
}

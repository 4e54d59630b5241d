//! Where a transaction's events for its TU go: into the handle's channel,
//! read with `next_event`, until the TU asks for them to be passed to a
//! function of its own instead ([`ToTu::redirect`]). That function runs on
//! the transaction's task and puts the event straight into the TU's own
//! channel, so no task sits between a transaction and, say, a call.

use std::sync::{Arc, Mutex, Weak};

use tokio::sync::mpsc;

/// A function of the TU's that takes a transaction's events.
pub type Forward<E> = Box<dyn FnMut(E) + Send>;

/// The transaction's end of the route; it ends with the transaction, and
/// with it the handle's channel.
pub(crate) struct ToTu<E>(Arc<Mutex<Route<E>>>);

/// The handle's end: it can redirect the events, but does not keep the
/// channel open once the transaction has ended.
pub(crate) struct Redirect<E>(Weak<Mutex<Route<E>>>);

enum Route<E> {
    Channel(mpsc::UnboundedSender<E>),
    Forward(Forward<E>),
}

impl<E> ToTu<E> {
    /// Events into a channel; the receiver is the handle's.
    pub(crate) fn channel() -> (ToTu<E>, mpsc::UnboundedReceiver<E>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (ToTu(Arc::new(Mutex::new(Route::Channel(tx)))), rx)
    }

    /// Passes one event on.
    pub(crate) fn tell(&self, event: E) {
        let Ok(mut route) = self.0.lock() else {
            return;
        };
        match &mut *route {
            Route::Channel(tx) => {
                let _ = tx.send(event);
            }
            Route::Forward(f) => f(event),
        }
    }

    /// The handle's end of this route.
    pub(crate) fn redirect(&self) -> Redirect<E> {
        Redirect(Arc::downgrade(&self.0))
    }
}

impl<E> Redirect<E> {
    /// From now on events go to `forward`. Those already told, still in
    /// `pending` (the channel's receiver), go to it first, in order: the
    /// lock keeps any new event out until they have. When the transaction
    /// has ended, what it told is all in `pending`.
    pub(crate) fn to(&self, mut pending: mpsc::UnboundedReceiver<E>, mut forward: Forward<E>) {
        let route = self.0.upgrade();
        let mut route = route.as_ref().and_then(|r| r.lock().ok());
        while let Ok(event) = pending.try_recv() {
            forward(event);
        }
        if let Some(route) = route.as_deref_mut() {
            *route = Route::Forward(forward);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redirect_keeps_the_order_of_events_told_before_and_after() {
        let (tu, rx) = ToTu::channel();
        tu.tell(1);
        tu.tell(2);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let into = Arc::clone(&seen);
        tu.redirect()
            .to(rx, Box::new(move |e| into.lock().expect("lock").push(e)));
        tu.tell(3);
        assert_eq!(*seen.lock().expect("lock"), [1, 2, 3]);
    }

    #[test]
    fn the_handle_does_not_keep_the_channel_open() {
        let (tu, mut rx) = ToTu::channel();
        let redirect = tu.redirect();
        tu.tell(1);
        drop(tu);
        assert_eq!(rx.try_recv().ok(), Some(1));
        assert!(rx.try_recv().is_err());
        // Redirected after the end: what was told still arrives.
        let (tu, rx) = ToTu::channel();
        let late = tu.redirect();
        tu.tell(2);
        drop(tu);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let into = Arc::clone(&seen);
        late.to(rx, Box::new(move |e| into.lock().expect("lock").push(e)));
        assert_eq!(*seen.lock().expect("lock"), [2]);
        drop(redirect);
    }
}

//! Runs one transaction state machine as a tokio task: feeds it inputs from
//! its channel and expired timers from its [`TimerSet`], carries out what it
//! asks (send a message, tell the TU), and removes the transaction from the
//! layer's tables once it reaches Terminated, or hands it to the layer as a
//! [`Linger`] once it only waits out a timer.

use std::sync::Mutex;

use rsip::SipMessage;
use tokio::sync::{mpsc, oneshot};

use super::linger::Linger;
use super::timer::{Timer, TimerConfig, TimerSet};
use super::tu::ToTu;
use crate::transport::{Peer, Transports};

/// What a state machine asks its driver to do in reaction to one event.
pub(crate) struct Effects<E> {
    pub timers: TimerSet,
    pub config: TimerConfig,
    pub reliable: bool,
    send: Vec<SipMessage>,
    tu: Vec<E>,
}

impl<E> Effects<E> {
    pub fn send(&mut self, msg: impl Into<SipMessage>) {
        self.send.push(msg.into());
    }

    pub fn tell_tu(&mut self, event: E) {
        self.tu.push(event);
    }
}

/// A transaction state machine (RFC 3261 §17).
pub(crate) trait Machine: Send + 'static {
    type Input: Send + 'static;
    type Event: Send + 'static;
    /// Called once when the transaction starts.
    fn start(&mut self, fx: &mut Effects<Self::Event>);
    fn on_input(&mut self, input: Self::Input, fx: &mut Effects<Self::Event>);
    fn on_timer(&mut self, timer: Timer, fx: &mut Effects<Self::Event>);
    /// §17.1.4 / §17.2.4: a transport failure ends the transaction.
    fn on_transport_error(&mut self, error: String, fx: &mut Effects<Self::Event>);
    fn is_terminated(&self) -> bool;
    /// Once the machine only waits out a timer (Completed, Confirmed,
    /// Accepted once ACKed) and would only absorb or answer
    /// retransmissions: what the layer must keep until that timer fires.
    /// The task then ends; the layer's compact entry plays the rest.
    fn linger(&mut self, fx: &Effects<Self::Event>) -> Option<Linger>;
}

/// Drives `machine` until it terminates or lingers, then calls `done`
/// (with the [`Linger`], if it lingers). `started` is told once what the
/// machine sent on starting (a client's request) has gone to the transport.
#[allow(clippy::too_many_arguments)] // one call site, in the layer
pub(crate) async fn run<M: Machine>(
    mut machine: M,
    mut inputs: mpsc::UnboundedReceiver<M::Input>,
    events: ToTu<M::Event>,
    transports: Transports,
    peer: Peer,
    config: TimerConfig,
    started: Option<oneshot::Sender<()>>,
    done: impl FnOnce(Option<Linger>),
) {
    let mut fx = Effects {
        timers: TimerSet::default(),
        config,
        reliable: peer.protocol.is_reliable(),
        send: Vec::new(),
        tu: Vec::new(),
    };
    machine.start(&mut fx);
    flush(&mut machine, &mut fx, &events, &transports, &peer).await;
    if let Some(started) = started {
        let _ = started.send(());
    }
    while !machine.is_terminated() {
        let deadline = fx.timers.next_deadline();
        tokio::select! {
            input = inputs.recv() => match input {
                Some(input) => machine.on_input(input, &mut fx),
                // The layer holds a sender until `done`, so this only
                // happens when the whole layer is gone.
                None => break,
            },
            _ = sleep_until_opt(deadline), if deadline.is_some() => {
                fire_expired(&mut machine, &mut fx);
            }
        }
        flush(&mut machine, &mut fx, &events, &transports, &peer).await;
        if let Some(linger) = machine.linger(&fx) {
            return done(Some(linger));
        }
    }
    done(None);
}

fn fire_expired<M: Machine>(machine: &mut M, fx: &mut Effects<M::Event>) {
    let now = tokio::time::Instant::now();
    while let Some(t) = fx.timers.pop_expired(now) {
        machine.on_timer(t, fx);
        if machine.is_terminated() {
            break;
        }
    }
}

async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Sends what the machine queued and passes its events to the TU. A send
/// failure is fed back to the machine, which may queue more (loop).
async fn flush<M: Machine>(
    machine: &mut M,
    fx: &mut Effects<M::Event>,
    events: &ToTu<M::Event>,
    transports: &Transports,
    peer: &Peer,
) {
    loop {
        for e in fx.tu.drain(..) {
            events.tell(e);
        }
        let outgoing: Vec<SipMessage> = fx.send.drain(..).collect();
        if outgoing.is_empty() {
            return;
        }
        for msg in outgoing {
            if let Err(e) = transports.send(&msg, peer).await {
                tracing::debug!(%peer, error = %e, "transaction send failed");
                machine.on_transport_error(e.to_string(), fx);
                break;
            }
        }
    }
}

/// A machine with no task of its own, for a transaction that never waits
/// on a timer before it lingers: a non-INVITE server transaction over UDP
/// (RFC 3261 §17.2.2: Trying and Proceeding have no timers; Timer J starts
/// in Completed, which the layer's table plays). Whoever brings an input —
/// the TU its response, the receive task a retransmission — runs the
/// machine and sends what it queued, there and then: a REGISTER costs no
/// hand-off between tasks. Events for the TU are dropped (it reads none
/// from a non-INVITE server transaction); a send failure is logged.
pub(crate) struct Inline<M: Machine> {
    state: Mutex<InlineState<M>>,
    transports: Transports,
    peer: Peer,
}

struct InlineState<M: Machine> {
    machine: M,
    fx: Effects<M::Event>,
    /// Taken when the machine terminates or lingers.
    done: Option<Box<dyn FnOnce(Option<Linger>) + Send>>,
}

impl<M: Machine> Inline<M> {
    pub fn new(
        machine: M,
        transports: Transports,
        peer: Peer,
        config: TimerConfig,
        done: Box<dyn FnOnce(Option<Linger>) + Send>,
    ) -> Self {
        let fx = Effects {
            timers: TimerSet::default(),
            config,
            reliable: peer.protocol.is_reliable(),
            send: Vec::new(),
            tu: Vec::new(),
        };
        let inline = Inline {
            state: Mutex::new(InlineState {
                machine,
                fx,
                done: Some(done),
            }),
            transports,
            peer,
        };
        inline.step(|m, fx| m.start(fx));
        inline
    }

    /// Feeds one input; false once the transaction has ended (or lingers).
    pub fn input(&self, input: M::Input) -> bool {
        self.step(|m, fx| m.on_input(input, fx))
    }

    /// Runs `f` on the machine, sends what it queued, and ends the
    /// transaction (outside the lock: `done` takes the layer's table)
    /// when it terminates or lingers.
    fn step(&self, f: impl FnOnce(&mut M, &mut Effects<M::Event>)) -> bool {
        let (done, linger) = {
            let Ok(mut guard) = self.state.lock() else {
                return false;
            };
            let st = &mut *guard;
            if st.done.is_none() {
                return false;
            }
            f(&mut st.machine, &mut st.fx);
            while !st.fx.send.is_empty() {
                st.fx.tu.clear();
                let outgoing: Vec<SipMessage> = st.fx.send.drain(..).collect();
                for msg in outgoing {
                    if let Err(e) = self.transports.send_now(&msg, &self.peer) {
                        tracing::debug!(peer = %self.peer, error = %e, "transaction send failed");
                        st.machine.on_transport_error(e.to_string(), &mut st.fx);
                        break;
                    }
                }
            }
            st.fx.tu.clear();
            let linger = st.machine.linger(&st.fx);
            if linger.is_none() && !st.machine.is_terminated() {
                return true;
            }
            (st.done.take(), linger)
        };
        if let Some(done) = done {
            done(linger);
        }
        true
    }
}

//! The non-INVITE client transaction, RFC 3261 §17.1.2 (Figure 6):
//! Trying → Proceeding → Completed → Terminated, retransmitting on
//! Timer E (doubling up to T2; T2 flat once a provisional arrived) and
//! giving up on Timer F.

use rsip::Request;

use super::driver::{Effects, Machine};
use super::linger::{Echo, Linger};
use super::timer::Timer;
use super::{ClientEvent, ClientInput};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientNonInviteState {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

pub(crate) struct ClientNonInvite {
    pub state: ClientNonInviteState,
    /// Until the final response: what Timer E retransmits (dropped
    /// then, so a transaction waiting out Timer K holds no message).
    request: Option<Request>,
}

impl ClientNonInvite {
    pub fn new(request: Request) -> Self {
        ClientNonInvite {
            state: ClientNonInviteState::Trying,
            request: Some(request),
        }
    }
}

impl ClientNonInvite {
    fn resend(&self, fx: &mut Effects<ClientEvent>) {
        if let Some(r) = &self.request {
            fx.send(r.clone());
        }
    }
}

impl Machine for ClientNonInvite {
    type Input = ClientInput;
    type Event = ClientEvent;

    fn start(&mut self, fx: &mut Effects<ClientEvent>) {
        self.resend(fx);
        if !fx.reliable {
            fx.timers.start(Timer::E, fx.config.t1);
        }
        fx.timers.start(Timer::F, fx.config.timeout());
    }

    fn on_input(&mut self, input: ClientInput, fx: &mut Effects<ClientEvent>) {
        let ClientInput::Response(resp) = input;
        let resp = *resp;
        if !matches!(
            self.state,
            ClientNonInviteState::Trying | ClientNonInviteState::Proceeding
        ) {
            return; // Completed absorbs retransmitted responses.
        }
        if resp.status_code.code() < 200 {
            self.state = ClientNonInviteState::Proceeding;
            fx.tell_tu(ClientEvent::Provisional(resp));
        } else {
            self.state = ClientNonInviteState::Completed;
            self.request = None;
            fx.timers.stop_all();
            fx.timers.start(Timer::K, fx.config.t4_or_zero(fx.reliable));
            fx.tell_tu(ClientEvent::Final(resp));
        }
    }

    fn on_timer(&mut self, timer: Timer, fx: &mut Effects<ClientEvent>) {
        match (self.state, timer) {
            (ClientNonInviteState::Trying, Timer::E) => {
                self.resend(fx);
                let next = fx.config.backoff(fx.timers.interval(Timer::E));
                fx.timers.start(Timer::E, next);
            }
            (ClientNonInviteState::Proceeding, Timer::E) => {
                self.resend(fx);
                fx.timers.start(Timer::E, fx.config.t2);
            }
            (ClientNonInviteState::Trying | ClientNonInviteState::Proceeding, Timer::F) => {
                self.state = ClientNonInviteState::Terminated;
                fx.timers.stop_all();
                fx.tell_tu(ClientEvent::Timeout);
            }
            (ClientNonInviteState::Completed, Timer::K) => {
                self.state = ClientNonInviteState::Terminated;
                fx.timers.stop_all();
            }
            _ => {}
        }
    }

    fn on_transport_error(&mut self, error: String, fx: &mut Effects<ClientEvent>) {
        self.state = ClientNonInviteState::Terminated;
        fx.timers.stop_all();
        fx.tell_tu(ClientEvent::TransportError(error));
    }

    fn is_terminated(&self) -> bool {
        self.state == ClientNonInviteState::Terminated
    }

    /// Completed, until Timer K, absorbs retransmitted responses.
    fn linger(&mut self, fx: &Effects<ClientEvent>) -> Option<Linger> {
        if self.state != ClientNonInviteState::Completed {
            return None;
        }
        Some(Linger {
            until: fx.timers.deadline(Timer::K)?,
            echo: Echo::Absorb,
        })
    }
}

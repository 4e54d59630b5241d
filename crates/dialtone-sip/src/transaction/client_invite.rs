//! The INVITE client transaction, RFC 3261 §17.1.1 (Figure 5) with the
//! Accepted state of RFC 6026: Calling → Proceeding → Completed →
//! Terminated for a non-2xx final response (the transaction sends its ACK,
//! §17.1.1.3), Calling/Proceeding → Accepted → Terminated for a 2xx (every
//! 2xx is passed to the TU, which ACKs it, since that ACK is end to end).

use rsip::Request;

use super::build::ack_for_non2xx;
use super::driver::{Effects, Machine};
use super::linger::{Echo, Linger};
use super::timer::Timer;
use super::{ClientEvent, ClientInput};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientInviteState {
    Calling,
    Proceeding,
    Completed,
    Accepted,
    Terminated,
}

pub(crate) struct ClientInvite {
    pub state: ClientInviteState,
    /// Until a final response: what Timer A retransmits and the non-2xx
    /// ACK is built from (dropped then: an INVITE transaction waits out
    /// Timer M, 32 s, after a 2xx, and must not hold the INVITE meanwhile).
    request: Option<Request>,
    ack: Option<Request>,
}

impl ClientInvite {
    pub fn new(request: Request) -> Self {
        ClientInvite {
            state: ClientInviteState::Calling,
            request: Some(request),
            ack: None,
        }
    }
}

impl Machine for ClientInvite {
    type Input = ClientInput;
    type Event = ClientEvent;

    fn start(&mut self, fx: &mut Effects<ClientEvent>) {
        if let Some(r) = &self.request {
            fx.send(r.clone());
        }
        if !fx.reliable {
            fx.timers.start(Timer::A, fx.config.t1);
        }
        fx.timers.start(Timer::B, fx.config.timeout());
    }

    fn on_input(&mut self, input: ClientInput, fx: &mut Effects<ClientEvent>) {
        let ClientInput::Response(resp) = input;
        let resp = *resp;
        let code = resp.status_code.code();
        match self.state {
            ClientInviteState::Calling | ClientInviteState::Proceeding => {
                if code < 200 {
                    // §17.1.1.2: no more retransmissions, and Timer B no
                    // longer applies; the TU's ring timeout takes over.
                    self.state = ClientInviteState::Proceeding;
                    fx.timers.stop(Timer::A);
                    fx.timers.stop(Timer::B);
                    fx.tell_tu(ClientEvent::Provisional(resp));
                } else if code < 300 {
                    self.state = ClientInviteState::Accepted;
                    self.request = None;
                    fx.timers.stop_all();
                    fx.timers.start(Timer::M, fx.config.timeout());
                    fx.tell_tu(ClientEvent::Final(resp));
                } else {
                    self.state = ClientInviteState::Completed;
                    fx.timers.stop_all();
                    fx.timers.start(Timer::D, fx.config.timer_d(fx.reliable));
                    if let Some(request) = self.request.take() {
                        let ack = ack_for_non2xx(&request, &resp);
                        fx.send(ack.clone());
                        self.ack = Some(ack);
                    }
                    fx.tell_tu(ClientEvent::Final(resp));
                }
            }
            // A retransmitted final response: ACK it again, TU not told.
            ClientInviteState::Completed if code >= 300 => {
                if let Some(ack) = &self.ack {
                    fx.send(ack.clone());
                }
            }
            // RFC 6026 §8.4: further 2xx go to the TU (forked answers, or
            // retransmissions that need the ACK again).
            ClientInviteState::Accepted if (200..300).contains(&code) => {
                fx.tell_tu(ClientEvent::Final(resp));
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, timer: Timer, fx: &mut Effects<ClientEvent>) {
        match (self.state, timer) {
            (ClientInviteState::Calling, Timer::A) => {
                if let Some(r) = &self.request {
                    fx.send(r.clone());
                }
                // Timer A doubles without the T2 cap (§17.1.1.2).
                let next = fx.timers.interval(Timer::A) * 2;
                fx.timers.start(Timer::A, next);
            }
            (ClientInviteState::Calling, Timer::B) => {
                self.state = ClientInviteState::Terminated;
                fx.timers.stop_all();
                fx.tell_tu(ClientEvent::Timeout);
            }
            (ClientInviteState::Completed, Timer::D) | (ClientInviteState::Accepted, Timer::M) => {
                self.state = ClientInviteState::Terminated;
                fx.timers.stop_all();
            }
            _ => {}
        }
    }

    fn on_transport_error(&mut self, error: String, fx: &mut Effects<ClientEvent>) {
        self.state = ClientInviteState::Terminated;
        fx.timers.stop_all();
        fx.tell_tu(ClientEvent::TransportError(error));
    }

    fn is_terminated(&self) -> bool {
        self.state == ClientInviteState::Terminated
    }

    /// Completed, until Timer D: a retransmitted non-2xx gets the ACK
    /// again. Accepted, until Timer M: every 2xx goes to the TU (as a
    /// [`TuEvent::Response`](super::TuEvent), its transaction's events
    /// having ended), which ACKs it.
    fn linger(&mut self, fx: &Effects<ClientEvent>) -> Option<Linger> {
        let (until, echo) = match self.state {
            ClientInviteState::Completed => {
                let ack = self.ack.take()?;
                let ack = crate::message::to_bytes(&ack.into());
                (fx.timers.deadline(Timer::D)?, Echo::Resend(ack.into()))
            }
            ClientInviteState::Accepted => (fx.timers.deadline(Timer::M)?, Echo::PassToTu),
            _ => return None,
        };
        Some(Linger { until, echo })
    }
}

//! The INVITE server transaction, RFC 3261 §17.2.1 (Figure 7) with the
//! Accepted state of RFC 6026: Proceeding → Completed → Confirmed →
//! Terminated for a non-2xx final response, Proceeding → Accepted →
//! Terminated for a 2xx. It sends 100 Trying when the TU has not answered
//! within 200 ms, retransmits the final response on unreliable transports
//! (Timer G; for a 2xx until its ACK arrives, on the UAS core's behalf,
//! §13.3.1.4), and reports a missing ACK (Timer H, Timer L) to the TU.

use std::time::Duration;

use rsip::{Request, Response};

use super::driver::{Effects, Machine};
use super::linger::{Echo, Linger};
use super::timer::Timer;
use super::{ServerEvent, ServerInput};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerInviteState {
    Proceeding,
    Completed,
    Confirmed,
    Accepted,
    Terminated,
}

pub(crate) struct ServerInvite {
    pub state: ServerInviteState,
    /// Until the TU answers: what the 100 Trying is built from.
    request: Option<Request>,
    /// What Timer G retransmits; dropped once a 2xx is ACKed (the
    /// transaction then waits out Timer L, 32 s, holding no message).
    last_response: Option<Response>,
    acked: bool,
}

impl ServerInvite {
    pub fn new(request: Request) -> Self {
        ServerInvite {
            state: ServerInviteState::Proceeding,
            request: Some(request),
            last_response: None,
            acked: false,
        }
    }

    fn resend_last(&self, fx: &mut Effects<ServerEvent>) {
        if let Some(r) = &self.last_response {
            fx.send(r.clone());
        }
    }

    fn on_response(&mut self, resp: Response, fx: &mut Effects<ServerEvent>) {
        let code = resp.status_code.code();
        match self.state {
            ServerInviteState::Proceeding => {
                fx.timers.stop(Timer::Trying);
                self.request = None;
                fx.send(resp.clone());
                self.last_response = Some(resp);
                if (200..300).contains(&code) {
                    self.state = ServerInviteState::Accepted;
                    fx.timers.start(Timer::L, fx.config.timeout());
                    if !fx.reliable {
                        fx.timers.start(Timer::G, fx.config.t1);
                    }
                } else if code >= 300 {
                    self.state = ServerInviteState::Completed;
                    fx.timers.start(Timer::H, fx.config.timeout());
                    if !fx.reliable {
                        fx.timers.start(Timer::G, fx.config.t1);
                    }
                }
            }
            // RFC 6026 §8.5: the TU may send further 2xx (e.g. its own
            // retransmissions); pass them on.
            ServerInviteState::Accepted if (200..300).contains(&code) => {
                fx.send(resp.clone());
                self.last_response = Some(resp);
            }
            state => tracing::debug!(?state, code, "response after final response dropped"),
        }
    }
}

impl Machine for ServerInvite {
    type Input = ServerInput;
    type Event = ServerEvent;

    fn start(&mut self, fx: &mut Effects<ServerEvent>) {
        fx.timers.start(Timer::Trying, Duration::from_millis(200));
    }

    fn on_input(&mut self, input: ServerInput, fx: &mut Effects<ServerEvent>) {
        match input {
            ServerInput::Respond(resp) => self.on_response(*resp, fx),
            ServerInput::Request(req) if req.method == rsip::Method::Ack => match self.state {
                ServerInviteState::Completed => {
                    self.state = ServerInviteState::Confirmed;
                    fx.timers.stop(Timer::G);
                    fx.timers.stop(Timer::H);
                    fx.timers.start(Timer::I, fx.config.t4_or_zero(fx.reliable));
                }
                // An ACK for a 2xx that reused the INVITE's branch.
                ServerInviteState::Accepted => self.on_input(ServerInput::Ack2xx(req), fx),
                _ => {}
            },
            // A retransmitted INVITE.
            ServerInput::Request(_) => match self.state {
                ServerInviteState::Proceeding | ServerInviteState::Completed => {
                    self.resend_last(fx)
                }
                // RFC 6026: absorbed in Accepted, never passed to the TU.
                _ => {}
            },
            ServerInput::Ack2xx(ack) => {
                if self.state == ServerInviteState::Accepted {
                    fx.timers.stop(Timer::G);
                    if !self.acked {
                        self.acked = true;
                        self.last_response = None;
                        fx.tell_tu(ServerEvent::Ack(ack));
                    }
                }
            }
            ServerInput::Cancel => {
                if self.state == ServerInviteState::Proceeding {
                    fx.tell_tu(ServerEvent::Cancelled);
                }
            }
            ServerInput::Sync(sent) => {
                let _ = sent.send(());
            }
        }
    }

    fn on_timer(&mut self, timer: Timer, fx: &mut Effects<ServerEvent>) {
        match (self.state, timer) {
            (ServerInviteState::Proceeding, Timer::Trying) if self.last_response.is_none() => {
                if let Some(request) = &self.request {
                    let trying = crate::message::reply::response_to(request, 100, None);
                    fx.send(trying.clone());
                    self.last_response = Some(trying);
                }
            }
            (ServerInviteState::Completed | ServerInviteState::Accepted, Timer::G) => {
                self.resend_last(fx);
                let next = fx.config.backoff(fx.timers.interval(Timer::G));
                fx.timers.start(Timer::G, next);
            }
            (ServerInviteState::Completed, Timer::H) => {
                self.state = ServerInviteState::Terminated;
                fx.timers.stop_all();
                fx.tell_tu(ServerEvent::Timeout);
            }
            (ServerInviteState::Confirmed, Timer::I) => {
                self.state = ServerInviteState::Terminated;
                fx.timers.stop_all();
            }
            (ServerInviteState::Accepted, Timer::L) => {
                self.state = ServerInviteState::Terminated;
                fx.timers.stop_all();
                if !self.acked {
                    // §13.3.1.4: no ACK for the 2xx; the TU ends the session.
                    fx.tell_tu(ServerEvent::Timeout);
                }
            }
            _ => {}
        }
    }

    fn on_transport_error(&mut self, error: String, fx: &mut Effects<ServerEvent>) {
        self.state = ServerInviteState::Terminated;
        fx.timers.stop_all();
        fx.tell_tu(ServerEvent::TransportError(error));
    }

    fn is_terminated(&self) -> bool {
        self.state == ServerInviteState::Terminated
    }

    /// Accepted once its 2xx is ACKed (until Timer L), and Confirmed
    /// (until Timer I), absorb what comes.
    fn linger(&mut self, fx: &Effects<ServerEvent>) -> Option<Linger> {
        let until = match self.state {
            ServerInviteState::Accepted if self.acked => fx.timers.deadline(Timer::L)?,
            ServerInviteState::Confirmed => fx.timers.deadline(Timer::I)?,
            _ => return None,
        };
        Some(Linger {
            until,
            echo: Echo::Absorb,
        })
    }
}

//! The non-INVITE server transaction, RFC 3261 §17.2.2 (Figure 8):
//! Trying → Proceeding → Completed → Terminated. Retransmitted requests
//! are absorbed, answered with the last response sent; Timer J keeps the
//! transaction in Completed long enough to catch them.

use rsip::Response;

use super::driver::{Effects, Machine};
use super::linger::{Echo, Linger};
use super::timer::Timer;
use super::{ServerEvent, ServerInput};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerNonInviteState {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

pub(crate) struct ServerNonInvite {
    pub state: ServerNonInviteState,
    last_response: Option<Response>,
}

impl ServerNonInvite {
    pub fn new() -> Self {
        ServerNonInvite {
            state: ServerNonInviteState::Trying,
            last_response: None,
        }
    }
}

impl Machine for ServerNonInvite {
    type Input = ServerInput;
    type Event = ServerEvent;

    fn start(&mut self, _fx: &mut Effects<ServerEvent>) {}

    fn on_input(&mut self, input: ServerInput, fx: &mut Effects<ServerEvent>) {
        match input {
            ServerInput::Respond(resp) => match self.state {
                ServerNonInviteState::Trying | ServerNonInviteState::Proceeding => {
                    let resp = *resp;
                    let provisional = resp.status_code.code() < 200;
                    fx.send(resp.clone());
                    self.last_response = Some(resp);
                    if provisional {
                        self.state = ServerNonInviteState::Proceeding;
                    } else {
                        self.state = ServerNonInviteState::Completed;
                        fx.timers.start(Timer::J, fx.config.timer_j(fx.reliable));
                    }
                }
                state => tracing::debug!(?state, "response after final response dropped"),
            },
            ServerInput::Request(_) => match self.state {
                // Trying: nothing to resend yet, the retransmission is absorbed.
                ServerNonInviteState::Proceeding | ServerNonInviteState::Completed => {
                    if let Some(r) = &self.last_response {
                        fx.send(r.clone());
                    }
                }
                _ => {}
            },
            ServerInput::Ack2xx(_) | ServerInput::Cancel => {}
            ServerInput::Sync(sent) => {
                let _ = sent.send(());
            }
        }
    }

    fn on_timer(&mut self, timer: Timer, fx: &mut Effects<ServerEvent>) {
        if self.state == ServerNonInviteState::Completed && timer == Timer::J {
            self.state = ServerNonInviteState::Terminated;
            fx.timers.stop_all();
        }
    }

    fn on_transport_error(&mut self, error: String, fx: &mut Effects<ServerEvent>) {
        self.state = ServerNonInviteState::Terminated;
        fx.timers.stop_all();
        fx.tell_tu(ServerEvent::TransportError(error));
    }

    fn is_terminated(&self) -> bool {
        self.state == ServerNonInviteState::Terminated
    }

    /// Completed, until Timer J: a retransmitted request gets the final
    /// response again.
    fn linger(&mut self, fx: &Effects<ServerEvent>) -> Option<Linger> {
        if self.state != ServerNonInviteState::Completed {
            return None;
        }
        let until = fx.timers.deadline(Timer::J)?;
        let last = self.last_response.take()?;
        Some(Linger {
            until,
            echo: Echo::Resend(crate::message::to_bytes(&last.into()).into()),
        })
    }
}

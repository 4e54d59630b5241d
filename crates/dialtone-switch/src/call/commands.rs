//! Carrying out [`CallCommand`]s: hangup, hold and resume (re-INVITE with
//! the direction set), DTMF (SIP INFO), and transfers (in `transfer.rs`).

use dialtone_sip::sdp::Direction;
use dialtone_sip::transaction::ClientEvent;
use rsip::{Header, Method};
use tokio::sync::oneshot;

use super::actor::{Call, CallState, OwnRequest};
use super::command::{CallCommand, CommandError, CommandOutcome, CommandResult, Party};
use super::event::{LegId, Pending, Pick};
use super::leg::{response_sdp, set_sdp_body, LegState};

impl Call {
    /// The SIP leg of a party (None for the AI agent, or no callee yet).
    pub(super) fn party(&self, p: Party) -> Option<LegId> {
        match p {
            Party::Caller => Some(self.a()),
            Party::Callee => self.b_leg(),
        }
    }

    pub async fn on_command(&mut self, cmd: CallCommand, reply: oneshot::Sender<CommandResult>) {
        if self.state == CallState::Ended {
            let _ = reply.send(Err(CommandError::CallEnded));
            return;
        }
        match cmd {
            CallCommand::Hangup {
                cause,
                after_playout,
            } => {
                if after_playout && self.agent_hangup_after_playout(&cause) {
                    let _ = reply.send(Ok(CommandOutcome::Done));
                    return;
                }
                self.hangup(&cause, "system", 480).await;
                let _ = reply.send(Ok(CommandOutcome::Done));
            }
            CallCommand::Hold { party } => self.hold(party, Direction::SendOnly, reply),
            CallCommand::Resume { party } => self.hold(party, Direction::SendRecv, reply),
            CallCommand::SendDtmf { to, digits } => self.send_dtmf(to, &digits, reply),
            CallCommand::Transfer { keep, to, by } => {
                let Some(keep) = self
                    .party(keep)
                    .filter(|_| self.state == CallState::Answered)
                else {
                    let _ = reply.send(Err(CommandError::InvalidState(
                        "a transfer needs an answered call".into(),
                    )));
                    return;
                };
                let who = super::transfer::authority_caller(&by);
                self.transfer(keep, to, who, Some(reply), None).await;
            }
            CallCommand::Bridge {
                keep,
                other_call,
                other_keep,
            } => {
                let Some(keep) = self
                    .party(keep)
                    .filter(|_| self.state == CallState::Answered)
                else {
                    let _ = reply.send(Err(CommandError::InvalidState(
                        "bridging needs an answered call".into(),
                    )));
                    return;
                };
                let result = self
                    .bridge_calls(keep, &other_call, Pick::Party(other_keep), None)
                    .await;
                let _ = reply.send(result);
            }
        }
    }

    /// Sends a re-INVITE to a party with the audio direction set.
    fn hold(&mut self, party: Party, dir: Direction, reply: oneshot::Sender<CommandResult>) {
        let Some(leg) = self
            .party(party)
            .filter(|l| self.legs[*l].state == LegState::Connected)
        else {
            let _ = reply.send(Err(CommandError::InvalidState(
                "that party is not connected".into(),
            )));
            return;
        };
        if self.in_flight.busy() {
            let _ = reply.send(Err(CommandError::InvalidState(
                "another re-INVITE is in progress".into(),
            )));
            return;
        }
        // Offer what this party last described, from our side.
        let Some(other_sdp) = self
            .other(leg)
            .and_then(|o| self.legs[o].remote_sdp.clone())
        else {
            let _ = reply.send(Err(CommandError::InvalidState(
                "no media description to offer".into(),
            )));
            return;
        };
        let local = self.media.local(self.legs[leg].slot);
        let body = self.legs[leg].offer_with_direction(&other_sdp, local, dir);
        let Some(dialog) = self.legs[leg].dialog.as_mut() else {
            return;
        };
        let mut req = dialog.request(Method::Invite);
        set_sdp_body(&mut req.headers, &mut req.body, body);
        match self.ctx.layer.send_request(req, self.legs[leg].peer) {
            Ok(tx) => {
                self.watch_client(leg, Pending::Own, tx);
                self.in_flight.own = Some(OwnRequest { leg, reply });
            }
            Err(e) => {
                let _ = reply.send(Err(CommandError::Invalid(format!(
                    "re-INVITE not sent: {e}"
                ))));
            }
        }
    }

    pub async fn on_own_event(&mut self, leg: LegId, event: ClientEvent) {
        let result = match event {
            ClientEvent::Provisional(_) => return,
            ClientEvent::Final(resp) => {
                let code = resp.status_code.code();
                if (200..300).contains(&code) {
                    self.ack_reinvite(leg, &resp).await;
                    if let Some(Ok(sdp)) = response_sdp(&resp) {
                        self.took_description(leg, sdp, true).await;
                    }
                    Ok(CommandOutcome::Done)
                } else {
                    Ok(CommandOutcome::Failed {
                        status: code,
                        reason: super::progress::reason_of(&resp),
                    })
                }
            }
            ClientEvent::Timeout => Ok(CommandOutcome::from_status(408, "Request Timeout")),
            ClientEvent::TransportError(e) => Ok(CommandOutcome::Failed {
                status: 503,
                reason: e,
            }),
        };
        if let Some(own) = self.in_flight.own.take_if(|o| o.leg == leg) {
            let _ = own.reply.send(result);
        }
    }

    /// DTMF as SIP INFO (application/dtmf-relay), one request per digit.
    fn send_dtmf(&mut self, to: Party, digits: &str, reply: oneshot::Sender<CommandResult>) {
        if digits.is_empty()
            || !digits
                .chars()
                .all(|c| c.is_ascii_digit() || "*#ABCDabcd".contains(c))
        {
            let _ = reply.send(Err(CommandError::Invalid(format!(
                "DTMF digits must be 0-9, *, #, A-D: {digits:?}"
            ))));
            return;
        }
        let Some(leg) = self
            .party(to)
            .filter(|l| self.legs[*l].state == LegState::Connected)
        else {
            let _ = reply.send(Err(CommandError::InvalidState(
                "that party is not connected".into(),
            )));
            return;
        };
        let peer = self.legs[leg].peer;
        let Some(dialog) = self.legs[leg].dialog.as_mut() else {
            return;
        };
        let infos: Vec<rsip::Request> = digits
            .chars()
            .map(|d| {
                let mut req = dialog.request(Method::Info);
                req.headers
                    .push(Header::ContentType(rsip::headers::ContentType::from(
                        "application/dtmf-relay",
                    )));
                req.body = format!("Signal={d}\r\nDuration=160\r\n").into_bytes();
                req
            })
            .collect();
        let layer = self.ctx.layer.clone();
        // Digits go one after another, each after the previous is answered.
        tokio::spawn(async move {
            for req in infos {
                let result = match layer.send_request(req, peer) {
                    Ok(mut tx) => tx.final_response().await,
                    Err(e) => Err(e),
                };
                match result {
                    Ok(r) if r.status_code.code() < 300 => {}
                    Ok(r) => {
                        let _ = reply.send(Ok(CommandOutcome::Failed {
                            status: r.status_code.code(),
                            reason: super::progress::reason_of(&r),
                        }));
                        return;
                    }
                    Err(e) => {
                        let _ = reply.send(Ok(CommandOutcome::Failed {
                            status: 408,
                            reason: e.to_string(),
                        }));
                        return;
                    }
                }
            }
            let _ = reply.send(Ok(CommandOutcome::Done));
        });
    }
}

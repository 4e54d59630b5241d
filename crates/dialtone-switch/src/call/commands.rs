//! Carrying out [`CallCommand`]s, and the transfers they share with a
//! phone's REFER (RFC 3515): a blind transfer places a new leg for the party
//! that stays, and only when it answers is that party re-bridged and the
//! other released; a failed transfer leaves the call as it was. A REFER's
//! progress goes back to the transferor in NOTIFYs with sipfrag bodies.

use dialtone_sip::message::headers::ReferTo;
use dialtone_sip::message::{header, NameAddr};
use dialtone_sip::sdp::Direction;
use dialtone_sip::transaction::{ClientEvent, ServerTransaction};
use dialtone_sip::transport::{Peer, Protocol};
use rsip::{Header, Method};
use tokio::sync::oneshot;

use super::actor::{with_reason, Call, CallState, DialPurpose, OwnRequest};
use super::command::{
    CallCommand, CommandError, CommandOutcome, CommandResult, Destination, Party,
};
use super::dial::Fork;
use super::event::{LegId, Pending};
use super::leg::{response_sdp, set_sdp_body, LegState, MediaPlan};
use crate::router::{self, Caller, Target};

impl Call {
    fn party(&self, p: Party) -> Option<LegId> {
        match p {
            Party::Caller => Some(self.a),
            Party::Callee => self.b,
        }
    }

    pub async fn on_command(&mut self, cmd: CallCommand, reply: oneshot::Sender<CommandResult>) {
        if self.state == CallState::Ended {
            let _ = reply.send(Err(CommandError::CallEnded));
            return;
        }
        match cmd {
            CallCommand::Hangup { cause } => {
                self.hangup(&cause, "system", 480).await;
                let _ = reply.send(Ok(CommandOutcome::Done));
            }
            CallCommand::Hold { party } => self.hold(party, Direction::SendOnly, reply),
            CallCommand::Resume { party } => self.hold(party, Direction::SendRecv, reply),
            CallCommand::SendDtmf { to, digits } => self.send_dtmf(to, &digits, reply),
            CallCommand::Transfer { keep, to } => {
                let Some(keep) = self
                    .party(keep)
                    .filter(|_| self.state == CallState::Answered)
                else {
                    let _ = reply.send(Err(CommandError::InvalidState(
                        "a transfer needs an answered call".into(),
                    )));
                    return;
                };
                self.transfer(keep, to, Some(reply), None).await;
            }
            CallCommand::Bridge { .. } => {
                let _ = reply.send(Err(CommandError::InvalidState(
                    "bridging two calls (attended transfer) is not built yet".into(),
                )));
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
        if self.relay.is_some() || self.own.is_some() {
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
                self.own = Some(OwnRequest { leg, reply });
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
                        self.apply_plan(self.legs[leg].slot, &MediaPlan::of(&sdp))
                            .await;
                        self.legs[leg].remote_sdp = Some(sdp);
                    }
                    Ok(CommandOutcome::Done)
                } else {
                    Ok(CommandOutcome::Failed {
                        status: code,
                        reason: super::progress::reason_of(&resp),
                    })
                }
            }
            ClientEvent::Timeout => Ok(CommandOutcome::NoAnswer),
            ClientEvent::TransportError(e) => Ok(CommandOutcome::Failed {
                status: 503,
                reason: e,
            }),
        };
        if let Some(own) = self.own.take_if(|o| o.leg == leg) {
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

    /// Starts a blind transfer of `keep` to `to`.
    async fn transfer(
        &mut self,
        keep: LegId,
        to: Destination,
        reply: Option<oneshot::Sender<CommandResult>>,
        notify: Option<LegId>,
    ) {
        if self.dial.is_some() {
            self.transfer_failed(keep, 491, "Transfer Already In Progress", reply, notify)
                .await;
            return;
        }
        let forks = match self.forks_for_destination(&to).await {
            Ok(f) => f,
            Err((code, reason)) => {
                self.transfer_failed(keep, code, reason, reply, notify)
                    .await;
                return;
            }
        };
        let purpose = DialPurpose::Transfer {
            keep,
            reply,
            notify,
        };
        if let Err((code, reason, DialPurpose::Transfer { reply, notify, .. })) =
            self.place(forks, purpose, 70).await
        {
            self.transfer_failed(keep, code, reason, reply, notify)
                .await;
        }
    }

    async fn forks_for_destination(
        &self,
        to: &Destination,
    ) -> Result<Vec<Fork>, (u16, &'static str)> {
        let target = match to {
            Destination::User(u) => Target::User(u.clone()),
            Destination::Dial(d) => router::route(&self.ctx.store, &Caller::User(String::new()), d)
                .await
                .map_err(|_| (404, "Not Found"))?,
            Destination::Uri(u) => {
                let na = NameAddr::parse(u).map_err(|_| (400, "Bad Transfer Target"))?;
                let host = dialtone_sip::message::uri::format_uri(&na.uri);
                let hostport = na.uri.host_with_port.to_string();
                let with_port = if na.uri.host_with_port.port.is_some() {
                    hostport
                } else {
                    format!("{hostport}:5060")
                };
                let addr = tokio::net::lookup_host(with_port)
                    .await
                    .ok()
                    .and_then(|mut a| a.next())
                    .ok_or((404, "Not Found"))?;
                return Ok(vec![Fork {
                    peer: Peer::new(Protocol::Udp, addr),
                    request_uri: host.clone(),
                    to: format!("<{host}>"),
                    label: format!("uri:{host}"),
                    credentials: None,
                }]);
            }
        };
        self.forks_for(&target).await
    }

    /// The transfer target answered: re-bridge `keep` to it and release the
    /// party `keep` was talking to.
    pub async fn complete_transfer(
        &mut self,
        keep: LegId,
        new: LegId,
        reply: Option<oneshot::Sender<CommandResult>>,
        notify: Option<LegId>,
    ) {
        let released = self.other(keep);
        self.media
            .bridge(self.legs[keep].slot, self.legs[new].slot)
            .await;
        self.a = keep;
        self.b = Some(new);
        self.record.transferred(&self.legs[new].label);
        if let Some(n) = notify {
            self.notify_refer(n, 200, "OK", true);
        }
        if let Some(old) = released {
            if self.legs[old].state == LegState::Connected {
                self.send_bye(old);
            }
            let slot = self.legs[old].slot;
            if slot != self.legs[keep].slot && slot != self.legs[new].slot {
                self.media.release(slot).await;
            }
        }
        if let Some(r) = reply {
            let _ = r.send(Ok(CommandOutcome::Answered));
        }
    }

    /// The transfer failed: the call stays as it was.
    pub async fn transfer_failed(
        &mut self,
        _keep: LegId,
        code: u16,
        reason: &str,
        reply: Option<oneshot::Sender<CommandResult>>,
        notify: Option<LegId>,
    ) {
        tracing::info!(call = %self.id, code, reason, "transfer failed");
        if let Some(n) = notify {
            self.notify_refer(n, code, reason, true);
        }
        if let Some(r) = reply {
            let _ = r.send(Ok(CommandOutcome::from_status(code, reason)));
        }
    }

    /// REFER from a party (RFC 3515): blind transfer of the other party to
    /// the Refer-To target.
    pub async fn on_refer(&mut self, from: LegId, tx: ServerTransaction) {
        let refer_to = match header::<ReferTo>(&tx.request().headers) {
            Some(Ok(r)) => r,
            Some(Err(_)) | None => {
                let _ = tx.respond(with_reason(tx.response(400), "Missing Or Bad Refer-To"));
                return;
            }
        };
        let Some(keep) = self
            .other(from)
            .filter(|_| self.state == CallState::Answered)
        else {
            let _ = tx.respond(with_reason(tx.response(403), "Nothing To Transfer"));
            return;
        };
        if refer_to.replaces().is_some() {
            let _ = tx.respond(with_reason(
                tx.response(501),
                "Attended Transfer Not Supported Yet",
            ));
            return;
        }
        let uri = &refer_to.0.uri;
        let user = uri.auth.as_ref().map(|a| a.user.clone());
        let ours = uri.host_with_port.host.to_string() == self.ctx.cfg.domain
            || self
                .ctx
                .layer
                .transports()
                .local_addrs()
                .iter()
                .any(|(_, a)| a.ip().to_string() == uri.host_with_port.host.to_string());
        let dest = match (user, ours) {
            (Some(u), true) => Destination::Dial(u),
            _ => Destination::Uri(dialtone_sip::message::uri::format_uri(uri)),
        };
        let _ = tx.reply(202);
        self.notify_refer(from, 100, "Trying", false);
        self.transfer(keep, dest, None, Some(from)).await;
    }

    /// NOTIFY for a REFER's implicit subscription, with a sipfrag body.
    fn notify_refer(&mut self, leg: LegId, code: u16, reason: &str, last: bool) {
        if self.legs[leg].state != LegState::Connected {
            return;
        }
        let peer = self.legs[leg].peer;
        let Some(dialog) = self.legs[leg].dialog.as_mut() else {
            return;
        };
        let mut req = dialog.request(Method::Notify);
        req.headers
            .push(Header::Event(rsip::headers::Event::from("refer")));
        let state = if last {
            "terminated;reason=noresource"
        } else {
            "active;expires=60"
        };
        req.headers.push(Header::SubscriptionState(
            rsip::headers::SubscriptionState::from(state),
        ));
        req.headers
            .push(Header::ContentType(rsip::headers::ContentType::from(
                "message/sipfrag;version=2.0",
            )));
        req.body = format!("SIP/2.0 {code} {reason}\r\n").into_bytes();
        match self.ctx.layer.send_request(req, peer) {
            Ok(tx) => self.watch_client(leg, Pending::Notify, tx),
            Err(e) => tracing::debug!(call = %self.id, error = %e, "NOTIFY not sent"),
        }
    }
}

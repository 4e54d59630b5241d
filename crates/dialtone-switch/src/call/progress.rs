//! How a placed leg progresses: provisional responses (relayed to the
//! caller, with early media), the 2xx that wins (ACKed, the other forks
//! CANCELled, the parties bridged), a trunk's challenge answered once, the
//! ring timeout, and the choice of final response when every fork failed.

use dialtone_ai::AudioFormat;
use dialtone_sip::auth;
use dialtone_sip::dialog::Dialog;
use dialtone_sip::transaction::ClientEvent;
use rsip::headers::UntypedHeader;
use rsip::{Header, Method, Response};

use super::actor::{with_reason, Call, CallState, Connected, DialPurpose};
use super::event::{CallEvent, LegId, Pending};
use super::leg::{response_sdp, set_sdp_body, LegState, Role};
use super::live::CallNotice;

impl Call {
    pub async fn on_invite_event(&mut self, id: LegId, event: ClientEvent) {
        let resp = match event {
            ClientEvent::Provisional(r) => return self.on_provisional(id, r).await,
            ClientEvent::Final(r) => {
                self.legs[id].invite_pending = false;
                r
            }
            ClientEvent::Timeout => {
                self.legs[id].invite_pending = false;
                with_reason(response_stub(408), "Request Timeout")
            }
            ClientEvent::TransportError(_) => {
                self.legs[id].invite_pending = false;
                with_reason(response_stub(503), "Transport Error")
            }
        };
        let code = resp.status_code.code();
        if (200..300).contains(&code) {
            self.on_answer(id, resp).await;
            return;
        }
        if (code == 401 || code == 407) && self.retry_with_auth(id, &resp) {
            return;
        }
        let reason = reason_of(&resp);
        let leg = &mut self.legs[id];
        if leg.state == LegState::Ended {
            return;
        }
        leg.state = LegState::Ended;
        leg.final_status = Some((code, reason));
        self.check_dial_failed().await;
    }

    async fn on_provisional(&mut self, id: LegId, resp: Response) {
        let in_dial = self
            .dial
            .as_ref()
            .is_some_and(|d| d.forks.contains(&id) && d.winner.is_none());
        let contact = self.contact_for(&self.legs[id].peer);
        let leg = &mut self.legs[id];
        leg.got_provisional = true;
        if leg.cancel_wanted {
            leg.cancel_wanted = false;
            self.send_cancel(id);
            return;
        }
        if !in_dial || resp.status_code.code() == 100 {
            return;
        }
        if leg.dialog.is_none() {
            if let (Some(inv), true) = (
                leg.invite.as_ref(),
                dialtone_sip::dialog::DialogId::of_response(&resp).is_some(),
            ) {
                if let Ok(d) = Dialog::uac(inv, &resp, &contact) {
                    self.legs[id].dialog = Some(d);
                    self.legs[id].state = LegState::Early;
                }
            }
        }
        // Relay ringing (and early media) to the caller of a new call.
        let initial = matches!(
            self.dial.as_ref().map(|d| &d.purpose),
            Some(DialPurpose::Initial)
        );
        if !initial {
            return;
        }
        let early_sdp = match response_sdp(&resp) {
            Some(Ok(sdp)) => Some(sdp),
            _ => None,
        };
        let slot = self.legs[id].slot;
        let a = self.a();
        let mut relay = self.legs[a]
            .uas
            .as_ref()
            .map(|t| t.response(resp.status_code.code()));
        // Early media needs the caller's offer; with a late offer an SDP in
        // a provisional would be an offer the caller cannot answer yet.
        let early_sdp = early_sdp.filter(|_| self.legs[a].remote_sdp.is_some());
        if let (Some(sdp), Some(r)) = (early_sdp, relay.as_mut()) {
            self.took_description(id, sdp.clone(), true).await;
            let body = self.answer_leg(a, &sdp).await;
            self.media.bridge(self.legs[a].slot, slot).await;
            set_sdp_body(&mut r.headers, &mut r.body, body);
        }
        if let Some(mut r) = relay {
            r.status_code = resp.status_code.clone();
            self.add_caller_contact(&mut r);
            if let Some(tx) = &self.legs[a].uas {
                let _ = tx.respond(r);
            }
            self.legs[a].state = LegState::Early;
        }
    }

    fn add_caller_contact(&self, r: &mut Response) {
        let peer = self.legs[self.a()].peer;
        r.headers.push(Header::Contact(rsip::headers::Contact::from(
            self.contact_for(&peer),
        )));
    }

    /// Resends the INVITE with credentials for a 401/407 (once per leg).
    fn retry_with_auth(&mut self, id: LegId, resp: &Response) -> bool {
        let leg = &mut self.legs[id];
        let (Some((user, pass)), Some(mut template)) =
            (leg.credentials.clone(), leg.invite_template.clone())
        else {
            return false;
        };
        // A leg given up (cancelled, timed out, or its call ended) is not
        // tried again.
        if leg.auth_tried
            || leg.cancel_wanted
            || !matches!(leg.state, LegState::Calling | LegState::Early)
        {
            return false;
        }
        leg.auth_tried = true;
        let header = match auth::answer(resp, &Method::Invite, &template.uri, &user, &pass, 1) {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(call = %self.id, leg = %id, error = %e, "cannot answer trunk challenge");
                return false;
            }
        };
        // Same dialog, next CSeq (RFC 3261 §22.2).
        for h in template.headers.iter_mut() {
            if let Header::CSeq(c) = h {
                let next = c.seq().unwrap_or(1) + 1;
                *c = rsip::headers::CSeq::from(format!("{next} INVITE"));
            }
        }
        template.headers.push(header);
        leg.invite_template = Some(template.clone());
        self.send_invite(id, template)
    }

    async fn on_answer(&mut self, id: LegId, resp: Response) {
        // A 2xx again (retransmission, or the winner's twin): ACK it.
        if self.legs[id].state == LegState::Connected
            || self
                .dial
                .as_ref()
                .is_some_and(|d| d.winner.is_some_and(|w| w != id))
        {
            self.ack(id, &resp).await;
            if self.legs[id].state != LegState::Connected {
                // A second fork answered: release it.
                self.legs[id].state = LegState::Connected;
                self.send_bye(id);
            }
            return;
        }
        let Some(dial) = self.dial.as_mut() else {
            // Answer after the attempt was given up: ACK and BYE.
            self.ack(id, &resp).await;
            self.legs[id].state = LegState::Connected;
            self.send_bye(id);
            return;
        };
        dial.winner = Some(id);
        let queue = dial.hunt.as_ref().map(|h| h.queue.clone());
        let initial = matches!(dial.purpose, DialPurpose::Initial);
        let late_offer = self.legs[self.a()].remote_sdp.is_none() && initial;
        self.legs[id].awaiting_answer = late_offer;
        self.ack(id, &resp).await;
        self.legs[id].state = LegState::Connected;
        if let Some(q) = queue {
            let label = self.legs[id].label.clone();
            self.queue_answered(&q, &label);
        }
        let others: Vec<LegId> = self
            .dial
            .as_ref()
            .map(|d| d.forks.iter().copied().filter(|f| *f != id).collect())
            .unwrap_or_default();
        for f in others {
            self.cancel_leg(f);
        }
        let sdp = match response_sdp(&resp) {
            Some(Ok(s)) => s,
            _ => {
                tracing::warn!(call = %self.id, leg = %id, "2xx without usable SDP; hanging up");
                self.hangup("callee sent no SDP", "system", 488).await;
                return;
            }
        };
        // With a late offer the 2xx is the callee's offer, else its answer.
        let answer = !initial || self.legs[self.a()].remote_sdp.is_some();
        self.took_description(id, sdp, answer).await;
        self.callee_timer(id, &resp);
        let Some(dial) = self.dial.take() else { return };
        match dial.purpose {
            DialPurpose::Initial => self.connect_caller(id).await,
            DialPurpose::Originate => self.originate_answered(id).await,
            DialPurpose::Transfer {
                keep,
                reply,
                notify,
            } => self.complete_transfer(keep, id, reply, notify).await,
        }
    }

    /// The callee answered a new call: answer the caller and bridge.
    async fn connect_caller(&mut self, b: LegId) {
        let a = self.a();
        self.media
            .bridge(self.legs[a].slot, self.legs[b].slot)
            .await;
        let Some(sdp) = self.legs[b].remote_sdp.clone() else {
            return;
        };
        let body = self.answer_leg(a, &sdp).await;
        if !self.answer_caller_ok(body) {
            return;
        }
        self.parties.b = Some(Connected::Sip(b));
        let label = self.legs[b].label.clone();
        self.call_answered(&label, self.ctx.cfg.max_duration).await;
    }

    /// Answers the caller's INVITE with a 200 carrying `body` (our SDP),
    /// forming the caller's dialog; false when there is nothing to answer.
    pub(super) fn answer_caller_ok(&mut self, body: Vec<u8>) -> bool {
        let a = self.a();
        let Some(tx) = self.legs[a].uas.take() else {
            return false;
        };
        let mut ok = tx.response(200);
        self.add_caller_contact(&mut ok);
        self.caller_timer(&tx.request().clone(), &mut ok);
        set_sdp_body(&mut ok.headers, &mut ok.body, body);
        let contact = self.contact_for(&self.legs[a].peer);
        match Dialog::uas(tx.request(), &ok, &contact) {
            Ok(d) => self.legs[a].dialog = Some(d),
            Err(e) => tracing::warn!(call = %self.id, error = %e, "caller dialog not formed"),
        }
        let _ = tx.respond(ok);
        self.legs[a].state = LegState::Connected;
        true
    }

    /// The call is answered by `label`: its state, record, recording, and
    /// its end after `max` (ZERO: never).
    pub(super) async fn call_answered(&mut self, label: &str, max: std::time::Duration) {
        self.answered_with(label, max, None).await;
    }

    /// [`Self::call_answered`] for a call an AI agent answers: its audio
    /// port is up before the record's write is awaited, so the model's
    /// first words never wait on the database.
    pub(super) async fn answered_with(
        &mut self,
        label: &str,
        max: std::time::Duration,
        agent_audio: Option<(AudioFormat, AudioFormat)>,
    ) {
        self.state = CallState::Answered;
        self.record.answered(label);
        self.record.rec.account_id = self.live.account().map(str::to_string);
        // Listings see the answer at once, not after the awaits below (the
        // caller already has its 200).
        self.publish();
        self.notify(CallNotice::Answered {
            by: label.to_string(),
        });
        if !max.is_zero() {
            self.after(max, CallEvent::MaxDuration);
        }
        self.start_recording().await;
        if let Some((input, output)) = agent_audio {
            self.attach_agent_audio(input, output).await;
            if self.state == CallState::Ended {
                return;
            }
        }
        self.record.save(&self.ctx.records);
    }

    /// ACKs a 2xx to our INVITE (§13.2.2.4: end to end, with the INVITE's
    /// CSeq), unless the ACK must wait for a late offer's answer.
    async fn ack(&mut self, id: LegId, resp: &Response) {
        let contact = self.contact_for(&self.legs[id].peer);
        let leg = &mut self.legs[id];
        if leg.dialog.is_none() || leg.state != LegState::Connected {
            if let Some(inv) = leg.invite.as_ref() {
                match Dialog::uac(inv, resp, &contact) {
                    Ok(d) => leg.dialog = Some(d),
                    Err(e) => {
                        tracing::warn!(call = %self.id, leg = %id, error = %e, "cannot form dialog from 2xx");
                        return;
                    }
                }
            }
        }
        if let Some(dialog) = leg.dialog.as_mut() {
            dialog.on_response(&Method::Invite, resp);
        }
        if !leg.awaiting_answer {
            self.send_invite_ack(id).await;
        }
    }

    /// Sends the ACK for the 2xx of this leg's INVITE (with the late-offer
    /// answer, if there is one).
    pub async fn send_invite_ack(&mut self, id: LegId) {
        let leg = &mut self.legs[id];
        let seq = leg
            .invite
            .as_ref()
            .and_then(|r| {
                r.headers.iter().find_map(|h| match h {
                    Header::CSeq(c) => c.seq().ok(),
                    _ => None,
                })
            })
            .unwrap_or(1);
        let Some(dialog) = leg.dialog.as_mut() else {
            return;
        };
        let mut ack = dialog.request_with_seq(Method::Ack, seq);
        if let Some(body) = leg.ack_body.clone() {
            set_sdp_body(&mut ack.headers, &mut ack.body, body);
        }
        if let Err(e) = self.ctx.layer.send_ack(ack, leg.peer).await {
            tracing::debug!(call = %self.id, leg = %id, error = %e, "ACK not sent");
        }
    }

    /// Late offer: the caller's ACK carries its answer to the offer the
    /// callee made in its 2xx; anchor it and complete the callee's ACK.
    pub async fn late_answer(&mut self, ack: &rsip::Request) {
        let Some(b) = self.legs.find(|l| l.awaiting_answer) else {
            return;
        };
        self.legs[b].awaiting_answer = false;
        let a = self.a();
        match super::leg::request_sdp(ack) {
            Some(Ok(sdp)) => {
                self.took_description(a, sdp.clone(), true).await;
                self.legs[b].ack_body = Some(self.answer_leg(b, &sdp).await);
                self.send_invite_ack(b).await;
            }
            _ => {
                // No answer where one is owed: ACK to end the transaction,
                // then end the call.
                self.send_invite_ack(b).await;
                self.hangup("no SDP answer in ACK", "caller", 488).await;
            }
        }
    }

    /// Cancels one placed leg: CANCEL now if it has answered provisionally,
    /// else as soon as it does (§9.1).
    pub fn cancel_leg(&mut self, id: LegId) {
        let leg = &mut self.legs[id];
        if !matches!(leg.state, LegState::Calling | LegState::Early) || leg.role != Role::Uac {
            return;
        }
        if leg.got_provisional {
            self.send_cancel(id);
        } else {
            leg.cancel_wanted = true;
        }
    }

    fn send_cancel(&mut self, id: LegId) {
        let leg = &mut self.legs[id];
        let Some(inv) = leg.invite.as_ref() else {
            return;
        };
        leg.state = LegState::Ending;
        match self.ctx.layer.cancel_request(inv, leg.peer) {
            Ok(tx) => self.watch_client(id, Pending::Cancel, tx),
            Err(e) => tracing::debug!(call = %self.id, leg = %id, error = %e, "CANCEL not sent"),
        }
    }

    /// Cancels every fork of the current attempt and forgets it.
    pub async fn cancel_dial(&mut self) {
        if let Some(dial) = self.dial.take() {
            for f in &dial.forks {
                self.cancel_leg(*f);
            }
            if let DialPurpose::Transfer { reply: Some(r), .. } = dial.purpose {
                let _ = r.send(Ok(super::command::CommandOutcome::from_status(
                    487,
                    "Request Terminated",
                )));
            }
            self.media.release(dial.slot).await;
        }
    }

    pub async fn on_ring_timeout(&mut self, attempt: u64) {
        let current = self
            .dial
            .as_ref()
            .is_some_and(|d| d.attempt == attempt && d.winner.is_none());
        if !current {
            return;
        }
        let Some(dial) = self.dial.as_ref() else {
            return;
        };
        if matches!(dial.purpose, DialPurpose::Initial | DialPurpose::Originate) {
            // Ringing that nobody picked up (the 480 it ends with is also
            // what an unregistered user gets, which is "unavailable").
            self.record.outcome("no_answer");
        }
        for f in dial.forks.clone() {
            self.cancel_leg(f);
            self.legs[f]
                .final_status
                .get_or_insert((480, "No Answer".into()));
            self.legs[f].state = LegState::Ended;
        }
        self.check_dial_failed().await;
    }

    /// When every fork has failed, the attempt fails with the best status.
    async fn check_dial_failed(&mut self) {
        let Some(dial) = self.dial.as_ref() else {
            return;
        };
        if dial.winner.is_some()
            || dial
                .forks
                .iter()
                .any(|f| !matches!(self.legs[*f].state, LegState::Ended | LegState::Ending))
        {
            return;
        }
        let statuses: Vec<(u16, String)> = dial
            .forks
            .iter()
            .filter_map(|f| self.legs[*f].final_status.clone())
            .collect();
        let (code, reason) = best_failure(&statuses);
        let Some(dial) = self.dial.take() else { return };
        self.media.release(dial.slot).await;
        let purpose = match dial.hunt {
            // A queue's next member, or its fallback.
            Some(hunt) => match self.hunt_next(hunt, dial.purpose, 69).await {
                Ok(()) => return,
                Err((_, _, p)) => p,
            },
            None => dial.purpose,
        };
        match purpose {
            DialPurpose::Initial => self.fail_initial(code, &reason),
            DialPurpose::Originate => self.fail_originate(code, &reason),
            DialPurpose::Transfer {
                keep,
                reply,
                notify,
            } => {
                self.transfer_failed(keep, code, &reason, reply, notify)
                    .await
            }
        }
    }

    /// A 2xx retransmitted after its transaction ended: ACK it again.
    pub async fn on_stray_response(&mut self, resp: Response) {
        if !(200..300).contains(&resp.status_code.code()) {
            return;
        }
        let call_id = resp.headers.iter().find_map(|h| match h {
            Header::CallId(c) => Some(c.value().to_string()),
            _ => None,
        });
        let Some(id) = self
            .legs
            .find(|l| Some(&l.sip_call_id) == call_id.as_ref() && l.role == Role::Uac)
        else {
            return;
        };
        self.ack(id, &resp).await;
    }
}

fn response_stub(code: u16) -> Response {
    Response {
        status_code: code.into(),
        version: rsip::Version::V2,
        headers: Default::default(),
        body: Vec::new(),
    }
}

pub fn reason_of(resp: &Response) -> String {
    match &resp.status_code {
        rsip::StatusCode::Other(_, r) => r.clone(),
        other => dialtone_sip::message::reply::reason_phrase(other.code()).to_string(),
    }
}

/// RFC 3261 §16.7-style choice among failed forks: a 6xx wins, then busy,
/// then the lowest other 4xx, then 5xx; nothing at all is 480.
pub fn best_failure(statuses: &[(u16, String)]) -> (u16, String) {
    let pick = |pred: &dyn Fn(u16) -> bool| {
        statuses
            .iter()
            .filter(|(c, _)| pred(*c))
            .min_by_key(|(c, _)| *c)
            .cloned()
    };
    pick(&|c| c >= 600)
        .or_else(|| pick(&|c| c == 486))
        .or_else(|| pick(&|c| (400..500).contains(&c) && c != 401 && c != 407))
        .or_else(|| pick(&|c| (500..600).contains(&c)))
        .or_else(|| {
            pick(&|c| c == 401 || c == 407)
                .map(|_| (403, "Trunk Authentication Failed".to_string()))
        })
        .unwrap_or((480, "Temporarily Unavailable".into()))
}

/// The record's outcome for a final status.
pub fn outcome_for(code: u16) -> &'static str {
    match code {
        486 | 600 => "busy",
        603 => "rejected",
        408 | 487 => "no_answer",
        404 | 480 | 484 | 503 => "unavailable",
        _ => "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_failure_prefers_6xx_then_busy() {
        let s = |v: &[u16]| v.iter().map(|c| (*c, String::new())).collect::<Vec<_>>();
        assert_eq!(best_failure(&s(&[480, 603, 486])).0, 603);
        assert_eq!(best_failure(&s(&[480, 486, 500])).0, 486);
        assert_eq!(best_failure(&s(&[503, 480])).0, 480);
        assert_eq!(best_failure(&s(&[503])).0, 503);
        assert_eq!(best_failure(&s(&[407])).0, 403);
        assert_eq!(best_failure(&[]).0, 480);
    }
}

//! Requests inside a call's dialogs (RFC 3261 §12.2.2): BYE ends the call;
//! re-INVITE, UPDATE and INFO are relayed to the other party with the SDP
//! rewritten to dialtone's media address (one relay at a time: a second
//! gets 491, or 500 with Retry-After when it is a second offer from a
//! party whose own offer is still unanswered: RFC 3261 §14.2, RFC 3311
//! §5.2); REFER starts a transfer; anything else is answered here.

use dialtone_sip::dialog::{DialogError, DialogId};
use dialtone_sip::transaction::{ClientEvent, ServerTransaction};
use rand::Rng;
use rsip::{Header, Method};

use super::actor::{with_reason, Call, Connected, Relay};
use super::event::{LegId, Pending};
use super::leg::{request_sdp, response_sdp, set_sdp_body, LegState, Role};

impl Call {
    /// Which leg a request belongs to, by dialog id.
    fn leg_of(&self, tx: &ServerTransaction) -> Option<LegId> {
        let id = DialogId::of_request(tx.request())?;
        self.legs
            .find(|l| l.dialog.as_ref().is_some_and(|d| d.id == id))
    }

    /// The SIP party connected to `leg`, if any (None when `leg` talks to
    /// the AI agent).
    pub fn other(&self, leg: LegId) -> Option<LegId> {
        let b = self.b_leg()?;
        if leg == self.a() {
            Some(b)
        } else if leg == b {
            Some(self.a())
        } else {
            None
        }
    }

    /// Whether `leg` is the caller talking to the AI agent.
    fn talks_to_agent(&self, leg: LegId) -> bool {
        leg == self.a() && self.parties.b == Some(Connected::Agent)
    }

    pub async fn on_request(&mut self, tx: ServerTransaction) {
        let Some(id) = self.leg_of(&tx) else {
            let _ = tx.reply(481);
            return;
        };
        if let Some(d) = self.legs[id].dialog.as_mut() {
            if let Err(DialogError::OutOfOrder { .. }) = d.on_request(tx.request()) {
                let _ = tx.respond(with_reason(tx.response(500), "CSeq Out Of Order"));
                return;
            }
        }
        match tx.request().method {
            Method::Bye => {
                let _ = tx.reply(200);
                self.legs[id].state = LegState::Ended;
                let side = if self.legs[id].role == Role::Uas && id == self.a() {
                    "caller"
                } else {
                    "callee"
                };
                self.hangup("BYE", side, 487).await;
            }
            Method::Invite | Method::Update if self.talks_to_agent(id) => {
                self.refreshed(id);
                self.answer_for_agent(id, tx).await
            }
            Method::Info if self.talks_to_agent(id) => self.info_for_agent(tx),
            Method::Invite | Method::Update => {
                self.refreshed(id);
                self.relay_request(id, tx).await
            }
            Method::Info => self.relay_request(id, tx).await,
            Method::Refer => self.on_refer(id, tx).await,
            Method::Options => {
                let mut ok = tx.response(200);
                ok.headers
                    .push(Header::Allow(rsip::headers::Allow::from(crate::ALLOW)));
                let _ = tx.respond(ok);
            }
            Method::Ack => {}
            _ => {
                let mut r = tx.response(405);
                r.headers
                    .push(Header::Allow(rsip::headers::Allow::from(crate::ALLOW)));
                let _ = tx.respond(r);
            }
        }
    }

    /// Relays a re-INVITE, UPDATE or INFO to the other party.
    async fn relay_request(&mut self, from: LegId, mut tx: ServerTransaction) {
        let Some(to) = self.other(from) else {
            // Not connected (a re-INVITE during a transfer, say): decline.
            let _ = tx.respond(with_reason(tx.response(491), "Request Pending"));
            return;
        };
        if self.in_flight.busy() {
            let _ = tx.respond(self.busy_response(from, &tx));
            return;
        }
        let method = tx.request().method;
        let sdp = match request_sdp(tx.request()) {
            Some(Ok(s)) => Some(s),
            Some(Err(e)) => {
                let _ = tx.respond(with_reason(tx.response(400), &format!("Bad SDP: {e}")));
                return;
            }
            None => None,
        };
        if let Some(reason) = sdp.as_ref().and_then(|s| self.legs[from].refuses_offer(s)) {
            let _ = tx.respond(with_reason(tx.response(488), reason));
            return;
        }
        let Some(dialog) = self.legs[to].dialog.as_mut() else {
            let _ = tx.reply(481);
            return;
        };
        let mut req = dialog.request(method);
        if let Some(sdp) = &sdp {
            self.took_description(from, sdp.clone(), false).await;
            let local = self.media.local(self.legs[to].slot);
            let body = self.legs[to].offer_from(sdp, local);
            set_sdp_body(&mut req.headers, &mut req.body, body);
        } else if !tx.request().body.is_empty() {
            // INFO bodies (DTMF relay, …) pass through as they are.
            for h in tx.request().headers.iter() {
                if matches!(h, Header::ContentType(_)) {
                    req.headers.push(h.clone());
                }
            }
            req.body = tx.request().body.clone();
        }
        match self.ctx.layer.send_request(req, self.legs[to].peer) {
            Ok(ctx) => {
                self.watch_client(to, Pending::Relay, ctx);
                if method == Method::Invite {
                    self.watch_server(from, &mut tx);
                }
                self.in_flight.relay = Some(Relay {
                    from,
                    to,
                    tx,
                    method,
                });
            }
            Err(e) => {
                tracing::warn!(call = %self.id, error = %e, "relay not sent");
                let _ = tx.reply(503);
            }
        }
    }

    /// The answer to a request from `from` that cannot be relayed because
    /// another is in flight. 500 with a Retry-After of 0 to 10 seconds,
    /// chosen at random, when `from` itself is still waiting for our answer
    /// to an offer: a re-INVITE before the final response to its first
    /// INVITE (RFC 3261 §14.2), or an UPDATE with an offer while its INVITE
    /// or UPDATE offer is unanswered (RFC 3311 §5.2). Otherwise 491:
    /// dialtone has an offer of its own out on that dialog (the relay of
    /// the other party's, or a re-INVITE dialtone sent: glare), or another
    /// request is being relayed and this one has to wait.
    fn busy_response(&self, from: LegId, tx: &ServerTransaction) -> rsip::Response {
        let offer = |r: &rsip::Request| {
            r.method == Method::Invite || (r.method == Method::Update && !r.body.is_empty())
        };
        let offer_unanswered = self
            .in_flight
            .relay
            .as_ref()
            .is_some_and(|r| r.from == from && offer(r.tx.request()));
        let second_offer = match tx.request().method {
            Method::Invite => self
                .in_flight
                .relay
                .as_ref()
                .is_some_and(|r| r.from == from && r.method == Method::Invite),
            Method::Update => offer(tx.request()) && offer_unanswered,
            _ => false,
        };
        if !second_offer {
            return with_reason(tx.response(491), "Request Pending");
        }
        let mut r = tx.response(500);
        r.headers
            .push(Header::RetryAfter(rsip::headers::RetryAfter::from(
                rand::thread_rng().gen_range(0..=10u32).to_string(),
            )));
        r
    }

    pub async fn on_relay_event(&mut self, leg: LegId, event: ClientEvent) {
        let resp = match event {
            ClientEvent::Provisional(_) => return,
            ClientEvent::Final(r) => r,
            ClientEvent::Timeout => {
                if let Some(relay) = self.in_flight.relay.take() {
                    let _ = relay.tx.reply(408);
                }
                return;
            }
            ClientEvent::TransportError(_) => {
                if let Some(relay) = self.in_flight.relay.take() {
                    let _ = relay.tx.reply(503);
                }
                return;
            }
        };
        let code = resp.status_code.code();
        if (200..300).contains(&code)
            && self
                .in_flight
                .relay
                .as_ref()
                .is_some_and(|r| r.method == Method::Invite)
        {
            self.ack_reinvite(leg, &resp).await;
        }
        if (200..300).contains(&code) {
            self.refreshed(leg);
        }
        let Some(relay) = self.in_flight.relay.take() else {
            return;
        };
        if relay.to != leg {
            return;
        }
        let mut out = relay.tx.response(code);
        out.status_code = resp.status_code.clone();
        if let Some(Ok(sdp)) = response_sdp(&resp) {
            self.took_description(leg, sdp.clone(), true).await;
            let body = self.answer_leg(relay.from, &sdp).await;
            set_sdp_body(&mut out.headers, &mut out.body, body);
        } else if !resp.body.is_empty() {
            for h in resp.headers.iter() {
                if matches!(h, Header::ContentType(_)) {
                    out.headers.push(h.clone());
                }
            }
            out.body = resp.body.clone();
        }
        if (200..300).contains(&code) && relay.method == Method::Invite {
            out.headers
                .push(Header::Contact(rsip::headers::Contact::from(
                    self.contact_for(&self.legs[relay.from].peer),
                )));
        }
        let _ = relay.tx.respond(out);
    }

    /// ACKs the 2xx of a re-INVITE we sent on `leg`.
    pub async fn ack_reinvite(&mut self, leg: LegId, resp: &rsip::Response) {
        let seq = resp
            .headers
            .iter()
            .find_map(|h| match h {
                Header::CSeq(c) => c.seq().ok(),
                _ => None,
            })
            .unwrap_or(0);
        let Some(dialog) = self.legs[leg].dialog.as_mut() else {
            return;
        };
        dialog.on_response(&Method::Invite, resp);
        let ack = dialog.request_with_seq(Method::Ack, seq);
        if let Err(e) = self.ctx.layer.send_ack(ack, self.legs[leg].peer).await {
            tracing::debug!(call = %self.id, %leg, error = %e, "ACK for re-INVITE not sent");
        }
    }
}

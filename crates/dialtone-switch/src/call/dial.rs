//! Placing legs: a target becomes one INVITE per registered contact (a
//! user) or one to a trunk, all sharing one RTP slot; the first 2xx wins
//! and the others are CANCELled (a late 2xx is ACKed and BYEd). A trunk's
//! 401/407 is answered once with its credentials. Provisional responses are
//! relayed to the caller (with early media), and when every fork has failed
//! the caller gets the most telling final response.

use std::net::SocketAddr;

use dialtone_sip::auth;
use dialtone_sip::dialog::Dialog;
use dialtone_sip::message::{new_call_id, new_tag, NameAddr};
use dialtone_sip::transaction::ClientEvent;
use dialtone_sip::transport::{Peer, Protocol};
use dialtone_store::Trunk;
use rsip::headers::UntypedHeader;
use rsip::{Header, Method, Request, Response};

use super::actor::{with_reason, Call, CallState, Dial, DialPurpose};
use super::event::{CallEvent, LegId, Pending};
use super::leg::{response_sdp, set_sdp_body, Leg, LegState, MediaPlan, Role};
use crate::registrar::unix_now;
use crate::router::Target;

/// One INVITE to place.
pub struct Fork {
    pub peer: Peer,
    pub request_uri: String,
    pub to: String,
    pub label: String,
    pub credentials: Option<(String, String)>,
}

pub fn call_id_of(req: &Request) -> String {
    req.headers
        .iter()
        .find_map(|h| match h {
            Header::CallId(c) => Some(c.value().to_string()),
            _ => None,
        })
        .unwrap_or_default()
}

/// `udp:1.2.3.4:5060` (a binding's source) as a peer.
fn parse_peer(s: &str) -> Option<Peer> {
    let (proto, addr) = s.split_once(':')?;
    Some(Peer::new(proto.parse().ok()?, addr.parse().ok()?))
}

async fn trunk_peer(trunk: &Trunk) -> Option<Peer> {
    let host = trunk.host.as_deref()?;
    let protocol: Protocol = trunk.transport.parse().unwrap_or(Protocol::Udp);
    let with_port = if host
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        && !host.ends_with(']')
    {
        host.to_string()
    } else {
        format!("{host}:5060")
    };
    let addr: SocketAddr = tokio::net::lookup_host(with_port).await.ok()?.next()?;
    Some(Peer::new(protocol, addr))
}

impl Call {
    /// Works out the forks for `target`, or the status to refuse with.
    pub(super) async fn forks_for(
        &self,
        target: &Target,
    ) -> Result<Vec<Fork>, (u16, &'static str)> {
        let domain = &self.ctx.cfg.domain;
        match target {
            Target::User(name) => {
                let bindings = self
                    .ctx
                    .store
                    .registrations()
                    .list(name, unix_now())
                    .await
                    .map_err(|_| (500, "Database Unavailable"))?;
                let forks: Vec<Fork> = bindings
                    .iter()
                    .filter_map(|b| {
                        Some(Fork {
                            peer: parse_peer(&b.source)?,
                            request_uri: b.contact.clone(),
                            to: format!("<sip:{name}@{domain}>"),
                            label: format!("user:{name}"),
                            credentials: None,
                        })
                    })
                    .collect();
                if forks.is_empty() {
                    return Err((480, "Temporarily Unavailable"));
                }
                Ok(forks)
            }
            Target::Trunk { trunk, number } => {
                let peer = trunk_peer(trunk).await.ok_or((503, "Trunk Unreachable"))?;
                let host = trunk.host.clone().unwrap_or_default();
                Ok(vec![Fork {
                    peer,
                    request_uri: format!("sip:{number}@{host}"),
                    to: format!("<sip:{number}@{host}>"),
                    label: format!("trunk:{}", trunk.name),
                    credentials: trunk.username.clone().zip(trunk.password.clone()),
                }])
            }
            Target::Persona(_) | Target::Queue(_) => Err((503, "Not Available Yet")),
        }
    }

    pub async fn dial_initial(&mut self, target: Target) {
        let max_forwards = self.legs[self.a]
            .uas
            .as_ref()
            .and_then(|t| {
                t.request().headers.iter().find_map(|h| match h {
                    Header::MaxForwards(m) => m.value().trim().parse::<u32>().ok(),
                    _ => None,
                })
            })
            .unwrap_or(70);
        if max_forwards == 0 {
            self.fail_initial(483, "Too Many Hops");
            return;
        }
        match self.forks_for(&target).await {
            Ok(forks) => {
                if let Err((code, reason, _)) = self
                    .place(forks, DialPurpose::Initial, max_forwards - 1)
                    .await
                {
                    self.fail_initial(code, reason);
                }
            }
            Err((code, reason)) => self.fail_initial(code, reason),
        }
    }

    fn fail_initial(&mut self, code: u16, reason: &str) {
        self.record.outcome(outcome_for(code));
        self.record.cause(&format!("{code} {reason}"));
        self.record.end_side("system");
        self.answer_caller_failure(code, reason);
        self.state = CallState::Ended;
    }

    /// Places `forks` in parallel on one new RTP slot, offering the SDP of
    /// the party that will be connected. On failure the purpose comes back
    /// (with the reply channel of a transfer in it).
    pub async fn place(
        &mut self,
        forks: Vec<Fork>,
        purpose: DialPurpose,
        max_forwards: u32,
    ) -> Result<(), (u16, &'static str, DialPurpose)> {
        let source_leg = match &purpose {
            DialPurpose::Initial => self.a,
            DialPurpose::Transfer { keep, .. } => *keep,
        };
        let Some(source_sdp) = self.legs[source_leg].remote_sdp.clone() else {
            return Err((488, "No SDP To Offer", purpose));
        };
        let slot = match self.media.allocate().await {
            Ok(s) => s,
            Err(_) => return Err((503, "No Media Ports", purpose)),
        };
        let local = self.media.local(slot);
        let caller_from = self.caller_identity(source_leg);
        self.next_attempt += 1;
        let attempt = self.next_attempt;
        let mut ids = Vec::new();
        for fork in forks {
            let call_id = new_call_id(&self.ctx.cfg.domain);
            let mut leg = Leg::new(
                Role::Uac,
                fork.peer,
                call_id.clone(),
                slot,
                local.ip(),
                fork.label.clone(),
            );
            leg.credentials = fork.credentials.clone();
            let body = leg.offer_from(&source_sdp, local);
            let template = self.invite_template(&fork, &call_id, &caller_from, max_forwards, body);
            leg.invite_template = template.clone();
            let id = self.legs.len();
            self.legs.push(leg);
            self.ctx.registry.add_leg(&call_id, &self.handle);
            let sent = match template {
                Some(t) => self.send_invite(id, t),
                None => {
                    tracing::warn!(call = %self.id, uri = %fork.request_uri, "cannot build an INVITE for this contact");
                    false
                }
            };
            if sent {
                ids.push(id);
            } else {
                self.legs[id].state = LegState::Ended;
                self.legs[id].final_status = Some((503, "Transport Error".into()));
            }
        }
        if ids.is_empty() {
            self.media.release(slot).await;
            return Err((503, "Service Unavailable", purpose));
        }
        self.dial = Some(Dial {
            attempt,
            forks: ids,
            slot,
            purpose,
            winner: None,
        });
        let events = self.events_tx.clone();
        let ring = self.ctx.cfg.ring_timeout;
        tokio::spawn(async move {
            tokio::time::sleep(ring).await;
            let _ = events.send(CallEvent::RingTimeout { attempt });
        });
        Ok(())
    }

    /// The From of the legs we place for `leg`'s party: its display name and
    /// user, at our domain.
    fn caller_identity(&self, leg: LegId) -> String {
        let req_from = self.legs[leg]
            .uas
            .as_ref()
            .map(|t| t.request().headers.clone())
            .or_else(|| {
                self.legs[leg]
                    .invite_template
                    .as_ref()
                    .map(|r| r.headers.clone())
            });
        let user = req_from
            .as_ref()
            .and_then(|h| {
                h.iter().find_map(|h| match h {
                    Header::From(f) if self.legs[leg].role == Role::Uas => {
                        NameAddr::parse(f.value()).ok()
                    }
                    Header::To(t) if self.legs[leg].role == Role::Uac => {
                        NameAddr::parse(t.value()).ok()
                    }
                    _ => None,
                })
            })
            .map(|na| {
                let user = na
                    .uri
                    .auth
                    .as_ref()
                    .map(|a| a.user.clone())
                    .unwrap_or_else(|| "anonymous".into());
                match na.display_name {
                    Some(d) => format!("{d} <sip:{user}@{}>", self.ctx.cfg.domain),
                    None => format!("<sip:{user}@{}>", self.ctx.cfg.domain),
                }
            });
        user.unwrap_or_else(|| format!("<sip:anonymous@{}>", self.ctx.cfg.domain))
    }

    /// The INVITE for a fork, without Via (the transaction layer adds it).
    /// None when the fork's URI does not parse (a bad registration).
    fn invite_template(
        &self,
        fork: &Fork,
        call_id: &str,
        from: &str,
        max_forwards: u32,
        body: Vec<u8>,
    ) -> Option<Request> {
        use rsip::headers as h;
        let uri = dialtone_sip::message::uri::parse_uri(&fork.request_uri)
            .ok()?
            .uri;
        let mut headers: rsip::Headers = Default::default();
        headers.push(Header::MaxForwards(h::MaxForwards::from(
            max_forwards.to_string(),
        )));
        headers.push(Header::From(h::From::from(format!(
            "{from};tag={}",
            new_tag()
        ))));
        headers.push(Header::To(h::To::from(fork.to.clone())));
        headers.push(Header::CallId(h::CallId::from(call_id.to_string())));
        headers.push(Header::CSeq(h::CSeq::from("1 INVITE")));
        headers.push(Header::Contact(h::Contact::from(
            self.contact_for(&fork.peer),
        )));
        headers.push(Header::Allow(h::Allow::from(crate::ALLOW)));
        headers.push(Header::UserAgent(h::UserAgent::from(
            self.ctx.cfg.user_agent.as_str(),
        )));
        let mut req = Request {
            method: Method::Invite,
            uri,
            version: rsip::Version::V2,
            headers,
            body: Vec::new(),
        };
        set_sdp_body(&mut req.headers, &mut req.body, body);
        Some(req)
    }

    /// Our Contact for requests to `peer`.
    pub fn contact_for(&self, peer: &Peer) -> String {
        let local = self.ctx.layer.transports().local_for(peer);
        let host = local
            .map(|a| a.to_string())
            .unwrap_or_else(|| self.ctx.cfg.domain.clone());
        match peer.protocol {
            Protocol::Tcp => format!("<sip:dialtone@{host};transport=tcp>"),
            Protocol::Udp => format!("<sip:dialtone@{host}>"),
        }
    }

    /// Sends an INVITE (a template without Via) on a leg; false on failure.
    fn send_invite(&mut self, id: LegId, template: Request) -> bool {
        let peer = self.legs[id].peer;
        match self.ctx.layer.send_request(template, peer) {
            Ok(tx) => {
                self.legs[id].invite = Some(tx.request().clone());
                self.watch_client(id, Pending::Invite, tx);
                true
            }
            Err(e) => {
                tracing::warn!(call = %self.id, leg = id, error = %e, "INVITE not sent");
                false
            }
        }
    }

    pub async fn on_invite_event(&mut self, id: LegId, event: ClientEvent) {
        let resp = match event {
            ClientEvent::Provisional(r) => return self.on_provisional(id, r).await,
            ClientEvent::Final(r) => r,
            ClientEvent::Timeout => with_reason(response_stub(408), "Request Timeout"),
            ClientEvent::TransportError(_) => with_reason(response_stub(503), "Transport Error"),
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
        let a = self.a;
        let mut relay = self.legs[a]
            .uas
            .as_ref()
            .map(|t| t.response(resp.status_code.code()));
        if let (Some(sdp), Some(r)) = (early_sdp, relay.as_mut()) {
            let plan = MediaPlan::of(&sdp);
            self.apply_plan(slot, &plan).await;
            self.media.bridge(self.legs[a].slot, slot).await;
            let local = self.media.local(self.legs[a].slot);
            let body = self.legs[a].offer_from(&sdp, local);
            set_sdp_body(&mut r.headers, &mut r.body, body);
            self.legs[id].remote_sdp = Some(sdp);
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
        let peer = self.legs[self.a].peer;
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
        if leg.auth_tried {
            return false;
        }
        leg.auth_tried = true;
        let header = match auth::answer(resp, &Method::Invite, &template.uri, &user, &pass, 1) {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(call = %self.id, leg = id, error = %e, "cannot answer trunk challenge");
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
        self.ack(id, &resp).await;
        self.legs[id].state = LegState::Connected;
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
                tracing::warn!(call = %self.id, leg = id, "2xx without usable SDP; hanging up");
                self.hangup("callee sent no SDP", "system", 488).await;
                return;
            }
        };
        let slot = self.legs[id].slot;
        self.apply_plan(slot, &MediaPlan::of(&sdp)).await;
        self.legs[id].remote_sdp = Some(sdp);
        let Some(dial) = self.dial.take() else { return };
        match dial.purpose {
            DialPurpose::Initial => self.connect_caller(id).await,
            DialPurpose::Transfer {
                keep,
                reply,
                notify,
            } => self.complete_transfer(keep, id, reply, notify).await,
        }
    }

    /// The callee answered a new call: answer the caller and bridge.
    async fn connect_caller(&mut self, b: LegId) {
        let a = self.a;
        self.media
            .bridge(self.legs[a].slot, self.legs[b].slot)
            .await;
        let Some(sdp) = self.legs[b].remote_sdp.clone() else {
            return;
        };
        let local = self.media.local(self.legs[a].slot);
        let body = self.legs[a].offer_from(&sdp, local);
        let Some(tx) = self.legs[a].uas.take() else {
            return;
        };
        let mut ok = tx.response(200);
        self.add_caller_contact(&mut ok);
        set_sdp_body(&mut ok.headers, &mut ok.body, body);
        let contact = self.contact_for(&self.legs[a].peer);
        match Dialog::uas(tx.request(), &ok, &contact) {
            Ok(d) => self.legs[a].dialog = Some(d),
            Err(e) => tracing::warn!(call = %self.id, error = %e, "caller dialog not formed"),
        }
        let _ = tx.respond(ok);
        self.legs[a].state = LegState::Connected;
        self.b = Some(b);
        self.state = CallState::Answered;
        self.record.answered(&self.legs[b].label);
        self.record.save(&self.ctx.store).await;
        if !self.ctx.cfg.max_duration.is_zero() {
            let events = self.events_tx.clone();
            let max = self.ctx.cfg.max_duration;
            tokio::spawn(async move {
                tokio::time::sleep(max).await;
                let _ = events.send(CallEvent::MaxDuration);
            });
        }
    }

    /// ACKs a 2xx to our INVITE (§13.2.2.4: end to end, with the INVITE's CSeq).
    async fn ack(&mut self, id: LegId, resp: &Response) {
        let contact = self.contact_for(&self.legs[id].peer);
        let leg = &mut self.legs[id];
        if leg.dialog.is_none() || leg.state != LegState::Connected {
            if let Some(inv) = leg.invite.as_ref() {
                match Dialog::uac(inv, resp, &contact) {
                    Ok(d) => leg.dialog = Some(d),
                    Err(e) => {
                        tracing::warn!(call = %self.id, leg = id, error = %e, "cannot form dialog from 2xx");
                        return;
                    }
                }
            }
        }
        let leg = &mut self.legs[id];
        let Some(dialog) = leg.dialog.as_mut() else {
            return;
        };
        dialog.on_response(&Method::Invite, resp);
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
        let ack = dialog.request_with_seq(Method::Ack, seq);
        if let Err(e) = self.ctx.layer.send_ack(ack, leg.peer).await {
            tracing::debug!(call = %self.id, leg = id, error = %e, "ACK not sent");
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
            Err(e) => tracing::debug!(call = %self.id, leg = id, error = %e, "CANCEL not sent"),
        }
    }

    /// Cancels every fork of the current attempt and forgets it.
    pub async fn cancel_dial(&mut self) {
        if let Some(dial) = self.dial.take() {
            for f in &dial.forks {
                self.cancel_leg(*f);
            }
            if let DialPurpose::Transfer { reply: Some(r), .. } = dial.purpose {
                let _ = r.send(Ok(super::command::CommandOutcome::NoAnswer));
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
        match dial.purpose {
            DialPurpose::Initial => self.fail_initial(code, &reason),
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
            .iter()
            .position(|l| Some(&l.sip_call_id) == call_id.as_ref() && l.role == Role::Uac)
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
        408 | 480 | 487 => "no_answer",
        404 | 484 | 503 => "unavailable",
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

    #[test]
    fn binding_source_is_a_peer() {
        let p = parse_peer("udp:127.0.0.1:5062").unwrap_or_else(|| panic!());
        assert_eq!(p.addr.port(), 5062);
        assert_eq!(p.protocol, Protocol::Udp);
        assert!(parse_peer("tcp:[::1]:5070").is_some());
        assert!(parse_peer("nonsense").is_none());
    }
}

//! Placing legs: a target becomes one INVITE per registered contact (a
//! user) or one to a trunk, all sharing one RTP slot; the first 2xx wins
//! and the others are CANCELled (a late 2xx is ACKed and BYEd). A trunk's
//! 401/407 is answered once with its credentials. Provisional responses are
//! relayed to the caller (with early media), and when every fork has failed
//! the caller gets the most telling final response.

use dialtone_sip::message::{new_call_id, new_tag, NameAddr};
use dialtone_sip::transport::Peer;
use rsip::headers::UntypedHeader;
use rsip::{Header, Method, Request};

use super::actor::{Call, CallState, Dial, DialPurpose};
use super::event::{CallEvent, LegId, Pending};
use super::leg::{set_sdp_body, Leg, LegState, Role};
use super::progress::outcome_for;
use super::sdes::Sdes;
use crate::router::{Caller, Target};
use dialtone_store::SrtpPolicy;

/// One INVITE to place.
pub struct Fork {
    /// Where the INVITE goes: the contact, or the first hop of `route`.
    pub peer: Peer,
    /// Route header values (a registration's Path, RFC 3327); empty: none.
    pub route: Vec<String>,
    pub request_uri: String,
    pub to: String,
    pub label: String,
    pub credentials: Option<(String, String)>,
    /// Who answers it, as a party of the call.
    pub who: Caller,
    /// Its own SRTP policy (a user's or a trunk's), else `media.srtp`.
    pub srtp: Option<SrtpPolicy>,
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

impl Call {
    pub async fn dial_initial(&mut self, target: Target) {
        let max_forwards = self.legs[self.a()]
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
        if let Target::Persona(name) = &target {
            self.start_agent(name).await;
            return;
        }
        if let (Target::User(name), None) = (&target, self.live.account()) {
            // A call from a trunk to a user belongs to the user's account.
            if let Ok(Some(u)) = self.ctx.store.users().get_cached(name).await {
                self.live.set_account(Some(u.account_id));
            }
        }
        self.dial_target(target, max_forwards - 1).await;
    }

    /// Places the caller's call to `target` (also the fallback of a persona
    /// whose model cannot be reached).
    pub(super) async fn dial_target(&mut self, target: Target, max_forwards: u32) {
        if let Target::Queue(name) = &target {
            if let Err((code, reason, _)) = self
                .dial_queue(name, DialPurpose::Initial, max_forwards)
                .await
            {
                self.fail_initial(code, reason);
            }
            return;
        }
        match self.resolver().forks_for(&target).await {
            Ok(forks) => {
                if let Err((code, reason, _)) =
                    self.place(forks, DialPurpose::Initial, max_forwards).await
                {
                    self.fail_initial(code, reason);
                }
            }
            Err((code, reason)) => self.fail_initial(code, reason),
        }
    }

    pub(super) fn fail_initial(&mut self, code: u16, reason: &str) {
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
        // Without SDP from the caller (late offer) the INVITE goes out
        // without one too; a transfer always has the kept party's SDP, and
        // a call dialtone places offers its own.
        let (source_sdp, caller_from) = match &purpose {
            DialPurpose::Initial => (
                self.legs[self.a()].remote_sdp.clone(),
                self.caller_identity(self.a()),
            ),
            DialPurpose::Transfer { keep, .. } => (
                self.legs[*keep].remote_sdp.clone(),
                self.caller_identity(*keep),
            ),
            DialPurpose::Originate => (
                super::outbound::own_description(),
                format!("<sip:dialtone@{}>", self.ctx.cfg.domain),
            ),
        };
        let caller_from = self.from_identity.clone().unwrap_or(caller_from);
        if source_sdp.is_none() && !matches!(purpose, DialPurpose::Initial) {
            return Err((488, "No SDP To Offer", purpose));
        }
        let slot = match self.media.allocate().await {
            Ok(s) => s,
            Err(_) => return Err((503, "No Media Ports", purpose)),
        };
        let local = self.media.local(slot);
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
                fork.who.clone(),
            );
            leg.credentials = fork.credentials.clone();
            leg.sdes = Sdes::new(fork.srtp.unwrap_or(self.ctx.cfg.srtp));
            let body = source_sdp.as_ref().map(|sdp| leg.offer_from(sdp, local));
            let template = self.invite_template(&fork, &call_id, &caller_from, max_forwards, body);
            leg.invite_template = template.clone();
            let id = self.legs.push(leg);
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
            hunt: None,
        });
        self.after(
            self.ctx.cfg.ring_timeout,
            CallEvent::RingTimeout { attempt },
        );
        Ok(())
    }

    /// The From of the legs we place for `leg`'s party: its display name and
    /// user, at our domain.
    fn caller_identity(&self, leg: LegId) -> String {
        let l = &self.legs[leg];
        // The party is the From of a request we received (UAS leg) and the
        // To of one we sent (UAC leg): from the request while it is still
        // held, else from the established dialog's remote party (an answered
        // caller's transaction is gone by the time it is transferred).
        let from_request = l
            .uas
            .as_ref()
            .map(|t| t.request().headers.clone())
            .or_else(|| l.invite_template.as_ref().map(|r| r.headers.clone()))
            .and_then(|h| {
                h.iter().find_map(|h| match h {
                    Header::From(f) if l.role == Role::Uas => NameAddr::parse(f.value()).ok(),
                    Header::To(t) if l.role == Role::Uac => NameAddr::parse(t.value()).ok(),
                    _ => None,
                })
            });
        let party = from_request.or_else(|| {
            l.dialog
                .as_ref()
                .and_then(|d| NameAddr::parse(&d.remote_party).ok())
        });
        let domain = &self.ctx.cfg.domain;
        match party {
            Some(na) => {
                let user = na
                    .uri
                    .auth
                    .as_ref()
                    .map(|a| a.user.clone())
                    .unwrap_or_else(|| "anonymous".into());
                match na.display_name {
                    Some(d) => format!("{d} <sip:{user}@{domain}>"),
                    None => format!("<sip:{user}@{domain}>"),
                }
            }
            None => format!("<sip:anonymous@{domain}>"),
        }
    }

    /// The INVITE for a fork, without Via (the transaction layer adds it).
    /// None when the fork's URI does not parse (a bad registration).
    fn invite_template(
        &self,
        fork: &Fork,
        call_id: &str,
        from: &str,
        max_forwards: u32,
        body: Option<Vec<u8>>,
    ) -> Option<Request> {
        use rsip::headers as h;
        let uri = dialtone_sip::message::uri::parse_uri(&fork.request_uri)
            .ok()?
            .uri;
        let mut headers: rsip::Headers = Default::default();
        for r in &fork.route {
            headers.push(Header::Route(h::Route::from(r.clone())));
        }
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
        if let Some(policy) = &self.ctx.cfg.timers {
            headers.extend(super::session_timer::offer_headers(policy));
        }
        let mut req = Request {
            method: Method::Invite,
            uri,
            version: rsip::Version::V2,
            headers,
            body: Vec::new(),
        };
        if let Some(body) = body {
            set_sdp_body(&mut req.headers, &mut req.body, body);
        }
        Some(req)
    }

    /// Our Contact for requests to `peer`.
    pub fn contact_for(&self, peer: &Peer) -> String {
        let local = self.ctx.layer.transports().local_for(peer);
        let host = local
            .map(|a| a.to_string())
            .unwrap_or_else(|| self.ctx.cfg.domain.clone());
        format!("<sip:dialtone@{host}{}>", peer.protocol.uri_param())
    }

    /// Sends an INVITE (a template without Via) on a leg; false on failure.
    pub(super) fn send_invite(&mut self, id: LegId, template: Request) -> bool {
        let peer = self.legs[id].peer;
        match self.ctx.layer.send_request(template, peer) {
            Ok(tx) => {
                self.legs[id].invite = Some(tx.request().clone());
                self.legs[id].invite_pending = true;
                self.watch_client(id, Pending::Invite, tx);
                true
            }
            Err(e) => {
                tracing::warn!(call = %self.id, leg = %id, error = %e, "INVITE not sent");
                false
            }
        }
    }
}

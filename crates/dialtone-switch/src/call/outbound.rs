//! Calls dialtone places itself ("have my assistant call Jeremy"): an AI
//! persona calls a customer, or a user's phone rings first and the customer
//! is dialled once the user answers (click-to-dial). The customer is
//! reached through the routes and trunks (or is a registered user); the
//! number presented as caller ID may pick the trunk. A persona's session
//! is opened while the customer's phone rings — with PCM audio, whatever
//! codec the customer answers with — so it can speak as soon as they
//! answer.

use dialtone_ai::Provider;
use dialtone_sip::sdp::Sdp;
use dialtone_store::Persona;

use super::actor::{Call, CallState, Connected, DialPurpose};
use super::command::Destination;
use super::event::LegId;
use crate::router::{Caller, Target};

/// Who talks to the customer.
#[derive(Clone, Debug)]
pub enum Talker {
    /// An AI persona, with values for its instruction variables.
    Persona {
        persona: Box<Persona>,
        variables: Vec<(String, String)>,
    },
    /// A user: their phone rings first, then the customer is dialled.
    User(String),
    /// A test call (`sip_call`): a tone for this long, listening for its echo.
    Probe(std::time::Duration),
}

/// A call to place, resolved by [`CallControl::originate`](crate::control::CallControl::originate).
#[derive(Clone, Debug)]
pub struct Outbound {
    /// The customer, as routed for `who`.
    pub customer: Target,
    /// The customer as given ("+15551234567").
    pub customer_label: String,
    pub talker: Talker,
    /// Presented as caller ID (the From user), e.g. a DID of the account.
    pub from_number: Option<String>,
    pub account_id: Option<String>,
    /// The authority the customer is dialled with.
    pub who: Caller,
}

/// The description dialtone offers when it places a call itself: PCMU
/// first (what trunks take), telephone-event; [`Leg::offer_from`] adds the
/// other codecs it can transcode.
pub(super) fn own_description() -> Option<Sdp> {
    let text = "v=0\r\no=dialtone 0 0 IN IP4 0.0.0.0\r\ns=dialtone\r\nc=IN IP4 0.0.0.0\r\n\
                t=0 0\r\nm=audio 9 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
                a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\n\
                a=sendrecv\r\n";
    Sdp::parse(text.as_bytes()).ok()
}

impl Call {
    /// Places the call: the persona's session opens while the customer
    /// rings; a user's phone is rung first.
    pub(super) async fn originate(&mut self, out: Outbound) {
        if let Some(n) = &out.from_number {
            self.from_identity = Some(format!("<sip:{n}@{}>", self.ctx.cfg.domain));
        }
        let first = match &out.talker {
            Talker::Persona { persona, variables } => {
                let provider: Provider = match persona.provider.parse() {
                    Ok(p) => p,
                    Err(_) => return self.fail_originate(500, "Agent Misconfigured"),
                };
                // PCM both ways: the customer's codec is not known yet.
                let formats = provider.formats(None);
                self.spawn_agent((**persona).clone(), provider, formats, None, variables)
                    .await;
                out.customer.clone()
            }
            Talker::Probe(d) => {
                self.probe = Some(*d);
                self.ctx.probes.placed(&self.id);
                out.customer.clone()
            }
            Talker::User(u) => {
                self.then_dial = Some((
                    Destination::Dial(out.customer_label.clone()),
                    out.who.clone(),
                ));
                Target::User(u.clone())
            }
        };
        let forks = match self.resolver().forks_for(&first).await {
            Ok(f) => f,
            Err((code, reason)) => return self.fail_originate(code, reason),
        };
        if let Err((code, reason, _)) = self.place(forks, DialPurpose::Originate, 70).await {
            self.fail_originate(code, reason);
        }
    }

    /// The first party answered a call dialtone placed.
    pub(super) async fn originate_answered(&mut self, leg: LegId) {
        self.parties.a = leg;
        let label = self.legs[leg].label.clone();
        if let Some((dest, who)) = self.then_dial.take() {
            // Click-to-dial: the user answered; now the customer.
            self.call_answered(&label, self.ctx.cfg.max_duration).await;
            // Admitted with the call (its customer was counted then).
            self.transfer_admitted(leg, dest, who, None, None, true)
                .await;
            return;
        }
        if let Some(duration) = self.probe {
            self.call_answered(&label, self.ctx.cfg.max_duration).await;
            return self.start_probe(leg, duration).await;
        }
        let Some(agent) = self.agent.as_ref() else {
            return self.call_answered(&label, self.ctx.cfg.max_duration).await;
        };
        let max = match agent.persona.max_duration_secs {
            0 => self.ctx.cfg.max_duration,
            s => std::time::Duration::from_secs(u64::from(s)),
        };
        let ready = agent.is_ready();
        let formats = agent.formats();
        self.parties.b = Some(Connected::Agent);
        self.answered_with(&label, max, ready.then_some(formats))
            .await;
    }

    /// A test call was answered: tone out, listen for the echo.
    async fn start_probe(&mut self, leg: LegId, duration: std::time::Duration) {
        let slot = self.legs[leg].slot;
        let format = dialtone_media::PortFormat::pcm16(super::probe::RATE);
        let attached = self
            .media
            .attach_port(slot, format, format, dialtone_media::PortOptions::default())
            .await;
        match attached {
            Ok((player, frames)) => {
                let events = self.events_tx.clone();
                tokio::spawn(async move {
                    let report = super::probe::run(player, frames, duration).await;
                    let _ = events.send(super::event::CallEvent::ProbeDone(report));
                });
            }
            Err(e) => {
                tracing::error!(call = %self.id, error = %e, "no audio port for the test call");
                self.hangup("media error", "system", 500).await;
            }
        }
    }

    /// The test call's time is up: record what it measured, hang up.
    pub(super) async fn probe_done(&mut self, report: super::probe::ProbeReport) {
        let slot = self.legs[self.a()].slot;
        let report = report.with_stats(self.media.stats(slot).as_ref());
        self.ctx.probes.ended(&self.id, Some(&report));
        self.record.probe = Some(report);
        self.hangup("test call complete", "system", 480).await;
    }

    /// A call dialtone placed could not be made.
    pub(super) fn fail_originate(&mut self, code: u16, reason: &str) {
        tracing::info!(call = %self.id, code, reason, "outbound call failed");
        self.record.outcome(super::progress::outcome_for(code));
        self.record.cause(&format!("{code} {reason}"));
        self.record.end_side("system");
        self.close_agent("outbound call failed");
        self.state = CallState::Ended;
    }
}

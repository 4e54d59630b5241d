//! The AI party of a call: a persona's realtime session on the caller's
//! audio port. A call routed to a persona answers the caller's offer with
//! the caller's own codec (G.711 passes straight through to a provider that
//! takes it), rings while the websocket opens, answers when the model is
//! ready, and from then on the agent ([`dialtone_ai::agent`]) hears the
//! caller and speaks through the port. When the model cannot be reached
//! the call goes to the persona's fallback, or gets 503; a transfer the
//! agent asks for bridges the caller away and closes the session.
//!
//! Files: `persona.rs` a persona's settings into an agent's, `tools.rs`
//! the agent's function calls into the tool registry, `sip.rs` the
//! caller's in-dialog requests while it talks to the agent.

mod persona;
mod sip;
mod tools;

use std::sync::Arc;
use std::time::Duration;

use dialtone_ai::agent::{self, AgentControl, AgentEvent, AgentHandle};
use dialtone_ai::{AudioFormat, Provider, G711};
use dialtone_media::{CallerTiming, PortFormat, PortOptions};
use dialtone_store::Persona;

use super::actor::{Call, CallState, Connected};
use super::command::Destination;
use super::event::CallEvent;
use super::live::CallNotice;
use crate::router::{Caller, Target};

pub use dialtone_ai::agent::AgentStats as AiStats;

/// How calls to personas talk to their realtime model (config `[ai]`).
#[derive(Clone, Debug)]
pub struct AgentSettings {
    /// Bounds the websocket handshake and the session setup together.
    pub connect_timeout: Duration,
    /// A tool that takes longer answers "timed out".
    pub tool_timeout: Duration,
    /// A running tool gets a filler after this long (ZERO: never).
    pub filler_after: Duration,
    /// Sessions are renewed after this long (OpenAI ends them at 60 min).
    pub renew_after: Duration,
    /// How long a hangup waits for the agent's last words at most.
    pub drain_limit: Duration,
}

impl Default for AgentSettings {
    fn default() -> Self {
        AgentSettings {
            connect_timeout: Duration::from_secs(5),
            tool_timeout: Duration::from_secs(10),
            filler_after: Duration::from_millis(1500),
            renew_after: Duration::from_secs(55 * 60),
            drain_limit: Duration::from_secs(15),
        }
    }
}

/// The agent as the call knows it.
pub struct AgentLeg {
    pub persona: Persona,
    handle: AgentHandle,
    /// Tells this agent's events from an earlier one's.
    generation: u64,
    /// Our answer to the caller, sent when the model is ready.
    answer: Option<Vec<u8>>,
    input: AudioFormat,
    output: AudioFormat,
    /// Closed: its events are ignored.
    closed: bool,
    /// A hangup waiting for the agent's last words, and its cause.
    hangup_cause: Option<String>,
    /// Its session is up.
    ready: bool,
    /// The call was placed by dialtone: the agent talks once the callee
    /// answers, and a model that cannot be reached ends the call.
    outbound: bool,
}

impl AgentLeg {
    pub fn is_ready(&self) -> bool {
        self.ready && !self.closed
    }

    /// The session's (input, output) audio formats.
    pub fn formats(&self) -> (AudioFormat, AudioFormat) {
        (self.input, self.output)
    }
}

/// The port format for a session's audio format.
fn port_format(f: AudioFormat) -> PortFormat {
    match f {
        AudioFormat::Pcmu => PortFormat::pcmu(),
        AudioFormat::Pcma => PortFormat::pcma(),
        AudioFormat::Pcm16 { rate } => PortFormat::pcm16(rate),
    }
}

impl Call {
    /// The call was routed to persona `name`: answer the caller's offer,
    /// ring, and open the model's session.
    pub(super) async fn start_agent(&mut self, name: &str) {
        let persona = match self.ctx.store.personas().get(name).await {
            Ok(Some(p)) => p,
            Ok(None) => {
                tracing::error!(call = %self.id, persona = name, "a number routes to a persona that does not exist");
                self.fail_initial(404, "No Such Agent");
                return;
            }
            Err(e) => {
                tracing::error!(call = %self.id, error = %e, "persona lookup failed");
                self.fail_initial(500, "Database Unavailable");
                return;
            }
        };
        let provider: Provider = match persona.provider.parse() {
            Ok(p) => p,
            Err(_) => {
                tracing::error!(call = %self.id, persona = name, provider = %persona.provider, "unknown provider");
                self.fail_initial(500, "Agent Misconfigured");
                return;
            }
        };
        let a = self.a();
        if self.legs[a].remote_sdp.is_none() {
            // Late offer: the agent needs the caller's codecs before it
            // opens its session.
            self.fail_initial(488, "AI Agents Need An SDP Offer");
            return;
        }
        let local = self.media.local(self.legs[a].slot);
        let Some(body) = self.legs[a].answer_alone(local) else {
            self.fail_initial(488, "Not Acceptable Here");
            return;
        };
        self.apply_leg_plan(a).await;
        let law = match self.legs[a]
            .codec
            .as_ref()
            .map(|c| c.encoding.to_ascii_uppercase())
        {
            Some(e) if e == "PCMU" => Some(G711::Ulaw),
            Some(e) if e == "PCMA" => Some(G711::Alaw),
            _ => None,
        };
        let (input, output) = provider.formats(law);
        self.ring_caller();
        self.spawn_agent(persona, provider, (input, output), Some(body), &[])
            .await;
    }

    /// Starts persona `persona`'s agent with these session formats; `answer`
    /// is our SDP for an inbound caller (None for a call dialtone places),
    /// `extra` fills more instruction variables.
    pub(super) async fn spawn_agent(
        &mut self,
        persona: Persona,
        provider: Provider,
        (input, output): (AudioFormat, AudioFormat),
        answer: Option<Vec<u8>>,
        extra: &[(String, String)],
    ) {
        let mut vars = persona::Variables::of(self, &persona).await;
        vars.extra = extra.to_vec();
        let mut cfg =
            persona::agent_config(&persona, provider, &self.ctx.cfg.ai, input, output, &vars);
        cfg.external = persona::external_servers(&self.ctx.store, &persona).await;
        self.next_attempt += 1;
        let generation = self.next_attempt;
        let events = self.events_tx.clone();
        let sink: agent::EventSink =
            Box::new(move |event| events.send(CallEvent::Agent { generation, event }).is_ok());
        let dispatcher = Arc::new(tools::CallTools::new(
            self.ctx.clone(),
            &persona,
            &self.id,
            &vars.caller_number,
        ));
        let handle = agent::spawn(cfg, dispatcher, sink, self.ctx.ai.clone());
        self.live.set_account(Some(persona.account_id.clone()));
        self.record.rec.persona = Some(persona.name.clone());
        if answer.is_some() {
            self.record.rec.callee = format!("persona:{}", persona.name);
        }
        tracing::info!(call = %self.id, persona = %persona.name, %provider, ?input, ?output, "connecting the AI agent");
        self.agent = Some(AgentLeg {
            outbound: answer.is_none(),
            persona,
            handle,
            generation,
            answer,
            input,
            output,
            ready: false,
            closed: false,
            hangup_cause: None,
        });
    }

    /// 180 Ringing to the caller while the agent connects.
    fn ring_caller(&mut self) {
        let a = self.a();
        let Some(tx) = self.legs[a].uas.as_ref() else {
            return;
        };
        let mut r = tx.response(180);
        r.headers
            .push(rsip::Header::Contact(rsip::headers::Contact::from(
                self.contact_for(&self.legs[a].peer),
            )));
        let _ = tx.respond(r);
        self.legs[a].state = super::leg::LegState::Early;
    }

    pub(super) async fn on_agent_event(&mut self, generation: u64, event: AgentEvent) {
        let current = self
            .agent
            .as_ref()
            .is_some_and(|a| a.generation == generation && !a.closed);
        if !current || self.state == CallState::Ended {
            return;
        }
        match event {
            AgentEvent::Ready => self.agent_ready().await,
            AgentEvent::Failed { reason } => self.agent_failed(reason).await,
            AgentEvent::Transcript { side, text } => {
                let line = self.record.transcript_line(side.as_str(), &text);
                self.notify(CallNotice::Transcript(line));
            }
            AgentEvent::Dtmf(digit) => self.notify(CallNotice::Dtmf { digit }),
            AgentEvent::BargeIn => tracing::debug!(call = %self.id, "barge-in"),
            AgentEvent::Reconnected => {
                tracing::info!(call = %self.id, "AI agent reconnected to its model")
            }
            AgentEvent::HangupReady => {
                let cause = self
                    .agent
                    .as_mut()
                    .and_then(|a| a.hangup_cause.take())
                    .unwrap_or_else(|| "agent hangup".into());
                self.hangup(&cause, "callee", 480).await;
            }
            AgentEvent::IdleHangup => self.hangup("idle timeout", "system", 480).await,
            AgentEvent::ExternalToolsUnavailable { server, reason } => {
                tracing::warn!(call = %self.id, %server, %reason,
                    "external MCP server unavailable: the agent goes on without its tools");
                self.record.mcp_failures.push((server, reason));
            }
        }
    }

    /// The model is ready: answer the caller and give the agent its audio
    /// (an outbound call: give it the audio once the callee has answered).
    async fn agent_ready(&mut self) {
        let Some(agent) = self.agent.as_mut() else {
            return;
        };
        agent.ready = true;
        if agent.outbound {
            let (input, output) = (agent.input, agent.output);
            if self.parties.b == Some(Connected::Agent) {
                self.attach_agent_audio(input, output).await;
            }
            return;
        }
        if self.state != CallState::Dialing {
            return;
        }
        let Some(body) = agent.answer.take() else {
            return;
        };
        let (input, output) = (agent.input, agent.output);
        let max = match agent.persona.max_duration_secs {
            0 => self.ctx.cfg.max_duration,
            s => Duration::from_secs(u64::from(s)),
        };
        let label = format!("persona:{}", agent.persona.name);
        if !self.answer_caller_ok(body) {
            return;
        }
        self.parties.b = Some(Connected::Agent);
        self.answered_with(&label, max, Some((input, output))).await;
    }

    /// Starts the audio port on the caller's slot and hands it to the agent.
    pub(super) async fn attach_agent_audio(&mut self, input: AudioFormat, output: AudioFormat) {
        let slot = self.legs[self.a()].slot;
        let options = PortOptions {
            caller: CallerTiming::Immediate,
        };
        let attached = self
            .media
            .attach_port(slot, port_format(input), port_format(output), options)
            .await;
        match attached {
            Ok((player, frames)) => {
                if let Some(agent) = &self.agent {
                    agent.handle.send(AgentControl::Audio { player, frames });
                }
            }
            Err(e) => {
                tracing::error!(call = %self.id, error = %e, "no audio port for the agent");
                self.hangup("media error", "system", 500).await;
            }
        }
    }

    /// The model cannot be reached (before the answer) or was lost (after):
    /// the persona's fallback takes the caller, or the call ends.
    async fn agent_failed(&mut self, reason: String) {
        let Some(agent) = self.agent.as_mut() else {
            return;
        };
        agent.closed = true;
        if agent.outbound {
            // Nobody is waiting for a fallback: the call ends.
            tracing::warn!(call = %self.id, %reason, "AI agent of an outbound call failed");
            self.record.ai_failure = Some(reason.clone());
            self.hangup(&format!("model unreachable: {reason}"), "system", 503)
                .await;
            return;
        }
        let fallback = agent.persona.fallback.clone();
        let persona = agent.persona.name.clone();
        tracing::warn!(call = %self.id, %persona, %reason, ?fallback, "AI agent failed");
        self.record.ai_failure = Some(reason.clone());
        let dest = fallback.as_deref().map(Destination::parse);
        let who = Caller::Persona(persona);
        match (self.state, dest) {
            (CallState::Dialing, Some(Ok(dest))) => {
                let target = match dest {
                    Destination::Uri(_) => Err((403, "Fallback To A URI Not Allowed")),
                    d => self.resolver().target_of(&d, &who).await,
                };
                match target {
                    Ok(target) => {
                        let ask = crate::admission::Ask {
                            who: &who,
                            account: None,
                            user: None,
                            target: Some(&target),
                        };
                        let admitted = crate::admission::admit(
                            &self.ctx.admission,
                            &self.ctx.store,
                            &ask,
                            &self.permits,
                        )
                        .await;
                        match admitted {
                            Ok(p) => {
                                self.permits.absorb(p);
                                self.record.rec.callee = dest_label(&target);
                                self.dial_target(target, 69).await;
                            }
                            Err(r) => {
                                self.record.cause(&format!(
                                    "model unreachable: {reason}; fallback: {}",
                                    r.detail
                                ));
                                self.fail_initial(r.status, r.reason);
                            }
                        }
                    }
                    Err((code, why)) => {
                        self.record.cause(&format!(
                            "model unreachable: {reason}; fallback: {code} {why}"
                        ));
                        self.fail_initial(code, why);
                    }
                }
            }
            (CallState::Dialing, _) => {
                self.record.cause(&format!("model unreachable: {reason}"));
                self.fail_initial(503, "AI Agent Unavailable");
            }
            (CallState::Answered, Some(Ok(dest))) => {
                self.media.detach_port().await;
                let a = self.a();
                self.transfer(a, dest, who, None, None).await;
            }
            _ => {
                self.hangup(&format!("model connection lost: {reason}"), "system", 480)
                    .await;
            }
        }
    }

    /// A hangup that lets the agent finish speaking first; false when there
    /// is no agent talking (hang up now).
    pub(super) fn agent_hangup_after_playout(&mut self, cause: &str) -> bool {
        if self.parties.b != Some(Connected::Agent) {
            return false;
        }
        let Some(agent) = self.agent.as_mut().filter(|a| !a.closed) else {
            return false;
        };
        agent.hangup_cause = Some(cause.to_string());
        agent.handle.send(AgentControl::HangupAfterPlayout)
    }

    /// Ends the agent's session (the caller was transferred away, or the
    /// call ends).
    pub(super) fn close_agent(&mut self, why: &str) {
        if let Some(agent) = self.agent.as_mut().filter(|a| !a.closed) {
            agent.closed = true;
            agent.handle.send(AgentControl::Close);
            tracing::debug!(call = %self.id, why, "AI agent closed");
        }
    }

    /// A transfer the failed agent's fallback asked for did not work: the
    /// caller has nobody to talk to.
    pub(super) async fn fallback_failed(&mut self, code: u16, reason: &str) -> bool {
        let failed = self.parties.b == Some(Connected::Agent)
            && self.agent.as_ref().is_some_and(|a| a.closed);
        if failed {
            self.hangup(
                &format!("model lost; fallback failed: {code} {reason}"),
                "system",
                480,
            )
            .await;
        }
        failed
    }
}

fn dest_label(t: &Target) -> String {
    match t {
        Target::User(u) => format!("user:{u}"),
        Target::Trunk { number, .. } => number.clone(),
        Target::Persona(p) => format!("persona:{p}"),
        Target::Queue(q) => format!("queue:{q}"),
    }
}

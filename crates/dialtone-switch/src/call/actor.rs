//! The Call actor's task: its state, the loop that reads its one channel
//! (how a call is started and fed: [`super::launch`]),
//! and how a call ends — every live leg released (BYE, CANCEL or a final
//! response), the AI agent closed, media freed, the record completed, the
//! registry entries gone.

use std::sync::Arc;

use dialtone_sip::transaction::{ClientEvent, ServerEvent, ServerTransaction};
use rsip::Method;
use tokio::sync::{mpsc, oneshot};

use super::agent::AgentLeg;
use super::command::{CommandOutcome, CommandResult};
use super::event::{CallEvent, LegId, Pending};
use super::ids::Legs;
use super::launch::Start;
use super::leg::{request_sdp, Leg, LegState, MediaPlan, Role};
use super::live::{CallNotice, Live};
use super::media::{CallMedia, Slot};
use super::record::Record;
use super::registry::CallHandle;
use super::sdes::Sdes;
use super::transfer::ReferSub;
use super::{CallContext, Origin};
use crate::admission::Permits;
pub(crate) use crate::with_reason;

/// The call's life, RFC 3261 terms where they apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallState {
    /// Legs are being placed (or an AI agent is connecting); the caller has
    /// not been answered.
    Dialing,
    /// Caller and callee are connected.
    Answered,
    Ended,
}

impl CallState {
    pub fn as_str(self) -> &'static str {
        match self {
            CallState::Dialing => "dialing",
            CallState::Answered => "answered",
            CallState::Ended => "ended",
        }
    }
}

/// Who the caller is talking to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connected {
    /// Another SIP leg, through the bridge.
    Sip(LegId),
    /// The call's AI agent, through the audio port.
    Agent,
}

/// The two parties of the conversation.
pub struct Parties {
    /// The caller: the SIP leg that started the call.
    pub a: LegId,
    /// The party the caller is connected to, once answered.
    pub b: Option<Connected>,
}

/// Why the current outbound attempt was made.
pub enum DialPurpose {
    /// Reaching the callee of a new call.
    Initial,
    /// A call dialtone places: the first party to answer becomes the call's
    /// `a` party.
    Originate,
    /// A transfer: connect `keep` to whoever answers, then release the
    /// party it was talking to; `reply` hears how it went.
    Transfer {
        keep: LegId,
        reply: Option<oneshot::Sender<CommandResult>>,
        /// The REFER subscription to report progress to with NOTIFY, if
        /// any.
        notify: Option<ReferSub>,
    },
}

/// An outbound attempt: the forks placed in parallel and the one RTP slot
/// they share (only one of them wins).
pub struct Dial {
    pub attempt: u64,
    pub forks: Vec<LegId>,
    pub slot: Slot,
    pub purpose: DialPurpose,
    pub winner: Option<LegId>,
    /// A queue's members still to ring after this attempt.
    pub hunt: Option<super::queue::Hunt>,
}

/// A request being relayed from one party to the other.
pub struct Relay {
    pub from: LegId,
    pub to: LegId,
    pub tx: ServerTransaction,
    pub method: Method,
}

/// A re-INVITE of our own (hold/resume) waiting for its answer.
pub struct OwnRequest {
    pub leg: LegId,
    pub reply: oneshot::Sender<CommandResult>,
}

/// The in-dialog requests in flight: at most one of each, so that a second
/// re-INVITE meets 491 (RFC 3261 §14.1).
#[derive(Default)]
pub struct InFlight {
    pub relay: Option<Relay>,
    pub own: Option<OwnRequest>,
}

impl InFlight {
    pub fn busy(&self) -> bool {
        self.relay.is_some() || self.own.is_some()
    }
}

pub struct Call {
    pub id: Arc<str>,
    pub ctx: Arc<CallContext>,
    pub handle: CallHandle,
    pub events_tx: mpsc::UnboundedSender<CallEvent>,
    pub legs: Legs,
    pub parties: Parties,
    pub dial: Option<Dial>,
    pub in_flight: InFlight,
    pub media: CallMedia,
    /// The AI agent, when the call was routed to a persona.
    pub agent: Option<AgentLeg>,
    pub state: CallState,
    pub record: Record,
    pub origin: Origin,
    pub next_attempt: u64,
    /// Record the call's audio once it is answered (the number's or
    /// route's flag, or recording.all).
    pub record_audio: bool,
    /// What the call shows the outside (snapshots, notices).
    pub live: Live,
    /// The queue and member that answered, when a queue was rung.
    pub queue_member: Option<(String, String)>,
    /// dialtone placed this call (there is no inbound caller).
    pub placed: bool,
    /// The From of the legs this call places, when not the caller's.
    pub from_identity: Option<String>,
    /// A test call (`sip_call`) and how long its tone plays.
    pub probe: Option<std::time::Duration>,
    /// Click-to-dial: whom to dial once the first party answers.
    pub then_dial: Option<(super::command::Destination, crate::router::Caller)>,
    /// What the call holds of the call limits, until it ends.
    pub permits: Permits,
    /// What the transfer being dialled holds: the call's once it answers,
    /// given back if it fails.
    pub transfer_permits: Option<Permits>,
    /// The call's timers (ring, maximum duration, session refresh), which
    /// its loop waits on beside its channel.
    pub timers: super::timers::Timers,
    /// A transfer's destination is being resolved off the actor
    /// ([`CallEvent::Resolved`] ends it): no other transfer starts meanwhile.
    pub resolving: bool,
}

impl Call {
    pub(super) async fn run(&mut self, start: Start, mut rx: mpsc::UnboundedReceiver<CallEvent>) {
        // Each step is boxed: this future lives as long as the call, and
        // unboxed it would be as large as the largest handler's (13 KiB),
        // where boxed a handler's state exists only while it runs.
        match start {
            Start::Inbound { invite, target } => {
                if Box::pin(self.accept_caller(invite)).await {
                    self.record.save(&self.ctx.records);
                    Box::pin(self.dial_initial(target)).await;
                }
            }
            Start::Outbound(out) => {
                self.record.save(&self.ctx.records);
                Box::pin(self.originate(*out)).await;
            }
        }
        self.publish();
        while self.state != CallState::Ended {
            let ev = tokio::select! {
                biased;
                ev = rx.recv() => match ev {
                    Some(ev) => ev,
                    None => break,
                },
                ev = self.timers.fired() => ev,
            };
            Box::pin(self.on_event(ev)).await;
            self.publish();
        }
        Box::pin(self.finish()).await;
        Box::pin(self.settle(rx)).await;
    }

    /// The caller's leg.
    pub fn a(&self) -> LegId {
        self.parties.a
    }

    /// The SIP leg the caller is connected to, if it is one.
    pub fn b_leg(&self) -> Option<LegId> {
        match self.parties.b {
            Some(Connected::Sip(b)) => Some(b),
            _ => None,
        }
    }

    /// Takes the caller's INVITE: its RTP endpoint, its leg, its events.
    /// Answers and returns false when the call cannot even start.
    async fn accept_caller(&mut self, mut invite: ServerTransaction) -> bool {
        if let Some(min_se) = self
            .ctx
            .cfg
            .timers
            .as_ref()
            .and_then(|p| super::session_timer::too_small(invite.request(), p))
        {
            let mut r = with_reason(invite.response(422), "Session Interval Too Small");
            r.headers.push(min_se);
            let _ = invite.respond(r);
            self.state = CallState::Ended;
            return false;
        }
        let sdp = match request_sdp(invite.request()) {
            Some(Ok(sdp)) => Some(sdp),
            Some(Err(e)) => {
                let _ = invite.respond(with_reason(invite.response(400), &format!("Bad SDP: {e}")));
                self.state = CallState::Ended;
                return false;
            }
            // Late offer: the callee's 2xx will carry the offer.
            None => None,
        };
        let sdes = Sdes::new(self.origin.srtp.unwrap_or(self.ctx.cfg.srtp));
        if let Some(reason) = sdp.as_ref().and_then(|s| sdes.check_offer_sdp(s).err()) {
            tracing::info!(call = %self.id, policy = %sdes.policy, reason, "offer refused by the caller's SRTP policy");
            let _ = invite.respond(with_reason(invite.response(488), reason));
            self.state = CallState::Ended;
            return false;
        }
        let slot = match self.media.allocate().await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(call = %self.id, error = %e, "no RTP ports for the caller");
                let _ = invite.respond(with_reason(invite.response(503), "No Media Ports"));
                self.state = CallState::Ended;
                return false;
            }
        };
        if let Some(sdp) = &sdp {
            self.apply_plan(slot, &MediaPlan::of(sdp, None)).await;
        }
        let call_id = super::dial::call_id_of(invite.request());
        let local_ip = self.media.local(slot).ip();
        let mut leg = Leg::new(
            Role::Uas,
            invite.source(),
            call_id.clone(),
            slot,
            local_ip,
            self.record.caller_label(),
            self.origin.caller.clone(),
        );
        leg.remote_sdp = sdp;
        leg.sdes = sdes;
        let a = LegId(0);
        self.watch_server(a, &mut invite);
        leg.uas = Some(invite);
        self.parties.a = self.legs.push(leg);
        self.ctx.registry.add_leg(&call_id, &self.handle);
        true
    }

    /// Leg `leg`'s party described its media in `sdp`, an answer to our
    /// offer when `answer`, else an offer: remember it and reconfigure the
    /// endpoint facing it.
    pub async fn took_description(
        &mut self,
        leg: LegId,
        sdp: dialtone_sip::sdp::Sdp,
        answer: bool,
    ) {
        if answer {
            self.legs[leg].took_answer(&sdp);
        }
        self.legs[leg].remote_sdp = Some(sdp);
        self.apply_leg_plan(leg).await;
    }

    /// Our answer to leg `leg`'s offer, made from the other party's
    /// description `source`; the endpoint facing `leg` takes the codec
    /// agreed (which may differ from the other party's: then the bridge
    /// transcodes).
    pub async fn answer_leg(&mut self, leg: LegId, source: &dialtone_sip::sdp::Sdp) -> Vec<u8> {
        let local = self.media.local(self.legs[leg].slot);
        let body = self.legs[leg].answer_from(source, local);
        self.apply_leg_plan(leg).await;
        body
    }

    pub async fn apply_leg_plan(&mut self, leg: LegId) {
        if let Some(plan) = self.legs[leg].media_plan() {
            self.apply_plan(self.legs[leg].slot, &plan).await;
        }
    }

    pub async fn apply_plan(&mut self, slot: Slot, plan: &MediaPlan) {
        let (rtp, rtcp, send, expect, clock) = (
            plan.rtp,
            plan.rtcp,
            plan.send,
            plan.expect_rtp,
            plan.clock_rate,
        );
        let format = plan.format.clone();
        let srtp = plan.srtp.clone();
        self.media
            .configure(slot, |ep| {
                if let Some(mode) = srtp {
                    ep.set_srtp(mode);
                }
                ep.set_remote(rtp, rtcp);
                ep.set_send(send);
                ep.set_expect_rtp(expect);
                ep.set_clock_rate(clock);
                if let Some(f) = format {
                    ep.set_format(f);
                }
            })
            .await;
        if let Some(c) = &plan.codec {
            self.record.rec.codecs = Some(c.clone());
        }
    }

    async fn on_event(&mut self, ev: CallEvent) {
        match ev {
            CallEvent::Command(cmd, reply) => self.on_command(cmd, reply).await,
            CallEvent::Request(tx) => self.on_request(*tx).await,
            CallEvent::StrayResponse(resp) => self.on_stray_response(resp).await,
            CallEvent::Server { leg, event } => self.on_server_event(leg, event).await,
            CallEvent::Client {
                leg,
                pending,
                event,
            } => self.on_client_event(leg, pending, event).await,
            CallEvent::Media(dialtone_media::MediaEvent::RtpTimeout {
                endpoint,
                silent_for,
            }) => {
                if self.state == CallState::Answered {
                    tracing::info!(call = %self.id, endpoint, ?silent_for, "RTP timeout, hanging up");
                    self.hangup("rtp timeout", "system", 408).await;
                }
            }
            CallEvent::Agent { generation, event } => self.on_agent_event(generation, event).await,
            CallEvent::RingTimeout { attempt } => self.on_ring_timeout(attempt).await,
            CallEvent::ProbeDone(report) => self.probe_done(report).await,
            CallEvent::MaxDuration => {
                if self.state != CallState::Ended {
                    self.hangup("max duration", "system", 408).await;
                }
            }
            CallEvent::Shutdown => self.hangup("shutdown", "system", 503).await,
            CallEvent::Resolved(r) => {
                let (step, resolved) = *r;
                self.transfer_resolved(step, resolved).await;
            }
            CallEvent::HandOver { pick, reply } => self.hand_over(pick, reply).await,
            CallEvent::SessionTick => self.on_session_tick().await,
        }
    }

    async fn on_server_event(&mut self, leg: LegId, event: ServerEvent) {
        let a = self.a();
        match event {
            ServerEvent::Cancelled if leg == a && self.state == CallState::Dialing => {
                self.record.end_side("caller");
                self.record.cause("CANCEL");
                self.record.outcome("cancelled");
                self.cancel_dial().await;
                self.close_agent("caller cancelled");
                self.answer_caller_failure(487, "Request Terminated");
                self.state = CallState::Ended;
            }
            ServerEvent::Cancelled => {}
            ServerEvent::Ack(ack) => {
                if leg == a {
                    self.late_answer(&ack).await;
                }
            }
            ServerEvent::Timeout if leg == a && self.state == CallState::Answered => {
                // §13.3.1.4: our 2xx was never ACKed.
                self.hangup("no ACK", "system", 408).await;
            }
            ServerEvent::Timeout => {}
            ServerEvent::TransportError(e) => {
                tracing::info!(call = %self.id, %leg, error = %e, "transport error on a leg");
                if leg == a {
                    self.hangup("transport error", "caller", 503).await;
                }
            }
        }
    }

    async fn on_client_event(&mut self, leg: LegId, pending: Pending, event: ClientEvent) {
        match pending {
            Pending::Invite => self.on_invite_event(leg, event).await,
            Pending::Relay => self.on_relay_event(leg, event).await,
            Pending::Own => self.on_own_event(leg, event).await,
            Pending::Refresh => self.on_refresh_event(leg, event).await,
            Pending::Bye | Pending::Cancel | Pending::Notify => {
                if let ClientEvent::Final(r) = &event {
                    tracing::debug!(call = %self.id, %leg, ?pending, status = r.status_code.code(), "answered");
                }
            }
        }
    }

    /// Answers the caller's pending INVITE with a failure.
    pub fn answer_caller_failure(&mut self, status: u16, reason: &str) {
        let a = self.a();
        if let Some(tx) = self.legs.get_mut(a).and_then(|l| l.uas.take()) {
            let _ = tx.respond(with_reason(tx.response(status), reason));
        }
        if let Some(l) = self.legs.get_mut(a) {
            l.state = LegState::Ended;
        }
    }

    /// Ends the call from any state: BYE to connected legs, CANCEL to
    /// ringing ones, `caller_status` to an unanswered caller, and the AI
    /// agent closed.
    pub async fn hangup(&mut self, cause: &str, side: &str, caller_status: u16) {
        if self.state == CallState::Ended {
            return;
        }
        self.record.end_side(side);
        self.record.cause(cause);
        if self.state == CallState::Dialing {
            self.record.outcome(if cause == "shutdown" {
                "failed"
            } else {
                "cancelled"
            });
        }
        self.cancel_dial().await;
        self.close_agent(cause);
        let reason = match caller_status {
            503 => "Service Unavailable",
            408 => "Request Timeout",
            _ => "Request Terminated",
        };
        for id in self.legs.ids() {
            match (self.legs[id].role, self.legs[id].state) {
                (_, LegState::Connected) => self.send_bye(id),
                (Role::Uas, LegState::Calling | LegState::Early) => {
                    self.answer_caller_failure(caller_status, reason)
                }
                _ => {}
            }
        }
        if let Some(relay) = self.in_flight.relay.take() {
            let _ = relay.tx.reply(487);
        }
        if let Some(own) = self.in_flight.own.take() {
            let _ = own.reply.send(Ok(CommandOutcome::Done));
        }
        self.state = CallState::Ended;
    }

    /// Sends BYE on a connected leg and forgets it.
    pub fn send_bye(&mut self, id: LegId) {
        let leg = &mut self.legs[id];
        let Some(dialog) = leg.dialog.as_mut() else {
            return;
        };
        let mut bye = dialog.request(Method::Bye);
        bye.headers
            .push(rsip::Header::UserAgent(rsip::headers::UserAgent::from(
                self.ctx.cfg.user_agent.as_str(),
            )));
        leg.state = LegState::Ending;
        match self.ctx.layer.send_request(bye, leg.peer) {
            Ok(tx) => self.watch_client(id, Pending::Bye, tx),
            Err(e) => tracing::warn!(call = %self.id, leg = %id, error = %e, "BYE not sent"),
        }
    }

    /// Starts the call's recording if it is wanted: called when the call
    /// is answered. A recording that cannot be created is logged and the
    /// call goes on unrecorded.
    pub async fn start_recording(&mut self) {
        if !self.record_audio || self.record.rec.recording.is_some() {
            return;
        }
        let policy = &self.ctx.cfg.recording;
        let path = policy.dir.join(format!("{}.wav", self.id));
        match self.media.start_recording(&path, policy.sample_rate).await {
            Ok(()) => self.record.rec.recording = Some(path.display().to_string()),
            Err(e) => tracing::error!(call = %self.id, error = %e, "recording not started"),
        }
    }

    /// Publishes the call's current state to its handle (snapshots for
    /// listings, notices for subscribers).
    pub fn publish(&mut self) {
        self.live.update(
            self.state,
            &self.record,
            &self.legs,
            self.agent.as_ref().map(|a| a.persona.name.as_str()),
        );
    }

    pub fn notify(&self, notice: CallNotice) {
        self.live.notify(notice);
    }

    async fn finish(&mut self) {
        self.timers = Default::default();
        self.close_agent("call ended");
        if self.probe.is_some() && self.record.probe.is_none() {
            self.ctx.probes.ended(&self.id, None);
        }
        self.queue_call_ended().await;
        for leg in self.legs.iter_mut() {
            leg.state = LegState::Ended;
            if let Some(tx) = leg.uas.take() {
                let _ = tx.reply(500);
            }
        }
        let stats: Vec<_> = self
            .legs
            .iter()
            .map(|l| (l.label.clone(), self.media.stats(l.slot)))
            .collect();
        self.media.release_all().await;
        self.record.rec.account_id = self.live.account().map(str::to_string);
        self.record.finish(self.legs.as_slice(), &stats);
        self.record.save(&self.ctx.records);
        self.state = CallState::Ended;
        // The call limits' counts go back before the call leaves the registry.
        self.transfer_permits = None;
        self.permits = Permits::default();
        self.publish();
        self.notify(CallNotice::Ended {
            outcome: self.record.rec.outcome.clone().unwrap_or_default(),
            cause: self.record.rec.hangup_cause.clone().unwrap_or_default(),
        });
        // Every Call-ID this call registered is one of its legs'.
        self.ctx.registry.remove(
            &self.handle,
            self.legs.iter().map(|l| l.sip_call_id.as_str()),
        );
        tracing::info!(call = %self.id, outcome = ?self.record.rec.outcome, cause = ?self.record.rec.hangup_cause, "call ended");
    }
}

//! Transfers (RFC 3515 REFER, and the Transfer and Bridge commands). A
//! blind transfer places a new leg for the party that stays; only when it
//! answers is that party re-bridged and the other released, so a failed
//! transfer leaves the call as it was. An attended transfer (REFER with
//! Replaces, RFC 3891) takes the named call's other party into this call,
//! bridges it with ours, and releases both transferor legs. A REFER's
//! progress goes back to the transferor in NOTIFYs with sipfrag bodies.
//! Every blind transfer, whoever asked (REFER, REST, MCP, an AI agent), is
//! planned by [`Call::plan_transfer`]: the new leg is dialled with the
//! asking party's authority and passes the call limits
//! ([`crate::admission`]); a REFER the policy or a limit refuses is
//! answered 403/503 itself, and no INVITE leaves.

use std::time::Duration;

use dialtone_sip::message::header;
use dialtone_sip::message::headers::ReferTo;
use dialtone_sip::transaction::ServerTransaction;
use rsip::prelude::HeadersExt;
use rsip::{Header, Method};
use tokio::sync::oneshot;

use super::actor::{with_reason, Call, CallState, Connected, DialPurpose};
use super::command::{Authority, CommandError, CommandOutcome, CommandResult, Destination};
use super::dial::Fork;
use super::event::{CallEvent, HandedLeg, LegId, Pending, Pick};
use super::leg::LegState;
use super::live::CallNotice;
use crate::admission::{Limited, Permits, Refusal};
use crate::router::Caller;

/// The party a front end's transfer is dialled as.
pub fn authority_caller(by: &Authority) -> Caller {
    match by {
        Authority::Operator => Caller::Operator,
        Authority::Persona(p) => Caller::Persona(p.clone()),
        Authority::Account(a) => Caller::Account(a.clone()),
    }
}

/// The implicit subscription a REFER creates (RFC 3515 §2.4.4): the leg
/// the REFER came on, and the Event id its NOTIFYs carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReferSub {
    pub leg: LegId,
    /// The REFER's CSeq number for the second and later REFERs in the
    /// dialog, None for the first (RFC 3515 §2.4.6: NOTIFYs for the second
    /// and subsequent REFERs MUST carry `id`, the first's MAY).
    pub id: Option<u32>,
}

/// How long a call waits for another to hand a leg over.
const HAND_OVER_WAIT: Duration = Duration::from_secs(2);

/// A transfer ready to dial: where, and what it holds of the call limits.
pub(super) struct TransferPlan {
    how: Placing,
    permits: Permits,
}

/// A transfer waiting for its destination to be resolved: who stays,
/// where to, on whose authority, and who hears how it went.
pub struct TransferStep {
    pub(super) keep: LegId,
    pub(super) to: Destination,
    pub(super) who: Caller,
    pub(super) reply: Option<oneshot::Sender<CommandResult>>,
    pub(super) notify: Option<ReferSub>,
    /// The REFER that asked, answered once the destination is known.
    pub(super) refer: Option<ServerTransaction>,
}

/// A transfer's destination worked out by [`super::resolve::Resolver::transfer`].
pub struct ResolvedTransfer {
    /// The legs to place, or why there are none.
    pub(super) how: Result<Placing, (u16, &'static str)>,
    /// The parties the call limits count it against, as stored now; None
    /// when it is not to be counted (already admitted with the call).
    pub(super) parties: Option<Vec<Limited>>,
}

pub(super) enum Placing {
    Queue(String),
    Forks(Vec<Fork>),
}

/// Why a transfer is not dialled.
pub enum PlanError {
    /// The transfer policy or a call limit refuses it: a REFER is answered
    /// with this itself.
    Refused(Refusal),
    /// The destination cannot be reached (reported like a failed leg).
    Failed(u16, &'static str),
}

impl Call {
    /// Starts a blind transfer of `keep` to `to`, dialled with the rights
    /// of `who` (the party or front end that asked).
    pub(super) async fn transfer(
        &mut self,
        keep: LegId,
        to: Destination,
        who: Caller,
        reply: Option<oneshot::Sender<CommandResult>>,
        notify: Option<ReferSub>,
    ) {
        self.transfer_admitted(keep, to, who, reply, notify, false)
            .await;
    }

    /// [`Call::transfer`]; `admitted`: the call limits already counted it
    /// (the customer of a click-to-dial call, admitted with the call).
    pub(super) async fn transfer_admitted(
        &mut self,
        keep: LegId,
        to: Destination,
        who: Caller,
        reply: Option<oneshot::Sender<CommandResult>>,
        notify: Option<ReferSub>,
        admitted: bool,
    ) {
        if self.dial.is_some() || self.resolving {
            // The transfer in progress keeps what it holds.
            let pending = self.transfer_permits.take();
            self.transfer_failed(keep, 491, "Transfer Already In Progress", reply, notify)
                .await;
            self.transfer_permits = pending;
            return;
        }
        let step = TransferStep {
            keep,
            to,
            who,
            reply,
            notify,
            refer: None,
        };
        self.resolve_transfer(step, !admitted);
    }

    /// Works out a transfer for `who` and checks it: the one check every
    /// transfer passes, whichever front end asked. The destination is
    /// resolved ([`super::resolve::Resolver::transfer`]) in a task of its own, so the call
    /// keeps answering its events meanwhile; what it finds comes back as
    /// [`CallEvent::Resolved`], where the call limits are applied and the
    /// legs placed ([`Call::transfer_resolved`]). `refer`: the REFER that
    /// asked, answered then (403/503 if refused, else 202).
    pub(super) fn resolve_transfer(&mut self, step: TransferStep, admit: bool) {
        self.resolving = true;
        let (resolver, events) = (self.resolver(), self.events_tx.clone());
        tokio::spawn(async move {
            let resolved = resolver.transfer(&step.to, &step.who, admit).await;
            let _ = events.send(CallEvent::Resolved(Box::new((step, resolved))));
        });
    }

    /// A transfer's destination is resolved: apply the call limits (against
    /// what the call holds now), answer the REFER that asked, and dial.
    pub(super) async fn transfer_resolved(
        &mut self,
        step: TransferStep,
        resolved: Result<ResolvedTransfer, PlanError>,
    ) {
        self.resolving = false;
        let TransferStep {
            keep,
            to,
            reply,
            notify,
            refer,
            ..
        } = step;
        let plan = resolved.and_then(|r| {
            let permits = match r.parties {
                Some(parties) => self
                    .ctx
                    .admission
                    .admit(&parties, &self.permits)
                    .map_err(PlanError::Refused)?,
                None => Permits::default(),
            };
            // Admitted, but nowhere to go: the permits go back (dropped).
            let how = r
                .how
                .map_err(|(code, reason)| PlanError::Failed(code, reason))?;
            Ok(TransferPlan { how, permits })
        });
        if let Some(tx) = refer {
            if let Err(PlanError::Refused(r)) = &plan {
                tracing::info!(call = %self.id, dest = %to, status = r.status, detail = %r.detail, "REFER refused");
                let _ = tx.respond(r.response(&tx));
                return;
            }
            let _ = tx.reply_sent(202).await;
            if let Some(sub) = notify {
                self.notify_refer(sub, 100, "Trying", false).await;
            }
        }
        if self.dial.is_some() || self.legs[keep].state != LegState::Connected {
            // The call moved on while the destination was looked up.
            if let Ok(p) = plan {
                drop(p.permits);
            }
            self.transfer_failed(keep, 491, "Call Changed During Transfer", reply, notify)
                .await;
            return;
        }
        self.carry_out_transfer(keep, plan, reply, notify).await;
    }

    /// Dials a planned transfer (or reports why it cannot be).
    pub(super) async fn carry_out_transfer(
        &mut self,
        keep: LegId,
        plan: Result<TransferPlan, PlanError>,
        reply: Option<oneshot::Sender<CommandResult>>,
        notify: Option<ReferSub>,
    ) {
        let TransferPlan { how, permits } = match plan {
            Ok(p) => p,
            Err(PlanError::Refused(r)) => {
                // The front end that asked hears who and which limit.
                self.transfer_failed(keep, r.status, &r.detail, reply, notify)
                    .await;
                return;
            }
            Err(PlanError::Failed(code, reason)) => {
                self.transfer_failed(keep, code, reason, reply, notify)
                    .await;
                return;
            }
        };
        self.transfer_permits = Some(permits);
        let purpose = DialPurpose::Transfer {
            keep,
            reply,
            notify,
        };
        let placed = match how {
            Placing::Queue(q) => self.dial_queue(&q, purpose, 70).await,
            Placing::Forks(forks) => self.place(forks, purpose, 70).await,
        };
        if let Err((code, reason, DialPurpose::Transfer { reply, notify, .. })) = placed {
            self.transfer_failed(keep, code, reason, reply, notify)
                .await;
        }
    }

    /// The transfer target answered: re-bridge `keep` to it and release the
    /// party `keep` was talking to (a SIP leg, or the AI agent).
    pub async fn complete_transfer(
        &mut self,
        keep: LegId,
        new: LegId,
        reply: Option<oneshot::Sender<CommandResult>>,
        notify: Option<ReferSub>,
    ) {
        let released = if keep == self.a() {
            self.parties.b
        } else {
            Some(Connected::Sip(self.a()))
        };
        // Bridging stops the agent's audio port on `keep`'s slot.
        self.media
            .bridge(self.legs[keep].slot, self.legs[new].slot)
            .await;
        self.parties.a = keep;
        self.parties.b = Some(Connected::Sip(new));
        if let Some(p) = self.transfer_permits.take() {
            self.permits.absorb(p);
        }
        let label = self.legs[new].label.clone();
        self.record.transferred(&label);
        self.notify(CallNotice::Transferred { to: label });
        if let Some(n) = notify {
            self.notify_refer(n, 200, "OK", true).await;
        }
        match released {
            Some(Connected::Sip(old)) => {
                if self.legs[old].state == LegState::Connected {
                    self.send_bye(old);
                }
                let slot = self.legs[old].slot;
                if slot != self.legs[keep].slot && slot != self.legs[new].slot {
                    self.media.release(slot).await;
                }
            }
            Some(Connected::Agent) => self.close_agent("transferred"),
            None => {}
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
        notify: Option<ReferSub>,
    ) {
        tracing::info!(call = %self.id, code, reason, "transfer failed");
        // What the attempt held of the call limits goes back.
        self.transfer_permits = None;
        if self.fallback_failed(code, reason).await {
            return;
        }
        if let Some(n) = notify {
            self.notify_refer(n, code, reason, true).await;
        }
        if let Some(r) = reply {
            let _ = r.send(Ok(CommandOutcome::from_status(code, reason)));
        }
    }

    /// REFER from a party (RFC 3515): blind transfer of the other party to
    /// the Refer-To target.
    pub async fn on_refer(&mut self, from: LegId, tx: ServerTransaction) {
        // Every REFER received in the dialog counts (RFC 3515 §2.4.6).
        self.legs[from].refers += 1;
        let sub = ReferSub {
            leg: from,
            id: (self.legs[from].refers > 1).then(|| {
                let cseq = tx.request().cseq_header().and_then(|c| c.seq());
                cseq.unwrap_or(0)
            }),
        };
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
        let who = self.legs[from].who.clone();
        if let Some(replaces) = refer_to.replaces() {
            let Ok(replaces) = replaces else {
                let _ = tx.respond(with_reason(tx.response(400), "Bad Replaces In Refer-To"));
                return;
            };
            let _ = tx.reply_sent(202).await;
            self.notify_refer(sub, 100, "Trying", false).await;
            let pick = Pick::OtherThan {
                call_id: replaces.call_id.clone(),
                tags: (replaces.to_tag.clone(), replaces.from_tag.clone()),
            };
            let _ = self
                .bridge_calls(keep, &replaces.call_id, pick, Some(sub))
                .await;
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
        // The policy and the call limits answer the REFER itself (403,
        // 503), once the destination is resolved; a destination that then
        // fails is reported by NOTIFY.
        if self.dial.is_none() && !self.resolving {
            let step = TransferStep {
                keep,
                to: dest,
                who,
                reply: None,
                notify: Some(sub),
                refer: Some(tx),
            };
            self.resolve_transfer(step, true);
            return;
        }
        // A transfer is already under way: 202, then 491 by NOTIFY.
        let _ = tx.reply_sent(202).await;
        self.notify_refer(sub, 100, "Trying", false).await;
        self.transfer(keep, dest, who, None, Some(sub)).await;
    }

    /// NOTIFY for a REFER's implicit subscription, with a sipfrag body;
    /// returns once it has gone to the transport, so NOTIFYs leave in order.
    pub(super) async fn notify_refer(
        &mut self,
        sub: ReferSub,
        code: u16,
        reason: &str,
        last: bool,
    ) {
        let leg = sub.leg;
        if self.legs[leg].state != LegState::Connected {
            return;
        }
        let peer = self.legs[leg].peer;
        let Some(dialog) = self.legs[leg].dialog.as_mut() else {
            return;
        };
        let mut req = dialog.request(Method::Notify);
        let event = match sub.id {
            Some(id) => format!("refer;id={id}"),
            None => "refer".to_string(),
        };
        req.headers
            .push(Header::Event(rsip::headers::Event::from(event)));
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
            // The next NOTIFY must not overtake this one.
            Ok(mut tx) => {
                tx.sent().await;
                self.watch_client(leg, Pending::Notify, tx)
            }
            Err(e) => tracing::debug!(call = %self.id, error = %e, "NOTIFY not sent"),
        }
    }

    /// Takes the leg `pick` names from call `other_call` and bridges it with
    /// `keep`; the party `keep` was talking to is released.
    pub async fn bridge_calls(
        &mut self,
        keep: LegId,
        other_call: &str,
        pick: Pick,
        notify: Option<ReferSub>,
    ) -> CommandResult {
        let Some(other) = self
            .ctx
            .registry
            .get(other_call)
            .or_else(|| self.ctx.registry.by_sip_call_id(other_call))
        else {
            if let Some(n) = notify {
                self.notify_refer(n, 481, "Call Does Not Exist", true).await;
            }
            return Err(CommandError::NoSuchCall);
        };
        if other.id == self.id {
            return Err(CommandError::Invalid(
                "a call cannot be bridged with itself".into(),
            ));
        }
        let (tx, rx) = oneshot::channel();
        if !other.send(CallEvent::HandOver { pick, reply: tx }) {
            return Err(CommandError::NoSuchCall);
        }
        let handed = tokio::time::timeout(HAND_OVER_WAIT, rx)
            .await
            .ok()
            .and_then(Result::ok)
            .flatten();
        let Some(HandedLeg { mut leg, endpoint }) = handed else {
            if let Some(n) = notify {
                self.notify_refer(n, 481, "Call Leg Not Available", true)
                    .await;
            }
            return Ok(CommandOutcome::Failed {
                status: 481,
                reason: "the other call has no connected party to hand over".into(),
            });
        };
        let slot = self.media.adopt(endpoint);
        leg.slot = slot;
        self.ctx.registry.add_leg(&leg.sip_call_id, &self.handle);
        let new = self.legs.push(leg);
        self.complete_transfer(keep, new, None, notify).await;
        Ok(CommandOutcome::Answered)
    }

    /// Gives one of our parties to another call and ends this one.
    pub async fn hand_over(&mut self, pick: Pick, reply: oneshot::Sender<Option<HandedLeg>>) {
        let leg = match pick {
            Pick::Party(p) => self.party(p),
            Pick::OtherThan { call_id, tags } => self
                .legs
                .find(|l| {
                    l.dialog.as_ref().is_some_and(|d| {
                        d.id.call_id == call_id
                            && ((d.id.local_tag == tags.0 && d.id.remote_tag == tags.1)
                                || (d.id.local_tag == tags.1 && d.id.remote_tag == tags.0))
                    })
                })
                .and_then(|l| self.other(l)),
        };
        let Some(leg) = leg.filter(|l| {
            self.state == CallState::Answered && self.legs[*l].state == LegState::Connected
        }) else {
            let _ = reply.send(None);
            return;
        };
        let Some(endpoint) = self.media.take(self.legs[leg].slot).await else {
            let _ = reply.send(None);
            return;
        };
        let moved = self.legs[leg].detach();
        self.ctx
            .registry
            .remove_leg(&moved.sip_call_id, &self.handle);
        if reply
            .send(Some(HandedLeg {
                leg: moved,
                endpoint,
            }))
            .is_err()
        {
            tracing::warn!(call = %self.id, "hand-over refused after the leg left; it is lost");
        }
        self.record.cause("transferred");
        self.hangup("transferred", "system", 487).await;
    }
}

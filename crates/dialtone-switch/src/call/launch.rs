//! Starting a call and feeding it: a new Call actor is registered and its
//! task spawned (an inbound INVITE or a call dialtone places), and each
//! transaction's and the media's events are put into the call's channel by
//! the task that has them — through a weak sender, so an ended call's
//! channel (and what it holds) is not kept alive by them.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use dialtone_sip::transaction::{ClientTransaction, ServerTransaction};
use tokio::sync::mpsc;

use super::actor::{Call, CallState, InFlight, Parties};
use super::event::{CallEvent, LegId, Pending};
use super::ids::Legs;
use super::live::Live;
use super::media::CallMedia;
use super::record::Record;
use super::registry::CallHandle;
use super::{CallContext, Origin};
use crate::admission::Permits;
use crate::router::{Routed, Target};

/// Sends `ev` to a call through a weak sender: the tasks that forward a
/// transaction's or the media's events to the call must not keep an ended
/// call's channel (and what it holds) alive. False once the call is gone.
pub(super) fn send_weak(to: &mpsc::WeakUnboundedSender<CallEvent>, ev: CallEvent) -> bool {
    to.upgrade().is_some_and(|tx| tx.send(ev).is_ok())
}

/// How a call starts. Made once per call and consumed at once: its size
/// does not matter.
#[allow(clippy::large_enum_variant)]
pub(super) enum Start {
    /// An INVITE came in, routed to `target`.
    Inbound {
        invite: ServerTransaction,
        target: Target,
    },
    /// dialtone places it.
    Outbound(Box<super::outbound::Outbound>),
}

pub fn spawn(
    ctx: Arc<CallContext>,
    invite: ServerTransaction,
    origin: Origin,
    routed: Routed,
    permits: Permits,
) -> CallHandle {
    let Routed {
        target,
        record: record_flag,
    } = routed;
    let id: Arc<str> = Arc::from(uuid::Uuid::new_v4().to_string().as_str());
    let record = Record::new(&id, &ctx.cfg.node, invite.request(), &origin, &target);
    let record_audio = record_flag || ctx.cfg.recording.all;
    launch(
        ctx,
        id,
        record,
        origin,
        record_audio,
        Start::Inbound { invite, target },
        permits,
    )
}

pub fn spawn_outbound(
    ctx: Arc<CallContext>,
    out: super::outbound::Outbound,
    permits: Permits,
) -> CallHandle {
    let id: Arc<str> = Arc::from(uuid::Uuid::new_v4().to_string().as_str());
    let origin = Origin {
        label: "dialtone".into(),
        from_trunk: false,
        caller: out.who.clone(),
        account_id: out.account_id.clone(),
        srtp: None,
    };
    let from = out.from_number.clone().unwrap_or_else(|| "dialtone".into());
    let record = Record::outbound(
        &id,
        &ctx.cfg.node,
        &origin,
        &from,
        &out.customer_label,
        &ctx.cfg.domain,
    );
    let record_audio = ctx.cfg.recording.all;
    launch(
        ctx,
        id,
        record,
        origin,
        record_audio,
        Start::Outbound(Box::new(out)),
        permits,
    )
}

/// Registers a new call and starts its actor.
fn launch(
    ctx: Arc<CallContext>,
    id: Arc<str>,
    record: Record,
    origin: Origin,
    record_audio: bool,
    start: Start,
    permits: Permits,
) -> CallHandle {
    let (tx, rx) = mpsc::unbounded_channel();
    let (mut live, handle) = Live::new(id.clone(), tx.clone(), &record);
    live.set_account(origin.account_id.clone());
    ctx.registry.insert(handle.clone());
    ctx.total.fetch_add(1, Ordering::Relaxed);
    let h = handle.clone();
    tokio::spawn(async move {
        let to_call = tx.downgrade();
        let media_events = dialtone_media::MediaEvents::new(move |ev| {
            send_weak(&to_call, CallEvent::Media(ev));
        });
        let media = CallMedia::new(ctx.media.clone(), media_events);
        let mut call = Call {
            resolving: false,
            id,
            ctx,
            handle: h,
            events_tx: tx,
            legs: Legs::default(),
            parties: Parties {
                a: LegId(0),
                b: None,
            },
            dial: None,
            in_flight: InFlight::default(),
            media,
            agent: None,
            state: CallState::Dialing,
            record,
            origin,
            next_attempt: 0,
            record_audio,
            live,
            queue_member: None,
            placed: matches!(start, Start::Outbound(_)),
            from_identity: None,
            probe: None,
            then_dial: None,
            permits,
            transfer_permits: None,
            timers: Default::default(),
        };
        call.run(start, rx).await;
    });
    handle
}

impl Call {
    /// Watches a server transaction's events (CANCEL, ACK, timeouts): the
    /// transaction puts them straight into this call's channel.
    pub fn watch_server(&self, leg: LegId, tx: &mut ServerTransaction) {
        let out = self.events_tx.downgrade();
        tx.forward_events(move |event| {
            send_weak(&out, CallEvent::Server { leg, event });
        });
    }

    /// Watches a client transaction's responses, as [`watch_server`](Self::watch_server) does.
    pub fn watch_client(&self, leg: LegId, pending: Pending, mut tx: ClientTransaction) {
        let out = self.events_tx.downgrade();
        tx.forward_events(move |event| {
            send_weak(
                &out,
                CallEvent::Client {
                    leg,
                    pending,
                    event,
                },
            );
        });
    }
}

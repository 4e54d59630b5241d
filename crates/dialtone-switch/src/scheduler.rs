//! The scheduler: places the scheduled calls when they come due. Every
//! [`TICK`] it claims the due rows ([`ScheduledCalls::claim_due`]: each row
//! goes to exactly one claimer, even with several nodes on one database)
//! and originates each in the row's account, recording the call's id or
//! why it could not be placed. The rows are the state, so calls scheduled
//! before a restart fire after it; a row this node had claimed but not
//! placed when it stopped is closed as failed rather than fired twice.
//! It runs beside the switch and stops with it.
//!
//! [`ScheduledCalls::claim_due`]: dialtone_store::ScheduledCalls::claim_due

use std::time::Duration;

use dialtone_store::{unix_now_ms, ScheduledCall};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::control::{CallControl, OriginateRequest, Scope, Speaker};

/// How often due calls are looked for: a call fires at most this much
/// (plus the time to place it) after its time.
pub const TICK: Duration = Duration::from_millis(200);
/// Rows claimed per tick; more due rows are taken on the next ticks.
const BATCH: u32 = 200;
/// How long placing one call may take before it is given up (resolving it
/// reads the database; the dialling itself runs in the call's actor).
const PLACE_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs until `shutdown` turns true; calls being placed then are finished
/// (bounded).
pub async fn run(control: CallControl, node: String, mut shutdown: watch::Receiver<bool>) {
    let rows = control.store().scheduled_calls();
    match rows.close_interrupted(&node).await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(node, calls = n, "scheduled calls interrupted by a restart"),
        Err(e) => tracing::warn!(error = %e, "scheduled calls: closing interrupted ones failed"),
    }
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut placing = JoinSet::new();
    let mut outage = crate::outage::Outage::new("scheduled calls: claiming");
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => break,
        }
        if *shutdown.borrow() {
            break;
        }
        while placing.try_join_next().is_some() {}
        // Claim until nothing is due, so a burst is placed in one go.
        loop {
            let claimed = rows.claim_due(unix_now_ms(), &node, BATCH).await;
            outage.note(&claimed);
            let Ok(due) = claimed else { break };
            let full = due.len() >= BATCH as usize;
            for call in due {
                let control = control.clone();
                placing.spawn(async move { place(&control, call).await });
            }
            if !full {
                break;
            }
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while placing.join_next().await.is_some() {}
    })
    .await;
}

/// Originates a claimed row in its account and records the outcome.
async fn place(control: &CallControl, call: ScheduledCall) {
    let late_ms = unix_now_ms() - call.due_at;
    let speaker = match (&call.persona_id, &call.username) {
        (Some(p), _) => Speaker::Persona(p.clone()),
        (None, Some(u)) => Speaker::User(u.clone()),
        (None, None) => {
            return record(
                control,
                &call,
                Err("neither an assistant nor a user".into()),
            )
            .await
        }
    };
    let req = OriginateRequest {
        customer: call.customer.clone(),
        speaker,
        from_number: call.from_number.clone(),
        variables: call.variables.clone(),
    };
    let placed = tokio::time::timeout(
        PLACE_TIMEOUT,
        control.originate(req, Scope::Account(&call.account_id)),
    )
    .await;
    let outcome = match placed {
        Ok(Ok(snapshot)) => Ok(snapshot.id),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("placing the call took too long".into()),
    };
    if outcome.is_ok() {
        tracing::info!(scheduled = %call.id, late_ms, "scheduled call placed");
    }
    record(control, &call, outcome).await;
}

async fn record(control: &CallControl, call: &ScheduledCall, outcome: Result<String, String>) {
    let rows = control.store().scheduled_calls();
    let written = match &outcome {
        Ok(call_id) => rows.set_fired(&call.id, call_id).await,
        Err(e) => {
            tracing::info!(scheduled = %call.id, error = %e, "scheduled call not placed");
            rows.set_failed(&call.id, e).await
        }
    };
    if let Err(e) = written {
        tracing::warn!(scheduled = %call.id, error = %e, "scheduled call: outcome not recorded");
    }
}

//! Placing calls: `create_call` (an assistant, or a user's phone first,
//! calls a customer — now, or at `scheduledAt`), `list_scheduled_calls`
//! and `cancel_scheduled_call`. A call placed now goes to
//! [`CallControl::originate`]; a scheduled one becomes a row that the
//! switch's scheduler fires when it is due. Both are checked the same way
//! first (one speaker, a real phone number, an assistant, user and caller
//! ID of the account), by [`resolve`], which the CLI's `call create` uses
//! too (through [`schedule_call`]).

use std::collections::BTreeMap;

use dialtone_store::{NewScheduledCall, ScheduledStatus, Store, StoreError};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::views::{Call, ScheduledCall, ScheduledCallList, ScheduledCustomer};
use super::{args, db, operation, scope, sees, time_ms, time_text, to_json};
use super::{Kind, ManageError, Operation};
use crate::call::CommandError;
use crate::control::{CallControl, OriginateRequest, Speaker};
use crate::tools::ToolContext;

/// A scheduled time this much in the past still counts as "now" (clock
/// skew between the client and the switch, the time a request takes).
const PAST_GRACE_MS: i64 = 5_000;
const DEFAULT_LIMIT: u32 = 100;

pub(super) fn operations() -> Vec<Operation> {
    vec![
        operation::<CreateCall, CreateCallResult>(
            "create_call",
            "Place a phone call: an assistant (assistantId) calls the customer and talks to \
             them when they answer, or a user's phone (userId) rings first and then the \
             customer. phoneNumberId is the account's number shown as caller ID. Without \
             scheduledAt the call is placed now and its id and status are returned (follow \
             it with get_call); with scheduledAt (RFC 3339, in the future) it is placed then.",
            Kind::Dial,
            |c, ctx, a| Box::pin(create(c, ctx, a)),
        ),
        operation::<ListScheduled, ScheduledCallList>(
            "list_scheduled_calls",
            "List the account's scheduled calls, soonest first: pending, fired (with the \
             call's id), cancelled or failed (with the reason).",
            Kind::Read,
            |c, ctx, a| Box::pin(list(c, ctx, a)),
        ),
        operation::<ScheduledCallId, ScheduledCall>(
            "cancel_scheduled_call",
            "Cancel a scheduled call that has not been placed yet.",
            Kind::Delete,
            |c, ctx, a| Box::pin(cancel(c, ctx, a)),
        ),
    ]
}

/// A call to place.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateCall {
    /// The assistant that talks to the customer (id or name).
    pub assistant_id: Option<String>,
    /// Or: the user whose phone rings first (click-to-dial).
    pub user_id: Option<String>,
    /// The account's number shown as caller ID (its id or the number); it
    /// may also pick the trunk.
    pub phone_number_id: Option<String>,
    pub customer: Customer,
    /// RFC 3339 time to place the call at (e.g. 2030-01-31T09:30:00Z);
    /// left out: now.
    pub scheduled_at: Option<String>,
    pub assistant_overrides: Option<Overrides>,
}

/// Whom to call.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Customer {
    /// A phone number, e.g. "+15551230001".
    pub number: String,
    pub name: Option<String>,
}

/// Per-call settings of the assistant.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Overrides {
    /// Values for {name} variables in the assistant's instructions.
    #[schema(value_type = Object)]
    pub variable_values: Option<BTreeMap<String, Value>>,
}

/// What create_call did.
#[derive(Clone, Debug, serde::Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateCallResult {
    /// The call's id, or the scheduled call's.
    pub id: String,
    /// "ringing" (placed now) or "scheduled".
    pub status: String,
    /// The call placed now.
    pub call: Option<Call>,
    /// The call scheduled.
    pub scheduled_call: Option<ScheduledCall>,
}

/// Which scheduled calls.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListScheduled {
    /// pending, fired, cancelled or failed.
    pub status: Option<String>,
    /// At most this many (default 100).
    pub limit: Option<u32>,
}

/// Names one scheduled call.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScheduledCallId {
    /// The scheduled call's id (also accepted as id).
    #[serde(alias = "id")]
    pub scheduled_call_id: String,
}

/// A checked request: who talks, to whom, from which number.
struct Resolved {
    account_id: String,
    speaker: Speaker,
    persona_id: Option<String>,
    customer: String,
    from_number: Option<String>,
    variables: Vec<(String, String)>,
}

/// A phone number as given, formatting removed: "+1 (555) 123-0001" ->
/// "+15551230001". None unless it is 3 to 15 digits, optionally after a +.
fn phone_number(s: &str) -> Option<String> {
    let n: String = s
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
        .collect();
    let digits = n.strip_prefix('+').unwrap_or(&n);
    let ok = (3..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit());
    ok.then_some(n)
}

fn variable_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Checks a request in the context's account.
async fn resolve(
    store: &Store,
    ctx: &ToolContext,
    req: &CreateCall,
) -> Result<Resolved, ManageError> {
    let customer = phone_number(&req.customer.number).ok_or_else(|| {
        ManageError::Invalid(format!(
            "customer.number {:?} is not a phone number: give 3 to 15 digits, optionally \
             after a + (e.g. +15551230001)",
            req.customer.number
        ))
    })?;
    let (account_id, speaker, persona_id) = match (&req.assistant_id, &req.user_id) {
        (Some(a), None) => {
            let p = super::assistants::find(store, ctx, a).await?;
            (p.account_id, Speaker::Persona(p.name), Some(p.id))
        }
        (None, Some(u)) => {
            let user = store
                .users()
                .get(u)
                .await
                .map_err(db)?
                .filter(|row| sees(ctx, &row.account_id))
                .ok_or_else(|| ManageError::NotFound(format!("no user {u:?}")))?;
            (user.account_id, Speaker::User(user.username), None)
        }
        _ => {
            return Err(ManageError::Invalid(
                "give either assistantId (an assistant calls) or userId (a user's phone rings \
                 first), not both"
                    .into(),
            ))
        }
    };
    let from_number = match &req.phone_number_id {
        Some(id) => Some(super::numbers::find(store, ctx, id).await?.phone_number),
        None => None,
    };
    let variables = req
        .assistant_overrides
        .as_ref()
        .and_then(|o| o.variable_values.as_ref())
        .map(|vars| {
            vars.iter()
                .map(|(k, v)| (k.clone(), variable_text(v)))
                .collect()
        })
        .unwrap_or_default();
    Ok(Resolved {
        account_id,
        speaker,
        persona_id,
        customer,
        from_number,
        variables,
    })
}

/// A scheduled call as the tools show it.
pub fn scheduled_view(c: dialtone_store::ScheduledCall) -> ScheduledCall {
    ScheduledCall {
        id: c.id,
        status: c.status.as_str().into(),
        assistant_id: c.persona_id,
        user_id: c.username,
        customer: ScheduledCustomer {
            number: c.customer,
            name: c.customer_name,
        },
        phone_number: c.from_number,
        variable_values: c.variables.into_iter().collect(),
        scheduled_at: time_text(c.due_at),
        call_id: c.call_id,
        error: c.error,
        created_at: time_text(c.created_at),
        fired_at: c.claimed_at.map(time_text),
    }
}

/// Checks `req` in the context's account and stores it as a call to place
/// at `due_at_ms` (unix milliseconds; not more than a few seconds in the
/// past). What `create_call` with scheduledAt and `dialtone call create`
/// do.
pub async fn schedule_call(
    store: &Store,
    ctx: &ToolContext,
    req: &CreateCall,
    due_at_ms: i64,
) -> Result<ScheduledCall, ManageError> {
    let now = dialtone_store::unix_now_ms();
    if due_at_ms < now - PAST_GRACE_MS {
        return Err(ManageError::Invalid(format!(
            "scheduledAt {} is in the past (it is {} now): give a future time, or leave \
             scheduledAt out to call now",
            time_text(due_at_ms),
            time_text(now)
        )));
    }
    let r = resolve(store, ctx, req).await?;
    let username = match &r.speaker {
        Speaker::User(u) => Some(u.clone()),
        Speaker::Persona(_) => None,
    };
    let created = store
        .scheduled_calls()
        .create(NewScheduledCall {
            account_id: r.account_id,
            persona_id: r.persona_id,
            username,
            customer: r.customer,
            customer_name: req.customer.name.clone(),
            from_number: r.from_number,
            variables: r.variables,
            due_at: due_at_ms.max(now),
        })
        .await
        .map_err(|e| match e {
            StoreError::Invalid { reason } => ManageError::Invalid(reason),
            other => db(other),
        })?;
    Ok(scheduled_view(created))
}

/// Why a call could not be placed, as a management error.
pub(crate) fn originate_error(e: CommandError) -> ManageError {
    match e {
        CommandError::Invalid(m) => ManageError::Invalid(m),
        other => ManageError::Unavailable(format!("the call was not placed: {other}")),
    }
}

async fn create(control: &CallControl, ctx: &ToolContext, a: Value) -> Result<Value, ManageError> {
    let req: CreateCall = args(a)?;
    if let Some(at) = &req.scheduled_at {
        let due = time_ms("scheduledAt", at)?;
        let scheduled = schedule_call(control.store(), ctx, &req, due).await?;
        return to_json(&CreateCallResult {
            id: scheduled.id.clone(),
            status: "scheduled".into(),
            call: None,
            scheduled_call: Some(scheduled),
        });
    }
    let r = resolve(control.store(), ctx, &req).await?;
    let snapshot = control
        .originate(
            OriginateRequest {
                customer: r.customer,
                speaker: r.speaker,
                from_number: r.from_number,
                variables: r.variables,
            },
            scope(ctx),
        )
        .await
        .map_err(originate_error)?;
    let call = super::calls::call_from_snapshot(&snapshot);
    to_json(&CreateCallResult {
        id: call.id.clone(),
        status: call.status.clone(),
        call: Some(call),
        scheduled_call: None,
    })
}

async fn list(control: &CallControl, ctx: &ToolContext, a: Value) -> Result<Value, ManageError> {
    let f: ListScheduled = args(a)?;
    let status = match &f.status {
        Some(s) => Some(
            s.parse::<ScheduledStatus>()
                .map_err(|e| ManageError::Invalid(format!("status: {e}")))?,
        ),
        None => None,
    };
    let rows = control
        .store()
        .scheduled_calls()
        .list(
            ctx.account_id.as_deref(),
            status,
            f.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, 1000),
        )
        .await
        .map_err(db)?;
    to_json(&ScheduledCallList {
        scheduled_calls: rows.into_iter().map(scheduled_view).collect(),
    })
}

async fn cancel(control: &CallControl, ctx: &ToolContext, a: Value) -> Result<Value, ManageError> {
    let ScheduledCallId { scheduled_call_id } = args(a)?;
    match control
        .store()
        .scheduled_calls()
        .cancel(&scheduled_call_id, ctx.account_id.as_deref())
        .await
    {
        Ok(c) => to_json(&scheduled_view(c)),
        Err(StoreError::NotFound { .. }) => Err(ManageError::NotFound(format!(
            "no scheduled call {scheduled_call_id:?} (list_scheduled_calls gives the ids)"
        ))),
        Err(StoreError::Invalid { reason }) => Err(ManageError::Conflict(reason)),
        Err(e) => Err(db(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_are_cleaned_and_checked() {
        assert_eq!(
            phone_number("+1 (555) 123-0001").as_deref(),
            Some("+15551230001")
        );
        assert_eq!(phone_number("15551230001").as_deref(), Some("15551230001"));
        for bad in [
            "",
            "+",
            "12",
            "alice",
            "+1555abc",
            "1234567890123456",
            "user:bob",
        ] {
            assert_eq!(phone_number(bad), None, "{bad}");
        }
    }

    #[test]
    fn variables_become_text() {
        assert_eq!(variable_text(&Value::from("x")), "x");
        assert_eq!(variable_text(&Value::from(3)), "3");
        assert_eq!(variable_text(&Value::Null), "");
    }
}

//! The tools that act on the live call of their context: `transfer_call`
//! and `hangup_call`. Each becomes a [`CallCommand`] sent to the call's
//! actor through [`CallControl`], and answers with what really happened
//! (a transfer answers when the new party answered, or failed and the
//! caller is still on the call).

use serde::Deserialize;
use serde_json::{json, Value};

use super::{arguments, FnTool, ToolAnnotations, ToolContext, ToolError, ToolOutput, ToolSpec};
use crate::call::{Authority, CallCommand, CommandError, CommandOutcome, Destination, Party};
use crate::control::CallControl;

fn command_error(e: CommandError) -> ToolError {
    match e {
        CommandError::NoSuchCall | CommandError::CallEnded => {
            ToolError::Failed("the call has ended".into())
        }
        CommandError::Invalid(m) => ToolError::InvalidArguments(m),
        other => ToolError::Failed(other.to_string()),
    }
}

/// The authority a context's transfers are dialled with.
pub(super) fn authority(ctx: &ToolContext) -> Authority {
    match (&ctx.persona, &ctx.account_id) {
        (Some(p), _) => Authority::Persona(p.clone()),
        (None, Some(a)) => Authority::Account(a.clone()),
        (None, None) => Authority::Operator,
    }
}

/// `transfer_call(destination)`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferArgs {
    destination: String,
}

pub fn transfer_call() -> FnTool {
    FnTool::new(
        ToolSpec {
            name: "transfer_call".into(),
            description: "Transfer the caller to a person, a phone number or a queue. \
            Returns when the new party answered (\"transferred\") or the transfer \
            failed (for example \"transfer failed: busy (486)\"); after a failure \
            the caller is still on the call with you."
                .into(),
            input_schema: json!({
                "type": "object",
                "properties": {
                    "destination": {
                        "type": "string",
                        "description": "Who to transfer to: a user name or extension \
                            (\"alice\", \"1001\"), a phone number (\"+15550100\"), or \
                            \"queue:NAME\"."
                    }
                },
                "required": ["destination"],
                "additionalProperties": false
            }),
            output_schema: Some(json!({
                "type": "object",
                "properties": {
                    "outcome": {"type": "string", "enum": ["transferred", "failed"]},
                    "kind": {"type": "string"},
                    "status": {"type": "integer"},
                    "reason": {"type": "string"},
                    "destination": {"type": "string"}
                },
                "required": ["outcome", "destination"]
            })),
            annotations: ToolAnnotations {
                destructive: true,
                open_world: true,
                ..Default::default()
            },
            call_bound: true,
        },
        |control, ctx, args| Box::pin(run_transfer(control, ctx, args)),
    )
}

async fn run_transfer(
    control: &CallControl,
    ctx: &ToolContext,
    args: Value,
) -> Result<ToolOutput, ToolError> {
    let a: TransferArgs = arguments(args)?;
    let to = Destination::parse(&a.destination)
        .map_err(|e| ToolError::InvalidArguments(e.to_string()))?;
    let call = ctx.call(control)?;
    let cmd = CallCommand::Transfer {
        keep: Party::Caller,
        to: to.clone(),
        by: authority(ctx),
    };
    let outcome = call.command(cmd).await.map_err(command_error)?;
    Ok(transfer_output(&to, &outcome))
}

pub(super) fn transfer_output(to: &Destination, outcome: &CommandOutcome) -> ToolOutput {
    match outcome {
        CommandOutcome::Answered | CommandOutcome::Done => ToolOutput::with(
            "transferred",
            json!({"outcome": "transferred", "destination": to.to_string()}),
        ),
        CommandOutcome::Failed { status, reason } => ToolOutput::with(
            format!(
                "transfer failed: {} ({status})",
                outcome.kind().replace('_', " ")
            ),
            json!({
                "outcome": "failed",
                "kind": outcome.kind(),
                "status": status,
                "reason": reason,
                "destination": to.to_string(),
            }),
        ),
    }
}

/// `hangup_call()`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoArgs {}

pub fn hangup_call() -> FnTool {
    FnTool::new(
        ToolSpec {
            name: "hangup_call".into(),
            description: "End the call. When an AI agent is speaking, its last words \
            finish playing first."
                .into(),
            input_schema: json!({
                "type": "object",
                "properties": {},
                "additionalProperties": false
            }),
            output_schema: Some(json!({
                "type": "object",
                "properties": {
                    "outcome": {"type": "string", "enum": ["ended"]},
                    "call_id": {"type": "string"}
                },
                "required": ["outcome", "call_id"]
            })),
            annotations: ToolAnnotations {
                destructive: true,
                idempotent: true,
                open_world: true,
                ..Default::default()
            },
            call_bound: true,
        },
        |control, ctx, args| Box::pin(run_hangup(control, ctx, args)),
    )
}

async fn run_hangup(
    control: &CallControl,
    ctx: &ToolContext,
    args: Value,
) -> Result<ToolOutput, ToolError> {
    let NoArgs {} = arguments(args)?;
    let call = ctx.call(control)?;
    let cause = if ctx.persona.is_some() {
        "agent hangup"
    } else {
        "hangup_call"
    };
    call.command(CallCommand::Hangup {
        cause: cause.into(),
        after_playout: true,
    })
    .await
    .map_err(command_error)?;
    Ok(ToolOutput::with(
        "call ended",
        json!({"outcome": "ended", "call_id": call.id.to_string()}),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn transfer_outcomes_read_as_the_model_is_told() {
        let to = Destination::User("bob".into());
        let ok = transfer_output(&to, &CommandOutcome::Answered);
        assert_eq!(ok.text, "transferred");
        let busy = transfer_output(&to, &CommandOutcome::from_status(486, "Busy Here"));
        assert_eq!(busy.text, "transfer failed: busy (486)");
        let s = busy.structured.unwrap();
        assert_eq!(s["status"], 486);
        assert_eq!(s["reason"], "Busy Here");
        let gone = transfer_output(
            &to,
            &CommandOutcome::from_status(480, "Temporarily Unavailable"),
        );
        assert_eq!(gone.text, "transfer failed: unavailable (480)");
    }

    #[test]
    fn bad_arguments_are_tool_errors() {
        let r: Result<TransferArgs, _> = arguments(json!({}));
        assert!(matches!(r, Err(ToolError::InvalidArguments(m)) if m.contains("destination")));
        let r: Result<TransferArgs, _> = arguments(json!({"destination": "1", "x": 1}));
        assert!(matches!(r, Err(ToolError::InvalidArguments(m)) if m.contains('x')));
        let r: Result<NoArgs, _> = arguments(Value::Null);
        assert!(r.is_ok());
    }
}

//! `check_user_availability(user_id)`: whether a person can take a call
//! now — their do-not-disturb flag (`dialtone user dnd NAME on|off`),
//! whether a phone of theirs is registered, and whether they are on a call
//! — and which of those it is, in one sentence.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{arguments, FnTool, ToolAnnotations, ToolContext, ToolError, ToolOutput, ToolSpec};
use crate::control::{CallControl, Scope};
use crate::registrar::unix_now;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    user_id: String,
}

pub fn check_user_availability() -> FnTool {
    FnTool::new(
        ToolSpec {
            name: "check_user_availability".into(),
            description: "Whether a user (a person with a phone on this system) can take a \
            call now: not on do-not-disturb, a phone registered, not already on a call. \
            The answer says which."
                .into(),
            input_schema: json!({
                "type": "object",
                "properties": {
                    "user_id": {"type": "string", "description": "The user's name or extension, e.g. \"alice\" or \"1001\"."}
                },
                "required": ["user_id"],
                "additionalProperties": false
            }),
            output_schema: Some(json!({
                "type": "object",
                "properties": {
                    "user": {"type": "string"},
                    "available": {"type": "boolean"},
                    "dnd": {"type": "boolean"},
                    "registered": {"type": "boolean"},
                    "on_call": {"type": "boolean"}
                },
                "required": ["user", "available", "dnd", "registered", "on_call"]
            })),
            annotations: ToolAnnotations {
                read_only: true,
                ..Default::default()
            },
            call_bound: false,
        },
        |control, ctx, args| Box::pin(run(control, ctx, args)),
    )
}

/// The sentence for a user's state.
pub fn availability_sentence(user: &str, dnd: bool, registered: bool, on_call: bool) -> String {
    match (dnd, registered, on_call) {
        (true, _, _) => format!("{user} is not available: do not disturb is on"),
        (false, false, _) => format!("{user} is not available: no phone is registered"),
        (false, true, true) => format!("{user} is not available: on another call"),
        (false, true, false) => format!("{user} is available"),
    }
}

async fn run(
    control: &CallControl,
    ctx: &ToolContext,
    args: Value,
) -> Result<ToolOutput, ToolError> {
    let Args { user_id } = arguments(args)?;
    let store = control.store();
    let unknown = || ToolError::Failed(format!("no user {user_id:?}"));
    let user = store
        .users()
        .get(user_id.trim())
        .await
        .map_err(|e| ToolError::Failed(format!("users unavailable: {e}")))?
        .filter(|u| ctx.account_id.as_ref().is_none_or(|a| *a == u.account_id))
        .ok_or_else(unknown)?;
    let registered = !store
        .registrations()
        .list(&user.username, unix_now())
        .await
        .map_err(|e| ToolError::Failed(format!("registrations unavailable: {e}")))?
        .is_empty();
    let label = format!("user:{}", user.username);
    let on_call = control.list(Scope::Operator).iter().any(|c| {
        c.legs
            .iter()
            .any(|l| l.label == label && l.state == "connected")
    });
    let available = !user.dnd && registered && !on_call;
    Ok(ToolOutput::with(
        availability_sentence(&user.username, user.dnd, registered, on_call),
        json!({
            "user": user.username,
            "available": available,
            "dnd": user.dnd,
            "registered": registered,
            "on_call": on_call,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sentence_says_which() {
        assert_eq!(
            availability_sentence("alice", false, true, false),
            "alice is available"
        );
        assert!(availability_sentence("alice", true, true, false).contains("do not disturb"));
        assert!(availability_sentence("alice", false, false, false).contains("no phone"));
        assert!(availability_sentence("alice", false, true, true).contains("on another call"));
    }
}

//! `create_lead(name, intent, classification?, summary?, notes?)`: the
//! caller becomes a lead of the account, keyed by their phone number (from
//! the call's context, in E.164): a number seen before gets a new case on
//! its lead instead of a duplicate. The lead is committed before the tool
//! answers.

use dialtone_store::{phone, NewCase};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{arguments, FnTool, ToolAnnotations, ToolContext, ToolError, ToolOutput, ToolSpec};
use crate::control::CallControl;

pub const CLASSIFICATIONS: [&str; 4] = ["lead", "customer", "spam", "other"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    name: String,
    intent: String,
    #[serde(default)]
    classification: Option<String>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    notes: Option<String>,
}

pub fn create_lead() -> FnTool {
    FnTool::new(
        ToolSpec {
            name: "create_lead".into(),
            description: "Record the caller as a lead (their phone number is taken from \
            the call), with why they called. A caller recorded before gets a new case \
            on their existing lead."
                .into(),
            input_schema: json!({
                "type": "object",
                "properties": {
                    "name": {"type": "string", "description": "The caller's name."},
                    "intent": {"type": "string", "description": "What the caller wants, in a few words."},
                    "classification": {"type": "string", "enum": CLASSIFICATIONS, "description": "Default: lead."},
                    "summary": {"type": "string", "description": "A short summary of the conversation."},
                    "notes": {"type": "string"}
                },
                "required": ["name", "intent"],
                "additionalProperties": false
            }),
            output_schema: Some(json!({
                "type": "object",
                "properties": {
                    "lead_id": {"type": "string"},
                    "case_id": {"type": "string"},
                    "phone_number": {"type": "string"},
                    "new_lead": {"type": "boolean"}
                },
                "required": ["lead_id", "case_id", "phone_number", "new_lead"]
            })),
            annotations: ToolAnnotations::default(),
            call_bound: false,
        },
        |control, ctx, args| Box::pin(run(control, ctx, args)),
    )
}

fn non_empty(field: &str, v: &str) -> Result<String, ToolError> {
    let v = v.trim();
    if v.is_empty() {
        return Err(ToolError::InvalidArguments(format!(
            "{field} must not be empty"
        )));
    }
    Ok(v.to_string())
}

async fn run(
    control: &CallControl,
    ctx: &ToolContext,
    args: Value,
) -> Result<ToolOutput, ToolError> {
    let a: Args = arguments(args)?;
    let classification = a.classification.unwrap_or_else(|| "lead".into());
    if !CLASSIFICATIONS.contains(&classification.as_str()) {
        return Err(ToolError::InvalidArguments(format!(
            "classification must be one of {}, not {classification:?}",
            CLASSIFICATIONS.join(", ")
        )));
    }
    let name = non_empty("name", &a.name)?;
    let intent = non_empty("intent", &a.intent)?;
    let account = ctx.account_row(control).await?;
    let raw = ctx.caller_number.as_deref().unwrap_or("").trim();
    if raw.is_empty() {
        return Err(ToolError::Failed(
            "the caller's number is not known (no caller_id_number in the context)".into(),
        ));
    }
    let number = phone::normalize(raw, &account.region).unwrap_or_else(|| raw.to_string());
    let case = NewCase {
        intent,
        classification,
        summary: a.summary,
        notes: a.notes,
        call_id: ctx.call_id.clone(),
        persona: ctx.persona.clone(),
    };
    let (lead, case, new) = control
        .store()
        .leads()
        .record(&account.id, &number, &name, case)
        .await
        .map_err(|e| ToolError::Failed(format!("the lead was not saved: {e}")))?;
    let text = if new {
        format!("lead created for {name} ({number})")
    } else {
        format!("case added to the existing lead for {number}")
    };
    Ok(ToolOutput::with(
        text,
        json!({"lead_id": lead.id, "case_id": case.id, "phone_number": number, "new_lead": new}),
    ))
}

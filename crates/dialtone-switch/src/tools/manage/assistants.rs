//! Assistants (personas): `list_assistants`, `get_assistant`,
//! `create_assistant`, `update_assistant`, `delete_assistant`. Every
//! setting is checked by the store's persona rules — the ones `dialtone
//! persona add` applies — before anything is written; a new assistant gets
//! the same defaults as on the command line.

use dialtone_store::persona_check as rules;
use dialtone_store::{NewPersona, Persona, PersonaUpdate, Store, StoreError};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use utoipa::ToSchema;

use super::views::{Assistant, AssistantList, Deleted};
use super::{args, db, operation, owner, sees, time_text, to_json, Kind, ManageError, Operation};
use crate::control::CallControl;
use crate::tools::ToolContext;

pub(super) fn operations() -> Vec<Operation> {
    vec![
        operation::<NoArgs, AssistantList>(
            "list_assistants",
            "List the assistants (AI personas that talk on calls) of the account: id, name, \
             provider, model, voice, the numbers that ring each.",
            Kind::Read,
            |c, ctx, a| Box::pin(list(c, ctx, a)),
        ),
        operation::<AssistantId, Assistant>(
            "get_assistant",
            "One assistant with every setting, by id or name.",
            Kind::Read,
            |c, ctx, a| Box::pin(get(c, ctx, a)),
        ),
        operation::<CreateAssistant, Assistant>(
            "create_assistant",
            "Create an assistant: a realtime model (OpenAI Realtime or Gemini Live) that \
             talks on calls. Give it a unique name, the provider, the realtime websocket URL \
             and its instructions (system prompt); optionally a model, voice and first message. \
             Route a phone number to it, or place calls with it with create_call.",
            Kind::Write,
            |c, ctx, a| Box::pin(create(c, ctx, a)),
        ),
        operation::<UpdateAssistant, Assistant>(
            "update_assistant",
            "Change an assistant's settings (by id or name); each field given replaces the \
             stored value, null clears an optional one. The name cannot change.",
            Kind::Write,
            |c, ctx, a| Box::pin(update(c, ctx, a)),
        ),
        operation::<AssistantId, Deleted>(
            "delete_assistant",
            "Delete an assistant (by id or name) with its own tools. Refused while a phone \
             number routes to it.",
            Kind::Delete,
            |c, ctx, a| Box::pin(delete(c, ctx, a)),
        ),
    ]
}

/// No arguments.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// Names one assistant.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AssistantId {
    /// The assistant's id or name.
    pub assistant_id: String,
}

/// A new assistant.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateAssistant {
    /// Unique name: 1 to 64 letters, digits and -_.!~*'()+.
    pub name: String,
    /// "openai" or "gemini".
    pub provider: String,
    /// The realtime websocket URL (ws:// or wss://).
    pub url: String,
    /// The system prompt (also accepted as systemPrompt). May use
    /// {caller_number}, {called_number}, {contact_name}, {date}, {time} and
    /// the variableValues of a call.
    #[serde(alias = "systemPrompt")]
    pub instructions: String,
    pub model: Option<String>,
    pub voice: Option<String>,
    /// What it says first when the call is answered (also accepted as greeting).
    #[serde(alias = "greeting")]
    pub first_message: Option<String>,
    /// IANA time zone for {date} and {time} (default UTC).
    pub timezone: Option<String>,
    /// "server_vad" (default), "semantic_vad" or "none".
    pub turn_detection: Option<String>,
    /// 0.0 to 1.0.
    pub vad_threshold: Option<f64>,
    /// "user:NAME", "number:N" or "queue:NAME": where calls go when the model
    /// cannot be reached.
    pub fallback: Option<String>,
    /// The NAME of the environment variable holding the provider key.
    pub api_key_env: Option<String>,
    /// Default 0: the switch's limit.
    pub max_duration_seconds: Option<u32>,
    /// Default 30; 0: off.
    pub idle_timeout_seconds: Option<u32>,
    /// Caller speech must last this long before the assistant is cut off.
    pub barge_in_min_ms: Option<u32>,
    /// The caller transcription model (default: the provider's usual one).
    pub transcription_model: Option<String>,
    /// Operator only: the account it belongs to (default "default").
    pub account: Option<String>,
}

/// Changes to an assistant; a field left out keeps its value.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateAssistant {
    /// The assistant's id or name.
    pub assistant_id: String,
    pub provider: Option<String>,
    pub url: Option<String>,
    #[serde(alias = "systemPrompt")]
    pub instructions: Option<String>,
    /// null: the provider's default.
    #[serde(default, deserialize_with = "set_or_clear")]
    pub model: Option<Option<String>>,
    /// null: the provider's default.
    #[serde(default, deserialize_with = "set_or_clear")]
    pub voice: Option<Option<String>>,
    /// null: the other side speaks first.
    #[serde(default, deserialize_with = "set_or_clear", alias = "greeting")]
    pub first_message: Option<Option<String>>,
    pub timezone: Option<String>,
    pub turn_detection: Option<String>,
    #[serde(default, deserialize_with = "set_or_clear")]
    pub vad_threshold: Option<Option<f64>>,
    #[serde(default, deserialize_with = "set_or_clear")]
    pub fallback: Option<Option<String>>,
    #[serde(default, deserialize_with = "set_or_clear")]
    pub api_key_env: Option<Option<String>>,
    pub max_duration_seconds: Option<u32>,
    pub idle_timeout_seconds: Option<u32>,
    pub barge_in_min_ms: Option<u32>,
    /// null: no caller transcript.
    #[serde(default, deserialize_with = "set_or_clear")]
    pub transcription_model: Option<Option<String>>,
}

/// A field given as null is Some(None) (clear it); left out, None (keep).
fn set_or_clear<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// The value an update sets (not one it clears or keeps).
fn inner(v: &Option<Option<String>>) -> Option<&str> {
    v.as_ref().and_then(|x| x.as_deref())
}

/// A setting checked by its rule, the message led by the field's name.
fn rule(field: &str, verdict: Result<(), String>) -> Result<(), ManageError> {
    verdict.map_err(|e| ManageError::Invalid(format!("{field} {e}")))
}

fn check_text(field: &str, value: Option<&str>) -> Result<(), ManageError> {
    match value {
        Some(v) => rule(field, rules::check_not_blank(v)),
        None => Ok(()),
    }
}

/// The checks every given setting passes, for create and update alike.
#[allow(clippy::too_many_arguments)]
fn check_settings(
    provider: Option<&str>,
    url: Option<&str>,
    instructions: Option<&str>,
    texts: [(&str, Option<&str>); 4],
    timezone: Option<&str>,
    turn_detection: Option<&str>,
    vad_threshold: Option<f64>,
    fallback: Option<&str>,
    api_key_env: Option<&str>,
) -> Result<(), ManageError> {
    if let Some(p) = provider {
        rule("provider", rules::check_one_of(p, &rules::PROVIDERS))?;
    }
    if let Some(u) = url {
        rule("url", rules::check_persona_url(u))?;
    }
    check_text("instructions", instructions)?;
    for (field, value) in texts {
        check_text(field, value)?;
    }
    if let Some(z) = timezone {
        rule("timezone", rules::check_timezone(z))?;
    }
    if let Some(t) = turn_detection {
        rule(
            "turnDetection",
            rules::check_one_of(t, &rules::TURN_DETECTION),
        )?;
    }
    if let Some(t) = vad_threshold {
        rule("vadThreshold", rules::check_vad_threshold(t))?;
    }
    if let Some(f) = fallback {
        rule("fallback", rules::check_fallback(f))?;
    }
    if let Some(k) = api_key_env {
        rule("apiKeyEnv", rules::check_api_key_env(k))?;
    }
    Ok(())
}

/// The assistant `id` (an id or a name) if the context sees it.
pub(crate) async fn find(
    store: &Store,
    ctx: &ToolContext,
    id: &str,
) -> Result<Persona, ManageError> {
    let personas = store.personas();
    let found = match personas.get_by_id(id).await.map_err(db)? {
        Some(p) => Some(p),
        None => personas.get(id).await.map_err(db)?,
    };
    found.filter(|p| sees(ctx, &p.account_id)).ok_or_else(|| {
        ManageError::NotFound(format!(
            "no assistant {id:?} (list_assistants gives the ids)"
        ))
    })
}

/// The assistant as the tools show it, with the numbers that ring it.
pub(super) async fn view(control: &CallControl, p: Persona) -> Result<Assistant, ManageError> {
    let numbers = control.store().numbers().list().await.map_err(db)?;
    Ok(assistant_view(p, &numbers))
}

fn assistant_view(p: Persona, numbers: &[dialtone_store::Number]) -> Assistant {
    let phone_numbers = numbers
        .iter()
        .filter(|n| n.target_kind.as_str() == "persona" && n.target == p.name)
        .map(|n| n.number.clone())
        .collect();
    Assistant {
        id: p.id,
        name: p.name,
        provider: p.provider,
        url: p.url,
        model: p.model,
        voice: p.voice,
        instructions: p.instructions,
        first_message: p.greeting,
        timezone: p.timezone,
        turn_detection: p.turn_detection,
        transcription_model: p.transcription_model,
        fallback: p.fallback,
        max_duration_seconds: p.max_duration_secs,
        idle_timeout_seconds: p.idle_timeout_secs,
        api_key_env: p.api_key_env,
        account_id: p.account_id,
        phone_numbers,
        created_at: time_text(p.created_at.saturating_mul(1000)),
        updated_at: time_text(p.updated_at.saturating_mul(1000)),
    }
}

async fn list(control: &CallControl, ctx: &ToolContext, a: Value) -> Result<Value, ManageError> {
    let NoArgs {} = args(a)?;
    let store = control.store();
    let personas = match &ctx.account_id {
        Some(acc) => store.personas().list_for_account(acc).await,
        None => store.personas().list().await,
    }
    .map_err(db)?;
    let numbers = store.numbers().list().await.map_err(db)?;
    let assistants = personas
        .into_iter()
        .map(|p| assistant_view(p, &numbers))
        .collect();
    to_json(&AssistantList { assistants })
}

async fn get(control: &CallControl, ctx: &ToolContext, a: Value) -> Result<Value, ManageError> {
    let AssistantId { assistant_id } = args(a)?;
    let p = find(control.store(), ctx, &assistant_id).await?;
    to_json(&view(control, p).await?)
}

async fn create(control: &CallControl, ctx: &ToolContext, a: Value) -> Result<Value, ManageError> {
    let c: CreateAssistant = args(a)?;
    rule("name", rules::check_persona_name(&c.name))?;
    check_settings(
        Some(&c.provider),
        Some(&c.url),
        Some(&c.instructions),
        [
            ("model", c.model.as_deref()),
            ("voice", c.voice.as_deref()),
            ("firstMessage", c.first_message.as_deref()),
            ("transcriptionModel", c.transcription_model.as_deref()),
        ],
        c.timezone.as_deref(),
        c.turn_detection.as_deref(),
        c.vad_threshold,
        c.fallback.as_deref(),
        c.api_key_env.as_deref(),
    )?;
    if ctx.account_id.is_some() && c.account.is_some() {
        return Err(ManageError::Invalid(
            "account: an API key creates assistants in its own account; leave it out".into(),
        ));
    }
    let account = owner(control, ctx, c.account.as_deref()).await?;
    let transcription_model = c
        .transcription_model
        .unwrap_or_else(|| rules::default_transcription_model(&c.provider).to_owned());
    let created = control
        .store()
        .personas()
        .create(NewPersona {
            account_id: account.id,
            name: c.name.clone(),
            provider: c.provider,
            url: c.url,
            model: c.model,
            voice: c.voice,
            instructions: c.instructions,
            greeting: c.first_message,
            api_key_env: c.api_key_env,
            timezone: c
                .timezone
                .unwrap_or_else(|| rules::DEFAULT_TIMEZONE.to_owned()),
            turn_detection: c
                .turn_detection
                .unwrap_or_else(|| rules::DEFAULT_TURN_DETECTION.to_owned()),
            vad_threshold: c.vad_threshold,
            vad_prefix_padding_ms: None,
            vad_silence_ms: None,
            vad_eagerness: None,
            barge_in_min_ms: c.barge_in_min_ms.unwrap_or(0),
            max_duration_secs: c.max_duration_seconds.unwrap_or(0),
            idle_timeout_secs: c
                .idle_timeout_seconds
                .unwrap_or(rules::DEFAULT_IDLE_TIMEOUT_SECS),
            fallback: c.fallback,
            transcription_model: Some(transcription_model),
        })
        .await;
    match created {
        Ok(p) => to_json(&view(control, p).await?),
        Err(StoreError::Conflict { .. }) => Err(ManageError::Conflict(format!(
            "an assistant named {:?} exists already: choose another name",
            c.name
        ))),
        Err(e) => Err(db(e)),
    }
}

async fn update(control: &CallControl, ctx: &ToolContext, a: Value) -> Result<Value, ManageError> {
    let u: UpdateAssistant = args(a)?;
    let p = find(control.store(), ctx, &u.assistant_id).await?;
    check_settings(
        u.provider.as_deref(),
        u.url.as_deref(),
        u.instructions.as_deref(),
        [
            ("model", inner(&u.model)),
            ("voice", inner(&u.voice)),
            ("firstMessage", inner(&u.first_message)),
            ("transcriptionModel", inner(&u.transcription_model)),
        ],
        u.timezone.as_deref(),
        u.turn_detection.as_deref(),
        u.vad_threshold.flatten(),
        inner(&u.fallback),
        inner(&u.api_key_env),
    )?;
    let changes = PersonaUpdate {
        account_id: None,
        provider: u.provider,
        url: u.url,
        model: u.model,
        voice: u.voice,
        instructions: u.instructions,
        greeting: u.first_message,
        api_key_env: u.api_key_env,
        timezone: u.timezone,
        turn_detection: u.turn_detection,
        vad_threshold: u.vad_threshold,
        vad_prefix_padding_ms: None,
        vad_silence_ms: None,
        vad_eagerness: None,
        barge_in_min_ms: u.barge_in_min_ms,
        max_duration_secs: u.max_duration_seconds,
        idle_timeout_secs: u.idle_timeout_seconds,
        fallback: u.fallback,
        transcription_model: u.transcription_model,
    };
    if changes.is_empty() {
        return Err(ManageError::Invalid(
            "nothing to update: give at least one setting besides assistantId".into(),
        ));
    }
    match control.store().personas().update(&p.name, changes).await {
        Ok(p) => to_json(&view(control, p).await?),
        Err(StoreError::NotFound { .. }) => Err(ManageError::NotFound(format!(
            "no assistant {:?}",
            u.assistant_id
        ))),
        Err(e) => Err(db(e)),
    }
}

async fn delete(control: &CallControl, ctx: &ToolContext, a: Value) -> Result<Value, ManageError> {
    let AssistantId { assistant_id } = args(a)?;
    let p = find(control.store(), ctx, &assistant_id).await?;
    match control.store().personas().remove(&p.name).await {
        Ok(removed) => to_json(&Deleted {
            id: p.id,
            deleted: removed,
        }),
        Err(StoreError::InUse { by, .. }) => Err(ManageError::Conflict(format!(
            "assistant {} is in use by {by}: remove or repoint those numbers first",
            p.name
        ))),
        Err(e) => Err(db(e)),
    }
}

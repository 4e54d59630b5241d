//! Gemini Live client messages (camelCase `BidiGenerateContentClientMessage`):
//! the `setup` that configures a session, the history as `clientContent`,
//! and the message for each [`ClientCommand`]. Field names follow
//! google-genai's `LiveClientMessage` (the tests check the goldens against
//! it, and it forbids unknown fields).

use serde_json::{json, Value};

use super::schema;
use crate::json::base64;
use crate::protocol::{
    eagerness_name, AudioFormat, ClientCommand, HistoryItem, Role, SessionConfig, TurnDetection,
};

/// What `Respond` says when it carries no instruction of its own.
const CONTINUE: &str = "Continue.";

/// Gemini wants the model as a resource name.
pub(super) fn model_name(model: &str) -> String {
    if model.starts_with("models/") || model.contains('/') {
        model.to_string()
    } else {
        format!("models/{model}")
    }
}

/// The `setup` message: model, voice, instructions, tools, activity
/// detection, transcription, and session resumption (always asked for, so
/// that a reconnect can resume).
pub(super) fn setup(cfg: &SessionConfig) -> Value {
    let resumption = match &cfg.resume_handle {
        Some(handle) => json!({ "handle": handle }),
        None => json!({}),
    };
    let mut setup = json!({
        "model": model_name(cfg.model()),
        "generationConfig": {
            "responseModalities": ["AUDIO"],
            "speechConfig": {
                "voiceConfig": { "prebuiltVoiceConfig": { "voiceName": cfg.voice() } },
            },
        },
        "realtimeInputConfig": {
            "automaticActivityDetection": activity_detection(&cfg.turn_detection),
        },
        "outputAudioTranscription": {},
        "sessionResumption": resumption,
    });
    if !cfg.instructions.is_empty() {
        setup["systemInstruction"] = json!({ "parts": [{ "text": cfg.instructions }] });
    }
    if !cfg.tools.is_empty() {
        let declarations: Vec<Value> = cfg
            .tools
            .iter()
            .map(|t| {
                let mut decl = json!({ "name": t.name, "description": t.description });
                if let Some(params) = schema::parameters(&t.parameters) {
                    decl["parameters"] = params;
                }
                decl
            })
            .collect();
        setup["tools"] = json!([{ "functionDeclarations": declarations }]);
    }
    if cfg.transcription_model.is_some() {
        setup["inputAudioTranscription"] = json!({});
    }
    json!({ "setup": setup })
}

/// Carried-over conversation, appended without asking for an answer.
pub(super) fn history(items: &[HistoryItem]) -> Value {
    let turns: Vec<Value> = items
        .iter()
        .map(|item| {
            let role = match item.role {
                Role::User => "user",
                Role::Assistant => "model",
            };
            json!({ "role": role, "parts": [{ "text": item.text }] })
        })
        .collect();
    json!({ "clientContent": { "turns": turns, "turnComplete": false } })
}

/// The MIME type that labels caller audio.
pub(super) fn mime_type(input: AudioFormat) -> String {
    match input {
        AudioFormat::Pcm16 { rate } => format!("audio/pcm;rate={rate}"),
        // Gemini documents PCM only; G.711 is labelled for what it is
        // rather than passed off as PCM.
        AudioFormat::Pcmu => "audio/pcmu".into(),
        AudioFormat::Pcma => "audio/pcma".into(),
    }
}

/// The messages for one command; `mime` labels caller audio.
pub(super) fn command(cmd: &ClientCommand, mime: &str) -> Vec<Value> {
    match cmd {
        ClientCommand::Audio(data) if data.is_empty() => Vec::new(),
        ClientCommand::Audio(data) => vec![json!({
            "realtimeInput": { "audio": { "data": base64(data), "mimeType": mime } },
        })],
        ClientCommand::ToolResult {
            call_id,
            name,
            output,
        } => vec![json!({
            "toolResponse": {
                "functionResponses": [
                    { "id": call_id, "name": name, "response": { "result": output } },
                ],
            },
        })],
        // Gemini keeps no per-item audio to truncate, and stops its own
        // response when it hears the caller.
        ClientCommand::Truncate { .. } | ClientCommand::CancelResponse => Vec::new(),
        ClientCommand::UserText(text) => vec![user_turn(text)],
        ClientCommand::Respond { instructions } => {
            vec![user_turn(instructions.as_deref().unwrap_or(CONTINUE))]
        }
        ClientCommand::Close => Vec::new(),
    }
}

fn user_turn(text: &str) -> Value {
    json!({
        "clientContent": {
            "turns": [{ "role": "user", "parts": [{ "text": text }] }],
            "turnComplete": true,
        },
    })
}

/// TurnDetection -> `automaticActivityDetection`.
fn activity_detection(td: &TurnDetection) -> Value {
    match td {
        TurnDetection::ServerVad {
            threshold,
            prefix_padding_ms,
            silence_duration_ms,
        } => {
            let mut aad = json!({
                "prefixPaddingMs": prefix_padding_ms,
                "silenceDurationMs": silence_duration_ms,
            });
            // A high VAD threshold means "needs louder speech": low start
            // sensitivity; a low one the opposite; the middle keeps
            // Gemini's default.
            if *threshold > 0.6 {
                aad["startOfSpeechSensitivity"] = json!("START_SENSITIVITY_LOW");
            } else if *threshold < 0.4 {
                aad["startOfSpeechSensitivity"] = json!("START_SENSITIVITY_HIGH");
            }
            aad
        }
        // An eager model ends the caller's turn sooner: high end-of-speech
        // sensitivity.
        TurnDetection::SemanticVad { eagerness } => match eagerness_name(eagerness) {
            "high" => json!({ "endOfSpeechSensitivity": "END_SENSITIVITY_HIGH" }),
            "low" => json!({ "endOfSpeechSensitivity": "END_SENSITIVITY_LOW" }),
            _ => json!({}),
        },
        TurnDetection::Manual => json!({ "disabled": true }),
    }
}

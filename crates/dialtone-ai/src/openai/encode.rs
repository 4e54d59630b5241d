//! OpenAI Realtime (GA) client events: the `session.update` that configures
//! a session, the `conversation.item.create` items that carry history over,
//! and one or two events per [`ClientCommand`]. Field names follow
//! openai-python's `openai.types.realtime` models exactly (the tests check
//! the goldens against them), and nothing is sent that those models do not
//! know.

use serde_json::{json, Value};

use crate::json::base64;
use crate::protocol::{
    eagerness_name, AudioFormat, ClientCommand, HistoryItem, Role, SessionConfig, TurnDetection,
};

/// The `session.update` sent first: model, voice, formats, turn detection,
/// transcription, tools.
pub(super) fn session_update(cfg: &SessionConfig) -> Value {
    let mut input = json!({
        "format": format(cfg.input),
        "turn_detection": turn_detection(&cfg.turn_detection, cfg.interrupt_response),
    });
    if let Some(model) = &cfg.transcription_model {
        input["transcription"] = json!({ "model": model });
    }
    let mut session = json!({
        "type": "realtime",
        "model": cfg.model(),
        "instructions": cfg.instructions,
        "output_modalities": ["audio"],
        "audio": {
            "input": input,
            "output": { "format": format(cfg.output), "voice": cfg.voice() },
        },
    });
    if !cfg.tools.is_empty() {
        let tools: Vec<Value> = cfg
            .tools
            .iter()
            .map(|t| {
                json!({
                    "type": "function",
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.parameters,
                })
            })
            .collect();
        session["tools"] = Value::Array(tools);
        session["tool_choice"] = json!("auto");
    }
    json!({ "type": "session.update", "session": session })
}

/// One line of carried-over conversation as a conversation item. An
/// assistant line is `output_text` (the GA API cannot take assistant audio
/// items, and `input_text` is only for user messages).
pub(super) fn history_item(item: &HistoryItem) -> Value {
    let (role, kind) = match item.role {
        Role::User => ("user", "input_text"),
        Role::Assistant => ("assistant", "output_text"),
    };
    json!({
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": role,
            "content": [{ "type": kind, "text": item.text }],
        },
    })
}

/// The events for one command, in the order they must be sent.
pub(super) fn command(cmd: &ClientCommand) -> Vec<Value> {
    match cmd {
        // An empty append is an error on OpenAI's side; there is nothing to say.
        ClientCommand::Audio(data) if data.is_empty() => Vec::new(),
        ClientCommand::Audio(data) => {
            vec![json!({ "type": "input_audio_buffer.append", "audio": base64(data) })]
        }
        // A function's output does not make the model speak by itself.
        ClientCommand::ToolResult {
            call_id, output, ..
        } => vec![
            json!({
                "type": "conversation.item.create",
                "item": { "type": "function_call_output", "call_id": call_id, "output": output },
            }),
            response_create(None),
        ],
        ClientCommand::Truncate {
            item_id,
            audio_end_ms,
        } => vec![json!({
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": 0,
            "audio_end_ms": audio_end_ms,
        })],
        ClientCommand::CancelResponse => vec![json!({ "type": "response.cancel" })],
        ClientCommand::UserText(text) => vec![
            history_item(&HistoryItem {
                role: Role::User,
                text: text.clone(),
            }),
            response_create(None),
        ],
        ClientCommand::Respond { instructions } => vec![response_create(instructions.as_deref())],
        // The session driver closes the websocket itself.
        ClientCommand::Close => Vec::new(),
    }
}

fn response_create(instructions: Option<&str>) -> Value {
    match instructions {
        Some(text) => json!({ "type": "response.create", "response": { "instructions": text } }),
        None => json!({ "type": "response.create" }),
    }
}

fn format(f: AudioFormat) -> Value {
    match f {
        AudioFormat::Pcmu => json!({ "type": "audio/pcmu" }),
        AudioFormat::Pcma => json!({ "type": "audio/pcma" }),
        // OpenAI takes 24 kHz only; another rate is a configuration error
        // that the server reports, so it is passed on as configured.
        AudioFormat::Pcm16 { rate } => json!({ "type": "audio/pcm", "rate": rate }),
    }
}

fn turn_detection(td: &TurnDetection, interrupt_response: bool) -> Value {
    match td {
        TurnDetection::ServerVad {
            threshold,
            prefix_padding_ms,
            silence_duration_ms,
        } => json!({
            "type": "server_vad",
            "threshold": clean_f32(*threshold),
            "prefix_padding_ms": prefix_padding_ms,
            "silence_duration_ms": silence_duration_ms,
            "create_response": true,
            "interrupt_response": interrupt_response,
        }),
        TurnDetection::SemanticVad { eagerness } => json!({
            "type": "semantic_vad",
            "eagerness": eagerness_name(eagerness),
            "create_response": true,
            "interrupt_response": interrupt_response,
        }),
        TurnDetection::Manual => Value::Null,
    }
}

/// An f32 as the decimal a person wrote (0.6, not 0.6000000238418579), and
/// the documented default for a NaN or infinity.
fn clean_f32(x: f32) -> f64 {
    if !x.is_finite() {
        return 0.5;
    }
    x.to_string().parse::<f64>().unwrap_or(f64::from(x))
}

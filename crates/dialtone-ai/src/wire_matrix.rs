//! Every kind of message `open` and `encode` produce, for a matrix of
//! configurations (formats, turn detection, tools, transcription, history,
//! resume handle) and every command, for both providers. The test checks
//! that each is a JSON object of the provider's shape; with
//! `DIALTONE_AI_WIRE_DUMP=FILE` it also writes them as JSON lines
//! (`{"provider":…,"message":…}`) so that they can be validated against the
//! providers' official SDK types outside the repo.

use serde_json::{json, Value};

use crate::protocol::{
    AudioFormat, ClientCommand, HistoryItem, Provider, Role, SessionConfig, ToolSpec, TurnDetection,
};

fn configs(provider: Provider) -> Vec<SessionConfig> {
    let tools = vec![
        ToolSpec {
            name: "transfer_call".into(),
            description: "Transfer the caller to a person or a queue".into(),
            parameters: json!({
                "type": "object",
                "$schema": "http://json-schema.org/draft-07/schema#",
                "additionalProperties": false,
                "properties": {
                    "target": {"type": "string", "description": "extension or queue", "enum": ["sales", "support"]},
                    "mode": {"type": ["string", "null"], "default": "blind"},
                    "attempts": {"type": "integer", "minimum": 1, "maximum": 3},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "contact": {"$ref": "#/$defs/Contact"},
                    "level": {"anyOf": [{"type": "number"}, {"type": "null"}]}
                },
                "$defs": {"Contact": {"type": "object", "properties": {"name": {"type": "string"}}}},
                "required": ["target"]
            }),
        },
        ToolSpec {
            name: "hangup_call".into(),
            description: "End the call".into(),
            parameters: json!({"type": "object", "properties": {}}),
        },
    ];
    let history = vec![
        HistoryItem {
            role: Role::User,
            text: "I need sales".into(),
        },
        HistoryItem {
            role: Role::Assistant,
            text: "Putting you through".into(),
        },
    ];
    let detections = [
        TurnDetection::default(),
        TurnDetection::ServerVad {
            threshold: 0.8,
            prefix_padding_ms: 100,
            silence_duration_ms: 900,
        },
        TurnDetection::ServerVad {
            threshold: 0.2,
            prefix_padding_ms: 0,
            silence_duration_ms: 200,
        },
        TurnDetection::SemanticVad {
            eagerness: "high".into(),
        },
        TurnDetection::SemanticVad {
            eagerness: "low".into(),
        },
        TurnDetection::SemanticVad {
            eagerness: "auto".into(),
        },
        TurnDetection::Manual,
    ];
    let formats = match provider {
        Provider::OpenAi => vec![
            (AudioFormat::Pcmu, AudioFormat::Pcmu),
            (AudioFormat::Pcma, AudioFormat::Pcma),
            (
                AudioFormat::Pcm16 { rate: 24_000 },
                AudioFormat::Pcm16 { rate: 24_000 },
            ),
        ],
        Provider::Gemini => vec![provider.formats(None)],
    };
    let mut out = Vec::new();
    for (i, td) in detections.iter().enumerate() {
        for (input, output) in &formats {
            let mut cfg = SessionConfig::new(provider, "ws://127.0.0.1:1/");
            cfg.instructions = if i % 2 == 0 {
                "You are the receptionist.".into()
            } else {
                String::new()
            };
            cfg.turn_detection = td.clone();
            cfg.input = *input;
            cfg.output = *output;
            cfg.interrupt_response = i % 2 == 1;
            out.push(cfg.clone());
            cfg.tools = tools.clone();
            cfg.transcription_model = Some("gpt-4o-mini-transcribe".into());
            cfg.history = history.clone();
            cfg.model = Some(match provider {
                Provider::OpenAi => "gpt-realtime-mini".into(),
                Provider::Gemini => "gemini-2.5-flash-native-audio-preview-12-2025".into(),
            });
            cfg.voice = Some(match provider {
                Provider::OpenAi => "marin".into(),
                Provider::Gemini => "Kore".into(),
            });
            out.push(cfg.clone());
            cfg.resume_handle = Some("resume-handle-1".into());
            out.push(cfg);
        }
    }
    out
}

fn commands() -> Vec<ClientCommand> {
    vec![
        ClientCommand::Audio(vec![0x7f; 160]),
        ClientCommand::Audio(Vec::new()),
        ClientCommand::ToolResult {
            call_id: "call_1".into(),
            name: "transfer_call".into(),
            output: "{\"transferred\":true}".into(),
        },
        ClientCommand::Truncate {
            item_id: "item_1".into(),
            audio_end_ms: 1500,
        },
        ClientCommand::CancelResponse,
        ClientCommand::UserText("The caller pressed 1".into()),
        ClientCommand::Respond { instructions: None },
        ClientCommand::Respond {
            instructions: Some("Greet the caller".into()),
        },
        ClientCommand::Close,
    ]
}

/// Every message, tagged with its provider.
fn all_messages() -> Result<Vec<(Provider, Value)>, serde_json::Error> {
    let mut out = Vec::new();
    for provider in [Provider::OpenAi, Provider::Gemini] {
        for cfg in configs(provider) {
            let mut p = provider.protocol();
            let mut texts = p.open(&cfg);
            for cmd in commands() {
                texts.extend(p.encode(&cmd));
            }
            for text in texts {
                out.push((provider, serde_json::from_str(&text)?));
            }
        }
    }
    Ok(out)
}

#[test]
fn every_message_is_well_formed() -> Result<(), Box<dyn std::error::Error>> {
    let messages = all_messages()?;
    let mut dump = String::new();
    for (provider, msg) in &messages {
        let obj = msg.as_object().ok_or("not an object")?;
        match provider {
            Provider::OpenAi => assert!(obj.get("type").is_some_and(Value::is_string), "{msg}"),
            // Gemini client messages hold exactly one of their kinds.
            Provider::Gemini => assert_eq!(obj.len(), 1, "{msg}"),
        }
        dump.push_str(&json!({"provider": provider.as_str(), "message": msg}).to_string());
        dump.push('\n');
    }
    if let Some(path) = std::env::var_os("DIALTONE_AI_WIRE_DUMP") {
        std::fs::write(path, dump)?;
    }
    Ok(())
}

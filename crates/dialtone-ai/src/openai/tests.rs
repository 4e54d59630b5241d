//! Goldens for the OpenAI adapter: every message `open` and `encode` can
//! produce (each checked against openai-python's realtime client event
//! models outside the repo), and every server event mapping, beta names
//! included, plus garbage that must fail cleanly.

use serde_json::{json, Value};

use super::{host, with_model, OpenAiProtocol};
use crate::protocol::{
    AudioFormat, ClientCommand, HistoryItem, Provider, RealtimeProtocol, Role, ServerEvent,
    SessionConfig, ToolSpec, TurnDetection,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn parse_all(msgs: Vec<String>) -> Result<Vec<Value>, serde_json::Error> {
    msgs.iter().map(|m| serde_json::from_str(m)).collect()
}

fn cfg() -> SessionConfig {
    let mut cfg = SessionConfig::new(Provider::OpenAi, "wss://api.openai.com/v1/realtime");
    cfg.api_key = Some("sk-test".into());
    cfg.instructions = "You are the receptionist.".into();
    cfg.input = AudioFormat::Pcmu;
    cfg.output = AudioFormat::Pcmu;
    cfg
}

fn transfer_tool() -> ToolSpec {
    ToolSpec {
        name: "transfer_call".into(),
        description: "Transfer the caller".into(),
        parameters: json!({
            "type": "object",
            "properties": {"target": {"type": "string"}},
            "required": ["target"]
        }),
    }
}

fn decode(p: &mut OpenAiProtocol, v: Value) -> Vec<ServerEvent> {
    p.decode(v.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("{v}: {e}"))
}

#[test]
fn open_full_session_update() -> TestResult {
    let mut c = cfg();
    c.tools = vec![transfer_tool()];
    c.transcription_model = Some("gpt-4o-mini-transcribe".into());
    let msgs = parse_all(OpenAiProtocol::new().open(&c))?;
    assert_eq!(
        msgs,
        vec![json!({
            "type": "session.update",
            "session": {
                "type": "realtime",
                "model": "gpt-realtime",
                "instructions": "You are the receptionist.",
                "output_modalities": ["audio"],
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcmu"},
                        "turn_detection": {
                            "type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
                            "silence_duration_ms": 500, "create_response": true,
                            "interrupt_response": true
                        },
                        "transcription": {"model": "gpt-4o-mini-transcribe"}
                    },
                    "output": {"format": {"type": "audio/pcmu"}, "voice": "alloy"}
                },
                "tools": [{
                    "type": "function", "name": "transfer_call",
                    "description": "Transfer the caller",
                    "parameters": {
                        "type": "object",
                        "properties": {"target": {"type": "string"}},
                        "required": ["target"]
                    }
                }],
                "tool_choice": "auto"
            }
        })]
    );
    Ok(())
}

#[test]
fn open_minimal_omits_tools_and_transcription() -> TestResult {
    let mut c = cfg();
    c.input = AudioFormat::Pcm16 { rate: 24_000 };
    c.output = AudioFormat::Pcma;
    c.model = Some("gpt-realtime-mini".into());
    c.voice = Some("marin".into());
    c.turn_detection = TurnDetection::Manual;
    let msgs = parse_all(OpenAiProtocol::new().open(&c))?;
    assert_eq!(msgs.len(), 1);
    let session = &msgs[0]["session"];
    assert_eq!(session["model"], "gpt-realtime-mini");
    assert_eq!(
        session["audio"]["input"],
        json!({"format": {"type": "audio/pcm", "rate": 24000}, "turn_detection": null})
    );
    assert_eq!(
        session["audio"]["output"],
        json!({"format": {"type": "audio/pcma"}, "voice": "marin"})
    );
    assert!(session.get("tools").is_none());
    assert!(session.get("tool_choice").is_none());
    Ok(())
}

#[test]
fn turn_detection_variants() -> TestResult {
    let mut c = cfg();
    c.interrupt_response = false;
    c.turn_detection = TurnDetection::ServerVad {
        threshold: 0.6,
        prefix_padding_ms: 200,
        silence_duration_ms: 700,
    };
    let msgs = parse_all(OpenAiProtocol::new().open(&c))?;
    assert_eq!(
        msgs[0]["session"]["audio"]["input"]["turn_detection"],
        json!({
            "type": "server_vad", "threshold": 0.6, "prefix_padding_ms": 200,
            "silence_duration_ms": 700, "create_response": true, "interrupt_response": false
        })
    );
    for (given, sent) in [
        ("high", "high"),
        ("LOW", "low"),
        ("auto", "auto"),
        ("bogus", "auto"),
    ] {
        c.turn_detection = TurnDetection::SemanticVad {
            eagerness: given.into(),
        };
        let msgs = parse_all(OpenAiProtocol::new().open(&c))?;
        assert_eq!(
            msgs[0]["session"]["audio"]["input"]["turn_detection"],
            json!({
                "type": "semantic_vad", "eagerness": sent,
                "create_response": true, "interrupt_response": false
            })
        );
    }
    Ok(())
}

#[test]
fn open_with_history() -> TestResult {
    let mut c = cfg();
    c.history = vec![
        HistoryItem {
            role: Role::User,
            text: "I need sales".into(),
        },
        HistoryItem {
            role: Role::Assistant,
            text: "Putting you through".into(),
        },
    ];
    let msgs = parse_all(OpenAiProtocol::new().open(&c))?;
    assert_eq!(msgs.len(), 3);
    assert_eq!(msgs[0]["type"], "session.update");
    assert_eq!(
        msgs[1],
        json!({"type": "conversation.item.create", "item": {
            "type": "message", "role": "user",
            "content": [{"type": "input_text", "text": "I need sales"}]
        }})
    );
    assert_eq!(
        msgs[2],
        json!({"type": "conversation.item.create", "item": {
            "type": "message", "role": "assistant",
            "content": [{"type": "output_text", "text": "Putting you through"}]
        }})
    );
    Ok(())
}

#[test]
fn encode_every_command() -> TestResult {
    let mut p = OpenAiProtocol::new();
    let mut enc = |cmd: ClientCommand| parse_all(p.encode(&cmd));
    assert_eq!(
        enc(ClientCommand::Audio(vec![0xff, 0x7f, 0x00]))?,
        vec![json!({"type": "input_audio_buffer.append", "audio": "/38A"})]
    );
    assert_eq!(enc(ClientCommand::Audio(Vec::new()))?, Vec::<Value>::new());
    assert_eq!(
        enc(ClientCommand::ToolResult {
            call_id: "call_1".into(),
            name: "transfer_call".into(),
            output: "{\"ok\":true}".into(),
        })?,
        vec![
            json!({"type": "conversation.item.create", "item": {
                "type": "function_call_output", "call_id": "call_1", "output": "{\"ok\":true}"
            }}),
            json!({"type": "response.create"}),
        ]
    );
    assert_eq!(
        enc(ClientCommand::Truncate {
            item_id: "item_9".into(),
            audio_end_ms: 1234,
        })?,
        vec![json!({
            "type": "conversation.item.truncate", "item_id": "item_9",
            "content_index": 0, "audio_end_ms": 1234
        })]
    );
    assert_eq!(
        enc(ClientCommand::CancelResponse)?,
        vec![json!({"type": "response.cancel"})]
    );
    assert_eq!(
        enc(ClientCommand::UserText("The caller pressed 1".into()))?,
        vec![
            json!({"type": "conversation.item.create", "item": {
                "type": "message", "role": "user",
                "content": [{"type": "input_text", "text": "The caller pressed 1"}]
            }}),
            json!({"type": "response.create"}),
        ]
    );
    assert_eq!(
        enc(ClientCommand::Respond { instructions: None })?,
        vec![json!({"type": "response.create"})]
    );
    assert_eq!(
        enc(ClientCommand::Respond {
            instructions: Some("Greet the caller".into()),
        })?,
        vec![json!({"type": "response.create", "response": {"instructions": "Greet the caller"}})]
    );
    assert_eq!(enc(ClientCommand::Close)?, Vec::<Value>::new());
    Ok(())
}

#[test]
fn handshake_headers_and_url() {
    let p = OpenAiProtocol::new();
    let mut c = cfg();
    assert_eq!(
        p.handshake_headers(&c),
        vec![("Authorization".to_string(), "Bearer sk-test".to_string())]
    );
    assert_eq!(
        p.url(&c),
        "wss://api.openai.com/v1/realtime?model=gpt-realtime"
    );
    c.url = "wss://res.openai.azure.com/openai/v1/realtime?model=my-deploy".into();
    assert_eq!(
        p.handshake_headers(&c),
        vec![("api-key".to_string(), "sk-test".to_string())]
    );
    assert_eq!(p.url(&c), c.url);
    c.api_key = None;
    assert!(p.handshake_headers(&c).is_empty());

    assert_eq!(host("wss://user@Example.COM:443/x?y"), "example.com");
    assert_eq!(
        with_model("ws://h/r?a=1", "m 1"),
        "ws://h/r?a=1&model=m%201"
    );
    assert_eq!(with_model("ws://h/r?", "m"), "ws://h/r?model=m");
    assert_eq!(
        with_model("ws://h/r?deployment=d", "m"),
        "ws://h/r?deployment=d"
    );
    assert_eq!(with_model("ws://h/r#f", "m"), "ws://h/r?model=m#f");
}

#[test]
fn ready_is_the_first_session_updated_only() {
    let mut p = OpenAiProtocol::new();
    assert!(decode(&mut p, json!({"type": "session.created", "session": {}})).is_empty());
    let updated = json!({"type": "session.updated", "event_id": "e1", "session": {}});
    assert_eq!(decode(&mut p, updated.clone()), vec![ServerEvent::Ready]);
    assert!(decode(&mut p, updated).is_empty());
}

#[test]
fn audio_and_transcripts_ga_and_beta() {
    let mut p = OpenAiProtocol::new();
    for name in ["response.output_audio.delta", "response.audio.delta"] {
        let v = json!({"type": name, "item_id": "it", "response_id": "r", "delta": "AQID"});
        assert_eq!(
            decode(&mut p, v),
            vec![ServerEvent::Audio {
                item_id: Some("it".into()),
                data: vec![1, 2, 3]
            }]
        );
    }
    for name in ["response.output_audio.done", "response.audio.done"] {
        assert_eq!(
            decode(&mut p, json!({"type": name, "item_id": "it"})),
            vec![ServerEvent::AudioDone {
                item_id: Some("it".into())
            }]
        );
    }
    for name in [
        "response.output_audio_transcript.delta",
        "response.audio_transcript.delta",
    ] {
        assert_eq!(
            decode(
                &mut p,
                json!({"type": name, "item_id": "it", "delta": "Hel"})
            ),
            vec![ServerEvent::AgentTranscript {
                item_id: Some("it".into()),
                text: "Hel".into(),
                done: false
            }]
        );
    }
    for name in [
        "response.output_audio_transcript.done",
        "response.audio_transcript.done",
    ] {
        let v = json!({"type": name, "item_id": "it", "transcript": "Hello there"});
        assert_eq!(
            decode(&mut p, v),
            vec![ServerEvent::AgentTranscript {
                item_id: Some("it".into()),
                text: "Hello there".into(),
                done: true
            }]
        );
    }
    let v = json!({
        "type": "conversation.item.input_audio_transcription.completed",
        "item_id": "u1", "content_index": 0, "transcript": "I need sales"
    });
    assert_eq!(
        decode(&mut p, v),
        vec![ServerEvent::CallerTranscript {
            text: "I need sales".into()
        }]
    );
}

#[test]
fn speech_response_and_idle_events() {
    let mut p = OpenAiProtocol::new();
    let v = json!({"type": "input_audio_buffer.speech_started", "audio_start_ms": 1500, "item_id": "u2"});
    assert_eq!(
        decode(&mut p, v),
        vec![ServerEvent::SpeechStarted {
            item_id: Some("u2".into()),
            audio_start_ms: Some(1500)
        }]
    );
    let v = json!({"type": "input_audio_buffer.speech_started", "audio_start_ms": -4});
    assert_eq!(
        decode(&mut p, v),
        vec![ServerEvent::SpeechStarted {
            item_id: None,
            audio_start_ms: None
        }]
    );
    assert_eq!(
        decode(
            &mut p,
            json!({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 9})
        ),
        vec![ServerEvent::SpeechStopped]
    );
    assert_eq!(
        decode(
            &mut p,
            json!({"type": "input_audio_buffer.timeout_triggered"})
        ),
        vec![ServerEvent::IdleTimeout]
    );
    assert_eq!(
        decode(
            &mut p,
            json!({"type": "response.created", "response": {"id": "resp_1"}})
        ),
        vec![ServerEvent::ResponseStarted {
            response_id: Some("resp_1".into())
        }]
    );
    assert_eq!(
        decode(
            &mut p,
            json!({"type": "response.done", "response": {"status": "completed"}})
        ),
        vec![ServerEvent::ResponseDone { cancelled: false }]
    );
    assert_eq!(
        decode(
            &mut p,
            json!({"type": "response.done", "response": {"status": "cancelled"}})
        ),
        vec![ServerEvent::ResponseDone { cancelled: true }]
    );
    let failed = json!({"type": "response.done", "response": {"status": "failed",
        "status_details": {"type": "failed", "error": {"type": "server_error", "code": "quota", "message": "out of quota"}}}});
    assert_eq!(
        decode(&mut p, failed),
        vec![
            ServerEvent::Error {
                message: "out of quota".into(),
                code: Some("quota".into()),
                fatal: false
            },
            ServerEvent::ResponseDone { cancelled: false }
        ]
    );
}

#[test]
fn tool_calls_are_reported_once() {
    let mut p = OpenAiProtocol::new();
    let call = ServerEvent::ToolCall {
        call_id: "call_7".into(),
        name: "transfer_call".into(),
        arguments: "{\"target\":\"sales\"}".into(),
    };
    let args_done = json!({
        "type": "response.function_call_arguments.done", "event_id": "e", "item_id": "fc",
        "output_index": 0, "response_id": "r", "call_id": "call_7", "name": "transfer_call",
        "arguments": "{\"target\":\"sales\"}"
    });
    let item = json!({"type": "function_call", "id": "fc", "call_id": "call_7",
        "name": "transfer_call", "arguments": "{\"target\":\"sales\"}", "status": "completed"});
    let item_done = json!({"type": "response.output_item.done", "item": item});
    let done =
        json!({"type": "response.done", "response": {"status": "completed", "output": [item]}});
    assert_eq!(decode(&mut p, args_done.clone()), vec![call.clone()]);
    assert!(decode(&mut p, args_done).is_empty());
    assert!(decode(&mut p, item_done.clone()).is_empty());
    assert_eq!(
        decode(&mut p, done.clone()),
        vec![ServerEvent::ResponseDone { cancelled: false }]
    );

    // A deployment that only reports the call in response.done.
    let mut p = OpenAiProtocol::new();
    assert_eq!(
        decode(&mut p, done),
        vec![call.clone(), ServerEvent::ResponseDone { cancelled: false }]
    );
    // … or in response.output_item.done.
    let mut p = OpenAiProtocol::new();
    assert_eq!(decode(&mut p, item_done), vec![call]);
    // Messages are not calls.
    let msg = json!({"type": "response.output_item.done", "item": {"type": "message", "role": "assistant", "content": []}});
    assert!(decode(&mut p, msg).is_empty());
}

#[test]
fn error_events_are_not_fatal() {
    let mut p = OpenAiProtocol::new();
    let v = json!({"type": "error", "event_id": "e", "error": {
        "type": "invalid_request_error", "code": "invalid_value", "message": "Bad voice", "param": null}});
    assert_eq!(
        decode(&mut p, v),
        vec![ServerEvent::Error {
            message: "Bad voice".into(),
            code: Some("invalid_value".into()),
            fatal: false
        }]
    );
    let v = json!({"type": "error", "error": {"type": "server_error"}});
    assert_eq!(
        decode(&mut p, v),
        vec![ServerEvent::Error {
            message: "server_error".into(),
            code: None,
            fatal: false
        }]
    );
}

#[test]
fn ignored_events() {
    let mut p = OpenAiProtocol::new();
    for name in [
        "rate_limits.updated",
        "conversation.item.created",
        "conversation.item.added",
        "response.output_item.added",
        "response.content_part.added",
        "input_audio_buffer.committed",
        "response.function_call_arguments.delta",
        "output_audio_buffer.started",
        "some.future.event",
    ] {
        assert!(decode(&mut p, json!({"type": name, "whatever": [1, 2]})).is_empty());
    }
}

#[test]
fn binary_frames_are_decoded_too() -> TestResult {
    let mut p = OpenAiProtocol::new();
    let events = p.decode(br#"{"type":"input_audio_buffer.speech_stopped"}"#)?;
    assert_eq!(events, vec![ServerEvent::SpeechStopped]);
    Ok(())
}

#[test]
fn garbage_is_a_decode_error_never_a_panic() {
    let mut p = OpenAiProtocol::new();
    let huge = vec![b'['; 1 << 20];
    let mut bad: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"not json".to_vec(),
        vec![0xff, 0xfe, 0x00],
        b"[1,2,3]".to_vec(),
        b"\"session.updated\"".to_vec(),
        b"null".to_vec(),
        huge,
    ];
    for v in [
        json!({"no_type": 1}),
        json!({"type": 5}),
        json!({"type": "response.output_audio.delta", "delta": "***not base64***"}),
        json!({"type": "response.output_audio.delta"}),
        json!({"type": "response.audio.delta", "delta": 12}),
        json!({"type": "response.output_audio.delta", "delta": "AQID", "item_id": 3}),
        json!({"type": "response.output_audio_transcript.delta"}),
        json!({"type": "response.output_audio_transcript.done"}),
        json!({"type": "conversation.item.input_audio_transcription.completed"}),
        json!({"type": "response.function_call_arguments.done", "call_id": "c"}),
        json!({"type": "response.output_item.done"}),
        json!({"type": "response.done"}),
        json!({"type": "response.done", "response": {"output": [1]}}),
        json!({"type": "response.done", "response": {"status": 1}}),
        json!({"type": "response.created", "response": "r"}),
        json!({"type": "error"}),
        json!({"type": "error", "error": "boom"}),
        json!({"type": "input_audio_buffer.speech_started", "audio_start_ms": "x"}),
    ] {
        bad.push(v.to_string().into_bytes());
    }
    for msg in bad {
        let shown = String::from_utf8_lossy(&msg[..msg.len().min(80)]).into_owned();
        match p.decode(&msg) {
            Err(e) => assert!(!e.to_string().is_empty()),
            Ok(events) => panic!("{shown} decoded as {events:?}"),
        }
    }
}

#[test]
fn huge_audio_delta_decodes() -> TestResult {
    let mut p = OpenAiProtocol::new();
    let audio = vec![0x55u8; 3 << 20];
    let msg = json!({"type": "response.output_audio.delta", "delta": crate::json::base64(&audio)});
    let events = p.decode(msg.to_string().as_bytes())?;
    assert_eq!(
        events,
        vec![ServerEvent::Audio {
            item_id: None,
            data: audio
        }]
    );
    Ok(())
}

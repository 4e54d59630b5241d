//! Goldens for the Gemini adapter: every message `open` and `encode` can
//! produce (each checked against google-genai's `LiveClientMessage`
//! outside the repo), every server message mapping (binary frames, several
//! things in one message, goAway durations, resumption), and garbage that
//! must fail cleanly.

use std::time::Duration;

use serde_json::{json, Value};

use super::decode::parse_duration;
use super::GeminiProtocol;
use crate::protocol::{
    AudioFormat, ClientCommand, HistoryItem, Provider, RealtimeProtocol, Role, ServerEvent,
    SessionConfig, ToolSpec, TurnDetection,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn parse_all(msgs: Vec<String>) -> Result<Vec<Value>, serde_json::Error> {
    msgs.iter().map(|m| serde_json::from_str(m)).collect()
}

fn cfg() -> SessionConfig {
    let mut cfg = SessionConfig::new(
        Provider::Gemini,
        "wss://generativelanguage.googleapis.com/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent",
    );
    cfg.api_key = Some("AIza-test".into());
    cfg.instructions = "You are the receptionist.".into();
    cfg
}

fn history() -> Vec<HistoryItem> {
    vec![
        HistoryItem {
            role: Role::User,
            text: "I need sales".into(),
        },
        HistoryItem {
            role: Role::Assistant,
            text: "Putting you through".into(),
        },
    ]
}

/// Decodes `v` sent as a binary frame, as Gemini sends it.
fn decode(p: &mut GeminiProtocol, v: Value) -> Vec<ServerEvent> {
    p.decode(v.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("{v}: {e}"))
}

#[test]
fn open_full_setup() -> TestResult {
    let mut c = cfg();
    c.tools = vec![ToolSpec {
        name: "transfer_call".into(),
        description: "Transfer the caller".into(),
        parameters: json!({
            "type": "object",
            "properties": {"target": {"type": "string", "description": "who"}},
            "required": ["target"],
            "additionalProperties": false
        }),
    }];
    c.transcription_model = Some("whatever".into());
    c.resume_handle = Some("handle-1".into());
    c.history = history();
    let msgs = parse_all(GeminiProtocol::new().open(&c))?;
    // A resumed session keeps its own conversation: no history is sent.
    assert_eq!(
        msgs,
        vec![json!({"setup": {
            "model": "models/gemini-3.1-flash-live-preview",
            "generationConfig": {
                "responseModalities": ["AUDIO"],
                "speechConfig": {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Puck"}}}
            },
            "systemInstruction": {"parts": [{"text": "You are the receptionist."}]},
            "tools": [{"functionDeclarations": [{
                "name": "transfer_call",
                "description": "Transfer the caller",
                "parameters": {
                    "type": "OBJECT",
                    "properties": {"target": {"type": "STRING", "description": "who"}},
                    "required": ["target"]
                }
            }]}],
            "realtimeInputConfig": {"automaticActivityDetection": {
                "prefixPaddingMs": 300, "silenceDurationMs": 500
            }},
            "inputAudioTranscription": {},
            "outputAudioTranscription": {},
            "sessionResumption": {"handle": "handle-1"}
        }})]
    );
    Ok(())
}

#[test]
fn open_minimal_with_history() -> TestResult {
    let mut c = cfg();
    c.instructions.clear();
    c.model = Some("gemini-2.5-flash-native-audio-preview-12-2025".into());
    c.voice = Some("Kore".into());
    c.turn_detection = TurnDetection::Manual;
    c.tools = vec![ToolSpec {
        name: "hangup_call".into(),
        description: "End the call".into(),
        parameters: json!({"type": "object", "properties": {}}),
    }];
    c.history = history();
    let msgs = parse_all(GeminiProtocol::new().open(&c))?;
    assert_eq!(msgs.len(), 2);
    let setup = &msgs[0]["setup"];
    assert_eq!(
        setup["model"],
        "models/gemini-2.5-flash-native-audio-preview-12-2025"
    );
    assert_eq!(
        setup["generationConfig"]["speechConfig"]["voiceConfig"]["prebuiltVoiceConfig"]
            ["voiceName"],
        "Kore"
    );
    assert!(setup.get("systemInstruction").is_none());
    assert!(setup.get("inputAudioTranscription").is_none());
    assert_eq!(setup["outputAudioTranscription"], json!({}));
    assert_eq!(setup["sessionResumption"], json!({}));
    assert_eq!(
        setup["realtimeInputConfig"],
        json!({"automaticActivityDetection": {"disabled": true}})
    );
    // No parameters: Gemini refuses an OBJECT without properties.
    assert_eq!(
        setup["tools"],
        json!([{"functionDeclarations": [{"name": "hangup_call", "description": "End the call"}]}])
    );
    assert_eq!(
        msgs[1],
        json!({"clientContent": {"turns": [
            {"role": "user", "parts": [{"text": "I need sales"}]},
            {"role": "model", "parts": [{"text": "Putting you through"}]}
        ], "turnComplete": false}})
    );
    Ok(())
}

#[test]
fn activity_detection_mapping() -> TestResult {
    let aad = |td: TurnDetection| -> Result<Value, serde_json::Error> {
        let mut c = cfg();
        c.turn_detection = td;
        let msgs = parse_all(GeminiProtocol::new().open(&c))?;
        Ok(msgs[0]["setup"]["realtimeInputConfig"]["automaticActivityDetection"].clone())
    };
    let vad = |threshold| TurnDetection::ServerVad {
        threshold,
        prefix_padding_ms: 100,
        silence_duration_ms: 800,
    };
    assert_eq!(
        aad(vad(0.8))?,
        json!({"prefixPaddingMs": 100, "silenceDurationMs": 800,
               "startOfSpeechSensitivity": "START_SENSITIVITY_LOW"})
    );
    assert_eq!(
        aad(vad(0.2))?,
        json!({"prefixPaddingMs": 100, "silenceDurationMs": 800,
               "startOfSpeechSensitivity": "START_SENSITIVITY_HIGH"})
    );
    let semantic = |e: &str| TurnDetection::SemanticVad {
        eagerness: e.into(),
    };
    assert_eq!(
        aad(semantic("high"))?,
        json!({"endOfSpeechSensitivity": "END_SENSITIVITY_HIGH"})
    );
    assert_eq!(
        aad(semantic("low"))?,
        json!({"endOfSpeechSensitivity": "END_SENSITIVITY_LOW"})
    );
    assert_eq!(aad(semantic("auto"))?, json!({}));
    Ok(())
}

#[test]
fn encode_every_command() -> TestResult {
    let mut p = GeminiProtocol::new();
    p.open(&cfg());
    let mut enc = |cmd: ClientCommand| parse_all(p.encode(&cmd));
    assert_eq!(
        enc(ClientCommand::Audio(vec![1, 2, 3]))?,
        vec![
            json!({"realtimeInput": {"audio": {"data": "AQID", "mimeType": "audio/pcm;rate=16000"}}})
        ]
    );
    assert_eq!(enc(ClientCommand::Audio(Vec::new()))?, Vec::<Value>::new());
    assert_eq!(
        enc(ClientCommand::ToolResult {
            call_id: "fc-1".into(),
            name: "transfer_call".into(),
            output: "transferred".into(),
        })?,
        vec![json!({"toolResponse": {"functionResponses": [
            {"id": "fc-1", "name": "transfer_call", "response": {"result": "transferred"}}
        ]}})]
    );
    assert_eq!(
        enc(ClientCommand::Truncate {
            item_id: "x".into(),
            audio_end_ms: 5,
        })?,
        Vec::<Value>::new()
    );
    assert_eq!(enc(ClientCommand::CancelResponse)?, Vec::<Value>::new());
    assert_eq!(
        enc(ClientCommand::UserText("The caller pressed 1".into()))?,
        vec![json!({"clientContent": {"turns": [
            {"role": "user", "parts": [{"text": "The caller pressed 1"}]}
        ], "turnComplete": true}})]
    );
    assert_eq!(
        enc(ClientCommand::Respond {
            instructions: Some("Greet the caller".into()),
        })?,
        vec![json!({"clientContent": {"turns": [
            {"role": "user", "parts": [{"text": "Greet the caller"}]}
        ], "turnComplete": true}})]
    );
    assert_eq!(
        enc(ClientCommand::Respond { instructions: None })?,
        vec![json!({"clientContent": {"turns": [
            {"role": "user", "parts": [{"text": "Continue."}]}
        ], "turnComplete": true}})]
    );
    assert_eq!(enc(ClientCommand::Close)?, Vec::<Value>::new());
    Ok(())
}

#[test]
fn audio_is_labelled_with_the_configured_rate() -> TestResult {
    let mut p = GeminiProtocol::new();
    let mut c = cfg();
    c.input = AudioFormat::Pcm16 { rate: 24_000 };
    p.open(&c);
    let msgs = parse_all(p.encode(&ClientCommand::Audio(vec![0, 0])))?;
    assert_eq!(
        msgs[0]["realtimeInput"]["audio"]["mimeType"],
        "audio/pcm;rate=24000"
    );
    Ok(())
}

#[test]
fn key_goes_in_a_header_never_the_url() {
    let p = GeminiProtocol::new();
    let mut c = cfg();
    assert_eq!(
        p.handshake_headers(&c),
        vec![("x-goog-api-key".to_string(), "AIza-test".to_string())]
    );
    assert_eq!(p.url(&c), c.url);
    c.api_key = None;
    assert!(p.handshake_headers(&c).is_empty());
}

#[test]
fn setup_complete_and_a_whole_turn() {
    let mut p = GeminiProtocol::new();
    assert_eq!(
        decode(&mut p, json!({"setupComplete": {}})),
        vec![ServerEvent::Ready]
    );
    let audio = |data: &str| {
        json!({"serverContent": {"modelTurn": {"parts": [
            {"inlineData": {"mimeType": "audio/pcm;rate=24000", "data": data}}
        ]}}})
    };
    assert_eq!(
        decode(&mut p, audio("AQID")),
        vec![
            ServerEvent::ResponseStarted { response_id: None },
            ServerEvent::Audio {
                item_id: None,
                data: vec![1, 2, 3]
            }
        ]
    );
    assert_eq!(
        decode(&mut p, audio("BAU=")),
        vec![ServerEvent::Audio {
            item_id: None,
            data: vec![4, 5]
        }]
    );
    assert_eq!(
        decode(
            &mut p,
            json!({"serverContent": {"outputTranscription": {"text": "Hello"}}})
        ),
        vec![ServerEvent::AgentTranscript {
            item_id: None,
            text: "Hello".into(),
            done: false
        }]
    );
    assert_eq!(
        decode(
            &mut p,
            json!({"serverContent": {"generationComplete": true}})
        ),
        vec![ServerEvent::AudioDone { item_id: None }]
    );
    assert_eq!(
        decode(
            &mut p,
            json!({"serverContent": {"turnComplete": true}, "usageMetadata": {"totalTokenCount": 9}})
        ),
        vec![ServerEvent::ResponseDone { cancelled: false }]
    );
    // The next turn starts a new response.
    assert_eq!(
        decode(&mut p, audio("AQID"))[0],
        ServerEvent::ResponseStarted { response_id: None }
    );
}

#[test]
fn everything_in_one_message() {
    let mut p = GeminiProtocol::new();
    let v = json!({"serverContent": {
        "modelTurn": {"parts": [
            {"inlineData": {"mimeType": "audio/pcm;rate=24000", "data": "AQ=="}},
            {"text": "thinking", "thought": true},
            {"inlineData": {"mimeType": "image/png", "data": "AQ=="}},
            {"inlineData": {"data": "Ag=="}}
        ]},
        "inputTranscription": {"text": "hi"},
        "outputTranscription": {"text": "Hello"},
        "generationComplete": true,
        "turnComplete": true
    }});
    assert_eq!(
        decode(&mut p, v),
        vec![
            ServerEvent::CallerTranscript { text: "hi".into() },
            ServerEvent::ResponseStarted { response_id: None },
            ServerEvent::Audio {
                item_id: None,
                data: vec![1]
            },
            ServerEvent::Audio {
                item_id: None,
                data: vec![2]
            },
            ServerEvent::AgentTranscript {
                item_id: None,
                text: "Hello".into(),
                done: false
            },
            ServerEvent::AudioDone { item_id: None },
            ServerEvent::ResponseDone { cancelled: false },
        ]
    );
}

#[test]
fn interruption_cancels_the_turn() {
    let mut p = GeminiProtocol::new();
    let audio =
        json!({"serverContent": {"modelTurn": {"parts": [{"inlineData": {"data": "AQ=="}}]}}});
    decode(&mut p, audio.clone());
    assert_eq!(
        decode(&mut p, json!({"serverContent": {"interrupted": true}})),
        vec![ServerEvent::Interrupted]
    );
    assert_eq!(
        decode(&mut p, json!({"serverContent": {"turnComplete": true}})),
        vec![ServerEvent::ResponseDone { cancelled: true }]
    );
    // Interrupted with no turn complete after it: the next turn is new and whole.
    decode(&mut p, audio.clone());
    decode(&mut p, json!({"serverContent": {"interrupted": true}}));
    assert_eq!(
        decode(&mut p, audio)[0],
        ServerEvent::ResponseStarted { response_id: None }
    );
    assert_eq!(
        decode(&mut p, json!({"serverContent": {"turnComplete": true}})),
        vec![ServerEvent::ResponseDone { cancelled: false }]
    );
}

#[test]
fn tool_calls_and_cancellations() {
    let mut p = GeminiProtocol::new();
    let v = json!({"toolCall": {"functionCalls": [
        {"id": "fc-1", "name": "transfer_call", "args": {"target": "sales"}},
        {"name": "hangup_call"}
    ]}});
    assert_eq!(
        decode(&mut p, v),
        vec![
            ServerEvent::ToolCall {
                call_id: "fc-1".into(),
                name: "transfer_call".into(),
                arguments: "{\"target\":\"sales\"}".into()
            },
            ServerEvent::ToolCall {
                call_id: "hangup_call".into(),
                name: "hangup_call".into(),
                arguments: "{}".into()
            }
        ]
    );
    assert_eq!(
        decode(
            &mut p,
            json!({"toolCallCancellation": {"ids": ["fc-1", "fc-2"]}})
        ),
        vec![ServerEvent::ToolCallCancelled {
            call_ids: vec!["fc-1".into(), "fc-2".into()]
        }]
    );
}

#[test]
fn go_away_and_resumption() {
    let mut p = GeminiProtocol::new();
    assert_eq!(
        decode(&mut p, json!({"goAway": {"timeLeft": "57s"}})),
        vec![ServerEvent::GoAway {
            time_left: Some(Duration::from_secs(57))
        }]
    );
    assert_eq!(
        decode(&mut p, json!({"goAway": {"timeLeft": "soon"}})),
        vec![ServerEvent::GoAway { time_left: None }]
    );
    assert_eq!(
        decode(&mut p, json!({"goAway": {}})),
        vec![ServerEvent::GoAway { time_left: None }]
    );
    assert_eq!(
        decode(
            &mut p,
            json!({"sessionResumptionUpdate": {"newHandle": "h2", "resumable": true}})
        ),
        vec![ServerEvent::ResumeHandle("h2".into())]
    );
    assert!(decode(
        &mut p,
        json!({"sessionResumptionUpdate": {"newHandle": "h3", "resumable": false}})
    )
    .is_empty());
    assert!(decode(
        &mut p,
        json!({"sessionResumptionUpdate": {"resumable": true}})
    )
    .is_empty());

    assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
    assert_eq!(parse_duration("0s"), Some(Duration::ZERO));
    assert_eq!(parse_duration("-1s"), None);
    assert_eq!(parse_duration("57"), None);
    assert_eq!(parse_duration("1e400s"), None);
    assert_eq!(parse_duration("s"), None);
    assert_eq!(parse_duration("1..2s"), None);
}

#[test]
fn ignored_messages() {
    let mut p = GeminiProtocol::new();
    for v in [
        json!({}),
        json!({"usageMetadata": {"promptTokenCount": 3}}),
        json!({"voiceActivity": {"voiceActivityType": "ACTIVITY_START"}}),
        json!({"serverContent": {}}),
        json!({"serverContent": {"modelTurn": {"parts": []}}}),
        json!({"serverContent": {"inputTranscription": {"text": ""}}}),
        json!({"serverContent": {"outputTranscription": {"finished": true}}}),
    ] {
        assert!(decode(&mut p, v.clone()).is_empty(), "{v}");
    }
}

#[test]
fn google_error_bodies_are_fatal_errors() {
    let mut p = GeminiProtocol::new();
    let v = json!({"error": {"code": 403, "message": "API key not valid", "status": "PERMISSION_DENIED"}});
    assert_eq!(
        decode(&mut p, v),
        vec![ServerEvent::Error {
            message: "API key not valid".into(),
            code: Some("PERMISSION_DENIED".into()),
            fatal: true
        }]
    );
}

#[test]
fn garbage_is_a_decode_error_never_a_panic() {
    let mut p = GeminiProtocol::new();
    let mut bad: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"\x00\x01binary".to_vec(),
        b"{\"setupComplete\":".to_vec(),
        b"[]".to_vec(),
        b"42".to_vec(),
        vec![b'{'; 1 << 20],
    ];
    for v in [
        json!({"serverContent": 5}),
        json!({"serverContent": {"modelTurn": {"parts": [{"inlineData": {"data": "%%%"}}]}}}),
        json!({"serverContent": {"modelTurn": {"parts": [{"inlineData": {}}]}}}),
        json!({"serverContent": {"modelTurn": {"parts": "x"}}}),
        json!({"serverContent": {"modelTurn": {"parts": [7]}}}),
        json!({"serverContent": {"turnComplete": "yes"}}),
        json!({"serverContent": {"interrupted": 1}}),
        json!({"serverContent": {"outputTranscription": {"text": 3}}}),
        json!({"toolCall": {"functionCalls": [{"id": "x"}]}}),
        json!({"toolCall": {"functionCalls": [{"name": "f", "args": "{}"}]}}),
        json!({"toolCall": {"functionCalls": "f"}}),
        json!({"toolCall": {"functionCalls": [3]}}),
        json!({"toolCallCancellation": {"ids": [1]}}),
        json!({"goAway": {"timeLeft": 57}}),
        json!({"sessionResumptionUpdate": {"newHandle": "h", "resumable": "true"}}),
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

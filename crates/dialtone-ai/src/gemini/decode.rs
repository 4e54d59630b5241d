//! Gemini Live server messages (`BidiGenerateContentServerMessage`, which
//! arrive as binary frames holding JSON) -> [`ServerEvent`]s. One message
//! may carry several things at once (audio parts, both transcriptions, the
//! turn's end), so each known field is turned into its events in a fixed
//! order: interruption, caller words, model audio, agent words, the end of
//! generation, the end of the turn.

use std::time::Duration;

use serde_json::Value;

use crate::error::DecodeError;
use crate::json::{base64_field, flag, opt_array, opt_obj, opt_str, parse_object, req_str, Object};
use crate::protocol::ServerEvent;

/// What decoding remembers between messages.
#[derive(Debug, Default)]
pub(super) struct DecodeState {
    /// The model's turn has begun (ResponseStarted was reported).
    in_turn: bool,
    /// The current turn was interrupted: its end is a cancellation.
    cut: bool,
}

pub(super) fn decode(state: &mut DecodeState, msg: &[u8]) -> Result<Vec<ServerEvent>, DecodeError> {
    let obj = parse_object(msg)?;
    let mut events = Vec::new();
    if obj.contains_key("setupComplete") {
        events.push(ServerEvent::Ready);
    }
    if let Some(content) = opt_obj(&obj, "serverContent")? {
        state.server_content(content, &mut events)?;
    }
    if let Some(call) = opt_obj(&obj, "toolCall")? {
        for f in opt_array(call, "functionCalls")?.into_iter().flatten() {
            events.push(function_call(f)?);
        }
    }
    if let Some(cancel) = opt_obj(&obj, "toolCallCancellation")? {
        let mut call_ids = Vec::new();
        for id in opt_array(cancel, "ids")?.into_iter().flatten() {
            match id {
                Value::String(s) => call_ids.push(s.clone()),
                _ => {
                    return Err(DecodeError::new(
                        "`toolCallCancellation.ids` holds a non-string",
                    ))
                }
            }
        }
        events.push(ServerEvent::ToolCallCancelled { call_ids });
    }
    if let Some(go_away) = opt_obj(&obj, "goAway")? {
        let time_left = opt_str(go_away, "timeLeft")?.and_then(parse_duration);
        events.push(ServerEvent::GoAway { time_left });
    }
    if let Some(update) = opt_obj(&obj, "sessionResumptionUpdate")? {
        let handle = opt_str(update, "newHandle")?.filter(|h| !h.is_empty());
        if let (true, Some(handle)) = (flag(update, "resumable")?, handle) {
            events.push(ServerEvent::ResumeHandle(handle.to_string()));
        }
    }
    // Not part of the Live protocol, but what a Google API front end sends
    // before it drops a connection it refuses.
    if let Some(error) = opt_obj(&obj, "error")? {
        events.push(ServerEvent::Error {
            message: opt_str(error, "message")?
                .unwrap_or("the model reported an error without a message")
                .to_string(),
            code: match error.get("status").or_else(|| error.get("code")) {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            },
            fatal: true,
        });
    }
    Ok(events)
}

impl DecodeState {
    fn server_content(
        &mut self,
        content: &Object,
        events: &mut Vec<ServerEvent>,
    ) -> Result<(), DecodeError> {
        if flag(content, "interrupted")? {
            events.push(ServerEvent::Interrupted);
            self.cut |= self.in_turn;
            self.in_turn = false;
        }
        if let Some(t) = transcription(content, "inputTranscription")? {
            events.push(ServerEvent::CallerTranscript { text: t });
        }
        if let Some(turn) = opt_obj(content, "modelTurn")? {
            let parts = opt_array(turn, "parts")?.map(Vec::as_slice).unwrap_or(&[]);
            if !parts.is_empty() && !self.in_turn {
                self.in_turn = true;
                self.cut = false;
                events.push(ServerEvent::ResponseStarted { response_id: None });
            }
            for part in parts {
                let Value::Object(part) = part else {
                    return Err(DecodeError::new("`modelTurn.parts` holds a non-object"));
                };
                if let Some(data) = opt_obj(part, "inlineData")? {
                    let mime = opt_str(data, "mimeType")?.unwrap_or("audio/pcm");
                    if mime.starts_with("audio/") {
                        events.push(ServerEvent::Audio {
                            item_id: None,
                            data: base64_field(data, "data")?,
                        });
                    }
                }
            }
        }
        if let Some(t) = transcription(content, "outputTranscription")? {
            events.push(ServerEvent::AgentTranscript {
                item_id: None,
                text: t,
                done: false,
            });
        }
        if flag(content, "generationComplete")? {
            events.push(ServerEvent::AudioDone { item_id: None });
        }
        if flag(content, "turnComplete")? {
            events.push(ServerEvent::ResponseDone {
                cancelled: self.cut,
            });
            self.in_turn = false;
            self.cut = false;
        }
        Ok(())
    }
}

/// A transcription's text, when it has any.
fn transcription(content: &Object, key: &str) -> Result<Option<String>, DecodeError> {
    let Some(t) = opt_obj(content, key)? else {
        return Ok(None);
    };
    Ok(opt_str(t, "text")?
        .filter(|s| !s.is_empty())
        .map(str::to_string))
}

/// `{id, name, args}` -> ToolCall, the args object as JSON text.
fn function_call(f: &Value) -> Result<ServerEvent, DecodeError> {
    let Value::Object(f) = f else {
        return Err(DecodeError::new(
            "`toolCall.functionCalls` holds a non-object",
        ));
    };
    let name = req_str(f, "name")?;
    let arguments = match f.get("args") {
        None | Some(Value::Null) => "{}".to_string(),
        Some(args @ Value::Object(_)) => args.to_string(),
        Some(_) => return Err(DecodeError::new("`args` should be an object")),
    };
    // Live models give every call an id; should one not, the name is what
    // the answer can be matched by.
    let call_id = opt_str(f, "id")?.unwrap_or(name);
    Ok(ServerEvent::ToolCall {
        call_id: call_id.to_string(),
        name: name.to_string(),
        arguments,
    })
}

/// A protobuf JSON duration ("57s", "1.5s", "0.000000001s"); None when it is
/// not one.
pub(super) fn parse_duration(text: &str) -> Option<Duration> {
    let secs = text.trim().strip_suffix('s')?;
    if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let secs: f64 = secs.parse().ok()?;
    Duration::try_from_secs_f64(secs).ok()
}

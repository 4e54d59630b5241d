//! OpenAI Realtime server events -> [`ServerEvent`]s. Both the GA names
//! (`response.output_audio.delta` …) and the beta names
//! (`response.audio.delta` …) are understood, since deployments still send
//! either. A function call is reported once, whichever of the three places
//! that carry it (`response.function_call_arguments.done`,
//! `response.output_item.done`, `response.done`) arrives first.

use std::collections::HashSet;

use serde_json::Value;

use crate::error::DecodeError;
use crate::json::{
    base64_field, opt_array, opt_obj, opt_str, opt_u32, parse_object, req_obj, req_str, Object,
};
use crate::protocol::ServerEvent;

/// What decoding remembers between messages.
#[derive(Debug, Default)]
pub(super) struct DecodeState {
    /// Ready was reported: later `session.updated`s are answers to later
    /// updates, not the session becoming ready.
    ready: bool,
    /// Function calls already reported.
    calls: HashSet<String>,
}

pub(super) fn decode(state: &mut DecodeState, msg: &[u8]) -> Result<Vec<ServerEvent>, DecodeError> {
    let obj = parse_object(msg)?;
    let kind = match obj.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(_) => return Err(DecodeError::new("`type` should be a string")),
        None => return Err(DecodeError::new("no `type` field")),
    };
    let item_id = || opt_str(&obj, "item_id").map(|s| s.map(str::to_string));
    let event = match kind {
        "session.updated" => {
            if state.ready {
                return Ok(Vec::new());
            }
            state.ready = true;
            ServerEvent::Ready
        }
        "response.created" => {
            let response = opt_obj(&obj, "response")?;
            let response_id = match response {
                Some(r) => opt_str(r, "id")?.map(str::to_string),
                None => None,
            };
            ServerEvent::ResponseStarted { response_id }
        }
        "response.output_audio.delta" | "response.audio.delta" => ServerEvent::Audio {
            item_id: item_id()?,
            data: base64_field(&obj, "delta")?,
        },
        "response.output_audio.done" | "response.audio.done" => ServerEvent::AudioDone {
            item_id: item_id()?,
        },
        "input_audio_buffer.speech_started" => ServerEvent::SpeechStarted {
            item_id: item_id()?,
            audio_start_ms: opt_u32(&obj, "audio_start_ms")?,
        },
        "input_audio_buffer.speech_stopped" => ServerEvent::SpeechStopped,
        "input_audio_buffer.timeout_triggered" => ServerEvent::IdleTimeout,
        "response.output_audio_transcript.delta" | "response.audio_transcript.delta" => {
            ServerEvent::AgentTranscript {
                item_id: item_id()?,
                text: req_str(&obj, "delta")?.to_string(),
                done: false,
            }
        }
        "response.output_audio_transcript.done" | "response.audio_transcript.done" => {
            ServerEvent::AgentTranscript {
                item_id: item_id()?,
                text: req_str(&obj, "transcript")?.to_string(),
                done: true,
            }
        }
        "conversation.item.input_audio_transcription.completed" => ServerEvent::CallerTranscript {
            text: req_str(&obj, "transcript")?.to_string(),
        },
        "response.function_call_arguments.done" => {
            let call_id = req_str(&obj, "call_id")?;
            let name = req_str(&obj, "name")?;
            let arguments = req_str(&obj, "arguments")?;
            return Ok(state
                .tool_call(call_id, name, arguments)
                .into_iter()
                .collect());
        }
        "response.output_item.done" => {
            let item = req_obj(&obj, "item")?;
            return Ok(state.function_call_item(item)?.into_iter().collect());
        }
        "response.done" => return state.response_done(req_obj(&obj, "response")?),
        "error" => error_event(req_obj(&obj, "error")?)?,
        _ => return Ok(Vec::new()),
    };
    Ok(vec![event])
}

impl DecodeState {
    /// A call, unless it was reported already.
    fn tool_call(&mut self, call_id: &str, name: &str, arguments: &str) -> Option<ServerEvent> {
        if !self.calls.insert(call_id.to_string()) {
            return None;
        }
        Some(ServerEvent::ToolCall {
            call_id: call_id.to_string(),
            name: name.to_string(),
            arguments: arguments.to_string(),
        })
    }

    /// A `function_call` conversation item (other items are not calls).
    fn function_call_item(&mut self, item: &Object) -> Result<Option<ServerEvent>, DecodeError> {
        if opt_str(item, "type")? != Some("function_call") {
            return Ok(None);
        }
        // An item still in progress has no call id yet; the done event has.
        let Some(call_id) = opt_str(item, "call_id")? else {
            return Ok(None);
        };
        let name = req_str(item, "name")?;
        let arguments = opt_str(item, "arguments")?.unwrap_or("{}");
        Ok(self.tool_call(call_id, name, arguments))
    }

    /// Any calls not reported yet, a failure's error, then the end.
    fn response_done(&mut self, response: &Object) -> Result<Vec<ServerEvent>, DecodeError> {
        let mut events = Vec::new();
        for item in opt_array(response, "output")?.into_iter().flatten() {
            let Value::Object(item) = item else {
                return Err(DecodeError::new("`response.output` holds a non-object"));
            };
            events.extend(self.function_call_item(item)?);
        }
        let status = opt_str(response, "status")?;
        if status == Some("failed") {
            events.push(failure(response)?);
        }
        events.push(ServerEvent::ResponseDone {
            cancelled: status == Some("cancelled"),
        });
        Ok(events)
    }
}

/// `{"type":"error","error":{"type","code","message"}}`. Not fatal: the
/// socket closing is what ends a session.
fn error_event(error: &Object) -> Result<ServerEvent, DecodeError> {
    let message = opt_str(error, "message")?
        .or(opt_str(error, "type")?)
        .unwrap_or("the model reported an error without a message");
    Ok(ServerEvent::Error {
        message: message.to_string(),
        code: opt_str(error, "code")?.map(str::to_string),
        fatal: false,
    })
}

/// A failed response's reason (quota, server error …) as an error event.
fn failure(response: &Object) -> Result<ServerEvent, DecodeError> {
    let error = match opt_obj(response, "status_details")? {
        Some(details) => opt_obj(details, "error")?,
        None => None,
    };
    let (message, code) = match error {
        Some(e) => (
            opt_str(e, "message")?
                .or(opt_str(e, "type")?)
                .unwrap_or("the response failed"),
            opt_str(e, "code")?,
        ),
        None => ("the response failed", None),
    };
    Ok(ServerEvent::Error {
        message: message.to_string(),
        code: code.map(str::to_string),
        fatal: false,
    })
}

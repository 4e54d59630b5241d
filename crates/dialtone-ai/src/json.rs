//! Small, panic-free helpers the decoders share to read fields out of a
//! provider's JSON message, each failure worded as a [`DecodeError`] that
//! names the field. Also [`message_kind`], which names a message for logs
//! without showing its content.

use base64::Engine;
use serde_json::{Map, Value};

use crate::error::DecodeError;

pub(crate) type Object = Map<String, Value>;

/// The message as a JSON object.
pub(crate) fn parse_object(msg: &[u8]) -> Result<Object, DecodeError> {
    let value: Value = serde_json::from_slice(msg)
        .map_err(|e| DecodeError::new(format!("not JSON ({} bytes): {e}", msg.len())))?;
    match value {
        Value::Object(obj) => Ok(obj),
        other => Err(DecodeError::new(format!(
            "expected a JSON object, got {}",
            kind_of(&other)
        ))),
    }
}

/// What sort of JSON value this is, for error texts.
pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wrong(key: &str, want: &str, got: &Value) -> DecodeError {
    DecodeError::new(format!("`{key}` should be {want}, not {}", kind_of(got)))
}

/// A string field; absent or null is None.
pub(crate) fn opt_str<'a>(obj: &'a Object, key: &str) -> Result<Option<&'a str>, DecodeError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(wrong(key, "a string", other)),
    }
}

/// A string field that must be there.
pub(crate) fn req_str<'a>(obj: &'a Object, key: &str) -> Result<&'a str, DecodeError> {
    opt_str(obj, key)?.ok_or_else(|| DecodeError::new(format!("`{key}` is missing")))
}

/// An object field; absent or null is None.
pub(crate) fn opt_obj<'a>(obj: &'a Object, key: &str) -> Result<Option<&'a Object>, DecodeError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(other) => Err(wrong(key, "an object", other)),
    }
}

/// An object field that must be there.
pub(crate) fn req_obj<'a>(obj: &'a Object, key: &str) -> Result<&'a Object, DecodeError> {
    opt_obj(obj, key)?.ok_or_else(|| DecodeError::new(format!("`{key}` is missing")))
}

/// An array field; absent or null is None.
pub(crate) fn opt_array<'a>(
    obj: &'a Object,
    key: &str,
) -> Result<Option<&'a Vec<Value>>, DecodeError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(other) => Err(wrong(key, "an array", other)),
    }
}

/// A boolean field; absent or null is false.
pub(crate) fn flag(obj: &Object, key: &str) -> Result<bool, DecodeError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(wrong(key, "a boolean", other)),
    }
}

/// A non-negative integer field that fits a u32; absent, null or out of
/// range is None (a timestamp we can live without).
pub(crate) fn opt_u32(obj: &Object, key: &str) -> Result<Option<u32>, DecodeError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_u64().and_then(|v| u32::try_from(v).ok())),
        Some(other) => Err(wrong(key, "a number", other)),
    }
}

/// Standard base64 (padding optional: some servers drop it).
pub(crate) fn base64_field(obj: &Object, key: &str) -> Result<Vec<u8>, DecodeError> {
    let text = req_str(obj, key)?;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
        .map_err(|e| DecodeError::new(format!("`{key}` is not valid base64: {e}")))
}

/// Standard base64 with padding, as both providers expect.
pub(crate) fn base64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// A name for a message in logs: its `type` (OpenAI) or its first key
/// (Gemini), never its content. None when it is not a JSON object.
pub(crate) fn message_kind(msg: &[u8]) -> Option<String> {
    let obj = parse_object(msg).ok()?;
    match obj.get("type") {
        Some(Value::String(t)) => Some(truncated(t)),
        _ => obj.keys().next().map(|k| truncated(k)),
    }
}

/// At most 64 characters of a peer's string, for a log line.
fn truncated(s: &str) -> String {
    s.chars().take(64).collect()
}

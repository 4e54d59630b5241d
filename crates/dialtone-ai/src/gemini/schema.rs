//! JSON Schema -> Gemini's `Schema` (the OpenAPI subset that
//! `FunctionDeclaration.parameters` takes). Gemini Live ignores
//! `parametersJsonSchema` (the model then calls functions with empty
//! arguments), so a tool's JSON schema is rewritten into `parameters`:
//! upper-case types, `nullable` instead of `null` in a type list or
//! `anyOf`, local `$ref`s inlined, string-only enums, and every keyword
//! Gemini does not know dropped (it rejects unknown fields).

use serde_json::{json, Map, Value};

/// References may nest (a tree refers to itself); past this depth a node
/// becomes an unconstrained `{}`.
const MAX_DEPTH: usize = 16;

/// A function's `parameters`, or None when there are none to declare:
/// Gemini refuses an OBJECT with no properties.
pub(super) fn parameters(schema: &Value) -> Option<Value> {
    let converted = convert(schema, schema, 0);
    let no_properties = converted
        .get("properties")
        .and_then(Value::as_object)
        .is_none_or(Map::is_empty);
    if converted.get("type").and_then(Value::as_str) == Some("OBJECT") && no_properties {
        return None;
    }
    if converted.as_object().is_none_or(Map::is_empty) {
        return None;
    }
    Some(converted)
}

fn convert(node: &Value, root: &Value, depth: usize) -> Value {
    let Value::Object(src) = node else {
        return json!({});
    };
    if depth > MAX_DEPTH {
        return json!({});
    }
    if let Some(target) = src.get("$ref").and_then(Value::as_str) {
        let mut out = resolve(target, root)
            .map(|t| convert(t, root, depth + 1))
            .unwrap_or_else(|| json!({}));
        if let (Some(desc), Some(obj)) = (src.get("description"), out.as_object_mut()) {
            if desc.is_string() {
                obj.insert("description".into(), desc.clone());
            }
        }
        return out;
    }

    let mut out = Map::new();
    let mut nullable = src.get("nullable").and_then(Value::as_bool) == Some(true);
    let mut ty = match src.get("type") {
        Some(Value::String(t)) => gemini_type(t),
        Some(Value::Array(types)) => {
            let names: Vec<&str> = types.iter().filter_map(Value::as_str).collect();
            nullable |= names.contains(&"null");
            names
                .iter()
                .find(|t| **t != "null")
                .and_then(|t| gemini_type(t))
        }
        _ => None,
    };

    // anyOf/oneOf: a `null` member is `nullable`; a single remaining member
    // is the schema itself.
    let alternatives = src
        .get("anyOf")
        .or_else(|| src.get("oneOf"))
        .and_then(Value::as_array);
    if let Some(alts) = alternatives {
        let mut kept = Vec::new();
        for alt in alts {
            if alt.get("type").and_then(Value::as_str) == Some("null") {
                nullable = true;
            } else {
                kept.push(convert(alt, root, depth + 1));
            }
        }
        if kept.len() == 1 {
            if let Some(Value::Object(only)) = kept.pop() {
                out.extend(only);
            }
        } else if !kept.is_empty() {
            out.insert("anyOf".into(), Value::Array(kept));
        }
    }
    if let Some([only]) = src
        .get("allOf")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        if let Value::Object(only) = convert(only, root, depth + 1) {
            out.extend(only);
        }
    }

    if ty.is_none() && src.get("properties").is_some_and(Value::is_object) {
        ty = Some("OBJECT");
    }
    let enum_values = enum_strings(src);
    if ty.is_none() && enum_values.is_some() {
        ty = Some("STRING");
    }
    if let Some(t) = ty {
        out.insert("type".into(), json!(t));
    }
    let ty = out.get("type").and_then(Value::as_str).map(str::to_string);

    if let Some(Value::String(d)) = src.get("description") {
        out.insert("description".into(), json!(d));
    }
    if let Some(values) = enum_values {
        if ty.as_deref() == Some("STRING") {
            out.insert("enum".into(), json!(values));
        } else {
            // Gemini takes enums on strings only; say it in words instead.
            let note = format!("One of: {}.", values.join(", "));
            let text = match out.get("description").and_then(Value::as_str) {
                Some(d) => format!("{d} {note}"),
                None => note,
            };
            out.insert("description".into(), json!(text));
        }
    }
    if let Some(Value::String(f)) = src.get("format") {
        let allowed = match ty.as_deref() {
            Some("STRING") => matches!(f.as_str(), "enum" | "date-time"),
            Some("INTEGER") => matches!(f.as_str(), "int32" | "int64"),
            Some("NUMBER") => matches!(f.as_str(), "float" | "double"),
            _ => false,
        };
        if allowed {
            out.insert("format".into(), json!(f));
        }
    }
    if let Some(Value::String(p)) = src.get("pattern") {
        out.insert("pattern".into(), json!(p));
    }
    for key in ["minimum", "maximum"] {
        if let Some(n) = src.get(key).filter(|v| v.is_number()) {
            out.insert(key.into(), n.clone());
        }
    }
    for key in [
        "minItems",
        "maxItems",
        "minLength",
        "maxLength",
        "minProperties",
        "maxProperties",
    ] {
        if let Some(n) = src.get(key).filter(|v| v.is_u64()) {
            out.insert(key.into(), n.clone());
        }
    }
    match src.get("items") {
        Some(items @ Value::Object(_)) => {
            out.insert("items".into(), convert(items, root, depth + 1));
        }
        Some(Value::Array(tuple)) => {
            if let Some(first) = tuple.first() {
                out.insert("items".into(), convert(first, root, depth + 1));
            }
        }
        _ => {}
    }
    if let Some(Value::Object(props)) = src.get("properties") {
        let converted: Map<String, Value> = props
            .iter()
            .map(|(k, v)| (k.clone(), convert(v, root, depth + 1)))
            .collect();
        if let Some(Value::Array(required)) = src.get("required") {
            let required: Vec<&str> = required
                .iter()
                .filter_map(Value::as_str)
                .filter(|r| converted.contains_key(*r))
                .collect();
            if !required.is_empty() {
                out.insert("required".into(), json!(required));
            }
        }
        out.insert("properties".into(), Value::Object(converted));
    }
    if nullable {
        out.insert("nullable".into(), json!(true));
    }
    Value::Object(out)
}

fn gemini_type(t: &str) -> Option<&'static str> {
    match t {
        "string" => Some("STRING"),
        "number" => Some("NUMBER"),
        "integer" => Some("INTEGER"),
        "boolean" => Some("BOOLEAN"),
        "array" => Some("ARRAY"),
        "object" => Some("OBJECT"),
        _ => None,
    }
}

/// `enum` (or `const`) values as strings.
fn enum_strings(src: &Map<String, Value>) -> Option<Vec<String>> {
    let values: Vec<&Value> = match (src.get("enum"), src.get("const")) {
        (Some(Value::Array(vals)), _) => vals.iter().collect(),
        (_, Some(c)) => vec![c],
        _ => return None,
    };
    let strings: Vec<String> = values
        .into_iter()
        .filter(|v| !v.is_null())
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    (!strings.is_empty()).then_some(strings)
}

/// A local reference: `#/$defs/Name`, `#/definitions/Name`, or any JSON
/// pointer into the root.
fn resolve<'a>(target: &str, root: &'a Value) -> Option<&'a Value> {
    let pointer = target.strip_prefix('#')?;
    root.pointer(pointer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_object_schema() {
        let schema = json!({
            "type": "object",
            "$schema": "http://json-schema.org/draft-07/schema#",
            "title": "Args",
            "additionalProperties": false,
            "properties": {
                "target": {"type": "string", "description": "who", "enum": ["sales", "support"]},
                "urgent": {"type": "boolean", "default": false},
                "count": {"type": "integer", "minimum": 1, "format": "int32"},
                "url": {"type": "string", "format": "uri"},
                "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3}
            },
            "required": ["target", "missing"]
        });
        assert_eq!(
            parameters(&schema),
            Some(json!({
                "type": "OBJECT",
                "properties": {
                    "target": {"type": "STRING", "description": "who", "enum": ["sales", "support"]},
                    "urgent": {"type": "BOOLEAN"},
                    "count": {"type": "INTEGER", "minimum": 1, "format": "int32"},
                    "url": {"type": "STRING"},
                    "tags": {"type": "ARRAY", "items": {"type": "STRING"}, "maxItems": 3}
                },
                "required": ["target"]
            }))
        );
    }

    #[test]
    fn nullable_refs_and_enums() {
        let schema = json!({
            "type": "object",
            "$defs": {"Dept": {"type": "string", "enum": ["a", "b"]}},
            "properties": {
                "note": {"type": ["string", "null"]},
                "dept": {"$ref": "#/$defs/Dept", "description": "department"},
                "maybe": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
                "level": {"type": "integer", "enum": [1, 2]},
                "kind": {"const": "x"},
                "loop": {"$ref": "#/properties/loop"},
                "broken": {"$ref": "https://example.invalid/schema"}
            }
        });
        let got = parameters(&schema).unwrap_or_default();
        assert_eq!(
            got["properties"]["note"],
            json!({"type": "STRING", "nullable": true})
        );
        assert_eq!(
            got["properties"]["dept"],
            json!({"type": "STRING", "enum": ["a", "b"], "description": "department"})
        );
        assert_eq!(
            got["properties"]["maybe"],
            json!({"type": "INTEGER", "nullable": true})
        );
        assert_eq!(
            got["properties"]["level"],
            json!({"type": "INTEGER", "description": "One of: 1, 2."})
        );
        assert_eq!(
            got["properties"]["kind"],
            json!({"type": "STRING", "enum": ["x"]})
        );
        assert_eq!(got["properties"]["broken"], json!({}));
        assert!(got["properties"]["loop"].is_object());
    }

    #[test]
    fn nothing_to_declare() {
        assert_eq!(
            parameters(&json!({"type": "object", "properties": {}})),
            None
        );
        assert_eq!(parameters(&json!({"type": "object"})), None);
        assert_eq!(parameters(&json!({})), None);
        assert_eq!(parameters(&json!(null)), None);
        assert_eq!(parameters(&json!("object")), None);
    }
}

//! A persona's own tools (`dialtone tool add PERSONA …`), offered beside
//! the global ones to that persona's model and over MCP with its context:
//! a transfer to a given user, a transfer to a given queue, and an HTTP API
//! request built from templates. An API request's variables (text, number,
//! or a list of options — a JSON-schema `enum`) are checked before
//! anything is sent; `{name}` placeholders are filled (URL-encoded in the
//! URL, JSON-escaped in the body, refused in headers if they would break
//! the line); `${VAR}` references take secrets from the environment at
//! call time, so none is stored. The response goes back to the model cut
//! to a safe size.

use std::time::Duration;

use dialtone_store::{ApiRequest, PersonaTool, PersonaToolKind, ToolVariable, VariableKind};
use serde_json::{json, Map, Value};

use super::contacts::urlencode;
use super::{http, ToolAnnotations, ToolContext, ToolError, ToolOutput, ToolSpec};
use crate::call::{CallCommand, Destination, Party};
use crate::control::CallControl;

/// The spec a persona tool is listed with.
pub fn spec(t: &PersonaTool) -> ToolSpec {
    let transfer_schema =
        json!({"type": "object", "properties": {}, "additionalProperties": false});
    match &t.kind {
        PersonaToolKind::TransferUser { .. } | PersonaToolKind::TransferQueue { .. } => ToolSpec {
            name: t.name.clone(),
            description: t.description.clone(),
            input_schema: transfer_schema,
            output_schema: None,
            annotations: ToolAnnotations {
                destructive: true,
                open_world: true,
                ..Default::default()
            },
            call_bound: true,
        },
        PersonaToolKind::ApiRequest(req) => ToolSpec {
            name: t.name.clone(),
            description: t.description.clone(),
            input_schema: variables_schema(&req.variables),
            output_schema: None,
            annotations: ToolAnnotations {
                read_only: req.method.eq_ignore_ascii_case("GET"),
                open_world: true,
                ..Default::default()
            },
            call_bound: false,
        },
    }
}

fn variables_schema(vars: &[ToolVariable]) -> Value {
    let mut props = Map::new();
    for v in vars {
        let mut p = match &v.kind {
            VariableKind::Text => json!({"type": "string"}),
            VariableKind::Number => json!({"type": "number"}),
            VariableKind::Options(o) => json!({"type": "string", "enum": o}),
        };
        if let (Some(d), Some(obj)) = (&v.description, p.as_object_mut()) {
            obj.insert("description".into(), Value::String(d.clone()));
        }
        props.insert(v.name.clone(), p);
    }
    let required: Vec<&str> = vars
        .iter()
        .filter(|v| v.required)
        .map(|v| v.name.as_str())
        .collect();
    json!({"type": "object", "properties": props, "required": required, "additionalProperties": false})
}

/// Runs persona tool `t` with `args`.
pub async fn call(
    t: &PersonaTool,
    control: &CallControl,
    ctx: &ToolContext,
    args: Value,
) -> Result<ToolOutput, ToolError> {
    match &t.kind {
        PersonaToolKind::TransferUser { user } => {
            transfer(control, ctx, Destination::User(user.clone()), args).await
        }
        PersonaToolKind::TransferQueue { queue } => {
            transfer(control, ctx, Destination::Queue(queue.clone()), args).await
        }
        PersonaToolKind::ApiRequest(req) => api_request(req, args).await,
    }
}

async fn transfer(
    control: &CallControl,
    ctx: &ToolContext,
    to: Destination,
    args: Value,
) -> Result<ToolOutput, ToolError> {
    if args.as_object().is_some_and(|m| !m.is_empty()) {
        return Err(ToolError::InvalidArguments(
            "this tool takes no arguments".into(),
        ));
    }
    let call = ctx.call(control)?;
    let by = super::call_tools::authority(ctx);
    let outcome = call
        .command(CallCommand::Transfer {
            keep: Party::Caller,
            to: to.clone(),
            by,
        })
        .await
        .map_err(|e| ToolError::Failed(e.to_string()))?;
    Ok(super::call_tools::transfer_output(&to, &outcome))
}

/// The variables' values as text, checked against their declarations.
fn values(vars: &[ToolVariable], args: Value) -> Result<Vec<(String, String)>, ToolError> {
    let bad = |m: String| ToolError::InvalidArguments(m);
    let obj = match args {
        Value::Null => Map::new(),
        Value::Object(o) => o,
        _ => return Err(bad("arguments must be a JSON object".into())),
    };
    if let Some(k) = obj.keys().find(|k| !vars.iter().any(|v| v.name == **k)) {
        let known: Vec<&str> = vars.iter().map(|v| v.name.as_str()).collect();
        return Err(bad(format!(
            "unknown argument {k:?} (this tool takes: {})",
            known.join(", ")
        )));
    }
    let mut out = Vec::new();
    for v in vars {
        let given = obj.get(&v.name).filter(|x| !x.is_null());
        let Some(given) = given else {
            if v.required {
                return Err(bad(format!("{:?} is required", v.name)));
            }
            out.push((v.name.clone(), String::new()));
            continue;
        };
        let text = match (&v.kind, given) {
            (VariableKind::Text, Value::String(s)) => s.clone(),
            (VariableKind::Number, Value::Number(n)) => n.to_string(),
            (VariableKind::Number, Value::String(s)) if s.trim().parse::<f64>().is_ok() => {
                s.trim().to_string()
            }
            (VariableKind::Options(o), Value::String(s)) if o.contains(s) => s.clone(),
            (VariableKind::Options(o), _) => {
                return Err(bad(format!(
                    "{:?} must be one of: {}",
                    v.name,
                    o.join(", ")
                )))
            }
            (VariableKind::Number, _) => return Err(bad(format!("{:?} must be a number", v.name))),
            (VariableKind::Text, _) => return Err(bad(format!("{:?} must be a string", v.name))),
        };
        out.push((v.name.clone(), text));
    }
    Ok(out)
}

/// `template` with `${VAR}` from the environment and `{name}` from
/// `values`, each value passed through `escape`.
fn fill(
    template: &str,
    values: &[(String, String)],
    escape: impl Fn(&str) -> Result<String, ToolError>,
) -> Result<String, ToolError> {
    let mut out = template.to_string();
    // Secrets first, so a variable's value can never name one.
    while let Some(start) = out.find("${") {
        let Some(len) = out[start..].find('}') else {
            break;
        };
        let name = &out[start + 2..start + len];
        let value = std::env::var(name).map_err(|_| {
            ToolError::Failed(format!(
                "the tool's secret ${{{name}}} is not set in dialtone's environment"
            ))
        })?;
        out.replace_range(start..=start + len, &value);
    }
    for (name, value) in values {
        out = out.replace(&format!("{{{name}}}"), &escape(value)?);
    }
    Ok(out)
}

fn json_escape(s: &str) -> Result<String, ToolError> {
    let quoted = serde_json::to_string(s).map_err(|e| ToolError::Failed(e.to_string()))?;
    Ok(quoted[1..quoted.len() - 1].to_string())
}

fn header_safe(s: &str) -> Result<String, ToolError> {
    if s.chars().any(|c| c == '\r' || c == '\n') {
        return Err(ToolError::InvalidArguments(
            "a value used in a header must be one line".into(),
        ));
    }
    Ok(s.to_string())
}

async fn api_request(req: &ApiRequest, args: Value) -> Result<ToolOutput, ToolError> {
    let vals = values(&req.variables, args)?;
    let url = fill(&req.url, &vals, |v| Ok(urlencode(v)))?;
    let method = reqwest::Method::from_bytes(req.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| ToolError::Failed(format!("bad method {}", req.method)))?;
    let client = http::client().map_err(ToolError::Failed)?;
    let mut rb = client
        .request(method, &url)
        .timeout(Duration::from_millis(u64::from(req.timeout_ms.max(100))));
    for (name, value) in &req.headers {
        rb = rb.header(name.as_str(), fill(value, &vals, header_safe)?);
    }
    if let Some(body) = &req.body {
        let body = fill(body, &vals, json_escape)?;
        if body.trim_start().starts_with(['{', '[']) {
            rb = rb.header("content-type", "application/json");
        }
        rb = rb.body(body);
    }
    let resp = rb.send().await.map_err(|e| {
        let why = if e.is_timeout() {
            "timed out".to_string()
        } else {
            e.to_string()
        };
        ToolError::Failed(format!("the request failed: {why}"))
    })?;
    let status = resp.status().as_u16();
    let (body, cut) = http::body_text(resp).await.map_err(ToolError::Failed)?;
    let text = format!(
        "HTTP {status}{}\n{body}",
        if cut { " (response cut to 8 KiB)" } else { "" }
    );
    if (200..300).contains(&status) {
        Ok(ToolOutput::with(
            text,
            json!({"status": status, "body": body, "truncated": cut}),
        ))
    } else {
        Err(ToolError::Failed(text))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn var(name: &str, kind: VariableKind, required: bool) -> ToolVariable {
        ToolVariable {
            name: name.into(),
            kind,
            description: None,
            required,
        }
    }

    #[test]
    fn variables_are_checked_and_filled() {
        let vars = vec![
            var("id", VariableKind::Number, true),
            var(
                "color",
                VariableKind::Options(vec!["red".into(), "green".into()]),
                false,
            ),
            var("q", VariableKind::Text, false),
        ];
        let v = values(&vars, json!({"id": 42, "color": "red", "q": "a b&\"c"})).unwrap();
        assert_eq!(
            fill("/x/{id}?c={color}&q={q}", &v, |s| Ok(urlencode(s))).unwrap(),
            "/x/42?c=red&q=a%20b%26%22c"
        );
        assert_eq!(
            fill(r#"{"q":"{q}","id":{id}}"#, &v, json_escape).unwrap(),
            r#"{"q":"a b&\"c","id":42}"#
        );
        let err = |a: Value| values(&vars, a).unwrap_err().to_string();
        assert!(err(json!({})).contains("\"id\" is required"));
        assert!(err(json!({"id": "x"})).contains("number"));
        assert!(err(json!({"id": 1, "color": "blue"})).contains("red, green"));
        assert!(err(json!({"id": 1, "bogus": 1})).contains("bogus"));
        assert!(header_safe("a\r\nX-Evil: 1").is_err());
    }

    #[test]
    fn secrets_come_from_the_environment() {
        assert!(
            fill("Bearer ${DIALTONE_TEST_SURELY_UNSET_VAR}", &[], header_safe)
                .unwrap_err()
                .to_string()
                .contains("DIALTONE_TEST_SURELY_UNSET_VAR")
        );
        let path = std::env::var("PATH").unwrap_or_default();
        assert_eq!(fill("${PATH}", &[], header_safe).unwrap(), path);
    }

    #[test]
    fn schema_of_variables() {
        let s = variables_schema(&[
            var("n", VariableKind::Number, true),
            var("o", VariableKind::Options(vec!["a".into()]), false),
        ]);
        assert_eq!(s["properties"]["o"]["enum"][0], "a");
        assert_eq!(s["required"], json!(["n"]));
    }
}

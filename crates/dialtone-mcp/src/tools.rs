//! The registry's tools in MCP's shapes: a [`ToolSpec`] as an MCP tool
//! (input and output schema, the four annotation hints), a
//! [`ToolOutput`] as a result with `structuredContent` and the same text
//! in `content`, and a [`ToolError`] as what the spec asks for — an
//! unknown tool is a JSON-RPC error (-32602, as the spec's example), any
//! other failure a result with `isError: true` whose text a model can act
//! on. No tool logic lives here: every call goes to the registry.

use std::sync::Arc;

use dialtone_switch::tools::{ToolError, ToolOutput, ToolSpec};
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations};
use rmcp::ErrorData;
use serde_json::Value;

/// A JSON schema as the object MCP wants; a non-object schema (a bug in a
/// tool) becomes the schema of any object rather than a failed listing.
fn schema_object(schema: &Value) -> JsonObject {
    match schema {
        Value::Object(o) => o.clone(),
        _ => {
            let mut o = JsonObject::new();
            o.insert("type".into(), Value::String("object".into()));
            o
        }
    }
}

/// A registry tool as an MCP tool.
pub fn mcp_tool(spec: &ToolSpec) -> Tool {
    let a = spec.annotations;
    let annotations = ToolAnnotations::new()
        .read_only(a.read_only)
        .destructive(a.destructive)
        .idempotent(a.idempotent)
        .open_world(a.open_world);
    let mut tool = Tool::new(
        spec.name.clone(),
        spec.description.clone(),
        Arc::new(schema_object(&spec.input_schema)),
    )
    .with_annotations(annotations);
    if let Some(out) = &spec.output_schema {
        tool = tool.with_raw_output_schema(Arc::new(schema_object(out)));
    }
    tool
}

/// A tool's answer as an MCP result.
pub fn success(out: ToolOutput) -> CallToolResult {
    let mut result = CallToolResult::success(vec![ContentBlock::text(out.text)]);
    result.structured_content = out.structured;
    result
}

/// A failed call: a JSON-RPC error for an unknown tool, else an
/// `isError` result carrying the message.
pub fn failure(e: ToolError) -> Result<CallToolResult, ErrorData> {
    match e {
        ToolError::UnknownTool(_) => Err(ErrorData::invalid_params(e.to_string(), None)),
        other => Ok(CallToolResult::error(vec![ContentBlock::text(
            other.to_string(),
        )])),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use dialtone_switch::tools::ToolRegistry;
    use serde_json::json;

    #[test]
    fn specs_carry_schemas_and_every_hint() {
        let registry = ToolRegistry::with_globals();
        let spec = registry
            .get("hangup_call")
            .map(|t| t.spec().clone())
            .unwrap();
        let t = serde_json::to_value(mcp_tool(&spec)).unwrap();
        assert_eq!(t["name"], "hangup_call");
        assert_eq!(t["inputSchema"]["type"], "object");
        assert_eq!(t["outputSchema"]["required"], json!(["outcome", "call_id"]));
        assert_eq!(
            t["annotations"],
            json!({"readOnlyHint": false, "destructiveHint": true,
                   "idempotentHint": true, "openWorldHint": true})
        );
    }

    #[test]
    fn outputs_and_errors_take_the_spec_shapes() {
        let ok =
            serde_json::to_value(success(ToolOutput::with("call ended", json!({"a": 1})))).unwrap();
        assert_eq!(ok["content"][0]["text"], "call ended");
        assert_eq!(ok["structuredContent"], json!({"a": 1}));
        assert_eq!(ok["isError"], false);

        let bad = failure(ToolError::NoSuchCall("x".into())).unwrap();
        let bad = serde_json::to_value(bad).unwrap();
        assert_eq!(bad["isError"], true);
        assert_eq!(bad["content"][0]["text"], "no such call: x");

        let unknown = failure(ToolError::UnknownTool("nope".into())).unwrap_err();
        assert_eq!(unknown.code, rmcp::model::ErrorCode::INVALID_PARAMS);
        assert!(unknown.message.contains("nope"));
    }
}

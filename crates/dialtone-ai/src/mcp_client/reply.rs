//! MCP's shapes into the agent's: a listed tool into the function spec the
//! model is offered (its input schema as the parameters, an object schema
//! when it has none), and a tool result into the text the model is told
//! (text blocks and embedded text resources in order, structured content
//! when there is no text, other media named but not sent; `isError` makes
//! the reply a failure), cut to a size a model's context can take.

use rmcp::model::{CallToolResult, ContentBlock, ResourceContents, Tool};
use serde_json::{json, Value};

use crate::agent::ToolReply;
use crate::protocol::ToolSpec;

/// The most of a tool's answer the model is given.
pub(super) const MAX_OUTPUT: usize = 16 * 1024;

/// The function `name` offered for `tool`.
pub(super) fn spec(name: &str, tool: &Tool) -> ToolSpec {
    let mut parameters = tool.input_schema.as_ref().clone();
    // Keys the realtime APIs do not expect at the top of a function's
    // parameters; the rest of the schema is kept as the server wrote it.
    parameters.remove("$schema");
    parameters.remove("$id");
    if !parameters.contains_key("type") {
        parameters.insert("type".into(), json!("object"));
    }
    if !parameters.contains_key("properties") {
        parameters.insert("properties".into(), json!({}));
    }
    let description = tool
        .description
        .as_deref()
        .map(str::to_owned)
        .or_else(|| tool.title.clone())
        .unwrap_or_else(|| format!("The {} tool", tool.name));
    ToolSpec {
        name: name.to_owned(),
        description,
        parameters: Value::Object(parameters),
    }
}

/// What the model is told of `result`.
pub(super) fn from_result(result: &CallToolResult) -> ToolReply {
    let mut parts: Vec<String> = Vec::new();
    for block in &result.content {
        match block {
            ContentBlock::Text(t) => parts.push(t.text.clone()),
            ContentBlock::Resource(r) => match &r.resource {
                ResourceContents::TextResourceContents { text, .. } => parts.push(text.clone()),
                ResourceContents::BlobResourceContents { uri, .. } => {
                    parts.push(format!("[binary resource {uri}]"))
                }
                // A kind of contents newer than this code: nothing to say.
                _ => {}
            },
            ContentBlock::Image(i) => parts.push(format!("[an image ({})]", i.mime_type)),
            ContentBlock::Audio(a) => parts.push(format!("[audio ({})]", a.mime_type)),
            ContentBlock::ResourceLink(l) => parts.push(format!("[resource {}]", l.uri)),
            _ => {}
        }
    }
    let mut text = parts.join("\n");
    if text.is_empty() {
        if let Some(structured) = &result.structured_content {
            text = structured.to_string();
        }
    }
    let text = cut(text);
    if result.is_error == Some(true) {
        ToolReply {
            output: format!("error: {text}"),
            ok: false,
        }
    } else {
        ToolReply {
            output: text,
            ok: true,
        }
    }
}

/// `text` cut to [`MAX_OUTPUT`] bytes on a character boundary.
fn cut(mut text: String) -> String {
    if text.len() <= MAX_OUTPUT {
        return text;
    }
    let mut end = MAX_OUTPUT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(" … (cut)");
    text
}

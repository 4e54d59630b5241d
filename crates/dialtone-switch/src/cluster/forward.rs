//! Forwarding a tool call to the node that owns its call. The front ends
//! (MCP, REST, an AI agent) call tools on whichever node they reached; when
//! the call a tool names is not live here but its row says another live node
//! owns it, [`Cluster::forward`] sends the tool call to that node's
//! [`FORWARD_PATH`] with the cluster secret, and the owner runs it locally
//! (never forwarding again). The answer comes back as it would have here.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Cluster;
use crate::control::CallControl;
use crate::registrar::unix_now_ms;
use crate::tools::{ToolContext, ToolError, ToolOutput};

/// Where a node takes forwarded tool calls: `POST {http}/cluster/v1/tools/{name}`.
pub const FORWARD_PATH: &str = "/cluster/v1/tools";

/// How long the owner may take (a transfer waits for the target's answer).
const FORWARD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// A forwarded tool call, as sent.
#[derive(Debug, Serialize, Deserialize)]
pub struct ForwardRequest {
    pub context: ToolContext,
    #[serde(default)]
    pub arguments: Value,
    /// The node it came from (for the owner's log).
    pub from: String,
}

/// The owner's answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForwardReply {
    Ok(ToolOutput),
    Err(ToolError),
}

impl ForwardReply {
    pub fn from_result(r: Result<ToolOutput, ToolError>) -> ForwardReply {
        match r {
            Ok(o) => ForwardReply::Ok(o),
            Err(e) => ForwardReply::Err(e),
        }
    }
}

/// The call id a tool call is about: its `callId` (management tools) or
/// `call_id` argument, else the context's call.
fn named_call<'a>(ctx: &'a ToolContext, args: &'a Value) -> Option<&'a str> {
    ["callId", "call_id"]
        .iter()
        .find_map(|k| args.get(k).and_then(Value::as_str))
        .or(ctx.call_id.as_deref())
        .filter(|id| !id.is_empty())
}

impl Cluster {
    /// Runs the tool call on the node that owns its call when that is
    /// another live node; None when it is to be run here (the call is
    /// live here, unknown, ended, or the cluster is off).
    pub async fn forward(
        &self,
        control: &CallControl,
        ctx: &ToolContext,
        name: &str,
        args: &Value,
    ) -> Option<Result<ToolOutput, ToolError>> {
        if !self.enabled() {
            return None;
        }
        let id = named_call(ctx, args)?;
        let registry = &control.context().registry;
        if registry.get(id).is_some() || registry.by_sip_call_id(id).is_some() {
            return None;
        }
        let store = control.store();
        let row = store.calls().get(id).await.ok().flatten()?;
        if row.ended_at.is_some() || row.node == self.cfg.node {
            return None;
        }
        let owner = match store.nodes().get(&row.node).await {
            Ok(Some(n)) => n,
            _ => return None,
        };
        let dead_after = i64::try_from(self.cfg.dead_after.as_millis()).unwrap_or(i64::MAX);
        if !owner.alive(unix_now_ms(), dead_after) {
            // The owner's row is closed when the reaper runs; until then the
            // record is what there is.
            return None;
        }
        let result = self.send(&owner.http, name, ctx, args).await;
        let counter = match &result {
            Err(ToolError::Failed(m)) if m.starts_with(UNREACHABLE) => &self.stats.forwarded_failed,
            _ => &self.stats.forwarded_ok,
        };
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(tool = name, call = id, owner = %owner.id, ok = result.is_ok(), "tool call forwarded to the call's node");
        Some(result)
    }

    async fn send(
        &self,
        base: &str,
        name: &str,
        ctx: &ToolContext,
        args: &Value,
    ) -> Result<ToolOutput, ToolError> {
        let unreachable = |e: String| ToolError::Failed(format!("{UNREACHABLE}: {e}"));
        let client = crate::tools::http::client().map_err(unreachable)?;
        let body = serde_json::to_vec(&ForwardRequest {
            context: ctx.clone(),
            arguments: args.clone(),
            from: self.cfg.node.clone(),
        })
        .map_err(|e| unreachable(e.to_string()))?;
        let url = format!("{}{FORWARD_PATH}/{name}", base.trim_end_matches('/'));
        let resp = client
            .post(&url)
            .bearer_auth(&self.cfg.secret)
            .header("content-type", "application/json")
            .timeout(FORWARD_TIMEOUT)
            .body(body)
            .send()
            .await
            .map_err(|e| unreachable(format!("{url}: {e}")))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| unreachable(format!("{url}: {e}")))?;
        if !status.is_success() {
            return Err(unreachable(format!(
                "{url} answered {status}: {}",
                String::from_utf8_lossy(&bytes)
            )));
        }
        match serde_json::from_slice::<ForwardReply>(&bytes) {
            Ok(ForwardReply::Ok(o)) => Ok(o),
            Ok(ForwardReply::Err(e)) => Err(e),
            Err(e) => Err(unreachable(format!("{url}: unreadable answer: {e}"))),
        }
    }
}

/// How a forward that never got the owner's answer begins.
const UNREACHABLE: &str = "the node that owns this call did not answer";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_argument_names_the_call_before_the_context() {
        let ctx = ToolContext {
            call_id: Some("ctx".into()),
            ..Default::default()
        };
        assert_eq!(named_call(&ctx, &json!({"call_id": "arg"})), Some("arg"));
        assert_eq!(named_call(&ctx, &json!({"callId": "mgmt"})), Some("mgmt"));
        assert_eq!(named_call(&ctx, &json!({})), Some("ctx"));
        assert_eq!(
            named_call(&ToolContext::default(), &json!({"call_id": ""})),
            None
        );
    }

    #[test]
    fn replies_round_trip() {
        for r in [
            Ok(ToolOutput::with("done", json!({"outcome": "ended"}))),
            Err(ToolError::NoSuchCall("c1".into())),
            Err(ToolError::NoCall),
        ] {
            let text = serde_json::to_string(&ForwardReply::from_result(r.clone()))
                .unwrap_or_else(|e| panic!("{e}"));
            let back: ForwardReply = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
            let back = match back {
                ForwardReply::Ok(o) => Ok(o),
                ForwardReply::Err(e) => Err(e),
            };
            assert_eq!(back, r);
        }
    }
}

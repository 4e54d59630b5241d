//! The persona's external MCP servers in the agent: connected before the
//! model's session opens (the caller hears ringing meanwhile), their tools
//! added to the session's (dialtone's own keep a name they share), each
//! server that cannot be used reported to the call, and the model's calls
//! routed — a name an external server offers goes there, with that server's
//! timeout, everything else to the call's dispatcher.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::{AgentConfig, AgentEvent, EventSink, ToolDispatcher, ToolReply};
use crate::mcp_client::ExternalTools;

/// An external tool's call is given this much beyond its server's timeout,
/// so that the server's own (clearer) timeout answer arrives first.
const MARGIN: Duration = Duration::from_millis(500);

/// Connects `cfg.external` and adds their tools to `cfg.session.tools`.
pub(super) async fn connect(cfg: &mut AgentConfig, sink: &EventSink) -> ExternalTools {
    if cfg.external.is_empty() {
        return ExternalTools::default();
    }
    let servers = std::mem::take(&mut cfg.external);
    let (mut tools, failures) = ExternalTools::connect(servers, cfg.external_budget).await;
    for (server, reason) in failures {
        tracing::debug!(%server, %reason, "external MCP server unavailable");
        sink(AgentEvent::ExternalToolsUnavailable { server, reason });
    }
    let taken: HashSet<String> = cfg.session.tools.iter().map(|t| t.name.clone()).collect();
    tools.remove_names(|n| taken.contains(n));
    cfg.session.tools.extend(tools.specs());
    tools
}

/// The external tools first, then the call's own.
pub(super) struct Routed {
    pub external: Arc<ExternalTools>,
    pub builtin: Arc<dyn ToolDispatcher>,
}

impl ToolDispatcher for Routed {
    fn call(
        &self,
        name: &str,
        arguments: &str,
    ) -> Pin<Box<dyn Future<Output = ToolReply> + Send + 'static>> {
        match self.external.call(name, arguments) {
            Some(call) => call,
            None => self.builtin.call(name, arguments),
        }
    }

    fn timeout(&self, name: &str) -> Option<Duration> {
        match self.external.timeout(name) {
            Some(t) => Some(t + MARGIN),
            None => self.builtin.timeout(name),
        }
    }
}

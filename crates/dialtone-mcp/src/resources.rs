//! Live calls as MCP resources: `call://ID` names a call (by dialtone's id
//! or a leg's SIP Call-ID), its listing entry says who calls whom and in
//! what state, and reading it gives the call's snapshot as JSON. A
//! session's subscriptions live here: one task per subscribed URI watches
//! the call's snapshot and sends `notifications/resources/updated` when it
//! changes (state, legs, transcript) and once more when the call ends. A
//! task ends with the call, on unsubscribe, when the session goes (its
//! handler, which owns the [`Subscriptions`], is dropped), or when the
//! client can no longer be reached — none outlives its session.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use dialtone_switch::call::{CallHandle, CallSnapshot};
use rmcp::model::{Resource, ResourceContents, ResourceTemplate, ResourceUpdatedNotificationParam};
use rmcp::service::Peer;
use rmcp::RoleServer;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const SCHEME: &str = "call://";
const JSON: &str = "application/json";

/// The URI of call `id`.
pub fn call_uri(id: &str) -> String {
    format!("{SCHEME}{id}")
}

/// The call id a `call://` URI names.
pub fn call_id_of(uri: &str) -> Option<&str> {
    uri.strip_prefix(SCHEME).filter(|id| !id.is_empty())
}

/// A live call's listing entry.
pub fn resource(s: &CallSnapshot) -> Resource {
    let agent = s
        .persona
        .as_ref()
        .map(|p| format!(", agent {p}"))
        .unwrap_or_default();
    Resource::new(call_uri(&s.id), s.id.clone())
        .with_title(format!("{} → {}", s.caller, s.callee))
        .with_description(format!(
            "{} call from {} to {}{agent}: {}",
            s.direction, s.caller, s.callee, s.state
        ))
        .with_mime_type(JSON)
}

/// The template every call URI follows.
pub fn template() -> ResourceTemplate {
    ResourceTemplate::new(format!("{SCHEME}{{call_id}}"), "call")
        .with_description(
            "A live call by dialtone's call id or the SIP Call-ID of a leg: \
             its state, parties, legs and transcript as JSON.",
        )
        .with_mime_type(JSON)
}

/// A call's snapshot as the contents of `uri`.
pub fn contents(uri: &str, s: &CallSnapshot) -> ResourceContents {
    let text = serde_json::to_string_pretty(s).unwrap_or_else(|_| "{}".into());
    ResourceContents::text(text, uri).with_mime_type(JSON)
}

/// One session's resource subscriptions.
pub struct Subscriptions {
    /// Cancelled when the session's handler goes: ends every task.
    session: CancellationToken,
    /// Per URI: a generation (so an ended task removes only its own entry)
    /// and the token that ends its task.
    by_uri: Arc<Mutex<HashMap<String, (u64, CancellationToken)>>>,
    next: Mutex<u64>,
}

impl Default for Subscriptions {
    fn default() -> Self {
        Subscriptions {
            session: CancellationToken::new(),
            by_uri: Arc::default(),
            next: Mutex::new(0),
        }
    }
}

impl Drop for Subscriptions {
    fn drop(&mut self) {
        self.session.cancel();
    }
}

impl Subscriptions {
    /// Watches `call` for `uri` (replacing an earlier subscription to it)
    /// and tells `peer` of every change.
    pub fn subscribe(&self, uri: String, call: &CallHandle, peer: Peer<RoleServer>) {
        let token = self.session.child_token();
        let generation = {
            let mut n = self.next.lock().unwrap_or_else(|e| e.into_inner());
            *n += 1;
            *n
        };
        let old = self
            .by_uri
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(uri.clone(), (generation, token.clone()));
        if let Some((_, old)) = old {
            old.cancel();
        }
        let by_uri = self.by_uri.clone();
        let view = call.watch();
        tokio::spawn(async move {
            watch_call(&uri, view, &peer, &token).await;
            let mut map = by_uri.lock().unwrap_or_else(|e| e.into_inner());
            if map.get(&uri).is_some_and(|(g, _)| *g == generation) {
                map.remove(&uri);
            }
        });
    }

    /// Ends the subscription to `uri`; false if there was none.
    pub fn unsubscribe(&self, uri: &str) -> bool {
        let removed = self
            .by_uri
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(uri);
        removed.map(|(_, t)| t.cancel()).is_some()
    }

    /// Subscriptions whose task still runs.
    pub fn len(&self) -> usize {
        self.by_uri.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Notifies `peer` of each change of the call's snapshot until the call
/// ends (its publisher is dropped: one last notice), `stop` is cancelled,
/// or the peer is gone.
async fn watch_call(
    uri: &str,
    mut view: watch::Receiver<CallSnapshot>,
    peer: &Peer<RoleServer>,
    stop: &CancellationToken,
) {
    // Changes from the subscription on, not the state it was taken in.
    view.borrow_and_update();
    loop {
        let ended = tokio::select! {
            _ = stop.cancelled() => return,
            changed = view.changed() => changed.is_err(),
        };
        let notice = ResourceUpdatedNotificationParam::new(uri.to_string());
        if let Err(e) = peer.notify_resource_updated(notice).await {
            tracing::debug!(%uri, error = %e, "resource subscriber gone");
            return;
        }
        if ended {
            return;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn uris_name_calls() {
        assert_eq!(call_uri("abc"), "call://abc");
        assert_eq!(call_id_of("call://abc"), Some("abc"));
        assert_eq!(call_id_of("call://x@127.0.0.1"), Some("x@127.0.0.1"));
        assert_eq!(call_id_of("call://"), None);
        assert_eq!(call_id_of("file:///etc/passwd"), None);
    }
}

//! The proxy's MCP session with the switch: opened by the client's
//! `initialize` (its answer carries the `Mcp-Session-Id` and the negotiated
//! protocol version), opened again from the same `initialize` when the
//! switch no longer knows it, listened to on its GET stream for messages
//! outside any request, and ended with a DELETE when the client leaves.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::ACCEPT;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::framing::{self, SseParser};
use super::{read_body, Failure, Proxy, Session};

impl Proxy {
    /// POSTs an initialize; the new session, from its answer.
    async fn open_session(
        &self,
        msg: &Value,
        seen: &mut Vec<Value>,
        relay: bool,
    ) -> Result<Option<Session>, Failure> {
        let resp = self.post(msg, None).await?;
        let id = resp
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let want = msg.get("id").cloned();
        let mut version = None;
        let mut inspect = |m: &Value| {
            if framing::response_id(m) == want.as_ref() {
                if let Some(v) = m["result"]["protocolVersion"].as_str() {
                    version = Some(v.to_string());
                }
            }
        };
        if relay {
            self.relay(resp, seen, &mut inspect).await?;
        } else {
            // A replayed initialize: its answer is for us, not the client.
            let body = read_body(resp).await?;
            for event in SseParser::default()
                .push(&body)
                .map_err(Failure::Transport)?
            {
                if let Ok(m) = serde_json::from_str::<Value>(&event.data) {
                    inspect(&m);
                }
            }
            if let Ok(m) = serde_json::from_slice::<Value>(&body) {
                inspect(&m);
            }
        }
        Ok(id.map(|id| Session {
            id,
            version,
            generation: self.generations.fetch_add(1, Ordering::Relaxed) + 1,
        }))
    }

    /// Sets the session and listens on its GET stream.
    fn adopt(self: &Arc<Self>, session: Option<Session>) {
        *self.session.lock().unwrap_or_else(|e| e.into_inner()) = session.clone();
        if let Some(s) = session {
            tracing::info!(session = %s.id, "MCP session opened");
            tokio::spawn(self.clone().listen(s));
        }
    }

    pub(super) async fn initialize(self: &Arc<Self>, msg: Value) {
        *self.init.lock().unwrap_or_else(|e| e.into_inner()) = Some(msg.clone());
        let ids = framing::request_ids(&msg);
        let mut seen = Vec::new();
        let old = self.current();
        match self.open_session(&msg, &mut seen, true).await {
            Ok(session) => {
                self.adopt(session);
                // A client that initializes again leaves its old session.
                if old.is_some() {
                    let me = self.clone();
                    tokio::spawn(async move { me.close_session_of(old).await });
                }
                if seen.is_empty() {
                    let f =
                        Failure::Transport("dialtone closed the answer without a response".into());
                    self.fail(&ids, &f).await;
                }
            }
            Err(f) => self.fail(&ids, &f).await,
        }
    }

    /// Opens a new session in place of one the switch no longer knows
    /// (it restarted), by replaying the client's initialize.
    pub(super) async fn renew(self: &Arc<Self>, failed: u64) -> Result<(), Failure> {
        let _one_at_a_time = self.renewing.lock().await;
        if self.current().is_some_and(|s| s.generation != failed) {
            return Ok(()); // another request renewed it already
        }
        let Some(mut init) = self.init.lock().unwrap_or_else(|e| e.into_inner()).clone() else {
            return Err(Failure::Transport(
                "the MCP session is gone; initialize again".into(),
            ));
        };
        tracing::warn!("the switch lost the MCP session (restarted?): opening a new one");
        init["id"] = json!("dialtone-mcp-stdio-renew");
        let session = self.open_session(&init, &mut Vec::new(), false).await?;
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        if let Some(s) = &session {
            let resp = self.post(&initialized, Some(s)).await?;
            let _ = read_body(resp).await;
        }
        self.adopt(session);
        Ok(())
    }

    /// Relays the session's GET stream (messages outside any request)
    /// until the session changes or the proxy stops; reconnects a few
    /// times when it drops.
    async fn listen(self: Arc<Self>, session: Session) {
        let mut failures = 0;
        while failures < 5 && !self.stop.is_cancelled() {
            if self
                .current()
                .is_none_or(|s| s.generation != session.generation)
            {
                return;
            }
            let sent = self
                .request(Method::GET, Some(&session))
                .header(ACCEPT, "text/event-stream")
                .send()
                .await;
            match sent {
                Ok(resp) if resp.status() == StatusCode::OK => {
                    tracing::debug!(session = %session.id, "listening on the session's event stream");
                    failures = 0;
                    let _ = self.relay(resp, &mut Vec::new(), &mut |_| {}).await;
                }
                // Gone, or no stream offered: nothing to listen to.
                Ok(resp)
                    if matches!(
                        resp.status(),
                        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
                    ) =>
                {
                    return
                }
                Ok(resp) => {
                    tracing::debug!(status = %resp.status(), "the session's event stream was refused");
                    failures += 1;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "the session's event stream failed");
                    failures += 1;
                }
            }
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// Ends the session on the switch (bounded: the client is leaving).
    pub(super) async fn close_session(&self) {
        self.close_session_of(self.current()).await;
    }

    async fn close_session_of(&self, session: Option<Session>) {
        let Some(s) = session else { return };
        let delete = self.request(Method::DELETE, Some(&s)).send();
        if let Ok(Err(e)) = tokio::time::timeout(Duration::from_secs(2), delete).await {
            tracing::debug!(error = %e, "closing the MCP session failed");
        }
    }
}

//! The OpenAI Realtime (GA) adapter: [`OpenAiProtocol`] implements
//! [`RealtimeProtocol`] with `encode.rs` (client events) and `decode.rs`
//! (server events), and says how to open the websocket: the bearer key (or
//! Azure's `api-key`) in the handshake, and `?model=` when the URL names no
//! model.

mod decode;
mod encode;
#[cfg(test)]
mod tests;

use crate::error::DecodeError;
use crate::protocol::{ClientCommand, Provider, RealtimeProtocol, ServerEvent, SessionConfig};

/// OpenAI Realtime over a websocket.
#[derive(Debug, Default)]
pub struct OpenAiProtocol {
    state: decode::DecodeState,
}

impl OpenAiProtocol {
    pub fn new() -> Self {
        Self::default()
    }
}

impl RealtimeProtocol for OpenAiProtocol {
    fn provider(&self) -> Provider {
        Provider::OpenAi
    }

    fn open(&mut self, cfg: &SessionConfig) -> Vec<String> {
        std::iter::once(encode::session_update(cfg))
            .chain(cfg.history.iter().map(encode::history_item))
            .map(|v| v.to_string())
            .collect()
    }

    fn encode(&mut self, cmd: &ClientCommand) -> Vec<String> {
        encode::command(cmd)
            .into_iter()
            .map(|v| v.to_string())
            .collect()
    }

    fn decode(&mut self, msg: &[u8]) -> Result<Vec<ServerEvent>, DecodeError> {
        decode::decode(&mut self.state, msg)
    }

    fn handshake_headers(&self, cfg: &SessionConfig) -> Vec<(String, String)> {
        let Some(key) = &cfg.api_key else {
            return Vec::new();
        };
        // Azure OpenAI takes its resource keys in `api-key`.
        if is_azure(&cfg.url) {
            vec![("api-key".into(), key.clone())]
        } else {
            vec![("Authorization".into(), format!("Bearer {key}"))]
        }
    }

    fn url(&self, cfg: &SessionConfig) -> String {
        with_model(&cfg.url, cfg.model())
    }
}

/// The URL's host, lowercased (empty when there is none).
fn host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    host.split(':').next().unwrap_or("").to_ascii_lowercase()
}

fn is_azure(url: &str) -> bool {
    host(url).ends_with(".azure.com")
}

/// The URL with `model=` added, unless it already names a model (or an
/// Azure `deployment`): OpenAI picks the session's model from the URL.
fn with_model(url: &str, model: &str) -> String {
    let (base, fragment) = match url.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (url, None),
    };
    let query = base.split_once('?').map(|(_, q)| q);
    let named = query.is_some_and(|q| {
        q.split('&')
            .any(|p| p.starts_with("model=") || p.starts_with("deployment="))
    });
    if named {
        return url.to_string();
    }
    let sep = match query {
        None => "?",
        Some("") => "",
        Some(q) if q.ends_with('&') => "",
        Some(_) => "&",
    };
    let mut out = format!("{base}{sep}model={}", percent_encode(model));
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// Query-safe: unreserved characters as they are, the rest %XX.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

//! The Gemini Live adapter: [`GeminiProtocol`] implements
//! [`RealtimeProtocol`] with `encode.rs` (client messages), `schema.rs`
//! (tool schemas in Gemini's dialect) and `decode.rs` (server messages).
//! The API key travels in the `x-goog-api-key` handshake header, never in
//! the URL (where Google's examples put it, and where it would be logged).

mod decode;
mod encode;
mod schema;
#[cfg(test)]
mod tests;

use crate::error::DecodeError;
use crate::protocol::{
    AudioFormat, ClientCommand, Provider, RealtimeProtocol, ServerEvent, SessionConfig,
};

/// Gemini Live (BidiGenerateContent) over a websocket.
#[derive(Debug)]
pub struct GeminiProtocol {
    /// Labels caller audio; set from the configuration by `open`.
    input_mime: String,
    state: decode::DecodeState,
}

impl Default for GeminiProtocol {
    fn default() -> Self {
        GeminiProtocol {
            input_mime: encode::mime_type(AudioFormat::Pcm16 { rate: 16_000 }),
            state: decode::DecodeState::default(),
        }
    }
}

impl GeminiProtocol {
    pub fn new() -> Self {
        Self::default()
    }
}

impl RealtimeProtocol for GeminiProtocol {
    fn provider(&self) -> Provider {
        Provider::Gemini
    }

    fn open(&mut self, cfg: &SessionConfig) -> Vec<String> {
        self.input_mime = encode::mime_type(cfg.input);
        let mut out = vec![encode::setup(cfg).to_string()];
        // A resumed session already holds its conversation.
        if !cfg.history.is_empty() && cfg.resume_handle.is_none() {
            out.push(encode::history(&cfg.history).to_string());
        }
        out
    }

    fn encode(&mut self, cmd: &ClientCommand) -> Vec<String> {
        encode::command(cmd, &self.input_mime)
            .into_iter()
            .map(|v| v.to_string())
            .collect()
    }

    fn decode(&mut self, msg: &[u8]) -> Result<Vec<ServerEvent>, DecodeError> {
        decode::decode(&mut self.state, msg)
    }

    fn handshake_headers(&self, cfg: &SessionConfig) -> Vec<(String, String)> {
        cfg.api_key
            .iter()
            .map(|key| ("x-goog-api-key".to_string(), key.clone()))
            .collect()
    }
}

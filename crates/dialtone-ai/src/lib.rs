//! dialtone-ai: realtime LLM sessions (OpenAI Realtime, Gemini Live) behind
//! one protocol trait, and the agent loop that bridges a session to a call's
//! audio port (paced playout, barge-in, tool-call dispatch). It knows nothing
//! of SIP: call control hands it an audio port and a tool dispatcher. It
//! also holds the MCP client (`mcp_client`) through which an agent offers
//! the tools of a persona's external MCP servers.

pub mod agent;
pub mod error;
mod gemini;
mod json;
pub mod mcp_client;
mod openai;
pub mod protocol;
pub mod session;
#[cfg(test)]
mod wire_matrix;

pub use error::{ConnectError, DecodeError, SessionClosed, UnknownProvider};
pub use gemini::GeminiProtocol;
pub use openai::OpenAiProtocol;
pub use protocol::{
    AudioFormat, ClientCommand, HistoryItem, Provider, RealtimeProtocol, Role, ServerEvent,
    SessionConfig, ToolSpec, TurnDetection, G711,
};
pub use session::{connect, SessionHandle};

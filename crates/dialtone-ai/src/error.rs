//! The crate's error types: a provider message that cannot be understood
//! ([`DecodeError`]), a session that could not be opened ([`ConnectError`]),
//! a command sent to a session that has ended ([`SessionClosed`]), and a
//! provider name that is not one we speak ([`UnknownProvider`]). Their
//! Display texts are whole sentences because they end up in call records
//! and logs as they are.

use thiserror::Error;

/// A websocket message from the provider that could not be turned into
/// events: not JSON, no `type`, a field of the wrong kind, bad base64 …
/// The text says what was wrong, never what the message held (it may hold
/// audio, or a caller's words).
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("undecodable message from the model: {0}")]
pub struct DecodeError(pub String);

impl DecodeError {
    pub(crate) fn new(what: impl Into<String>) -> Self {
        DecodeError(what.into())
    }
}

/// Why [`crate::session::connect`] could not open a session.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ConnectError {
    /// TCP, DNS or TLS failed: the model's server could not be reached.
    #[error("could not reach the model: {0}")]
    Refused(String),
    /// The websocket handshake was answered with an HTTP error (401 and 403
    /// for a bad key, 404 for a wrong URL or model …).
    #[error("the model refused the connection: HTTP {status}")]
    Http { status: u16 },
    /// The handshake and the provider's "ready" did not both arrive within
    /// the configured connect timeout.
    #[error("no answer from the model within the connect timeout")]
    Timeout,
    /// The provider answered our session set-up with an error (or closed
    /// the connection) before it was ready.
    #[error("the model rejected the session: {0}")]
    Rejected(String),
    /// The configured URL is not a ws:// or wss:// URL we can use.
    #[error("the model's URL is not usable: {0}")]
    BadUrl(String),
}

/// A command was sent to a session whose websocket has ended (or that was
/// closed on purpose).
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
#[error("the model session is closed")]
pub struct SessionClosed;

/// A provider name that is neither `openai` nor `gemini`.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("unknown realtime provider {0:?}: expected \"openai\" or \"gemini\"")]
pub struct UnknownProvider(pub String);

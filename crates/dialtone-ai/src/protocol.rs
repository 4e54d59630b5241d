//! The provider-neutral face of a realtime LLM session: the session's
//! configuration ([`SessionConfig`]), the events a provider sends us
//! ([`ServerEvent`]) and the commands we send it ([`ClientCommand`]), and
//! the one trait ([`RealtimeProtocol`]) that each provider's adapter
//! implements to turn those into its wire messages and back. Nothing here
//! does I/O: the websocket lives in [`crate::session`].

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::gemini::GeminiProtocol;
use crate::openai::OpenAiProtocol;

pub use crate::error::{DecodeError, UnknownProvider};

/// Which realtime API a session speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Provider {
    /// OpenAI Realtime (GA), also served by Azure OpenAI.
    OpenAi,
    /// Google Gemini Live (BidiGenerateContent).
    Gemini,
}

/// Which G.711 law a caller's codec is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum G711 {
    Ulaw,
    Alaw,
}

/// Audio as it crosses the websocket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AudioFormat {
    /// G.711 µ-law, 8 kHz.
    Pcmu,
    /// G.711 A-law, 8 kHz.
    Pcma,
    /// 16-bit little-endian mono PCM at `rate` Hz.
    Pcm16 { rate: u32 },
}

impl Provider {
    /// Both names, for messages that list them.
    pub const NAMES: [&'static str; 2] = ["openai", "gemini"];

    /// The (input, output) audio formats for a caller whose codec is G.711
    /// `law` (Some) or anything else (None). OpenAI takes G.711 as it is, so
    /// a G.711 call needs no transcoding at all; Gemini takes only PCM.
    pub fn formats(self, law: Option<G711>) -> (AudioFormat, AudioFormat) {
        match (self, law) {
            (Provider::OpenAi, Some(G711::Ulaw)) => (AudioFormat::Pcmu, AudioFormat::Pcmu),
            (Provider::OpenAi, Some(G711::Alaw)) => (AudioFormat::Pcma, AudioFormat::Pcma),
            (Provider::OpenAi, None) => (
                AudioFormat::Pcm16 { rate: 24_000 },
                AudioFormat::Pcm16 { rate: 24_000 },
            ),
            (Provider::Gemini, _) => (
                AudioFormat::Pcm16 { rate: 16_000 },
                AudioFormat::Pcm16 { rate: 24_000 },
            ),
        }
    }

    /// A fresh adapter for this provider's wire protocol.
    pub fn protocol(self) -> Box<dyn RealtimeProtocol> {
        match self {
            Provider::OpenAi => Box::new(OpenAiProtocol::new()),
            Provider::Gemini => Box::new(GeminiProtocol::new()),
        }
    }

    /// The model used when the configuration names none.
    pub fn default_model(self) -> &'static str {
        match self {
            Provider::OpenAi => "gpt-realtime",
            // The Live model the Gemini API documents (and google-genai's own
            // live tests use); the 2.0 live models have been retired.
            Provider::Gemini => "models/gemini-3.1-flash-live-preview",
        }
    }

    /// The voice used when the configuration names none.
    pub fn default_voice(self) -> &'static str {
        match self {
            Provider::OpenAi => "alloy",
            Provider::Gemini => "Puck",
        }
    }

    /// The name used in configuration and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::OpenAi => "openai",
            Provider::Gemini => "gemini",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Provider {
    type Err = UnknownProvider;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "openai" => Ok(Provider::OpenAi),
            "gemini" => Ok(Provider::Gemini),
            _ => Err(UnknownProvider(s.to_string())),
        }
    }
}

/// How the provider decides that the caller has finished a turn.
#[derive(Clone, Debug, PartialEq)]
pub enum TurnDetection {
    /// Voice activity detection on the provider's side.
    ServerVad {
        /// 0.0–1.0: higher needs louder speech.
        threshold: f32,
        prefix_padding_ms: u32,
        silence_duration_ms: u32,
    },
    /// A model judges whether the caller is done; `eagerness` is one of
    /// low, medium, high, auto (OpenAI only; Gemini maps it onto its
    /// end-of-speech sensitivity).
    SemanticVad { eagerness: String },
    /// No turn detection: the client decides (null turn detection).
    Manual,
}

impl Default for TurnDetection {
    /// The providers' documented defaults.
    fn default() -> Self {
        TurnDetection::ServerVad {
            threshold: 0.5,
            prefix_padding_ms: 300,
            silence_duration_ms: 500,
        }
    }
}

/// The semantic-VAD eagerness names OpenAI knows; anything else is `auto`
/// (its default) rather than a session the server refuses.
pub(crate) fn eagerness_name(eagerness: &str) -> &'static str {
    match eagerness.trim().to_ascii_lowercase().as_str() {
        "low" => "low",
        "medium" => "medium",
        "high" => "high",
        _ => "auto",
    }
}

/// A function the model may call.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// A JSON schema object for the arguments.
    pub parameters: serde_json::Value,
}

/// Who said a line of carried-over conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

/// One line of conversation carried over from an earlier session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryItem {
    pub role: Role,
    pub text: String,
}

/// Everything needed to open a session.
#[derive(Clone)]
pub struct SessionConfig {
    pub provider: Provider,
    /// ws:// or wss:// — configurable for Azure and local test servers.
    pub url: String,
    pub api_key: Option<String>,
    /// None: [`Provider::default_model`].
    pub model: Option<String>,
    /// None: [`Provider::default_voice`].
    pub voice: Option<String>,
    pub instructions: String,
    pub tools: Vec<ToolSpec>,
    /// What [`ClientCommand::Audio`] carries.
    pub input: AudioFormat,
    /// What [`ServerEvent::Audio`] carries.
    pub output: AudioFormat,
    pub turn_detection: TurnDetection,
    /// false when the switch itself decides when a caller's speech
    /// interrupts the agent (false-interruption guard): OpenAI
    /// `turn_detection.interrupt_response=false`; Gemini keeps its automatic
    /// activity detection unchanged.
    pub interrupt_response: bool,
    /// Some(model) asks for the caller's speech to be transcribed (OpenAI
    /// `audio.input.transcription {model}`; Gemini: any Some asks
    /// `inputAudioTranscription {}`). The agent's own speech is always
    /// transcribed.
    pub transcription_model: Option<String>,
    /// Conversation carried over from an earlier session (a reconnect, or a
    /// renewal before the provider's session limit).
    pub history: Vec<HistoryItem>,
    /// Gemini session-resumption handle from an earlier connection; None
    /// starts fresh but still asks for resumption updates.
    pub resume_handle: Option<String>,
    /// Bounds the handshake and the provider's "ready" together.
    pub connect_timeout: Duration,
}

impl SessionConfig {
    /// A configuration with the provider's defaults: PCM formats for a
    /// non-G.711 caller, server VAD, the provider interrupting itself, no
    /// caller transcription, no tools, no history, 10 s to connect.
    pub fn new(provider: Provider, url: impl Into<String>) -> Self {
        let (input, output) = provider.formats(None);
        SessionConfig {
            provider,
            url: url.into(),
            api_key: None,
            model: None,
            voice: None,
            instructions: String::new(),
            tools: Vec::new(),
            input,
            output,
            turn_detection: TurnDetection::default(),
            interrupt_response: true,
            transcription_model: None,
            history: Vec::new(),
            resume_handle: None,
            connect_timeout: Duration::from_secs(10),
        }
    }

    /// The model to ask for.
    pub fn model(&self) -> &str {
        self.model
            .as_deref()
            .unwrap_or_else(|| self.provider.default_model())
    }

    /// The voice to ask for.
    pub fn voice(&self) -> &str {
        self.voice
            .as_deref()
            .unwrap_or_else(|| self.provider.default_voice())
    }
}

/// Written by hand so that the API key never reaches a log.
impl fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionConfig")
            .field("provider", &self.provider)
            .field("url", &self.url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("model", &self.model)
            .field("voice", &self.voice)
            .field("instructions", &self.instructions)
            .field("tools", &self.tools)
            .field("input", &self.input)
            .field("output", &self.output)
            .field("turn_detection", &self.turn_detection)
            .field("interrupt_response", &self.interrupt_response)
            .field("transcription_model", &self.transcription_model)
            .field("history", &self.history)
            .field("resume_handle", &self.resume_handle)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// Provider -> dialtone, normalized.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerEvent {
    /// The session is configured (OpenAI: the first `session.updated`;
    /// Gemini: `setupComplete`).
    Ready,
    /// The model began a response (OpenAI `response.created`; Gemini: the
    /// first `modelTurn` of a turn).
    ResponseStarted {
        response_id: Option<String>,
    },
    /// Model audio, base64-decoded, in the configured `output` format.
    Audio {
        item_id: Option<String>,
        data: Vec<u8>,
    },
    /// All audio of an item (OpenAI) or of a generation (Gemini
    /// `generationComplete`) has been sent.
    AudioDone {
        item_id: Option<String>,
    },
    /// The provider heard the caller start speaking (OpenAI only).
    SpeechStarted {
        item_id: Option<String>,
        audio_start_ms: Option<u32>,
    },
    SpeechStopped,
    /// The provider stopped its own response because the caller spoke
    /// (Gemini `interrupted`): drop queued playout.
    Interrupted,
    /// The agent's words: deltas (`done=false`) and, on OpenAI, the whole
    /// item's transcript at the end (`done=true`).
    AgentTranscript {
        item_id: Option<String>,
        text: String,
        done: bool,
    },
    /// The caller's words (OpenAI: a whole utterance; Gemini: fragments).
    CallerTranscript {
        text: String,
    },
    /// The response ended; `cancelled` when it was cut short.
    ResponseDone {
        cancelled: bool,
    },
    /// The model calls a function; `arguments` is a JSON object's text.
    ToolCall {
        call_id: String,
        name: String,
        arguments: String,
    },
    /// The model no longer wants these calls' results (Gemini, after a
    /// barge-in).
    ToolCallCancelled {
        call_ids: Vec<String>,
    },
    /// OpenAI's idle timeout fired (nobody spoke for a while).
    IdleTimeout,
    /// The provider will end the connection soon (Gemini `goAway`).
    GoAway {
        time_left: Option<Duration>,
    },
    /// A handle to resume this session on a new connection (Gemini).
    ResumeHandle(String),
    /// The provider reported an error; `fatal` when the session cannot go on.
    Error {
        message: String,
        code: Option<String>,
        fatal: bool,
    },
    /// The websocket ended; always the last event of a session. Emitted by
    /// the session driver, never by a decoder.
    Closed {
        reason: String,
    },
}

/// dialtone -> provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientCommand {
    /// Caller audio in the configured `input` format.
    Audio(Vec<u8>),
    /// A function's result; on OpenAI it also asks for a response.
    ToolResult {
        call_id: String,
        name: String,
        output: String,
    },
    /// Tell OpenAI how much of an item the caller really heard (Gemini: no
    /// message).
    Truncate { item_id: String, audio_end_ms: u32 },
    /// Stop the response in progress (OpenAI; Gemini: no message).
    CancelResponse,
    /// A user text message the model should answer.
    UserText(String),
    /// Make the model speak now (greeting, filler, re-prompt).
    Respond { instructions: Option<String> },
    /// Close the websocket cleanly (handled by the session driver; adapters
    /// produce no message for it).
    Close,
}

/// One provider's wire protocol: JSON text in both directions.
pub trait RealtimeProtocol: Send {
    fn provider(&self) -> Provider;

    /// The messages sent right after the websocket opens (OpenAI:
    /// `session.update`, then one `conversation.item.create` per history
    /// item; Gemini: `setup`, then the history as `clientContent` when there
    /// is history and no resume handle).
    fn open(&mut self, cfg: &SessionConfig) -> Vec<String>;

    /// The messages for one command (possibly none).
    fn encode(&mut self, cmd: &ClientCommand) -> Vec<String>;

    /// One websocket message (text, or a binary frame holding JSON) ->
    /// zero or more events. Never panics, whatever the input.
    fn decode(&mut self, msg: &[u8]) -> Result<Vec<ServerEvent>, DecodeError>;

    /// Extra HTTP headers for the websocket handshake (the API key goes
    /// here, never in the URL).
    fn handshake_headers(&self, cfg: &SessionConfig) -> Vec<(String, String)>;

    /// The URL to open; adapters may complete the configured one (OpenAI
    /// adds `?model=` when the URL names no model).
    fn url(&self, cfg: &SessionConfig) -> String {
        cfg.url.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_names_round_trip() -> Result<(), UnknownProvider> {
        for name in Provider::NAMES {
            let p: Provider = name.parse()?;
            assert_eq!(p.to_string(), name);
        }
        assert_eq!(" OpenAI ".parse::<Provider>()?, Provider::OpenAi);
        let err = "claude".parse::<Provider>().err();
        assert_eq!(err, Some(UnknownProvider("claude".into())));
        Ok(())
    }

    #[test]
    fn formats_per_provider_and_law() {
        use AudioFormat::*;
        let pcm24 = Pcm16 { rate: 24_000 };
        let pcm16 = Pcm16 { rate: 16_000 };
        assert_eq!(Provider::OpenAi.formats(Some(G711::Ulaw)), (Pcmu, Pcmu));
        assert_eq!(Provider::OpenAi.formats(Some(G711::Alaw)), (Pcma, Pcma));
        assert_eq!(Provider::OpenAi.formats(None), (pcm24, pcm24));
        for law in [Some(G711::Ulaw), Some(G711::Alaw), None] {
            assert_eq!(Provider::Gemini.formats(law), (pcm16, pcm24));
        }
    }

    #[test]
    fn defaults_and_protocols() {
        assert_eq!(Provider::OpenAi.default_model(), "gpt-realtime");
        assert_eq!(Provider::OpenAi.default_voice(), "alloy");
        assert!(Provider::Gemini.default_model().starts_with("models/"));
        assert_eq!(Provider::Gemini.default_voice(), "Puck");
        for p in [Provider::OpenAi, Provider::Gemini] {
            assert_eq!(p.protocol().provider(), p);
        }
    }

    #[test]
    fn debug_never_shows_the_key() {
        let mut cfg = SessionConfig::new(Provider::OpenAi, "wss://example.invalid/");
        cfg.api_key = Some("sk-secret-123".into());
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("sk-secret-123"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }
}

//! The objects the management operations answer with, in the camelCase
//! JSON assistants know from hosted voice platforms. Each entity carries
//! an `id`; times are RFC 3339 text. The same types document the REST
//! API (their schemas go into its OpenAPI document and into the MCP tools'
//! output schemas).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// An assistant: a persona, the AI agent that talks on calls.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Assistant {
    pub id: String,
    /// Unique; numbers route to `persona:NAME`.
    pub name: String,
    /// "openai" or "gemini".
    pub provider: String,
    /// The realtime websocket URL.
    pub url: String,
    /// Null: the provider's default.
    pub model: Option<String>,
    /// Null: the provider's default.
    pub voice: Option<String>,
    /// The system prompt.
    pub instructions: String,
    /// Said first when the call is answered; null: the other side speaks first.
    pub first_message: Option<String>,
    pub timezone: String,
    /// "server_vad", "semantic_vad" or "none".
    pub turn_detection: String,
    pub transcription_model: Option<String>,
    /// Where calls go when the model cannot be reached.
    pub fallback: Option<String>,
    /// 0: the switch's limit.
    pub max_duration_seconds: u32,
    /// 0: off.
    pub idle_timeout_seconds: u32,
    /// The NAME of the environment variable holding the provider key (never the key).
    pub api_key_env: Option<String>,
    pub account_id: String,
    /// The numbers that ring this assistant.
    pub phone_numbers: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AssistantList {
    pub assistants: Vec<Assistant>,
}

/// What a delete removed.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Deleted {
    pub id: String,
    pub deleted: bool,
}

/// A phone number (DID) and what it rings.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhoneNumber {
    pub id: String,
    /// As entered, e.g. "+15550100".
    pub phone_number: String,
    /// "assistant", "user", "trunk" or "queue".
    pub target_type: String,
    /// The assistant's, user's, trunk's or queue's name.
    pub target: String,
    /// When it rings an assistant.
    pub assistant_id: Option<String>,
    /// The account of what it rings (null for a trunk).
    pub account_id: Option<String>,
    /// Calls to it are recorded.
    pub recorded: bool,
    pub created_at: String,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhoneNumberList {
    pub phone_numbers: Vec<PhoneNumber>,
}

/// One leg of a call: a SIP dialog (a phone, a trunk) or the AI agent.
#[derive(Clone, Debug, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallLeg {
    /// "caller", "user:1001", "trunk:carrier", "persona:NAME".
    pub label: String,
    /// "uas" (its INVITE came to dialtone) or "uac" (dialtone placed it).
    pub role: String,
    /// While live: "calling", "early", "connected", "ending", "ended".
    pub state: Option<String>,
    pub sip_call_id: String,
    pub codec: Option<String>,
    /// Where it ended: the final SIP response ("486 Busy Here").
    pub final_status: Option<String>,
}

/// One line of what was said.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TranscriptEntry {
    /// "caller" (the person on the line) or "agent" (the assistant).
    pub side: String,
    pub text: String,
    /// Milliseconds since the call started.
    pub at_ms: i64,
}

/// A call, live or ended.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Call {
    pub id: String,
    /// "ringing", "in-progress" or "ended".
    pub status: String,
    /// Still going on.
    pub live: bool,
    /// "inbound", "outbound" or "internal".
    pub direction: String,
    /// Who called: a number or user.
    pub from: String,
    /// Who was called: a number or user.
    pub to: String,
    /// The assistant (persona name) that took part.
    pub assistant: Option<String>,
    pub account_id: Option<String>,
    pub started_at: String,
    pub answered_at: Option<String>,
    pub ended_at: Option<String>,
    /// Answered to ended (or to now, while live); null if never answered.
    pub duration_seconds: Option<f64>,
    /// "answered", "busy", "no_answer", "cancelled", "rejected", "unavailable", "failed".
    pub outcome: Option<String>,
    /// Why it ended: "BYE", "486 Busy Here", "agent hangup", …
    pub ended_reason: Option<String>,
    /// The SIP status when it ended with one (486, 404, …).
    pub sip_status: Option<u16>,
    /// "caller", "callee" or "system".
    pub hangup_side: Option<String>,
    pub legs: Vec<CallLeg>,
    pub transcript: Vec<TranscriptEntry>,
    /// The recording's WAV file, when recorded.
    pub recording: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CallList {
    pub calls: Vec<Call>,
}

/// A call to place later.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledCall {
    pub id: String,
    /// "pending", "fired", "cancelled" or "failed".
    pub status: String,
    /// The assistant that will talk to the customer.
    pub assistant_id: Option<String>,
    /// Or the user whose phone rings first.
    pub user_id: Option<String>,
    pub customer: ScheduledCustomer,
    /// The number presented as caller ID.
    pub phone_number: Option<String>,
    pub variable_values: BTreeMap<String, String>,
    pub scheduled_at: String,
    /// The call placed, once fired.
    pub call_id: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    pub created_at: String,
    /// When a node took it to place it.
    pub fired_at: Option<String>,
}

/// Whom a scheduled call is for.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ScheduledCustomer {
    pub number: String,
    pub name: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledCallList {
    pub scheduled_calls: Vec<ScheduledCall>,
}

/// An assistant's own tool.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomTool {
    pub id: String,
    pub assistant_id: String,
    /// The assistant's name.
    pub assistant: String,
    /// The function name its model calls.
    pub name: String,
    pub description: String,
    /// "transfer_user", "transfer_queue" or "api_request".
    #[serde(rename = "type")]
    pub kind: String,
    /// transfer_user: the user.
    pub user: Option<String>,
    /// transfer_queue: the queue.
    pub queue: Option<String>,
    /// api_request: the request.
    pub request: Option<ApiRequestView>,
    /// The JSON schema of its arguments, as the model gets it.
    #[schema(value_type = Object)]
    pub parameters: Value,
    pub created_at: String,
    pub updated_at: String,
}

/// An HTTP request made from templates: `{name}` is an argument, `${NAME}`
/// an environment variable of the switch (secrets are never stored).
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiRequestView {
    pub method: String,
    pub url: String,
    /// In order.
    pub headers: Vec<Header>,
    pub body: Option<String>,
    pub variables: Vec<ToolVariableView>,
    pub timeout_ms: u32,
}

/// An HTTP header: its value may use `{name}` and `${NAME}`.
#[derive(Clone, Debug, serde::Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub name: String,
    pub value: String,
}

/// An argument of an API-request tool (the model fills it in).
#[derive(Clone, Debug, serde::Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolVariableView {
    pub name: String,
    /// "text", "number" or "options".
    #[serde(rename = "type")]
    pub kind: String,
    /// For "options": the allowed values.
    #[serde(default)]
    pub options: Option<Vec<String>>,
    #[serde(default)]
    pub description: Option<String>,
    /// Default true.
    #[serde(default = "yes")]
    pub required: bool,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CustomToolList {
    pub tools: Vec<CustomTool>,
}

/// A phone registered for a user.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Registration {
    /// The user and contact, together.
    pub id: String,
    pub user: String,
    /// Where the phone is reached.
    pub contact: String,
    pub expires_at: String,
    pub expires_in_seconds: i64,
    /// Where the REGISTER came from ("udp:127.0.0.1:5062").
    pub source: String,
    pub user_agent: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RegistrationList {
    pub registrations: Vec<Registration>,
}

/// Counts over a set of calls.
#[derive(Clone, Debug, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallCounts {
    pub total: u64,
    pub answered: u64,
    /// Ended without being answered.
    pub failed: u64,
    /// Answered / (answered + failed); null without ended calls.
    pub success_rate: Option<f64>,
    /// Of the answered calls that ended.
    pub average_duration_seconds: Option<f64>,
    pub total_duration_seconds: f64,
}

/// The counts of one assistant or trunk.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct NamedCounts {
    /// The assistant's or trunk's name ("-" for calls without one).
    pub id: String,
    #[serde(flatten)]
    pub counts: CallCounts,
}

/// Call statistics over a period.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallStatistics {
    pub since: String,
    pub until: String,
    #[serde(flatten)]
    pub counts: CallCounts,
    /// Calls per outcome ("answered", "busy", …; "live" while going on).
    pub by_outcome: BTreeMap<String, u64>,
    pub by_assistant: Vec<NamedCounts>,
    /// Calls that used each trunk (in or out).
    pub by_trunk: Vec<NamedCounts>,
    /// The period held more calls than were counted.
    pub truncated: bool,
}

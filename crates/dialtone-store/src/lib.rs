//! dialtone's persistent state: accounts, SIP users with their digest
//! credentials, registrations (contact bindings), trunks, numbers (DIDs),
//! outbound routes, personas (AI agents) with their office hours, own tools
//! and external MCP servers, API keys,
//! leads, call records and scheduled calls, behind one API over two
//! backends — an embedded SQLite file (the default) or PostgreSQL when the URL
//! starts with `postgres://` or `postgresql://`. Every query and the single set
//! of migrations (`migrations/`, embedded) are written once in SQL both
//! engines accept, run through sqlx's `Any` driver.
//!
//! ```no_run
//! # async fn demo() -> Result<(), dialtone_store::StoreError> {
//! let store = dialtone_store::Store::connect("sqlite://data/dialtone.db").await?;
//! let account = store.accounts().ensure("default").await?;
//! # let _ = account; Ok(()) }
//! ```

mod accounts;
mod api_keys;
mod batch;
mod cache;
mod calls;
mod contacts;
mod error;
mod hours;
mod leads;
mod limits;
mod location;
mod nodes;
mod numbers;
mod persona_mcp_servers;
mod persona_tools;
mod personas;
pub mod phone;
mod queues;
mod registrations;
mod routes;
mod scheduled_calls;
mod srtp;
mod store;
mod trunks;
mod users;
mod write_behind;
mod writer;

pub use accounts::{check_contact_url, Account, Accounts, DEFAULT_REGION};
pub use api_keys::{ApiKey, ApiKeys, KEY_PREFIX};
pub use calls::{CallRecord, Calls};
pub use contacts::{Contact, ContactNumber, Contacts, NewContact};
pub use error::StoreError;
pub use hours::{check_date, check_day, weekday_name, Hours, OfficeHours, TimeRange};
pub use leads::{Lead, LeadCase, Leads, NewCase, CLASSIFICATIONS};
pub use limits::{format_rate, parse_max_calls, parse_max_cps, CallLimits};
pub use nodes::{Node, Nodes, NODE_LOST_CAUSE};
pub use numbers::{Number, Numbers, ParseTargetKindError, TargetKind};
pub use persona_mcp_servers::{
    check_mcp_server, check_mcp_server_name, header_env_names, split_command, McpTransport,
    NewMcpServer, PersonaMcpServer, PersonaMcpServers, MCP_TIMEOUT_MS_RANGE,
};
pub use persona_tools::{
    check_description, check_kind, check_tool_name, parse_template, ApiRequest, PersonaTool,
    PersonaToolKind, PersonaToolUpdate, PersonaTools, TemplatePart, ToolVariable, VariableKind,
    DEFAULT_TOOL_TIMEOUT_MS, GLOBAL_TOOL_NAMES, METHODS, TIMEOUT_MS_RANGE,
};
pub use personas::check as persona_check;
pub use personas::{NewPersona, Persona, PersonaUpdate, Personas};
pub use queues::{NewQueue, ParseQueueStrategyError, Queue, QueueMember, QueueStrategy, Queues};
pub use registrations::{Binding, BindingChange, Registrations};
pub use routes::{Route, Routes};
pub use scheduled_calls::{
    unix_now_ms, NewScheduledCall, ScheduledCall, ScheduledCalls, ScheduledStatus, INTERRUPTED,
};
pub use srtp::SrtpPolicy;
pub use store::{Backend, Store};
pub use trunks::{NewTrunk, Trunk, Trunks};
pub use users::{NewUser, User, Users};
pub use write_behind::{WriteBehindStats, LINGER as WRITE_BEHIND_LINGER};

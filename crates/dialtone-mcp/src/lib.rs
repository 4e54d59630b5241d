//! dialtone's MCP server: the switch's tool registry and its live calls
//! over MCP Streamable HTTP (rmcp) and the legacy HTTP+SSE transport, for
//! assistants and scripts outside a call. It owns the `/mcp` route (and
//! `/sse`, `/sse/message`), API-key authentication (shared with the
//! REST API), the per-request context headers, and the translation between
//! the registry and MCP's shapes. It implements no tool: every tools/call
//! goes to [`dialtone_switch::tools::ToolRegistry`], the registry the
//! in-call agent uses too, acting for the key's account.
//!
//! ```no_run
//! # fn demo(control: dialtone_switch::control::CallControl, store: dialtone_store::Store) {
//! use std::sync::Arc;
//! let auth = Arc::new(dialtone_mcp::KeyAuth::new(store));
//! let stop = tokio_util::sync::CancellationToken::new();
//! let app: axum::Router =
//!     dialtone_mcp::router(control, auth, &dialtone_mcp::McpConfig::default(), stop);
//! # let _ = app; }
//! ```

pub mod auth;
pub mod context;
mod handler;
mod rebinding;
pub mod resources;
pub mod sse;
pub mod tools;
mod transport;

pub use auth::{presented_key, AuthError, Authenticated, KeyAuth};
pub use context::{ContextError, ContextHeaders};
pub use handler::DialtoneMcp;
pub use transport::{rejection, router, McpConfig};

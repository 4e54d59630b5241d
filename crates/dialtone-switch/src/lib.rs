//! Call control for dialtone: the [`Switch`] takes every request the
//! transaction layer delivers and, after the checks every UAS applies
//! (RFC 3261 §8.2), sends REGISTER to the [`registrar`], a new INVITE
//! through the [`router`] to a new [`call`], and an in-dialog request to the
//! call it belongs to. Only this crate knows what a call is. Every front
//! end acts on calls through [`control::CallControl`], and AI tools live in
//! the one [`tools::ToolRegistry`]. The [`scheduler`] places scheduled
//! calls when they come due. Every new call and transfer passes
//! [`admission`] (the per-party call limits) first; every new request
//! passes [`abuse`] (bans, per-source rates, scanners) before that.

pub mod abuse;
pub mod admission;
pub mod auth_guard;
pub mod call;
pub mod cluster;
pub mod control;
pub mod front_proxy;
mod outage;
pub mod registrar;
pub mod router;
pub mod scheduler;
mod switch;
pub mod token_bucket;
pub mod tools;
pub mod uplink;

pub use switch::{Switch, SwitchConfig, ALLOW};

/// A response with our own reason phrase (rsip keeps the phrase inside the
/// status code; `Other` carries ours).
pub(crate) fn with_reason(mut r: rsip::Response, reason: &str) -> rsip::Response {
    let code = r.status_code.code();
    r.status_code = rsip::StatusCode::Other(code, reason.to_string());
    r
}

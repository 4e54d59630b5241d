//! Call control for dialtone. For now: the [`Switch`] that takes every
//! request the transaction layer delivers and routes it by method — REGISTER
//! to the [`registrar`], OPTIONS answered with our capabilities — after the
//! checks every UAS applies (RFC 3261 §8.2). Calls (the B2BUA) build on it.

pub mod auth_guard;
pub mod registrar;
mod switch;

pub use switch::{Switch, SwitchConfig, ALLOW};

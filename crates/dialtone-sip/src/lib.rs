//! dialtone's SIP stack, layered as RFC 3261 describes it:
//! [`message`] (parse and serialize, on rsip) → [`transport`] (UDP, TCP) →
//! [`transaction`] (§17 state machines and timers) → [`dialog`] (§12).
//! [`auth`] holds digest authentication (RFC 7616), server and client side.
//! Nothing here knows what a call is; that is `dialtone-switch`'s job.

pub mod auth;
pub mod dialog;
pub mod message;
pub mod sdp;
pub mod transaction;
pub mod transport;

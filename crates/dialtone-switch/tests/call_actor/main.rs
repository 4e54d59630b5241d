//! The Call actor under test, in process: a real [`Switch`] and
//! transaction layer over a sink transport (see [`harness`]), fake peers
//! made of hand-written SIP, and assertions on what dialtone sends and on
//! the call record. One file per topic:
//!
//! - [`forking`]: a user's contacts all ring, the first 2xx wins, the
//!   others are CANCELled (only after a provisional, RFC 3261 §9.1), a
//!   late 2xx is ACKed and BYEd.
//! - [`cancel_race`]: the caller's CANCEL against the callee's 200, in
//!   both orders.
//! - [`glare`]: crossing re-INVITEs (§14.2's 491, §14.1's retry), and a
//!   BYE crossing a re-INVITE.
//! - [`transfer_failure`]: blind transfers (REFER) that fail leave the
//!   call as it was, and tell the transferor why (NOTIFY, RFC 3515).
//! - [`bye_during_transfer`]: a party hangs up while the transfer target
//!   is still being called.
//!
//! [`Switch`]: dialtone_switch::Switch

mod harness;

mod bye_during_transfer;
mod cancel_race;
mod forking;
mod glare;
mod transfer_failure;

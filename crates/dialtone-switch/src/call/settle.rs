//! An ended call's last duty: placed legs still without a final response
//! are owed their CANCEL or the release of a late answer.

use tokio::sync::mpsc;

use super::actor::Call;
use super::event::{CallEvent, Pending};

/// How long an ended call waits for its unanswered placed legs to settle:
/// Timer B (64·T1) and a margin.
const SETTLE_FOR: std::time::Duration = std::time::Duration::from_secs(34);

impl Call {
    /// After the call has ended and its record is saved, placed legs whose
    /// INVITE is still unanswered are owed their CANCEL, which must wait
    /// for a provisional response (RFC 3261 §9.1), or the ACK and BYE for a
    /// 2xx that crossed it. The ended call keeps reading their responses,
    /// and nothing else, until each has its final response (the client
    /// transaction's Timer B bounds that; so does this deadline).
    pub(super) async fn settle(&mut self, mut rx: mpsc::UnboundedReceiver<CallEvent>) {
        let deadline = tokio::time::Instant::now() + SETTLE_FOR;
        for l in self.legs.iter().filter(|l| l.invite_pending) {
            tracing::debug!(call = %self.id, leg = %l.label, state = ?l.state, "settling a placed leg");
        }
        while self.legs.iter().any(|l| l.invite_pending) {
            let ev = match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(ev)) => ev,
                Ok(None) => return,
                Err(_) => {
                    tracing::warn!(call = %self.id, "placed legs still unanswered when the ended call gave up on them");
                    return;
                }
            };
            match ev {
                CallEvent::Client {
                    leg,
                    pending: Pending::Invite,
                    event,
                } => self.on_invite_event(leg, event).await,
                CallEvent::Request(tx) => {
                    // The dialog is gone (RFC 3261 §12.2.2).
                    let _ = tx.reply(481);
                }
                _ => {}
            }
        }
    }
}

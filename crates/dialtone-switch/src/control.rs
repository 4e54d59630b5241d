//! [`CallControl`]: the one facade every front end uses to see and act on
//! live calls — the REST API, the MCP server, and the tools an AI agent
//! calls. It lists calls, reads one's snapshot, sends it a
//! [`CallCommand`] and waits for the real outcome, and subscribes to its
//! notices. A call is named by dialtone's call id or by the SIP Call-ID of
//! any of its legs, and is visible only to the operator and to the account
//! it belongs to: another account's call is "no such call", exactly as an
//! unknown id is.

use std::sync::Arc;

use dialtone_store::Store;
use tokio::sync::broadcast;

use crate::call::{
    CallCommand, CallContext, CallHandle, CallNotice, CallSnapshot, CommandError, CommandResult,
};
use crate::tools::ToolRegistry;

/// Whose view of the calls: the operator sees every call, an account only
/// its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope<'a> {
    Operator,
    Account(&'a str),
}

impl Scope<'_> {
    fn sees(&self, snapshot: &CallSnapshot) -> bool {
        match self {
            Scope::Operator => true,
            Scope::Account(a) => snapshot.account_id.as_deref() == Some(*a),
        }
    }
}

#[derive(Clone)]
pub struct CallControl {
    ctx: Arc<CallContext>,
}

impl CallControl {
    pub fn new(ctx: Arc<CallContext>) -> Self {
        CallControl { ctx }
    }

    /// A live call visible in `scope`, by call id or leg Call-ID.
    pub fn find(&self, id: &str, scope: Scope<'_>) -> Result<CallHandle, CommandError> {
        let reg = &self.ctx.registry;
        let handle = reg
            .get(id)
            .or_else(|| reg.by_sip_call_id(id))
            .ok_or(CommandError::NoSuchCall)?;
        if scope.sees(&handle.snapshot()) {
            Ok(handle)
        } else {
            Err(CommandError::NoSuchCall)
        }
    }

    /// Every live call visible in `scope`, oldest first.
    pub fn list(&self, scope: Scope<'_>) -> Vec<CallSnapshot> {
        let mut all: Vec<CallSnapshot> = self
            .ctx
            .registry
            .all()
            .iter()
            .map(CallHandle::snapshot)
            .filter(|s| scope.sees(s))
            .collect();
        all.sort_by(|a, b| a.started_at.cmp(&b.started_at).then(a.id.cmp(&b.id)));
        all
    }

    pub fn snapshot(&self, id: &str, scope: Scope<'_>) -> Result<CallSnapshot, CommandError> {
        Ok(self.find(id, scope)?.snapshot())
    }

    /// Sends `cmd` to the call and waits for its real outcome.
    pub async fn command(&self, id: &str, scope: Scope<'_>, cmd: CallCommand) -> CommandResult {
        let call = self.find(id, scope)?;
        if let CallCommand::Bridge { other_call, .. } = &cmd {
            // The other call must be visible in the same scope.
            self.find(other_call, scope)?;
        }
        call.command(cmd).await
    }

    /// The call's snapshot now, and its notices from now on.
    pub fn subscribe(
        &self,
        id: &str,
        scope: Scope<'_>,
    ) -> Result<(CallSnapshot, broadcast::Receiver<CallNotice>), CommandError> {
        let h = self.find(id, scope)?;
        let rx = h.subscribe();
        Ok((h.snapshot(), rx))
    }

    /// The tools agents and MCP clients call.
    pub fn tools(&self) -> &Arc<ToolRegistry> {
        &self.ctx.tools
    }

    pub fn store(&self) -> &Store {
        &self.ctx.store
    }
}

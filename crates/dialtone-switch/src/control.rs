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
    Destination, Outbound, Talker,
};
use crate::router::{self, Caller, Target};
use crate::tools::ToolRegistry;

/// Who talks to the customer of a call dialtone places.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Speaker {
    /// A persona, by name or id.
    Persona(String),
    /// A user, whose phone rings first (click-to-dial).
    User(String),
}

/// A call to place.
#[derive(Clone, Debug)]
pub struct OriginateRequest {
    /// The customer: a number (through the routes and trunks) or a user.
    pub customer: String,
    pub speaker: Speaker,
    /// Presented as caller ID; a number whose target is a trunk also picks
    /// that trunk for the call.
    pub from_number: Option<String>,
    /// Values for the persona's instruction variables.
    pub variables: Vec<(String, String)>,
}

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

    /// Places a call (see [`OriginateRequest`]); answers once it is being
    /// dialled, with its snapshot (the call's id), or says why it cannot be
    /// placed.
    pub async fn originate(
        &self,
        req: OriginateRequest,
        scope: Scope<'_>,
    ) -> Result<CallSnapshot, CommandError> {
        let out = self.resolve(req, scope).await?;
        let handle = crate::call::start_outbound(self.ctx.clone(), out).await?;
        Ok(handle.snapshot())
    }

    async fn resolve(
        &self,
        req: OriginateRequest,
        scope: Scope<'_>,
    ) -> Result<Outbound, CommandError> {
        let store = &self.ctx.store;
        let db = |e: dialtone_store::StoreError| CommandError::Invalid(format!("database: {e}"));
        let mine = |account: &str| match scope {
            Scope::Operator => true,
            Scope::Account(a) => a == account,
        };
        let (talker, account_id) = match &req.speaker {
            Speaker::Persona(p) => {
                let row = match store.personas().get(p).await.map_err(db)? {
                    Some(r) => Some(r),
                    None => store.personas().get_by_id(p).await.map_err(db)?,
                };
                let persona = row
                    .filter(|r| mine(&r.account_id))
                    .ok_or_else(|| CommandError::Invalid(format!("no assistant {p:?}")))?;
                let account = persona.account_id.clone();
                let talker = Talker::Persona {
                    persona: Box::new(persona),
                    variables: req.variables.clone(),
                };
                (talker, account)
            }
            Speaker::User(u) => {
                let user = store
                    .users()
                    .get_cached(u)
                    .await
                    .map_err(db)?
                    .filter(|r| mine(&r.account_id))
                    .ok_or_else(|| CommandError::Invalid(format!("no user {u:?}")))?;
                (Talker::User(user.username), user.account_id)
            }
        };
        let who = match scope {
            Scope::Operator => Caller::Operator,
            Scope::Account(a) => Caller::Account(a.to_string()),
        };
        let dest = Destination::parse(&req.customer)?;
        let customer = match (&dest, &req.from_number) {
            (Destination::Dial(n), Some(from)) => {
                let number = store
                    .numbers()
                    .lookup_cached(from)
                    .await
                    .map_err(db)?
                    .ok_or_else(|| CommandError::Invalid(format!("no phone number {from:?}")))?;
                match number.target_kind.as_str() {
                    // The number's trunk carries the call.
                    "trunk" => {
                        let trunk = store
                            .trunks()
                            .get_cached(&number.target)
                            .await
                            .map_err(db)?
                            .ok_or_else(|| {
                                CommandError::Invalid(format!("no trunk {}", number.target))
                            })?;
                        Target::Trunk {
                            trunk,
                            number: n.clone(),
                        }
                    }
                    _ => self.route(&who, n).await?,
                }
            }
            (Destination::Dial(n), None) => self.route(&who, n).await?,
            (Destination::User(u), _) => Target::User(u.clone()),
            _ => {
                return Err(CommandError::Invalid(format!(
                    "a call can go to a number or a user, not {dest}"
                )))
            }
        };
        if let Target::Persona(_) | Target::Queue(_) = customer {
            return Err(CommandError::Invalid(format!(
                "{} is not a phone or a person to call",
                req.customer
            )));
        }
        Ok(Outbound {
            customer,
            customer_label: dest.to_string(),
            talker,
            from_number: req.from_number,
            account_id: Some(account_id),
            who,
        })
    }

    async fn route(&self, who: &Caller, number: &str) -> Result<Target, CommandError> {
        match router::route(&self.ctx.store, who, number).await {
            Ok(r) => Ok(r.target),
            Err(router::RouteError::NotFound(_)) => Err(CommandError::Invalid(format!(
                "no route to {number:?}: no user, number or outbound route matches"
            ))),
            Err(e) => Err(CommandError::Invalid(format!("routing failed: {e}"))),
        }
    }

    /// The tools agents and MCP clients call.
    pub fn tools(&self) -> &Arc<ToolRegistry> {
        &self.ctx.tools
    }

    pub fn store(&self) -> &Store {
        &self.ctx.store
    }

    /// A call's record: the version still waiting to be written, else the
    /// database's (records are written behind the calls).
    pub async fn record(
        &self,
        id: &str,
    ) -> Result<Option<dialtone_store::CallRecord>, dialtone_store::StoreError> {
        if let Some(r) = self.ctx.records.latest(id) {
            return Ok(Some(r));
        }
        self.ctx.store.calls().get(id).await
    }

    /// What every call shares (the transaction layer, counters, config).
    pub fn context(&self) -> &Arc<CallContext> {
        &self.ctx
    }
}

//! Phone numbers and registrations: `list_phone_numbers`,
//! `get_phone_number` (by id or by the number itself) and
//! `list_registrations`. A number belongs to the account of what it rings
//! (its assistant, user or queue); a number that forwards to a trunk
//! belongs to no account and only the operator sees it. A registration
//! belongs to its user's account.

use std::collections::HashMap;

use dialtone_store::{Number, Store, TargetKind};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::assistants::NoArgs;
use super::views::{PhoneNumber, PhoneNumberList, Registration, RegistrationList};
use super::{args, db, operation, sees, time_text, to_json, Kind, ManageError, Operation};
use crate::control::CallControl;
use crate::tools::ToolContext;

pub(super) fn operations() -> Vec<Operation> {
    vec![
        operation::<NoArgs, PhoneNumberList>(
            "list_phone_numbers",
            "List the account's phone numbers and what each rings (an assistant, a user, a \
             queue). A number's id (or the number) is the phoneNumberId of create_call: the \
             caller ID the customer sees.",
            Kind::Read,
            |c, ctx, a| Box::pin(list(c, ctx, a)),
        ),
        operation::<PhoneNumberId, PhoneNumber>(
            "get_phone_number",
            "One phone number, by id or by the number itself.",
            Kind::Read,
            |c, ctx, a| Box::pin(get(c, ctx, a)),
        ),
        operation::<NoArgs, RegistrationList>(
            "list_registrations",
            "List the phones registered for the account's users: where each is reached and \
             until when.",
            Kind::Read,
            |c, ctx, a| Box::pin(registrations(c, ctx, a)),
        ),
    ]
}

/// Names one phone number.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PhoneNumberId {
    /// The number's id, or the number itself ("+15550100").
    pub phone_number_id: String,
}

/// Who owns what numbers ring: name -> (account id, persona id).
struct Owners {
    personas: HashMap<String, (String, String)>,
    users: HashMap<String, String>,
    queues: HashMap<String, String>,
}

impl Owners {
    async fn load(store: &Store) -> Result<Owners, ManageError> {
        let personas = store.personas().list().await.map_err(db)?;
        let users = store.users().list().await.map_err(db)?;
        let queues = store.queues().list().await.map_err(db)?;
        Ok(Owners {
            personas: personas
                .into_iter()
                .map(|p| (p.name, (p.account_id, p.id)))
                .collect(),
            users: users
                .into_iter()
                .map(|u| (u.username, u.account_id))
                .collect(),
            queues: queues.into_iter().map(|q| (q.name, q.account_id)).collect(),
        })
    }

    /// The number's account (None: a trunk's, or a dangling target).
    fn account(&self, n: &Number) -> Option<&str> {
        match n.target_kind {
            TargetKind::Persona => self.personas.get(&n.target).map(|(a, _)| a.as_str()),
            TargetKind::User => self.users.get(&n.target).map(String::as_str),
            TargetKind::Queue => self.queues.get(&n.target).map(String::as_str),
            TargetKind::Trunk => None,
        }
    }

    fn visible(&self, ctx: &ToolContext, n: &Number) -> bool {
        match self.account(n) {
            Some(a) => sees(ctx, a),
            None => ctx.account_id.is_none(),
        }
    }

    fn view(&self, n: Number) -> PhoneNumber {
        let account_id = self.account(&n).map(str::to_owned);
        let assistant_id = match n.target_kind {
            TargetKind::Persona => self.personas.get(&n.target).map(|(_, id)| id.clone()),
            _ => None,
        };
        let target_type = match n.target_kind {
            TargetKind::Persona => "assistant",
            other => other.as_str(),
        };
        PhoneNumber {
            id: n.id,
            phone_number: n.number,
            target_type: target_type.into(),
            target: n.target,
            assistant_id,
            account_id,
            recorded: n.record,
            created_at: time_text(n.created_at.saturating_mul(1000)),
        }
    }
}

/// The number `id` (its id or the number) if the context sees it.
pub(crate) async fn find(
    store: &Store,
    ctx: &ToolContext,
    id: &str,
) -> Result<PhoneNumber, ManageError> {
    let owners = Owners::load(store).await?;
    let all = store.numbers().list().await.map_err(db)?;
    let digits = |s: &str| -> String { s.chars().filter(char::is_ascii_digit).collect() };
    let wanted = digits(id);
    let found = all
        .iter()
        .find(|n| n.id == id)
        .or_else(|| all.iter().find(|n| n.number == id.trim()))
        .or_else(|| {
            // "+1 (555) 0100" names "+15550100" too.
            all.iter()
                .find(|n| !wanted.is_empty() && digits(&n.number) == wanted)
        });
    match found {
        Some(n) if owners.visible(ctx, n) => Ok(owners.view(n.clone())),
        _ => Err(ManageError::NotFound(format!(
            "no phone number {id:?} (list_phone_numbers gives the ids)"
        ))),
    }
}

async fn list(control: &CallControl, ctx: &ToolContext, a: Value) -> Result<Value, ManageError> {
    let NoArgs {} = args(a)?;
    let store = control.store();
    let owners = Owners::load(store).await?;
    let phone_numbers = store
        .numbers()
        .list()
        .await
        .map_err(db)?
        .into_iter()
        .filter(|n| owners.visible(ctx, n))
        .map(|n| owners.view(n))
        .collect();
    to_json(&PhoneNumberList { phone_numbers })
}

async fn get(control: &CallControl, ctx: &ToolContext, a: Value) -> Result<Value, ManageError> {
    let PhoneNumberId { phone_number_id } = args(a)?;
    to_json(&find(control.store(), ctx, &phone_number_id).await?)
}

async fn registrations(
    control: &CallControl,
    ctx: &ToolContext,
    a: Value,
) -> Result<Value, ManageError> {
    let NoArgs {} = args(a)?;
    let store = control.store();
    let accounts: HashMap<String, String> = store
        .users()
        .list()
        .await
        .map_err(db)?
        .into_iter()
        .map(|u| (u.username, u.account_id))
        .collect();
    let now = crate::registrar::unix_now();
    let registrations = store
        .registrations()
        .list_all(now)
        .await
        .map_err(db)?
        .into_iter()
        .filter(|b| match accounts.get(&b.aor) {
            Some(acc) => sees(ctx, acc),
            None => ctx.account_id.is_none(),
        })
        .map(|b| Registration {
            id: format!("{} {}", b.aor, b.contact),
            expires_at: time_text(b.expires_at.saturating_mul(1000)),
            expires_in_seconds: (b.expires_at - now).max(0),
            user: b.aor,
            contact: b.contact,
            source: b.source,
            user_agent: b.user_agent,
        })
        .collect();
    to_json(&RegistrationList { registrations })
}

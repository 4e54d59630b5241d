//! The ban list of this node: `list_bans` (the sources refused for
//! repeated digest failures, and how long each ban has left) and
//! `lift_ban` (fail2ban's `unbanip`: a phone whose user mistyped a
//! password is let in again at once). The operator's alone: an account's
//! key is refused, since a ban concerns everyone on the node.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::assistants::NoArgs;
use super::{args, operation, to_json, Kind, ManageError, Operation};
use crate::control::CallControl;
use crate::tools::ToolContext;

pub(super) fn operations() -> Vec<Operation> {
    vec![
        operation::<NoArgs, BanList>(
            "list_bans",
            "List the source addresses this node refuses for repeated failed \
             authentication, with the seconds each ban has left (operator only).",
            Kind::Read,
            |c, ctx, a| Box::pin(list(c, ctx, a)),
        ),
        operation::<BanAddress, LiftedBan>(
            "lift_ban",
            "Lift the ban of a source address on this node at once, and forget \
             its failed attempts (operator only).",
            Kind::Delete,
            |c, ctx, a| Box::pin(lift(c, ctx, a)),
        ),
    ]
}

/// One banned source.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Ban {
    /// The source's IP address.
    pub address: String,
    /// Seconds until the ban expires on its own.
    pub seconds_left: u64,
}

/// The sources banned now, the longest ban first.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BanList {
    pub bans: Vec<Ban>,
}

/// Names a banned source.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BanAddress {
    /// The IP address, v4 or v6 ("203.0.113.7", "2001:db8::7").
    pub address: String,
}

/// A lifted ban.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct LiftedBan {
    pub address: String,
    pub lifted: bool,
}

fn operator_only(ctx: &ToolContext) -> Result<(), ManageError> {
    match ctx.account_id {
        None => Ok(()),
        Some(_) => Err(ManageError::Forbidden(
            "bans concern every account on the node: only the operator sees and lifts them".into(),
        )),
    }
}

async fn list(control: &CallControl, ctx: &ToolContext, a: Value) -> Result<Value, ManageError> {
    operator_only(ctx)?;
    let NoArgs {} = args(a)?;
    let bans = control
        .context()
        .bans
        .list()
        .into_iter()
        .map(|(ip, left)| Ban {
            address: ip.to_string(),
            seconds_left: left.as_secs_f64().ceil() as u64,
        })
        .collect();
    to_json(&BanList { bans })
}

async fn lift(control: &CallControl, ctx: &ToolContext, a: Value) -> Result<Value, ManageError> {
    operator_only(ctx)?;
    let BanAddress { address } = args(a)?;
    let ip: IpAddr = address
        .trim()
        .parse()
        .map_err(|_| ManageError::Invalid(format!("{address:?} is not an IP address")))?;
    if !control.context().bans.lift(ip) {
        return Err(ManageError::NotFound(format!(
            "{ip} is not banned (list_bans gives the banned sources)"
        )));
    }
    to_json(&LiftedBan {
        address: ip.to_string(),
        lifted: true,
    })
}

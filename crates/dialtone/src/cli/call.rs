//! `call create`, `call cancel` and `call list-scheduled`: calls for the
//! running switch to place. `call create` stores a scheduled call — due now
//! or at `--at` — which the switch's scheduler fires within a second of its
//! time (the CLI does not need the switch to be reachable, only the
//! database). The request is checked exactly as the `create_call` tool
//! checks it (the same function), with the operator's authority.

use anyhow::{bail, Result};
use clap::Subcommand;
use dialtone_store::{ScheduledStatus, Store};
use dialtone_switch::tools::manage::{schedule_call, CreateCall, Customer, ManageError, Overrides};
use dialtone_switch::tools::ToolContext;
use serde_json::Value;

#[derive(Subcommand)]
pub enum CallCommand {
    /// Schedule a call: a persona calls the number (or a user's phone rings
    /// first), now or at --at. Prints the scheduled call's id.
    Create {
        /// The number shown as caller ID (one of `dialtone number list`).
        #[arg(long, value_name = "NUMBER")]
        from_number: String,
        /// The number to call.
        #[arg(long, value_name = "NUMBER")]
        to: String,
        /// The persona that talks to the callee.
        #[arg(long, conflicts_with = "user", required_unless_present = "user")]
        persona: Option<String>,
        /// Or: the user whose phone rings first (click-to-dial).
        #[arg(long)]
        user: Option<String>,
        /// When, as an RFC 3339 time (e.g. 2030-01-31T09:30:00Z); default now.
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// A value for a {name} variable of the persona's instructions; repeatable.
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
    },
    /// Cancel a scheduled call that has not been placed yet.
    Cancel { id: String },
    /// The scheduled calls, soonest first: id, status, time, who calls,
    /// number, caller ID, then the call's id or the error.
    #[command(name = "list-scheduled", alias = "scheduled")]
    ListScheduled {
        /// Only these: pending, fired, cancelled or failed.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// One JSON array, for scripts.
        #[arg(long)]
        json: bool,
    },
}

/// The operator's context: every account's personas, users and numbers.
fn operator() -> ToolContext {
    ToolContext::default()
}

fn refused(e: ManageError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

pub async fn call(store: &Store, cmd: CallCommand) -> Result<()> {
    match cmd {
        CallCommand::Create {
            from_number,
            to,
            persona,
            user,
            at,
            vars,
        } => {
            let mut values = serde_json::Map::new();
            for v in vars {
                let Some((k, val)) = v.split_once('=') else {
                    bail!("--var {v:?}: expected NAME=VALUE");
                };
                values.insert(k.trim().to_owned(), Value::from(val));
            }
            let due = match &at {
                Some(t) => t
                    .trim()
                    .parse::<jiff::Timestamp>()
                    .map_err(|e| anyhow::anyhow!("--at {t:?} is not an RFC 3339 time ({e})"))?
                    .as_millisecond(),
                None => dialtone_store::unix_now_ms(),
            };
            let req = CreateCall {
                assistant_id: persona,
                user_id: user,
                phone_number_id: Some(from_number),
                customer: Customer {
                    number: to,
                    name: None,
                },
                scheduled_at: at,
                assistant_overrides: Some(Overrides {
                    variable_values: Some(values.into_iter().collect()),
                }),
            };
            let c = schedule_call(store, &operator(), &req, due)
                .await
                .map_err(refused)?;
            println!(
                "scheduled call {} to {} at {}",
                c.id, c.customer.number, c.scheduled_at
            );
        }
        CallCommand::Cancel { id } => {
            let c = store
                .scheduled_calls()
                .cancel(&id, None)
                .await
                .map_err(|e| anyhow::anyhow!("cannot cancel {id}: {e}"))?;
            println!("scheduled call {} cancelled", c.id);
        }
        CallCommand::ListScheduled {
            status,
            limit,
            json,
        } => {
            let status = status.map(|s| s.parse::<ScheduledStatus>()).transpose()?;
            let rows = store.scheduled_calls().list(None, status, limit).await?;
            let views: Vec<_> = rows
                .into_iter()
                .map(dialtone_switch::tools::manage::scheduled_view)
                .collect();
            if json {
                println!("{}", serde_json::to_string(&views)?);
                return Ok(());
            }
            for c in views {
                let who = c
                    .assistant_id
                    .map(|p| format!("persona:{p}"))
                    .or(c.user_id.map(|u| format!("user:{u}")))
                    .unwrap_or_default();
                let result = c.call_id.or(c.error).unwrap_or_else(|| "-".into());
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    c.id,
                    c.status,
                    c.scheduled_at,
                    who,
                    c.customer.number,
                    c.phone_number.unwrap_or_else(|| "-".into()),
                    result
                );
            }
        }
    }
    Ok(())
}

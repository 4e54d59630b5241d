//! `queue` subcommands: call queues numbers (`number add N --to
//! queue:NAME`) and transfers ring — add, list, show, remove, and replace
//! the members. The CLI checks the name, the timeout and the fallback (its
//! user or persona must exist); the store checks the members are users and
//! refuses to remove a queue something still routes to.

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use dialtone_store::{NewQueue, Queue, QueueStrategy, Store, StoreError, TargetKind};
use serde_json::json;

use super::valid_username;

const STRATEGIES: [&str; 3] = ["ring-all", "round-robin", "longest-idle"];
const MAX_TIMEOUT_SECS: u32 = 600;

#[derive(Subcommand)]
pub enum QueueCommand {
    /// Add a queue of users that a number or a transfer can ring.
    Add {
        /// Unique name; numbers route to queue:NAME.
        name: String,
        /// The users to ring, in order (comma-separated usernames).
        #[arg(long, value_delimiter = ',', required = true, value_name = "USER,USER")]
        members: Vec<String>,
        /// How members are rung: all at once, in turn, or the longest idle first.
        #[arg(long, value_parser = STRATEGIES)]
        strategy: String,
        /// Seconds the members ring before the fallback.
        #[arg(long, default_value_t = 30, value_name = "SECS")]
        timeout: u32,
        /// Where the call goes when nobody answers (default: hang up).
        #[arg(long, value_name = "user:NAME|number:N|persona:NAME")]
        fallback: Option<String>,
        /// The account (created when missing).
        #[arg(long, default_value = "default")]
        account: String,
    },
    /// One queue per line: name, strategy, timeout, members, fallback, account.
    List,
    /// A queue's settings, members (with their last queue call) and the numbers routed to it.
    Show {
        name: String,
        /// One JSON object, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Remove a queue (refused while a number, persona or tool refers to it).
    Remove { name: String },
    /// Replace a queue's members.
    Members {
        name: String,
        /// The users, in order (comma-separated usernames).
        #[arg(value_delimiter = ',', required = true, value_name = "USER,USER")]
        members: Vec<String>,
    },
}

pub async fn queue(store: &Store, cmd: QueueCommand) -> Result<()> {
    match cmd {
        QueueCommand::Add {
            name,
            members,
            strategy,
            timeout,
            fallback,
            account,
        } => {
            if !valid_username(&name) {
                bail!("invalid queue name {name:?}: use 1 to 64 letters, digits and -_.!~*'()+");
            }
            let members = check_members(members)?;
            if !(1..=MAX_TIMEOUT_SECS).contains(&timeout) {
                bail!("--timeout {timeout}: give 1 to {MAX_TIMEOUT_SECS} seconds");
            }
            if let Some(f) = &fallback {
                check_fallback(store, f).await?;
            }
            let strategy: QueueStrategy = strategy.parse()?;
            if account.trim().is_empty() {
                bail!("--account must not be empty");
            }
            let account = store.accounts().ensure(&account).await?;
            let q = store
                .queues()
                .create(NewQueue {
                    account_id: account.id,
                    name: name.clone(),
                    strategy,
                    timeout_secs: timeout,
                    fallback,
                    members,
                })
                .await
                .map_err(|e| members_error(e, &name))?;
            println!(
                "queue {} added ({}, {} member(s), {} s)",
                q.name,
                q.strategy,
                q.members.len(),
                q.timeout_secs
            );
        }
        QueueCommand::List => {
            let accounts = store.accounts().list().await?;
            for q in store.queues().list().await? {
                let account = accounts
                    .iter()
                    .find(|a| a.id == q.account_id)
                    .map_or(q.account_id.as_str(), |a| a.name.as_str());
                println!(
                    "{}\t{}\t{}s\t{}\t{}\t{account}",
                    q.name,
                    q.strategy,
                    q.timeout_secs,
                    member_names(&q).join(","),
                    q.fallback.as_deref().unwrap_or("-"),
                );
            }
        }
        QueueCommand::Show { name, json } => {
            let Some(q) = store.queues().get(&name).await? else {
                bail!("no queue {name} (see `dialtone queue list`)");
            };
            let numbers: Vec<String> = store
                .numbers()
                .list()
                .await?
                .into_iter()
                .filter(|n| n.target_kind == TargetKind::Queue && n.target == q.name)
                .map(|n| n.number)
                .collect();
            let account = store
                .accounts()
                .get(&q.account_id)
                .await?
                .map_or_else(|| q.account_id.clone(), |a| a.name);
            if json {
                println!("{}", json_of(&q, &account, &numbers));
            } else {
                print!("{}", show_text(&q, &account, &numbers));
            }
        }
        QueueCommand::Remove { name } => match store.queues().remove(&name).await {
            Ok(true) => println!("queue {name} removed"),
            Ok(false) => bail!("no queue {name}"),
            Err(e @ StoreError::InUse { .. }) => {
                bail!("cannot remove queue {name}: {e}; remove or repoint those first")
            }
            Err(e) => return Err(e).with_context(|| format!("removing queue {name}")),
        },
        QueueCommand::Members { name, members } => {
            let members = check_members(members)?;
            let q = store
                .queues()
                .set_members(&name, &members)
                .await
                .map_err(|e| members_error(e, &name))?;
            println!("queue {}: members {}", q.name, member_names(&q).join(","));
        }
    }
    Ok(())
}

fn check_members(members: Vec<String>) -> Result<Vec<String>> {
    let members: Vec<String> = members
        .into_iter()
        .map(|m| m.trim().to_owned())
        .filter(|m| !m.is_empty())
        .collect();
    if members.is_empty() {
        bail!("--members: give at least one user");
    }
    for (i, m) in members.iter().enumerate() {
        if members[..i].contains(m) {
            bail!("--members: {m} is given twice");
        }
    }
    Ok(members)
}

/// The fallback's form, and that its user or persona exists.
async fn check_fallback(store: &Store, fallback: &str) -> Result<()> {
    let usage = "expected user:NAME, number:N or persona:NAME";
    let Some((kind, target)) = fallback.split_once(':') else {
        bail!("--fallback {fallback:?}: {usage}");
    };
    if target.is_empty() {
        bail!("--fallback {fallback:?}: the name is empty");
    }
    let exists = match kind {
        "user" => store.users().get(target).await?.is_some(),
        "persona" => store.personas().get(target).await?.is_some(),
        "number" => {
            let digits = target.strip_prefix('+').unwrap_or(target);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                bail!("--fallback {fallback:?}: a number is digits, with an optional leading +");
            }
            true
        }
        _ => bail!("--fallback {fallback:?}: {usage}"),
    };
    if !exists {
        bail!("--fallback {fallback:?}: no such {kind}");
    }
    Ok(())
}

fn members_error(e: StoreError, queue: &str) -> anyhow::Error {
    match e {
        StoreError::NotFound { what } if what.starts_with("user") => {
            anyhow::anyhow!("--members: no such {what} (add them first with `dialtone user add`)")
        }
        StoreError::NotFound { what } if what.starts_with("queue") => {
            anyhow::anyhow!("no queue {queue} (see `dialtone queue list`)")
        }
        StoreError::Conflict { .. } => anyhow::anyhow!("queue {queue} already exists"),
        other => anyhow::Error::from(other).context(format!("queue {queue}")),
    }
}

fn member_names(q: &Queue) -> Vec<&str> {
    q.members.iter().map(|m| m.username.as_str()).collect()
}

fn time_of(unix_secs: i64) -> String {
    jiff::Timestamp::from_second(unix_secs)
        .map_or_else(|_| unix_secs.to_string(), |t| t.to_string())
}

fn show_text(q: &Queue, account: &str, numbers: &[String]) -> String {
    let mut out = String::new();
    let mut row = |label: &str, value: String| {
        out.push_str(&format!("{:<12}{value}\n", format!("{label}:")));
    };
    row("name", q.name.clone());
    row("id", q.id.clone());
    row("account", account.to_owned());
    row("strategy", q.strategy.to_string());
    row("timeout", format!("{} s", q.timeout_secs));
    row(
        "fallback",
        q.fallback
            .clone()
            .unwrap_or_else(|| "none (hang up)".to_owned()),
    );
    row(
        "numbers",
        if numbers.is_empty() {
            "none".to_owned()
        } else {
            numbers.join(", ")
        },
    );
    row("created", time_of(q.created_at));
    out.push_str("members:\n");
    for m in &q.members {
        let last = m
            .last_call_ended_at
            .map_or_else(|| "never".to_owned(), time_of);
        out.push_str(&format!(
            "    {}\tlast queue call ended: {last}\n",
            m.username
        ));
    }
    out
}

pub(crate) fn json_of(q: &Queue, account: &str, numbers: &[String]) -> serde_json::Value {
    json!({
        "id": q.id, "name": q.name, "account": account, "account_id": q.account_id,
        "strategy": q.strategy.as_str(), "timeout_secs": q.timeout_secs,
        "fallback": q.fallback,
        "members": q.members.iter().map(|m| json!({
            "username": m.username, "last_call_ended_at": m.last_call_ended_at,
        })).collect::<Vec<_>>(),
        "numbers": numbers, "created_at": q.created_at,
    })
}

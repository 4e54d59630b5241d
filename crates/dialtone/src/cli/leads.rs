//! `leads` subcommands: the callers the agents recorded as leads (one per
//! account and number) and their cases, listed or shown one by one, as text
//! or JSON. Leads are created by the `create_lead` tool during calls, not here.

use anyhow::{bail, Result};
use clap::Subcommand;
use dialtone_store::{Account, Lead, LeadCase, Store};
use serde_json::{json, Value};

use super::apikeys::time_of;

#[derive(Subcommand)]
pub enum LeadsCommand {
    /// Most recently updated first, one per line: id, phone, name, cases, last updated.
    List {
        /// One JSON array, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// One lead and all its cases, oldest first.
    Show {
        id: String,
        /// One JSON object, for scripts.
        #[arg(long)]
        json: bool,
    },
}

fn account_name(accounts: &[Account], id: &str) -> String {
    accounts
        .iter()
        .find(|a| a.id == id)
        .map_or_else(|| id.to_owned(), |a| a.name.clone())
}

fn or_dash(v: &str) -> &str {
    if v.trim().is_empty() {
        "-"
    } else {
        v
    }
}

pub(crate) fn lead_json(l: &Lead, account: &str, cases: Value) -> Value {
    json!({
        "id": l.id, "account": account, "account_id": l.account_id,
        "phone_number": l.phone_number, "name": l.name,
        "created_at": l.created_at, "updated_at": l.updated_at, "cases": cases,
    })
}

pub(crate) fn case_json(c: &LeadCase) -> Value {
    json!({
        "id": c.id, "intent": c.intent, "classification": c.classification,
        "summary": c.summary, "notes": c.notes, "call_id": c.call_id,
        "persona": c.persona, "created_at": c.created_at,
    })
}

pub async fn leads(store: &Store, cmd: LeadsCommand) -> Result<()> {
    match cmd {
        LeadsCommand::List { json } => {
            let accounts = store.accounts().list().await?;
            let counts = store.leads().case_counts().await?;
            let all = store.leads().list().await?;
            if json {
                let rows: Vec<Value> = all
                    .iter()
                    .map(|l| {
                        let n = counts.get(&l.id).copied().unwrap_or(0);
                        lead_json(l, &account_name(&accounts, &l.account_id), json!(n))
                    })
                    .collect();
                println!("{}", Value::Array(rows));
                return Ok(());
            }
            for l in &all {
                let n = counts.get(&l.id).copied().unwrap_or(0);
                println!(
                    "{}\t{}\t{}\t{} case{}\t{}",
                    l.id,
                    l.phone_number,
                    or_dash(&l.name),
                    n,
                    if n == 1 { "" } else { "s" },
                    time_of(l.updated_at)
                );
            }
        }
        LeadsCommand::Show { id, json } => {
            let Some((lead, cases)) = store.leads().get(&id).await? else {
                bail!("no lead {id} (see `dialtone leads list` for the ids)");
            };
            let accounts = store.accounts().list().await?;
            let account = account_name(&accounts, &lead.account_id);
            if json {
                let cases: Vec<Value> = cases.iter().map(case_json).collect();
                println!("{}", lead_json(&lead, &account, Value::Array(cases)));
            } else {
                print!("{}", show_text(&lead, &account, &cases));
            }
        }
    }
    Ok(())
}

fn show_text(l: &Lead, account: &str, cases: &[LeadCase]) -> String {
    let mut out = String::new();
    for (label, value) in [
        ("id", l.id.clone()),
        ("phone", l.phone_number.clone()),
        ("name", or_dash(&l.name).to_owned()),
        ("account", account.to_owned()),
        ("created", time_of(l.created_at)),
        ("updated", time_of(l.updated_at)),
        ("cases", cases.len().to_string()),
    ] {
        out.push_str(&format!("{label:<16}{value}\n"));
    }
    let dash = |v: &Option<String>| v.as_deref().map_or("-", or_dash).to_owned();
    for (n, c) in cases.iter().enumerate() {
        out.push_str(&format!("\ncase {} ({})\n", n + 1, c.id));
        for (label, value) in [
            ("  time", time_of(c.created_at)),
            ("  intent", c.intent.clone()),
            ("  classification", c.classification.clone()),
            ("  summary", dash(&c.summary)),
            ("  notes", dash(&c.notes)),
            ("  call", dash(&c.call_id)),
            ("  persona", dash(&c.persona)),
        ] {
            // Multi-line notes stay readable: continuation lines are indented.
            let value = value.replace('\n', &format!("\n{:18}", ""));
            out.push_str(&format!("{label:<18}{value}\n"));
        }
    }
    out
}

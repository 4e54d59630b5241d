//! `apikey` subcommands: create an account's API key (printed once, alone on
//! the last line, for scripts), list keys (only their prefixes), revoke one.
//! The store keeps only a hash of each key.

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use dialtone_store::{Account, ApiKey, Store};

#[derive(Subcommand)]
pub enum ApiKeyCommand {
    /// Create a key for an account (created when missing); the key is printed
    /// once, as the last line.
    Create {
        /// The account the key acts for.
        #[arg(long)]
        account: String,
        /// A label to tell keys apart, e.g. "claude desktop".
        #[arg(long)]
        name: Option<String>,
    },
    /// One key per line: id, prefix, label, account, created, last used, revoked.
    List,
    /// Revoke a key: it stops working at once (it stays listed).
    Revoke { id: String },
}

/// RFC 3339 in UTC, e.g. 2026-12-04T05:55:16Z.
pub(super) fn time_of(unix_secs: i64) -> String {
    jiff::Timestamp::from_second(unix_secs)
        .map_or_else(|_| unix_secs.to_string(), |t| t.to_string())
}

fn account_name<'a>(accounts: &'a [Account], id: &'a str) -> &'a str {
    accounts
        .iter()
        .find(|a| a.id == id)
        .map_or(id, |a| a.name.as_str())
}

fn line(k: &ApiKey, accounts: &[Account]) -> String {
    format!(
        "{}\t{}…\t{}\t{}\t{}\t{}\t{}",
        k.id,
        k.prefix,
        k.name.as_deref().filter(|n| !n.is_empty()).unwrap_or("-"),
        account_name(accounts, &k.account_id),
        time_of(k.created_at),
        k.last_used_at.map_or_else(|| "never".to_owned(), time_of),
        k.revoked_at.map_or_else(|| "-".to_owned(), time_of),
    )
}

pub async fn apikey(store: &Store, cmd: ApiKeyCommand) -> Result<()> {
    match cmd {
        ApiKeyCommand::Create { account, name } => {
            if account.trim().is_empty() {
                bail!("--account must name an account, e.g. --account default");
            }
            let name = name.filter(|n| !n.trim().is_empty());
            let acc = store.accounts().ensure(&account).await?;
            let (key, plain) = store
                .api_keys()
                .create(&acc.id, name.as_deref())
                .await
                .with_context(|| format!("creating an API key for account {account}"))?;
            println!(
                "API key {} created for account {account}; it is shown only this once \
                 (store it now; revoke with `dialtone apikey revoke {}`):",
                key.id, key.id
            );
            println!("{plain}");
        }
        ApiKeyCommand::List => {
            let accounts = store.accounts().list().await?;
            for k in store.api_keys().list().await? {
                println!("{}", line(&k, &accounts));
            }
        }
        ApiKeyCommand::Revoke { id } => {
            let Some(key) = store.api_keys().get(&id).await? else {
                bail!("no API key {id} (see `dialtone apikey list` for the ids)");
            };
            if let Some(at) = key.revoked_at {
                bail!("API key {id} was already revoked at {}", time_of(at));
            }
            if !store.api_keys().revoke(&id).await? {
                bail!("API key {id} was revoked meanwhile");
            }
            println!("API key {id} ({}…) revoked", key.prefix);
        }
    }
    Ok(())
}

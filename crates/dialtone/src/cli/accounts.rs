//! `account` subcommands: the settings of an account (tenant) — the region
//! its contacts' national numbers are read in, and its HTTP contact source —
//! and the list of accounts. The store checks both values.

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use dialtone_store::{check_contact_url, phone, Account, Store, StoreError};

#[derive(Subcommand)]
pub enum AccountCommand {
    /// Change an account's settings; the account is created when missing.
    Set {
        name: String,
        /// The ISO region national numbers are read in (US, GB, DE, …).
        #[arg(long)]
        region: Option<String>,
        /// An HTTP/JSON contact source asked when the address book has no
        /// match: a URL template with {phone_number} (the caller's E.164 number).
        #[arg(long, value_name = "URL", conflicts_with = "clear_contact_url")]
        contact_url: Option<String>,
        /// Remove the HTTP contact source.
        #[arg(long)]
        clear_contact_url: bool,
        /// Call limits of the account's users, personas and API keys together.
        #[command(flatten)]
        limits: super::limits::LimitArgs,
    },
    /// One account per line: name, region, contact URL (or -), id.
    List,
}

pub async fn account(store: &Store, cmd: AccountCommand) -> Result<()> {
    match cmd {
        AccountCommand::Set {
            name,
            region,
            contact_url,
            clear_contact_url,
            limits,
        } => {
            if name.trim().is_empty() {
                bail!("the account name must not be empty");
            }
            // Checked before the account is created, so a refused value leaves nothing behind.
            if let Some(region) = &region {
                if !phone::is_known_region(region) {
                    let known: Vec<&str> = phone::regions().collect();
                    bail!(
                        "--region {region:?}: unknown region (expected one of {})",
                        known.join(", ")
                    );
                }
            }
            if let Some(url) = &contact_url {
                check_contact_url(url)
                    .map_err(|reason| anyhow::anyhow!("--contact-url: {reason}"))?;
            }
            let mut account = store
                .accounts()
                .ensure(&name)
                .await
                .with_context(|| format!("account {name}"))?;
            if let Some(region) = region {
                account = store
                    .accounts()
                    .set_region(&name, &region)
                    .await
                    .map_err(|e| explain(e, "--region"))?;
            }
            if contact_url.is_some() || clear_contact_url {
                account = store
                    .accounts()
                    .set_contact_url(&name, contact_url.as_deref())
                    .await
                    .map_err(|e| explain(e, "--contact-url"))?;
            }
            if limits.given() {
                account = store
                    .accounts()
                    .set_limits(&name, limits.apply(account.limits))
                    .await?;
            }
            println!("{}", describe(&account));
        }
        AccountCommand::List => {
            for a in store.accounts().list().await? {
                println!(
                    "{}\t{}\t{}\t{}",
                    a.name,
                    a.region,
                    a.contact_url.as_deref().unwrap_or("-"),
                    a.id
                );
            }
        }
    }
    Ok(())
}

fn describe(a: &Account) -> String {
    let limits = if a.limits.is_unlimited() {
        String::new()
    } else {
        format!(", {}", a.limits.describe())
    };
    match &a.contact_url {
        Some(url) => format!(
            "account {}: region {}, contact URL {url}{limits}",
            a.name, a.region
        ),
        None => format!(
            "account {}: region {}, no contact URL{limits}",
            a.name, a.region
        ),
    }
}

/// A refused value reads as the option's error; anything else as is.
fn explain(e: StoreError, option: &str) -> anyhow::Error {
    match e {
        StoreError::Invalid { reason } => anyhow::anyhow!("{option}: {reason}"),
        other => other.into(),
    }
}

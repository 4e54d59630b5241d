//! `contact` subcommands: an account's address book — add one contact,
//! import a CSV or vCard file, list, remove. Numbers are kept as written and
//! normalised to E.164 in the account's region (`account set --region`),
//! which is what a caller's number is looked up by.

mod import;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use dialtone_store::{phone, Account, Contact, NewContact, Store};
use serde_json::json;

use import::{looks_like_vcard, parse_csv, parse_vcard, Record};

#[derive(Subcommand)]
pub enum ContactCommand {
    /// Add a contact to an account's address book.
    Add {
        name: String,
        /// A phone number, in any common format; repeatable.
        #[arg(long = "number", value_name = "N", required = true)]
        numbers: Vec<String>,
        #[arg(long)]
        company: Option<String>,
        #[arg(long)]
        email: Option<String>,
        /// The account (created when missing).
        #[arg(long, default_value = "default")]
        account: String,
    },
    /// Import contacts from a CSV file (header: name, number|phone|numbers,
    /// company, email) or a vCard file (.vcf); reports the rows it skipped.
    Import {
        file: PathBuf,
        /// The account (created when missing).
        #[arg(long, default_value = "default")]
        account: String,
    },
    /// One contact per line: id, name, numbers, company, email, account.
    List {
        /// Only this account's contacts.
        #[arg(long)]
        account: Option<String>,
        /// A JSON array, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Remove a contact by id.
    Remove { id: String },
}

pub async fn contact(store: &Store, cmd: ContactCommand) -> Result<()> {
    match cmd {
        ContactCommand::Add {
            name,
            numbers,
            company,
            email,
            account,
        } => add(store, name, numbers, company, email, &account).await,
        ContactCommand::Import { file, account } => import_file(store, &file, &account).await,
        ContactCommand::List { account, json } => list(store, account.as_deref(), json).await,
        ContactCommand::Remove { id } => {
            if !store.contacts().remove(&id).await? {
                bail!("no contact {id} (see `dialtone contact list`)");
            }
            println!("contact {id} removed");
            Ok(())
        }
    }
}

async fn ensure_account(store: &Store, name: &str) -> Result<Account> {
    if name.trim().is_empty() {
        bail!("--account must not be empty");
    }
    store
        .accounts()
        .ensure(name)
        .await
        .with_context(|| format!("account {name}"))
}

/// Why the contact cannot be stored (checked for `add` and each imported row).
fn check(contact: &NewContact, region: &str) -> Result<(), String> {
    if contact.name.trim().is_empty() {
        return Err("no name".into());
    }
    if contact.numbers.is_empty() {
        return Err("no phone number".into());
    }
    if let Some(bad) = contact
        .numbers
        .iter()
        .find(|n| phone::normalize(n, region).is_none())
    {
        return Err(format!(
            "{bad:?} is not a phone number (read in region {region})"
        ));
    }
    if let Some(email) = &contact.email {
        if !email.contains('@') || email.chars().any(char::is_whitespace) {
            return Err(format!("{email:?} is not an email address"));
        }
    }
    Ok(())
}

async fn add(
    store: &Store,
    name: String,
    numbers: Vec<String>,
    company: Option<String>,
    email: Option<String>,
    account: &str,
) -> Result<()> {
    let account = ensure_account(store, account).await?;
    let new = NewContact {
        name: name.trim().to_owned(),
        numbers: numbers.iter().map(|n| n.trim().to_owned()).collect(),
        company: company.filter(|c| !c.trim().is_empty()),
        email: email.filter(|e| !e.trim().is_empty()),
    };
    check(&new, &account.region).map_err(|reason| anyhow::anyhow!("contact add: {reason}"))?;
    let c = store
        .contacts()
        .create(
            &account.id,
            &new.name,
            &new.numbers,
            new.company.as_deref(),
            new.email.as_deref(),
            &account.region,
        )
        .await
        .with_context(|| format!("adding contact {}", new.name))?;
    println!("contact {} added ({}): {}", c.name, c.id, numbers_text(&c));
    Ok(())
}

async fn import_file(store: &Store, file: &Path, account: &str) -> Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let extension = file
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let records = match extension.as_deref() {
        Some("vcf" | "vcard") => parse_vcard(&text),
        Some("csv") => parse_csv(&text).with_context(|| format!("{}", file.display()))?,
        _ if looks_like_vcard(&text) => parse_vcard(&text),
        _ => parse_csv(&text).with_context(|| format!("{}", file.display()))?,
    };
    let account = ensure_account(store, account).await?;
    // The same name and numbers as a contact already there (or earlier in
    // the file) is a duplicate, so importing a file twice adds nothing.
    let mut seen: HashSet<(String, Vec<String>)> = store
        .contacts()
        .list(Some(&account.id))
        .await?
        .iter()
        .map(|c| {
            let numbers = c.numbers.iter().filter_map(|n| n.e164.clone()).collect();
            key(&c.name, numbers)
        })
        .collect();
    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    for Record { label, contact } in records {
        if let Err(reason) = check(&contact, &account.region) {
            skipped.push(format!("{label}: {reason}"));
            continue;
        }
        let numbers = contact
            .numbers
            .iter()
            .filter_map(|n| phone::normalize(n, &account.region))
            .collect();
        if !seen.insert(key(&contact.name, numbers)) {
            skipped.push(format!(
                "{label}: {:?} with these numbers is in the address book already",
                contact.name
            ));
            continue;
        }
        rows.push(contact);
    }
    let imported = store
        .contacts()
        .import(&account.id, rows, &account.region)
        .await
        .context("importing contacts")?;
    println!(
        "imported {imported} contact(s) into account {} (region {})",
        account.name, account.region
    );
    if !skipped.is_empty() {
        println!("skipped {}:", skipped.len());
        for line in skipped {
            println!("  {line}");
        }
    }
    Ok(())
}

fn key(name: &str, mut numbers: Vec<String>) -> (String, Vec<String>) {
    numbers.sort();
    (name.trim().to_owned(), numbers)
}

/// Each number as E.164 when it has one, else as written.
fn numbers_text(c: &Contact) -> String {
    c.numbers
        .iter()
        .map(|n| n.e164.clone().unwrap_or_else(|| n.number.clone()))
        .collect::<Vec<_>>()
        .join(",")
}

/// A contact as JSON (the CLI's `--json` and the REST API).
pub(crate) fn contact_json(c: &dialtone_store::Contact, account: &str) -> serde_json::Value {
    json!({
        "id": c.id, "name": c.name, "account": account,
        "account_id": c.account_id, "company": c.company, "email": c.email,
        "numbers": c.numbers.iter()
            .map(|n| json!({"number": n.number, "e164": n.e164}))
            .collect::<Vec<_>>(),
        "created_at": c.created_at,
    })
}

async fn list(store: &Store, account: Option<&str>, as_json: bool) -> Result<()> {
    let accounts = store.accounts().list().await?;
    let account_id = match account {
        Some(name) => match accounts.iter().find(|a| a.name == name) {
            Some(a) => Some(a.id.as_str()),
            None => bail!("no account {name} (see `dialtone account list`)"),
        },
        None => None,
    };
    let account_name = |id: &str| {
        accounts
            .iter()
            .find(|a| a.id == id)
            .map_or_else(|| id.to_owned(), |a| a.name.clone())
    };
    let contacts = store.contacts().list(account_id).await?;
    if as_json {
        let list: Vec<_> = contacts
            .iter()
            .map(|c| contact_json(c, &account_name(&c.account_id)))
            .collect();
        println!("{}", serde_json::Value::from(list));
        return Ok(());
    }
    for c in &contacts {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}",
            c.id,
            c.name,
            numbers_text(c),
            c.company.as_deref().unwrap_or("-"),
            c.email.as_deref().unwrap_or("-"),
            account_name(&c.account_id)
        );
    }
    Ok(())
}

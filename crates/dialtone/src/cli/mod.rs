//! Provisioning subcommands: they open the configured database directly,
//! so they work whether or not the switch is running.

pub(crate) mod accounts;
mod apikeys;
mod call;
mod calls;
pub(crate) mod contacts;
mod hours;
pub(crate) mod leads;
mod limits;
mod nodes;
mod personas;
pub(crate) mod queues;
mod routing;
mod srtp;
pub(crate) mod tools;

pub use accounts::AccountCommand;
pub use apikeys::ApiKeyCommand;
pub use call::CallCommand;
pub use calls::{json_of as call_json, CallsCommand};
pub use contacts::ContactCommand;
pub use hours::HoursCommand;
pub use leads::LeadsCommand;
pub use nodes::NodesCommand;
pub use personas::PersonaCommand;
pub use queues::QueueCommand;
pub use routing::{NumberCommand, RouteCommand, TrunkCommand};
pub use tools::ToolCommand;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use dialtone_sip::auth::{ha1, Algorithm};
use dialtone_store::{NewUser, Store};

use crate::config::Config;

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a SIP user (the password is stored only as HA1 digests).
    Add {
        name: String,
        #[arg(long)]
        password: String,
        /// The account the user belongs to.
        #[arg(long, default_value = "default")]
        account: String,
        #[command(flatten)]
        limits: limits::LimitArgs,
        #[command(flatten)]
        srtp: srtp::SrtpArgs,
    },
    /// Change a user's call limits or SRTP policy (with none given: show them).
    Update {
        name: String,
        #[command(flatten)]
        limits: limits::LimitArgs,
        #[command(flatten)]
        srtp: srtp::SrtpArgs,
    },
    /// List users, one per line: username, realm, account id, dnd (or -),
    /// SRTP policy (srtp=default when the user has none of its own).
    List,
    /// Remove a user and its registrations.
    Remove { name: String },
    /// Switch a user's do-not-disturb on or off (availability checks report it busy).
    Dnd {
        name: String,
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
}

#[derive(Subcommand)]
pub enum RegistrationsCommand {
    /// One binding per line: AOR, contact, seconds left, source.
    List,
}

async fn open(cfg: &Config) -> Result<Store> {
    Store::connect(&cfg.database.url)
        .await
        .with_context(|| format!("opening database {}", cfg.database.url))
}

fn valid_username(name: &str) -> bool {
    // RFC 3261 user part, unreserved characters only: safe in any URI.
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.!~*'()+".contains(c))
}

pub async fn user(cfg: &Config, cmd: UserCommand) -> Result<()> {
    let store = open(cfg).await?;
    match cmd {
        UserCommand::Add {
            name,
            password,
            account,
            limits,
            srtp,
        } => {
            if !valid_username(&name) {
                bail!("invalid username {name:?}: use letters, digits and -_.!~*'()+");
            }
            if password.is_empty() {
                bail!("the password must not be empty");
            }
            let realm = cfg.sip.domain.as_str();
            let account = store.accounts().ensure(&account).await?;
            store
                .users()
                .create(NewUser {
                    account_id: &account.id,
                    username: &name,
                    realm,
                    ha1_md5: &ha1(Algorithm::Md5, &name, realm, &password),
                    ha1_sha256: &ha1(Algorithm::Sha256, &name, realm, &password),
                })
                .await
                .with_context(|| format!("adding user {name}"))?;
            let mut extra = Vec::new();
            if limits.given() {
                let set = limits.apply(Default::default());
                store.users().set_limits(&name, set).await?;
                extra.push(set.describe());
            }
            if let Some(policy) = srtp.given() {
                store.users().set_srtp(&name, policy).await?;
                extra.push(srtp::describe(policy));
            }
            let extra: String = extra.iter().map(|e| format!(", {e}")).collect();
            println!("user {name} added (realm {realm}{extra})");
        }
        UserCommand::Update { name, limits, srtp } => {
            let Some(user) = store.users().get(&name).await? else {
                bail!("no user {name} (see `dialtone user list`)");
            };
            let set = limits.apply(user.limits);
            if limits.given() && !store.users().set_limits(&name, set).await? {
                bail!("no user {name}");
            }
            let policy = srtp.given().unwrap_or(user.srtp);
            if srtp.given().is_some() && !store.users().set_srtp(&name, policy).await? {
                bail!("no user {name}");
            }
            println!("user {name}: {} {}", set.describe(), srtp::describe(policy));
        }
        UserCommand::List => {
            for u in store.users().list().await? {
                let dnd = if u.dnd { "dnd" } else { "-" };
                println!(
                    "{}\t{}\t{}\t{dnd}\t{}",
                    u.username,
                    u.realm,
                    u.account_id,
                    srtp::describe(u.srtp)
                );
            }
        }
        UserCommand::Remove { name } => {
            if !store.users().remove(&name).await? {
                bail!("no user {name}");
            }
            println!("user {name} removed");
        }
        UserCommand::Dnd { name, state } => {
            let on = state == "on";
            if !store.users().set_dnd(&name, on).await? {
                bail!("no user {name} (see `dialtone user list`)");
            }
            println!("user {name}: do-not-disturb {state}");
        }
    }
    store.close().await;
    Ok(())
}

pub async fn registrations(cfg: &Config, cmd: RegistrationsCommand) -> Result<()> {
    let store = open(cfg).await?;
    match cmd {
        RegistrationsCommand::List => {
            let now = dialtone_switch::registrar::unix_now();
            for b in store.registrations().list_all(now).await? {
                println!(
                    "{}\t{}\t{}\t{}",
                    b.aor,
                    b.contact,
                    b.expires_at - now,
                    b.source
                );
            }
        }
    }
    store.close().await;
    Ok(())
}

/// Runs one of the routing, persona or call-record subcommands on the database.
pub async fn provisioning(cfg: &Config, cmd: Provisioning) -> Result<()> {
    let store = open(cfg).await?;
    let result = match cmd {
        Provisioning::Trunk(c) => routing::trunk(&store, c).await,
        Provisioning::Number(c) => routing::number(&store, c).await,
        Provisioning::Route(c) => routing::route(&store, c).await,
        Provisioning::Calls(c) => calls::calls(&store, c).await,
        Provisioning::Call(c) => call::call(&store, c).await,
        Provisioning::Account(c) => accounts::account(&store, c).await,
        Provisioning::Contact(c) => contacts::contact(&store, c).await,
        Provisioning::Queue(c) => queues::queue(&store, c).await,
        Provisioning::Tool(c) => tools::tool(&store, c).await,
        Provisioning::Persona(c) => personas::persona(&store, c).await,
        Provisioning::ApiKey(c) => apikeys::apikey(&store, c).await,
        Provisioning::Hours(c) => hours::hours(&store, c).await,
        Provisioning::Leads(c) => leads::leads(&store, c).await,
        Provisioning::Nodes(c) => nodes::nodes(&store, c, cfg.cluster.dead_after_ms).await,
    };
    store.close().await;
    result
}

pub enum Provisioning {
    Trunk(TrunkCommand),
    Number(NumberCommand),
    Route(RouteCommand),
    Calls(CallsCommand),
    Call(CallCommand),
    Account(AccountCommand),
    Contact(ContactCommand),
    Queue(QueueCommand),
    Tool(ToolCommand),
    Persona(PersonaCommand),
    ApiKey(ApiKeyCommand),
    Hours(HoursCommand),
    Leads(LeadsCommand),
    Nodes(NodesCommand),
}

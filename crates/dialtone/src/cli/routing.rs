//! `trunk`, `number` and `route` subcommands: where calls come from and go.

use anyhow::{bail, Context, Result};
use clap::{Subcommand, ValueEnum};
use dialtone_store::{NewTrunk, Store, TargetKind};

#[derive(Subcommand)]
pub enum TrunkCommand {
    /// Add a SIP trunk (a carrier or another PBX).
    Add {
        name: String,
        /// Where calls to the trunk go: HOST:PORT (port 5060 if omitted, 5061 over TLS).
        #[arg(long)]
        host: Option<String>,
        /// tls: the trunk's certificate is checked for HOST against tls.ca_file
        /// (or the public roots).
        #[arg(long, default_value = "udp", value_parser = ["udp", "tcp", "tls"])]
        transport: String,
        /// A source address (or CIDR) calls from this trunk come from; repeatable.
        #[arg(long = "inbound-ip")]
        inbound_ips: Vec<String>,
        /// Credentials to answer the trunk's digest challenge.
        #[arg(long, requires = "password")]
        username: Option<String>,
        #[arg(long, requires = "username")]
        password: Option<String>,
        /// Keep a registration with the trunk alive.
        #[arg(long, requires = "username")]
        register: bool,
        /// Call limits, counting the trunk's calls both ways.
        #[command(flatten)]
        limits: super::limits::LimitArgs,
        #[command(flatten)]
        srtp: super::srtp::SrtpArgs,
    },
    /// Change a trunk's call limits or SRTP policy (with none given: show them).
    Update {
        name: String,
        #[command(flatten)]
        limits: super::limits::LimitArgs,
        #[command(flatten)]
        srtp: super::srtp::SrtpArgs,
    },
    List,
    Remove {
        name: String,
    },
}

#[derive(Subcommand)]
pub enum NumberCommand {
    /// Route a number (DID) to user:NAME, trunk:NAME, persona:NAME or queue:NAME.
    Add {
        number: String,
        #[arg(long)]
        to: String,
        /// Record calls to this number.
        #[arg(long)]
        record: bool,
    },
    /// One number per line: number, target, "record" when calls are recorded.
    List,
    Remove {
        number: String,
    },
    /// Switch recording of calls to NUMBER on or off.
    Record {
        number: String,
        state: OnOff,
    },
}

#[derive(Subcommand)]
pub enum RouteCommand {
    /// Send numbers users dial that match PATTERN (a regex) out through a trunk.
    Add {
        #[arg(long)]
        pattern: String,
        #[arg(long)]
        trunk: String,
        /// Leading characters to remove from the dialled number.
        #[arg(long, default_value_t = 0)]
        strip: u32,
        /// Put in front of the number after stripping.
        #[arg(long, default_value = "")]
        prepend: String,
        /// Lower is tried first (default: after every other route).
        #[arg(long)]
        priority: Option<i64>,
        /// Record calls that leave through this route.
        #[arg(long)]
        record: bool,
    },
    /// In the order routes are tried; "record" when calls are recorded.
    List,
    Remove {
        id: String,
    },
    /// Switch recording of calls through route ID on or off.
    Record {
        id: String,
        state: OnOff,
    },
}

/// The argument of `number record` and `route record`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

impl OnOff {
    fn is_on(self) -> bool {
        self == OnOff::On
    }

    fn as_str(self) -> &'static str {
        match self {
            OnOff::On => "on",
            OnOff::Off => "off",
        }
    }
}

/// The last column of `number list` and `route list`.
fn record_column(record: bool) -> &'static str {
    if record {
        "record"
    } else {
        ""
    }
}

fn check_ip_spec(spec: &str) -> Result<()> {
    let (addr, bits) = match spec.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (spec, None),
    };
    let ip: std::net::IpAddr = addr
        .parse()
        .with_context(|| format!("--inbound-ip {spec:?} is not an IP address"))?;
    if let Some(b) = bits {
        let b: u8 = b
            .parse()
            .with_context(|| format!("--inbound-ip {spec:?}: bad prefix length"))?;
        if b > if ip.is_ipv4() { 32 } else { 128 } {
            bail!("--inbound-ip {spec:?}: prefix length too long");
        }
    }
    Ok(())
}

pub async fn trunk(store: &Store, cmd: TrunkCommand) -> Result<()> {
    match cmd {
        TrunkCommand::Add {
            name,
            host,
            transport,
            inbound_ips,
            username,
            password,
            register,
            limits,
            srtp,
        } => {
            if host.is_none() && inbound_ips.is_empty() {
                bail!("a trunk needs --host (to call it) or --inbound-ip (to take its calls), or both");
            }
            for ip in &inbound_ips {
                check_ip_spec(ip)?;
            }
            if register && host.is_none() {
                bail!("--register needs --host");
            }
            store
                .trunks()
                .create(NewTrunk {
                    name: &name,
                    host: host.as_deref(),
                    transport: &transport,
                    inbound_ips: &inbound_ips,
                    username: username.as_deref(),
                    password: password.as_deref(),
                    register,
                })
                .await
                .with_context(|| format!("adding trunk {name}"))?;
            let mut extra = Vec::new();
            if limits.given() {
                let set = limits.apply(Default::default());
                store.trunks().set_limits(&name, set).await?;
                extra.push(set.describe());
            }
            if let Some(policy) = srtp.given() {
                store.trunks().set_srtp(&name, policy).await?;
                extra.push(super::srtp::describe(policy));
            }
            if extra.is_empty() {
                println!("trunk {name} added");
            } else {
                println!("trunk {name} added ({})", extra.join(", "));
            }
        }
        TrunkCommand::Update { name, limits, srtp } => {
            let Some(trunk) = store.trunks().get(&name).await? else {
                bail!("no trunk {name} (see `dialtone trunk list`)");
            };
            let set = limits.apply(trunk.limits);
            if limits.given() && !store.trunks().set_limits(&name, set).await? {
                bail!("no trunk {name}");
            }
            let policy = srtp.given().unwrap_or(trunk.srtp);
            if srtp.given().is_some() && !store.trunks().set_srtp(&name, policy).await? {
                bail!("no trunk {name}");
            }
            println!(
                "trunk {name}: {} {}",
                set.describe(),
                super::srtp::describe(policy)
            );
        }
        TrunkCommand::List => {
            for t in store.trunks().list().await? {
                println!(
                    "{}\t{}\t{}\tinbound={}\t{}\t{}",
                    t.name,
                    t.host.as_deref().unwrap_or("-"),
                    t.transport,
                    t.inbound_ips.join(","),
                    if t.register { "register" } else { "" },
                    super::srtp::describe(t.srtp)
                );
            }
        }
        TrunkCommand::Remove { name } => {
            if !store.trunks().remove(&name).await.with_context(|| {
                format!("removing trunk {name} (numbers or routes may still use it)")
            })? {
                bail!("no trunk {name}");
            }
            println!("trunk {name} removed");
        }
    }
    Ok(())
}

pub async fn number(store: &Store, cmd: NumberCommand) -> Result<()> {
    match cmd {
        NumberCommand::Add { number, to, record } => {
            let (kind, target) = to.split_once(':').with_context(|| {
                format!("--to {to:?}: expected user:NAME, trunk:NAME, persona:NAME or queue:NAME")
            })?;
            let kind: TargetKind = kind
                .parse()
                .map_err(|_| anyhow::anyhow!("--to {to:?}: unknown target kind {kind:?}"))?;
            if target.is_empty() {
                bail!("--to {to:?}: the target name is empty");
            }
            let exists = match kind {
                TargetKind::User => store.users().get(target).await?.is_some(),
                TargetKind::Trunk => store.trunks().get(target).await?.is_some(),
                TargetKind::Persona => store.personas().get(target).await?.is_some(),
                TargetKind::Queue => store.queues().get(target).await?.is_some(),
            };
            if !exists {
                if kind == TargetKind::Persona {
                    bail!("--to {to:?}: no such persona (add it first with `dialtone persona add {target} …`)");
                }
                if kind == TargetKind::Queue {
                    bail!("--to {to:?}: no such queue (add it first with `dialtone queue add {target} …`)");
                }
                bail!("--to {to:?}: no such {kind}");
            }
            store
                .numbers()
                .create(&number, kind, target, record)
                .await
                .with_context(|| format!("adding number {number}"))?;
            if record {
                println!("number {number} -> {kind}:{target} (recorded)");
            } else {
                println!("number {number} -> {kind}:{target}");
            }
        }
        NumberCommand::List => {
            for n in store.numbers().list().await? {
                println!(
                    "{}\t{}:{}\t{}",
                    n.number,
                    n.target_kind,
                    n.target,
                    record_column(n.record)
                );
            }
        }
        NumberCommand::Remove { number } => {
            if !store.numbers().remove(&number).await? {
                bail!("no number {number}");
            }
            println!("number {number} removed");
        }
        NumberCommand::Record { number, state } => {
            if !store.numbers().set_record(&number, state.is_on()).await? {
                bail!("no number {number}");
            }
            println!("number {number}: recording {}", state.as_str());
        }
    }
    Ok(())
}

pub async fn route(store: &Store, cmd: RouteCommand) -> Result<()> {
    match cmd {
        RouteCommand::Add {
            pattern,
            trunk,
            strip,
            prepend,
            priority,
            record,
        } => {
            regex::Regex::new(&pattern)
                .with_context(|| format!("--pattern {pattern:?} is not a valid regex"))?;
            let r = store
                .routes()
                .create(&pattern, &trunk, strip, &prepend, priority, record)
                .await
                .with_context(|| format!("adding route via trunk {trunk}"))?;
            if record {
                println!("route {} added (priority {}, recorded)", r.id, r.priority);
            } else {
                println!("route {} added (priority {})", r.id, r.priority);
            }
        }
        RouteCommand::List => {
            for r in store.routes().list().await? {
                println!(
                    "{}\t{}\t{}\ttrunk={}\tstrip={}\tprepend={}\t{}",
                    r.id,
                    r.priority,
                    r.pattern,
                    r.trunk,
                    r.strip,
                    r.prepend,
                    record_column(r.record)
                );
            }
        }
        RouteCommand::Remove { id } => {
            if !store.routes().remove(&id).await? {
                bail!("no route {id}");
            }
            println!("route {id} removed");
        }
        RouteCommand::Record { id, state } => {
            if !store.routes().set_record(&id, state.is_on()).await? {
                bail!("no route {id}");
            }
            println!("route {id}: recording {}", state.as_str());
        }
    }
    Ok(())
}

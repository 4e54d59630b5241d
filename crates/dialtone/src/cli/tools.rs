//! `tool` subcommands: a persona's own tools, offered to its model beside
//! the global ones — transfer to a given user or queue, or an HTTP API
//! request built from templates. The CLI parses the options (headers,
//! variables), checks that the persona and a transfer's target exist, and
//! leaves the rest to the store's checks (name, URL, placeholders), which
//! the MCP server shares. Secrets are written as `${ENV_VAR}` and read from
//! the switch's environment at call time; `tool show` says whether each is set.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use dialtone_store::{
    parse_template, ApiRequest, Persona, PersonaTool, PersonaToolKind, Store, StoreError,
    TemplatePart, ToolVariable, VariableKind, DEFAULT_TOOL_TIMEOUT_MS, METHODS,
};
use serde_json::json;

#[derive(Subcommand)]
pub enum ToolCommand {
    /// Add a tool to a persona.
    Add {
        persona: String,
        /// The function name the model calls: letters, digits, _ and -.
        name: String,
        #[command(flatten)]
        opts: Box<ToolOptions>,
    },
    /// One tool per line: name, kind, target or request, description.
    List { persona: String },
    /// Everything about one tool, with the environment variables it reads.
    Show {
        persona: String,
        name: String,
        /// One JSON object, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Remove a persona's tool.
    Remove { persona: String, name: String },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    TransferUser,
    TransferQueue,
    ApiRequest,
}

#[derive(Args)]
pub struct ToolOptions {
    /// What the tool does.
    #[arg(long, value_enum)]
    kind: Kind,
    /// transfer-user: the user to transfer to.
    #[arg(long)]
    user: Option<String>,
    /// transfer-queue: the queue to transfer to.
    #[arg(long)]
    queue: Option<String>,
    /// api-request: http:// or https:// URL; {var} and ${ENV} in path and query.
    #[arg(long)]
    url: Option<String>,
    /// api-request: GET, POST, PUT, PATCH or DELETE (default GET, or POST with --body).
    #[arg(long)]
    method: Option<String>,
    /// api-request: 'Name: value' (value may use {var} and ${ENV_VAR}); repeatable.
    #[arg(long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// api-request: the body template.
    #[arg(long, value_name = "TEMPLATE")]
    body: Option<String>,
    /// api-request: an argument the model fills in: NAME:text[:description],
    /// NAME:number[:description] or NAME:options:a|b|c[:description]; repeatable.
    #[arg(long = "var", value_name = "NAME:TYPE[:…]")]
    vars: Vec<String>,
    /// api-request: this variable may be left out; repeatable.
    #[arg(long = "optional", value_name = "NAME")]
    optional: Vec<String>,
    /// api-request: give up after this many milliseconds.
    #[arg(long, value_name = "MS")]
    timeout_ms: Option<u32>,
    /// What the model is told the tool does (a default is made from the target).
    #[arg(long, value_name = "TEXT")]
    description: Option<String>,
}

pub async fn tool(store: &Store, cmd: ToolCommand) -> Result<()> {
    match cmd {
        ToolCommand::Add {
            persona,
            name,
            opts,
        } => add(store, &persona, &name, *opts).await,
        ToolCommand::List { persona } => {
            let p = persona_named(store, &persona).await?;
            for t in store.persona_tools().list_for_persona(&p.id).await? {
                println!(
                    "{}\t{}\t{}\t{}",
                    t.name,
                    kind_name(&t.kind),
                    target_text(&t.kind),
                    t.description
                );
            }
            Ok(())
        }
        ToolCommand::Show {
            persona,
            name,
            json,
        } => {
            let p = persona_named(store, &persona).await?;
            let Some(t) = store.persona_tools().get(&p.id, &name).await? else {
                bail!("persona {persona} has no tool {name} (see `dialtone tool list {persona}`)");
            };
            if json {
                println!("{}", json_of(&t, &p.name));
            } else {
                print!("{}", show_text(&t, &p.name));
            }
            Ok(())
        }
        ToolCommand::Remove { persona, name } => {
            let p = persona_named(store, &persona).await?;
            if !store.persona_tools().remove(&p.id, &name).await? {
                bail!("persona {persona} has no tool {name}");
            }
            println!("tool {name} of persona {persona} removed");
            Ok(())
        }
    }
}

async fn persona_named(store: &Store, name: &str) -> Result<Persona> {
    match store.personas().get(name).await? {
        Some(p) => Ok(p),
        None => bail!("no persona {name} (see `dialtone persona list`)"),
    }
}

async fn add(store: &Store, persona: &str, name: &str, o: ToolOptions) -> Result<()> {
    let p = persona_named(store, persona).await?;
    let (kind, default_description) = match o.kind {
        Kind::TransferUser => {
            only_for_api(&o, "transfer-user")?;
            if o.queue.is_some() {
                bail!("--queue is for --kind transfer-queue");
            }
            let Some(user) = o.user.clone() else {
                bail!("--kind transfer-user needs --user NAME");
            };
            if store.users().get(&user).await?.is_none() {
                bail!("--user {user}: no such user (add it first with `dialtone user add`)");
            }
            let description = format!("Transfer the caller to {user}");
            (PersonaToolKind::TransferUser { user }, description)
        }
        Kind::TransferQueue => {
            only_for_api(&o, "transfer-queue")?;
            if o.user.is_some() {
                bail!("--user is for --kind transfer-user");
            }
            let Some(queue) = o.queue.clone() else {
                bail!("--kind transfer-queue needs --queue NAME");
            };
            if store.queues().get(&queue).await?.is_none() {
                bail!("--queue {queue}: no such queue (add it first with `dialtone queue add`)");
            }
            let description = format!("Transfer the caller to the {queue} queue");
            (PersonaToolKind::TransferQueue { queue }, description)
        }
        Kind::ApiRequest => {
            if o.user.is_some() || o.queue.is_some() {
                bail!("--user and --queue are for the transfer kinds, not api-request");
            }
            let request = api_request(&o)?;
            let description = format!(
                "Send a {} request to {}",
                request.method,
                host_of(&request.url)
            );
            (PersonaToolKind::ApiRequest(request), description)
        }
    };
    let description = o.description.unwrap_or(default_description);
    match store
        .persona_tools()
        .create(&p.id, name, &description, kind)
        .await
    {
        Ok(t) => {
            println!(
                "tool {} added to persona {} ({}: {})",
                t.name,
                p.name,
                kind_name(&t.kind),
                target_text(&t.kind)
            );
            Ok(())
        }
        Err(StoreError::Invalid { reason }) => bail!("tool add: {reason}"),
        Err(StoreError::Conflict { .. }) => {
            bail!("persona {persona} already has a tool {name}")
        }
        Err(e) => Err(e).with_context(|| format!("adding tool {name}")),
    }
}

/// Refuses api-request options on a transfer tool.
fn only_for_api(o: &ToolOptions, kind: &str) -> Result<()> {
    let given = [
        ("--url", o.url.is_some()),
        ("--method", o.method.is_some()),
        ("--header", !o.headers.is_empty()),
        ("--body", o.body.is_some()),
        ("--var", !o.vars.is_empty()),
        ("--optional", !o.optional.is_empty()),
        ("--timeout-ms", o.timeout_ms.is_some()),
    ];
    if let Some((flag, _)) = given.iter().find(|(_, set)| *set) {
        bail!("{flag} is for --kind api-request, not {kind}");
    }
    Ok(())
}

fn api_request(o: &ToolOptions) -> Result<ApiRequest> {
    let Some(url) = o.url.clone() else {
        bail!("--kind api-request needs --url URL");
    };
    let method = match &o.method {
        Some(m) => {
            let m = m.to_ascii_uppercase();
            if !METHODS.contains(&m.as_str()) {
                bail!("--method {m}: expected one of {}", METHODS.join(", "));
            }
            m
        }
        None if o.body.is_some() => "POST".to_owned(),
        None => "GET".to_owned(),
    };
    let mut headers = Vec::new();
    for h in &o.headers {
        let Some((name, value)) = h.split_once(':') else {
            bail!("--header {h:?}: expected 'Name: value'");
        };
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let mut variables = o
        .vars
        .iter()
        .map(|v| parse_var(v))
        .collect::<Result<Vec<_>>>()?;
    for name in &o.optional {
        let Some(v) = variables.iter_mut().find(|v| &v.name == name) else {
            bail!("--optional {name}: there is no --var {name}");
        };
        v.required = false;
    }
    Ok(ApiRequest {
        method,
        url,
        headers,
        body: o.body.clone(),
        variables,
        timeout_ms: o.timeout_ms.unwrap_or(DEFAULT_TOOL_TIMEOUT_MS),
    })
}

/// NAME:text[:description], NAME:number[:description] or
/// NAME:options:a|b|c[:description].
fn parse_var(spec: &str) -> Result<ToolVariable> {
    let usage = "expected NAME:text[:description], NAME:number[:description] \
                 or NAME:options:a|b|c[:description]";
    let mut parts = spec.splitn(3, ':');
    let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
        bail!("--var {spec:?}: {usage}");
    };
    let rest = parts.next();
    let (kind, description) = match kind.trim() {
        "text" => (VariableKind::Text, rest),
        "number" => (VariableKind::Number, rest),
        "options" => {
            let Some(rest) = rest else {
                bail!("--var {spec:?}: list the options, NAME:options:a|b|c");
            };
            let (options, description) = match rest.split_once(':') {
                Some((o, d)) => (o, Some(d)),
                None => (rest, None),
            };
            let options = options.split('|').map(|o| o.trim().to_owned()).collect();
            (VariableKind::Options(options), description)
        }
        other => bail!("--var {spec:?}: unknown type {other:?}; {usage}"),
    };
    Ok(ToolVariable {
        name: name.trim().to_owned(),
        kind,
        description: description
            .map(|d| d.trim().to_owned())
            .filter(|d| !d.is_empty()),
        required: true,
    })
}

fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?', '#']).next().unwrap_or(rest)
}

/// The CLI's name of a kind (the form `--kind` takes).
fn kind_name(kind: &PersonaToolKind) -> &'static str {
    match kind {
        PersonaToolKind::TransferUser { .. } => "transfer-user",
        PersonaToolKind::TransferQueue { .. } => "transfer-queue",
        PersonaToolKind::ApiRequest(_) => "api-request",
    }
}

fn target_text(kind: &PersonaToolKind) -> String {
    match kind {
        PersonaToolKind::TransferUser { user } => format!("user:{user}"),
        PersonaToolKind::TransferQueue { queue } => format!("queue:{queue}"),
        PersonaToolKind::ApiRequest(r) => format!("{} {}", r.method, r.url),
    }
}

/// The environment variables the request reads, each with whether it is set here.
fn env_vars(r: &ApiRequest) -> Vec<(String, bool)> {
    let mut names: Vec<String> = Vec::new();
    let templates = std::iter::once(r.url.as_str())
        .chain(r.headers.iter().map(|(_, v)| v.as_str()))
        .chain(r.body.as_deref());
    for template in templates {
        for part in parse_template(template).unwrap_or_default() {
            if let TemplatePart::Env(name) = part {
                if !names.iter().any(|n| n == name) {
                    names.push(name.to_owned());
                }
            }
        }
    }
    names
        .into_iter()
        .map(|n| {
            let set = std::env::var_os(&n).is_some_and(|v| !v.is_empty());
            (n, set)
        })
        .collect()
}

fn variable_type(v: &ToolVariable) -> String {
    match &v.kind {
        VariableKind::Options(o) => format!("options({})", o.join("|")),
        other => other.as_str().to_owned(),
    }
}

fn show_text(t: &PersonaTool, persona: &str) -> String {
    let mut out = String::new();
    let mut row = |label: &str, value: &str| {
        out.push_str(&format!("{:<13}{value}\n", format!("{label}:")));
    };
    row("name", &t.name);
    row("persona", persona);
    row("kind", kind_name(&t.kind));
    row("description", &t.description);
    match &t.kind {
        PersonaToolKind::TransferUser { user } => row("user", user),
        PersonaToolKind::TransferQueue { queue } => row("queue", queue),
        PersonaToolKind::ApiRequest(r) => {
            row("method", &r.method);
            row("url", &r.url);
            row("timeout", &format!("{} ms", r.timeout_ms));
            for (name, value) in &r.headers {
                row("header", &format!("{name}: {value}"));
            }
            if let Some(body) = &r.body {
                row("body", body);
            }
            for v in &r.variables {
                let mut text = format!(
                    "{} ({}, {})",
                    v.name,
                    variable_type(v),
                    if v.required { "required" } else { "optional" }
                );
                if let Some(d) = &v.description {
                    text.push_str(&format!(": {d}"));
                }
                row("variable", &text);
            }
            for (name, set) in env_vars(r) {
                row(
                    "environment",
                    &format!("{name} ({})", if set { "set" } else { "not set" }),
                );
            }
        }
    }
    out
}

pub(crate) fn json_of(t: &PersonaTool, persona: &str) -> serde_json::Value {
    let mut value = json!({
        "id": t.id, "persona": persona, "persona_id": t.persona_id, "name": t.name,
        "description": t.description, "kind": kind_name(&t.kind),
        "input_schema": t.input_schema(),
        "created_at": t.created_at, "updated_at": t.updated_at,
    });
    let extra = match &t.kind {
        PersonaToolKind::TransferUser { user } => json!({"user": user}),
        PersonaToolKind::TransferQueue { queue } => json!({"queue": queue}),
        PersonaToolKind::ApiRequest(r) => json!({
            "method": r.method, "url": r.url, "body": r.body, "timeout_ms": r.timeout_ms,
            "headers": r.headers.iter()
                .map(|(n, v)| json!({"name": n, "value": v})).collect::<Vec<_>>(),
            "variables": r.variables.iter().map(|v| json!({
                "name": v.name, "type": v.kind.as_str(), "description": v.description,
                "options": match &v.kind { VariableKind::Options(o) => Some(o), _ => None },
                "required": v.required,
            })).collect::<Vec<_>>(),
            "env": env_vars(r).into_iter()
                .map(|(name, set)| json!({"name": name, "set": set})).collect::<Vec<_>>(),
        }),
    };
    if let (Some(map), serde_json::Value::Object(extra)) = (value.as_object_mut(), extra) {
        map.extend(extra);
    }
    value
}

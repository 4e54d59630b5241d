//! `persona mcp` subcommands: the external MCP servers (a company's CRM, its
//! calendar) whose tools a persona's model is offered mid-call as
//! `SERVER__TOOL`, beside dialtone's own. The CLI parses the options
//! (transport, headers, allow list) and leaves the checks to the store. A
//! secret belongs in a header as `${ENV_NAME}`, read by the switch when it
//! connects; a literal value is stored as given (and the CLI says so).
//! Listings show header names and the variables they read, never a value.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use dialtone_store::{
    header_env_names, McpTransport, NewMcpServer, Persona, PersonaMcpServer, Store, StoreError,
};
use serde_json::json;

const DEFAULT_TIMEOUT_MS: u32 = 10_000;

#[derive(Subcommand)]
pub enum McpCommand {
    /// Give a persona an external MCP server; its tools are offered to the
    /// model as NAME__TOOL.
    Add {
        persona: String,
        /// 1 to 32 lowercase letters, digits and _: the prefix of its tools.
        name: String,
        #[command(flatten)]
        opts: McpOptions,
    },
    /// One server per line: name, transport, URL or command, allowed tools
    /// (* for all), timeout, header names.
    List {
        persona: String,
        /// One JSON array, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Remove a persona's MCP server.
    Remove { persona: String, name: String },
}

#[derive(Args)]
pub struct McpOptions {
    /// http and sse: the server's URL (http:// or https://).
    #[arg(long)]
    url: Option<String>,
    /// http (Streamable HTTP), sse (the older HTTP+SSE) or stdio (a command);
    /// default: stdio with --command, else http.
    #[arg(long, value_parser = McpTransport::NAMES)]
    transport: Option<String>,
    /// stdio: the command line the switch runs (split like a shell's words).
    #[arg(long, value_name = "'CMD ARGS'")]
    command: Option<String>,
    /// http and sse: 'Name: value' sent on every request; put secrets in
    /// ${ENV_NAME}, read by the switch when it connects. Repeatable.
    #[arg(long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// Offer only these tools of the server (default: all).
    #[arg(long, value_name = "TOOL,…", value_delimiter = ',')]
    allow: Vec<String>,
    /// How long one tool call may take, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_TIMEOUT_MS)]
    timeout_ms: u32,
}

pub async fn mcp(store: &Store, cmd: McpCommand) -> Result<()> {
    match cmd {
        McpCommand::Add {
            persona,
            name,
            opts,
        } => add(store, &persona, &name, opts).await,
        McpCommand::List { persona, json } => {
            let p = persona_named(store, &persona).await?;
            let servers = store.persona_mcp_servers().list_for_persona(&p.id).await?;
            if json {
                let all: Vec<_> = servers.iter().map(|s| json_of(s, &p.name)).collect();
                println!("{}", serde_json::Value::Array(all));
            } else {
                for s in &servers {
                    println!("{}", line_of(s));
                }
            }
            Ok(())
        }
        McpCommand::Remove { persona, name } => {
            let p = persona_named(store, &persona).await?;
            if !store.persona_mcp_servers().remove(&p.id, &name).await? {
                bail!(
                    "persona {persona} has no MCP server {name} \
                     (see `dialtone persona mcp list {persona}`)"
                );
            }
            println!("MCP server {name} of persona {persona} removed");
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

async fn add(store: &Store, persona: &str, name: &str, o: McpOptions) -> Result<()> {
    let p = persona_named(store, persona).await?;
    let transport: McpTransport = match (&o.transport, &o.command) {
        (Some(t), _) => t.parse().map_err(anyhow::Error::msg)?,
        (None, Some(_)) => McpTransport::Stdio,
        (None, None) => McpTransport::Http,
    };
    match transport {
        McpTransport::Http | McpTransport::Sse if o.url.is_none() => {
            bail!("--transport {transport} needs --url URL")
        }
        McpTransport::Http | McpTransport::Sse if o.command.is_some() => {
            bail!("--command is for --transport stdio, not {transport}")
        }
        McpTransport::Stdio if o.command.is_none() => {
            bail!("--transport stdio needs --command 'CMD ARGS'")
        }
        McpTransport::Stdio if o.url.is_some() => {
            bail!("--url is for --transport http or sse; stdio runs --command")
        }
        McpTransport::Stdio if !o.headers.is_empty() => {
            bail!("--header is for --transport http or sse; a stdio server inherits the switch's environment")
        }
        _ => {}
    }
    let mut headers = Vec::new();
    for h in &o.headers {
        let Some((hname, value)) = h.split_once(':') else {
            bail!("--header {h:?}: expected 'Name: value'");
        };
        headers.push((hname.trim().to_owned(), value.trim().to_owned()));
    }
    let allow: Vec<String> = o
        .allow
        .iter()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect();
    let new = NewMcpServer {
        name: name.to_owned(),
        transport,
        url: o.url,
        command: o.command,
        headers,
        allow,
        timeout_ms: o.timeout_ms,
    };
    let s = match store.persona_mcp_servers().create(&p.id, new).await {
        Ok(s) => s,
        Err(StoreError::Invalid { reason }) => bail!("persona mcp add: {reason}"),
        Err(StoreError::Conflict { .. }) => bail!(
            "persona {persona} already has an MCP server {name} \
             (remove it first with `dialtone persona mcp remove {persona} {name}`)"
        ),
        Err(e) => return Err(e).with_context(|| format!("adding MCP server {name}")),
    };
    for (hname, value) in &s.headers {
        if header_env_names(value).is_empty() {
            eprintln!(
                "note: header {hname} is stored as written; a secret belongs in ${{ENV_NAME}}, \
                 read by the switch when it connects"
            );
        }
    }
    println!(
        "MCP server {} added to persona {} ({} {}; its tools are offered as {}__TOOL)",
        s.name,
        p.name,
        s.transport,
        target(&s),
        s.name
    );
    Ok(())
}

fn target(s: &PersonaMcpServer) -> &str {
    s.url
        .as_deref()
        .or(s.command.as_deref())
        .unwrap_or_default()
}

fn line_of(s: &PersonaMcpServer) -> String {
    let allow = if s.allow.is_empty() {
        "*".to_owned()
    } else {
        s.allow.join(",")
    };
    let headers: Vec<&str> = s.headers.iter().map(|(n, _)| n.as_str()).collect();
    format!(
        "{}\t{}\t{}\t{}\t{} ms\t{}",
        s.name,
        s.transport,
        target(s),
        allow,
        s.timeout_ms,
        headers.join(",")
    )
}

/// Header names and the environment variables each reads (whether this
/// shell has them set), never a value.
fn json_of(s: &PersonaMcpServer, persona: &str) -> serde_json::Value {
    let headers: Vec<_> = s
        .headers
        .iter()
        .map(|(name, value)| {
            let env: Vec<_> = header_env_names(value)
                .into_iter()
                .map(|v| {
                    let set = std::env::var_os(v).is_some_and(|x| !x.is_empty());
                    json!({"name": v, "set": set})
                })
                .collect();
            json!({"name": name, "env": env})
        })
        .collect();
    json!({
        "id": s.id, "persona": persona, "name": s.name, "transport": s.transport.as_str(),
        "url": s.url, "command": s.command, "headers": headers, "allow": s.allow,
        "timeout_ms": s.timeout_ms, "created_at": s.created_at,
    })
}

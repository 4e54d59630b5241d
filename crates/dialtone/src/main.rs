//! The dialtone binary: the command line, logging, and the subcommands —
//! `run` starts the switch, the others provision the configured database.

mod api;
mod cli;
mod cluster;
mod config;
mod http;
mod run;
mod stdio;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "dialtone",
    version,
    about = "SIP B2BUA softswitch with a realtime-LLM media bridge"
)]
struct Args {
    /// The configuration file. Without it, config/dialtone.toml is used if
    /// present, else the built-in defaults.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Log format, overriding log.format: text or json.
    #[arg(long, global = true)]
    log_format: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the switch: SIP, HTTP and the database.
    Run,
    /// Manage SIP users.
    #[command(subcommand)]
    User(cli::UserCommand),
    /// Show registrations.
    #[command(subcommand)]
    Registrations(cli::RegistrationsCommand),
    /// Manage SIP trunks.
    #[command(subcommand)]
    Trunk(cli::TrunkCommand),
    /// Route numbers (DIDs) to users, trunks, personas or queues.
    #[command(subcommand)]
    Number(cli::NumberCommand),
    /// Outbound routes: dialled patterns to trunks.
    #[command(subcommand)]
    Route(cli::RouteCommand),
    /// Account settings: the region numbers are read in, the HTTP contact source.
    #[command(subcommand)]
    Account(cli::AccountCommand),
    /// Accounts' address books: add, import (CSV, vCard), list, remove.
    #[command(subcommand)]
    Contact(cli::ContactCommand),
    /// Call queues: users rung together, in turn, or the longest idle first.
    #[command(subcommand)]
    Queue(cli::QueueCommand),
    /// Personas' own tools: transfers and HTTP API requests.
    #[command(subcommand)]
    Tool(cli::ToolCommand),
    /// Call records.
    #[command(subcommand)]
    Calls(cli::CallsCommand),
    /// Calls for the switch to place: now, or at a given time.
    #[command(subcommand)]
    Call(cli::CallCommand),
    /// Manage personas: the AI agents numbers can ring.
    #[command(subcommand)]
    Persona(cli::PersonaCommand),
    /// Accounts' API keys (for the MCP server and the REST API).
    #[command(subcommand, name = "apikey")]
    ApiKey(cli::ApiKeyCommand),
    /// Personas' office hours and closure days.
    #[command(subcommand)]
    Hours(cli::HoursCommand),
    /// Leads the agents recorded, and their cases.
    #[command(subcommand)]
    Leads(cli::LeadsCommand),
    /// The nodes of a cluster sharing this database.
    #[command(subcommand)]
    Nodes(cli::NodesCommand),
    /// An MCP server on stdin/stdout (for Claude Desktop and other stdio
    /// clients) that proxies to a running dialtone's /mcp.
    #[command(name = "mcp-stdio")]
    McpStdio(stdio::McpStdioArgs),
}

const DEFAULT_CONFIG: &str = "config/dialtone.toml";

/// mimalloc rather than glibc's malloc: a call's signalling allocates and
/// frees many small buffers across two worker threads, and glibc's
/// malloc, free and consolidation were a fifth of the switch's CPU
/// (BENCHMARKS.md, "Calls after issue 13, fifth round").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = Args::parse();
    let (path, optional) = match &args.config {
        Some(p) => (p.clone(), false),
        None => (PathBuf::from(DEFAULT_CONFIG), true),
    };
    let mut cfg = match config::Config::load(&path, optional) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("dialtone: {e:#}");
            return ExitCode::from(2);
        }
    };
    if let Some(f) = args.log_format {
        cfg.log.format = f;
    }
    if !matches!(args.command, Command::Run) && cfg.log.level == "info" {
        // Provisioning commands print their own results; keep info logs
        // (database opened, …) out of their output.
        cfg.log.level = "warn".into();
    }
    init_logging(&cfg.log);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dialtone: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        match args.command {
            Command::Run => run::run(cfg).await,
            Command::User(c) => cli::user(&cfg, c).await,
            Command::Registrations(c) => cli::registrations(&cfg, c).await,
            Command::Trunk(c) => cli::provisioning(&cfg, cli::Provisioning::Trunk(c)).await,
            Command::Number(c) => cli::provisioning(&cfg, cli::Provisioning::Number(c)).await,
            Command::Route(c) => cli::provisioning(&cfg, cli::Provisioning::Route(c)).await,
            Command::Account(c) => cli::provisioning(&cfg, cli::Provisioning::Account(c)).await,
            Command::Contact(c) => cli::provisioning(&cfg, cli::Provisioning::Contact(c)).await,
            Command::Queue(c) => cli::provisioning(&cfg, cli::Provisioning::Queue(c)).await,
            Command::Tool(c) => cli::provisioning(&cfg, cli::Provisioning::Tool(c)).await,
            Command::Calls(c) => cli::provisioning(&cfg, cli::Provisioning::Calls(c)).await,
            Command::Call(c) => cli::provisioning(&cfg, cli::Provisioning::Call(c)).await,
            Command::Persona(c) => cli::provisioning(&cfg, cli::Provisioning::Persona(c)).await,
            Command::ApiKey(c) => cli::provisioning(&cfg, cli::Provisioning::ApiKey(c)).await,
            Command::Hours(c) => cli::provisioning(&cfg, cli::Provisioning::Hours(c)).await,
            Command::Leads(c) => cli::provisioning(&cfg, cli::Provisioning::Leads(c)).await,
            Command::Nodes(c) => cli::provisioning(&cfg, cli::Provisioning::Nodes(c)).await,
            Command::McpStdio(a) => stdio::run(&cfg.http.listen, a).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dialtone: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(log: &config::Log) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a person at a terminal: a log file, journald or a
    // pipe gets plain text (and NO_COLOR turns them off everywhere).
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let ansi = std::io::stderr().is_terminal() && !no_color;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    if log.format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

//! `persona` subcommands: add, update, list, show and remove the AI agents
//! (personas) numbers can ring. The CLI checks every setting (in `check`:
//! provider, websocket URL, instructions, time zone, turn detection, VAD
//! values, fallback), since the store keeps them as given, and shows them
//! (in `view`). No command ever prints a provider key: only the name of the
//! environment variable that holds it, and whether that variable is set.
//! `persona mcp` (in `mcp`) manages a persona's external MCP servers.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use dialtone_store::{Account, NewPersona, PersonaUpdate, Store, StoreError};

mod check;
mod mcp;
mod view;

use check::{check, Checked};
pub use mcp::McpCommand;
use view::{account_name, json_of, show_text};

// The choices and defaults are the store's, shared with the management tools.
use dialtone_store::persona_check::{
    default_transcription_model, DEFAULT_IDLE_TIMEOUT_SECS, DEFAULT_TIMEZONE,
    DEFAULT_TURN_DETECTION, EAGERNESS, PROVIDERS, TURN_DETECTION,
};

#[derive(Subcommand)]
pub enum PersonaCommand {
    /// Add an AI agent: a realtime LLM session that answers the numbers routed to it.
    Add {
        /// Unique name; numbers route to persona:NAME.
        name: String,
        #[command(flatten)]
        opts: Box<PersonaOptions>,
        /// The account the persona belongs to (created when missing).
        #[arg(long, default_value = "default")]
        account: String,
    },
    /// Change a persona: each option given replaces the stored value.
    Update {
        name: String,
        #[command(flatten)]
        opts: Box<PersonaOptions>,
        /// Move the persona to this account (created when missing).
        #[arg(long)]
        account: Option<String>,
        #[command(flatten)]
        clear: ClearOptions,
    },
    /// One persona per line: name, provider, model, voice, account.
    List,
    /// Every setting of a persona, instructions in full (never a key).
    Show {
        name: String,
        /// One JSON object, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Remove a persona (refused while a number routes to it).
    Remove { name: String },
    /// A persona's external MCP servers, whose tools its model is offered.
    Mcp {
        #[command(subcommand)]
        cmd: McpCommand,
    },
}

/// The settings `add` and `update` share.
#[derive(Args)]
pub struct PersonaOptions {
    /// The realtime provider.
    #[arg(long, value_parser = PROVIDERS)]
    provider: Option<String>,
    /// The realtime websocket URL (ws:// or wss://).
    #[arg(long, value_name = "WS_URL")]
    url: Option<String>,
    /// The model (default: the provider's).
    #[arg(long)]
    model: Option<String>,
    /// The voice (default: the provider's).
    #[arg(long)]
    voice: Option<String>,
    /// The system prompt; may use {caller_number}, {called_number},
    /// {contact_name}, {date} and {time}, filled in per call.
    #[arg(long, value_name = "TEXT", conflicts_with = "instructions_file")]
    instructions: Option<String>,
    /// Read the instructions from a file.
    #[arg(long, value_name = "FILE")]
    instructions_file: Option<PathBuf>,
    /// What the agent says first when it answers.
    #[arg(long, value_name = "TEXT")]
    greeting: Option<String>,
    /// The NAME of the environment variable holding the provider key
    /// (default: OPENAI_API_KEY or GEMINI_API_KEY). The key is never stored.
    #[arg(long, value_name = "NAME")]
    api_key_env: Option<String>,
    /// IANA time zone for {date} and {time}, e.g. Europe/Berlin (default UTC).
    #[arg(long, value_name = "ZONE")]
    timezone: Option<String>,
    /// How the end of the caller's turn is detected (default server_vad).
    #[arg(long, value_parser = TURN_DETECTION)]
    turn_detection: Option<String>,
    /// Voice activity threshold, 0.0 to 1.0 (default: the provider's).
    #[arg(long, value_name = "0.0-1.0")]
    vad_threshold: Option<f64>,
    /// Audio kept before detected speech, in ms (default: the provider's).
    #[arg(long, value_name = "MS")]
    vad_prefix_padding_ms: Option<u32>,
    /// Silence that ends the caller's turn, in ms (default: the provider's).
    #[arg(long, value_name = "MS")]
    vad_silence_ms: Option<u32>,
    /// How eagerly semantic VAD ends a turn (default: the provider's).
    #[arg(long, value_parser = EAGERNESS)]
    vad_eagerness: Option<String>,
    /// Caller speech must last this long before the agent is cut off (default 0: at once).
    #[arg(long, value_name = "MS")]
    barge_in_min_ms: Option<u32>,
    /// Longest call in seconds (default 0: the switch's calls.max_duration).
    #[arg(long, value_name = "SECS")]
    max_duration_secs: Option<u32>,
    /// Re-prompt after this much silence, hang up after twice that (default 30; 0: off).
    #[arg(long, value_name = "SECS")]
    idle_timeout_secs: Option<u32>,
    /// Where the call goes when the model cannot be reached (default: answer 503).
    #[arg(long, value_name = "user:NAME|number:N|queue:NAME")]
    fallback: Option<String>,
    /// The caller transcription model (default gpt-4o-mini-transcribe for
    /// openai, "default" for gemini).
    #[arg(long, value_name = "MODEL", conflicts_with = "no_transcription")]
    transcription_model: Option<String>,
    /// Do not transcribe the caller.
    #[arg(long)]
    no_transcription: bool,
}

/// `update` flags that unset a stored value.
#[derive(Args)]
pub struct ClearOptions {
    /// Unset the greeting (the caller speaks first).
    #[arg(long, conflicts_with = "greeting")]
    clear_greeting: bool,
    /// Unset the fallback (answer 503 when the model cannot be reached).
    #[arg(long, conflicts_with = "fallback")]
    clear_fallback: bool,
    /// Use the provider's default model.
    #[arg(long, conflicts_with = "model")]
    clear_model: bool,
    /// Use the provider's default voice.
    #[arg(long, conflicts_with = "voice")]
    clear_voice: bool,
    /// Use the provider's default key variable (OPENAI_API_KEY or GEMINI_API_KEY).
    #[arg(long, conflicts_with = "api_key_env")]
    clear_api_key_env: bool,
    /// Use the provider's defaults for every VAD value (threshold, padding, silence, eagerness).
    #[arg(long, conflicts_with_all = ["vad_threshold", "vad_prefix_padding_ms", "vad_silence_ms", "vad_eagerness"])]
    clear_vad: bool,
}
pub async fn persona(store: &Store, cmd: PersonaCommand) -> Result<()> {
    match cmd {
        PersonaCommand::Add {
            name,
            opts,
            account,
        } => add(store, name, *opts, &account).await,
        PersonaCommand::Update {
            name,
            opts,
            account,
            clear,
        } => update(store, &name, *opts, account.as_deref(), clear).await,
        PersonaCommand::List => {
            let accounts = store.accounts().list().await?;
            for p in store.personas().list().await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    p.name,
                    p.provider,
                    p.model.as_deref().unwrap_or("default"),
                    p.voice.as_deref().unwrap_or("default"),
                    account_name(&accounts, &p.account_id),
                );
            }
            Ok(())
        }
        PersonaCommand::Show { name, json } => {
            let Some(p) = store.personas().get(&name).await? else {
                bail!("no persona {name}");
            };
            let accounts = store.accounts().list().await?;
            let account = account_name(&accounts, &p.account_id);
            if json {
                println!("{}", json_of(&p, account));
            } else {
                print!("{}", show_text(&p, account));
            }
            Ok(())
        }
        PersonaCommand::Mcp { cmd } => mcp::mcp(store, cmd).await,
        PersonaCommand::Remove { name } => match store.personas().remove(&name).await {
            Ok(true) => {
                println!("persona {name} removed");
                Ok(())
            }
            Ok(false) => bail!("no persona {name}"),
            Err(e @ StoreError::InUse { .. }) => {
                bail!("cannot remove persona {name}: {e}; remove or repoint those numbers first")
            }
            Err(e) => Err(e).with_context(|| format!("removing persona {name}")),
        },
    }
}

async fn add(store: &Store, name: String, opts: PersonaOptions, account: &str) -> Result<()> {
    if let Err(e) = dialtone_store::persona_check::check_persona_name(&name) {
        bail!("{e}");
    }
    let Checked {
        opts: o,
        instructions,
    } = check(opts)?;
    let Some(provider) = o.provider else {
        bail!("persona add needs --provider (openai or gemini)");
    };
    let Some(url) = o.url else {
        bail!("persona add needs --url (the realtime websocket URL, ws:// or wss://)");
    };
    let Some(instructions) = instructions else {
        bail!("persona add needs --instructions TEXT or --instructions-file FILE");
    };
    let transcription_model = if o.no_transcription {
        None
    } else {
        Some(
            o.transcription_model
                .unwrap_or_else(|| default_transcription_model(&provider).to_owned()),
        )
    };
    let account = ensure_account(store, account).await?;
    let p = store
        .personas()
        .create(NewPersona {
            account_id: account.id,
            name: name.clone(),
            provider,
            url,
            model: o.model,
            voice: o.voice,
            instructions,
            greeting: o.greeting,
            api_key_env: o.api_key_env,
            timezone: o.timezone.unwrap_or_else(|| DEFAULT_TIMEZONE.to_owned()),
            turn_detection: o
                .turn_detection
                .unwrap_or_else(|| DEFAULT_TURN_DETECTION.to_owned()),
            vad_threshold: o.vad_threshold,
            vad_prefix_padding_ms: o.vad_prefix_padding_ms,
            vad_silence_ms: o.vad_silence_ms,
            vad_eagerness: o.vad_eagerness,
            barge_in_min_ms: o.barge_in_min_ms.unwrap_or(0),
            max_duration_secs: o.max_duration_secs.unwrap_or(0),
            idle_timeout_secs: o.idle_timeout_secs.unwrap_or(DEFAULT_IDLE_TIMEOUT_SECS),
            fallback: o.fallback,
            transcription_model,
        })
        .await
        .with_context(|| format!("adding persona {name}"))?;
    println!(
        "persona {} added ({}, account {})",
        p.name, p.provider, account.name
    );
    Ok(())
}

async fn update(
    store: &Store,
    name: &str,
    opts: PersonaOptions,
    account: Option<&str>,
    clear: ClearOptions,
) -> Result<()> {
    let Checked {
        opts: o,
        instructions,
    } = check(opts)?;
    // A given value replaces; a --clear-… flag (or --no-transcription) unsets.
    let set_or_clear = |value: Option<String>, clear: bool| {
        if clear {
            Some(None)
        } else {
            value.map(Some)
        }
    };
    let account_id = match account {
        Some(a) => Some(ensure_account(store, a).await?.id),
        None => None,
    };
    let changes = PersonaUpdate {
        account_id,
        provider: o.provider,
        url: o.url,
        model: set_or_clear(o.model, clear.clear_model),
        voice: set_or_clear(o.voice, clear.clear_voice),
        instructions,
        greeting: set_or_clear(o.greeting, clear.clear_greeting),
        api_key_env: set_or_clear(o.api_key_env, clear.clear_api_key_env),
        timezone: o.timezone,
        turn_detection: o.turn_detection,
        vad_threshold: if clear.clear_vad {
            Some(None)
        } else {
            o.vad_threshold.map(Some)
        },
        vad_prefix_padding_ms: if clear.clear_vad {
            Some(None)
        } else {
            o.vad_prefix_padding_ms.map(Some)
        },
        vad_silence_ms: if clear.clear_vad {
            Some(None)
        } else {
            o.vad_silence_ms.map(Some)
        },
        vad_eagerness: set_or_clear(o.vad_eagerness, clear.clear_vad),
        barge_in_min_ms: o.barge_in_min_ms,
        max_duration_secs: o.max_duration_secs,
        idle_timeout_secs: o.idle_timeout_secs,
        fallback: set_or_clear(o.fallback, clear.clear_fallback),
        transcription_model: set_or_clear(o.transcription_model, o.no_transcription),
    };
    if changes.is_empty() {
        bail!("nothing to update: give at least one option (see `dialtone persona update --help`)");
    }
    match store.personas().update(name, changes).await {
        Ok(_) => {
            println!("persona {name} updated");
            Ok(())
        }
        Err(StoreError::NotFound { what }) if what.starts_with("persona") => {
            bail!("no persona {name}")
        }
        Err(e) => Err(e).with_context(|| format!("updating persona {name}")),
    }
}

async fn ensure_account(store: &Store, name: &str) -> Result<Account> {
    if name.is_empty() {
        bail!("--account must not be empty");
    }
    store
        .accounts()
        .ensure(name)
        .await
        .with_context(|| format!("account {name}"))
}

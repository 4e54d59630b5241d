//! `persona` subcommands: add, update, list, show and remove the AI agents
//! (personas) numbers can ring. This is where persona settings are checked —
//! provider, websocket URL, instructions, time zone, turn detection, VAD
//! values, fallback — since the store keeps them as given. No command ever
//! prints a provider key: only the name of the environment variable that
//! holds it, and whether that variable is set.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use dialtone_store::{Account, NewPersona, Persona, PersonaUpdate, Store, StoreError};

use super::valid_username;

const PROVIDERS: [&str; 2] = ["openai", "gemini"];
const TURN_DETECTION: [&str; 3] = ["server_vad", "semantic_vad", "none"];
const EAGERNESS: [&str; 4] = ["low", "medium", "high", "auto"];

/// Defaults of `persona add`.
const DEFAULT_TIMEZONE: &str = "UTC";
const DEFAULT_TURN_DETECTION: &str = "server_vad";
const DEFAULT_IDLE_TIMEOUT_SECS: u32 = 30;
const OPENAI_TRANSCRIPTION_MODEL: &str = "gpt-4o-mini-transcribe";
/// For Gemini any non-NULL transcription model just switches caller
/// transcription on.
const GEMINI_TRANSCRIPTION_MODEL: &str = "default";

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

/// [`PersonaOptions`] checked; `None` where the option was not given.
struct Checked {
    opts: PersonaOptions,
    instructions: Option<String>,
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
    if !valid_username(&name) {
        bail!("invalid persona name {name:?}: use 1 to 64 letters, digits and -_.!~*'()+");
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
        Some(o.transcription_model.unwrap_or_else(|| {
            if provider == "gemini" {
                GEMINI_TRANSCRIPTION_MODEL.to_owned()
            } else {
                OPENAI_TRANSCRIPTION_MODEL.to_owned()
            }
        }))
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

/// Checks every option given; reads the instructions file.
fn check(opts: PersonaOptions) -> Result<Checked> {
    if let Some(url) = &opts.url {
        check_url(url)?;
    }
    for (flag, value) in [
        ("--model", &opts.model),
        ("--voice", &opts.voice),
        ("--greeting", &opts.greeting),
        ("--transcription-model", &opts.transcription_model),
    ] {
        if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
            bail!("{flag} must not be empty (leave it out, or use its --clear-… / --no-… form)");
        }
    }
    if let Some(var) = &opts.api_key_env {
        // The value is not echoed: someone may have pasted the key itself.
        if !valid_env_name(var) {
            bail!(
                "--api-key-env takes the NAME of the environment variable that holds the key \
                 (letters, digits and _, not starting with a digit, e.g. OPENAI_API_KEY), \
                 not the key itself"
            );
        }
    }
    if let Some(zone) = &opts.timezone {
        jiff::tz::TimeZone::get(zone).map_err(|e| {
            anyhow::anyhow!(
                "--timezone {zone:?} is not a known IANA time zone such as UTC or \
                 Europe/Berlin ({e})"
            )
        })?;
    }
    if let Some(t) = opts.vad_threshold {
        if !(0.0..=1.0).contains(&t) {
            bail!("--vad-threshold {t} is out of range: use a value from 0.0 to 1.0");
        }
    }
    if let Some(f) = &opts.fallback {
        check_fallback(f)?;
    }
    let instructions = match (&opts.instructions, &opts.instructions_file) {
        (Some(text), _) => {
            if text.trim().is_empty() {
                bail!("--instructions must not be empty");
            }
            Some(text.clone())
        }
        (None, Some(path)) => Some(read_instructions(path)?),
        (None, None) => None,
    };
    Ok(Checked { opts, instructions })
}

fn check_url(url: &str) -> Result<()> {
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("wss://")
        .or_else(|| lower.strip_prefix("ws://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') => {}
        _ => bail!(
            "--url {url:?} is not a websocket URL: it must start with ws:// or wss:// and \
             name a host (e.g. wss://api.openai.com/v1/realtime)"
        ),
    }
    if url.chars().any(char::is_whitespace) {
        bail!("--url {url:?} must not contain whitespace");
    }
    Ok(())
}

fn check_fallback(fallback: &str) -> Result<()> {
    let ok = match fallback.split_once(':') {
        Some(("user" | "queue", name)) => valid_username(name),
        Some(("number", n)) => {
            let digits = n.strip_prefix('+').unwrap_or(n);
            !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
        }
        _ => false,
    };
    if !ok {
        bail!(
            "--fallback {fallback:?} is not valid: use user:NAME, number:N (digits, optionally \
             with a leading +) or queue:NAME"
        );
    }
    Ok(())
}

fn read_instructions(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--instructions-file {}: cannot read it", path.display()))?;
    if text.trim().is_empty() {
        bail!("--instructions-file {} is empty", path.display());
    }
    Ok(text)
}

/// A POSIX-style environment variable name.
fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn account_name<'a>(accounts: &'a [Account], id: &'a str) -> &'a str {
    accounts
        .iter()
        .find(|a| a.id == id)
        .map_or(id, |a| a.name.as_str())
}

/// The variable the switch reads the key from, and whether it is set here.
fn key_variable(p: &Persona) -> (String, bool) {
    let name = p.api_key_env.clone().unwrap_or_else(|| {
        if p.provider == "gemini" {
            "GEMINI_API_KEY".to_owned()
        } else {
            "OPENAI_API_KEY".to_owned()
        }
    });
    let set = std::env::var_os(&name).is_some_and(|v| !v.is_empty());
    (name, set)
}

fn time_of(unix_secs: i64) -> String {
    jiff::Timestamp::from_second(unix_secs)
        .map_or_else(|_| unix_secs.to_string(), |t| t.to_string())
}

fn show_text(p: &Persona, account: &str) -> String {
    let default = |v: &Option<String>| v.clone().unwrap_or_else(|| "default".to_owned());
    let default_num = |v: Option<u32>, unit: &str| {
        v.map_or_else(|| "default".to_owned(), |n| format!("{n} {unit}"))
    };
    let (key_var, key_set) = key_variable(p);
    let rows: Vec<(&str, String)> = vec![
        ("name", p.name.clone()),
        ("id", p.id.clone()),
        ("account", account.to_owned()),
        ("provider", p.provider.clone()),
        ("url", p.url.clone()),
        ("model", default(&p.model)),
        ("voice", default(&p.voice)),
        (
            "api_key_env",
            format!("{key_var} ({})", if key_set { "set" } else { "not set" }),
        ),
        ("timezone", p.timezone.clone()),
        ("turn_detection", p.turn_detection.clone()),
        (
            "vad_threshold",
            p.vad_threshold
                .map_or_else(|| "default".to_owned(), |t| t.to_string()),
        ),
        (
            "vad_prefix_padding",
            default_num(p.vad_prefix_padding_ms, "ms"),
        ),
        ("vad_silence", default_num(p.vad_silence_ms, "ms")),
        ("vad_eagerness", default(&p.vad_eagerness)),
        ("barge_in_min", format!("{} ms", p.barge_in_min_ms)),
        (
            "max_duration",
            match p.max_duration_secs {
                0 => "calls.max_duration (the switch's)".to_owned(),
                n => format!("{n} s"),
            },
        ),
        (
            "idle_timeout",
            match p.idle_timeout_secs {
                0 => "off".to_owned(),
                n => format!("{n} s"),
            },
        ),
        (
            "fallback",
            p.fallback
                .clone()
                .unwrap_or_else(|| "none (answer 503)".to_owned()),
        ),
        (
            "transcription",
            p.transcription_model
                .clone()
                .unwrap_or_else(|| "off".to_owned()),
        ),
        (
            "greeting",
            p.greeting.clone().unwrap_or_else(|| "none".to_owned()),
        ),
        ("created", time_of(p.created_at)),
        ("updated", time_of(p.updated_at)),
    ];
    let mut out = String::new();
    for (label, value) in rows {
        out.push_str(&format!("{:<20}{value}\n", format!("{label}:")));
    }
    out.push_str("instructions:\n");
    for line in p.instructions.lines() {
        out.push_str(&format!("    {line}\n"));
    }
    out
}

fn json_of(p: &Persona, account: &str) -> serde_json::Value {
    let (key_var, key_set) = key_variable(p);
    serde_json::json!({
        "id": p.id, "name": p.name, "account": account, "account_id": p.account_id,
        "provider": p.provider, "url": p.url, "model": p.model, "voice": p.voice,
        "instructions": p.instructions, "greeting": p.greeting,
        "api_key_env": key_var, "api_key_env_is_default": p.api_key_env.is_none(),
        "api_key_set": key_set,
        "timezone": p.timezone, "turn_detection": p.turn_detection,
        "vad_threshold": p.vad_threshold, "vad_prefix_padding_ms": p.vad_prefix_padding_ms,
        "vad_silence_ms": p.vad_silence_ms, "vad_eagerness": p.vad_eagerness,
        "barge_in_min_ms": p.barge_in_min_ms, "max_duration_secs": p.max_duration_secs,
        "idle_timeout_secs": p.idle_timeout_secs, "fallback": p.fallback,
        "transcription_model": p.transcription_model,
        "created_at": p.created_at, "updated_at": p.updated_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        for ok in [
            "ws://127.0.0.1:9000",
            "wss://api.openai.com/v1/realtime?x=1",
            "WSS://h",
        ] {
            assert!(check_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://h",
            "wss://",
            "wss:///path",
            "ws:/h",
            "h",
            "",
            "wss://a b",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fallbacks() {
        for ok in [
            "user:1001",
            "number:+15550100",
            "number:5550100",
            "queue:front-desk",
        ] {
            assert!(check_fallback(ok).is_ok(), "{ok}");
        }
        for bad in [
            "user:",
            "number:+",
            "number:12a",
            "queue:a b",
            "trunk:x",
            "1001",
            "",
        ] {
            assert!(check_fallback(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn env_names() {
        for ok in ["OPENAI_API_KEY", "_X", "k1"] {
            assert!(valid_env_name(ok), "{ok}");
        }
        for bad in ["", "1X", "sk-proj-abc", "A B", "A=B"] {
            assert!(!valid_env_name(bad), "{bad}");
        }
    }
}

//! Checks of the `persona add`/`update` options: what the store keeps as
//! given (URL, instructions, key variable name, time zone, VAD threshold,
//! fallback) must be valid before it is written.

use std::path::Path;

use anyhow::{bail, Context, Result};

use super::PersonaOptions;
use crate::cli::valid_username;

/// [`PersonaOptions`] checked; `None` where the option was not given.
pub(super) struct Checked {
    pub(super) opts: PersonaOptions,
    pub(super) instructions: Option<String>,
}

/// Checks every option given; reads the instructions file.
pub(super) fn check(opts: PersonaOptions) -> Result<Checked> {
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

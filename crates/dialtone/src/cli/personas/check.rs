//! Checks of the `persona add`/`update` options: what the store keeps as
//! given (URL, instructions, key variable name, time zone, VAD threshold,
//! fallback) must be valid before it is written. The rules are the store's
//! (`dialtone_store::persona_check`), shared with the management tools;
//! here each message gets its option's name.

use std::path::Path;

use anyhow::{bail, Context, Result};
use dialtone_store::persona_check as rules;

use super::PersonaOptions;

/// A rule's verdict on an option's value, the message led by the option.
fn flag(name: &str, verdict: Result<(), String>) -> Result<()> {
    verdict.map_err(|e| anyhow::anyhow!("{name} {e}"))
}

/// [`PersonaOptions`] checked; `None` where the option was not given.
pub(super) struct Checked {
    pub(super) opts: PersonaOptions,
    pub(super) instructions: Option<String>,
}

/// Checks every option given; reads the instructions file.
pub(super) fn check(opts: PersonaOptions) -> Result<Checked> {
    if let Some(url) = &opts.url {
        flag("--url", rules::check_persona_url(url))?;
    }
    for (name, value) in [
        ("--model", &opts.model),
        ("--voice", &opts.voice),
        ("--greeting", &opts.greeting),
        ("--transcription-model", &opts.transcription_model),
    ] {
        if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
            bail!("{name} must not be empty (leave it out, or use its --clear-… / --no-… form)");
        }
    }
    if let Some(var) = &opts.api_key_env {
        flag("--api-key-env", rules::check_api_key_env(var))?;
    }
    if let Some(zone) = &opts.timezone {
        flag("--timezone", rules::check_timezone(zone))?;
    }
    if let Some(t) = opts.vad_threshold {
        flag("--vad-threshold", rules::check_vad_threshold(t))?;
    }
    if let Some(f) = &opts.fallback {
        flag("--fallback", rules::check_fallback(f))?;
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

fn read_instructions(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--instructions-file {}: cannot read it", path.display()))?;
    if text.trim().is_empty() {
        bail!("--instructions-file {} is empty", path.display());
    }
    Ok(text)
}

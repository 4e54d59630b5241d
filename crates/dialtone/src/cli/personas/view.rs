//! How a persona is shown: `persona show` as text or JSON. Only the name
//! of the key's environment variable, and whether it is set, is ever shown.

use dialtone_store::{Account, Persona};

pub(super) fn account_name<'a>(accounts: &'a [Account], id: &'a str) -> &'a str {
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

pub(super) fn show_text(p: &Persona, account: &str) -> String {
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

pub(super) fn json_of(p: &Persona, account: &str) -> serde_json::Value {
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

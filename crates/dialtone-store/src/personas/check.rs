//! The rules for a persona's settings, shared by every front end that
//! writes one (the CLI's `persona add`/`update`, the management tools over
//! MCP and REST), so they refuse the same things with the same words. Each
//! check returns a message without the field's name; the caller puts its
//! own name for the field in front (`--url …` on the command line, `url …`
//! in a tool's answer). The defaults a new persona gets live here too.

/// The realtime providers.
pub const PROVIDERS: [&str; 2] = ["openai", "gemini"];
/// How the end of the caller's turn is detected.
pub const TURN_DETECTION: [&str; 3] = ["server_vad", "semantic_vad", "none"];
/// How eagerly semantic VAD ends a turn.
pub const EAGERNESS: [&str; 4] = ["low", "medium", "high", "auto"];

/// Defaults of a new persona.
pub const DEFAULT_TIMEZONE: &str = "UTC";
pub const DEFAULT_TURN_DETECTION: &str = "server_vad";
pub const DEFAULT_IDLE_TIMEOUT_SECS: u32 = 30;

/// The caller transcription model a new persona of `provider` gets. For
/// Gemini any value just switches caller transcription on.
pub fn default_transcription_model(provider: &str) -> &'static str {
    if provider == "gemini" {
        "default"
    } else {
        "gpt-4o-mini-transcribe"
    }
}

/// A persona's name: what numbers route to (`persona:NAME`), so an RFC 3261
/// user part of unreserved characters, safe in any URI.
pub fn check_persona_name(name: &str) -> Result<(), String> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(format!(
            "invalid persona name {name:?}: use 1 to 64 letters, digits and -_.!~*'()+"
        ))
    }
}

/// 1 to 64 unreserved characters (a user, queue or persona name).
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.!~*'()+".contains(c))
}

/// `value` is one of `allowed`.
pub fn check_one_of(value: &str, allowed: &[&str]) -> Result<(), String> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(format!("{value:?} is not one of {}", allowed.join(", ")))
    }
}

/// A realtime websocket URL: ws:// or wss:// with a host, no whitespace.
pub fn check_persona_url(url: &str) -> Result<(), String> {
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("wss://")
        .or_else(|| lower.strip_prefix("ws://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') => {}
        _ => {
            return Err(format!(
                "{url:?} is not a websocket URL: it must start with ws:// or wss:// and name a \
                 host (e.g. wss://api.openai.com/v1/realtime)"
            ))
        }
    }
    if url.chars().any(char::is_whitespace) {
        return Err(format!("{url:?} must not contain whitespace"));
    }
    Ok(())
}

/// Where a call goes when the model cannot be reached: `user:NAME`,
/// `number:N` or `queue:NAME`.
pub fn check_fallback(fallback: &str) -> Result<(), String> {
    let ok = match fallback.split_once(':') {
        Some(("user" | "queue", name)) => valid_name(name),
        Some(("number", n)) => {
            let digits = n.strip_prefix('+').unwrap_or(n);
            !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{fallback:?} is not valid: use user:NAME, number:N (digits, optionally with a \
             leading +) or queue:NAME"
        ))
    }
}

/// The NAME of the environment variable that holds the provider key. The
/// value is never echoed: someone may have pasted the key itself.
pub fn check_api_key_env(var: &str) -> Result<(), String> {
    let mut chars = var.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(
            "takes the NAME of the environment variable that holds the key (letters, digits \
             and _, not starting with a digit, e.g. OPENAI_API_KEY), not the key itself"
                .into(),
        )
    }
}

/// An IANA time zone name.
pub fn check_timezone(zone: &str) -> Result<(), String> {
    jiff::tz::TimeZone::get(zone).map(|_| ()).map_err(|e| {
        format!("{zone:?} is not a known IANA time zone such as UTC or Europe/Berlin ({e})")
    })
}

/// A VAD threshold, 0.0 to 1.0.
pub fn check_vad_threshold(t: f64) -> Result<(), String> {
    if (0.0..=1.0).contains(&t) {
        Ok(())
    } else {
        Err(format!("{t} is out of range: use a value from 0.0 to 1.0"))
    }
}

/// Text that must say something (instructions, a greeting, a model name).
pub fn check_not_blank(text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        for ok in [
            "ws://127.0.0.1:9000",
            "wss://api.openai.com/v1/realtime?x=1",
            "WSS://h",
        ] {
            assert!(check_persona_url(ok).is_ok(), "{ok}");
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
            assert!(check_persona_url(bad).is_err(), "{bad}");
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
            assert!(check_api_key_env(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1X", "sk-proj-abc", "A B", "A=B"] {
            // Refused without repeating what was given.
            let e = check_api_key_env(bad).unwrap_err();
            assert!(bad.is_empty() || !e.contains(bad), "{e}");
        }
    }

    #[test]
    fn names_zones_thresholds_and_choices() {
        assert!(check_persona_name("rec").is_ok());
        for bad in ["has space", "a/b", "", &"x".repeat(65)] {
            assert!(check_persona_name(bad).is_err(), "{bad}");
        }
        assert!(check_timezone("Europe/Berlin").is_ok());
        assert!(check_timezone("Nowhere/City").is_err());
        assert!(check_vad_threshold(0.5).is_ok() && check_vad_threshold(1.5).is_err());
        assert!(check_one_of("gemini", &PROVIDERS).is_ok());
        assert!(check_one_of("x", &PROVIDERS)
            .unwrap_err()
            .contains("openai, gemini"));
        assert!(check_not_blank(" \n").is_err());
    }
}

//! What an external MCP server must satisfy before it is stored: a name that
//! can prefix tool names, a transport with what it needs (an http(s) URL, or
//! a command line that splits into words), well-formed headers whose
//! `${NAME}` references are complete and that do not take a header the MCP
//! transports set themselves, tool names in the allow list, and a timeout in
//! range. Each error says what is wrong and what is allowed.

use std::collections::HashSet;

use super::{McpTransport, NewMcpServer};
use crate::persona_tools::{check_headers, parse_template, TemplatePart};

/// Bounds of one tool call's timeout, in milliseconds.
pub const MCP_TIMEOUT_MS_RANGE: (u32, u32) = (100, 120_000);

const MAX_NAME_LEN: usize = 32;
const MAX_TOOL_NAME_LEN: usize = 128;
const MAX_COMMAND_LEN: usize = 4096;

/// Headers the MCP transports set themselves (content negotiation, the
/// session, the protocol version, resumption).
const RESERVED_HEADERS: [&str; 7] = [
    "accept",
    "content-type",
    "content-length",
    "host",
    "mcp-session-id",
    "mcp-protocol-version",
    "last-event-id",
];

/// Why `name` cannot name a persona's MCP server: `^[a-z0-9_]{1,32}$`.
pub fn check_mcp_server_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !ok {
        return Err(format!(
            "invalid MCP server name {name:?}: use 1 to {MAX_NAME_LEN} lowercase letters, \
             digits and _"
        ));
    }
    Ok(())
}

/// Why `s` cannot be stored.
pub fn check_mcp_server(s: &NewMcpServer) -> Result<(), String> {
    check_mcp_server_name(&s.name)?;
    match s.transport {
        McpTransport::Http | McpTransport::Sse => {
            let Some(url) = &s.url else {
                return Err(format!(
                    "transport {} needs a URL (http:// or https://)",
                    s.transport.as_str()
                ));
            };
            check_url(url)?;
            if s.command.is_some() {
                return Err(format!(
                    "a command is for transport stdio, not {}",
                    s.transport.as_str()
                ));
            }
        }
        McpTransport::Stdio => {
            let Some(command) = &s.command else {
                return Err("transport stdio needs a command line".to_owned());
            };
            if command.len() > MAX_COMMAND_LEN {
                return Err(format!(
                    "the command line is longer than {MAX_COMMAND_LEN} bytes"
                ));
            }
            split_command(command)?;
            if s.url.is_some() {
                return Err("transport stdio takes a command, not a URL".to_owned());
            }
            if !s.headers.is_empty() {
                return Err(
                    "transport stdio sends no HTTP headers; the command inherits the \
                     switch's environment"
                        .to_owned(),
                );
            }
        }
    }
    check_headers(&s.headers)?;
    for (name, value) in &s.headers {
        let lower = name.to_ascii_lowercase();
        if RESERVED_HEADERS.contains(&lower.as_str()) {
            return Err(format!(
                "header {name:?} is set by the MCP transport itself and cannot be given"
            ));
        }
        parse_template(value).map_err(|e| format!("header {name:?}: {e}"))?;
    }
    let mut seen = HashSet::new();
    for tool in &s.allow {
        let ok = !tool.is_empty()
            && tool.len() <= MAX_TOOL_NAME_LEN
            && tool
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
        if !ok {
            return Err(format!(
                "invalid tool name {tool:?} in the allow list: use 1 to {MAX_TOOL_NAME_LEN} \
                 letters, digits, _, - and ."
            ));
        }
        if !seen.insert(tool.as_str()) {
            return Err(format!("tool {tool:?} is in the allow list twice"));
        }
    }
    let (min, max) = MCP_TIMEOUT_MS_RANGE;
    if !(min..=max).contains(&s.timeout_ms) {
        return Err(format!(
            "timeout {} ms is out of range ({min} to {max} ms)",
            s.timeout_ms
        ));
    }
    Ok(())
}

/// The environment variables a header value reads (`${NAME}`), in order.
pub fn header_env_names(value: &str) -> Vec<&str> {
    parse_template(value)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| match p {
            TemplatePart::Env(name) => Some(name),
            _ => None,
        })
        .collect()
}

/// http:// or https://, a host, no whitespace.
fn check_url(url: &str) -> Result<(), String> {
    let lower = url.to_ascii_lowercase();
    let Some(rest) = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
    else {
        return Err(format!("URL {url:?} must start with http:// or https://"));
    };
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("URL {url:?} must not contain spaces"));
    }
    if rest
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default()
        .is_empty()
    {
        return Err(format!("URL {url:?} has no host"));
    }
    Ok(())
}

/// A command line in words, as a POSIX shell splits it (without expanding
/// anything): blanks separate words, '…' keeps everything literal, "…"
/// keeps blanks and takes \" \\ \$ \` escapes, and a backslash outside
/// quotes escapes the next character. Err when a quote is not closed or
/// there is no word.
pub fn split_command(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("the command line has an unclosed ' quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e @ ('"' | '\\' | '$' | '`')) => word.push(e),
                            Some(other) => {
                                word.push('\\');
                                word.push(other);
                            }
                            None => return Err("the command line has an unclosed \" quote".into()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("the command line has an unclosed \" quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => word.push(c),
                    None => return Err("the command line ends with a lone backslash".into()),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    if words.is_empty() {
        return Err("the command line is empty".into());
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["crm", "cal_2", "a", "abcdefghijklmnopqrstuvwxyz012345"] {
            assert!(check_mcp_server_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "CRM",
            "crm-x",
            "crm x",
            "abcdefghijklmnopqrstuvwxyz0123456",
        ] {
            assert!(check_mcp_server_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn command_lines_split_like_a_shell() {
        let words = |s: &str| split_command(s).unwrap_or_default();
        assert_eq!(words("python3 server.py"), ["python3", "server.py"]);
        assert_eq!(
            words(r#"  npx -y '@acme/crm server'  --name "a \"b\" c" x\ y "#),
            [
                "npx",
                "-y",
                "@acme/crm server",
                "--name",
                "a \"b\" c",
                "x y"
            ]
        );
        assert_eq!(words("''"), [""]);
        assert_eq!(words(r#""a\nb""#), ["a\\nb"]);
        for bad in ["", "   ", "'open", "\"open", "tail\\"] {
            assert!(split_command(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn env_names_of_a_header() {
        assert_eq!(header_env_names("Bearer ${CRM_TOKEN}"), ["CRM_TOKEN"]);
        assert_eq!(header_env_names("${A}:${B} {x}"), ["A", "B"]);
        assert!(header_env_names("literal").is_empty());
    }
}

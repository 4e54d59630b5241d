//! What a persona tool must satisfy before it is stored: a name the model can
//! call that does not shadow a global tool, a description, a target for
//! transfers, and for API requests an http(s) URL with a literal host, a
//! known method, well-formed headers, and templates whose `{placeholders}`
//! are exactly the declared variables. Each error says what is wrong and what
//! is allowed.

use std::collections::HashSet;

use super::template::{is_identifier, parse_template, TemplatePart};
use super::{ApiRequest, PersonaToolKind, VariableKind, GLOBAL_TOOL_NAMES};

/// The HTTP methods an API-request tool may use.
pub const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// Bounds of an API request's timeout, in milliseconds.
pub const TIMEOUT_MS_RANGE: (u32, u32) = (100, 120_000);

const MAX_NAME_LEN: usize = 64;
const MAX_DESCRIPTION_LEN: usize = 1024;

/// Why `name` cannot be a tool name: it must match `^[a-zA-Z0-9_-]{1,64}$`
/// (what realtime models accept as a function name) and not be a global tool's.
pub fn check_tool_name(name: &str) -> Result<(), String> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if name.is_empty() || name.len() > MAX_NAME_LEN || !ok_chars {
        return Err(format!(
            "invalid tool name {name:?}: use 1 to {MAX_NAME_LEN} letters, digits, _ and -"
        ));
    }
    if GLOBAL_TOOL_NAMES.contains(&name) {
        return Err(format!(
            "tool name {name:?} is taken by a global tool ({})",
            GLOBAL_TOOL_NAMES.join(", ")
        ));
    }
    Ok(())
}

/// Why `description` cannot describe a tool.
pub fn check_description(description: &str) -> Result<(), String> {
    if description.trim().is_empty() {
        return Err("the tool description must not be empty".to_owned());
    }
    if description.chars().count() > MAX_DESCRIPTION_LEN {
        return Err(format!(
            "the tool description is longer than {MAX_DESCRIPTION_LEN} characters"
        ));
    }
    Ok(())
}

/// Why `kind` cannot be stored.
pub fn check_kind(kind: &PersonaToolKind) -> Result<(), String> {
    match kind {
        PersonaToolKind::TransferUser { user } => check_target("user", user),
        PersonaToolKind::TransferQueue { queue } => check_target("queue", queue),
        PersonaToolKind::ApiRequest(request) => check_api_request(request),
    }
}

fn check_target(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "the {what} to transfer to must be a name without spaces, not {name:?}"
        ));
    }
    Ok(())
}

fn check_api_request(r: &ApiRequest) -> Result<(), String> {
    if !METHODS.contains(&r.method.as_str()) {
        return Err(format!(
            "unknown method {:?} (expected one of {})",
            r.method,
            METHODS.join(", ")
        ));
    }
    check_url(&r.url)?;
    let (min, max) = TIMEOUT_MS_RANGE;
    if !(min..=max).contains(&r.timeout_ms) {
        return Err(format!(
            "timeout {} ms is out of range ({min} to {max} ms)",
            r.timeout_ms
        ));
    }
    check_headers(&r.headers)?;
    if r.body.is_some() && r.method == "GET" {
        return Err("a GET request has no body: put the values in the URL, or use POST".into());
    }
    check_variables(r)
}

/// Header names are HTTP tokens, each given once; values are one line.
pub(crate) fn check_headers(headers: &[(String, String)]) -> Result<(), String> {
    let mut seen_headers = HashSet::new();
    for (name, value) in headers {
        let token = name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if name.is_empty() || !token {
            return Err(format!(
                "invalid header name {name:?}: use letters, digits and !#$%&'*+-.^_`|~"
            ));
        }
        if !seen_headers.insert(name.to_ascii_lowercase()) {
            return Err(format!("header {name:?} is given twice"));
        }
        if value.contains(['\r', '\n']) {
            return Err(format!("header {name:?}: the value must be one line"));
        }
    }
    Ok(())
}

/// http:// or https://, a host written out, no whitespace.
fn check_url(url: &str) -> Result<(), String> {
    let lower = url.to_ascii_lowercase();
    let Some(rest) = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
    else {
        return Err(format!("URL {url:?} must start with http:// or https://"));
    };
    if url.chars().any(char::is_whitespace) {
        return Err(format!("URL {url:?} must not contain spaces"));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() {
        return Err(format!("URL {url:?} has no host"));
    }
    // The model fills variables: it must never choose where the request goes.
    if authority.contains(['{', '}', '$']) {
        return Err(format!(
            "URL {url:?}: the host must be written out; {{variables}} and ${{ENV}} \
             may only appear in the path and query"
        ));
    }
    Ok(())
}

/// Variable names are identifiers, unique; options are non-empty and unique;
/// every `{placeholder}` is declared and every variable is used.
fn check_variables(r: &ApiRequest) -> Result<(), String> {
    let mut declared = HashSet::new();
    for v in &r.variables {
        if !is_identifier(&v.name) || v.name.len() > MAX_NAME_LEN {
            return Err(format!(
                "invalid variable name {:?}: a letter or _, then letters, digits and _ \
                 (at most {MAX_NAME_LEN})",
                v.name
            ));
        }
        if !declared.insert(v.name.as_str()) {
            return Err(format!("variable {:?} is declared twice", v.name));
        }
        if let VariableKind::Options(options) = &v.kind {
            if options.is_empty() {
                return Err(format!("variable {:?} needs at least one option", v.name));
            }
            let mut seen = HashSet::new();
            for o in options {
                if o.trim().is_empty() {
                    return Err(format!("variable {:?} has an empty option", v.name));
                }
                if !seen.insert(o.as_str()) {
                    return Err(format!(
                        "variable {:?}: option {o:?} is given twice",
                        v.name
                    ));
                }
            }
        }
    }
    let mut used = HashSet::new();
    let mut templates: Vec<(String, &str)> = vec![("the URL".to_owned(), r.url.as_str())];
    for (name, value) in &r.headers {
        templates.push((format!("header {name:?}"), value.as_str()));
    }
    if let Some(body) = &r.body {
        templates.push(("the body".to_owned(), body.as_str()));
    }
    for (place, template) in &templates {
        let parts = parse_template(template).map_err(|e| format!("{place}: {e}"))?;
        for part in parts {
            if let TemplatePart::Variable(name) = part {
                if !declared.contains(name) {
                    return Err(format!(
                        "{place} uses {{{name}}}, which is not a declared variable \
                         (declare it as a variable, or write ${{{name}}} for an \
                         environment variable)"
                    ));
                }
                used.insert(name);
            }
        }
    }
    if let Some(unused) = r.variables.iter().find(|v| !used.contains(v.name.as_str())) {
        return Err(format!(
            "variable {:?} is declared but not used: put {{{}}} in the URL, a header or the body",
            unused.name, unused.name
        ));
    }
    Ok(())
}

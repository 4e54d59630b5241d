//! DNS-rebinding protection for the doors rmcp does not serve itself (the
//! legacy SSE transport): the `Host` and `Origin` checks rmcp's Streamable
//! HTTP service applies, with the same `[mcp]` lists and the same rules, so
//! both doors accept and refuse alike. rmcp keeps its checks private, hence
//! this copy of their semantics:
//!
//! - `Host` (or the URI's authority when there is no Host header) must
//!   match an allowed entry: `name` matches any port, `name:port` that port
//!   only; IPv6 brackets and case do not matter; an empty list allows any.
//! - `Origin`, when sent, must match an allowed entry
//!   (`scheme://host[:port|:*]`, or `null`); an empty list refuses every
//!   Origin (as `enforce_origin_validation` does on `/mcp`).

use axum::http::uri::Authority;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::transport::McpConfig;

#[derive(Debug, PartialEq, Eq)]
struct HostPort {
    host: String,
    port: Option<u16>,
}

fn normalize(host: &str) -> String {
    host.trim_matches(['[', ']']).to_ascii_lowercase()
}

fn host_port(a: &Authority) -> HostPort {
    HostPort {
        host: normalize(a.host()),
        port: a.port_u16(),
    }
}

fn allowed_host(entry: &str) -> Option<HostPort> {
    let entry = entry.trim();
    if entry.is_empty() {
        return None;
    }
    Some(match Authority::try_from(entry) {
        Ok(a) => host_port(&a),
        Err(_) => HostPort {
            host: normalize(entry),
            port: None,
        },
    })
}

fn host_allowed(host: &HostPort, allowed: &[String]) -> bool {
    allowed.is_empty()
        || allowed
            .iter()
            .filter_map(|e| allowed_host(e))
            .any(|a| a.host == host.host && a.port.is_none_or(|p| host.port == Some(p)))
}

#[derive(Debug, PartialEq, Eq)]
enum Origin {
    Null,
    Tuple {
        scheme: String,
        host: String,
        port: Option<u16>,
    },
}

fn parse_origin(value: &str) -> Option<Origin> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("null") {
        return Some(Origin::Null);
    }
    let uri = Uri::try_from(value).ok()?;
    let authority = uri.authority()?;
    Some(Origin::Tuple {
        scheme: uri.scheme_str()?.to_ascii_lowercase(),
        host: normalize(authority.host()),
        port: authority.port_u16(),
    })
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// Whether `origin` matches the allowed entry `entry`. An entry without a
/// port matches any port (rmcp's rule, for now), `:*` any port, and an
/// explicit port that port, the scheme's default standing for an absent one.
fn origin_matches(origin: &Origin, entry: &str) -> bool {
    let entry = entry.trim();
    let (base, any_port) = match entry.strip_suffix(":*") {
        Some(base) => (base, true),
        None => (entry, false),
    };
    match (parse_origin(base), origin) {
        (Some(Origin::Null), Origin::Null) => !any_port,
        (
            Some(Origin::Tuple {
                scheme: a_scheme,
                host: a_host,
                port: a_port,
            }),
            Origin::Tuple { scheme, host, port },
        ) => {
            if any_port && a_port.is_some() {
                return false;
            }
            let port_ok = match a_port {
                None => true,
                Some(p) => port.or_else(|| default_port(scheme)) == Some(p),
            };
            a_scheme == *scheme && a_host == *host && port_ok
        }
        _ => false,
    }
}

fn forbidden(message: &'static str) -> Response {
    (StatusCode::FORBIDDEN, message).into_response()
}

/// Ok, or the 400/403 answer for a request whose Host or Origin is not
/// allowed by `cfg`.
#[allow(clippy::result_large_err)]
pub(crate) fn check(uri: &Uri, headers: &HeaderMap, cfg: &McpConfig) -> Result<(), Response> {
    let host = match headers.get(axum::http::header::HOST) {
        Some(v) => {
            let a = v
                .to_str()
                .ok()
                .and_then(|s| Authority::try_from(s).ok())
                .ok_or_else(|| {
                    (StatusCode::BAD_REQUEST, "Bad Request: Invalid Host header").into_response()
                })?;
            host_port(&a)
        }
        None => match uri.authority() {
            Some(a) => host_port(a),
            None => {
                return Err(
                    (StatusCode::BAD_REQUEST, "Bad Request: missing Host header").into_response(),
                )
            }
        },
    };
    if !host_allowed(&host, &cfg.allowed_hosts) {
        tracing::warn!(host = ?host, "refused MCP request: Host not allowed (DNS rebinding?)");
        return Err(forbidden("Forbidden: Host header is not allowed"));
    }
    let Some(origin) = headers.get(axum::http::header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin
        .to_str()
        .ok()
        .and_then(parse_origin)
        .ok_or_else(|| forbidden("Forbidden: Invalid Origin header"))?;
    if !cfg
        .allowed_origins
        .iter()
        .any(|e| origin_matches(&origin, e))
    {
        tracing::warn!(origin = ?origin, "refused MCP request: Origin not allowed");
        return Err(forbidden("Forbidden: Origin header is not allowed"));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn cfg(hosts: &[&str], origins: &[&str]) -> McpConfig {
        McpConfig {
            allowed_hosts: hosts.iter().map(|s| s.to_string()).collect(),
            allowed_origins: origins.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn status(cfg: &McpConfig, host: Option<&str>, origin: Option<&str>) -> u16 {
        let mut h = HeaderMap::new();
        if let Some(v) = host {
            h.insert("host", HeaderValue::from_str(v).unwrap());
        }
        if let Some(v) = origin {
            h.insert("origin", HeaderValue::from_str(v).unwrap());
        }
        match check(&Uri::from_static("/sse"), &h, cfg) {
            Ok(()) => 200,
            Err(r) => r.status().as_u16(),
        }
    }

    #[test]
    fn hosts_match_by_name_and_optionally_port() {
        let c = McpConfig::default();
        assert_eq!(status(&c, Some("127.0.0.1:8080"), None), 200);
        assert_eq!(status(&c, Some("LOCALHOST"), None), 200);
        assert_eq!(status(&c, Some("[::1]:9"), None), 200);
        assert_eq!(status(&c, Some("evil.example"), None), 403);
        assert_eq!(status(&c, None, None), 400);
        assert_eq!(status(&c, Some("bad host"), None), 400);
        let c = cfg(&["mcp.example:8443"], &[]);
        assert_eq!(status(&c, Some("mcp.example:8443"), None), 200);
        assert_eq!(status(&c, Some("mcp.example:80"), None), 403);
        assert_eq!(status(&c, Some("mcp.example"), None), 403);
        assert_eq!(status(&cfg(&[], &[]), Some("anything"), None), 200);
    }

    #[test]
    fn origins_are_refused_unless_listed() {
        let c = McpConfig::default();
        assert_eq!(
            status(&c, Some("localhost"), Some("http://evil.example")),
            403
        );
        assert_eq!(status(&c, Some("localhost"), Some("not an origin")), 403);
        let c = cfg(
            &["localhost"],
            &["http://app.example:*", "https://x.example:8443", "null"],
        );
        assert_eq!(
            status(&c, Some("localhost"), Some("http://app.example:3000")),
            200
        );
        assert_eq!(
            status(&c, Some("localhost"), Some("http://app.example")),
            200
        );
        assert_eq!(
            status(&c, Some("localhost"), Some("https://app.example")),
            403
        );
        assert_eq!(
            status(&c, Some("localhost"), Some("https://x.example:8443")),
            200
        );
        assert_eq!(
            status(&c, Some("localhost"), Some("https://x.example")),
            403
        );
        assert_eq!(status(&c, Some("localhost"), Some("null")), 200);
        let c = cfg(&["localhost"], &["https://y.example:443"]);
        assert_eq!(
            status(&c, Some("localhost"), Some("https://y.example")),
            200
        );
        let c = cfg(&["localhost"], &["http://portless.example"]);
        assert_eq!(
            status(&c, Some("localhost"), Some("http://portless.example:81")),
            200
        );
    }
}

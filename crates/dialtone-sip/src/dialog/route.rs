//! Route sets: splitting comma-separated name-addr lists (Record-Route,
//! Route, Contact) and choosing a request's Request-URI and Route headers
//! for loose and strict routers (RFC 3261 §12.2.1.1, §16.12.1).

use rsip::Uri;

/// Splits a header value list on commas outside quotes and angle brackets.
pub fn split_list(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut quoted = false;
    let mut angle = false;
    let mut start = 0;
    let bytes = value.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quoted => i += 1,
            b'"' => quoted = !quoted,
            b'<' if !quoted => angle = true,
            b'>' if !quoted => angle = false,
            b',' if !quoted && !angle => {
                out.push(value[start..i].trim().to_string());
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    let last = value[start..].trim();
    if !last.is_empty() {
        out.push(last.to_string());
    }
    out
}

/// The URI inside a name-addr (`"A" <sip:a@b;lr>;p=1`) or addr-spec.
pub fn uri_of(entry: &str) -> Option<Uri> {
    crate::message::NameAddr::parse(entry).ok().map(|n| n.uri)
}

fn is_loose(entry: &str) -> bool {
    uri_of(entry)
        .map(|u| u.params.iter().any(|p| matches!(p, rsip::Param::Lr)))
        .unwrap_or(true)
}

/// The Request-URI and Route values for a request to `target` through
/// `route_set`: a loose first hop keeps the target as the Request-URI; a
/// strict one takes the Request-URI and the target goes last in Route.
pub fn request_target(target: &Uri, route_set: &[String]) -> (Uri, Vec<String>) {
    match route_set.first() {
        None => (target.clone(), Vec::new()),
        Some(first) if is_loose(first) => (target.clone(), route_set.to_vec()),
        Some(first) => {
            let uri = uri_of(first).unwrap_or_else(|| target.clone());
            let mut rest: Vec<String> = route_set[1..].to_vec();
            rest.push(format!("<{}>", crate::message::uri::format_uri(target)));
            (uri, rest)
        }
    }
}

//! Reading an SDP body into [`Sdp`]. Lines are `<letter>=<value>`; the
//! session section runs up to the first m=, each media section up to the next.
//! We check what the rest of dialtone relies on (v=0 first, one o= and one s=,
//! the fields and numbers of o= c= m=, a single c= per level) and keep every
//! other line verbatim, so that relaying an SDP never silently drops content.

use super::{Attribute, Connection, Media, Origin, Sdp, SdpError};

/// Longest piece of an offending line quoted back in an error: enough to
/// recognise it in a log, not enough to flood one.
const QUOTE_MAX: usize = 80;

/// One non-blank line, split into its type letter and value.
struct Line<'a> {
    no: usize,
    text: &'a str,
    kind: char,
    value: &'a str,
}

impl Line<'_> {
    fn error(&self, problem: impl Into<String>) -> SdpError {
        SdpError::Line {
            line: self.no,
            text: quote(self.text),
            problem: problem.into(),
        }
    }
}

fn quote(text: &str) -> String {
    if text.chars().count() <= QUOTE_MAX {
        return text.to_string();
    }
    let mut s: String = text.chars().take(QUOTE_MAX).collect();
    s.push('…');
    s
}

pub(super) fn parse(bytes: &[u8]) -> Result<Sdp, SdpError> {
    // Non-UTF-8 is legal only in free text under a=charset; lossy decoding
    // keeps the structure intact and we never interpret that text.
    let text = String::from_utf8_lossy(bytes);
    let mut lines = text.split('\n').enumerate().filter_map(|(i, raw)| {
        // CRLF or bare LF; trailing blanks are a common sloppiness.
        let t = raw.trim_end_matches([' ', '\t', '\r']);
        (!t.is_empty()).then(|| split_line(i + 1, t))
    });

    let first = lines.next().ok_or(SdpError::Empty)??;
    if first.kind != 'v' {
        return Err(first.error("an SDP body must start with v=0"));
    }
    match number::<u32>(first.value) {
        Some(0) => {}
        _ => return Err(first.error("unsupported SDP version (only v=0 exists)")),
    }

    let mut origin = None;
    let mut session_name = None;
    let mut connection = None;
    let mut attributes = Vec::new();
    let mut other = Vec::new();
    let mut media: Vec<Media> = Vec::new();
    for line in lines {
        let line = line?;
        if line.kind == 'm' {
            media.push(parse_media(&line)?);
            continue;
        }
        if let Some(m) = media.last_mut() {
            match line.kind {
                'c' if m.connection.is_some() => {
                    return Err(line.error("second c= line in this media section"))
                }
                'c' => m.connection = Some(parse_connection(&line)?),
                'a' => m.attributes.push(parse_attribute(&line)?),
                'v' | 'o' | 's' => {
                    return Err(line.error(format!(
                        "{}= is a session-level line but comes after an m= line",
                        line.kind
                    )))
                }
                k => m.other.push((k, line.value.to_string())),
            }
            continue;
        }
        match line.kind {
            'v' => return Err(line.error("second v= line")),
            'o' if origin.is_some() => return Err(line.error("second o= line")),
            'o' => origin = Some(parse_origin(&line)?),
            's' if session_name.is_some() => return Err(line.error("second s= line")),
            's' => session_name = Some(line.value.to_string()),
            'c' if connection.is_some() => return Err(line.error("second session-level c= line")),
            'c' => connection = Some(parse_connection(&line)?),
            'a' => attributes.push(parse_attribute(&line)?),
            k => other.push((k, line.value.to_string())),
        }
    }

    Ok(Sdp {
        version: 0,
        origin: origin.ok_or(SdpError::Missing("o= (origin)"))?,
        session_name: session_name.ok_or(SdpError::Missing("s= (session name)"))?,
        connection,
        attributes,
        media,
        other,
    })
}

fn split_line(no: usize, text: &str) -> Result<Line<'_>, SdpError> {
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(kind), Some('=')) if kind.is_ascii_alphabetic() => Ok(Line {
            no,
            text,
            kind,
            value: chars.as_str(),
        }),
        _ => Err(SdpError::Line {
            line: no,
            text: quote(text),
            problem: "not an SDP line: expected a type letter, '=' and a value".to_string(),
        }),
    }
}

/// A decimal number made of digits only: `str::parse` would also take a
/// leading `+`, which the SDP grammar does not allow.
pub(super) fn number<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `o=<username> <sess-id> <sess-version> <nettype> <addrtype> <address>`
fn parse_origin(line: &Line) -> Result<Origin, SdpError> {
    let f: Vec<&str> = line.value.split_whitespace().collect();
    let [username, session_id, version, net_type, addr_type, address] = f[..] else {
        return Err(line.error(format!(
            "o= needs 6 fields (username, session id, session version, network type, \
             address type, address) but has {}",
            f.len()
        )));
    };
    let session_version = number(version).ok_or_else(|| {
        line.error(format!(
            "o= session version {version:?} is not a number (0 to 2^64-1)"
        ))
    })?;
    Ok(Origin {
        username: username.to_string(),
        session_id: session_id.to_string(),
        session_version,
        net_type: net_type.to_string(),
        addr_type: addr_type.to_string(),
        address: address.to_string(),
    })
}

/// `c=<nettype> <addrtype> <connection-address>`
fn parse_connection(line: &Line) -> Result<Connection, SdpError> {
    let f: Vec<&str> = line.value.split_whitespace().collect();
    let [net_type, addr_type, address] = f[..] else {
        return Err(line.error(format!(
            "c= needs 3 fields (network type, address type, address) but has {}",
            f.len()
        )));
    };
    Ok(Connection {
        net_type: net_type.to_string(),
        addr_type: addr_type.to_string(),
        address: address.to_string(),
    })
}

/// `m=<media> <port>[/<number of ports>] <proto> <fmt> ...`
fn parse_media(line: &Line) -> Result<Media, SdpError> {
    let mut f = line.value.split_whitespace();
    let (Some(kind), Some(port_field), Some(proto)) = (f.next(), f.next(), f.next()) else {
        return Err(
            line.error("m= needs a media type, a port and a transport protocol, then formats")
        );
    };
    let (port, count) = match port_field.split_once('/') {
        Some((p, c)) => (p, Some(c)),
        None => (port_field, None),
    };
    let port = number(port).ok_or_else(|| {
        line.error(format!(
            "m= port {port_field:?} is not a number from 0 to 65535"
        ))
    })?;
    let port_count = match count {
        Some(c) => Some(number(c).ok_or_else(|| {
            line.error(format!(
                "m= port count {c:?} is not a number from 0 to 65535"
            ))
        })?),
        None => None,
    };
    Ok(Media {
        kind: kind.to_string(),
        port,
        port_count,
        proto: proto.to_string(),
        // RFC 8866 wants at least one format; a stream without any is
        // useless but harmless, and rejecting the whole body for it is not.
        formats: f.map(str::to_string).collect(),
        connection: None,
        attributes: Vec::new(),
        other: Vec::new(),
    })
}

/// `a=<name>` or `a=<name>:<value>`
fn parse_attribute(line: &Line) -> Result<Attribute, SdpError> {
    let (name, value) = match line.value.split_once(':') {
        Some((n, v)) => (n, Some(v.to_string())),
        None => (line.value, None),
    };
    let name = name.trim();
    if name.is_empty() {
        return Err(line.error("a= line has no attribute name"));
    }
    Ok(Attribute {
        name: name.to_string(),
        value,
    })
}

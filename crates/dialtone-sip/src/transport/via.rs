//! Via handling at the transport boundary: stamping `received` and `rport`
//! on a request's top Via (RFC 3261 §18.2.1, RFC 3581 §4), and choosing
//! where a response goes from the top Via (§18.2.2, RFC 3581 §5).

use std::net::{IpAddr, SocketAddr};

use rsip::headers::UntypedHeader;
use rsip::{Header, Request};

use super::{Peer, Protocol};

/// Adds `received=<source ip>` when the sent-by host differs from it (always
/// when `rport` was asked for), and fills an empty `rport` with the source port.
pub fn stamp(req: &mut Request, from: &Peer) {
    let Some(Header::Via(via)) = req.headers.iter_mut().find(|h| matches!(h, Header::Via(_)))
    else {
        return;
    };
    if let Some(new) = stamped(via.value(), from.addr) {
        *via = rsip::headers::Via::new(new);
    }
}

/// Returns the new Via value, or None when nothing changes.
fn stamped(value: &str, src: SocketAddr) -> Option<String> {
    // Only the first Via of a comma-separated list is ours to stamp.
    let (first, rest) = split_first_via(value);
    let mut parts = first.split(';');
    let sent = parts.next()?.trim();
    let params: Vec<&str> = parts.map(str::trim).collect();
    let wants_rport = params
        .iter()
        .any(|p| p.eq_ignore_ascii_case("rport") || p.to_ascii_lowercase().starts_with("rport="));
    let differs = sent_by_ip(sent).is_none_or(|ip| ip != src.ip());
    if !wants_rport && !differs {
        return None;
    }
    let mut out = String::from(sent);
    let mut have_received = false;
    for p in &params {
        let lower = p.to_ascii_lowercase();
        if lower == "rport" || lower.starts_with("rport=") {
            out.push_str(&format!(";rport={}", src.port()));
        } else if lower.starts_with("received=") {
            have_received = true;
            out.push_str(&format!(";received={}", src.ip()));
        } else {
            out.push(';');
            out.push_str(p);
        }
    }
    if !have_received && (differs || wants_rport) {
        out.push_str(&format!(";received={}", src.ip()));
    }
    if let Some(rest) = rest {
        out.push(',');
        out.push_str(rest);
    }
    Some(out)
}

/// The sent-by host of `sent` (`SIP/2.0/UDP host:port`) when it is an IP
/// address, read without parsing the rest of the Via.
fn sent_by_ip(sent: &str) -> Option<IpAddr> {
    match split_sent(sent)?.1.host {
        rsip::Host::IpAddr(ip) => Some(ip),
        rsip::Host::Domain(_) => None,
    }
}

/// `SIP/2.0/UDP host:port` split into its protocol part and its sent-by.
fn split_sent(sent: &str) -> Option<(&str, rsip::HostWithPort)> {
    let (proto, hostport) = sent.rsplit_once(|c: char| c.is_ascii_whitespace())?;
    let hp = crate::message::uri::parse_hostport(hostport.trim()).ok()?;
    Some((proto, hp))
}

/// The parameters of one Via (what follows its sent-by), as written:
/// names not yet lower-cased.
fn via_params(params: std::str::Split<'_, char>) -> impl Iterator<Item = (&str, Option<&str>)> {
    params
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (p, None),
        })
}

/// The `branch` of the top Via in `headers`, read without parsing the rest
/// (what a To tag is derived from; [`ViaValue`] for everything else).
pub(crate) fn top_branch(headers: &rsip::Headers) -> Option<&str> {
    let value = headers.iter().find_map(|h| match h {
        Header::Via(v) => Some(v.value()),
        _ => None,
    })?;
    let mut parts = split_first_via(value).0.split(';');
    parts.next();
    via_params(parts)
        .find_map(|(name, value)| name.eq_ignore_ascii_case("branch").then_some(value)?)
}

fn split_first_via(value: &str) -> (&str, Option<&str>) {
    // Via params never contain quoted commas in practice except in
    // extension params; respect quotes anyway.
    let mut quoted = false;
    for (i, c) in value.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => return (&value[..i], Some(&value[i + 1..])),
            _ => {}
        }
    }
    (value, None)
}

/// The parts of a Via value dialtone reads (rsip's typed Via cannot parse
/// IPv6 sent-by, so this is our own): `SIP/2.0/UDP host:port;params`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViaValue {
    pub protocol: String,
    /// The host without IPv6 brackets.
    pub host: String,
    pub port: Option<u16>,
    pub params: Vec<(String, Option<String>)>,
}

impl ViaValue {
    /// Parses the first Via of a (possibly comma-separated) value.
    pub fn parse(value: &str) -> Option<ViaValue> {
        let (first, _) = split_first_via(value);
        let mut parts = first.split(';');
        let sent = parts.next()?.trim();
        let (proto, hp) = split_sent(sent)?;
        let protocol = proto.trim().rsplit('/').next()?.trim().to_ascii_uppercase();
        let host = match &hp.host {
            rsip::Host::IpAddr(ip) => ip.to_string(),
            rsip::Host::Domain(d) => d.to_string(),
        };
        let params = via_params(parts)
            .map(|(n, v)| (n.to_ascii_lowercase(), v.map(str::to_string)))
            .collect();
        Some(ViaValue {
            protocol,
            host,
            port: hp.port.map(|p| *p.value()),
            params,
        })
    }

    /// The top Via of a message's headers.
    pub fn top(headers: &rsip::Headers) -> Option<ViaValue> {
        headers.iter().find_map(|h| match h {
            Header::Via(v) => ViaValue::parse(v.value()),
            _ => None,
        })
    }

    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_deref())
    }

    pub fn branch(&self) -> Option<&str> {
        self.param("branch").flatten()
    }

    /// `host:port` as written for matching (§17.2.3 compares sent-by).
    pub fn sent_by(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.port {
            Some(p) => format!("{host}:{p}"),
            None => host,
        }
    }
}

/// Where a response to `req` (which arrived from `from`) must be sent.
/// Reliable transports answer on the same connection; UDP answers to
/// `received` and `rport` when present, else to the sent-by port.
pub fn response_target(req: &Request, from: &Peer) -> Peer {
    if from.protocol.is_reliable() {
        return *from;
    }
    let Some(via) = ViaValue::top(&req.headers) else {
        return *from;
    };
    if via.param("rport").is_some() {
        return *from;
    }
    let ip = via
        .param("received")
        .flatten()
        .and_then(|r| {
            r.trim_matches(|c| c == '[' || c == ']')
                .parse::<IpAddr>()
                .ok()
        })
        .unwrap_or(from.addr.ip());
    Peer::new(Protocol::Udp, SocketAddr::new(ip, via.port.unwrap_or(5060)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src() -> SocketAddr {
        "192.0.2.7:40000".parse().unwrap_or_else(|_| unreachable!())
    }

    #[test]
    fn rport_filled_and_received_added() {
        let v = stamped("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport", src());
        assert_eq!(
            v.as_deref(),
            Some("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport=40000;received=192.0.2.7")
        );
    }

    #[test]
    fn same_host_without_rport_is_untouched() {
        assert_eq!(
            stamped("SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK1", src()),
            None
        );
    }

    #[test]
    fn same_ipv6_host_without_rport_is_untouched() {
        let src: SocketAddr = "[2001:db8::7]:40000"
            .parse()
            .unwrap_or_else(|_| unreachable!());
        assert_eq!(
            stamped("SIP/2.0/UDP [2001:db8:0::7]:5060;branch=z9hG4bK1", src),
            None
        );
    }

    #[test]
    fn the_top_branch_is_read_from_the_first_via_only() {
        let mut headers = rsip::Headers::default();
        headers.push(Header::Via(rsip::headers::Via::new(
            "SIP/2.0/UDP 10.0.0.1:5060 ; rport ; BRANCH = z9hG4bKa, SIP/2.0/UDP h2;branch=z9hG4bKb",
        )));
        headers.push(Header::Via(rsip::headers::Via::new(
            "SIP/2.0/UDP h3;branch=z9hG4bKc",
        )));
        assert_eq!(top_branch(&headers), Some("z9hG4bKa"));
        assert_eq!(
            ViaValue::top(&headers)
                .and_then(|v| v.branch().map(str::to_string))
                .as_deref(),
            Some("z9hG4bKa")
        );
        let mut none = rsip::Headers::default();
        none.push(Header::Via(rsip::headers::Via::new("SIP/2.0/UDP h1;rport")));
        assert_eq!(top_branch(&none), None);
        assert_eq!(top_branch(&rsip::Headers::default()), None);
    }

    #[test]
    fn hostname_gets_received() {
        let v = stamped("SIP/2.0/UDP pc33.example.com;branch=z9hG4bK1", src());
        assert_eq!(
            v.as_deref(),
            Some("SIP/2.0/UDP pc33.example.com;branch=z9hG4bK1;received=192.0.2.7")
        );
    }

    #[test]
    fn only_first_via_of_a_list() {
        let v = stamped("SIP/2.0/UDP h1;rport, SIP/2.0/UDP h2;rport", src());
        assert_eq!(
            v.as_deref(),
            Some("SIP/2.0/UDP h1;rport=40000;received=192.0.2.7, SIP/2.0/UDP h2;rport")
        );
    }

    #[test]
    fn ipv6_sent_by() {
        let v = ViaValue::parse("SIP/2.0/UDP [::1]:18948;branch=z9hG4bK1;rport")
            .unwrap_or_else(|| panic!());
        assert_eq!(v.host, "::1");
        assert_eq!(v.port, Some(18948));
        assert_eq!(v.sent_by(), "[::1]:18948");
        assert_eq!(v.branch(), Some("z9hG4bK1"));
        assert_eq!(v.param("rport"), Some(None));
        assert_eq!(v.protocol, "UDP");
        let s = stamped(
            "SIP/2.0/UDP [::1]:5060;rport",
            "[::1]:40000".parse().unwrap_or_else(|_| unreachable!()),
        );
        assert_eq!(
            s.as_deref(),
            Some("SIP/2.0/UDP [::1]:5060;rport=40000;received=::1")
        );
    }

    #[test]
    fn garbage_via_is_none() {
        assert_eq!(ViaValue::parse("nonsense"), None);
        assert_eq!(ViaValue::parse("SIP/2.0/UDP [::1:5060"), None);
    }
}

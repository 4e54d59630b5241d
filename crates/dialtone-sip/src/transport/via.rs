//! Via handling at the transport boundary: stamping `received` and `rport`
//! on a request's top Via (RFC 3261 §18.2.1, RFC 3581 §4), and choosing
//! where a response goes from the top Via (§18.2.2, RFC 3581 §5).

use std::net::{IpAddr, SocketAddr};

use rsip::headers::UntypedHeader;
use rsip::prelude::*;
use rsip::{Header, Request};

use super::{Peer, Protocol};

/// Adds `received=<source ip>` when the sent-by host differs from it (always
/// when `rport` was asked for), and fills an empty `rport` with the source port.
pub fn stamp(req: &mut Request, from: &Peer) {
    let Some(Header::Via(via)) = req.headers.iter_mut().find(|h| matches!(h, Header::Via(_))) else {
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
    let host = sent_by_host(sent);
    let differs = host.parse::<IpAddr>().map(|ip| ip != src.ip()).unwrap_or(true);
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

/// The host of `SIP/2.0/UDP host:port` (IPv6 brackets removed).
fn sent_by_host(sent: &str) -> &str {
    let hostport = sent.split_whitespace().last().unwrap_or("");
    if let Some(rest) = hostport.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    hostport.split(':').next().unwrap_or("")
}

/// Where a response to `req` (which arrived from `from`) must be sent.
/// Reliable transports answer on the same connection; UDP answers to
/// `received` and `rport` when present, else to the sent-by port.
pub fn response_target(req: &Request, from: &Peer) -> Peer {
    if from.protocol == Protocol::Tcp {
        return *from;
    }
    let Ok(via) = req.via_header().and_then(|v| v.typed()) else {
        return *from;
    };
    let has_rport = via
        .params
        .iter()
        .any(|p| matches!(p, rsip::Param::Other(n, _) if n.value().eq_ignore_ascii_case("rport")));
    if has_rport {
        return *from;
    }
    let ip = via.received().ok().flatten().unwrap_or(from.addr.ip());
    let port = via
        .sent_by()
        .host_with_port
        .port
        .map(|p| *p.value())
        .unwrap_or(5060);
    Peer::new(Protocol::Udp, SocketAddr::new(ip, port))
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
        assert_eq!(stamped("SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK1", src()), None);
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
        assert_eq!(sent_by_host("SIP/2.0/UDP [::1]:5060"), "::1");
    }
}

//! The router: what an out-of-dialog INVITE is for. A call from a trunk is
//! routed by its DID (the `numbers` table); a call from an authenticated
//! user goes to another user by name, to a DID, or out through the first
//! outbound route whose pattern matches. Nothing unauthenticated ever
//! reaches a trunk: only the switch decides who the caller is.

use dialtone_store::{Number, Route, Store, StoreError, TargetKind, Trunk};
use regex::Regex;

/// Who is calling (or asking for a transfer), as established by the
/// switch: what it may reach. A trunk's party reaches the numbers (DIDs)
/// only; everyone else also reaches users and the outbound routes.
#[derive(Clone, Debug, PartialEq)]
pub enum Caller {
    /// Recognised by source address.
    Trunk(Trunk),
    /// Authenticated by digest.
    User(String),
    /// An AI agent acting for the caller (a persona's tool call).
    Persona(String),
    /// An account's API key.
    Account(String),
    /// The operator (REST API token).
    Operator,
}

/// Where a call goes.
#[derive(Clone, Debug)]
pub enum Target {
    /// Every registered contact of this user, in parallel.
    User(String),
    /// Out through a trunk, dialling `number`.
    Trunk { trunk: Trunk, number: String },
    /// An AI agent (arrives with the AI bridge).
    Persona(String),
    /// A queue (arrives with the queues).
    Queue(String),
}

/// A routing decision: where the call goes, and whether it is recorded
/// (the flag of the number or outbound route that matched).
#[derive(Clone, Debug)]
pub struct Routed {
    pub target: Target,
    pub record: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// Nothing matches: 404.
    #[error("no route for {0:?}")]
    NotFound(String),
    /// The target exists in the configuration but is broken (a number
    /// pointing at a removed trunk): 500, and an operator should look.
    #[error("misconfigured route: {0}")]
    Misconfigured(String),
    #[error("database: {0}")]
    Store(#[from] StoreError),
}

/// Routes `dialled` (the Request-URI user part) for `caller`.
pub async fn route(store: &Store, caller: &Caller, dialled: &str) -> Result<Routed, RouteError> {
    if let Some(n) = store.numbers().lookup_cached(dialled).await? {
        return Ok(Routed {
            target: number_target(store, &n).await?,
            record: n.record,
        });
    }
    if !matches!(caller, Caller::Trunk(_)) {
        if store.users().get_cached(dialled).await?.is_some() {
            return Ok(Routed {
                target: Target::User(dialled.to_string()),
                record: false,
            });
        }
        let routes = store.routes().list().await?;
        if let Some((route, number)) = match_route(&routes, dialled) {
            let trunk = store
                .trunks()
                .get_cached(&route.trunk)
                .await?
                .ok_or_else(|| {
                    RouteError::Misconfigured(format!(
                        "route {} names missing trunk {}",
                        route.id, route.trunk
                    ))
                })?;
            return Ok(Routed {
                target: Target::Trunk { trunk, number },
                record: route.record,
            });
        }
    }
    Err(RouteError::NotFound(dialled.to_string()))
}

async fn number_target(store: &Store, n: &Number) -> Result<Target, RouteError> {
    Ok(match n.target_kind {
        TargetKind::User => Target::User(n.target.clone()),
        TargetKind::Persona => Target::Persona(n.target.clone()),
        TargetKind::Queue => Target::Queue(n.target.clone()),
        TargetKind::Trunk => {
            let trunk = store.trunks().get_cached(&n.target).await?.ok_or_else(|| {
                RouteError::Misconfigured(format!(
                    "number {} names missing trunk {}",
                    n.number, n.target
                ))
            })?;
            Target::Trunk {
                trunk,
                number: n.number.clone(),
            }
        }
    })
}

/// The first route (in order) whose pattern matches, and the number to
/// send: `strip` leading characters removed, `prepend` put in front.
/// A pattern that does not compile never matches (the CLI refuses them).
pub fn match_route<'a>(routes: &'a [Route], dialled: &str) -> Option<(&'a Route, String)> {
    routes.iter().find_map(|r| {
        let re = Regex::new(&r.pattern).ok()?;
        if !re.is_match(dialled) {
            return None;
        }
        let rest: String = dialled.chars().skip(r.strip as usize).collect();
        Some((r, format!("{}{}", r.prepend, rest)))
    })
}

/// Where requests to a trunk go: its host (port 5060 when none is given,
/// resolved by A/AAAA; no SRV yet) and transport.
pub async fn trunk_peer(
    trunk: &Trunk,
    transports: &dialtone_sip::transport::Transports,
) -> Result<dialtone_sip::transport::Peer, String> {
    use dialtone_sip::transport::Protocol;
    let host = trunk.host.as_deref().ok_or("trunk has no host")?;
    let peer = resolve_peer(host, trunk.transport.parse().unwrap_or(Protocol::Udp)).await?;
    if peer.protocol == Protocol::Tls {
        // The certificate must be for the name the trunk was given as.
        let name = host_name(host);
        if name.parse::<std::net::IpAddr>().is_err() {
            transports.set_tls_name(peer.addr, name);
        }
    }
    Ok(peer)
}

/// The host of `host`, `host:port`, `[v6]` or `[v6]:port`.
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() && !h.contains(':') => h,
        _ => host,
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port` (port 5060 when none, 5061
/// for TLS) as a peer on `protocol`, resolving a name.
pub async fn resolve_peer(
    host: &str,
    protocol: dialtone_sip::transport::Protocol,
) -> Result<dialtone_sip::transport::Peer, String> {
    let has_port = host
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        && !host.ends_with(']');
    let hostport = if has_port {
        host.to_string()
    } else if protocol == dialtone_sip::transport::Protocol::Tls {
        format!("{host}:5061")
    } else {
        format!("{host}:5060")
    };
    let addr = tokio::net::lookup_host(&hostport)
        .await
        .map_err(|e| format!("resolving {hostport}: {e}"))?
        .next()
        .ok_or_else(|| format!("{hostport} does not resolve"))?;
    Ok(dialtone_sip::transport::Peer::new(protocol, addr))
}

/// Whether a source IP belongs to a trunk's `inbound_ips` (addresses or
/// CIDR blocks).
pub fn trunk_matches(trunk: &Trunk, ip: std::net::IpAddr) -> bool {
    trunk.inbound_ips.iter().any(|spec| ip_in(spec, ip))
}

/// Whether `ip` is `spec`: an address, or in a CIDR block.
pub fn ip_in(spec: &str, ip: std::net::IpAddr) -> bool {
    Net::parse(spec).is_some_and(|n| n.contains(ip))
}

/// An address or CIDR block, parsed once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Net {
    addr: std::net::IpAddr,
    /// The prefix length, capped to the family's width.
    bits: u32,
}

impl Net {
    /// "10.0.0.0/8", "::1", "192.0.2.7"; None when it is neither. A prefix
    /// that is not a number counts as the whole address; one too long is
    /// capped.
    pub fn parse(spec: &str) -> Option<Net> {
        let (addr, bits) = match spec.split_once('/') {
            Some((a, b)) => (a, b.trim().parse::<u32>().ok()),
            None => (spec, None),
        };
        let addr: std::net::IpAddr = addr.trim().parse().ok()?;
        let width = if addr.is_ipv4() { 32 } else { 128 };
        Some(Net {
            addr,
            bits: bits.unwrap_or(width).min(width),
        })
    }

    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => {
                let mask = u32::MAX.checked_shl(32 - self.bits).unwrap_or(0);
                u32::from(n) & mask == u32::from(i) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(i)) => {
                let mask = u128::MAX.checked_shl(128 - self.bits).unwrap_or(0);
                u128::from(n) & mask == u128::from(i) & mask
            }
            // An IPv4-mapped IPv6 source matches an IPv4 block.
            (IpAddr::V4(_), IpAddr::V6(i)) => i
                .to_ipv4_mapped()
                .is_some_and(|v4| self.contains(IpAddr::V4(v4))),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(pattern: &str, strip: u32, prepend: &str) -> Route {
        Route {
            id: "r".into(),
            pattern: pattern.into(),
            trunk: "t".into(),
            strip,
            prepend: prepend.into(),
            priority: 0,
            record: false,
            created_at: 0,
        }
    }

    #[test]
    fn first_matching_route_with_strip_and_prepend() {
        let routes = vec![
            route(r"^00(\d+)$", 2, "+"),
            route(r"^9(\d+)$", 1, ""),
            route(r".*", 0, "x"),
        ];
        assert_eq!(
            match_route(&routes, "0044123").map(|(_, n)| n),
            Some("+44123".into())
        );
        assert_eq!(
            match_route(&routes, "95551234").map(|(_, n)| n),
            Some("5551234".into())
        );
        assert_eq!(
            match_route(&routes, "abc").map(|(_, n)| n),
            Some("xabc".into())
        );
        assert!(match_route(&routes[..2], "12").is_none());
    }

    #[test]
    fn bad_pattern_never_matches() {
        assert!(match_route(&[route("(", 0, "")], "(").is_none());
    }

    #[test]
    fn inbound_ip_specs() {
        let ip = |s: &str| s.parse().unwrap_or_else(|_| panic!("{s}"));
        assert!(ip_in("127.0.0.2", ip("127.0.0.2")));
        assert!(!ip_in("127.0.0.2", ip("127.0.0.1")));
        assert!(ip_in("10.0.0.0/8", ip("10.9.8.7")));
        assert!(!ip_in("10.0.0.0/8", ip("11.0.0.1")));
        assert!(ip_in("::1", ip("::1")));
        assert!(ip_in("2001:db8::/32", ip("2001:db8::9")));
        assert!(ip_in("192.0.2.1", ip("::ffff:192.0.2.1")));
        assert!(!ip_in("garbage", ip("127.0.0.1")));
    }
}

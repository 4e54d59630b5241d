//! Media anchoring: rewriting an SDP received from one peer into the SDP
//! dialtone sends to the other, so that the RTP flows through dialtone
//! (which terminates the media path) instead of end to end. Transport
//! details of the far side (addresses, ports, RTCP address, ICE) are
//! replaced or dropped; what the endpoints negotiate between themselves
//! (codecs, fmtp, ptime, direction) passes through untouched. Crypto lines
//! are copied too; call control replaces them with each leg's own keys,
//! since dialtone terminates SRTP per leg (see [`super::Crypto`]).

use std::net::IpAddr;

use super::{Attribute, Connection, Media, Sdp};

/// ICE attributes (RFC 8839) at session or media level. They describe the
/// far agent's candidates and credentials; the peer we send to talks to
/// dialtone's address only, so they would be both wrong and misleading.
const ICE_ATTRIBUTES: &[&str] = &[
    "candidate",
    "ice-ufrag",
    "ice-pwd",
    "ice-options",
    "end-of-candidates",
    "remote-candidates",
    "ice-lite",
    "ice-mismatch",
    "ice-pacing",
];

/// A copy of `sdp` for the other leg, anchored on `ip`:
///
/// - the session c= (added if the SDP had only media-level ones) and every
///   media c= carry `ip`, as `IN IP4` or `IN IP6`;
/// - media line `i` gets port `ports[i]`; a line with port 0 stays 0
///   (rejected streams stay rejected, RFC 3264 §8.2), and a line without an
///   entry in `ports` is disabled with port 0; a `/count` port suffix is
///   dropped, since dialtone allocates one port per stream;
/// - a=rtcp is rewritten to `<port+1> IN IP4|IP6 <ip>` on live lines (the
///   RTP/RTCP port pair dialtone allocates) and removed elsewhere, and
///   at session level where RFC 3605 does not allow it;
/// - ICE attributes are removed at both levels.
///
/// Everything else, including the o= line (see [`super::OriginState`]), is
/// copied unchanged.
pub fn anchor(sdp: &Sdp, ip: IpAddr, ports: &[u16]) -> Sdp {
    let mut out = sdp.clone();
    out.connection = Some(connection(ip));
    out.attributes.retain(|a| !is_ice(a) && !a.is("rtcp"));
    for (i, m) in out.media.iter_mut().enumerate() {
        let port = match (m.port, ports.get(i)) {
            (0, _) | (_, None) => 0,
            (_, Some(&p)) => p,
        };
        anchor_media(m, ip, port);
    }
    out
}

fn anchor_media(m: &mut Media, ip: IpAddr, port: u16) {
    m.port = port;
    m.port_count = None;
    if m.connection.is_some() {
        m.connection = Some(connection(ip));
    }
    m.attributes.retain(|a| !is_ice(a));
    let rtcp = (port != 0)
        .then(|| port.checked_add(1))
        .flatten()
        .map(|p| format!("{p} IN {} {ip}", addr_type(ip)));
    match rtcp {
        Some(value) => {
            for a in m.attributes.iter_mut().filter(|a| a.is("rtcp")) {
                a.value = Some(value.clone());
            }
        }
        None => m.attributes.retain(|a| !a.is("rtcp")),
    }
}

fn is_ice(a: &Attribute) -> bool {
    ICE_ATTRIBUTES.iter().any(|n| a.is(n))
}

fn addr_type(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    }
}

fn connection(ip: IpAddr) -> Connection {
    Connection {
        net_type: "IN".to_string(),
        addr_type: addr_type(ip).to_string(),
        address: ip.to_string(),
    }
}

//! A SIP proxy in front of dialtone (Kamailio spreading calls over nodes,
//! an SBC) relays every request, so the packet's source is the proxy's. For
//! a request from one of `sip.front_proxies`, the caller's own address is
//! the one the proxy stamped on the Via below its own (RFC 3261 §18.2.1:
//! `received`, else the sent-by host): trunks are recognised and digest
//! failures banned by that address, not the proxy's.

use std::net::IpAddr;

use dialtone_sip::dialog::split_list;
use dialtone_sip::transport::via::ViaValue;
use rsip::headers::UntypedHeader;
use rsip::{Header, Request};

use crate::abuse::Trusted;

/// The address `req` (whose packet came from `packet`) stands for.
pub fn caller_ip(req: &Request, packet: IpAddr, proxies: &Trusted) -> IpAddr {
    if !proxies.contains(packet) {
        return packet;
    }
    let below = req
        .headers
        .iter()
        .filter_map(|h| match h {
            Header::Via(v) => Some(split_list(v.value())),
            _ => None,
        })
        .flatten()
        .nth(1)
        .and_then(|v| ViaValue::parse(&v));
    below
        .and_then(|v| {
            v.param("received")
                .flatten()
                .and_then(|r| r.parse().ok())
                .or_else(|| v.host.parse().ok())
        })
        .unwrap_or(packet)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(vias: &str) -> Request {
        let raw = format!(
            "INVITE sip:5001@dialtone SIP/2.0\r\n{vias}\
             From: <sip:a@x>;tag=1\r\nTo: <sip:5001@dialtone>\r\nCall-ID: c\r\n\
             CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        );
        Request::try_from(raw.as_str()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|_| unreachable!())
    }

    #[test]
    fn the_via_below_a_front_proxy_names_the_caller() {
        let proxies = Trusted::parse(&["127.0.0.4".into()]).unwrap_or_default();
        let two = req("Via: SIP/2.0/UDP 127.0.0.4:5060;branch=z9hG4bKk\r\n\
                       Via: SIP/2.0/UDP 10.9.9.9:5062;received=198.51.100.7;rport=5062;branch=z9hG4bKp\r\n");
        assert_eq!(
            caller_ip(&two, ip("127.0.0.4"), &proxies),
            ip("198.51.100.7")
        );
        // One Via header with both values; no received: the sent-by host.
        let one = req("Via: SIP/2.0/UDP 127.0.0.4:5060;branch=z9hG4bKk, SIP/2.0/UDP 203.0.113.5:5062;branch=z9hG4bKp\r\n");
        assert_eq!(
            caller_ip(&one, ip("127.0.0.4"), &proxies),
            ip("203.0.113.5")
        );
        // Not from a front proxy: the packet's source, whatever the Vias say.
        assert_eq!(caller_ip(&two, ip("192.0.2.1"), &proxies), ip("192.0.2.1"));
        // A proxy's own request (one Via), or a host name below: the proxy.
        let own = req("Via: SIP/2.0/UDP 127.0.0.4:5060;branch=z9hG4bKk\r\n");
        assert_eq!(caller_ip(&own, ip("127.0.0.4"), &proxies), ip("127.0.0.4"));
        let named = req("Via: SIP/2.0/UDP 127.0.0.4:5060;branch=z9hG4bKk\r\n\
                         Via: SIP/2.0/UDP phone.example.net:5062;branch=z9hG4bKp\r\n");
        assert_eq!(
            caller_ip(&named, ip("127.0.0.4"), &proxies),
            ip("127.0.0.4")
        );
    }
}

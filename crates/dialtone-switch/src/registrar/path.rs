//! RFC 3327 Path: the proxies a REGISTER came through (a Kamailio in front
//! of several nodes adds itself) are stored with the binding, echoed in the
//! 200 OK to a phone that supports them, and become the route set of every
//! request dialtone sends to that contact — it goes to the first Path hop,
//! not to the phone's address.

use dialtone_sip::dialog::split_list;
use dialtone_sip::message::NameAddr;
use dialtone_sip::transport::{Peer, Protocol};
use rsip::{Header, Request};

/// The REGISTER's Path header values, top first, as one comma-separated
/// value; None without any.
pub fn of_request(req: &Request) -> Option<String> {
    let values: Vec<&str> = req
        .headers
        .iter()
        .filter_map(|h| match h {
            Header::Other(name, value) if name.eq_ignore_ascii_case("Path") => Some(value.trim()),
            _ => None,
        })
        .filter(|v| !v.is_empty())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

/// Whether the phone said it understands Path (`Supported: path`), so
/// that the 200 OK may carry it back (§5.3).
pub fn supported(req: &Request) -> bool {
    req.headers.iter().any(|h| match h {
        Header::Supported(s) => rsip::headers::UntypedHeader::value(s)
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("path")),
        _ => false,
    })
}

/// The Route header values a request to a binding with this Path carries.
pub fn route_set(path: &str) -> Vec<String> {
    split_list(path)
}

/// Where a request with this route set goes: the first hop's host and
/// port, over its `transport` parameter (without one: TLS for a `sips:`
/// URI, else UDP).
pub async fn first_hop(route: &[String]) -> Result<Peer, String> {
    let first = route.first().ok_or("empty Path")?;
    let na = NameAddr::parse(first).map_err(|e| format!("bad Path entry {first:?}: {e}"))?;
    let transport = na.uri.params.iter().find_map(|p| match p {
        rsip::Param::Transport(t) => t.to_string().parse::<Protocol>().ok(),
        _ => None,
    });
    let sips = matches!(na.uri.scheme, Some(rsip::Scheme::Sips));
    let protocol = transport.unwrap_or(if sips { Protocol::Tls } else { Protocol::Udp });
    crate::router::resolve_peer(&na.uri.host_with_port.to_string(), protocol).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn register(extra: &str) -> Request {
        let raw = format!(
            "REGISTER sip:dialtone SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.4:5060;branch=z9hG4bKk\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKp\r\n\
             From: <sip:alice@dialtone>;tag=1\r\nTo: <sip:alice@dialtone>\r\n\
             Call-ID: r1\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@127.0.0.1:5062>\r\n\
             {extra}Content-Length: 0\r\n\r\n"
        );
        Request::try_from(raw.as_str()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn path_values_are_kept_in_order() {
        let req = register(
            "Path: <sip:127.0.0.4:5060;lr;received=sip:127.0.0.1:5062>\r\n\
             Path: <sip:outer.example.net;lr>, <sip:third;lr>\r\n",
        );
        let path = of_request(&req).unwrap_or_else(|| panic!("no Path"));
        assert_eq!(
            route_set(&path),
            [
                "<sip:127.0.0.4:5060;lr;received=sip:127.0.0.1:5062>",
                "<sip:outer.example.net;lr>",
                "<sip:third;lr>"
            ]
        );
        assert!(of_request(&register("")).is_none());
    }

    #[test]
    fn supported_path_is_recognised() {
        assert!(supported(&register("Supported: replaces, path\r\n")));
        assert!(!supported(&register("Supported: replaces\r\n")));
        assert!(!supported(&register("")));
    }

    #[tokio::test]
    async fn the_first_hop_is_where_requests_go() {
        let route = route_set("<sip:127.0.0.4:5070;lr;transport=tcp>, <sip:10.0.0.1;lr>");
        let peer = first_hop(&route).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            peer,
            Peer::new(
                Protocol::Tcp,
                "127.0.0.4:5070".parse().unwrap_or_else(|e| panic!("{e}"))
            )
        );
        let peer = first_hop(&route_set("<sip:127.0.0.4;lr>"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            peer,
            Peer::new(
                Protocol::Udp,
                "127.0.0.4:5060".parse().unwrap_or_else(|e| panic!("{e}"))
            )
        );
        assert!(first_hop(&[]).await.is_err());
    }
}

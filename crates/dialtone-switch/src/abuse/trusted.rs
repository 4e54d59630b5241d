//! Trusted networks: sources the request rates and the TCP connection
//! limit never apply to (the host itself, the SIP proxy in front, the
//! carriers).

use std::net::IpAddr;

use crate::router::Net;

/// Parsed once: [`contains`](Trusted::contains) is on every new request.
#[derive(Clone, Debug, Default)]
pub struct Trusted(Vec<Net>);

impl Trusted {
    /// From addresses and CIDR blocks ("127.0.0.0/8", "::1", "10.1.2.3").
    pub fn parse(specs: &[String]) -> Result<Trusted, String> {
        for spec in specs {
            let (addr, bits) = match spec.split_once('/') {
                Some((a, b)) => (a, Some(b)),
                None => (spec.as_str(), None),
            };
            let ip: IpAddr = addr
                .trim()
                .parse()
                .map_err(|_| format!("{spec:?} is not an address or CIDR block"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            if let Some(b) = bits {
                match b.trim().parse::<u32>() {
                    Ok(n) if n <= max => {}
                    _ => return Err(format!("{spec:?}: prefix length must be 0-{max}")),
                }
            }
        }
        Ok(Trusted::lenient(specs))
    }

    /// Whatever of `specs` parses (a trunk's inbound addresses, checked
    /// when they were stored).
    pub fn lenient(specs: &[String]) -> Trusted {
        Trusted(specs.iter().filter_map(|s| Net::parse(s)).collect())
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_and_addresses() {
        let t =
            Trusted::parse(&["127.0.0.0/8".into(), "::1".into()]).unwrap_or_else(|e| panic!("{e}"));
        assert!(t.contains("127.0.0.5".parse().unwrap_or_else(|_| unreachable!())));
        assert!(t.contains("::1".parse().unwrap_or_else(|_| unreachable!())));
        assert!(!t.contains("192.0.2.1".parse().unwrap_or_else(|_| unreachable!())));
        assert!(Trusted::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(Trusted::parse(&["example.com".into()]).is_err());
    }
}

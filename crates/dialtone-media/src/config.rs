//! Media configuration and its validation: which port pairs a range holds.

use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use crate::MediaError;

/// How the media engine binds and what it advertises.
#[derive(Clone, Debug)]
pub struct MediaConfig {
    /// Where RTP/RTCP sockets bind.
    pub bind_ip: IpAddr,
    /// The address that goes into SDP (differs from `bind_ip` behind a 1:1 NAT
    /// or when binding the unspecified address).
    pub advertise_ip: IpAddr,
    /// Ports to use, e.g. `20000..=29999`: RTP on even ports, RTCP on the next
    /// odd port. Both ports of a pair must lie in the range.
    pub ports: RangeInclusive<u16>,
    /// A peer that should send RTP and has been silent this long gets a
    /// [`MediaEvent::RtpTimeout`](crate::MediaEvent::RtpTimeout);
    /// [`Duration::ZERO`] turns the check off.
    pub rtp_timeout: Duration,
}

impl MediaConfig {
    /// The RTP (even) ports of every complete even/odd pair in the range, as
    /// `(first_rtp_port, pair_count)`.
    pub(crate) fn port_pairs(&self) -> Result<(u16, usize), MediaError> {
        let (start, end) = (*self.ports.start(), *self.ports.end());
        // Port 0 means "any port" to the OS: never hand it out.
        let first = u32::from(start.max(2)).next_multiple_of(2);
        let end = u32::from(end);
        if first + 1 > end {
            return Err(MediaError::Config(format!(
                "port range {start}..={end} holds no even RTP port followed by its odd RTCP port"
            )));
        }
        let pairs = (end - first).div_ceil(2) as usize;
        let first = u16::try_from(first).map_err(|_| {
            MediaError::Config(format!("port range {start}..={end} is out of bounds"))
        })?;
        Ok((first, pairs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn cfg(ports: RangeInclusive<u16>) -> MediaConfig {
        MediaConfig {
            bind_ip: Ipv4Addr::LOCALHOST.into(),
            advertise_ip: Ipv4Addr::LOCALHOST.into(),
            ports,
            rtp_timeout: Duration::ZERO,
        }
    }

    #[test]
    fn pairs_in_ranges() {
        assert_eq!(cfg(20000..=29999).port_pairs().ok(), Some((20000, 5000)));
        assert_eq!(cfg(20001..=20004).port_pairs().ok(), Some((20002, 1)));
        assert_eq!(cfg(20000..=20002).port_pairs().ok(), Some((20000, 1)));
        assert_eq!(cfg(65534..=65535).port_pairs().ok(), Some((65534, 1)));
        assert_eq!(cfg(0..=3).port_pairs().ok(), Some((2, 1)));
        assert!(cfg(20001..=20002).port_pairs().is_err());
        assert!(cfg(20000..=20000).port_pairs().is_err());
        assert!(cfg(65535..=65535).port_pairs().is_err());
        #[allow(clippy::reversed_empty_ranges)]
        let empty = cfg(20010..=20000);
        assert!(empty.port_pairs().is_err());
    }
}

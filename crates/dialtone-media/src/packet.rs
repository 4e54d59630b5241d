//! Telling RTP from RTCP from garbage, without copying: the header checks that
//! decide whether a datagram is relayed and whether its sender is latched.

use rtp_rs::RtpReader;

/// The RTP header fields the relay and the decoders look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpHeader {
    pub seq: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub pt: u8,
    pub marker: bool,
    /// Where the payload starts (after CSRCs and any header extension).
    pub payload_offset: usize,
    /// Where it ends (before any padding).
    pub payload_end: usize,
}

impl RtpHeader {
    /// The payload of the packet this header was read from.
    pub fn payload<'a>(&self, packet: &'a [u8]) -> &'a [u8] {
        packet
            .get(self.payload_offset..self.payload_end)
            .unwrap_or_default()
    }
}

/// What a datagram on an RTP socket is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Datagram {
    Rtp(RtpHeader),
    /// RTCP multiplexed onto the RTP port (RFC 5761).
    Rtcp,
    /// Anything else: STUN, DTLS, truncated or malformed packets, noise.
    Invalid,
}

/// Classifies a datagram received on an RTP socket. RTP must be version 2,
/// at least 12 bytes, and have consistent CSRC/extension/padding lengths
/// (checked by rtp-rs).
pub fn classify(buf: &[u8]) -> Datagram {
    if is_rtcp(buf) {
        return Datagram::Rtcp;
    }
    match RtpReader::new(buf) {
        Ok(r) => {
            let payload_offset = r.payload_offset();
            Datagram::Rtp(RtpHeader {
                seq: r.sequence_number().into(),
                timestamp: r.timestamp(),
                ssrc: r.ssrc(),
                pt: r.payload_type(),
                marker: r.mark(),
                payload_offset,
                payload_end: payload_offset + r.payload().len(),
            })
        }
        Err(_) => Datagram::Invalid,
    }
}

/// Whether a datagram looks like RTCP: version 2, at least a header and the
/// sender SSRC, and a packet type in 192..=223 — the range RFC 5761 §4 uses
/// to tell RTCP from RTP on a shared port (RTP payload types 64–95 with the
/// marker bit would collide, and are not used for that reason).
pub fn is_rtcp(buf: &[u8]) -> bool {
    buf.len() >= 8 && buf[0] >> 6 == 2 && (192..=223).contains(&buf[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies() {
        let mut rtp = [0u8; 20];
        rtp[0] = 0x80;
        rtp[1] = 0;
        rtp[2..4].copy_from_slice(&7u16.to_be_bytes());
        rtp[4..8].copy_from_slice(&160u32.to_be_bytes());
        rtp[8..12].copy_from_slice(&0xdead_beefu32.to_be_bytes());
        assert_eq!(
            classify(&rtp),
            Datagram::Rtp(RtpHeader {
                seq: 7,
                timestamp: 160,
                ssrc: 0xdead_beef,
                pt: 0,
                marker: false,
                payload_offset: 12,
                payload_end: 20,
            })
        );
        // Marker + PT 101 (telephone-event) is RTP, not RTCP.
        rtp[1] = 0x80 | 101;
        assert!(matches!(classify(&rtp), Datagram::Rtp(_)));

        let rr = [0x80, 201, 0, 1, 1, 2, 3, 4];
        assert_eq!(classify(&rr), Datagram::Rtcp);
        assert!(is_rtcp(&rr));

        assert_eq!(classify(b"hello"), Datagram::Invalid);
        assert_eq!(classify(&[0u8; 40]), Datagram::Invalid); // version 0 (e.g. STUN)
        assert_eq!(classify(&rtp[..11]), Datagram::Invalid);
        let mut v1 = rtp;
        v1[0] = 0x40;
        assert_eq!(classify(&v1), Datagram::Invalid);
        // Claims 15 CSRCs that are not there.
        let mut csrc = rtp;
        csrc[0] = 0x8f;
        assert_eq!(classify(&csrc), Datagram::Invalid);
        // Padding flag with a padding length larger than the packet.
        let mut pad = rtp;
        pad[0] = 0xa0;
        pad[19] = 200;
        assert_eq!(classify(&pad), Datagram::Invalid);
        assert_eq!(classify(&[]), Datagram::Invalid);
    }
}

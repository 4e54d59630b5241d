//! RTCP for streams we originate (RFC 3550 §6): when transcoding, the two
//! sides' RTCP cannot simply be relayed, so each side gets sender and
//! receiver reports built here, and its incoming reports are parsed for the
//! round-trip fields (LSR/DLSR) and what the peer says about our stream.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Packet type of a sender report.
pub const PT_SR: u8 = 200;
/// Packet type of a receiver report.
pub const PT_RR: u8 = 201;
/// Packet type of source description.
pub const PT_SDES: u8 = 202;
/// Packet type of goodbye.
pub const PT_BYE: u8 = 203;
/// SDES item type of the canonical name.
const SDES_CNAME: u8 = 1;
/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
/// Length of a report block.
const BLOCK_LEN: usize = 24;

/// The sender information of an SR.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SenderInfo {
    /// Our SSRC.
    pub ssrc: u32,
    /// Wall clock time of the report, as an NTP timestamp ([`ntp_timestamp`]).
    pub ntp: u64,
    /// The same instant in the RTP timestamp units of the stream.
    pub rtp_ts: u32,
    /// Packets sent since the start.
    pub packets: u32,
    /// Payload octets sent since the start.
    pub octets: u32,
}

/// One reception report block (RFC 3550 §6.4.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReportBlock {
    /// The source reported on.
    pub ssrc: u32,
    /// Packets lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Packets lost since the start (24-bit signed on the wire: clamped).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub highest_seq: u32,
    /// Interarrival jitter, in RTP clock units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR from the source
    /// ([`lsr`]), 0 if none.
    pub lsr: u32,
    /// Delay since that SR, in 1/65536 s ([`dlsr`]), 0 if none.
    pub dlsr: u32,
}

/// What [`parse`] found in a compound RTCP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RtcpItem {
    /// The sender information of an SR.
    Sr {
        ssrc: u32,
        ntp: u64,
        rtp_ts: u32,
        packets: u32,
        octets: u32,
    },
    /// A report block of an SR or RR.
    ReportBlock(ReportBlock),
    /// A source leaving (one item per SSRC of a BYE).
    Bye(u32),
    /// A packet of another type (SDES, APP, XR, feedback…).
    Other(u8),
}

/// An SR (RFC 3550 §6.4.1) with 0 or 1 report blocks, followed by an SDES
/// CNAME chunk (compound packet, §6.1), appended to `out`.
pub fn sender_report(
    sender: &SenderInfo,
    block: Option<&ReportBlock>,
    cname: &str,
    out: &mut Vec<u8>,
) {
    let at = header(out, block.is_some().into(), PT_SR);
    out.extend_from_slice(&sender.ssrc.to_be_bytes());
    out.extend_from_slice(&sender.ntp.to_be_bytes());
    out.extend_from_slice(&sender.rtp_ts.to_be_bytes());
    out.extend_from_slice(&sender.packets.to_be_bytes());
    out.extend_from_slice(&sender.octets.to_be_bytes());
    if let Some(b) = block {
        put_block(out, b);
    }
    finish(out, at);
    sdes(sender.ssrc, cname, out);
}

/// An RR (§6.4.2) with 0 or 1 report blocks, followed by an SDES CNAME chunk,
/// appended to `out`.
pub fn receiver_report(ssrc: u32, block: Option<&ReportBlock>, cname: &str, out: &mut Vec<u8>) {
    let at = header(out, block.is_some().into(), PT_RR);
    out.extend_from_slice(&ssrc.to_be_bytes());
    if let Some(b) = block {
        put_block(out, b);
    }
    finish(out, at);
    sdes(ssrc, cname, out);
}

/// Parses an incoming compound RTCP packet far enough to get SR sender info
/// (for LSR, see [`lsr`]), report blocks and BYEs. Tolerant: stops at the
/// first malformed or truncated packet and returns what parsed so far.
pub fn parse(packet: &[u8]) -> Vec<RtcpItem> {
    let mut items = Vec::new();
    let mut rest = packet;
    while rest.len() >= 4 && rest[0] >> 6 == 2 {
        let count = usize::from(rest[0] & 0x1f);
        let pt = rest[1];
        let len = (usize::from(u16::from_be_bytes([rest[2], rest[3]])) + 1) * 4;
        let Some(body) = rest.get(4..len) else {
            break;
        };
        match pt {
            PT_SR => {
                if body.len() < 24 {
                    break;
                }
                items.push(RtcpItem::Sr {
                    ssrc: be32(body, 0),
                    ntp: u64::from(be32(body, 4)) << 32 | u64::from(be32(body, 8)),
                    rtp_ts: be32(body, 12),
                    packets: be32(body, 16),
                    octets: be32(body, 20),
                });
                blocks(&body[24..], count, &mut items);
            }
            PT_RR => {
                if body.len() < 4 {
                    break;
                }
                blocks(&body[4..], count, &mut items);
            }
            PT_BYE => {
                let ssrcs = body.chunks_exact(4).take(count);
                items.extend(ssrcs.map(|c| RtcpItem::Bye(be32(c, 0))));
            }
            _ => items.push(RtcpItem::Other(pt)),
        }
        rest = &rest[len..];
    }
    items
}

/// NTP timestamp (32.32 fixed point seconds since 1900) of `t`.
pub fn ntp_timestamp(t: SystemTime) -> u64 {
    let since_1900 = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d + Duration::from_secs(NTP_UNIX_OFFSET),
        Err(e) => Duration::from_secs(NTP_UNIX_OFFSET).saturating_sub(e.duration()),
    };
    let frac = (u64::from(since_1900.subsec_nanos()) << 32) / 1_000_000_000;
    since_1900.as_secs() << 32 | frac
}

/// The LSR field for an SR carrying NTP timestamp `ntp`: its middle 32 bits.
pub fn lsr(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// The DLSR field: time since the last SR was received, in 1/65536 s.
pub fn dlsr(since_sr: Duration) -> u32 {
    (since_sr.as_nanos() * 65536 / 1_000_000_000).min(u32::MAX.into()) as u32
}

fn header(out: &mut Vec<u8>, count: u8, pt: u8) -> usize {
    let at = out.len();
    out.extend_from_slice(&[0x80 | count, pt, 0, 0]);
    at
}

/// Fills in the length (32-bit words minus one) of the packet started at `at`.
fn finish(out: &mut [u8], at: usize) {
    let words = ((out.len() - at) / 4 - 1) as u16;
    out[at + 2..at + 4].copy_from_slice(&words.to_be_bytes());
}

fn put_block(out: &mut Vec<u8>, b: &ReportBlock) {
    out.extend_from_slice(&b.ssrc.to_be_bytes());
    let lost = b.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff) as u32;
    out.extend_from_slice(&(u32::from(b.fraction_lost) << 24 | lost & 0xff_ffff).to_be_bytes());
    out.extend_from_slice(&b.highest_seq.to_be_bytes());
    out.extend_from_slice(&b.jitter.to_be_bytes());
    out.extend_from_slice(&b.lsr.to_be_bytes());
    out.extend_from_slice(&b.dlsr.to_be_bytes());
}

/// An SDES packet with one chunk: `ssrc` and its CNAME (at most 255 bytes),
/// null-terminated and padded to a 32-bit boundary.
fn sdes(ssrc: u32, cname: &str, out: &mut Vec<u8>) {
    let mut end = cname.len().min(255);
    while !cname.is_char_boundary(end) {
        end -= 1;
    }
    let name = &cname.as_bytes()[..end];
    let at = header(out, 1, PT_SDES);
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.extend_from_slice(&[SDES_CNAME, name.len() as u8]);
    out.extend_from_slice(name);
    out.push(0);
    let padded = (out.len() - at).next_multiple_of(4);
    out.resize(at + padded, 0);
    finish(out, at);
}

fn blocks(data: &[u8], count: usize, items: &mut Vec<RtcpItem>) {
    for b in data.chunks_exact(BLOCK_LEN).take(count) {
        let lost = ((be32(b, 4) << 8) as i32) >> 8;
        items.push(RtcpItem::ReportBlock(ReportBlock {
            ssrc: be32(b, 0),
            fraction_lost: b[4],
            cumulative_lost: lost,
            highest_seq: be32(b, 8),
            jitter: be32(b, 12),
            lsr: be32(b, 16),
            dlsr: be32(b, 20),
        }));
    }
}

/// Big-endian u32 at `at`; callers check the length.
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(b: &[u8], at: usize) -> u32 {
        be32(b, at)
    }

    fn block() -> ReportBlock {
        ReportBlock {
            ssrc: 0x1122_3344,
            fraction_lost: 25,
            cumulative_lost: -3,
            highest_seq: 0x0001_0005,
            jitter: 123,
            lsr: 0xaabb_ccdd,
            dlsr: 65536,
        }
    }

    fn sender() -> SenderInfo {
        SenderInfo {
            ssrc: 0xdead_beef,
            ntp: 0x0102_0304_0506_0708,
            rtp_ts: 160_000,
            packets: 1000,
            octets: 160_000,
        }
    }

    #[test]
    fn sender_report_layout() {
        let mut out = vec![0xff]; // appended, not overwritten
        sender_report(&sender(), Some(&block()), "ab", &mut out);
        let p = &out[1..];
        // SR: 4 header + 24 sender info + 24 block = 52 bytes = 13 words.
        assert_eq!(p[0], 0x81, "V=2, P=0, RC=1");
        assert_eq!(p[1], PT_SR);
        assert_eq!(u16::from_be_bytes([p[2], p[3]]), 12);
        assert_eq!(word(p, 4), 0xdead_beef);
        assert_eq!(word(p, 8), 0x0102_0304);
        assert_eq!(word(p, 12), 0x0506_0708);
        assert_eq!(word(p, 16), 160_000);
        assert_eq!(word(p, 20), 1000);
        assert_eq!(word(p, 24), 160_000);
        assert_eq!(word(p, 28), 0x1122_3344);
        assert_eq!(p[32], 25);
        assert_eq!(&p[33..36], &[0xff, 0xff, 0xfd], "-3 in 24 bits");
        assert_eq!(word(p, 36), 0x0001_0005);
        assert_eq!(word(p, 40), 123);
        assert_eq!(word(p, 44), 0xaabb_ccdd);
        assert_eq!(word(p, 48), 65536);
        // SDES: header, SSRC, CNAME "ab" (exactly filling a word), then a
        // whole word of nulls: the item list needs a terminating null.
        let s = &p[52..];
        assert_eq!(s.len(), 16);
        assert_eq!(s[0], 0x81, "V=2, SC=1");
        assert_eq!(s[1], PT_SDES);
        assert_eq!(u16::from_be_bytes([s[2], s[3]]), 3);
        assert_eq!(word(s, 4), 0xdead_beef);
        assert_eq!(&s[8..], &[SDES_CNAME, 2, b'a', b'b', 0, 0, 0, 0]);
        let mut out = Vec::new();
        sender_report(&sender(), None, "abc", &mut out);
        assert_eq!(out[0], 0x80, "RC=0");
        assert_eq!(u16::from_be_bytes([out[2], out[3]]), 6);
        let s = &out[28..];
        assert_eq!(&s[8..], &[SDES_CNAME, 3, b'a', b'b', b'c', 0, 0, 0]);
        assert_eq!(u16::from_be_bytes([s[2], s[3]]), 3);
    }

    #[test]
    fn sdes_always_null_terminated_and_word_aligned() {
        for n in 0..=300 {
            let cname = "x".repeat(n);
            let mut out = Vec::new();
            receiver_report(7, None, &cname, &mut out);
            let s = &out[8..];
            let kept = n.min(255);
            assert_eq!(s.len() % 4, 0);
            assert_eq!(s.len(), (8 + 2 + kept + 1).div_ceil(4) * 4);
            assert_eq!(
                usize::from(u16::from_be_bytes([s[2], s[3]])),
                s.len() / 4 - 1
            );
            assert_eq!(usize::from(s[9]), kept);
            assert!(s[10 + kept..].iter().all(|&b| b == 0) && s.len() > 10 + kept);
        }
        // Truncation keeps whole characters.
        let mut out = Vec::new();
        receiver_report(7, None, &"é".repeat(200), &mut out);
        assert_eq!(out[17], 254);
    }

    #[test]
    fn receiver_report_layout() {
        let mut out = Vec::new();
        receiver_report(0x0a0b_0c0d, Some(&block()), "me@host", &mut out);
        assert_eq!(out[0], 0x81);
        assert_eq!(out[1], PT_RR);
        assert_eq!(u16::from_be_bytes([out[2], out[3]]), 7, "(8 + 24) / 4 - 1");
        assert_eq!(word(&out, 4), 0x0a0b_0c0d);
        assert_eq!(word(&out, 8), 0x1122_3344);
        assert_eq!(word(&out, 12), 25 << 24 | 0xff_fffd);
        assert_eq!(out[33], PT_SDES);
        let mut out = Vec::new();
        receiver_report(1, None, "me@host", &mut out);
        assert_eq!(&out[..8], &[0x80, PT_RR, 0, 1, 0, 0, 0, 1]);
    }

    #[test]
    fn cumulative_lost_is_clamped_to_24_bits() {
        for (lost, wire, back) in [
            (i32::MAX, 0x7f_ffff, 0x7f_ffff),
            (i32::MIN, 0x80_0000, -0x80_0000),
            (-1, 0xff_ffff, -1),
            (5, 5, 5),
        ] {
            let b = ReportBlock {
                cumulative_lost: lost,
                ..block()
            };
            let mut out = Vec::new();
            receiver_report(1, Some(&b), "", &mut out);
            assert_eq!(word(&out, 12) & 0xff_ffff, wire);
            let parsed = parse(&out);
            assert_eq!(
                parsed[0],
                RtcpItem::ReportBlock(ReportBlock {
                    cumulative_lost: back,
                    ..b
                })
            );
        }
    }

    #[test]
    fn parse_round_trip() {
        let mut out = Vec::new();
        sender_report(&sender(), Some(&block()), "a@b", &mut out);
        receiver_report(9, None, "c@d", &mut out);
        // A BYE with two sources.
        out.extend_from_slice(&[0x82, PT_BYE, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2]);
        let s = sender();
        assert_eq!(
            parse(&out),
            vec![
                RtcpItem::Sr {
                    ssrc: s.ssrc,
                    ntp: s.ntp,
                    rtp_ts: s.rtp_ts,
                    packets: s.packets,
                    octets: s.octets
                },
                RtcpItem::ReportBlock(block()),
                RtcpItem::Other(PT_SDES),
                RtcpItem::Other(PT_SDES),
                RtcpItem::Bye(1),
                RtcpItem::Bye(2),
            ]
        );
    }

    #[test]
    fn parse_truncated_or_garbage_never_panics() {
        let mut full = Vec::new();
        sender_report(&sender(), Some(&block()), "a@b", &mut full);
        receiver_report(9, Some(&block()), "c@d", &mut full);
        let all = parse(&full);
        assert_eq!(all.len(), 5);
        for n in 0..full.len() {
            let got = parse(&full[..n]);
            assert!(got.len() < all.len());
            assert_eq!(got[..], all[..got.len()], "prefix of {n} bytes");
        }
        // A count larger than the packet holds: only whole blocks.
        let mut lying = Vec::new();
        receiver_report(9, Some(&block()), "", &mut lying);
        lying[0] = 0x9f;
        assert_eq!(
            parse(&lying)[..2],
            [RtcpItem::ReportBlock(block()), RtcpItem::Other(PT_SDES)]
        );
        // Not version 2, and random bytes.
        assert!(parse(&[0x00, PT_SR, 0, 0]).is_empty());
        let mut x: u32 = 12345;
        for _ in 0..2000 {
            let len = (x >> 8) as usize % 80;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (x >> 16) as u8 | 0x80
                })
                .collect();
            let _ = parse(&bytes);
        }
    }

    #[test]
    fn ntp_lsr_dlsr() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 500_000_000);
        let ntp = ntp_timestamp(t);
        assert_eq!(ntp >> 32, 1_700_000_000 + NTP_UNIX_OFFSET);
        assert_eq!(ntp & 0xffff_ffff, 1 << 31);
        assert_eq!(
            lsr(ntp),
            ((1_700_000_000 + NTP_UNIX_OFFSET) as u32) << 16 | 0x8000
        );
        assert_eq!(ntp_timestamp(UNIX_EPOCH) >> 32, NTP_UNIX_OFFSET);
        assert_eq!(dlsr(Duration::from_millis(1500)), 98_304);
        assert_eq!(dlsr(Duration::from_secs(1 << 20)), u32::MAX);
    }
}

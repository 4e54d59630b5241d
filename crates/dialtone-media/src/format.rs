//! [`StreamFormat`]: what one endpoint's peer sends and wants to receive, as
//! call control negotiated it in SDP — the voice codec with the payload type
//! the peer uses for it, and its telephone-event payload type. The bridge
//! compares the two endpoints' formats to choose between relaying packets
//! untouched (the same codec on both sides, payload type numbers mapped) and
//! transcoding.

use crate::codec::Codec;

/// The negotiated media of one endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamFormat {
    /// The voice codec's payload type number on this leg (the peer's SDP).
    pub pt: u8,
    /// The voice codec as SDP names it (`PCMU`, `opus`, `G729` …).
    pub encoding: String,
    /// Its RTP clock rate.
    pub clock_rate: u32,
    /// Its channel count (1 unless the rtpmap says otherwise).
    pub channels: u8,
    /// The codec, when dialtone can decode and encode it (transcoding,
    /// recording and the audio port need that; relaying does not).
    pub codec: Option<Codec>,
    /// RFC 4733 telephone-event on this leg, if negotiated.
    pub dtmf: Option<DtmfFormat>,
}

/// The telephone-event payload type of a leg and its clock rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DtmfFormat {
    pub pt: u8,
    pub clock_rate: u32,
}

impl StreamFormat {
    /// A leg speaking `codec` with payload type `pt`.
    pub fn of(codec: Codec, pt: u8) -> StreamFormat {
        StreamFormat {
            pt,
            encoding: codec.encoding_name().to_string(),
            clock_rate: codec.clock_rate(),
            channels: if codec.kind == crate::codec::CodecKind::Opus {
                2
            } else {
                1
            },
            codec: Some(codec),
            dtmf: None,
        }
    }

    /// With telephone-event at payload type `pt` and `clock_rate`.
    pub fn with_dtmf(mut self, pt: u8, clock_rate: u32) -> StreamFormat {
        self.dtmf = Some(DtmfFormat { pt, clock_rate });
        self
    }

    /// Whether packets of `self` can be relayed as `other` by renumbering
    /// the payload type alone: the same encoding, clock rate and channels.
    pub fn same_codec(&self, other: &StreamFormat) -> bool {
        self.encoding.eq_ignore_ascii_case(&other.encoding)
            && self.clock_rate == other.clock_rate
            && self.channels == other.channels
    }
}

/// Payload type renumbering for one relay direction: a packet arriving with
/// the source leg's number leaves with the destination leg's; numbers the
/// legs did not negotiate pass unchanged, and telephone events the
/// destination cannot take are dropped.
#[derive(Clone, Debug)]
pub(crate) struct PtMap {
    map: [u8; 128],
    drop: [bool; 128],
}

impl Default for PtMap {
    fn default() -> Self {
        PtMap {
            map: std::array::from_fn(|i| i as u8),
            drop: [false; 128],
        }
    }
}

impl PtMap {
    /// The renumbering from `from`'s payload types to `to`'s, for two legs
    /// relayed untouched. Telephone events pass when both legs negotiated
    /// them at the same rate, and are dropped when the destination did not
    /// negotiate them (it would play them as noise).
    pub(crate) fn between(from: Option<&StreamFormat>, to: Option<&StreamFormat>) -> PtMap {
        let mut m = PtMap::default();
        let (Some(from), Some(to)) = (from, to) else {
            return m;
        };
        m.map[usize::from(from.pt & 0x7f)] = to.pt & 0x7f;
        if let Some(fd) = from.dtmf {
            match to.dtmf {
                Some(td) if td.clock_rate == fd.clock_rate => {
                    m.map[usize::from(fd.pt & 0x7f)] = td.pt & 0x7f;
                }
                _ => m.drop[usize::from(fd.pt & 0x7f)] = true,
            }
        }
        m
    }

    /// Renumbers the payload type of an RTP packet in place (keeping the
    /// marker bit); false when the packet is to be dropped.
    pub(crate) fn apply(&self, packet: &mut [u8]) -> bool {
        let Some(b) = packet.get_mut(1) else {
            return false;
        };
        let pt = usize::from(*b & 0x7f);
        if self.drop[pt] {
            return false;
        }
        *b = (*b & 0x80) | self.map[pt];
        true
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::*;

    #[test]
    fn pt_map_renumbers_voice_and_events_and_drops_unwanted_events() {
        let a = StreamFormat::of(Codec::pcmu(), 0).with_dtmf(101, 8000);
        let b = StreamFormat::of(Codec::pcmu(), 0).with_dtmf(96, 8000);
        let c = StreamFormat::of(Codec::pcmu(), 0);
        let m = PtMap::between(Some(&a), Some(&b));
        let mut pkt = [0x80u8, 0x80 | 101, 0, 0];
        assert!(m.apply(&mut pkt));
        assert_eq!(pkt[1], 0x80 | 96);
        let mut voice = [0x80u8, 0, 0, 0];
        assert!(m.apply(&mut voice));
        assert_eq!(voice[1], 0);
        let m = PtMap::between(Some(&a), Some(&c));
        let mut ev = [0x80u8, 101, 0, 0];
        assert!(!m.apply(&mut ev));
        // Unknown formats: everything passes unchanged.
        let m = PtMap::between(None, Some(&b));
        let mut any = [0x80u8, 0x80 | 101, 0, 0];
        assert!(m.apply(&mut any));
        assert_eq!(any[1], 0x80 | 101);
    }

    #[test]
    fn opus_pt_differs_per_leg() {
        let a = StreamFormat::of(Codec::opus(Default::default()), 111);
        let b = StreamFormat::of(Codec::opus(Default::default()), 96);
        assert!(a.same_codec(&b));
        assert!(!a.same_codec(&StreamFormat::of(Codec::pcmu(), 0)));
        let m = PtMap::between(Some(&b), Some(&a));
        let mut pkt = [0x80u8, 96, 0, 0];
        assert!(m.apply(&mut pkt));
        assert_eq!(pkt[1], 111);
    }
}

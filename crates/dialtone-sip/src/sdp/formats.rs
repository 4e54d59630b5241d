//! Editing the codec list of an m= section for offer/answer (RFC 3264 §5,
//! §6): reading each payload type with its a=rtpmap and a=fmtp as one
//! [`Format`], appending formats to an offer with payload type numbers of
//! this side's own choosing, and cutting a list down to what an answer keeps.
//! Which codecs to offer or answer is call control's policy; this module only
//! keeps the m= line and its attributes consistent.

use super::{Attribute, Media, RtpMap};

/// First and last dynamic payload type (RFC 3551 §3).
const DYNAMIC: std::ops::RangeInclusive<u8> = 96..=127;

/// One payload type of an m= line, described.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Format {
    pub pt: u8,
    /// As written (`PCMU`, `opus`, `telephone-event`); compare without case.
    pub encoding: String,
    pub clock_rate: u32,
    /// Audio channels; `None` when the rtpmap gives none (one channel).
    pub channels: Option<u8>,
    /// The a=fmtp parameters (the text after the payload type), if any.
    pub fmtp: Option<String>,
}

impl Format {
    pub fn new(pt: u8, encoding: &str, clock_rate: u32, channels: Option<u8>) -> Format {
        Format {
            pt,
            encoding: encoding.to_string(),
            clock_rate,
            channels,
            fmtp: None,
        }
    }

    /// With a=fmtp parameters.
    pub fn with_fmtp(mut self, fmtp: impl Into<String>) -> Format {
        self.fmtp = Some(fmtp.into());
        self
    }

    /// The same codec, whatever the payload type number and fmtp: encoding
    /// name (without case), clock rate and channel count (absent = 1).
    pub fn same_codec(&self, other: &Format) -> bool {
        self.encoding.eq_ignore_ascii_case(&other.encoding)
            && self.clock_rate == other.clock_rate
            && self.channels.unwrap_or(1) == other.channels.unwrap_or(1)
    }

    /// RFC 4733 named telephone events (DTMF).
    pub fn is_telephone_event(&self) -> bool {
        self.encoding.eq_ignore_ascii_case("telephone-event")
    }

    /// Comfort noise (RFC 3389), which rides along with a voice codec.
    pub fn is_comfort_noise(&self) -> bool {
        self.encoding.eq_ignore_ascii_case("CN")
    }

    /// A voice codec: neither telephone-event nor comfort noise.
    pub fn is_voice(&self) -> bool {
        !self.is_telephone_event() && !self.is_comfort_noise()
    }

    fn rtpmap_value(&self) -> String {
        match self.channels {
            Some(c) => format!("{} {}/{}/{}", self.pt, self.encoding, self.clock_rate, c),
            None => format!("{} {}/{}", self.pt, self.encoding, self.clock_rate),
        }
    }
}

impl From<RtpMap> for Format {
    fn from(r: RtpMap) -> Format {
        Format {
            pt: r.pt,
            encoding: r.encoding,
            clock_rate: r.clock_rate,
            channels: r.channels,
            fmtp: None,
        }
    }
}

impl Media {
    /// The codecs on offer in order of preference, each with its fmtp (see
    /// [`Media::rtpmaps`] for which payload types are described).
    pub fn formats(&self) -> Vec<Format> {
        self.rtpmaps()
            .into_iter()
            .map(|r| {
                let fmtp = self.fmtp(r.pt).map(str::to_string);
                Format {
                    fmtp,
                    ..Format::from(r)
                }
            })
            .collect()
    }

    /// Replaces the m= line's payload types by `formats`, in that order,
    /// with an a=rtpmap for each (static ones too: RFC 4566 allows it and
    /// some agents want it) and an a=fmtp where given. Every other
    /// rtpmap/fmtp attribute is dropped; the rest stay in place.
    pub fn set_formats(&mut self, formats: &[Format]) {
        self.attributes
            .retain(|a| !(a.is("rtpmap") || a.is("fmtp")));
        self.formats = formats.iter().map(|f| f.pt.to_string()).collect();
        let mut lines = Vec::with_capacity(formats.len() * 2);
        for f in formats {
            lines.push(Attribute::new("rtpmap", f.rtpmap_value()));
            if let Some(p) = &f.fmtp {
                lines.push(Attribute::new("fmtp", format!("{} {}", f.pt, p)));
            }
        }
        // Codec lines first, before direction, ptime and the like, as
        // agents conventionally write them.
        self.attributes.splice(0..0, lines);
    }
}

/// `extra` formats appended to `base` where `base` has no format of the same
/// codec, each renumbered to a free dynamic payload type when its number is
/// taken (static numbers are kept when free). Formats that fit nowhere (all
/// 32 dynamic numbers taken) are left out.
pub fn append_formats(base: &[Format], extra: &[Format]) -> Vec<Format> {
    let mut out = base.to_vec();
    for f in extra {
        if out.iter().any(|o| o.same_codec(f)) {
            continue;
        }
        let taken = |pt: u8| out.iter().any(|o| o.pt == pt);
        let pt = if !taken(f.pt) {
            Some(f.pt)
        } else {
            DYNAMIC.clone().find(|pt| !taken(*pt))
        };
        if let Some(pt) = pt {
            out.push(Format { pt, ..f.clone() });
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::*;
    use crate::sdp::fixtures::parsed;

    const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
        m=audio 4000 RTP/AVP 111 0 101\r\na=rtpmap:111 opus/48000/2\r\n\
        a=fmtp:111 useinbandfec=1\r\na=rtpmap:101 telephone-event/48000\r\n\
        a=fmtp:101 0-16\r\na=sendrecv\r\na=ptime:20\r\n";

    #[test]
    fn formats_carry_rtpmap_static_and_fmtp() {
        let sdp = parsed(OFFER);
        let f = sdp.media[0].formats();
        assert_eq!(f.len(), 3);
        assert_eq!(
            f[0],
            Format::new(111, "opus", 48000, Some(2)).with_fmtp("useinbandfec=1")
        );
        assert_eq!(f[1], Format::new(0, "PCMU", 8000, None));
        assert_eq!(f[2].fmtp.as_deref(), Some("0-16"));
        assert!(f[2].is_telephone_event() && !f[2].is_voice());
    }

    #[test]
    fn set_formats_rewrites_m_line_and_codec_attributes_only() {
        let mut sdp = parsed(OFFER);
        let keep = vec![
            Format::new(0, "PCMU", 8000, None),
            Format::new(96, "telephone-event", 8000, None).with_fmtp("0-15"),
        ];
        sdp.media[0].set_formats(&keep);
        let text = String::from_utf8(sdp.to_bytes()).unwrap();
        assert!(text.contains("m=audio 4000 RTP/AVP 0 96\r\n"), "{text}");
        assert!(text.contains("a=rtpmap:0 PCMU/8000\r\n"));
        assert!(text.contains("a=fmtp:96 0-15\r\n"));
        assert!(!text.contains("opus") && !text.contains("useinbandfec"));
        assert!(text.contains("a=sendrecv\r\n") && text.contains("a=ptime:20\r\n"));
        // And it reads back the same.
        let back = crate::sdp::Sdp::parse(text.as_bytes()).unwrap();
        assert_eq!(back.media[0].formats(), keep);
    }

    #[test]
    fn append_skips_known_codecs_and_renumbers_collisions() {
        let base = vec![
            Format::new(0, "PCMU", 8000, None),
            Format::new(96, "telephone-event", 8000, None),
        ];
        let extra = vec![
            Format::new(0, "pcmu", 8000, None),
            Format::new(8, "PCMA", 8000, None),
            Format::new(96, "opus", 48000, Some(2)),
            Format::new(96, "telephone-event", 8000, None),
        ];
        let out = append_formats(&base, &extra);
        let pts: Vec<(u8, &str)> = out.iter().map(|f| (f.pt, f.encoding.as_str())).collect();
        assert_eq!(
            pts,
            vec![
                (0, "PCMU"),
                (96, "telephone-event"),
                (8, "PCMA"),
                (97, "opus")
            ]
        );
    }

    #[test]
    fn append_gives_up_when_no_dynamic_number_is_free() {
        let base: Vec<Format> = (96..=127)
            .map(|pt| Format::new(pt, &format!("X{pt}"), 8000, None))
            .collect();
        let out = append_formats(&base, &[Format::new(100, "opus", 48000, Some(2))]);
        assert_eq!(out.len(), 32);
    }
}

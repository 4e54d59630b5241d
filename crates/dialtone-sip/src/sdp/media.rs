//! Questions call control asks about one m= section: its direction
//! (RFC 3264 §5.1), where to send its RTP and RTCP (c=, m= port, RFC 3605
//! a=rtcp), and its codecs (a=rtpmap, a=fmtp, the RFC 3551 static payload
//! types). Everything here reads the model and never fails: an attribute we
//! cannot make sense of is treated as absent.

use std::net::{IpAddr, SocketAddr};

use super::parse::number;
use super::{Attribute, Connection, Direction, Media, RtpMap, Sdp};

/// RFC 3551 §6 static payload types, which need no a=rtpmap. Channels are
/// `None` where RFC 3551 lists one channel, as an rtpmap without the
/// parameter would say.
const STATIC_PTS: &[(u8, &str, u32, Option<u8>)] = &[
    (0, "PCMU", 8000, None),
    (3, "GSM", 8000, None),
    (4, "G723", 8000, None),
    (5, "DVI4", 8000, None),
    (6, "DVI4", 16000, None),
    (7, "LPC", 8000, None),
    (8, "PCMA", 8000, None),
    // G.722 samples at 16 kHz but its RTP clock is 8000 (RFC 3551 §4.5.2).
    (9, "G722", 8000, None),
    (10, "L16", 44100, Some(2)),
    (11, "L16", 44100, None),
    (12, "QCELP", 8000, None),
    (13, "CN", 8000, None),
    (14, "MPA", 90000, None),
    (15, "G728", 8000, None),
    (16, "DVI4", 11025, None),
    (17, "DVI4", 22050, None),
    (18, "G729", 8000, None),
    (25, "CelB", 90000, None),
    (26, "JPEG", 90000, None),
    (28, "nv", 90000, None),
    (31, "H261", 90000, None),
    (32, "MPV", 90000, None),
    (33, "MP2T", 90000, None),
    (34, "H263", 90000, None),
];

impl Media {
    /// The direction of this stream from the SDP writer's point of view:
    /// a direction attribute at media level, else at session level, else
    /// SendRecv (RFC 3264 §5.1). A stream with port 0 is rejected or
    /// disabled, so it is reported as Inactive whatever the attributes say.
    /// Takes the whole `Sdp` because the session level is the fallback.
    pub fn direction(&self, session: &Sdp) -> Direction {
        if self.port == 0 {
            return Direction::Inactive;
        }
        Direction::of(&self.attributes)
            .or_else(|| Direction::of(&session.attributes))
            .unwrap_or(Direction::SendRecv)
    }

    /// Sets the media-level direction, replacing any direction attribute
    /// already there (in place of the first one, else at the end). The
    /// attribute is written even for SendRecv, so that it overrides a
    /// session-level one.
    pub fn set_direction(&mut self, d: Direction) {
        let at = self
            .attributes
            .iter()
            .position(|a| Direction::from_attribute(a).is_some());
        self.attributes
            .retain(|a| Direction::from_attribute(a).is_none());
        let attr = Attribute::flag(d.as_str());
        match at {
            Some(i) => self.attributes.insert(i, attr),
            None => self.attributes.push(attr),
        }
    }

    /// The connection that applies to this stream: media c=, else session c=.
    pub fn effective_connection<'a>(&'a self, session: &'a Sdp) -> Option<&'a Connection> {
        self.connection.as_ref().or(session.connection.as_ref())
    }

    /// Where to send RTP for this stream: the effective c= address and the
    /// m= port. `None` when the port is 0 (stream rejected), the address is
    /// 0.0.0.0 or :: (RFC 2543-style hold: "do not send"), or the address is
    /// not a literal IP (c= may carry a host name; we do not resolve it here).
    pub fn rtp_addr(&self, session: &Sdp) -> Option<SocketAddr> {
        if self.port == 0 {
            return None;
        }
        let ip = ip_of(&self.effective_connection(session)?.address)?;
        Some(SocketAddr::new(ip, self.port))
    }

    /// Where to send RTCP when the stream has an RFC 3605 a=rtcp attribute
    /// (`a=rtcp:<port> [IN IP4|IP6 <address>]`, the address defaulting to
    /// the RTP one). `None` without the attribute (the caller then uses the
    /// RTP port + 1), when the stream is rejected, or when the attribute or
    /// address is unusable.
    pub fn rtcp_addr(&self, session: &Sdp) -> Option<SocketAddr> {
        if self.port == 0 {
            return None;
        }
        let value = self
            .attributes
            .iter()
            .find(|a| a.is("rtcp"))?
            .value
            .as_deref()?;
        let f: Vec<&str> = value.split_whitespace().collect();
        let port: u16 = number(f.first()?)?;
        if port == 0 {
            return None;
        }
        let ip = match f[..] {
            [_, _, _, address] => ip_of(address)?,
            [_] => ip_of(&self.effective_connection(session)?.address)?,
            _ => return None,
        };
        Some(SocketAddr::new(ip, port))
    }

    /// The codecs on offer, in the m= line's order of preference: each
    /// numeric format with its a=rtpmap, or its RFC 3551 static assignment
    /// when there is no (valid) a=rtpmap. Dynamic payload types without an
    /// a=rtpmap are left out, as are non-RTP streams (udptl, TCP/MSRP …),
    /// whose formats are not payload types at all.
    pub fn rtpmaps(&self) -> Vec<RtpMap> {
        if !self.proto.to_ascii_uppercase().contains("RTP/") {
            return Vec::new();
        }
        self.formats
            .iter()
            .filter_map(|f| number::<u8>(f).filter(|pt| *pt < 128))
            .filter_map(|pt| self.rtpmap(pt).or_else(|| static_pt(pt)))
            .collect()
    }

    /// The a=fmtp parameters for a payload type (the text after the PT,
    /// e.g. `0-16` or `useinbandfec=1`), if the stream has one.
    pub fn fmtp(&self, pt: u8) -> Option<&str> {
        self.pt_attribute("fmtp", pt)
    }

    /// The first a=rtpmap for `pt` that parses.
    fn rtpmap(&self, pt: u8) -> Option<RtpMap> {
        let v = self.pt_attribute("rtpmap", pt)?;
        let mut parts = v.split('/');
        let encoding = parts.next()?.trim();
        let clock_rate = number(parts.next()?.trim())?;
        let channels = match parts.next() {
            Some(c) => Some(number(c.trim())?),
            None => None,
        };
        if encoding.is_empty() || parts.next().is_some() {
            return None;
        }
        Some(RtpMap {
            pt,
            encoding: encoding.to_string(),
            clock_rate,
            channels,
        })
    }

    /// The rest of the first `a=<name>:<pt> <rest>` for this payload type.
    fn pt_attribute(&self, name: &str, pt: u8) -> Option<&str> {
        self.attributes
            .iter()
            .filter(|a| a.is(name))
            .filter_map(|a| a.value.as_deref())
            .find_map(|v| {
                let v = v.trim_start();
                let end = v.find(char::is_whitespace).unwrap_or(v.len());
                (number::<u8>(&v[..end]) == Some(pt)).then(|| v[end..].trim())
            })
    }
}

fn static_pt(pt: u8) -> Option<RtpMap> {
    STATIC_PTS
        .iter()
        .find(|(p, ..)| *p == pt)
        .map(|&(pt, encoding, clock_rate, channels)| RtpMap {
            pt,
            encoding: encoding.to_string(),
            clock_rate,
            channels,
        })
}

/// A usable unicast-or-multicast destination from a c= or a=rtcp address:
/// the `/ttl[/count]` suffix of multicast addresses dropped, `None` for host
/// names and for the unspecified addresses that mean "do not send".
fn ip_of(address: &str) -> Option<IpAddr> {
    let bare = address.split('/').next()?;
    let bare = bare.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = bare.parse().ok()?;
    (!ip.is_unspecified()).then_some(ip)
}

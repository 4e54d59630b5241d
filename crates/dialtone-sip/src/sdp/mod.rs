//! SDP session descriptions (RFC 8866, formerly RFC 4566) and the pieces of
//! the offer/answer model (RFC 3264) a B2BUA needs: this file owns the data
//! types, the error type and the public API; `parse` reads a body, `write`
//! serializes one, `media` answers questions about an m= section (direction,
//! where to send RTP, codecs), `anchor` rewrites an SDP so media flows through
//! dialtone, and `origin` keeps the o= line we send to one peer consistent
//! (RFC 3264 §8). The model is deliberately shallow: every line we do not
//! interpret is kept verbatim, so an SDP we pass through loses nothing.

mod anchor;
mod crypto;
mod formats;
mod media;
mod origin;
mod parse;
mod write;

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod fixtures;
#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod fuzz_tests;
#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod media_tests;
#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests;

pub use anchor::anchor;
pub use crypto::Crypto;
pub use formats::{append_formats, Format};
pub use origin::OriginState;

/// A parsed session description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sdp {
    /// `v=`; always 0 (the only version there is) once parsed.
    pub version: u32,
    /// `o=`
    pub origin: Origin,
    /// `s=`; an empty name is written as `s= ` (RFC 8866 §5.3).
    pub session_name: String,
    /// Session-level `c=`.
    pub connection: Option<Connection>,
    /// Session-level `a=` lines, in order.
    pub attributes: Vec<Attribute>,
    /// The m= sections, in order (their index is the RFC 3264 stream index).
    pub media: Vec<Media>,
    /// Every other session-level line (i= u= e= p= b= t= r= z= k=, and any
    /// letter we do not know), kept in order and written back as-is. When no
    /// t= is kept, `t=0 0` is written, since RFC 8866 requires one.
    pub other: Vec<(char, String)>,
}

/// The `o=` line: `<username> <sess-id> <sess-version> <nettype> <addrtype> <address>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub username: String,
    /// Kept as text: only its identity matters, and some agents exceed 64 bits.
    pub session_id: String,
    pub session_version: u64,
    pub net_type: String,
    pub addr_type: String,
    pub address: String,
}

/// A `c=` line: `<nettype> <addrtype> <connection-address>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    /// `IN`
    pub net_type: String,
    /// `IP4` or `IP6`
    pub addr_type: String,
    /// An address or host name; multicast addresses may carry `/ttl[/count]`.
    pub address: String,
}

/// One m= section and the lines that follow it up to the next m=.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Media {
    /// audio, video, application, image, text, message …
    pub kind: String,
    /// 0 means the stream is rejected or disabled (RFC 3264 §5.1, §6).
    pub port: u16,
    /// The `/<number of ports>` suffix of the port, if any.
    pub port_count: Option<u16>,
    /// RTP/AVP, RTP/SAVP, UDP/TLS/RTP/SAVPF, udptl …
    pub proto: String,
    /// Payload type numbers for RTP protocols, fmt tokens otherwise; in the
    /// sender's order of preference.
    pub formats: Vec<String>,
    /// Media-level `c=`, overriding the session one.
    pub connection: Option<Connection>,
    /// Media-level `a=` lines, in order.
    pub attributes: Vec<Attribute>,
    /// i= b= k= (and anything unknown) at media level, kept in order.
    pub other: Vec<(char, String)>,
}

/// An `a=` line: `a=<name>` (a property) or `a=<name>:<value>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attribute {
    pub name: String,
    /// `None` for `a=name`, `Some("")` for `a=name:`.
    pub value: Option<String>,
}

impl Attribute {
    /// An attribute with a value, `a=name:value`.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Attribute {
            name: name.into(),
            value: Some(value.into()),
        }
    }

    /// A property attribute, `a=name`.
    pub fn flag(name: impl Into<String>) -> Self {
        Attribute {
            name: name.into(),
            value: None,
        }
    }

    /// Attribute names are compared without regard to case: the grammar
    /// makes them tokens, and agents are not consistent about case.
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }
}

/// The media direction attributes of RFC 3264 §5.1 / RFC 8866 §6.7, as seen
/// by the side that wrote the SDP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    /// The direction an answerer mirrors back (RFC 3264 §6.1): what the
    /// offerer only sends, the answerer only receives, and vice versa.
    pub fn reversed(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }

    /// Whether the writer of the SDP will send media.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether the writer of the SDP wants to receive media.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// The attribute name: `sendrecv`, `sendonly`, `recvonly`, `inactive`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction one attribute states, if it is a direction attribute.
    pub fn from_attribute(attr: &Attribute) -> Option<Direction> {
        [
            Direction::SendRecv,
            Direction::SendOnly,
            Direction::RecvOnly,
            Direction::Inactive,
        ]
        .into_iter()
        .find(|d| attr.is(d.as_str()))
    }

    /// The direction a list of attributes states (the first one, if an
    /// agent wrote several, which is invalid but seen), if any.
    pub fn of(attributes: &[Attribute]) -> Option<Direction> {
        attributes.iter().find_map(Self::from_attribute)
    }
}

/// One payload type's `a=rtpmap` (or the RFC 3551 static assignment).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtpMap {
    pub pt: u8,
    /// As written (`PCMU`, `opus`, `telephone-event`); compare without case.
    pub encoding: String,
    pub clock_rate: u32,
    /// The encoding parameters (audio channels) if given.
    pub channels: Option<u8>,
}

/// Why a body is not an SDP we accept.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// No lines at all.
    #[error("SDP body is empty")]
    Empty,
    /// One line is wrong; `text` is the line (shortened if long).
    #[error("SDP line {line} ({text:?}): {problem}")]
    Line {
        /// 1-based, counting every line of the body.
        line: usize,
        text: String,
        problem: String,
    },
    /// A mandatory line never appeared.
    #[error("SDP has no {0} line")]
    Missing(&'static str),
}

impl Sdp {
    /// Parses a body. Strict where a mistake would change meaning (v=0
    /// first, exactly one o= and s=, the syntax and numbers of o= c= m=, at
    /// most one c= per level); liberal with LF-only line ends, trailing
    /// whitespace, blank lines, unknown line types (kept in `other`) and
    /// non-UTF-8 bytes (replaced by U+FFFD; only free text such as s= may
    /// legally carry them, and we never interpret it).
    pub fn parse(bytes: &[u8]) -> Result<Sdp, SdpError> {
        parse::parse(bytes)
    }

    /// Serializes with CRLF line ends, in RFC 8866 order: v o s i u e p c b
    /// t r z k a, then each m= section as m i c b k a.
    pub fn to_bytes(&self) -> Vec<u8> {
        write::to_bytes(self)
    }
}

//! SIP messages for dialtone: [`parse`] bytes into rsip's `SipMessage`,
//! [`to_bytes`] back, plus framing for streams ([`framing`]), typed
//! extension headers ([`headers`]), UAS admission checks ([`uas_check`](mod@uas_check)) and
//! response building ([`reply`]). The rest of dialtone uses only this
//! module, so the parser behind it can change.
//!
//! rsip 0.4 provides the data model (`Request`, `Response`, `Header`, ...).
//! The parsing itself is dialtone's own, because rsip's tokenizer rejects or
//! misreads much of what RFC 3261 and RFC 4475 call valid (LWS before
//! colons, folding, compact forms, users with dots, IPv6, quoted parameter
//! values, binary bodies). What rsip cannot represent, and how it is
//! handled:
//!
//! - Extension methods (`rsip::Method` is a closed enum): a well-formed
//!   request with an unknown method is answered `501 Not Implemented` by
//!   [`parse`] itself (`ParseError::Reject`) — which is also RFC 3261's
//!   answer for a method the UAS does not know.
//! - Reason phrases of known status codes (rsip keeps only the code).
//! - URI headers (`?h=v`): rejected in a Request-URI (400, RFC 4475
//!   §3.1.2.11); kept inside header values (see [`headers::NameAddr`]).
//! - Non-SIP URIs are opaque (see [`uri`]); serialize with [`to_bytes`] or
//!   [`uri::format_uri`], not with rsip's `Display`.
//!
//! After [`parse`], every Via, From, To, Contact, CSeq, Call-ID,
//! Content-Length, Content-Type, Expires and Max-Forwards has been checked
//! against RFC 3261's grammar and stored in canonical form: insignificant
//! LWS removed, one Via or Contact value per header. Prefer
//! [`headers::NameAddr::parse`] over rsip's `typed()` for From/To/Contact
//! (rsip mis-splits users containing dots and cannot read IPv6 hosts).

pub mod compact;
pub mod framing;
mod grammar;
pub mod headers;
mod names;
mod parser;
pub mod reply;
pub mod uas_check;
pub mod uri;
mod validate;
mod write;

pub use grammar::percent_decode;
pub use headers::{header, headers_all, ExtHeader, HeaderError, NameAddr};
pub use reply::{new_branch, new_call_id, new_tag, response_to, with_to_tag};
pub use rsip::{
    headers::UntypedHeader, Header, Headers, Method, Param, Request, Response, Scheme, SipMessage,
    StatusCode, Uri, Version,
};
pub use uas_check::{uas_check, Rejection, UasPolicy};

/// Why [`parse`] did not produce a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not enough to answer (not SIP, no recognizable Via/Call-ID/CSeq/
    /// From/To, an ACK, or a response): drop silently (log at debug).
    #[error("dropped: {reason}")]
    Drop { reason: String },
    /// A request we cannot process but can answer: the transport sends
    /// `response` back (bytes, ready to send), e.g. 400 Bad Request with a
    /// reason phrase saying what is wrong, 505 Version Not Supported, or 501.
    #[error("rejected with {status}: {reason}")]
    Reject {
        status: u16,
        reason: String,
        response: Vec<u8>,
    },
}

impl ParseError {
    /// The status of the error response, for `Reject`.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Drop { .. } => None,
            Self::Reject { status, .. } => Some(*status),
        }
    }
}

/// Parses one SIP message from a datagram or a stream frame. Leading CRLFs
/// are skipped; octets after Content-Length are ignored (RFC 3261 §18.3);
/// without Content-Length the body is the rest of the buffer.
pub fn parse(bytes: &[u8]) -> Result<SipMessage, ParseError> {
    parser::parse(bytes)
}

/// Serializes a message (rsip's Display for the headers; the start line and
/// body written by dialtone) to bytes, making sure
/// Content-Length matches the body (fixed up in place or inserted; never
/// duplicated).
pub fn to_bytes(msg: &SipMessage) -> Vec<u8> {
    write::to_bytes(msg)
}

/// A header's name and value, whatever its rsip variant.
pub fn header_name_value(header: &Header) -> (&str, &str) {
    names::name_value(header)
}

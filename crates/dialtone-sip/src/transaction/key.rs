//! Transaction matching keys: RFC 3261 §17.1.3 for responses to client
//! transactions and §17.2.3 for requests to server transactions, with the
//! RFC 2543 fallback for requests whose branch lacks the magic cookie.

use rsip::headers::UntypedHeader;
use rsip::{Header, Headers, Method, Request, Response};

use crate::message::NameAddr;
use crate::transport::via::ViaValue;

/// The RFC 3261 branch prefix that promises a unique branch.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// Identifies a server transaction.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ServerKey {
    /// §17.2.3: branch, sent-by, and method (ACK matches its INVITE).
    Rfc3261 {
        branch: String,
        sent_by: String,
        method: String,
    },
    /// RFC 2543 fallback: Request-URI, From tag, Call-ID, CSeq and top Via.
    /// The To tag is left out so that the ACK (which carries our tag) finds
    /// the INVITE that had none.
    Rfc2543 {
        request_uri: String,
        from_tag: String,
        call_id: String,
        cseq: u32,
        method: String,
        via: String,
    },
}

/// Identifies a client transaction (§17.1.3): our branch and the CSeq method.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientKey {
    pub branch: String,
    pub method: String,
}

fn method_for_matching(m: &Method) -> String {
    // The ACK to a non-2xx belongs to the INVITE's transaction.
    match m {
        Method::Ack => Method::Invite.to_string(),
        other => other.to_string(),
    }
}

/// Which tagged header to read.
#[derive(Clone, Copy)]
pub enum Party {
    From,
    To,
}

/// The `tag` of the From or To header ("" when absent).
pub fn tag_of(headers: &Headers, party: Party) -> Option<String> {
    let value = headers.iter().find_map(|h| match (party, h) {
        (Party::From, Header::From(f)) => Some(f.value()),
        (Party::To, Header::To(t)) => Some(t.value()),
        _ => None,
    })?;
    Some(NameAddr::parse_tag(value).ok()?.unwrap_or_default())
}

pub(crate) fn call_id(headers: &Headers) -> Option<String> {
    headers.iter().find_map(|h| match h {
        Header::CallId(c) => Some(c.value().to_string()),
        _ => None,
    })
}

pub(crate) fn cseq(headers: &Headers) -> Option<(u32, Method)> {
    headers.iter().find_map(|h| match h {
        Header::CSeq(c) => Some((c.seq().ok()?, c.method().ok()?)),
        _ => None,
    })
}

fn top_via_value(headers: &Headers) -> Option<&str> {
    headers.iter().find_map(|h| match h {
        Header::Via(v) => Some(v.value()),
        _ => None,
    })
}

impl ServerKey {
    /// The key of the transaction a request belongs to. `method` lets a
    /// CANCEL look up the INVITE it cancels.
    pub fn for_request_as(req: &Request, method: &Method) -> Option<ServerKey> {
        let via = ViaValue::top(&req.headers)?;
        let method = method_for_matching(method);
        match via.branch() {
            Some(b) if b.starts_with(MAGIC_COOKIE) => Some(ServerKey::Rfc3261 {
                branch: b.to_string(),
                sent_by: via.sent_by(),
                method,
            }),
            _ => Some(ServerKey::Rfc2543 {
                request_uri: crate::message::uri::format_uri(&req.uri),
                from_tag: tag_of(&req.headers, Party::From)?,
                call_id: call_id(&req.headers)?,
                cseq: cseq(&req.headers)?.0,
                method,
                via: top_via_value(&req.headers)?.to_string(),
            }),
        }
    }

    pub fn for_request(req: &Request) -> Option<ServerKey> {
        Self::for_request_as(req, &req.method)
    }
}

impl ClientKey {
    pub fn for_request(req: &Request) -> Option<ClientKey> {
        let via = ViaValue::top(&req.headers)?;
        Some(ClientKey {
            branch: via.branch()?.to_string(),
            method: method_for_matching(&req.method),
        })
    }

    pub fn for_response(resp: &Response) -> Option<ClientKey> {
        let via = ViaValue::top(&resp.headers)?;
        Some(ClientKey {
            branch: via.branch()?.to_string(),
            method: method_for_matching(&cseq(&resp.headers)?.1),
        })
    }
}

/// Identifies the ACK for a 2xx, which starts a transaction of its own:
/// Call-ID, CSeq number and From tag are what it shares with its INVITE.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AckKey {
    pub call_id: String,
    pub cseq: u32,
    pub from_tag: String,
}

impl AckKey {
    pub fn for_request(req: &Request) -> Option<AckKey> {
        Some(AckKey {
            call_id: call_id(&req.headers)?,
            cseq: cseq(&req.headers)?.0,
            from_tag: tag_of(&req.headers, Party::From)?,
        })
    }
}

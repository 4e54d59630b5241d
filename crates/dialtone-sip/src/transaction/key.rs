//! Transaction matching keys: RFC 3261 §17.1.3 for responses to client
//! transactions and §17.2.3 for requests to server transactions, with the
//! RFC 2543 fallback for requests whose branch lacks the magic cookie.

use rsip::headers::UntypedHeader;
use rsip::prelude::*;
use rsip::{Method, Request, Response};

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

impl ServerKey {
    /// The key of the transaction a request belongs to. `method` lets a
    /// CANCEL look up the INVITE it cancels.
    pub fn for_request_as(req: &Request, method: &Method) -> Option<ServerKey> {
        let via = req.via_header().ok()?;
        let typed = via.typed().ok()?;
        let method = method_for_matching(method);
        match typed.branch() {
            Some(b) if b.value().starts_with(MAGIC_COOKIE) => Some(ServerKey::Rfc3261 {
                branch: b.value().to_string(),
                sent_by: typed.sent_by().to_string(),
                method,
            }),
            _ => Some(ServerKey::Rfc2543 {
                request_uri: req.uri.to_string(),
                from_tag: req
                    .from_header()
                    .ok()?
                    .tag()
                    .ok()
                    .flatten()
                    .map(|t| t.value().to_string())
                    .unwrap_or_default(),
                call_id: req.call_id_header().ok()?.value().to_string(),
                cseq: req.cseq_header().ok()?.seq().ok()?,
                method,
                via: via.value().to_string(),
            }),
        }
    }

    pub fn for_request(req: &Request) -> Option<ServerKey> {
        Self::for_request_as(req, &req.method)
    }
}

impl ClientKey {
    pub fn for_request(req: &Request) -> Option<ClientKey> {
        let branch = req.via_header().ok()?.typed().ok()?.branch()?.value().to_string();
        Some(ClientKey {
            branch,
            method: method_for_matching(&req.method),
        })
    }

    pub fn for_response(resp: &Response) -> Option<ClientKey> {
        let branch = resp.via_header().ok()?.typed().ok()?.branch()?.value().to_string();
        Some(ClientKey {
            branch,
            method: method_for_matching(&resp.cseq_header().ok()?.method().ok()?),
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
            call_id: req.call_id_header().ok()?.value().to_string(),
            cseq: req.cseq_header().ok()?.seq().ok()?,
            from_tag: req
                .from_header()
                .ok()?
                .tag()
                .ok()
                .flatten()
                .map(|t| t.value().to_string())
                .unwrap_or_default(),
        })
    }
}

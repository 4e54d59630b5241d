//! Requests a transaction layer builds from another request: the ACK for a
//! non-2xx final response (RFC 3261 §17.1.1.3) and a CANCEL (§9.1). Both
//! copy the original's Request-URI, Call-ID, From, top Via and Route set.

use rsip::headers::UntypedHeader;
use rsip::{Header, Headers, Method, Request, Response};

fn copy_core(orig: &Request, method: Method, to: Option<&Header>) -> Request {
    let mut headers = Headers::default();
    let mut via_done = false;
    for h in orig.headers.iter() {
        match h {
            Header::Via(_) if !via_done => {
                via_done = true;
                headers.push(h.clone());
            }
            Header::From(_) | Header::CallId(_) | Header::Route(_) => headers.push(h.clone()),
            Header::To(_) => headers.push(to.cloned().unwrap_or_else(|| h.clone())),
            Header::CSeq(c) => {
                let seq = c.seq().unwrap_or(0);
                headers.push(Header::CSeq(rsip::headers::CSeq::new(format!(
                    "{seq} {method}"
                ))));
            }
            _ => {}
        }
    }
    headers.push(Header::MaxForwards(rsip::headers::MaxForwards::new("70")));
    headers.push(Header::ContentLength(rsip::headers::ContentLength::new(
        "0",
    )));
    Request {
        method,
        uri: orig.uri.clone(),
        version: orig.version.clone(),
        headers,
        body: Vec::new(),
    }
}

/// §17.1.1.3: the ACK for a 300–699 response, sent by the INVITE client
/// transaction itself. Its To is the response's (with the UAS's tag).
pub fn ack_for_non2xx(invite: &Request, resp: &Response) -> Request {
    let to = resp.headers.iter().find(|h| matches!(h, Header::To(_)));
    copy_core(invite, Method::Ack, to)
}

/// §9.1: a CANCEL for a pending INVITE; same branch, so the far end's
/// server transaction layer matches it to the INVITE.
pub fn cancel_for(invite: &Request) -> Request {
    copy_core(invite, Method::Cancel, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invite() -> Request {
        let raw = "INVITE sip:bob@example.com SIP/2.0\r\n\
            Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKabc\r\n\
            Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKdef\r\n\
            Route: <sip:proxy.example.com;lr>\r\n\
            From: <sip:alice@example.com>;tag=1\r\n\
            To: <sip:bob@example.com>\r\n\
            Call-ID: c1\r\n\
            CSeq: 7 INVITE\r\n\
            Contact: <sip:alice@10.0.0.1>\r\n\
            Content-Length: 0\r\n\r\n";
        Request::try_from(raw).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn ack_copies_core_and_takes_response_to() {
        let resp_raw = "SIP/2.0 486 Busy Here\r\n\
            Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKabc\r\n\
            From: <sip:alice@example.com>;tag=1\r\n\
            To: <sip:bob@example.com>;tag=xyz\r\n\
            Call-ID: c1\r\nCSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n";
        let resp = Response::try_from(resp_raw).unwrap_or_else(|e| panic!("{e}"));
        let ack = ack_for_non2xx(&invite(), &resp);
        let s = ack.to_string();
        assert!(s.starts_with("ACK sip:bob@example.com SIP/2.0\r\n"), "{s}");
        assert!(s.contains("CSeq: 7 ACK"), "{s}");
        assert!(s.contains("tag=xyz"), "{s}");
        assert!(s.contains("branch=z9hG4bKabc"), "{s}");
        assert!(!s.contains("z9hG4bKdef"), "only the top Via: {s}");
        assert!(s.contains("Route: <sip:proxy.example.com;lr>"), "{s}");
        assert!(!s.contains("Contact"), "{s}");
    }

    #[test]
    fn cancel_matches_invite() {
        let s = cancel_for(&invite()).to_string();
        assert!(
            s.starts_with("CANCEL sip:bob@example.com SIP/2.0\r\n"),
            "{s}"
        );
        assert!(s.contains("CSeq: 7 CANCEL"), "{s}");
        assert!(s.contains("To: <sip:bob@example.com>\r\n"), "{s}");
        assert!(s.contains("branch=z9hG4bKabc"), "{s}");
    }
}

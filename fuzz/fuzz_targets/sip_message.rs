//! A datagram or a TCP stream buffer, as the transport sees it: framing
//! (TCP), then `message::parse` (what `Transports::ingest` calls), then
//! what happens to a parsed message next — the Via stamp, the response
//! target, the transaction keys, the UAS checks, the typed headers — and
//! the answers we build. Errors are expected; panics are not, and whatever
//! parses must serialize to something that parses to the same bytes.

#![no_main]

use std::net::SocketAddr;

use dialtone_sip::message::framing::{frame, FrameResult};
use dialtone_sip::message::headers::{
    ExtHeader, NameAddr, RAck, ReferTo, Replaces, SessionExpires,
};
use dialtone_sip::message::{
    compact, header_name_value, parse, reply, to_bytes, uas_check, ParseError, SipMessage,
    UasPolicy,
};
use dialtone_sip::transaction::{tag_of, AckKey, ClientKey, Party, ServerKey};
use dialtone_sip::transport::{via, Peer, Protocol};
use libfuzzer_sys::fuzz_target;

fn reparse(what: &str, bytes: &[u8]) -> SipMessage {
    parse(bytes).unwrap_or_else(|e| {
        panic!(
            "{what} does not parse: {e}\n{}",
            String::from_utf8_lossy(bytes)
        )
    })
}

fuzz_target!(|data: &[u8]| {
    // TCP: the reader drains `len` bytes, so it must be within the buffer.
    match frame(data) {
        FrameResult::Complete { len } | FrameResult::Keepalive { len } => {
            assert!(
                len > 0 && len <= data.len(),
                "frame length {len} of {}",
                data.len()
            );
        }
        FrameResult::NeedMore | FrameResult::Invalid(_) => {}
    }
    let normal = compact::normalize(data);

    let msg = match parse(data) {
        Ok(msg) => msg,
        Err(ParseError::Reject { response, .. }) => {
            assert!(response.starts_with(b"SIP/2.0 "), "{response:?}");
            assert!(response.ends_with(b"\r\n\r\n"), "{response:?}");
            return;
        }
        Err(ParseError::Drop { .. }) => return,
    };
    // Normalizing compact forms first changes nothing.
    if let Ok(m) = parse(&normal) {
        assert_eq!(
            to_bytes(&m),
            to_bytes(&msg),
            "normalize changed the message"
        );
    }
    let once = to_bytes(&msg);
    let again = reparse("the serialized message", &once);
    assert_eq!(to_bytes(&again), once, "serialization is not stable");

    let headers = match &msg {
        SipMessage::Request(r) => &r.headers,
        SipMessage::Response(r) => &r.headers,
    };
    let _ = tag_of(headers, Party::From);
    let _ = tag_of(headers, Party::To);
    let _ = via::ViaValue::top(headers).map(|v| (v.sent_by(), v.branch().map(str::len)));
    for h in headers.iter() {
        let (_, v) = header_name_value(h);
        let _ = NameAddr::parse_list(v);
        let _ = Replaces::parse(v);
        let _ = ReferTo::parse(v).map(|r| r.replaces());
        let _ = SessionExpires::parse(v);
        let _ = RAck::parse(v);
    }

    match msg {
        SipMessage::Response(resp) => {
            let _ = ClientKey::for_response(&resp);
        }
        SipMessage::Request(mut req) => {
            let _ = ServerKey::for_request(&req);
            let _ = ClientKey::for_request(&req);
            let _ = AckKey::for_request(&req);
            let _ = uas_check(&req, &UasPolicy::default());
            for addr in ["192.0.2.1:5060", "[2001:db8::1]:40000"] {
                let addr: SocketAddr = addr.parse().unwrap_or_else(|_| unreachable!());
                for protocol in [Protocol::Udp, Protocol::Tcp] {
                    let _ = via::response_target(&req, &Peer::new(protocol, addr));
                }
            }
            // What the transport does before handing a request up.
            let from: SocketAddr = "198.51.100.7:40001"
                .parse()
                .unwrap_or_else(|_| unreachable!());
            via::stamp(&mut req, &Peer::new(Protocol::Udp, from));
            let stamped = to_bytes(&SipMessage::Request(req.clone()));
            let _ = reparse("the Via-stamped request", &stamped);
            // Our answers to it go back on the wire and must parse too.
            for status in [100, 180, 200, 401, 486] {
                let mut resp = reply::response_to(&req, status, None);
                reply::with_to_tag(&mut resp, "fuzz1");
                let bytes = to_bytes(&SipMessage::Response(resp));
                let _ = reparse("our response", &bytes);
            }
        }
    }
});

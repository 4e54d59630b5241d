//! One header value (or URI) as it comes off the wire, through every parser
//! dialtone has for one: name-addr lists (From, To, Contact, Route), the
//! typed extension headers (Refer-To, Replaces, Session-Expires, RAck, …),
//! Via, URIs and host:port, digest credentials and challenges, route-set
//! splitting. No panics; a typed header that parses must print as something
//! that parses back to the same text.

#![no_main]

use dialtone_sip::auth::{Challenge, Credentials};
use dialtone_sip::dialog::split_list;
use dialtone_sip::message::headers::{
    ExtHeader, MinSe, PAssertedIdentity, RAck, RSeq, ReferTo, ReferredBy, Replaces, SessionExpires,
};
use dialtone_sip::message::uri::{format_uri, parse_hostport, parse_uri};
use dialtone_sip::message::{percent_decode, NameAddr};
use dialtone_sip::transport::via::ViaValue;
use libfuzzer_sys::fuzz_target;

/// Parses `v` as `T`; what parses must print stably.
fn ext<T: ExtHeader>(v: &str) {
    let Ok(h) = T::parse(v) else {
        return;
    };
    let once = h.to_string();
    let again = T::parse(&once)
        .unwrap_or_else(|e| panic!("{}: {once:?} (from {v:?}) does not parse: {e}", T::NAME));
    assert_eq!(again.to_string(), once, "{}: unstable, from {v:?}", T::NAME);
}

fuzz_target!(|data: &[u8]| {
    let Ok(v) = std::str::from_utf8(data) else {
        let _ = percent_decode(&String::from_utf8_lossy(data));
        return;
    };
    let _ = percent_decode(v);

    if let Ok(list) = NameAddr::parse_list(v) {
        for na in list {
            let _ = na.tag();
            let _ = na.display_name_unquoted();
            let _ = na.rsip_params();
            let once = na.to_string();
            let again = NameAddr::parse(&once)
                .unwrap_or_else(|e| panic!("name-addr {once:?} (from {v:?}) does not parse: {e}"));
            assert_eq!(again.to_string(), once, "name-addr unstable, from {v:?}");
        }
    }
    for entry in split_list(v) {
        let _ = NameAddr::parse(&entry);
    }
    ext::<ReferTo>(v);
    if let Ok(r) = ReferTo::parse(v) {
        let _ = r.replaces();
    }
    ext::<ReferredBy>(v);
    ext::<Replaces>(v);
    ext::<SessionExpires>(v);
    ext::<MinSe>(v);
    ext::<RAck>(v);
    ext::<RSeq>(v);
    ext::<PAssertedIdentity>(v);

    if let Some(via) = ViaValue::parse(v) {
        let _ = via.branch();
        let _ = via.param("rport");
        let _ = via.param("received");
        let _ = via.sent_by();
    }
    if let Ok(p) = parse_uri(v) {
        let once = format_uri(&p.uri);
        let again = parse_uri(&once)
            .unwrap_or_else(|e| panic!("URI {once:?} (from {v:?}) does not parse: {e}"));
        assert_eq!(format_uri(&again.uri), once, "URI unstable, from {v:?}");
    }
    let _ = parse_hostport(v);

    if let Ok(c) = Credentials::parse(v) {
        let _ = (c.username.len(), c.nc, c.algorithm.as_str());
    }
    if let Ok(c) = Challenge::parse(v) {
        let _ = (c.realm.len(), c.qop.len(), c.algorithm.as_str());
    }
});

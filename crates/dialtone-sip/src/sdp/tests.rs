//! Parsing and writing: every fixture is parsed, its fields checked, written
//! back byte for byte and re-parsed to the same value; the writer's line
//! order and the parser's errors are checked on hand-made bodies.

use super::fixtures::*;
use super::*;

/// Parses the wire form, checks that writing gives the same bytes and that
/// re-parsing gives the same value.
fn round_trip(fixture: &str) -> Sdp {
    let wire = crlf(fixture);
    let sdp = Sdp::parse(&wire).unwrap_or_else(|e| panic!("{e}"));
    let written = sdp.to_bytes();
    assert_eq!(
        String::from_utf8_lossy(&written),
        String::from_utf8_lossy(&wire)
    );
    assert_eq!(Sdp::parse(&written).unwrap(), sdp);
    sdp
}

fn attr(name: &str, value: &str) -> Attribute {
    Attribute::new(name, value)
}

fn conn(addr_type: &str, address: &str) -> Option<Connection> {
    Some(Connection {
        net_type: "IN".into(),
        addr_type: addr_type.into(),
        address: address.into(),
    })
}

fn err(body: &str) -> String {
    match Sdp::parse(body.as_bytes()) {
        Ok(s) => panic!("accepted {body:?} as {s:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn sipp_offer() {
    let sdp = round_trip(SIPP);
    assert_eq!(sdp.version, 0);
    assert_eq!(
        sdp.origin,
        Origin {
            username: "user1".into(),
            session_id: "53655765".into(),
            session_version: 2353687637,
            net_type: "IN".into(),
            addr_type: "IP4".into(),
            address: "127.0.1.1".into(),
        }
    );
    assert_eq!(sdp.session_name, "-");
    assert_eq!(sdp.connection, conn("IP4", "127.0.1.1"));
    assert_eq!(sdp.other, vec![('t', "0 0".to_string())]);
    assert!(sdp.attributes.is_empty());
    let [m] = &sdp.media[..] else { panic!() };
    assert_eq!(
        (m.kind.as_str(), m.port, m.port_count),
        ("audio", 6000, None)
    );
    assert_eq!(m.proto, "RTP/AVP");
    assert_eq!(m.formats, ["0", "8", "101"]);
    assert_eq!(m.connection, None);
    assert_eq!(m.attributes.len(), 5);
    assert_eq!(m.attributes[3], attr("fmtp", "101 0-15"));
    assert_eq!(m.attributes[4], attr("ptime", "20"));
}

#[test]
fn baresip_offer() {
    let sdp = round_trip(BARESIP);
    assert_eq!(sdp.origin.username, "-");
    assert_eq!(
        sdp.attributes,
        [
            attr("tool", "baresip 3.10.1"),
            attr("ice-options", "trickle")
        ]
    );
    let m = &sdp.media[0];
    assert_eq!(m.formats, ["96", "0", "8", "101"]);
    assert_eq!(m.other, [('b', "AS:128".to_string())]);
    assert_eq!(m.attributes[0], attr("rtpmap", "96 opus/48000/2"));
    assert!(m.attributes.contains(&Attribute::flag("rtcp-mux")));
    assert!(m.attributes.contains(&Attribute::flag("sendrecv")));
    assert_eq!(m.attributes.iter().filter(|a| a.is("candidate")).count(), 2);
    assert_eq!(m.attributes.last(), Some(&attr("ptime", "20")));
}

#[test]
fn desk_phone_hold_offer() {
    let sdp = round_trip(DESK_PHONE_HOLD);
    assert_eq!(sdp.session_name, "SDP data");
    assert_eq!(sdp.origin.session_version, 20014);
    let m = &sdp.media[0];
    assert_eq!(m.formats, ["9", "0", "8", "18", "101"]);
    assert!(m.attributes.contains(&Attribute::flag("sendonly")));
    assert_eq!(m.direction(&sdp), Direction::SendOnly);
    assert!(m.attributes[m.attributes.len() - 1].is("crypto"));
}

#[test]
fn rfc2543_hold_offer() {
    let sdp = round_trip(RFC2543_HOLD);
    assert_eq!(sdp.origin.username, "CiscoSystemsSIP-GW-UserAgent");
    assert_eq!(sdp.session_name, "SIP Call");
    assert_eq!(sdp.connection, conn("IP4", "0.0.0.0"));
    assert_eq!(sdp.media[0].port, 16384);
    assert_eq!(sdp.media[0].rtp_addr(&sdp), None);
}

#[test]
fn ipv6_offer() {
    let sdp = round_trip(IPV6);
    assert_eq!(sdp.origin.addr_type, "IP6");
    assert_eq!(sdp.origin.address, "::1");
    assert_eq!(sdp.connection, conn("IP6", "::1"));
    assert_eq!(sdp.media[0].formats, ["0", "97"]);
    assert_eq!(
        sdp.media[0].rtp_addr(&sdp),
        Some("[::1]:49170".parse().unwrap())
    );
}

#[test]
fn multiple_media_lines() {
    let sdp = round_trip(MULTI);
    assert_eq!(sdp.session_name, "Call to John Smith");
    let kinds: Vec<char> = sdp.other.iter().map(|(k, _)| *k).collect();
    assert_eq!(kinds, ['i', 'u', 'e', 'p', 'b', 't', 'r']);
    assert_eq!(sdp.other[3].1, "+1 617 555-6011");
    assert_eq!(sdp.attributes, [attr("group", "BUNDLE audio")]);
    let [audio, video, image] = &sdp.media[..] else {
        panic!("{:?}", sdp.media)
    };
    assert_eq!(audio.connection, conn("IP4", "198.51.100.7"));
    assert_eq!(
        audio.other,
        [('i', "main audio".into()), ('b', "AS:64".into())]
    );
    assert_eq!((video.kind.as_str(), video.port), ("video", 0));
    assert_eq!(video.connection, None);
    assert_eq!(video.other, [('b', "AS:384".to_string())]);
    assert_eq!(
        (image.kind.as_str(), image.proto.as_str()),
        ("image", "udptl")
    );
    assert_eq!(image.formats, ["t38"]);
    assert_eq!(image.attributes[0], attr("T38FaxVersion", "0"));
}

#[test]
fn session_level_direction_offer() {
    let sdp = round_trip(SESSION_DIRECTION);
    assert_eq!(sdp.attributes, [Attribute::flag("recvonly")]);
    assert_eq!(sdp.media.len(), 3);
    assert!(sdp.media[0].attributes.is_empty());
    assert_eq!(sdp.media[2].attributes, [Attribute::flag("inactive")]);
}

#[test]
fn lf_only_and_trailing_whitespace_are_accepted() {
    // LF line ends, blanks at line ends, a blank line and no final newline.
    let sloppy = SIPP
        .replace("s=-\n", "s=- \t\n")
        .replace("a=ptime:20\n", "a=ptime:20  ")
        .replace("t=0 0\n", "t=0 0\n\n");
    let sdp = Sdp::parse(sloppy.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sdp, parsed(SIPP));
    assert_eq!(sdp.to_bytes(), crlf(SIPP));
}

#[test]
fn writer_puts_lines_in_rfc_order_and_supplies_t() {
    // Out of order on purpose, and without the mandatory t= line.
    let body = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\na=recvonly\r\nb=AS:64\r\n\
        c=IN IP4 10.0.0.1\r\ns=x\r\nz=2882844526 -1h\r\ni=info\r\n\
        m=audio 5004/2 RTP/AVP 0\r\na=ptime:20\r\nc=IN IP4 10.0.0.2\r\n\
        b=AS:64\r\ni=voice\r\n";
    let sdp = Sdp::parse(body.as_bytes()).unwrap();
    let expected = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=x\r\ni=info\r\n\
        c=IN IP4 10.0.0.1\r\nb=AS:64\r\nt=0 0\r\nz=2882844526 -1h\r\n\
        a=recvonly\r\nm=audio 5004/2 RTP/AVP 0\r\ni=voice\r\n\
        c=IN IP4 10.0.0.2\r\nb=AS:64\r\na=ptime:20\r\n";
    let written = sdp.to_bytes();
    assert_eq!(String::from_utf8_lossy(&written), expected);
    assert_eq!(sdp.media[0].port_count, Some(2));
    // Now with t=: written once, where it belongs.
    let again = Sdp::parse(&written).unwrap();
    assert_eq!(again.to_bytes(), written);
}

#[test]
fn empty_session_name_and_empty_attribute_values_survive() {
    let body = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns= \r\nt=0 0\r\na=x-flag\r\na=x-empty:\r\n";
    let sdp = Sdp::parse(body.as_bytes()).unwrap();
    assert_eq!(sdp.session_name, "");
    assert_eq!(
        sdp.attributes,
        [Attribute::flag("x-flag"), attr("x-empty", "")]
    );
    assert_eq!(String::from_utf8_lossy(&sdp.to_bytes()), body);
}

#[test]
fn non_utf8_free_text_is_replaced_not_rejected() {
    let mut body = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=Caf".to_vec();
    body.extend_from_slice(&[0xe9, b'\r', b'\n']);
    body.extend_from_slice(b"t=0 0\r\n");
    let sdp = Sdp::parse(&body).unwrap();
    assert_eq!(sdp.session_name, "Caf\u{fffd}");
}

#[test]
fn errors_say_which_line_and_what() {
    assert_eq!(err(""), "SDP body is empty");
    assert_eq!(err("\r\n  \r\n"), "SDP body is empty");
    let e = err("hello world\r\n");
    assert!(e.contains("line 1") && e.contains("not an SDP line"), "{e}");
    let e = match Sdp::parse(&[0x00, 0xff, 0x13, b'\n', 0x80]) {
        Err(e) => e.to_string(),
        Ok(s) => panic!("{s:?}"),
    };
    assert!(e.contains("line 1") && e.contains("not an SDP line"), "{e}");
    let e = err("<html>\n<body>\n");
    assert!(e.contains("line 1") && e.contains("not an SDP line"), "{e}");
    let e = err("o=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\n");
    assert!(
        e.contains("line 1") && e.contains("must start with v=0"),
        "{e}"
    );
    let e = err("v=1\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\n");
    assert!(e.contains("unsupported SDP version"), "{e}");
    assert_eq!(
        err("v=0\r\ns=-\r\nt=0 0\r\n"),
        "SDP has no o= (origin) line"
    );
    assert_eq!(
        err("v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\nt=0 0\r\n"),
        "SDP has no s= (session name) line"
    );
}

#[test]
fn field_errors_name_the_field() {
    const HEAD: &str = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\n";
    let e = err(&format!("{HEAD}m=audio\r\n"));
    assert!(
        e.contains("SDP line 5 (\"m=audio\")") && e.contains("needs a media type, a port"),
        "{e}"
    );
    let e = err(&format!("{HEAD}m=audio RTP/AVP 0\r\n"));
    assert!(
        e.contains("line 5") && e.contains("port \"RTP/AVP\" is not a number"),
        "{e}"
    );
    let e = err(&format!("{HEAD}m=audio 5o04 RTP/AVP 0\r\n"));
    assert!(e.contains("port \"5o04\" is not a number"), "{e}");
    let e = err(&format!("{HEAD}m=audio 70000 RTP/AVP 0\r\n"));
    assert!(e.contains("port \"70000\""), "{e}");
    let e = err(&format!("{HEAD}m=audio +5004 RTP/AVP 0\r\n"));
    assert!(e.contains("port \"+5004\""), "{e}");
    let e = err(&format!("{HEAD}m=video 5004/x RTP/AVP 31\r\n"));
    assert!(e.contains("port count \"x\""), "{e}");
    let e = err("v=0\r\no=- 1 IN IP4 10.0.0.1\r\ns=-\r\n");
    assert!(
        e.contains("line 2") && e.contains("o= needs 6 fields") && e.contains("has 5"),
        "{e}"
    );
    let e = err("v=0\r\no=- 1 v2 IN IP4 10.0.0.1\r\ns=-\r\n");
    assert!(e.contains("session version \"v2\" is not a number"), "{e}");
    let e = err(&format!("{HEAD}c=IN IP4\r\n"));
    assert!(e.contains("c= needs 3 fields"), "{e}");
    let e = err(&format!("{HEAD}c=IN IP4 1.2.3.4\r\nc=IN IP4 1.2.3.5\r\n"));
    assert!(
        e.contains("line 6") && e.contains("second session-level c="),
        "{e}"
    );
    let e = err(&format!(
        "{HEAD}m=audio 1 RTP/AVP 0\r\nc=IN IP4 1.2.3.4\r\nc=IN IP4 1.2.3.5\r\n"
    ));
    assert!(
        e.contains("line 7") && e.contains("second c= line in this media"),
        "{e}"
    );
    let e = err(&format!(
        "{HEAD}m=audio 1 RTP/AVP 0\r\no=- 2 2 IN IP4 10.0.0.1\r\n"
    ));
    assert!(e.contains("o= is a session-level line"), "{e}");
    let e = err(&format!("{HEAD}s=again\r\n"));
    assert!(e.contains("second s= line"), "{e}");
    let e = err(&format!("{HEAD}a=:x\r\n"));
    assert!(e.contains("no attribute name"), "{e}");
    let e = err(&format!("{HEAD}a rtpmap\r\n"));
    assert!(e.contains("line 5") && e.contains("not an SDP line"), "{e}");
}

#[test]
fn long_lines_are_shortened_in_errors() {
    let long = format!("v=0\r\no={}\r\n", "x".repeat(5000));
    let e = err(&long);
    assert!(e.len() < 300, "{e}");
    assert!(e.contains('…'), "{e}");
}

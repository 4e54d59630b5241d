//! The media accessors (direction, addresses, codecs), `anchor` and
//! `OriginState`, on the shared fixtures.

use std::net::{IpAddr, SocketAddr};

use super::fixtures::*;
use super::*;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn codecs(m: &Media) -> Vec<(u8, String, u32, Option<u8>)> {
    m.rtpmaps()
        .into_iter()
        .map(|r| (r.pt, r.encoding, r.clock_rate, r.channels))
        .collect()
}

fn text(sdp: &Sdp) -> String {
    String::from_utf8(sdp.to_bytes()).unwrap()
}

#[test]
fn direction_media_beats_session_beats_default() {
    let sdp = parsed(SESSION_DIRECTION);
    let dirs: Vec<Direction> = sdp.media.iter().map(|m| m.direction(&sdp)).collect();
    assert_eq!(
        dirs,
        [
            Direction::RecvOnly,
            Direction::SendRecv,
            Direction::Inactive
        ]
    );
    let sipp = parsed(SIPP);
    assert_eq!(sipp.media[0].direction(&sipp), Direction::SendRecv);
    let hold = parsed(DESK_PHONE_HOLD);
    assert_eq!(hold.media[0].direction(&hold), Direction::SendOnly);
    // A rejected stream is inactive whatever it says.
    let multi = parsed(MULTI);
    assert_eq!(multi.media[1].direction(&multi), Direction::Inactive);
}

#[test]
fn direction_reversed_sends_receives() {
    use Direction::*;
    assert_eq!(SendOnly.reversed(), RecvOnly);
    assert_eq!(RecvOnly.reversed(), SendOnly);
    assert_eq!(SendRecv.reversed(), SendRecv);
    assert_eq!(Inactive.reversed(), Inactive);
    let table: Vec<(bool, bool)> = [SendRecv, SendOnly, RecvOnly, Inactive]
        .iter()
        .map(|d| (d.sends(), d.receives()))
        .collect();
    assert_eq!(
        table,
        [(true, true), (true, false), (false, true), (false, false)]
    );
}

#[test]
fn set_direction_replaces_in_place() {
    let mut sdp = parsed(DESK_PHONE_HOLD);
    let m = &mut sdp.media[0];
    let at = m.attributes.iter().position(|a| a.is("sendonly")).unwrap();
    m.attributes.push(Attribute::flag("inactive")); // a second, invalid one
    m.set_direction(Direction::SendRecv);
    let dirs: Vec<&str> = m
        .attributes
        .iter()
        .filter(|a| Direction::from_attribute(a).is_some())
        .map(|a| a.name.as_str())
        .collect();
    assert_eq!(dirs, ["sendrecv"]);
    assert!(m.attributes[at].is("sendrecv"));
    // Written explicitly so it overrides a session-level direction.
    let mut s = parsed(SESSION_DIRECTION);
    s.media[0].set_direction(Direction::SendRecv);
    assert_eq!(s.media[0].direction(&s), Direction::SendRecv);
    assert!(text(&s).contains("m=audio 4000 RTP/AVP 0\r\na=sendrecv\r\n"));
}

#[test]
fn rtp_addr_uses_media_then_session_connection() {
    let multi = parsed(MULTI);
    assert_eq!(
        multi.media[0].rtp_addr(&multi),
        Some(sa("198.51.100.7:49170"))
    );
    assert_eq!(
        multi.media[2].rtp_addr(&multi),
        Some(sa("198.51.100.1:49180"))
    );
    let sipp = parsed(SIPP);
    assert_eq!(sipp.media[0].rtp_addr(&sipp), Some(sa("127.0.1.1:6000")));
}

#[test]
fn rtp_addr_none_for_port_zero_and_unspecified_addresses() {
    let multi = parsed(MULTI);
    assert_eq!(multi.media[1].rtp_addr(&multi), None, "port 0");
    let hold = parsed(RFC2543_HOLD);
    assert_eq!(hold.media[0].rtp_addr(&hold), None, "0.0.0.0");
    let v6hold = Sdp::parse(&crlf(&IPV6.replace("c=IN IP6 ::1", "c=IN IP6 ::"))).unwrap();
    assert_eq!(v6hold.media[0].rtp_addr(&v6hold), None, "::");
    let host = Sdp::parse(&crlf(
        &SIPP.replace("c=IN IP4 127.0.1.1", "c=IN IP4 pbx.example.com"),
    ))
    .unwrap();
    assert_eq!(host.media[0].rtp_addr(&host), None, "host name");
    let mcast = Sdp::parse(&crlf(
        &SIPP.replace("c=IN IP4 127.0.1.1", "c=IN IP4 233.252.0.1/127"),
    ))
    .unwrap();
    assert_eq!(
        mcast.media[0].rtp_addr(&mcast),
        Some(sa("233.252.0.1:6000"))
    );
    let none = Sdp::parse(&crlf(&SIPP.replace("c=IN IP4 127.0.1.1\n", ""))).unwrap();
    assert_eq!(none.media[0].rtp_addr(&none), None, "no c= at all");
}

#[test]
fn rtcp_addr_from_rfc3605_attribute() {
    let baresip = parsed(BARESIP);
    assert_eq!(
        baresip.media[0].rtcp_addr(&baresip),
        Some(sa("192.168.1.23:10469"))
    );
    let v6 = parsed(IPV6);
    assert_eq!(v6.media[0].rtcp_addr(&v6), Some(sa("[::1]:49171")));
    let sipp = parsed(SIPP);
    assert_eq!(sipp.media[0].rtcp_addr(&sipp), None);
    let other = Sdp::parse(&crlf(&BARESIP.replace(
        "a=rtcp:10469 IN IP4 192.168.1.23",
        "a=rtcp:53020 IN IP6 2001:db8::5",
    )))
    .unwrap();
    assert_eq!(
        other.media[0].rtcp_addr(&other),
        Some(sa("[2001:db8::5]:53020"))
    );
    let junk = Sdp::parse(&crlf(&IPV6.replace("a=rtcp:49171", "a=rtcp:port"))).unwrap();
    assert_eq!(junk.media[0].rtcp_addr(&junk), None);
}

#[test]
fn rtpmaps_in_preference_order_with_static_types() {
    let baresip = parsed(BARESIP);
    assert_eq!(
        codecs(&baresip.media[0]),
        [
            (96, "opus".into(), 48000, Some(2)),
            (0, "PCMU".into(), 8000, None),
            (8, "PCMA".into(), 8000, None),
            (101, "telephone-event".into(), 8000, None),
        ]
    );
    let hold = parsed(DESK_PHONE_HOLD);
    let names: Vec<String> = hold.media[0]
        .rtpmaps()
        .into_iter()
        .map(|r| r.encoding)
        .collect();
    assert_eq!(names, ["G722", "PCMU", "PCMA", "G729", "telephone-event"]);
    // No rtpmaps at all: static types from RFC 3551, dynamic 96 unknown.
    let bare = Sdp::parse(
        b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
          m=audio 5004 RTP/AVP 9 96 18 3 4 13 0 8 x\r\na=rtpmap:0 bad\r\n",
    )
    .unwrap();
    assert_eq!(
        codecs(&bare.media[0]),
        [
            (9, "G722".into(), 8000, None),
            (18, "G729".into(), 8000, None),
            (3, "GSM".into(), 8000, None),
            (4, "G723".into(), 8000, None),
            (13, "CN".into(), 8000, None),
            (0, "PCMU".into(), 8000, None),
            (8, "PCMA".into(), 8000, None),
        ]
    );
    // Non-RTP formats are not payload types.
    let multi = parsed(MULTI);
    assert!(multi.media[2].rtpmaps().is_empty());
    assert_eq!(
        codecs(&multi.media[1]),
        [(99, "h263-1998".into(), 90000, None)]
    );
}

#[test]
fn fmtp_by_payload_type() {
    let baresip = parsed(BARESIP);
    let m = &baresip.media[0];
    assert_eq!(
        m.fmtp(96),
        Some("stereo=1;sprop-stereo=1;maxaveragebitrate=28000")
    );
    assert_eq!(m.fmtp(101), Some("0-15"));
    assert_eq!(m.fmtp(0), None);
    // "a=fmtp:1010 ..." must not match PT 101.
    let mut m = m.clone();
    m.attributes.retain(|a| !a.is("fmtp"));
    m.attributes.push(Attribute::new("fmtp", "1010 x=1"));
    assert_eq!(m.fmtp(101), None);
}

#[test]
fn anchor_rewrites_transport_and_keeps_negotiation() {
    let offer = parsed(BARESIP);
    let out = anchor(&offer, ip("203.0.113.10"), &[20000]);
    let m = &out.media[0];
    assert_eq!(m.rtp_addr(&out), Some(sa("203.0.113.10:20000")));
    assert_eq!(m.rtcp_addr(&out), Some(sa("203.0.113.10:20001")));
    assert_eq!(m.rtpmaps(), offer.media[0].rtpmaps());
    assert_eq!(m.fmtp(96), offer.media[0].fmtp(96));
    assert_eq!(m.direction(&out), Direction::SendRecv);
    let t = text(&out);
    for gone in ["candidate", "ice-", "end-of-candidates"] {
        assert!(!t.contains(gone), "{gone} left in\n{t}");
    }
    // The far side's address survives only in the o= line (the caller's
    // OriginState replaces it).
    let far: Vec<&str> = t.lines().filter(|l| l.contains("192.168.1.23")).collect();
    assert_eq!(far, ["o=- 1832618405 2093612532 IN IP4 192.168.1.23"]);
    for kept in [
        "a=tool:",
        "a=rtcp-mux",
        "a=ptime:20",
        "a=label:1",
        "b=AS:128",
    ] {
        assert!(t.contains(kept), "{kept} dropped\n{t}");
    }
    assert_eq!(Sdp::parse(t.as_bytes()).unwrap(), out);
}

#[test]
fn anchor_keeps_crypto_direction_and_rejections() {
    let hold = parsed(DESK_PHONE_HOLD);
    let out = anchor(&hold, ip("2001:db8::10"), &[30000]);
    assert_eq!(out.connection.as_ref().unwrap().addr_type, "IP6");
    assert_eq!(
        out.media[0].rtp_addr(&out),
        Some(sa("[2001:db8::10]:30000"))
    );
    assert_eq!(out.media[0].direction(&out), Direction::SendOnly);
    assert_eq!(out.media[0].attributes, hold.media[0].attributes);

    let multi = parsed(MULTI);
    // Video was rejected (port 0) and must stay so even with a port given;
    // image has no port entry and is disabled.
    let out = anchor(&multi, ip("192.0.2.1"), &[40000, 40002]);
    let ports: Vec<u16> = out.media.iter().map(|m| m.port).collect();
    assert_eq!(ports, [40000, 0, 0]);
    assert_eq!(
        out.media[0].connection.as_ref().unwrap().address,
        "192.0.2.1"
    );
    assert_eq!(out.connection.as_ref().unwrap().address, "192.0.2.1");
    assert_eq!(out.media[0].rtp_addr(&out), Some(sa("192.0.2.1:40000")));
    assert_eq!(out.media[2].formats, ["t38"]);
    assert_eq!(out.other, multi.other);
}

#[test]
fn anchor_rtcp_removed_when_no_port_pair() {
    let v6 = parsed(IPV6);
    let out = anchor(&v6, ip("192.0.2.1"), &[]);
    assert_eq!(out.media[0].port, 0);
    assert!(!out.media[0].attributes.iter().any(|a| a.is("rtcp")));
    let out = anchor(&v6, ip("192.0.2.1"), &[65535]);
    assert!(!out.media[0].attributes.iter().any(|a| a.is("rtcp")));
    let out = anchor(&v6, ip("192.0.2.1"), &[7000]);
    assert_eq!(
        out.media[0].attributes.last(),
        Some(&Attribute::new("rtcp", "7001 IN IP4 192.0.2.1"))
    );
    // Session c= is supplied when the offer only had media-level ones.
    let no_session_c = Sdp::parse(&crlf(&SIPP.replace(
        "c=IN IP4 127.0.1.1\nt=0 0\nm=audio 6000 RTP/AVP 0 8 101\n",
        "t=0 0\nm=audio 6000 RTP/AVP 0 8 101\nc=IN IP4 127.0.1.1\n",
    )))
    .unwrap();
    let out = anchor(&no_session_c, ip("192.0.2.1"), &[7000]);
    assert_eq!(out.connection.as_ref().unwrap().address, "192.0.2.1");
    assert_eq!(
        out.media[0].connection.as_ref().unwrap().address,
        "192.0.2.1"
    );
}

#[test]
fn origin_state_bumps_version_only_on_change() {
    let mut st = OriginState::new(ip("192.0.2.1"));
    let mut a = anchor(&parsed(SIPP), ip("192.0.2.1"), &[7000]);
    st.stamp(&mut a);
    let first = a.origin.clone();
    assert_eq!(first.username, "dialtone");
    assert_eq!(
        (first.net_type.as_str(), first.addr_type.as_str()),
        ("IN", "IP4")
    );
    assert_eq!(first.address, "192.0.2.1");
    assert!(first
        .session_id
        .parse::<u64>()
        .is_ok_and(|id| id > 0 && id < 1 << 31));

    // The same content again (even from a far end whose own o= moved on).
    let mut again = anchor(&parsed(SIPP), ip("192.0.2.1"), &[7000]);
    again.origin.session_version += 7;
    st.stamp(&mut again);
    assert_eq!(again.origin, first);

    // Changed content: +1, same session id.
    let mut held = again.clone();
    held.media[0].set_direction(Direction::SendOnly);
    st.stamp(&mut held);
    assert_eq!(held.origin.session_version, first.session_version + 1);
    assert_eq!(held.origin.session_id, first.session_id);
    st.stamp(&mut held);
    assert_eq!(held.origin.session_version, first.session_version + 1);

    // Back to the earlier content is a change too.
    st.stamp(&mut again);
    assert_eq!(again.origin.session_version, first.session_version + 2);
    assert_eq!(st.origin(), &again.origin);

    let v6 = OriginState::new(ip("2001:db8::1"));
    assert_eq!(v6.origin().addr_type, "IP6");
}

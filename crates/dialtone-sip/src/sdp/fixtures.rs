//! Real-world-shaped SDP bodies shared by the sdp tests: what SIPp, baresip,
//! desk phones and gateways actually send. Written with LF for legibility;
//! [`crlf`] gives the wire form. Each is in RFC 8866 line order, so writing
//! it back must reproduce it byte for byte.

/// SIPp's uac scenario, extended with PCMA and telephone-event.
pub const SIPP: &str = "v=0
o=user1 53655765 2353687637 IN IP4 127.0.1.1
s=-
c=IN IP4 127.0.1.1
t=0 0
m=audio 6000 RTP/AVP 0 8 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=ptime:20
";

/// baresip with the ICE module: opus first, RTCP address and mux offered.
pub const BARESIP: &str = "v=0
o=- 1832618405 2093612532 IN IP4 192.168.1.23
s=-
c=IN IP4 192.168.1.23
t=0 0
a=tool:baresip 3.10.1
a=ice-options:trickle
m=audio 10468 RTP/AVP 96 0 8 101
b=AS:128
a=rtpmap:96 opus/48000/2
a=fmtp:96 stereo=1;sprop-stereo=1;maxaveragebitrate=28000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=rtcp:10469 IN IP4 192.168.1.23
a=rtcp-mux
a=sendrecv
a=label:1
a=ice-ufrag:Lbns
a=ice-pwd:tDKhs9eiHRfJ5Jv8MGPFQU
a=candidate:1 1 UDP 2113932031 192.168.1.23 10468 typ host
a=candidate:2 1 UDP 1677724415 203.0.113.7 10468 typ srflx raddr 192.168.1.23 rport 10468
a=end-of-candidates
a=ptime:20
";

/// A desk phone putting the call on hold (RFC 3264 style, a=sendonly),
/// G.722 preferred, best-effort SRTP.
pub const DESK_PHONE_HOLD: &str = "v=0
o=- 20013 20014 IN IP4 10.0.0.50
s=SDP data
c=IN IP4 10.0.0.50
t=0 0
m=audio 11800 RTP/AVP 9 0 8 18 101
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:18 G729/8000
a=fmtp:18 annexb=no
a=ptime:20
a=sendonly
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz
";

/// An SRTP offer (RTP/SAVP) with three SDES lines: one with an MKI, one
/// usable, one with a suite and a session parameter dialtone does not do.
pub const SDES_SAVP: &str = "v=0
o=- 1 1 IN IP4 192.0.2.10
s=-
c=IN IP4 192.0.2.10
t=0 0
m=audio 4000 RTP/SAVP 0 8 101
a=rtpmap:101 telephone-event/8000
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4
a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk
a=crypto:3 AES_256_CM_HMAC_SHA1_80 inline:QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkQUJDREVGR0hJSktMTU5PUFFS UNENCRYPTED_SRTP
a=sendrecv
";

/// A gateway holding the old RFC 2543 way: c=0.0.0.0, no direction.
pub const RFC2543_HOLD: &str = "v=0
o=CiscoSystemsSIP-GW-UserAgent 6396 1 IN IP4 192.168.0.20
s=SIP Call
c=IN IP4 0.0.0.0
t=0 0
m=audio 16384 RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
";

/// IPv6, with an RFC 3605 a=rtcp that gives only a port.
pub const IPV6: &str = "v=0
o=alice 2890844526 2890844527 IN IP6 ::1
s=-
c=IN IP6 ::1
t=0 0
m=audio 49170 RTP/AVP 0 97
a=rtpmap:97 iLBC/8000
a=fmtp:97 mode=30
a=rtcp:49171
";

/// Several m= lines: audio with its own c=, video rejected (port 0), T.38;
/// plus the informational session lines and a repeat time.
pub const MULTI: &str = "v=0
o=jdoe 3724394400 3724394405 IN IP4 198.51.100.1
s=Call to John Smith
i=SDP Offer #1
u=http://www.jdoe.example.com/home.html
e=Jane Doe <jane@jdoe.example.com>
p=+1 617 555-6011
c=IN IP4 198.51.100.1
b=AS:512
t=2873397496 2873404696
r=7d 1h 0 25h
a=group:BUNDLE audio
m=audio 49170 RTP/AVP 0 18
i=main audio
c=IN IP4 198.51.100.7
b=AS:64
a=rtpmap:0 PCMU/8000
a=rtpmap:18 G729/8000
m=video 0 RTP/AVP 99
b=AS:384
a=rtpmap:99 h263-1998/90000
m=image 49180 udptl t38
a=T38FaxVersion:0
a=T38FaxRateManagement:transferredTCF
";

/// Direction at session level, overridden on some media lines.
pub const SESSION_DIRECTION: &str = "v=0
o=- 7 7 IN IP4 10.1.1.1
s=-
c=IN IP4 10.1.1.1
t=0 0
a=recvonly
m=audio 4000 RTP/AVP 0
m=audio 4002 RTP/AVP 8
a=sendrecv
m=video 4004 RTP/AVP 31
a=inactive
";

pub const ALL: &[&str] = &[
    SIPP,
    BARESIP,
    DESK_PHONE_HOLD,
    RFC2543_HOLD,
    IPV6,
    MULTI,
    SESSION_DIRECTION,
];

/// The wire form of a fixture: CRLF line ends.
pub fn crlf(s: &str) -> Vec<u8> {
    s.replace('\n', "\r\n").into_bytes()
}

/// Parses a fixture's wire form, failing the test with the error.
pub fn parsed(s: &str) -> super::Sdp {
    super::Sdp::parse(&crlf(s)).unwrap_or_else(|e| panic!("{e}"))
}

//! Parse and serialize throughput of `dialtone_sip::message` on three
//! typical messages: an INVITE with SDP (~900 bytes), a REGISTER with
//! digest Authorization and a 200 OK to an INVITE. Criterion reports the
//! time per message and bytes/s (`Throughput::Bytes` is the wire size).

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use dialtone_sip::message::{parse, to_bytes};

const INVITE: &str = "INVITE sip:+14155550123@gw.example.com;user=phone SIP/2.0\r\n\
Via: SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Alice Liddell\" <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
To: <sip:+14155550123@gw.example.com;user=phone>\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@203.0.113.10:5060;transport=udp>\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, REFER, NOTIFY\r\n\
Supported: replaces, timer, 100rel\r\n\
Session-Expires: 1800;refresher=uac\r\n\
Min-SE: 90\r\n\
User-Agent: ExamplePhone/4.2.1\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 313\r\n\
\r\n\
v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 203.0.113.10\r\n\
s=-\r\n\
c=IN IP4 203.0.113.10\r\n\
t=0 0\r\n\
m=audio 49170 RTP/AVP 0 8 9 18 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:18 G729/8000\r\n\
a=fmtp:18 annexb=no\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

const REGISTER: &str = "REGISTER sip:registrar.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bKnashds7;rport\r\n\
Max-Forwards: 70\r\n\
From: Bob <sip:bob@example.com>;tag=a73kszlfl\r\n\
To: Bob <sip:bob@example.com>\r\n\
Call-ID: 1j9FpLxk3uxtm8tn@192.0.2.4\r\n\
CSeq: 2 REGISTER\r\n\
Contact: <sip:bob@192.0.2.4:5060;transport=udp>;expires=3600;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\"\r\n\
Authorization: Digest username=\"bob\", realm=\"example.com\", nonce=\"ea9c8e88df84f1cec4341ae6cbe5a359\", uri=\"sip:registrar.example.com\", response=\"dfe56131d1958046689d83306477ecc\", algorithm=MD5, cnonce=\"0a4f113b\", qop=auth, nc=00000001, opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"\r\n\
User-Agent: ExamplePhone/4.2.1\r\n\
Expires: 3600\r\n\
Content-Length: 0\r\n\
\r\n";

const OK: &str = "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bK4b43c2ff8.1;received=198.51.100.1\r\n\
Via: SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bK776asdhds;rport=5060\r\n\
Record-Route: <sip:198.51.100.1;lr>\r\n\
From: \"Alice Liddell\" <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
To: <sip:+14155550123@gw.example.com;user=phone>;tag=a6c85cf\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:gw@192.0.2.20:5060>\r\n\
Supported: replaces, timer\r\n\
Session-Expires: 1800;refresher=uac\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 132\r\n\
\r\n\
v=0\r\n\
o=gw 53655765 2353687637 IN IP4 192.0.2.20\r\n\
s=-\r\n\
c=IN IP4 192.0.2.20\r\n\
t=0 0\r\n\
m=audio 3456 RTP/AVP 0 101\r\n\
a=rtpmap:0 PCMU/8000\r\n";

fn messages() -> [(&'static str, &'static [u8]); 3] {
    [
        ("invite_sdp", INVITE.as_bytes()),
        ("register_auth", REGISTER.as_bytes()),
        ("ok_200", OK.as_bytes()),
    ]
}

fn bench_parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    for (name, bytes) in messages() {
        // The whole buffer is one message: Content-Length matches the body.
        match parse(bytes) {
            Ok(msg) => assert_eq!(to_bytes(&msg).len(), bytes.len(), "{name}"),
            Err(e) => panic!("{name} does not parse: {e}"),
        }
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(name, |b| b.iter(|| parse(black_box(bytes))));
        // Baseline: rsip 0.4's own parser on the same bytes (it checks far
        // less: no compact forms, no header grammar, lossy bodies).
        group.bench_function(format!("{name}/rsip_baseline"), |b| {
            b.iter(|| rsip::SipMessage::try_from(black_box(bytes)))
        });
    }
    group.finish();
}

fn bench_serialize(c: &mut Criterion) {
    let mut group = c.benchmark_group("serialize");
    for (name, bytes) in messages() {
        let msg = match parse(bytes) {
            Ok(msg) => msg,
            Err(e) => panic!("{name} does not parse: {e}"),
        };
        group.throughput(Throughput::Bytes(to_bytes(&msg).len() as u64));
        group.bench_function(name, |b| b.iter(|| to_bytes(black_box(&msg))));
        // Baseline: rsip's Display.
        group.bench_function(format!("{name}/rsip_baseline"), |b| {
            b.iter(|| black_box(&msg).to_string().into_bytes())
        });
    }
    group.finish();
}

criterion_group!(benches, bench_parse, bench_serialize);
criterion_main!(benches);

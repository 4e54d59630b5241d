//! An SDP body from an INVITE, a re-INVITE or an answer: `Sdp::parse`, every
//! accessor call control uses, anchoring it on our media ports, the codecs
//! the media engine would build from it, its SDES crypto lines, and writing
//! it back. Errors are expected; panics are not, and what we write must read
//! back to the same bytes (the properties of dialtone-sip's sdp fuzz_tests,
//! on libFuzzer's inputs).

#![no_main]

use std::net::IpAddr;

use dialtone_media::codec::{Codec, OpusParams};
use dialtone_sip::sdp::{anchor, append_formats, Crypto, Direction, OriginState, Sdp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(sdp) = Sdp::parse(data) else {
        return;
    };
    for m in &sdp.media {
        let _ = m.direction(&sdp);
        let _ = m.rtp_addr(&sdp);
        let _ = m.rtcp_addr(&sdp);
        let _ = m.effective_connection(&sdp);
        for r in m.rtpmaps() {
            let fmtp = m.fmtp(r.pt);
            let _ = Codec::from_rtpmap(&r.encoding, r.clock_rate, r.channels, fmtp);
            if let Some(f) = fmtp {
                let p = OpusParams::from_fmtp(f);
                assert_eq!(OpusParams::from_fmtp(&p.to_fmtp()), p, "opus fmtp {f:?}");
            }
        }
        // SDES keys (RFC 4568): what we would write reads back the same.
        for c in m.cryptos() {
            assert_eq!(Crypto::parse(&c.value()), Some(c.clone()), "crypto {c:?}");
        }
        let mut m3 = m.clone();
        m3.set_secure_profile(!m.is_secure_profile());
        m3.set_cryptos(&m.cryptos());
        let formats = m.formats();
        let _ = append_formats(&formats, &formats);
        let mut m2 = m.clone();
        m2.set_formats(&formats);
        m2.set_direction(Direction::Inactive);
        assert_eq!(m2.direction(&sdp), Direction::Inactive);
    }
    let ip: IpAddr = [192, 0, 2, 1].into();
    let mut anchored = anchor(&sdp, ip, &[4000, 65535, 0]);
    OriginState::new(ip).stamp(&mut anchored);
    let ip6: IpAddr = "2001:db8::1".parse().unwrap_or_else(|_| unreachable!());
    let anchored6 = anchor(&sdp, ip6, &[10000]);
    for s in [&sdp, &anchored, &anchored6] {
        let once = s.to_bytes();
        let reparsed = Sdp::parse(&once).unwrap_or_else(|e| {
            panic!(
                "our own output does not parse: {e}\n{}",
                String::from_utf8_lossy(&once)
            )
        });
        assert_eq!(reparsed.to_bytes(), once, "not a fixed point");
    }
});

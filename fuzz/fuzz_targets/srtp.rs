//! A datagram arriving on an SRTP endpoint: `SrtpContext::unprotect_rtp` or
//! `unprotect_rtcp` on whatever comes in (never a panic; a plain length no
//! longer than the datagram), and the same bytes as a plain packet through
//! `protect_*` and back, which must give them back unchanged.
//!
//! Input: one mode byte (bit 0: the _32 suite; bit 1: RTCP), then the
//! datagram.

#![no_main]

use dialtone_media::srtp::{MasterKey, SrtpContext, Suite};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, pkt)) = data.split_first() else {
        return;
    };
    let suite = if mode & 1 == 0 {
        Suite::AesCm128HmacSha1_80
    } else {
        Suite::AesCm128HmacSha1_32
    };
    let rtcp = mode & 2 != 0;
    let Some(key) = MasterKey::from_bytes(&[7u8; MasterKey::LEN]) else {
        return;
    };
    let mut rx = SrtpContext::new(suite, &key);
    let mut tx = SrtpContext::new(suite, &key);

    let mut incoming = pkt.to_vec();
    let opened = if rtcp {
        rx.unprotect_rtcp(&mut incoming)
    } else {
        rx.unprotect_rtp(&mut incoming)
    };
    if let Ok(n) = opened {
        assert!(n <= pkt.len());
    }

    let mut sealed = pkt.to_vec();
    let protected = if rtcp {
        tx.protect_rtcp(&mut sealed)
    } else {
        tx.protect_rtp(&mut sealed)
    };
    if protected.is_ok() {
        let mut rx = SrtpContext::new(suite, &key);
        let back = if rtcp {
            rx.unprotect_rtcp(&mut sealed)
        } else {
            rx.unprotect_rtp(&mut sealed)
        };
        match back {
            Ok(n) => assert_eq!(&sealed[..n], pkt, "protect then unprotect"),
            Err(e) => panic!("{e}: what was protected does not unprotect"),
        }
    }
});

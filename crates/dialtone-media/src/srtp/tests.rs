use super::*;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

fn master(key: &str, salt: &str) -> MasterKey {
    let mut b = hex(key);
    b.extend(hex(salt));
    MasterKey::from_bytes(&b).unwrap_or_else(|| panic!("30 bytes"))
}

/// An RTP packet: PCMU, `seq`, `ssrc`, with `payload`.
fn rtp(seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend(seq.to_be_bytes());
    p.extend((u32::from(seq) * 160).to_be_bytes());
    p.extend(ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// A receiver report with one report block's worth of bytes after it.
fn rtcp(ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x81, 201, 0, 7];
    p.extend(ssrc.to_be_bytes());
    p.extend([0x5a; 24]);
    p
}

fn pair(suite: Suite) -> (SrtpContext, SrtpContext) {
    let k = MasterKey::random();
    (SrtpContext::new(suite, &k), SrtpContext::new(suite, &k))
}

#[test]
fn aes_cm_keystream_matches_rfc3711_b2() {
    let key: [u8; 16] = hex("2B7E151628AED2A6ABF7158809CF4F3C")
        .try_into()
        .unwrap_or_else(|_| panic!("16 bytes"));
    let cipher = Aes128::new(&key.into());
    let iv: [u8; 16] = hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000")
        .try_into()
        .unwrap_or_else(|_| panic!("16 bytes"));
    let mut ks = vec![0u8; 48];
    keystream_xor(&cipher, &iv, &mut ks);
    assert_eq!(
        ks,
        hex(concat!(
            "E03EAD0935C95E80E166B16DD92B4EB4",
            "D23513162B02D0F72A43A2FE4A5F97AB",
            "41E95B3BB0A2E8DD477901E4FCA894C0"
        ))
    );
}

#[test]
fn key_derivation_matches_rfc3711_b3() {
    let m = master(
        "E1F97A0D3E018BE0D64FA32C06DE4139",
        "0EC675AD498AFEEBB6960B3AABE6",
    );
    let kdf = kdf::Kdf::new(&m);
    let mut enc = [0u8; 16];
    kdf.derive(0x00, &mut enc);
    assert_eq!(enc.to_vec(), hex("C61E7A93744F39EE10734AFE3FF7A087"));
    let mut salt = [0u8; 14];
    kdf.derive(0x02, &mut salt);
    assert_eq!(salt.to_vec(), hex("30CBBC08863D8C85D49DB34A9AE1"));
    let mut auth = [0u8; 20];
    kdf.derive(0x01, &mut auth);
    assert_eq!(
        auth.to_vec(),
        hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4")
    );
}

#[test]
fn rtp_round_trips_with_both_suites() {
    for suite in [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32] {
        let (mut tx, mut rx) = pair(suite);
        let plain = rtp(1000, 0x1234_5678, &[0xd5; 160]);
        let mut pkt = plain.clone();
        tx.protect_rtp(&mut pkt).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(pkt.len(), plain.len() + suite.rtp_tag_len());
        assert_eq!(pkt[..12], plain[..12], "the header stays clear");
        assert_ne!(pkt[12..172], plain[12..], "the payload is encrypted");
        let n = rx.unprotect_rtp(&mut pkt).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&pkt[..n], &plain[..]);
    }
}

#[test]
fn rtcp_round_trips_with_both_suites_and_a_10_byte_tag() {
    for suite in [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32] {
        let (mut tx, mut rx) = pair(suite);
        for _ in 0..3 {
            let plain = rtcp(0xfeed_f00d);
            let mut pkt = plain.clone();
            tx.protect_rtcp(&mut pkt).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(pkt.len(), plain.len() + 4 + 10);
            assert_eq!(pkt[plain.len()] & 0x80, 0x80, "the E flag");
            let n = rx
                .unprotect_rtcp(&mut pkt)
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(&pkt[..n], &plain[..]);
        }
    }
}

#[test]
fn a_flipped_bit_or_the_wrong_key_fails_authentication() {
    let (mut tx, mut rx) = pair(Suite::AesCm128HmacSha1_80);
    let mut pkt = rtp(7, 1, &[1; 40]);
    tx.protect_rtp(&mut pkt).unwrap_or_else(|e| panic!("{e}"));
    for i in [1, 13, pkt.len() - 1] {
        let mut bad = pkt.clone();
        bad[i] ^= 0x01;
        assert_eq!(
            rx.unprotect_rtp(&mut bad),
            Err(SrtpError::Auth),
            "bit in byte {i}"
        );
    }
    let mut other = SrtpContext::new(Suite::AesCm128HmacSha1_80, &MasterKey::random());
    assert_eq!(other.unprotect_rtp(&mut pkt.clone()), Err(SrtpError::Auth));
    let mut rtcp_pkt = rtcp(9);
    tx.protect_rtcp(&mut rtcp_pkt)
        .unwrap_or_else(|e| panic!("{e}"));
    rtcp_pkt[10] ^= 0x80;
    assert_eq!(rx.unprotect_rtcp(&mut rtcp_pkt), Err(SrtpError::Auth));
    // The tampered packets left no trace: the genuine one still passes.
    assert!(rx.unprotect_rtp(&mut pkt).is_ok());
}

#[test]
fn a_replay_is_refused_and_late_packets_within_the_window_are_not() {
    let (mut tx, mut rx) = pair(Suite::AesCm128HmacSha1_80);
    let sent: Vec<Vec<u8>> = (0..100u16)
        .map(|s| {
            let mut p = rtp(s, 5, &[s as u8; 20]);
            tx.protect_rtp(&mut p).unwrap_or_else(|e| panic!("{e}"));
            p
        })
        .collect();
    let open = |rx: &mut SrtpContext, i: usize| rx.unprotect_rtp(&mut sent[i].clone());
    assert!(open(&mut rx, 0).is_ok());
    assert_eq!(open(&mut rx, 0), Err(SrtpError::Replay));
    assert!(open(&mut rx, 90).is_ok());
    assert!(open(&mut rx, 50).is_ok(), "40 behind: within the window");
    assert_eq!(open(&mut rx, 50), Err(SrtpError::Replay));
    assert_eq!(
        open(&mut rx, 10),
        Err(SrtpError::Replay),
        "80 behind: too old"
    );
    let mut r = rtcp(5);
    tx.protect_rtcp(&mut r).unwrap_or_else(|e| panic!("{e}"));
    assert!(rx.unprotect_rtcp(&mut r.clone()).is_ok());
    assert_eq!(rx.unprotect_rtcp(&mut r), Err(SrtpError::Replay));
}

#[test]
fn the_rollover_counter_follows_the_sequence_number_across_its_wrap() {
    let (mut tx, mut rx) = pair(Suite::AesCm128HmacSha1_32);
    // 65,530 … 65,535, 0 … 9, with one packet from before the wrap late.
    let seqs: Vec<u16> = (65_530..=65_535).chain(0..10).collect();
    let mut sent: Vec<Vec<u8>> = seqs
        .iter()
        .map(|&s| {
            let mut p = rtp(s, 77, &[0x11; 32]);
            tx.protect_rtp(&mut p).unwrap_or_else(|e| panic!("{e}"));
            p
        })
        .collect();
    let late = sent.remove(5); // seq 65,535
    for mut p in sent {
        let plain = rx.unprotect_rtp(&mut p).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&p[12..plain], &[0x11; 32]);
    }
    let mut late = late;
    assert!(
        rx.unprotect_rtp(&mut late).is_ok(),
        "a late packet from the old ROC"
    );
    // Past the wrap the sender's ROC is 1: a receiver that missed it would
    // not verify; ours did, so a fresh packet goes on verifying.
    let mut p = rtp(10, 77, &[0x11; 32]);
    tx.protect_rtp(&mut p).unwrap_or_else(|e| panic!("{e}"));
    assert!(rx.unprotect_rtp(&mut p).is_ok());
}

#[test]
fn csrcs_and_a_header_extension_stay_clear_and_round_trip() {
    let (mut tx, mut rx) = pair(Suite::AesCm128HmacSha1_80);
    // V=2, X=1, CC=2; two CSRCs; a one-word extension; 20 bytes of payload.
    let mut plain = vec![0x92, 0x00, 0x00, 0x01, 0, 0, 0, 160, 0, 0, 0, 42];
    plain.extend([0, 0, 0, 1, 0, 0, 0, 2]);
    plain.extend([0xbe, 0xde, 0x00, 0x01, 0x10, 0xff, 0x00, 0x00]);
    plain.extend([0x33; 20]);
    let mut pkt = plain.clone();
    tx.protect_rtp(&mut pkt).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        pkt[..28],
        plain[..28],
        "CSRCs and extension are not encrypted"
    );
    assert_ne!(pkt[28..48], plain[28..]);
    let n = rx.unprotect_rtp(&mut pkt).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(&pkt[..n], &plain[..]);
}

#[test]
fn short_or_foreign_packets_are_errors_not_panics() {
    let (mut tx, mut rx) = pair(Suite::AesCm128HmacSha1_80);
    assert_eq!(rx.unprotect_rtp(&mut [0x80; 15]), Err(SrtpError::TooShort));
    assert_eq!(rx.unprotect_rtp(&mut [0x00; 40]), Err(SrtpError::NotRtp));
    assert_eq!(rx.unprotect_rtcp(&mut [0x81; 12]), Err(SrtpError::TooShort));
    assert_eq!(tx.protect_rtp(&mut vec![0x80; 5]), Err(SrtpError::NotRtp));
    // A header extension longer than the packet.
    let mut p = vec![
        0x90, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xbe, 0xde, 0xff, 0xff,
    ];
    assert_eq!(tx.protect_rtp(&mut p), Err(SrtpError::NotRtp));
}

#[test]
fn the_key_is_not_in_debug_output() {
    let k = master(
        "E1F97A0D3E018BE0D64FA32C06DE4139",
        "0EC675AD498AFEEBB6960B3AABE6",
    );
    assert_eq!(format!("{k:?}"), "MasterKey(..)");
    assert_ne!(MasterKey::random(), MasterKey::random());
    assert_eq!(
        Suite::from_sdp("AES_CM_128_HMAC_SHA1_32"),
        Some(Suite::AesCm128HmacSha1_32)
    );
    assert_eq!(Suite::from_sdp("aes_cm_128_hmac_sha1_80"), None);
}

use super::*;

const KEY_A: &str = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
const KEY_B: &str = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk";

fn media(proto: &str, crypto: &[&str]) -> Media {
    let mut text = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 {proto} 0 101\r\n"
    );
    for c in crypto {
        text.push_str(&format!("a=crypto:{c}\r\n"));
    }
    let sdp = Sdp::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    sdp.media[0].clone()
}

fn ours(m: &Media) -> Vec<Crypto> {
    m.cryptos()
}

#[test]
fn optional_answers_an_srtp_offer_with_its_own_key_under_the_offered_tag() {
    let mut sdes = Sdes::new(SrtpPolicy::Optional);
    let offer = media(
        "RTP/SAVP",
        &[
            &format!("3 AES_256_CM_HMAC_SHA1_80 inline:{KEY_A}{KEY_A}"),
            &format!("4 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A}"),
        ],
    );
    assert_eq!(sdes.check_offer(&offer), Ok(()));
    // The other party's description, plain, is what the answer starts from.
    let mut out = media("RTP/AVP", &[]);
    sdes.answer(&offer, &mut out);
    assert_eq!(out.proto, "RTP/SAVP");
    let lines = ours(&out);
    assert_eq!(lines.len(), 1);
    assert_eq!(
        (lines[0].tag, lines[0].suite.as_str()),
        (4, "AES_CM_128_HMAC_SHA1_80")
    );
    assert_ne!(
        lines[0].key,
        offer.cryptos()[1].key,
        "dialtone sends with its own key"
    );
    let SrtpMode::On { suite, tx, rx } = sdes.mode(Some(&offer)) else {
        panic!("not SRTP");
    };
    assert_eq!(suite, Suite::AesCm128HmacSha1_80);
    assert_eq!(tx.as_bytes().as_slice(), lines[0].key.as_slice());
    assert_eq!(rx.as_bytes().as_slice(), offer.cryptos()[1].key.as_slice());
}

#[test]
fn optional_offers_plain_and_drops_the_other_partys_keys() {
    let mut sdes = Sdes::new(SrtpPolicy::Optional);
    let mut out = media(
        "RTP/SAVP",
        &[&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A}")],
    );
    sdes.offer(&mut out);
    assert_eq!(out.proto, "RTP/AVP");
    assert!(!out.has_crypto());
    assert_eq!(sdes.mode(Some(&media("RTP/AVP", &[]))), SrtpMode::Off);
    // An answer that carries keys to a plain offer does not turn SRTP on.
    let stray = media(
        "RTP/AVP",
        &[&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B}")],
    );
    assert_eq!(sdes.mode(Some(&stray)), SrtpMode::Off);
}

#[test]
fn required_offers_both_suites_and_keys_the_one_answered() {
    let mut sdes = Sdes::new(SrtpPolicy::Required);
    let mut out = media("RTP/AVP", &[]);
    sdes.offer(&mut out);
    assert_eq!(out.proto, "RTP/SAVP");
    let offered = ours(&out);
    let suites: Vec<_> = offered.iter().map(|c| (c.tag, c.suite.as_str())).collect();
    assert_eq!(
        suites,
        [
            (1, "AES_CM_128_HMAC_SHA1_80"),
            (2, "AES_CM_128_HMAC_SHA1_32")
        ]
    );
    assert_ne!(offered[0].key, offered[1].key, "one key per suite");
    let answer = media(
        "RTP/SAVP",
        &[&format!("2 AES_CM_128_HMAC_SHA1_32 inline:{KEY_B}")],
    );
    let SrtpMode::On { suite, tx, .. } = sdes.mode(Some(&answer)) else {
        panic!("not SRTP");
    };
    assert_eq!(suite, Suite::AesCm128HmacSha1_32);
    assert_eq!(tx.as_bytes().as_slice(), offered[1].key.as_slice());
    // A plain answer to a required offer: no media at all, never plain.
    assert_eq!(sdes.mode(Some(&media("RTP/AVP", &[]))), SrtpMode::Refuse);
}

#[test]
fn a_re_offer_repeats_the_same_keys() {
    let mut sdes = Sdes::new(SrtpPolicy::Required);
    let (mut first, mut second) = (media("RTP/AVP", &[]), media("RTP/AVP", &[]));
    sdes.offer(&mut first);
    sdes.offer(&mut second);
    assert_eq!(ours(&first), ours(&second));
}

#[test]
fn each_policy_refuses_what_it_must() {
    let savp = media(
        "RTP/SAVP",
        &[&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A}")],
    );
    let best_effort = media(
        "RTP/AVP",
        &[&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A}")],
    );
    let plain = media("RTP/AVP", &[]);
    let unknown = media(
        "RTP/SAVP",
        &[&format!("1 F8_128_HMAC_SHA1_80 inline:{KEY_A}")],
    );
    let dtls = media("UDP/TLS/RTP/SAVPF", &[]);
    let check = |p, m: &Media| Sdes::new(p).check_offer(m);
    assert_eq!(check(SrtpPolicy::Off, &savp), Err("SRTP Not Allowed"));
    assert_eq!(check(SrtpPolicy::Off, &best_effort), Ok(()));
    assert_eq!(check(SrtpPolicy::Off, &plain), Ok(()));
    assert_eq!(check(SrtpPolicy::Optional, &savp), Ok(()));
    assert_eq!(check(SrtpPolicy::Optional, &plain), Ok(()));
    assert_eq!(
        check(SrtpPolicy::Optional, &unknown),
        Err("No Usable SDES Crypto Suite")
    );
    assert_eq!(check(SrtpPolicy::Required, &plain), Err("SRTP Required"));
    assert_eq!(check(SrtpPolicy::Required, &best_effort), Ok(()));
    assert_eq!(
        check(SrtpPolicy::Optional, &dtls),
        Err("DTLS-SRTP Not Supported")
    );
}

#[test]
fn off_answers_a_best_effort_offer_in_plain() {
    let mut sdes = Sdes::new(SrtpPolicy::Off);
    let offer = media(
        "RTP/AVP",
        &[&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A}")],
    );
    let mut out = media(
        "RTP/SAVP",
        &[&format!("9 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B}")],
    );
    sdes.answer(&offer, &mut out);
    assert_eq!(out.proto, "RTP/AVP");
    assert!(!out.has_crypto());
    assert_eq!(sdes.mode(Some(&offer)), SrtpMode::Off);
}

#[test]
fn a_re_offer_to_a_party_on_srtp_stays_srtp_whatever_the_policy() {
    for (proto, policy) in [
        ("RTP/SAVP", SrtpPolicy::Optional),
        ("RTP/AVP", SrtpPolicy::Optional),
    ] {
        let mut sdes = Sdes::new(policy);
        let offer = media(
            proto,
            &[&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A}")],
        );
        let mut answer = media("RTP/AVP", &[]);
        sdes.answer(&offer, &mut answer);
        // Later dialtone re-offers (hold, transfer, session refresh).
        let mut reoffer = media("RTP/AVP", &[]);
        sdes.offer(&mut reoffer);
        assert_eq!(reoffer.proto, proto, "the profile agreed is kept");
        let lines = ours(&reoffer);
        assert_eq!(lines[0].key, ours(&answer)[0].key, "and the key");
        // The party answers the re-offer plain: SRTP is over with it.
        sdes.took_answer(Some(&media("RTP/AVP", &[])));
        let mut third = media("RTP/AVP", &[]);
        sdes.offer(&mut third);
        assert!(!third.has_crypto());
    }
}

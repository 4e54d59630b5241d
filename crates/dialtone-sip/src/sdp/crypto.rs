//! SDES keys in SDP (RFC 4568): the `a=crypto` lines of an m= section, and
//! the RTP profile (RTP/AVP or RTP/SAVP) that says whether a stream must be
//! secure. This file only reads and writes the lines; which suites dialtone
//! speaks and what it does with the keys is call control's business.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;

use super::{Attribute, Media};

/// One `a=crypto:<tag> <crypto-suite> inline:<key||salt>` line that a
/// one-key SRTP context can use: a single inline key with no MKI and no
/// session parameters (RFC 4568 §6.3 requires refusing a line whose session
/// parameters are not understood, and dialtone understands none).
#[derive(Clone, PartialEq, Eq)]
pub struct Crypto {
    /// Identifies the line in an offer; the answer repeats the tag it took.
    pub tag: u32,
    /// `AES_CM_128_HMAC_SHA1_80`, …, as written.
    pub suite: String,
    /// The master key followed by the master salt, decoded.
    pub key: Vec<u8>,
}

impl std::fmt::Debug for Crypto {
    // The key stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crypto")
            .field("tag", &self.tag)
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

impl Crypto {
    /// Reads an `a=crypto` value. `None` for a line dialtone cannot use:
    /// bad syntax, several keys, an MKI, or any session parameter.
    pub fn parse(value: &str) -> Option<Crypto> {
        let mut words = value.split_ascii_whitespace();
        let tag = words.next()?;
        if tag.is_empty() || tag.len() > 9 || !tag.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let suite = words.next()?.to_string();
        let params = words.next()?;
        if words.next().is_some() || params.contains(';') {
            return None;
        }
        let inline = params.strip_prefix("inline:")?;
        // key||salt, then optional |lifetime and |MKI:length.
        let mut parts = inline.split('|');
        let key = decode(parts.next()?)?;
        for part in parts {
            // A lifetime (a number or 2^n) is fine; an MKI is not.
            if part.contains(':') {
                return None;
            }
        }
        Some(Crypto {
            tag: tag.parse().ok()?,
            suite,
            key,
        })
    }

    /// The attribute value: `<tag> <suite> inline:<base64 key||salt>`.
    pub fn value(&self) -> String {
        format!(
            "{} {} inline:{}",
            self.tag,
            self.suite,
            STANDARD.encode(&self.key)
        )
    }
}

fn decode(text: &str) -> Option<Vec<u8>> {
    STANDARD
        .decode(text)
        .or_else(|_| STANDARD_NO_PAD.decode(text))
        .ok()
}

impl Media {
    /// The crypto lines of this stream that dialtone can use, in the
    /// writer's order of preference.
    pub fn cryptos(&self) -> Vec<Crypto> {
        self.attributes
            .iter()
            .filter(|a| a.is("crypto"))
            .filter_map(|a| a.value.as_deref().and_then(Crypto::parse))
            .collect()
    }

    /// Whether the stream carries any `a=crypto` line (usable or not).
    pub fn has_crypto(&self) -> bool {
        self.attributes.iter().any(|a| a.is("crypto"))
    }

    /// Replaces every crypto line with `lines`, placed after the others.
    pub fn set_cryptos(&mut self, lines: &[Crypto]) {
        self.attributes.retain(|a| !a.is("crypto"));
        self.attributes
            .extend(lines.iter().map(|c| Attribute::new("crypto", c.value())));
    }

    /// Whether the profile is a secure RTP one (RTP/SAVP, RTP/SAVPF, and
    /// the DTLS ones, which dialtone does not speak).
    pub fn is_secure_profile(&self) -> bool {
        self.proto.to_ascii_uppercase().contains("SAVP")
    }

    /// Switches RTP/AVP(F) to RTP/SAVP(F) or back; other profiles stay.
    pub fn set_secure_profile(&mut self, secure: bool) {
        let proto = self.proto.to_ascii_uppercase();
        let new = match (proto.as_str(), secure) {
            ("RTP/AVP", true) => "RTP/SAVP",
            ("RTP/AVPF", true) => "RTP/SAVPF",
            ("RTP/SAVP", false) => "RTP/AVP",
            ("RTP/SAVPF", false) => "RTP/AVPF",
            _ => return,
        };
        self.proto = new.to_string();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";

    #[test]
    fn reads_an_inline_key_with_or_without_a_lifetime() {
        for v in [
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}"),
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^20"),
        ] {
            let c = Crypto::parse(&v).unwrap_or_else(|| panic!("{v}"));
            assert_eq!(c.tag, 1);
            assert_eq!(c.suite, "AES_CM_128_HMAC_SHA1_80");
            assert_eq!(c.key.len(), 30);
        }
        let c = Crypto::parse(&format!("7 AES_CM_128_HMAC_SHA1_32 inline:{KEY}"));
        assert_eq!(
            c.map(|c| c.value()),
            Some(format!("7 AES_CM_128_HMAC_SHA1_32 inline:{KEY}"))
        );
    }

    #[test]
    fn refuses_what_one_key_context_cannot_do() {
        for v in [
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^20|1:4"),
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY};inline:{KEY}"),
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY} UNENCRYPTED_SRTP"),
            format!("x AES_CM_128_HMAC_SHA1_80 inline:{KEY}"),
            "1 AES_CM_128_HMAC_SHA1_80 inline:!!!".to_string(),
            "1 AES_CM_128_HMAC_SHA1_80".to_string(),
        ] {
            assert!(Crypto::parse(&v).is_none(), "{v}");
        }
    }

    #[test]
    fn only_the_usable_lines_of_an_offer_are_read_and_they_write_back() {
        let sdp = super::super::Sdp::parse(super::super::fixtures::SDES_SAVP.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        let m = &sdp.media[0];
        assert!(m.is_secure_profile() && m.has_crypto());
        let usable = m.cryptos();
        assert_eq!(usable.len(), 1, "{usable:?}");
        assert_eq!(
            (usable[0].tag, usable[0].suite.as_str()),
            (2, "AES_CM_128_HMAC_SHA1_32")
        );
        let mut m2 = m.clone();
        m2.set_cryptos(&usable);
        assert_eq!(m2.cryptos(), usable);
        assert_eq!(m2.attributes.iter().filter(|a| a.is("crypto")).count(), 1);
        assert!(
            !format!("{:?}", usable[0]).contains("QUJD"),
            "no key in Debug"
        );
    }

    #[test]
    fn the_profile_follows_security_and_leaves_others_alone() {
        let sdp = super::super::Sdp::parse(
            b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\nm=audio 4002 UDP/TLS/RTP/SAVPF 0\r\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let (mut plain, mut dtls) = (sdp.media[0].clone(), sdp.media[1].clone());
        assert!(!plain.is_secure_profile());
        plain.set_secure_profile(true);
        assert_eq!(plain.proto, "RTP/SAVP");
        plain.set_secure_profile(false);
        assert_eq!(plain.proto, "RTP/AVP");
        dtls.set_secure_profile(false);
        assert_eq!(dtls.proto, "UDP/TLS/RTP/SAVPF");
        assert!(dtls.is_secure_profile());
    }
}

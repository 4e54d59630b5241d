//! SRTP and SRTCP (RFC 3711) with the two SDES suites of RFC 4568 §6.2:
//! AES_CM_128_HMAC_SHA1_80 and AES_CM_128_HMAC_SHA1_32 — AES-128 in counter
//! mode, HMAC-SHA1 authentication, a 16-byte master key and a 14-byte
//! master salt, key derivation rate 0, no MKI. One [`SrtpContext`] protects
//! or unprotects one direction of one endpoint (RTP and RTCP, every SSRC
//! in it).
//!
//! Written here rather than taken from a crate: the Rust SRTP crates either
//! bind libsrtp or come inside a whole WebRTC stack; this is the small part
//! a SIP B2BUA needs, on RustCrypto's AES and HMAC, checked against the
//! RFC 3711 Appendix B vectors and against libre's SRTP (baresip) end to end.

mod kdf;
mod replay;
mod rtcp;
mod rtp;

#[cfg(test)]
mod tests;

use std::collections::HashMap;

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::Aes128;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha1::Sha1;

use replay::SsrcState;

type HmacSha1 = Hmac<Sha1>;

/// At most this many SSRCs are tracked per context (a B2BUA leg sees one or
/// two at a time); the least recently used is forgotten beyond it.
const MAX_SSRCS: usize = 16;

/// An SDES crypto suite (RFC 4568 §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Suite {
    AesCm128HmacSha1_80,
    AesCm128HmacSha1_32,
}

impl Suite {
    /// The suite an `a=crypto` line names (names are case-sensitive).
    pub fn from_sdp(name: &str) -> Option<Suite> {
        match name {
            "AES_CM_128_HMAC_SHA1_80" => Some(Suite::AesCm128HmacSha1_80),
            "AES_CM_128_HMAC_SHA1_32" => Some(Suite::AesCm128HmacSha1_32),
            _ => None,
        }
    }

    pub fn sdp_name(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    /// The SRTP authentication tag length; SRTCP's is 10 bytes with both
    /// suites (RFC 4568 §6.2.2).
    pub fn rtp_tag_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 => 10,
            Suite::AesCm128HmacSha1_32 => 4,
        }
    }
}

/// SRTCP's authentication tag length, for both suites.
const RTCP_TAG_LEN: usize = 10;

/// A master key (16 bytes) and master salt (14 bytes), as carried in an
/// SDES `inline:` key parameter. Its `Debug` does not show the key.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey([u8; MasterKey::LEN]);

impl MasterKey {
    pub const LEN: usize = 30;

    /// A fresh key from the operating system's generator.
    pub fn random() -> MasterKey {
        let mut k = [0u8; Self::LEN];
        rand::rngs::OsRng.fill_bytes(&mut k);
        MasterKey(k)
    }

    /// Exactly 30 bytes, else `None`.
    pub fn from_bytes(b: &[u8]) -> Option<MasterKey> {
        Some(MasterKey(b.try_into().ok()?))
    }

    pub fn as_bytes(&self) -> &[u8; Self::LEN] {
        &self.0
    }

    fn key(&self) -> &[u8] {
        &self.0[..16]
    }

    fn salt(&self) -> &[u8] {
        &self.0[16..]
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

/// Why a packet could not be protected or unprotected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    #[error("packet too short for SRTP")]
    TooShort,
    #[error("authentication failed")]
    Auth,
    #[error("replayed or too old")]
    Replay,
    #[error("not an RTP/RTCP packet")]
    NotRtp,
}

/// The session keys of one stream kind (RTP or RTCP), derived once.
struct SessionKeys {
    cipher: Aes128,
    salt: [u8; 14],
    /// HMAC keyed with the session auth key, cloned per packet.
    auth: HmacSha1,
}

impl SessionKeys {
    fn derive(master: &MasterKey, enc: u8, auth: u8, salt: u8) -> SessionKeys {
        let kdf = kdf::Kdf::new(master);
        let mut k = [0u8; 16];
        kdf.derive(enc, &mut k);
        let mut a = [0u8; 20];
        kdf.derive(auth, &mut a);
        let mut s = [0u8; 14];
        kdf.derive(salt, &mut s);
        SessionKeys {
            cipher: Aes128::new(&k.into()),
            salt: s,
            // HMAC takes a key of any length.
            auth: <HmacSha1 as Mac>::new_from_slice(&a)
                .unwrap_or_else(|_| unreachable!("HMAC accepts any key length")),
        }
    }

    /// XORs `data` with the AES-CM keystream for `ssrc` and `index`
    /// (RFC 3711 §4.1.1: IV = salt·2^16 ⊕ SSRC·2^64 ⊕ index·2^16).
    fn crypt(&self, ssrc: u32, index: u64, data: &mut [u8]) {
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&self.salt);
        for (b, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
            *b ^= s;
        }
        for (b, s) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
            *b ^= s;
        }
        keystream_xor(&self.cipher, &iv, data);
    }

    /// The full HMAC-SHA1 of `parts`.
    fn tag(&self, parts: &[&[u8]]) -> [u8; 20] {
        let mut mac = self.auth.clone();
        for p in parts {
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }
}

/// XORs `data` with AES-CM blocks E(iv + j), j = 0, 1, … in the low 16
/// bits (they are zero in every IV built here).
fn keystream_xor(cipher: &Aes128, iv: &[u8; 16], data: &mut [u8]) {
    for (j, chunk) in data.chunks_mut(16).enumerate() {
        let mut block = *iv;
        let ctr = u16::try_from(j).unwrap_or(u16::MAX).to_be_bytes();
        block[14] ^= ctr[0];
        block[15] ^= ctr[1];
        let mut b = block.into();
        cipher.encrypt_block(&mut b);
        for (d, k) in chunk.iter_mut().zip(b.iter()) {
            *d ^= k;
        }
    }
}

/// One direction's SRTP and SRTCP state: session keys and, per SSRC, the
/// rollover counter, highest sequence number, replay windows and SRTCP
/// index.
pub struct SrtpContext {
    suite: Suite,
    rtp: SessionKeys,
    rtcp: SessionKeys,
    ssrcs: HashMap<u32, SsrcState>,
    /// Use counter for least-recently-used eviction.
    clock: u64,
}

impl SrtpContext {
    pub fn new(suite: Suite, key: &MasterKey) -> SrtpContext {
        SrtpContext {
            suite,
            rtp: SessionKeys::derive(key, 0x00, 0x01, 0x02),
            rtcp: SessionKeys::derive(key, 0x03, 0x04, 0x05),
            ssrcs: HashMap::new(),
            clock: 0,
        }
    }

    /// The state of `ssrc`, created (and the oldest evicted) if new.
    fn ssrc(&mut self, ssrc: u32) -> &mut SsrcState {
        self.clock += 1;
        if !self.ssrcs.contains_key(&ssrc) && self.ssrcs.len() >= MAX_SSRCS {
            if let Some(old) = self
                .ssrcs
                .iter()
                .min_by_key(|(_, s)| s.used)
                .map(|(k, _)| *k)
            {
                self.ssrcs.remove(&old);
            }
        }
        let clock = self.clock;
        let st = self.ssrcs.entry(ssrc).or_default();
        st.used = clock;
        st
    }
}

impl std::fmt::Debug for SrtpContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpContext")
            .field("suite", &self.suite)
            .field("ssrcs", &self.ssrcs.len())
            .finish_non_exhaustive()
    }
}

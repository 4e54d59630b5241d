//! Self-validating nonces and the opaque value tied to them. A nonce is
//!
//! ```text
//! hex( issued_at: u64 BE unix seconds (8) || random (8) || HMAC-SHA256(secret, "dialtone-nonce" || issued_at || random)[..16] )
//! ```
//!
//! i.e. 64 lowercase hex characters. A forged or altered nonce fails the MAC
//! without any server state, and expiry is read from the embedded timestamp.
//! The opaque is `hex(HMAC-SHA256(secret, "dialtone-opaque" || nonce)[..8])`,
//! so it too is checkable statelessly and differs per nonce. Hex rather than
//! base64 because it needs no quoting care and we have no base64 dependency.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::time::{SystemTime, UNIX_EPOCH};

use super::AuthError;

type HmacSha256 = Hmac<Sha256>;

const TS_LEN: usize = 8;
const RAND_LEN: usize = 8;
const MAC_LEN: usize = 16;
const RAW_LEN: usize = TS_LEN + RAND_LEN + MAC_LEN;
/// Length of a nonce in characters.
pub(crate) const NONCE_HEX_LEN: usize = RAW_LEN * 2;

/// Where the server takes "now" from; injectable so tests can age nonces.
pub(crate) type Clock = Box<dyn Fn() -> SystemTime + Send + Sync>;

/// Unix seconds; a clock before 1970 reads as 0 rather than failing.
pub(crate) fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The per-server secret that signs nonces.
pub(crate) struct NonceKey {
    /// HMAC keyed with a random 32-byte secret; cloned per use.
    keyed: HmacSha256,
}

impl NonceKey {
    pub fn random() -> Self {
        let mut secret = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut secret);
        Self::from_secret(&secret)
    }

    /// A key every holder of `secret` shares: nodes behind one load
    /// balancer accept each other's nonces.
    pub fn from_secret(secret: &[u8]) -> Self {
        // HMAC accepts keys of any length, so this cannot fail.
        let keyed = HmacSha256::new_from_slice(secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        NonceKey { keyed }
    }

    fn mac(&self) -> HmacSha256 {
        self.keyed.clone()
    }

    /// A fresh nonce stamped with `now` (unix seconds).
    pub fn mint(&self, now: u64) -> String {
        let mut raw = [0u8; RAW_LEN];
        raw[..TS_LEN].copy_from_slice(&now.to_be_bytes());
        rand::thread_rng().fill_bytes(&mut raw[TS_LEN..TS_LEN + RAND_LEN]);
        let mut mac = self.mac();
        mac.update(b"dialtone-nonce");
        mac.update(&raw[..TS_LEN + RAND_LEN]);
        let tag = mac.finalize().into_bytes();
        raw[TS_LEN + RAND_LEN..].copy_from_slice(&tag[..MAC_LEN]);
        hex::encode(raw)
    }

    /// Checks that `nonce` is one we minted and returns its issue time.
    /// Does not check expiry: the caller decides when, because a stale nonce
    /// with a correct response is reported differently from a bad one.
    pub fn verify(&self, nonce: &str) -> Result<u64, AuthError> {
        // Only the exact lowercase form we mint: the nonce string keys the
        // replay table, so two spellings of one nonce must not both be valid.
        if nonce.len() != NONCE_HEX_LEN
            || !nonce
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(AuthError::BadNonce);
        }
        let raw = hex::decode(nonce).map_err(|_| AuthError::BadNonce)?;
        let (body, tag) = raw.split_at(TS_LEN + RAND_LEN);
        let mut mac = self.mac();
        mac.update(b"dialtone-nonce");
        mac.update(body);
        // verify_truncated_left compares in constant time.
        mac.verify_truncated_left(tag)
            .map_err(|_| AuthError::BadNonce)?;
        let mut ts = [0u8; TS_LEN];
        ts.copy_from_slice(&body[..TS_LEN]);
        Ok(u64::from_be_bytes(ts))
    }

    /// The opaque value that goes with `nonce`.
    pub fn opaque(&self, nonce: &str) -> String {
        let mut mac = self.mac();
        mac.update(b"dialtone-opaque");
        mac.update(nonce.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..8])
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::*;

    #[test]
    fn mint_verify_round_trip() {
        let k = NonceKey::random();
        let n = k.mint(1_700_000_000);
        assert_eq!(n.len(), NONCE_HEX_LEN);
        assert_eq!(k.verify(&n), Ok(1_700_000_000));
        // One spelling only (the replay table is keyed by the string).
        if n.bytes().any(|b| b.is_ascii_alphabetic()) {
            assert_eq!(k.verify(&n.to_uppercase()), Err(AuthError::BadNonce));
        }
        assert_ne!(k.mint(1_700_000_000), n, "random part must differ");
    }

    #[test]
    fn forged_nonces_fail() {
        let k = NonceKey::random();
        let n = k.mint(1_700_000_000);
        // Flip every position in turn, including the timestamp (an attacker
        // trying to extend the lifetime).
        for i in 0..n.len() {
            let mut b = n.clone().into_bytes();
            b[i] = if b[i] == b'0' { b'1' } else { b'0' };
            let forged = String::from_utf8(b).unwrap();
            assert_eq!(k.verify(&forged), Err(AuthError::BadNonce), "pos {i}");
        }
        assert_eq!(k.verify(""), Err(AuthError::BadNonce));
        assert_eq!(k.verify(&n[..62]), Err(AuthError::BadNonce));
        assert_eq!(k.verify(&format!("{n}00")), Err(AuthError::BadNonce));
        assert_eq!(k.verify(&"zz".repeat(32)), Err(AuthError::BadNonce));
        // Another server's nonce.
        assert_eq!(NonceKey::random().verify(&n), Err(AuthError::BadNonce));
    }

    #[test]
    fn opaque_is_per_nonce_and_per_key() {
        let k = NonceKey::random();
        let (a, b) = (k.mint(1), k.mint(1));
        assert_eq!(k.opaque(&a), k.opaque(&a));
        assert_ne!(k.opaque(&a), k.opaque(&b));
        assert_ne!(k.opaque(&a), NonceKey::random().opaque(&a));
        assert_eq!(k.opaque(&a).len(), 16);
    }
}

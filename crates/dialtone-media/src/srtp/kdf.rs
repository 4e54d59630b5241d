//! SRTP key derivation (RFC 3711 §4.3) at key derivation rate 0: each
//! session key is the AES-CM keystream under the master key, from an IV of
//! the master salt with the key's label XORed in at byte 7.

use aes::cipher::KeyInit;
use aes::Aes128;

use super::{keystream_xor, MasterKey};

pub(super) struct Kdf {
    cipher: Aes128,
    salt: [u8; 14],
}

impl Kdf {
    pub(super) fn new(master: &MasterKey) -> Kdf {
        let mut salt = [0u8; 14];
        salt.copy_from_slice(master.salt());
        let mut key = [0u8; 16];
        key.copy_from_slice(master.key());
        Kdf {
            cipher: Aes128::new(&key.into()),
            salt,
        }
    }

    /// Fills `out` with the session key of `label` (0x00 SRTP encryption,
    /// 0x01 SRTP auth, 0x02 SRTP salt, 0x03–0x05 the same for SRTCP).
    pub(super) fn derive(&self, label: u8, out: &mut [u8]) {
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&self.salt);
        // key_id = label || index DIV kdr (0 at rate 0), 56 bits, XORed into
        // the low end of the 112-bit salt: the label lands on byte 7.
        iv[7] ^= label;
        out.fill(0);
        keystream_xor(&self.cipher, &iv, out);
    }
}

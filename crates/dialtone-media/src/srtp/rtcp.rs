//! SRTCP packets (RFC 3711 §3.4): the first 8 bytes (header and sender
//! SSRC) stay clear, the rest is encrypted; then the E flag with the 31-bit
//! SRTCP index, then a 10-byte tag over all of it. Each SSRC sent has its
//! own index.

use subtle::ConstantTimeEq;

use super::{SrtpContext, SrtpError, RTCP_TAG_LEN};

/// The E flag: the packet is encrypted.
const ENCRYPTED: u32 = 0x8000_0000;

impl SrtpContext {
    /// Encrypts and authenticates the compound RTCP packet in `pkt`,
    /// appending E|index and the tag.
    pub fn protect_rtcp(&mut self, pkt: &mut Vec<u8>) -> Result<(), SrtpError> {
        if pkt.len() < 8 || pkt[0] >> 6 != 2 {
            return Err(SrtpError::NotRtp);
        }
        let ssrc = u32::from_be_bytes([pkt[4], pkt[5], pkt[6], pkt[7]]);
        let st = self.ssrc(ssrc);
        let index = st.rtcp_sent;
        st.rtcp_sent = (index + 1) & !ENCRYPTED;
        self.rtcp.crypt(ssrc, u64::from(index), &mut pkt[8..]);
        pkt.extend_from_slice(&(ENCRYPTED | index).to_be_bytes());
        let tag = self.rtcp.tag(&[pkt]);
        pkt.extend_from_slice(&tag[..RTCP_TAG_LEN]);
        Ok(())
    }

    /// Verifies (and, if its E flag says so, decrypts) the SRTCP packet in
    /// `pkt`; the plain RTCP packet's length.
    pub fn unprotect_rtcp(&mut self, pkt: &mut [u8]) -> Result<usize, SrtpError> {
        let end = pkt
            .len()
            .checked_sub(RTCP_TAG_LEN)
            .filter(|e| *e >= 12)
            .ok_or(SrtpError::TooShort)?;
        if pkt[0] >> 6 != 2 {
            return Err(SrtpError::NotRtp);
        }
        let ssrc = u32::from_be_bytes([pkt[4], pkt[5], pkt[6], pkt[7]]);
        let e_index = u32::from_be_bytes([pkt[end - 4], pkt[end - 3], pkt[end - 2], pkt[end - 1]]);
        let index = u64::from(e_index & !ENCRYPTED);
        let window = self.ssrcs.get(&ssrc).map(|s| s.rtcp).unwrap_or_default();
        if !window.fresh(index) {
            return Err(SrtpError::Replay);
        }
        let tag = self.rtcp.tag(&[&pkt[..end]]);
        if !bool::from(tag[..RTCP_TAG_LEN].ct_eq(&pkt[end..])) {
            return Err(SrtpError::Auth);
        }
        let plain = end - 4;
        if e_index & ENCRYPTED != 0 {
            self.rtcp.crypt(ssrc, index, &mut pkt[8..plain]);
        }
        self.ssrc(ssrc).rtcp.accept(index);
        Ok(plain)
    }
}

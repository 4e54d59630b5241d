//! SRTP packets (RFC 3711 §3.1): the RTP header (with CSRCs and any header
//! extension) stays clear, the payload is encrypted, and the whole packet
//! plus the rollover counter is authenticated by a tag appended at the end.

use subtle::ConstantTimeEq;

use super::{SrtpContext, SrtpError};

impl SrtpContext {
    /// Encrypts and authenticates the RTP packet in `pkt`, appending the tag.
    pub fn protect_rtp(&mut self, pkt: &mut Vec<u8>) -> Result<(), SrtpError> {
        let hdr = header_len(pkt)?;
        let (seq, ssrc) = ids(pkt);
        let st = self.ssrc(ssrc);
        let index = st.rtp.estimate(seq);
        st.rtp.accept(index);
        self.rtp.crypt(ssrc, index, &mut pkt[hdr..]);
        let roc = roc_bytes(index);
        let tag = self.rtp.tag(&[pkt, &roc]);
        pkt.extend_from_slice(&tag[..self.suite.rtp_tag_len()]);
        Ok(())
    }

    /// Verifies and decrypts the SRTP packet in `pkt`; the plain RTP
    /// packet's length (`pkt` without its tag).
    pub fn unprotect_rtp(&mut self, pkt: &mut [u8]) -> Result<usize, SrtpError> {
        let tag_len = self.suite.rtp_tag_len();
        let end = pkt
            .len()
            .checked_sub(tag_len)
            .filter(|e| *e >= 12)
            .ok_or(SrtpError::TooShort)?;
        let hdr = header_len(&pkt[..end])?;
        let (seq, ssrc) = ids(pkt);
        // Nothing is created for an SSRC until a packet of it verifies, so
        // forged packets cannot push real streams out.
        let window = self.ssrcs.get(&ssrc).map(|s| s.rtp).unwrap_or_default();
        let index = window.estimate(seq);
        if !window.fresh(index) {
            return Err(SrtpError::Replay);
        }
        let roc = roc_bytes(index);
        let tag = self.rtp.tag(&[&pkt[..end], &roc]);
        if !bool::from(tag[..tag_len].ct_eq(&pkt[end..])) {
            return Err(SrtpError::Auth);
        }
        self.rtp.crypt(ssrc, index, &mut pkt[hdr..end]);
        self.ssrc(ssrc).rtp.accept(index);
        Ok(end)
    }
}

/// The rollover counter of a 48-bit index, as authenticated (§4.2).
fn roc_bytes(index: u64) -> [u8; 4] {
    u32::try_from(index >> 16).unwrap_or(u32::MAX).to_be_bytes()
}

/// Sequence number and SSRC of a packet whose header is known complete.
fn ids(pkt: &[u8]) -> (u16, u32) {
    (
        u16::from_be_bytes([pkt[2], pkt[3]]),
        u32::from_be_bytes([pkt[8], pkt[9], pkt[10], pkt[11]]),
    )
}

/// Where the payload starts: after the fixed header, the CSRCs and any
/// header extension (RFC 3550 §5.3.1). `NotRtp` unless version 2 and whole.
pub(super) fn header_len(pkt: &[u8]) -> Result<usize, SrtpError> {
    if pkt.len() < 12 || pkt[0] >> 6 != 2 {
        return Err(SrtpError::NotRtp);
    }
    let mut n = 12 + 4 * usize::from(pkt[0] & 0x0f);
    if pkt[0] & 0x10 != 0 {
        let words = pkt.get(n + 2..n + 4).ok_or(SrtpError::NotRtp)?;
        n += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    if n > pkt.len() {
        return Err(SrtpError::NotRtp);
    }
    Ok(n)
}

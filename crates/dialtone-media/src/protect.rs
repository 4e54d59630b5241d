//! SRTP on one endpoint: call control keys it from the SDES exchange with
//! the endpoint's peer ([`SrtpMode`]), and every datagram the peer sends is
//! verified and decrypted on receipt ([`Protection::inbound`]) and every one
//! sent to it encrypted last ([`Protection::outbound`]). Everything between
//! — latching, relaying, rewriting, transcoding, the audio port, RTCP
//! reports — sees plain RTP, so dialtone terminates SRTP per leg as an SBC
//! does: one leg may be SRTP and the other plain, each with its own keys.

use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tracing::{debug, trace};

use crate::packet::is_rtcp;
use crate::srtp::{MasterKey, SrtpContext, Suite};

/// How an endpoint protects the media it exchanges with its peer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum SrtpMode {
    /// Plain RTP and RTCP.
    #[default]
    Off,
    /// SRTP and SRTCP with `suite`: dialtone sends with `tx` (the key in its
    /// own SDP), the peer with `rx` (the key in the peer's SDP).
    On {
        suite: Suite,
        tx: MasterKey,
        rx: MasterKey,
    },
    /// SRTP was required but not agreed: nothing is sent to the peer and
    /// nothing it sends is accepted (fail closed, never plain).
    Refuse,
}

const OFF: u8 = 0;
const ON: u8 = 1;
const REFUSE: u8 = 2;

/// What to send for one outgoing datagram.
pub(crate) enum Outbound<'a> {
    Plain(&'a [u8]),
    Protected(Vec<u8>),
    Drop,
}

/// The endpoint's SRTP state. Plain endpoints pay one atomic load per
/// datagram; the two contexts have their own locks, since the receive task
/// and the sending tasks (relay, reports) run in parallel.
#[derive(Default)]
pub(crate) struct Protection {
    state: AtomicU8,
    mode: Mutex<SrtpMode>,
    rx: Mutex<Option<SrtpContext>>,
    tx: Mutex<Option<SrtpContext>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Protection {
    /// Applies `mode`. The same keys again (a re-INVITE that kept them)
    /// keep the contexts, so rollover counters and replay windows go on; a
    /// new key for one direction restarts that direction only.
    pub(crate) fn set(&self, id: u64, mode: SrtpMode) {
        let mut current = lock(&self.mode);
        if *current == mode {
            return;
        }
        debug!(
            endpoint = id,
            mode = describe(&mode).unwrap_or("off"),
            "SRTP"
        );
        match (&*current, &mode) {
            // One side rekeyed (RFC 4568 §7.1.4): only its context starts
            // afresh; the other keeps its rollover counters.
            (
                SrtpMode::On {
                    suite: s0,
                    tx: tx0,
                    rx: rx0,
                },
                SrtpMode::On { suite, tx, rx },
            ) if s0 == suite => {
                if rx0 != rx {
                    *lock(&self.rx) = Some(SrtpContext::new(*suite, rx));
                }
                if tx0 != tx {
                    *lock(&self.tx) = Some(SrtpContext::new(*suite, tx));
                }
            }
            (_, SrtpMode::On { suite, tx, rx }) => {
                *lock(&self.rx) = Some(SrtpContext::new(*suite, rx));
                *lock(&self.tx) = Some(SrtpContext::new(*suite, tx));
            }
            (_, SrtpMode::Off | SrtpMode::Refuse) => {
                *lock(&self.rx) = None;
                *lock(&self.tx) = None;
            }
        }
        let state = match mode {
            SrtpMode::Off => OFF,
            SrtpMode::On { .. } => ON,
            SrtpMode::Refuse => REFUSE,
        };
        self.state.store(state, Relaxed);
        *current = mode;
    }

    /// For stats: the suite in use, "refused", or `None` for plain RTP.
    pub(crate) fn describe(&self) -> Option<&'static str> {
        describe(&lock(&self.mode))
    }

    /// A datagram from the peer, in place: its plain length, or `None`
    /// when it fails authentication, is a replay, or media is refused.
    pub(crate) fn inbound(&self, id: u64, pkt: &mut [u8]) -> Option<usize> {
        match self.state.load(Relaxed) {
            OFF => Some(pkt.len()),
            ON => {
                let mut guard = lock(&self.rx);
                let ctx = guard.as_mut()?;
                let r = if is_rtcp(pkt) {
                    ctx.unprotect_rtcp(pkt)
                } else {
                    ctx.unprotect_rtp(pkt)
                };
                r.map_err(|e| trace!(endpoint = id, error = %e, "SRTP packet rejected"))
                    .ok()
            }
            _ => None,
        }
    }

    /// A plain datagram for the peer, protected if the endpoint is SRTP.
    pub(crate) fn outbound<'a>(&self, id: u64, pkt: &'a [u8]) -> Outbound<'a> {
        match self.state.load(Relaxed) {
            OFF => Outbound::Plain(pkt),
            ON => {
                let mut guard = lock(&self.tx);
                let Some(ctx) = guard.as_mut() else {
                    return Outbound::Drop;
                };
                // The one allocation per packet, on SRTP endpoints only: the
                // tag makes the packet longer than the caller's buffer.
                let mut out = Vec::with_capacity(pkt.len() + 24);
                out.extend_from_slice(pkt);
                let r = if is_rtcp(pkt) {
                    ctx.protect_rtcp(&mut out)
                } else {
                    ctx.protect_rtp(&mut out)
                };
                match r {
                    Ok(()) => Outbound::Protected(out),
                    Err(e) => {
                        trace!(endpoint = id, error = %e, "cannot protect packet");
                        Outbound::Drop
                    }
                }
            }
            _ => Outbound::Drop,
        }
    }
}

fn describe(mode: &SrtpMode) -> Option<&'static str> {
    match mode {
        SrtpMode::Off => None,
        SrtpMode::Refuse => Some("refused"),
        SrtpMode::On { suite, .. } => Some(suite.sdp_name()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(tx: &MasterKey, rx: &MasterKey) -> SrtpMode {
        SrtpMode::On {
            suite: Suite::AesCm128HmacSha1_80,
            tx: tx.clone(),
            rx: rx.clone(),
        }
    }

    /// A PCMU-sized RTP packet with sequence number `seq`.
    fn rtp(seq: u16) -> Vec<u8> {
        let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9];
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p.extend([0xd5; 160]);
        p
    }

    fn sent(p: &Protection, seq: u16) -> Vec<u8> {
        match p.outbound(1, &rtp(seq)) {
            Outbound::Protected(v) => v,
            _ => panic!("not protected"),
        }
    }

    #[test]
    fn a_rekey_of_one_direction_keeps_the_others_rollover_counter() {
        let (ours, theirs, theirs2) = (
            MasterKey::random(),
            MasterKey::random(),
            MasterKey::random(),
        );
        let p = Protection::default();
        p.set(1, on(&ours, &theirs));
        // The far end's receiver, keyed with our key, follows our stream
        // across a sequence-number wrap.
        let mut far = SrtpContext::new(Suite::AesCm128HmacSha1_80, &ours);
        for seq in (65_530..=65_535).chain(0..5) {
            let mut pkt = sent(&p, seq);
            assert!(far.unprotect_rtp(&mut pkt).is_ok(), "seq {seq}");
        }
        // The far end sends with a new key: our sending side must go on
        // with rollover counter 1, or the far end could not verify it.
        p.set(1, on(&ours, &theirs2));
        let mut pkt = sent(&p, 5);
        assert!(
            far.unprotect_rtp(&mut pkt).is_ok(),
            "after the far end rekeyed"
        );
        // Our receiving side took the new key.
        let mut far_tx = SrtpContext::new(Suite::AesCm128HmacSha1_80, &theirs2);
        let mut pkt = rtp(77);
        far_tx
            .protect_rtp(&mut pkt)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(p.inbound(1, &mut pkt).is_some());
    }

    #[test]
    fn refused_and_off_endpoints() {
        let p = Protection::default();
        let mut pkt = rtp(1);
        let len = pkt.len();
        assert_eq!(p.inbound(1, &mut pkt), Some(len), "plain by default");
        p.set(1, SrtpMode::Refuse);
        assert_eq!(p.inbound(1, &mut rtp(1)), None);
        assert!(matches!(p.outbound(1, &rtp(1)), Outbound::Drop));
        assert_eq!(p.describe(), Some("refused"));
        p.set(1, SrtpMode::Off);
        assert!(matches!(p.outbound(1, &rtp(1)), Outbound::Plain(_)));
    }
}

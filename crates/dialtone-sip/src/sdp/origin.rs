//! The o= line dialtone writes towards one peer of a B2BUA call. RFC 3264 §8
//! requires that successive SDPs sent in a dialog keep the origin's
//! username, session id and address, and that the version goes up by exactly
//! one when (and only when) the description changed. A B2BUA builds each
//! SDP afresh from the other leg's, so it cannot reuse the far end's o=
//! line: the two legs' versions move independently (a re-INVITE on one leg
//! may change nothing on the other). [`OriginState`] tracks one direction
//! of one leg.

use std::net::IpAddr;

use rand::Rng;

use super::{Origin, Sdp};

/// Per peer, per dialog: the origin we put on SDPs sent to that peer, and
/// the last SDP we stamped, to tell whether the next one changed.
#[derive(Clone, Debug)]
pub struct OriginState {
    origin: Origin,
    last: Option<Sdp>,
}

impl OriginState {
    /// A fresh origin: username `dialtone`, a random session id (below
    /// 2^31, because some agents store it in a signed 32-bit integer; only
    /// the tuple with username and address must be unique), version 1, and
    /// `addr` as the origin address.
    pub fn new(addr: IpAddr) -> Self {
        let session_id: u32 = rand::thread_rng().gen_range(1..=i32::MAX as u32);
        OriginState {
            origin: Origin {
                username: "dialtone".to_string(),
                session_id: session_id.to_string(),
                session_version: 1,
                net_type: "IN".to_string(),
                addr_type: match addr {
                    IpAddr::V4(_) => "IP4",
                    IpAddr::V6(_) => "IP6",
                }
                .to_string(),
                address: addr.to_string(),
            },
            last: None,
        }
    }

    /// Puts our o= line on `sdp`, which is about to be sent to this peer.
    /// The version is bumped by one if anything but the o= line differs
    /// from the last SDP stamped here; resending the same description (a
    /// re-INVITE answered without change, a retransmitted offer) keeps it.
    pub fn stamp(&mut self, sdp: &mut Sdp) {
        sdp.origin = self.origin.clone();
        if self.last.as_ref().is_some_and(|last| last != sdp) {
            self.origin.session_version = self.origin.session_version.wrapping_add(1);
            sdp.origin.session_version = self.origin.session_version;
        }
        self.last = Some(sdp.clone());
    }

    /// The o= line the next unchanged SDP will carry.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }
}

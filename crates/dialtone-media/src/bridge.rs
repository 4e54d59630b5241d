//! [`Bridge`]: relays media between two endpoints. Task layout: one task
//! relays all four routes — RTP a→b, RTP b→a, RTCP a→b, RTCP b→a — and
//! watches for RTP timeouts ([`relay`]); its sends never wait, so a slow
//! peer one way never delays the other. A transcoding bridge runs a task
//! per direction, one per endpoint for its RTCP reports, and the watchdog's
//! own. All of them stop on one watch signal.

use std::io;
use std::mem::MaybeUninit;
use std::sync::Arc;
use std::time::Instant;

use socket2::SockRef;
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::endpoint::Endpoint;
use crate::format::PtMap;
use crate::record::Recording;
use crate::relay::{self, Channel, Route};
use crate::stats::EndpointStats;
use crate::transcode::Transcoder;
use crate::watchdog::Watchdog;
use crate::MediaEvents;
use crate::{reports, StreamFormat};

/// Upper bound on datagrams discarded per socket when a bridge starts, so a
/// flood cannot keep `start` spinning.
const DRAIN_MAX: usize = 10_000;

/// Relays between two endpoints: RTP arriving at `a` goes out of `b` to b's
/// peer and vice versa; RTCP likewise between the RTCP sockets. Dropping the
/// bridge stops the relay (the endpoints are then dropped too, once the tasks
/// have ended); [`Bridge::stop`] stops it and gives the endpoints back.
pub struct Bridge {
    a: Endpoint,
    b: Endpoint,
    // Dropping the sender (with the Bridge) also stops every task.
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Bridge {
    /// Starts relaying. Whatever already sits in the four sockets' buffers is
    /// discarded first: it is stale (sent before this bridge existed).
    ///
    /// With the same codec on both endpoints (or no [`StreamFormat`] set),
    /// packets are relayed untouched but for payload type numbers; with two
    /// different codecs dialtone can both decode and encode, it transcodes;
    /// with two different codecs it cannot, it relays and logs a warning
    /// (call control should not have negotiated that).
    ///
    /// # Panics
    /// Outside a tokio runtime (it spawns the relay tasks).
    pub fn start(a: Endpoint, b: Endpoint, events: impl Into<MediaEvents>) -> Bridge {
        Bridge::start_recorded(a, b, events, None)
    }

    /// Like [`start`](Self::start), also feeding `recording`: `a`'s party on
    /// its left channel, `b`'s on the right.
    pub fn start_recorded(
        a: Endpoint,
        b: Endpoint,
        events: impl Into<MediaEvents>,
        recording: Option<&Recording>,
    ) -> Bridge {
        for ep in [&a.shared, &b.shared] {
            drain(ep.id, &ep.rtp);
            drain(ep.id, &ep.rtcp);
            // The timeout counts afresh from this bridge.
            ep.lock().timeout_reported = false;
        }
        let started = Instant::now();
        let (stop, stop_rx) = watch::channel(false);
        let (sa, sb) = (&a.shared, &b.shared);
        let (fa, fb) = (sa.format(), sb.format());
        let (tap_a, tap_b) = match recording {
            Some(r) => (Some(r.tap(0)), Some(r.tap(1))),
            None => (None, None),
        };
        for (tap, f) in [(&tap_a, &fa), (&tap_b, &fb)] {
            if let (Some(tap), Some(f)) = (tap, f) {
                tap.format(f);
            }
        }
        let watchdog = Watchdog::new(
            [Arc::clone(sa), Arc::clone(sb)],
            started,
            sa.rtp_timeout.min(sb.rtp_timeout),
            events.into(),
        );
        let mut tasks = Vec::with_capacity(5);
        match transcoders(sa.id, sb.id, fa.as_ref(), fb.as_ref()) {
            Some((ab, ba)) => {
                debug!(a = sa.id, b = sb.id, "bridge transcodes");
                for (t, from, to, tap) in [(ab, sa, sb, tap_a), (ba, sb, sa, tap_b)] {
                    let (from, to) = (Arc::clone(from), Arc::clone(to));
                    tasks.push(tokio::spawn(t.run(from, to, tap, stop_rx.clone())));
                }
                for ep in [sa, sb] {
                    tasks.push(tokio::spawn(reports::run(Arc::clone(ep), stop_rx.clone())));
                }
                if let Some(watchdog) = watchdog {
                    tasks.push(tokio::spawn(watchdog.run(stop_rx)));
                }
            }
            None => {
                let path = |chan, from: &Arc<_>, to: &Arc<_>, pts, tap| relay::Path {
                    chan,
                    from: Arc::clone(from),
                    to: Arc::clone(to),
                    route: Route { pts, tap },
                };
                let paths = vec![
                    path(
                        Channel::Rtp,
                        sa,
                        sb,
                        PtMap::between(fa.as_ref(), fb.as_ref()),
                        tap_a,
                    ),
                    path(
                        Channel::Rtp,
                        sb,
                        sa,
                        PtMap::between(fb.as_ref(), fa.as_ref()),
                        tap_b,
                    ),
                    path(Channel::Rtcp, sa, sb, PtMap::default(), None),
                    path(Channel::Rtcp, sb, sa, PtMap::default(), None),
                ];
                tasks.push(tokio::spawn(relay::run(paths, watchdog, stop_rx)));
            }
        }
        debug!(a = sa.id, b = sb.id, "bridge started");
        Bridge { a, b, stop, tasks }
    }

    /// Stops relaying and gives both endpoints back (to re-bridge one of them
    /// with another endpoint after a transfer). Packets arriving from now on
    /// wait in the sockets until the next bridge discards them.
    pub async fn stop(self) -> (Endpoint, Endpoint) {
        let Bridge { a, b, stop, tasks } = self;
        // Send errors only mean every task already ended.
        let _ = stop.send(true);
        for task in tasks {
            if let Err(e) = task.await {
                warn!(error = %e, "media relay task failed");
            }
        }
        debug!(a = a.id(), b = b.id(), "bridge stopped");
        (a, b)
    }

    /// Current stats of `a` and `b`.
    pub fn stats(&self) -> (EndpointStats, EndpointStats) {
        (self.a.stats(), self.b.stats())
    }

    /// The first endpoint, to update it from a re-INVITE while bridged.
    pub fn a(&self) -> &Endpoint {
        &self.a
    }

    /// The second endpoint.
    pub fn b(&self) -> &Endpoint {
        &self.b
    }
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("a", &self.a)
            .field("b", &self.b)
            .finish()
    }
}

/// The two transcoding directions between formats `a` and `b`, when they
/// are different codecs that dialtone can both decode and encode.
fn transcoders(
    a_id: u64,
    b_id: u64,
    a: Option<&StreamFormat>,
    b: Option<&StreamFormat>,
) -> Option<(Transcoder, Transcoder)> {
    let (a, b) = (a?, b?);
    if a.same_codec(b) {
        return None;
    }
    match (Transcoder::new(a_id, a, b), Transcoder::new(b_id, b, a)) {
        (Ok(ab), Ok(ba)) => Some((ab, ba)),
        (Err(e), _) | (_, Err(e)) => {
            warn!(a = a_id, b = b_id, a_codec = %a.encoding, b_codec = %b.encoding, error = %e,
                "different codecs that cannot be transcoded: relaying as is");
            None
        }
    }
}

/// Discards queued datagrams with direct non-blocking reads: tokio's cached
/// readiness may not know about packets that arrived while nobody was
/// polling, so its `try_recv` could leave them behind.
pub(crate) fn drain(id: u64, sock: &UdpSocket) {
    let sock = SockRef::from(sock);
    // Truncation is fine: the datagrams are thrown away.
    let mut buf = [MaybeUninit::<u8>::uninit(); 64];
    let mut drained = 0usize;
    for _ in 0..DRAIN_MAX {
        match sock.recv(&mut buf) {
            Ok(_) => drained += 1,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            // e.g. a reported ICMP error, or (Windows) a truncated datagram: it
            // was consumed all the same.
            Err(_) => drained += 1,
        }
    }
    if drained > 0 {
        debug!(endpoint = id, drained, "discarded stale datagrams");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send_sync<T: Send + Sync>() {}

    #[test]
    fn handles_are_send_and_sync() {
        send_sync::<Endpoint>();
        send_sync::<Bridge>();
        send_sync::<crate::MediaEngine>();
    }
}

//! Transcoding, one direction: RTP arriving at one endpoint in its codec is
//! decoded through a jitter buffer into 20 ms frames, and a 20 ms clock
//! encodes each frame into the other endpoint's codec and sends it on that
//! endpoint's one continuous stream. Telephone events skip the audio path:
//! they are re-timed onto the outgoing stream's clock and payload type as
//! they arrive.
//!
//! The intermediate PCM rate is the lower of the two codecs' rates (Opus
//! runs at the G.711 side's 8 kHz, so nothing is resampled between them).

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;
use tracing::{debug, trace};

use crate::codec::dtmf::EventRetimer;
use crate::endpoint::Shared;
use crate::pipeline::{Decoding, Encoding, FrameClock, Received};
use crate::record::Tap;
use crate::relay::{forward_rtp, received, received_for_decoding, BUF_LEN};
use crate::stats::Counters;
use crate::{MediaError, StreamFormat};

/// Concealment stops after this many frames (200 ms) without a packet; the
/// far end then hears a pause (and the stream's clock moves on), not half a
/// second of made-up audio after the peer fell silent. Long enough to bridge
/// a typical DTMF event, during which phones send no voice.
const CONCEAL_FRAMES: usize = 10;

/// One transcoding direction, set up and ready to run.
pub(crate) struct Transcoder {
    decoding: Decoding,
    encoding: Encoding,
    /// telephone-event: the payload type arriving, the one leaving, and the
    /// clock conversion between them.
    events: Option<(u8, u8, EventRetimer)>,
    /// Names this transcoder as the source of `to`'s stream (see
    /// [`forward_rtp`]): distinct from every endpoint id.
    source: u64,
}

impl Transcoder {
    /// `from_fmt` (what arrives at `from`) to `to_fmt` (what `to`'s peer
    /// takes). Fails when either codec is not one dialtone can transcode.
    pub(crate) fn new(
        from_id: u64,
        from_fmt: &StreamFormat,
        to_fmt: &StreamFormat,
    ) -> Result<Transcoder, MediaError> {
        let rate = pcm_rate(from_fmt, to_fmt);
        let events = match (from_fmt.dtmf, to_fmt.dtmf) {
            (Some(f), Some(t)) => Some((f.pt, t.pt, EventRetimer::new(f.clock_rate, t.clock_rate))),
            _ => None,
        };
        Ok(Transcoder {
            decoding: Decoding::new(from_fmt, rate)?.limit_concealment(CONCEAL_FRAMES),
            encoding: Encoding::new(to_fmt, rate)?,
            events,
            source: u64::MAX - from_id,
        })
    }

    /// Runs until `stop` fires.
    pub(crate) async fn run(
        mut self,
        from: Arc<Shared>,
        to: Arc<Shared>,
        tap: Option<Tap>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut buf = [0u8; BUF_LEN];
        let mut out = Vec::with_capacity(1500);
        let mut clock = FrameClock::new();
        let stopped = stop.changed();
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                biased;
                _ = &mut stopped => break,
                now = clock.tick() => {
                    self.frame(&to, &mut out, now).await;
                    clock.bookkeeping(&from, now, &mut self.decoding).await;
                }
                r = from.rtp.recv_from(&mut buf) => {
                    if let Some((n, src)) = received(&from, r, &mut buf) {
                        self.packet(&from, &to, &mut buf[..n], src, tap.as_ref(), &mut out).await;
                    }
                }
            }
        }
        from.set_jitter(self.decoding.stats());
        debug!(from = from.id, to = to.id, "transcoder stopped");
    }

    /// One tick: the next frame out of the jitter buffer, encoded and sent.
    async fn frame(&mut self, to: &Shared, out: &mut Vec<u8>, now: Instant) {
        let Some(pcm) = self.decoding.pull(now) else {
            self.encoding.skip();
            return;
        };
        match self.encoding.packet(pcm, out) {
            Ok(true) => forward_rtp(to, self.source, out, now),
            Ok(false) => {}
            Err(e) => {
                trace!(endpoint = to.id, error = %e, "encode failed");
                Counters::add(&to.counters.dropped, 1);
            }
        }
    }

    async fn packet(
        &mut self,
        from: &Shared,
        to: &Shared,
        pkt: &mut [u8],
        src: std::net::SocketAddr,
        tap: Option<&Tap>,
        out: &mut Vec<u8>,
    ) {
        let now = Instant::now();
        let Some(h) = received_for_decoding(from, pkt, src, now) else {
            return;
        };
        if let Some(tap) = tap {
            tap.packet(pkt, now);
        }
        if self.decoding.accepts(h.pt) {
            self.decoding.push(&h, h.payload(pkt), now);
            return;
        }
        match &mut self.events {
            Some((in_pt, out_pt, retimer)) if *in_pt == h.pt => {
                let anchor = self.encoding.timestamp();
                if let Some((ts, payload, marker)) =
                    retimer.map(h.timestamp, h.payload(pkt), anchor)
                {
                    self.encoding
                        .event_packet(*out_pt, ts, &payload, marker, out);
                    forward_rtp(to, self.source, out, now);
                    return;
                }
                Counters::add(&from.counters.dropped, 1);
            }
            // Comfort noise and anything not negotiated: nothing to play.
            _ => Counters::add(&from.counters.dropped, 1),
        }
    }
}

/// The PCM rate between two codecs: the lower of their native rates, so no
/// bandwidth is invented and nothing is resampled that need not be.
fn pcm_rate(a: &StreamFormat, b: &StreamFormat) -> u32 {
    let native = |f: &StreamFormat| f.codec.as_ref().map_or(8000, |c| c.native_rate());
    native(a).min(native(b))
}

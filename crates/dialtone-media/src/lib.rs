//! dialtone-media: the RTP/RTCP relay that anchors every call's media.
//!
//! A [`MediaEngine`] hands out [`Endpoint`]s — one RTP+RTCP socket pair per
//! SIP leg, on an even/odd port pair from the configured range — and a
//! [`Bridge`] relays packets between two endpoints without decoding them:
//! symmetric RTP (latching onto where the peer really sends from, for phones
//! behind NAT), one continuous outgoing stream per endpoint across source
//! changes and re-bridging (see [`rewrite`]), and an RTP-timeout watchdog that
//! reports silent peers as [`MediaEvent::RtpTimeout`].
//!
//! The crate knows nothing of calls or SDP: call control translates the
//! negotiated SDP into [`Endpoint::set_remote`], [`Endpoint::set_send`],
//! [`Endpoint::set_expect_rtp`] and [`Endpoint::set_clock_rate`].

mod bridge;
pub mod codec;
mod config;
pub mod dsp;
mod endpoint;
mod engine;
mod error;
mod format;
pub mod jitter;
pub mod packet;
mod pipeline;
mod port;
mod ports;
mod protect;
mod record;
mod relay;
mod reports;
pub mod rewrite;
pub mod rtcp;
pub mod srtp;
mod stats;
mod transcode;
mod watchdog;

pub use bridge::Bridge;
pub use config::MediaConfig;
pub use endpoint::Endpoint;
pub use engine::MediaEngine;
pub use error::MediaError;
pub use format::{DtmfFormat, StreamFormat};
pub use port::{
    AudioPort, CallerTiming, PortCodec, PortEvent, PortFormat, PortFrame, PortOptions, PortPlayer,
};
pub use protect::SrtpMode;
pub use record::{Recording, RecordingInfo};
pub use stats::EndpointStats;

use std::time::Duration;

/// Something the media layer tells call control about, through the
/// [`MediaEvents`] given to [`Bridge::start`] or [`AudioPort::start`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// The peer of endpoint `endpoint` (see [`Endpoint::id`]) was expected to
    /// send RTP but has been silent for `silent_for` (at least the configured
    /// `rtp_timeout`). Sent once per silence: again only after RTP resumed and
    /// stopped again.
    RtpTimeout { endpoint: u64, silent_for: Duration },
}

/// Where a bridge or an audio port reports its [`MediaEvent`]s: a function
/// run on the media task that saw the event (it must not block), or a
/// channel (`From`; an event for a receiver that is gone is dropped).
#[derive(Clone)]
pub struct MediaEvents(std::sync::Arc<dyn Fn(MediaEvent) + Send + Sync>);

impl MediaEvents {
    pub fn new(report: impl Fn(MediaEvent) + Send + Sync + 'static) -> Self {
        MediaEvents(std::sync::Arc::new(report))
    }

    pub(crate) fn send(&self, ev: MediaEvent) {
        (self.0)(ev)
    }
}

impl From<tokio::sync::mpsc::UnboundedSender<MediaEvent>> for MediaEvents {
    fn from(tx: tokio::sync::mpsc::UnboundedSender<MediaEvent>) -> Self {
        MediaEvents::new(move |ev| {
            let _ = tx.send(ev);
        })
    }
}

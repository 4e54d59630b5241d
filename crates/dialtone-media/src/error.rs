//! The crate's error type.

use std::io;

/// What can go wrong setting up media.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// Every even/odd port pair in the configured range is taken, by us or by
    /// another process.
    #[error("no free RTP/RTCP port pair left in the configured range")]
    PortsExhausted,
    /// A socket operation failed for a reason other than the port being taken.
    #[error("media socket error: {0}")]
    Io(#[from] io::Error),
    /// The [`MediaConfig`](crate::MediaConfig) is unusable.
    #[error("invalid media configuration: {0}")]
    Config(String),
    /// A call recording could not be created or written.
    #[error("recording: {0}")]
    Recording(String),
    /// A codec could not be set up for a stream.
    #[error("codec: {0}")]
    Codec(#[from] crate::codec::CodecError),
}

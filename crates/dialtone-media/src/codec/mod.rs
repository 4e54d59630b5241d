//! Audio codecs: G.711 (µ-law, A-law), G.722, Opus (libopus via audiopus),
//! and RFC 4733 telephone-event.
//!
//! Call control describes a negotiated payload type as a [`Codec`] (usually
//! via [`Codec::from_rtpmap`]); [`decoder`] and [`encoder`] then give boxed
//! [`Decoder`]s / [`Encoder`]s working on mono `i16` PCM at a chosen rate.
//! G.711 only works at 8 kHz and G.722 at 16 kHz (the caller resamples);
//! Opus works at any of the rates libopus supports (8/12/16/24/48 kHz).

pub mod dtmf;
pub mod g711;
mod g722;
mod opus;
mod plc;

#[cfg(test)]
mod tests_g711;
#[cfg(test)]
mod tests_g722;
#[cfg(test)]
mod tests_opus;

/// The encodings the media engine can transcode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CodecKind {
    /// G.711 µ-law (static payload type 0).
    Pcmu,
    /// G.711 A-law (static payload type 8).
    Pcma,
    /// G.722 at 64 kbit/s (static payload type 9; 16 kHz audio on an
    /// 8000 Hz RTP clock).
    G722,
    /// Opus (RFC 6716, RTP payload format RFC 7587).
    Opus,
}

/// Opus fmtp parameters (RFC 7587 §7): what the far end asked of the stream
/// we SEND it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpusParams {
    /// `useinbandfec`: the receiver can use in-band FEC (default false).
    pub inband_fec: bool,
    /// `usedtx`: the receiver prefers discontinuous transmission (default false).
    pub dtx: bool,
    /// `maxplaybackrate`: the highest rate the receiver renders (default 48000).
    pub max_playback_rate: u32,
    /// `stereo`: the receiver prefers stereo (default false; we always encode mono).
    pub stereo: bool,
    /// `maxaveragebitrate` in bit/s, if given.
    pub max_average_bitrate: Option<u32>,
}

impl Default for OpusParams {
    fn default() -> Self {
        OpusParams {
            inband_fec: false,
            dtx: false,
            max_playback_rate: 48000,
            stereo: false,
            max_average_bitrate: None,
        }
    }
}

impl OpusParams {
    /// Parses an Opus fmtp parameter string such as
    /// `"useinbandfec=1; usedtx=0;maxplaybackrate=16000"`.
    ///
    /// Keys are case-insensitive, whitespace around keys, values and
    /// separators is ignored, unknown keys and unparsable values are ignored
    /// (the default stays in place), as is a `maxplaybackrate` of 0.
    pub fn from_fmtp(fmtp: &str) -> OpusParams {
        let mut p = OpusParams::default();
        for item in fmtp.split(';') {
            let Some((key, value)) = item.split_once('=') else {
                continue;
            };
            let key = key.trim().to_ascii_lowercase();
            let value = value.trim();
            let flag = match value {
                "1" => Some(true),
                "0" => Some(false),
                _ => None,
            };
            let number = value.parse::<u32>().ok();
            match key.as_str() {
                "useinbandfec" => p.inband_fec = flag.unwrap_or(p.inband_fec),
                "usedtx" => p.dtx = flag.unwrap_or(p.dtx),
                "stereo" => p.stereo = flag.unwrap_or(p.stereo),
                "maxplaybackrate" => {
                    if let Some(rate) = number.filter(|&r| r > 0) {
                        p.max_playback_rate = rate;
                    }
                }
                "maxaveragebitrate" => {
                    if let Some(bitrate) = number.filter(|&b| b > 0) {
                        p.max_average_bitrate = Some(bitrate);
                    }
                }
                _ => {}
            }
        }
        p
    }

    /// Formats these parameters for our own SDP (what we want to receive).
    ///
    /// Deterministic: always `useinbandfec=N;maxplaybackrate=N;stereo=N`,
    /// then `;usedtx=1` when `dtx` and `;maxaveragebitrate=N` when set, so
    /// that [`OpusParams::from_fmtp`] gives back the same parameters.
    pub fn to_fmtp(&self) -> String {
        let mut s = format!(
            "useinbandfec={};maxplaybackrate={};stereo={}",
            u8::from(self.inband_fec),
            self.max_playback_rate,
            u8::from(self.stereo)
        );
        if self.dtx {
            s.push_str(";usedtx=1");
        }
        if let Some(bitrate) = self.max_average_bitrate {
            s.push_str(&format!(";maxaveragebitrate={bitrate}"));
        }
        s
    }
}

/// A negotiated codec: its kind plus, for Opus, the far end's fmtp.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Codec {
    /// Which encoding.
    pub kind: CodecKind,
    /// Opus parameters; ignored unless `kind` is [`CodecKind::Opus`].
    pub opus: OpusParams,
}

impl Codec {
    /// G.711 µ-law.
    pub fn pcmu() -> Codec {
        Codec {
            kind: CodecKind::Pcmu,
            opus: OpusParams::default(),
        }
    }

    /// G.711 A-law.
    pub fn pcma() -> Codec {
        Codec {
            kind: CodecKind::Pcma,
            opus: OpusParams::default(),
        }
    }

    /// G.722.
    pub fn g722() -> Codec {
        Codec {
            kind: CodecKind::G722,
            opus: OpusParams::default(),
        }
    }

    /// Opus with the far end's fmtp parameters.
    pub fn opus(params: OpusParams) -> Codec {
        Codec {
            kind: CodecKind::Opus,
            opus: params,
        }
    }

    /// From an SDP rtpmap (+ fmtp): `PCMU/8000`, `PCMA/8000`, `G722/8000`
    /// (channels None or 1), `opus/48000/2` (channels must be 2 per RFC 7587, None is
    /// accepted too); the encoding name is case-insensitive. None for
    /// anything else.
    pub fn from_rtpmap(
        encoding: &str,
        clock_rate: u32,
        channels: Option<u8>,
        fmtp: Option<&str>,
    ) -> Option<Codec> {
        let mono_8000 = clock_rate == 8000 && matches!(channels, None | Some(1));
        if encoding.eq_ignore_ascii_case("PCMU") && mono_8000 {
            Some(Codec::pcmu())
        } else if encoding.eq_ignore_ascii_case("PCMA") && mono_8000 {
            Some(Codec::pcma())
        } else if encoding.eq_ignore_ascii_case("G722") && mono_8000 {
            Some(Codec::g722())
        } else if encoding.eq_ignore_ascii_case("opus")
            && clock_rate == 48000
            && matches!(channels, None | Some(2))
        {
            Some(Codec::opus(OpusParams::from_fmtp(fmtp.unwrap_or(""))))
        } else {
            None
        }
    }

    /// RTP clock rate: 8000 for G.711 and G.722 (RFC 3551 §4.5.2), 48000
    /// for Opus.
    pub fn clock_rate(&self) -> u32 {
        match self.kind {
            CodecKind::Pcmu | CodecKind::Pcma | CodecKind::G722 => 8000,
            CodecKind::Opus => 48000,
        }
    }

    /// The PCM rate this codec carries best: 8000 for G.711, 16000 for
    /// G.722; for Opus 48000 limited by `max_playback_rate`, rounded up to
    /// one of 8000/12000/16000/24000/48000.
    pub fn native_rate(&self) -> u32 {
        match self.kind {
            CodecKind::Pcmu | CodecKind::Pcma => 8000,
            CodecKind::G722 => g722::RATE,
            CodecKind::Opus => opus_rate_at_least(self.opus.max_playback_rate),
        }
    }

    /// The SDP encoding name: `"PCMU"`, `"PCMA"`, `"G722"` or `"opus"`.
    pub fn encoding_name(&self) -> &'static str {
        match self.kind {
            CodecKind::Pcmu => "PCMU",
            CodecKind::Pcma => "PCMA",
            CodecKind::G722 => "G722",
            CodecKind::Opus => "opus",
        }
    }

    /// Whether two codecs are the same encoding (ignores fmtp).
    pub fn same_kind(&self, other: &Codec) -> bool {
        self.kind == other.kind
    }
}

/// The smallest Opus rate >= `rate` (48000 above that).
fn opus_rate_at_least(rate: u32) -> u32 {
    match rate {
        0..=8000 => 8000,
        8001..=12000 => 12000,
        12001..=16000 => 16000,
        16001..=24000 => 24000,
        _ => 48000,
    }
}

/// Why a codec could not be set up or could not code a frame.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// dialtone has no encoder/decoder for this encoding (it can only be
    /// relayed).
    #[error("no codec for {0}")]
    Unsupported(String),
    /// The codec cannot work on PCM at this rate (G.711: only 8000; G.722:
    /// only 16000; Opus: 8000/12000/16000/24000/48000).
    #[error("unsupported PCM rate {0} Hz for this codec")]
    UnsupportedRate(u32),
    /// libopus reported an error.
    #[error("opus: {0}")]
    Opus(String),
    /// The payload or PCM frame is unusable (empty, wrong length, ...).
    #[error("bad frame: {0}")]
    BadFrame(String),
}

/// Turns RTP payloads into mono PCM.
pub trait Decoder: Send {
    /// PCM rate of what it outputs (mono).
    fn rate(&self) -> u32;

    /// Decodes one RTP payload, appending mono samples at [`Decoder::rate`]
    /// to `out`; returns how many were appended.
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, CodecError>;

    /// Packet loss concealment: appends `samples` samples standing in for a
    /// lost packet (Opus: decoder PLC; G.711 and G.722: pitch-period
    /// repetition of the last audio, fading to silence after 60 ms; silence
    /// before any audio).
    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>);

    /// Recovers the lost packet just before `next` from `next`'s in-band
    /// FEC, appending `samples` samples and returning true; false (nothing
    /// appended) when the codec or packet has no FEC.
    fn recover(&mut self, next: &[u8], samples: usize, out: &mut Vec<i16>) -> bool;

    /// Samples at [`Decoder::rate`] that `payload` decodes to, when known
    /// without decoding.
    fn samples_in(&self, payload: &[u8]) -> Option<usize>;
}

/// Turns mono PCM frames into RTP payloads.
pub trait Encoder: Send {
    /// PCM rate it expects (mono).
    fn rate(&self) -> u32;

    /// Encodes one frame (any of 10/20/40/60 ms of mono PCM at
    /// [`Encoder::rate`]; we use 20 ms) appending the payload to `out`. For
    /// Opus with DTX on, a payload of <= 2 bytes means "silence, do not
    /// transmit".
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError>;
}

/// A decoder producing mono PCM at `rate`. G.711: only 8000, G.722: only
/// 16000 ([`CodecError::UnsupportedRate`] otherwise; the caller resamples).
/// Opus: 8000/12000/16000/24000/48000.
pub fn decoder(codec: &Codec, rate: u32) -> Result<Box<dyn Decoder>, CodecError> {
    match codec.kind {
        CodecKind::Pcmu => Ok(Box::new(g711::G711Decoder::new(g711::Law::Ulaw, rate)?)),
        CodecKind::Pcma => Ok(Box::new(g711::G711Decoder::new(g711::Law::Alaw, rate)?)),
        CodecKind::G722 => Ok(Box::new(g722::G722Decoder::new(rate)?)),
        CodecKind::Opus => Ok(Box::new(opus::OpusDecoder::new(rate)?)),
    }
}

/// An encoder taking mono PCM at `rate` (same rate rules as [`decoder`]).
///
/// Opus settings: VoIP application with the voice signal hint, mono,
/// complexity 5 (about half the CPU of libopus' default 10 for a small
/// quality loss at voice bitrates, so that many calls fit on one core),
/// in-band FEC with a 10 % expected loss when `inband_fec`, DTX when `dtx`,
/// maximum bandwidth from `max_playback_rate` (NB/MB/WB/SWB/FB) and bitrate
/// `max_average_bitrate` (clamped to 6000..=510000) or else 20 kbit/s for
/// narrow/medium band and 32 kbit/s for wideband and up.
pub fn encoder(codec: &Codec, rate: u32) -> Result<Box<dyn Encoder>, CodecError> {
    match codec.kind {
        CodecKind::Pcmu => Ok(Box::new(g711::G711Encoder::new(g711::Law::Ulaw, rate)?)),
        CodecKind::Pcma => Ok(Box::new(g711::G711Encoder::new(g711::Law::Alaw, rate)?)),
        CodecKind::G722 => Ok(Box::new(g722::G722Encoder::new(rate)?)),
        CodecKind::Opus => Ok(Box::new(opus::OpusEncoder::new(&codec.opus, rate)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fmtp_parse_tolerates_spaces_case_and_unknown_keys() {
        let p = OpusParams::from_fmtp(
            " UseInbandFEC=1; usedtx=0;maxplaybackrate = 16000 ;sprop-maxcapturerate=16000; x",
        );
        assert_eq!(
            p,
            OpusParams {
                inband_fec: true,
                dtx: false,
                max_playback_rate: 16000,
                stereo: false,
                max_average_bitrate: None,
            }
        );
        let p = OpusParams::from_fmtp("stereo=1;usedtx=1;maxaveragebitrate=24000;useinbandfec=yes");
        assert!(p.stereo && p.dtx && !p.inband_fec);
        assert_eq!(p.max_average_bitrate, Some(24000));
        assert_eq!(OpusParams::from_fmtp(""), OpusParams::default());
        assert_eq!(
            OpusParams::from_fmtp("maxplaybackrate=0").max_playback_rate,
            48000
        );
    }

    #[test]
    fn fmtp_round_trip_and_format() {
        let d = OpusParams::default();
        assert_eq!(d.to_fmtp(), "useinbandfec=0;maxplaybackrate=48000;stereo=0");
        let p = OpusParams {
            inband_fec: true,
            dtx: true,
            max_playback_rate: 16000,
            stereo: true,
            max_average_bitrate: Some(20000),
        };
        assert_eq!(
            p.to_fmtp(),
            "useinbandfec=1;maxplaybackrate=16000;stereo=1;usedtx=1;maxaveragebitrate=20000"
        );
        for params in [d, p] {
            assert_eq!(OpusParams::from_fmtp(&params.to_fmtp()), params);
        }
    }

    #[test]
    fn from_rtpmap_cases() {
        assert_eq!(
            Codec::from_rtpmap("PCMU", 8000, None, None),
            Some(Codec::pcmu())
        );
        assert_eq!(
            Codec::from_rtpmap("pcma", 8000, Some(1), None),
            Some(Codec::pcma())
        );
        assert_eq!(Codec::from_rtpmap("PCMU", 16000, None, None), None);
        assert_eq!(Codec::from_rtpmap("PCMA", 8000, Some(2), None), None);
        assert_eq!(Codec::from_rtpmap("G729", 8000, None, None), None);
        let opus = Codec::from_rtpmap("OPUS", 48000, Some(2), Some("useinbandfec=1"))
            .expect("opus/48000/2 is Opus");
        assert_eq!(opus.kind, CodecKind::Opus);
        assert!(opus.opus.inband_fec);
        assert_eq!(
            Codec::from_rtpmap("opus", 48000, None, None),
            Some(Codec::opus(OpusParams::default()))
        );
        assert_eq!(Codec::from_rtpmap("opus", 48000, Some(1), None), None);
        assert_eq!(Codec::from_rtpmap("opus", 16000, Some(2), None), None);
        assert_eq!(opus.encoding_name(), "opus");
        assert_eq!(Codec::pcma().encoding_name(), "PCMA");
        assert!(opus.same_kind(&Codec::opus(OpusParams::default())));
        assert!(!opus.same_kind(&Codec::pcmu()));
        assert_eq!(opus.clock_rate(), 48000);
        assert_eq!(Codec::pcmu().clock_rate(), 8000);
    }

    #[test]
    fn native_rate_rounds_up() {
        let with = |rate| {
            Codec::opus(OpusParams {
                max_playback_rate: rate,
                ..OpusParams::default()
            })
            .native_rate()
        };
        assert_eq!(Codec::pcmu().native_rate(), 8000);
        assert_eq!(Codec::pcma().native_rate(), 8000);
        let cases = [
            (8000, 8000),
            (7000, 8000),
            (8001, 12000),
            (12000, 12000),
            (16000, 16000),
            (22050, 24000),
            (24000, 24000),
            (32000, 48000),
            (44100, 48000),
            (48000, 48000),
            (96000, 48000),
        ];
        for (max, native) in cases {
            assert_eq!(with(max), native, "maxplaybackrate={max}");
        }
    }

    #[test]
    fn factories_check_rates() {
        assert!(matches!(
            decoder(&Codec::pcmu(), 16000),
            Err(CodecError::UnsupportedRate(16000))
        ));
        assert!(matches!(
            encoder(&Codec::pcma(), 48000),
            Err(CodecError::UnsupportedRate(48000))
        ));
        let opus = Codec::opus(OpusParams::default());
        assert!(matches!(
            decoder(&opus, 44100),
            Err(CodecError::UnsupportedRate(44100))
        ));
        for rate in [8000, 12000, 16000, 24000, 48000] {
            assert_eq!(decoder(&opus, rate).expect("opus decoder").rate(), rate);
            assert_eq!(encoder(&opus, rate).expect("opus encoder").rate(), rate);
        }
    }
}

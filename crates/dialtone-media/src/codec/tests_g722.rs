//! G.722 tests: wideband tone fidelity, packet sizes on the 8 kHz RTP
//! clock, rate and frame checks, concealment at 16 kHz.

use super::{decoder, encoder, Codec, CodecError, CodecKind};
use crate::dsp::measure::{db, dominant_frequency, rms, tone, tone_amplitude};

/// −10 dBFS.
const AMPLITUDE: f64 = 32767.0 * 0.316_227_766;

/// Encodes and decodes `pcm` (16 kHz) in 20 ms frames; the decoded audio
/// and the payload sizes.
fn round_trip(pcm: &[i16]) -> (Vec<i16>, Vec<usize>) {
    let codec = Codec::g722();
    let mut enc = encoder(&codec, 16000).expect("G.722 encoder");
    let mut dec = decoder(&codec, 16000).expect("G.722 decoder");
    let (mut out, mut sizes) = (Vec::new(), Vec::new());
    for frame in pcm.chunks_exact(320) {
        let mut payload = Vec::new();
        enc.encode(frame, &mut payload).expect("encode 20 ms");
        sizes.push(payload.len());
        assert_eq!(dec.samples_in(&payload), Some(320));
        assert_eq!(dec.decode(&payload, &mut out).expect("decode"), 320);
    }
    (out, sizes)
}

#[test]
fn rtpmap_clock_and_rates() {
    let g722 = Codec::from_rtpmap("g722", 8000, None, None).expect("G722/8000");
    assert_eq!(g722.kind, CodecKind::G722);
    assert_eq!(g722.encoding_name(), "G722");
    // 16 kHz audio on the 8000 Hz RTP clock (RFC 3551 §4.5.2).
    assert_eq!((g722.clock_rate(), g722.native_rate()), (8000, 16000));
    assert_eq!(Codec::from_rtpmap("G722", 16000, None, None), None);
    assert_eq!(Codec::from_rtpmap("G722", 8000, Some(2), None), None);
    assert!(matches!(
        decoder(&g722, 8000),
        Err(CodecError::UnsupportedRate(8000))
    ));
    assert!(matches!(
        encoder(&g722, 48000),
        Err(CodecError::UnsupportedRate(48000))
    ));
}

/// Tones across the 50–7000 Hz band come back at their frequency and level,
/// including those G.711 cannot carry (above 4 kHz): this is wideband.
#[test]
fn tones_across_the_wideband_come_back() {
    for freq in [300.0, 1000.0, 3400.0, 5000.0, 6500.0] {
        let sent = tone(16000, freq, AMPLITUDE, 0, 16000);
        let (got, sizes) = round_trip(&sent);
        assert!(sizes.iter().all(|&n| n == 160), "64 kbit/s: {sizes:?}");
        // Skip the codec's start-up (ADPCM adaptation and QMF delay).
        let tail = &got[1600..];
        let f = dominant_frequency(tail, 16000, 50.0, 7900.0);
        assert!((f - freq).abs() <= 10.0, "{freq} Hz came back as {f} Hz");
        let level = db(tone_amplitude(tail, 16000, freq) / AMPLITUDE);
        assert!(level.abs() < 0.5, "{freq} Hz: level off by {level:.2} dB");
    }
}

#[test]
fn bad_frames_are_errors() {
    let codec = Codec::g722();
    let mut enc = encoder(&codec, 16000).expect("G.722 encoder");
    let mut dec = decoder(&codec, 16000).expect("G.722 decoder");
    let mut out = Vec::new();
    assert!(matches!(
        enc.encode(&[0; 319], &mut Vec::new()),
        Err(CodecError::BadFrame(_))
    ));
    assert!(matches!(
        dec.decode(&[], &mut out),
        Err(CodecError::BadFrame(_))
    ));
    assert!(out.is_empty());
}

/// A lost packet is concealed by repeating the last pitch period at 16 kHz,
/// fading to silence after 60 ms; decoding then carries on.
#[test]
fn loss_is_concealed_at_16k_then_fades() {
    let codec = Codec::g722();
    let mut enc = encoder(&codec, 16000).expect("G.722 encoder");
    let mut dec = decoder(&codec, 16000).expect("G.722 decoder");
    let mut silence = Vec::new();
    dec.conceal(320, &mut silence);
    assert_eq!(silence, vec![0; 320], "nothing decoded yet: silence");
    assert!(!dec.recover(&[0; 160], 320, &mut Vec::new()));

    // 500 Hz (a period of 32 samples at 16 kHz) for 200 ms.
    let sent = tone(16000, 500.0, AMPLITUDE, 0, 3200);
    let mut decoded = Vec::new();
    let mut payloads = Vec::new();
    for frame in sent.chunks_exact(320) {
        let mut p = Vec::new();
        enc.encode(frame, &mut p).expect("encode");
        dec.decode(&p, &mut decoded).expect("decode");
        payloads.push(p);
    }
    let level = rms(&decoded[1600..]);

    let mut lost = Vec::new();
    for _ in 0..4 {
        dec.conceal(320, &mut lost);
    }
    assert_eq!(lost.len(), 1280);
    // The first 10 ms continue the tone at full level.
    let first = &lost[..160];
    assert!((dominant_frequency(first, 16000, 100.0, 2000.0) - 500.0).abs() <= 50.0);
    assert!((rms(first) / level - 1.0).abs() < 0.1, "unattenuated");
    let r = |a: usize, b: usize| rms(&lost[a..b]) / level;
    assert!(r(160, 320) > r(480, 640) && r(480, 640) > r(800, 960));
    assert!(lost[960..].iter().all(|&s| s == 0), "silent after 60 ms");

    // The stream carries on.
    let mut resumed = Vec::new();
    assert_eq!(dec.decode(&payloads[0], &mut resumed).expect("decode"), 320);
}

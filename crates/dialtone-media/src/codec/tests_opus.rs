//! Opus encoder/decoder tests: tone fidelity, PLC, FEC, DTX, packet sizes.

use super::{decoder, encoder, Codec, CodecError, Decoder, Encoder, OpusParams};
use crate::dsp::measure::{db, dominant_frequency, rms, tone};

/// −10 dBFS: peak 10^(−10/20) of full scale.
const AMPLITUDE: f64 = 32767.0 * 0.316_227_766;

fn opus(params: OpusParams) -> Codec {
    Codec::opus(params)
}

fn codecs(params: OpusParams, rate: u32) -> (Box<dyn Encoder>, Box<dyn Decoder>) {
    let codec = opus(params);
    (
        encoder(&codec, rate).expect("opus encoder"),
        decoder(&codec, rate).expect("opus decoder"),
    )
}

/// Encodes `pcm` in 20 ms frames, returning the payloads.
fn encode_all(enc: &mut dyn Encoder, pcm: &[i16]) -> Vec<Vec<u8>> {
    let frame = enc.rate() as usize / 50;
    pcm.chunks_exact(frame)
        .map(|f| {
            let mut p = Vec::new();
            enc.encode(f, &mut p).expect("encode 20 ms");
            p
        })
        .collect()
}

/// A 1 kHz tone through encoder and decoder: frequency within ±1.5 %, level
/// within ±1 dB over the steady part (skipping 3 frames of codec delay).
fn check_tone_round_trip(params: OpusParams, rate: u32) -> Vec<Vec<u8>> {
    let (mut enc, mut dec) = codecs(params, rate);
    let frame = rate as usize / 50;
    let input = tone(rate, 1000.0, AMPLITUDE, 0, 50 * frame);
    let packets = encode_all(enc.as_mut(), &input);
    let mut out = Vec::new();
    for p in &packets {
        assert_eq!(dec.decode(p, &mut out).expect("decode"), frame);
    }
    assert_eq!(out.len(), input.len());
    let steady = &out[3 * frame..];
    let f = dominant_frequency(
        &steady[..steady.len().min(rate as usize / 10 * 4)],
        rate,
        50.0,
        f64::from(rate) / 2.0,
    );
    assert!((f - 1000.0).abs() <= 15.0, "{rate} Hz: dominant {f} Hz");
    let level = db(rms(steady) / rms(&input[3 * frame..]));
    assert!(level.abs() <= 1.0, "{rate} Hz: level off by {level:.2} dB");
    packets
}

#[test]
fn tone_round_trip_48k() {
    check_tone_round_trip(OpusParams::default(), 48000);
}

#[test]
fn tone_round_trip_16k() {
    check_tone_round_trip(OpusParams::default(), 16000);
}

#[test]
fn tone_round_trip_8k() {
    let packets = check_tone_round_trip(OpusParams::default(), 8000);
    // 8 kHz input can only be narrowband: TOC configs 0..=3 (SILK NB).
    assert!(packets.iter().all(|p| p[0] >> 3 <= 3), "narrowband TOC");
}

#[test]
fn tone_round_trip_narrowband_by_maxplaybackrate() {
    let params = OpusParams {
        max_playback_rate: 8000,
        ..OpusParams::default()
    };
    let packets = check_tone_round_trip(params, 48000);
    assert!(
        packets.iter().skip(3).all(|p| p[0] >> 3 <= 3),
        "maxplaybackrate=8000 gives narrowband packets"
    );
}

#[test]
fn samples_in_reads_the_toc() {
    let (mut enc, dec) = codecs(OpusParams::default(), 48000);
    let packets = encode_all(enc.as_mut(), &tone(48000, 1000.0, AMPLITUDE, 0, 960 * 2));
    assert_eq!(dec.samples_in(&packets[1]), Some(960));
    let dec8 = decoder(&opus(OpusParams::default()), 8000).expect("8k decoder");
    assert_eq!(dec8.samples_in(&packets[1]), Some(160));
    assert_eq!(dec.samples_in(&[]), None);
}

#[test]
fn plc_continues_the_tone() {
    for rate in [8000, 48000] {
        let (mut enc, mut dec) = codecs(OpusParams::default(), rate);
        let frame = rate as usize / 50;
        let input = tone(rate, 1000.0, AMPLITUDE, 0, 20 * frame);
        let packets = encode_all(enc.as_mut(), &input);
        let mut out = Vec::new();
        for p in &packets[..19] {
            dec.decode(p, &mut out).expect("decode");
        }
        let mut concealed = Vec::new();
        dec.conceal(frame, &mut concealed);
        assert_eq!(concealed.len(), frame);
        let level = db(rms(&concealed) / rms(&input));
        assert!(
            level > -20.0 && level < 6.0,
            "{rate} Hz: PLC level {level:.1} dB"
        );
        // An odd request (not a multiple of 2.5 ms) still gives exactly that many.
        dec.conceal(7, &mut concealed);
        assert_eq!(concealed.len(), frame + 7);
    }
}

#[test]
fn fec_recovers_a_lost_packet() {
    let params = OpusParams {
        inband_fec: true,
        ..OpusParams::default()
    };
    for rate in [16000, 48000] {
        let (mut enc, mut dec) = codecs(params.clone(), rate);
        let frame = rate as usize / 50;
        let input = tone(rate, 1000.0, AMPLITUDE, 0, 30 * frame);
        let packets = encode_all(enc.as_mut(), &input);
        let mut out = Vec::new();
        for p in &packets[..15] {
            dec.decode(p, &mut out).expect("decode");
        }
        // Packet 15 is lost; 16 carries its FEC.
        let mut recovered = vec![1234i16];
        assert!(
            dec.recover(&packets[16], frame, &mut recovered),
            "{rate} Hz: FEC"
        );
        assert_eq!(recovered.len(), 1 + frame);
        let recovered = &recovered[1..];
        let level = db(rms(recovered) / rms(&input));
        assert!(
            level > -6.0 && level < 3.0,
            "{rate} Hz: FEC level {level:.1} dB"
        );
        let f = dominant_frequency(recovered, rate, 50.0, f64::from(rate) / 2.0);
        assert!((f - 1000.0).abs() <= 50.0, "{rate} Hz: FEC tone at {f} Hz");
        assert_eq!(dec.decode(&packets[16], &mut out).expect("decode"), frame);
    }
}

#[test]
fn no_fec_without_inband_fec() {
    let (mut enc, mut dec) = codecs(OpusParams::default(), 16000);
    let packets = encode_all(enc.as_mut(), &tone(16000, 1000.0, AMPLITUDE, 0, 320 * 20));
    let mut out = Vec::new();
    for p in &packets[..10] {
        dec.decode(p, &mut out).expect("decode");
    }
    let before = out.len();
    assert!(!dec.recover(&packets[11], 320, &mut out));
    assert!(!dec.recover(&[], 320, &mut out));
    assert_eq!(out.len(), before);
}

#[test]
fn dtx_sends_tiny_payloads_for_silence() {
    let params = OpusParams {
        dtx: true,
        ..OpusParams::default()
    };
    for rate in [8000, 16000, 48000] {
        let (mut enc, _) = codecs(params.clone(), rate);
        let frame = rate as usize / 50;
        let mut pcm = tone(rate, 1000.0, AMPLITUDE, 0, 10 * frame);
        pcm.extend(std::iter::repeat_n(0, 50 * frame));
        let sizes: Vec<usize> = encode_all(enc.as_mut(), &pcm)
            .iter()
            .map(Vec::len)
            .collect();
        assert!(
            sizes[..10].iter().all(|&n| n > 2),
            "{rate} Hz: tone is sent"
        );
        // After ~0.4 s of silence nearly everything is DTX (an occasional
        // comfort-noise update is allowed).
        let tiny = sizes[30..].iter().filter(|&&n| n <= 2).count();
        assert!(
            tiny >= 27,
            "{rate} Hz: {tiny}/30 DTX payloads, sizes {sizes:?}"
        );
    }
    // Without DTX, silence is still coded in full-size (> 2 byte) packets.
    let (mut enc, _) = codecs(OpusParams::default(), 16000);
    let sizes: Vec<usize> = encode_all(enc.as_mut(), &[0; 320 * 40])
        .iter()
        .map(Vec::len)
        .collect();
    assert!(sizes.iter().all(|&n| n > 2), "sizes {sizes:?}");
}

#[test]
fn bad_frames_are_errors() {
    let (mut enc, mut dec) = codecs(OpusParams::default(), 48000);
    let mut payload = vec![9u8];
    assert!(matches!(
        enc.encode(&[0; 100], &mut payload),
        Err(CodecError::BadFrame(_))
    ));
    assert_eq!(payload, vec![9], "nothing appended on error");
    let mut out = vec![5i16];
    assert!(matches!(
        dec.decode(&[], &mut out),
        Err(CodecError::BadFrame(_))
    ));
    assert_eq!(out, vec![5]);
    // Any of 10/20/40/60 ms is accepted.
    for ms in [10, 20, 40, 60] {
        payload.clear();
        enc.encode(&vec![0; 48 * ms], &mut payload)
            .expect("valid frame size");
        assert_eq!(dec.samples_in(&payload), Some(48 * ms));
    }
}

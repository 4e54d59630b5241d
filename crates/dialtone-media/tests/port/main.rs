//! The audio port: a phone made of real UDP sockets talks to the application
//! through an [`AudioPort`] — caller audio out as 20 ms frames, queued audio
//! in as a paced RTP stream, barge-in, Opus, G.711 passed through untouched
//! (here); DTMF from the caller (`dtmf.rs`); caller audio handed over packet
//! by packet in immediate timing (`immediate.rs`); playout that starts at
//! once, and players (`playout.rs`).

#[path = "../common/mod.rs"]
mod common;
mod dtmf;
mod immediate;
mod playout;

use std::error::Error;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use dialtone_media::codec::{self, g711, Codec, OpusParams};
use dialtone_media::dsp::measure::{db, dominant_frequency, rms, tone};
use dialtone_media::{
    AudioPort, MediaEngine, MediaError, MediaEvent, PortEvent, PortFormat, PortFrame, PortOptions,
    StreamFormat,
};
use tokio::sync::mpsc;

/// Tests fail on errors with `?` rather than `expect`.
type TestResult<T = ()> = Result<T, Box<dyn Error>>;

/// −12 dBFS-ish peak: far from clipping, far above G.711's noise floor.
const AMPLITUDE: f64 = 8000.0;
/// RMS of a sine of [`AMPLITUDE`].
const TONE_RMS: f64 = AMPLITUDE / std::f64::consts::SQRT_2;
/// A packet whose decoded audio is louder than this carries the tone.
const LOUD: f64 = 1000.0;

/// Checks `pcm` is a tone of `freq` at the test level (within `tol_db`).
fn assert_tone(pcm: &[i16], rate: u32, freq: f64, tol_db: f64) {
    let f = dominant_frequency(pcm, rate, 50.0, f64::from(rate) / 2.0);
    assert!((f - freq).abs() <= 2.0, "dominant {f} Hz, expected {freq}");
    let level = db(rms(pcm) / TONE_RMS);
    assert!(level.abs() <= tol_db, "level {level:.2} dB off");
}

/// An endpoint facing `phone` with `format`, and a port on it.
async fn port_on(
    eng: &MediaEngine,
    phone: &Phone,
    format: StreamFormat,
    caller: PortFormat,
    playout: PortFormat,
) -> TestResult<(AudioPort, mpsc::Receiver<PortEvent>, SocketAddr)> {
    port_with(eng, phone, format, caller, playout, PortOptions::default()).await
}

/// [`port_on`] with options.
async fn port_with(
    eng: &MediaEngine,
    phone: &Phone,
    format: StreamFormat,
    caller: PortFormat,
    playout: PortFormat,
    options: PortOptions,
) -> TestResult<(AudioPort, mpsc::Receiver<PortEvent>, SocketAddr)> {
    let ep = eng.allocate().await?;
    ep.set_remote(Some(phone.rtp_addr()), None);
    ep.set_format(format);
    let local = ep.local();
    let (events, _) = mpsc::unbounded_channel();
    let (port, rx) =
        AudioPort::start_with(ep, caller, playout, options, events).map_err(|(e, _)| e)?;
    Ok((port, rx, local))
}

/// Sends `packets` from `phone` to `to`, one every 20 ms.
async fn send_paced(phone: &Phone, to: SocketAddr, packets: &[Vec<u8>]) {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for p in packets {
        tick.tick().await;
        phone.send(to, p).await;
    }
}

/// Up to `n` events from the port, each within `wait` of the previous one.
async fn events(rx: &mut mpsc::Receiver<PortEvent>, n: usize, wait: Duration) -> Vec<PortEvent> {
    let mut got = Vec::new();
    while got.len() < n {
        match tokio::time::timeout(wait, rx.recv()).await {
            Ok(Some(ev)) => got.push(ev),
            _ => break,
        }
    }
    got
}

/// Up to `n` audio frames from the port, each within WAIT of the previous
/// one (no DTMF is expected: any is a failure).
async fn frames(rx: &mut mpsc::Receiver<PortEvent>, n: usize) -> Vec<PortFrame> {
    events(rx, n, WAIT)
        .await
        .into_iter()
        .map(|ev| match ev {
            PortEvent::Audio(f) => f,
            other => panic!("expected audio, got {other:?}"),
        })
        .collect()
}

/// What the phone receives during `span`, with arrival times.
async fn receive_for(phone: &Phone, span: Duration) -> Vec<(Instant, Vec<u8>)> {
    let end = Instant::now() + span;
    let mut got = Vec::new();
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match phone.recv(left).await {
            Some((p, _)) => got.push((Instant::now(), p)),
            None => break,
        }
    }
    got
}

fn pcm(frame: &PortFrame) -> &[i16] {
    match frame {
        PortFrame::Pcm(s) => s,
        PortFrame::G711(_) => panic!("expected PCM, got G.711"),
    }
}

fn bytes(frame: &PortFrame) -> &[u8] {
    match frame {
        PortFrame::G711(b) => b,
        PortFrame::Pcm(_) => panic!("expected G.711, got PCM"),
    }
}

fn ulaw(pcm: &[i16]) -> Vec<u8> {
    let mut out = Vec::new();
    g711::encode_ulaw(pcm, &mut out);
    out
}

fn unulaw(bytes: &[u8]) -> Vec<i16> {
    let mut out = Vec::new();
    g711::decode_ulaw(bytes, &mut out);
    out
}

/// 20 ms PCMU packets of `pcm` (8 kHz).
fn pcmu_packets(pcm: &[i16], seq0: u16, ts0: u32, ssrc: u32) -> Vec<Vec<u8>> {
    pcm.chunks(160)
        .enumerate()
        .map(|(i, c)| {
            let i = i as u16;
            rtp(
                0,
                i == 0,
                seq0.wrapping_add(i),
                ts0.wrapping_add(u32::from(i) * 160),
                ssrc,
                &ulaw(c),
            )
        })
        .collect()
}

/// Checks one SSRC and payload type, seq +1 and timestamps +`step` all along.
fn assert_continuous(pkts: &[Vec<u8>], pt: u8, step: u32) {
    let hs: Vec<Hdr> = pkts.iter().map(|p| hdr(p)).collect();
    for (i, w) in hs.windows(2).enumerate() {
        assert_eq!(w[1].ssrc, w[0].ssrc, "packet {}: one SSRC", i + 1);
        assert_eq!(w[1].pt, pt, "packet {}: payload type", i + 1);
        assert_eq!(
            w[1].seq,
            w[0].seq.wrapping_add(1),
            "packet {}: seq +1",
            i + 1
        );
        assert_eq!(
            w[1].ts,
            w[0].ts.wrapping_add(step),
            "packet {}: ts +{step}",
            i + 1
        );
    }
}

/// Indices of the packets whose decoded audio is loud; checks they are one
/// contiguous run.
fn loud_run(decoded: &[Vec<i16>]) -> std::ops::Range<usize> {
    let loud: Vec<usize> = (0..decoded.len())
        .filter(|&i| rms(&decoded[i]) > LOUD)
        .collect();
    let (Some(&first), Some(&last)) = (loud.first(), loud.last()) else {
        panic!("no audio arrived");
    };
    assert_eq!(loud.len(), last - first + 1, "one run of audio: {loud:?}");
    first..last + 1
}

/// Bytes no codec round trip keeps (µ-law 0x7f is −0, 0xff is +0), spread
/// over 20 ms packets that all differ.
fn noise(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|i| match i % 97 {
            0 => 0x7f,
            1 => 0xff,
            _ => {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (x >> 24) as u8
            }
        })
        .collect()
}

#[tokio::test]
async fn pcmu_caller_comes_out_as_24k_pcm_frames() -> TestResult {
    let eng = engine(30400..=30409, Duration::ZERO);
    let phone = Phone::new().await;
    let fmt = StreamFormat::of(Codec::pcmu(), 0);
    let pcm24 = PortFormat::pcm16(24000);
    let (port, mut rx, local) = port_on(&eng, &phone, fmt, pcm24, pcm24).await?;

    let pkts = pcmu_packets(&tone(8000, 1000.0, AMPLITUDE, 0, 8000), 1000, 5000, 0x1234);
    let (_, got) = tokio::join!(send_paced(&phone, local, &pkts), frames(&mut rx, 40));
    assert_eq!(got.len(), 40, "frames keep coming");
    assert!(got.iter().all(|f| pcm(f).len() == 480), "20 ms at 24 kHz");
    // Past the resampler's start-up, steady tone.
    let steady: Vec<i16> = got[5..35].iter().flat_map(|f| pcm(f).to_vec()).collect();
    assert_tone(&steady, 24000, 1000.0, 1.0);

    let st = port.endpoint().stats();
    assert!(st.rtp_in >= 40, "{st:?}");
    assert_eq!(st.latched, Some(phone.rtp_addr()));
    assert_eq!(port.dropped_frames(), 0);
    let ep = port.stop().await;
    let jitter = ep.stats().jitter.ok_or("jitter stats published")?;
    assert!(jitter.played >= 40, "{jitter:?}");
    Ok(())
}

#[tokio::test]
async fn played_audio_reaches_a_pcmu_phone_paced() -> TestResult {
    let eng = engine(30410..=30419, Duration::ZERO);
    let phone = Phone::new().await;
    let fmt = StreamFormat::of(Codec::pcmu(), 0);
    let pcm24 = PortFormat::pcm16(24000);
    let (port, _rx, _) = port_on(&eng, &phone, fmt, pcm24, pcm24).await?;

    port.play(PortFrame::Pcm(tone(24000, 440.0, AMPLITUDE, 0, 24000)))?;
    assert_eq!(port.queued(), Duration::from_secs(1));
    let got = receive_for(&phone, Duration::from_millis(1600)).await;
    let pkts: Vec<Vec<u8>> = got.iter().map(|(_, p)| p.clone()).collect();
    assert_continuous(&pkts, 0, 160);
    let decoded: Vec<Vec<i16>> = pkts.iter().map(|p| unulaw(&payload(p))).collect();
    assert!(decoded.iter().all(|d| d.len() == 160), "20 ms packets");
    let run = loud_run(&decoded);
    // 50 frames, plus the resampler's tail spilling into the next one.
    assert!(
        (50..=51).contains(&run.len()),
        "{} packets of audio",
        run.len()
    );
    let span = got[run.end - 1].0 - got[run.start].0;
    assert!(
        span >= Duration::from_millis(700) && span <= Duration::from_millis(3000),
        "paced, not burst: {span:?}"
    );
    let audio: Vec<i16> = decoded[run.start + 1..run.start + 49].concat();
    assert_tone(&audio, 8000, 440.0, 1.0);
    // Silence follows, on the same stream.
    assert!(
        run.end < decoded.len(),
        "the stream goes on after the audio"
    );
    assert_eq!(port.queued(), Duration::ZERO);
    assert_eq!(port.played(), Duration::from_secs(1));
    port.stop().await;
    Ok(())
}

#[tokio::test]
async fn clear_stops_playback_at_once() -> TestResult {
    let eng = engine(30420..=30429, Duration::ZERO);
    let phone = Phone::new().await;
    let fmt = StreamFormat::of(Codec::pcmu(), 0);
    let pcm24 = PortFormat::pcm16(24000);
    let (port, _rx, _) = port_on(&eng, &phone, fmt, pcm24, pcm24).await?;

    port.play(PortFrame::Pcm(tone(24000, 440.0, AMPLITUDE, 0, 48000)))?;
    let barge_in = async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let at = Instant::now();
        (at, port.clear())
    };
    let (got, (cleared_at, dropped)) =
        tokio::join!(receive_for(&phone, Duration::from_millis(1200)), barge_in);
    assert_eq!(port.queued(), Duration::ZERO);
    assert!(
        dropped >= Duration::from_millis(1000) && dropped <= Duration::from_millis(1800),
        "dropped {dropped:?} of 2 s after 400 ms"
    );
    let played = port.played();
    assert_eq!(
        played + dropped,
        Duration::from_secs(2),
        "all accounted for"
    );

    let pkts: Vec<Vec<u8>> = got.iter().map(|(_, p)| p.clone()).collect();
    assert_continuous(&pkts, 0, 160);
    let decoded: Vec<Vec<i16>> = pkts.iter().map(|p| unulaw(&payload(p))).collect();
    let run = loud_run(&decoded);
    // Exactly what was played, plus at most the resampler's tail.
    let frames_played = (played.as_millis() / 20) as usize;
    assert!(
        (frames_played..=frames_played + 1).contains(&run.len()),
        "{} packets of audio for {frames_played} frames played",
        run.len()
    );
    let late = got[run.clone()]
        .iter()
        .filter(|(at, _)| *at > cleared_at)
        .count();
    assert!(late <= 2, "{late} packets of audio after the clear");
    assert!(
        decoded.len() > run.end + 10,
        "silence goes on after the clear"
    );
    port.stop().await;
    Ok(())
}

/// `n` 20 ms Opus packets of a 1 kHz tone (48 kHz clock).
fn opus_tone_packets(opus: &Codec, n: usize, seq0: u16) -> TestResult<Vec<Vec<u8>>> {
    let mut enc = codec::encoder(opus, 48000)?;
    let pcm = tone(48000, 1000.0, AMPLITUDE, 0, 960 * n);
    let mut pkts = Vec::new();
    for (i, c) in pcm.chunks(960).enumerate() {
        let mut payload = Vec::new();
        enc.encode(c, &mut payload)?;
        let seq = seq0.wrapping_add(i as u16);
        pkts.push(rtp(
            111,
            i == 0,
            seq,
            90_000 + i as u32 * 960,
            0x0bad,
            &payload,
        ));
    }
    Ok(pkts)
}

#[tokio::test]
async fn opus_phone_and_a_16k_port_both_ways() -> TestResult {
    let eng = engine(30430..=30439, Duration::ZERO);
    let phone = Phone::new().await;
    let opus = Codec::opus(OpusParams::default());
    let fmt = StreamFormat::of(opus.clone(), 111);
    let pcm16 = PortFormat::pcm16(16000);
    let (port, mut rx, local) = port_on(&eng, &phone, fmt, pcm16, pcm16).await?;

    // The phone speaks a 1 kHz tone in 20 ms Opus packets.
    let pkts = opus_tone_packets(&opus, 50, 7)?;
    port.play(PortFrame::Pcm(tone(16000, 440.0, AMPLITUDE, 0, 16000)))?;
    let (_, got, heard) = tokio::join!(
        send_paced(&phone, local, &pkts),
        frames(&mut rx, 40),
        receive_for(&phone, Duration::from_millis(1600)),
    );

    // Caller → application.
    assert_eq!(got.len(), 40, "frames keep coming");
    assert!(got.iter().all(|f| pcm(f).len() == 320), "20 ms at 16 kHz");
    let steady: Vec<i16> = got[5..35].iter().flat_map(|f| pcm(f).to_vec()).collect();
    assert_tone(&steady, 16000, 1000.0, 3.0);

    // Application → caller.
    let pkts: Vec<Vec<u8>> = heard.into_iter().map(|(_, p)| p).collect();
    assert_continuous(&pkts, 111, 960);
    let mut dec = codec::decoder(&opus, 48000)?;
    let mut decoded = Vec::new();
    for p in &pkts {
        let mut pcm = Vec::new();
        dec.decode(&payload(p), &mut pcm)?;
        decoded.push(pcm);
    }
    let run = loud_run(&decoded);
    assert!(
        (49..=52).contains(&run.len()),
        "{} packets of audio",
        run.len()
    );
    let audio: Vec<i16> = decoded[run.start + 2..run.end - 2].concat();
    assert_tone(&audio, 48000, 440.0, 3.0);
    port.stop().await;
    Ok(())
}

#[tokio::test]
async fn g711_passes_through_unchanged_both_ways() -> TestResult {
    let eng = engine(30440..=30449, Duration::ZERO);
    let phone = Phone::new().await;
    let fmt = StreamFormat::of(Codec::pcmu(), 0);
    let pcmu = PortFormat::pcmu();
    let (port, mut rx, local) = port_on(&eng, &phone, fmt, pcmu, pcmu).await?;

    let sent = noise(8000, 1);
    let pkts: Vec<Vec<u8>> = sent
        .chunks(160)
        .enumerate()
        .map(|(i, c)| rtp(0, false, 300 + i as u16, 160 * i as u32, 0x711, c))
        .collect();
    let played = noise(8000, 2);
    port.play(PortFrame::G711(played.clone()))?;
    let (_, got, heard) = tokio::join!(
        send_paced(&phone, local, &pkts),
        frames(&mut rx, 50),
        receive_for(&phone, Duration::from_millis(1500)),
    );

    // Caller → application: every payload, byte for byte, in order.
    assert!(got.iter().all(|f| bytes(f).len() == 160));
    let expected: Vec<&[u8]> = sent.chunks(160).collect();
    // Which of the sent packets each frame is (None: not one of them).
    let which: Vec<Option<usize>> = got
        .iter()
        .map(|f| expected.iter().position(|e| *e == bytes(f)))
        .collect();
    let matching: Vec<usize> = which.iter().flatten().copied().collect();
    assert!(
        matching.windows(2).all(|w| w[0] < w[1]),
        "in order: {which:?}"
    );
    // All of them, normally; a starved test runtime (a loaded machine) makes
    // the jitter buffer conceal and skip some, as it should.
    assert!(
        matching.len() >= expected.len() * 4 / 5,
        "the phone's bytes arrive unchanged: {which:?}"
    );

    // Application → caller: the same bytes in consecutive packets.
    let pkts: Vec<Vec<u8>> = heard.into_iter().map(|(_, p)| p).collect();
    assert_continuous(&pkts, 0, 160);
    let first = pkts
        .iter()
        .position(|p| payload(p) == played[..160])
        .ok_or("the played audio arrives")?;
    let stream: Vec<u8> = pkts[first..].iter().flat_map(|p| payload(p)).collect();
    assert!(stream.len() > played.len(), "silence follows");
    assert_eq!(stream[..played.len()], played[..], "played bytes unchanged");
    assert!(
        stream[played.len()..].iter().all(|&b| b == 0xff),
        "µ-law silence while idle"
    );
    port.stop().await;
    Ok(())
}

#[tokio::test]
async fn start_checks_formats_and_stop_gives_the_endpoint_back() -> TestResult {
    let eng = engine(30450..=30459, Duration::ZERO);
    let phone = Phone::new().await;
    let ep = eng.allocate().await?;
    ep.set_remote(Some(phone.rtp_addr()), None);
    let id = ep.id();
    let pcm = PortFormat::pcm16(16000);
    let (events, _) = mpsc::unbounded_channel();
    /// The endpoint handed back with a refusal.
    fn refused<T>(
        r: Result<T, (MediaError, dialtone_media::Endpoint)>,
    ) -> TestResult<(MediaError, dialtone_media::Endpoint)> {
        match r {
            Ok(_) => Err("the port started".into()),
            Err(e) => Ok(e),
        }
    }

    // No format negotiated: refused, the endpoint comes back.
    let (err, ep) = refused(AudioPort::start(ep, pcm, pcm, events.clone()))?;
    assert!(matches!(err, MediaError::Codec(_)), "{err}");
    assert_eq!(ep.id(), id);
    // A codec dialtone cannot decode.
    let mut g729 = StreamFormat::of(Codec::pcmu(), 18);
    g729.encoding = "G729".into();
    g729.codec = None;
    ep.set_format(g729);
    let (_, ep) = refused(AudioPort::start(ep, pcm, pcm, events.clone()))?;
    // An unusable port rate.
    ep.set_format(StreamFormat::of(Codec::pcma(), 8));
    let odd = PortFormat::pcm16(44_123);
    let (_, ep) = refused(AudioPort::start(ep, odd, pcm, events.clone()))?;

    let (port, _rx) = AudioPort::start(ep, pcm, PortFormat::pcma(), events).map_err(|(e, _)| e)?;
    // The wrong kind of audio for the playout format.
    assert!(port.play(PortFrame::Pcm(vec![0; 160])).is_err());
    port.play(PortFrame::G711(vec![0xd5; 400]))?;
    assert_eq!(port.queued(), Duration::from_millis(50));
    assert_eq!(port.clear(), Duration::from_millis(50));
    let ep = port.stop().await;
    assert_eq!(ep.id(), id);
    Ok(())
}

#[tokio::test]
async fn silent_caller_times_out_once() -> TestResult {
    let eng = engine(30460..=30469, Duration::from_millis(300));
    let phone = Phone::new().await;
    let ep = eng.allocate().await?;
    ep.set_remote(Some(phone.rtp_addr()), None);
    ep.set_format(StreamFormat::of(Codec::pcmu(), 0));
    let id = ep.id();
    let (events, mut rx) = mpsc::unbounded_channel();
    let pcm = PortFormat::pcm16(8000);
    let (port, _frames) = AudioPort::start(ep, pcm, pcm, events).map_err(|(e, _)| e)?;
    match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
        Ok(Some(MediaEvent::RtpTimeout { endpoint, .. })) => assert_eq!(endpoint, id),
        other => panic!("expected an RtpTimeout, got {other:?}"),
    }
    let again = tokio::time::timeout(Duration::from_millis(1000), rx.recv()).await;
    assert!(again.is_err(), "reported once per silence: {again:?}");
    port.stop().await;
    Ok(())
}

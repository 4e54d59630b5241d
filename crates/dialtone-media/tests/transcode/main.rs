//! The transcoding bridge and the call recorder, between phones made of real
//! UDP sockets: Opus <-> PCMU audio (checked by decoding what the phones
//! receive and measuring the tone), RFC 4733 events re-timed between 48 kHz
//! and 8 kHz clocks, concealment of a lossy, jittery input, same-codec legs
//! relayed untouched, the stereo WAV recording of relayed and transcoded
//! calls (`recording.rs`), and the outgoing clock across input pauses and
//! 30 ms packets (`timing.rs`).

#[path = "../common/mod.rs"]
mod common;
mod recording;
mod timing;

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use common::*;
use dialtone_media::codec::dtmf::TelephoneEvent;
use dialtone_media::codec::{self, Codec, CodecKind, Encoder, OpusParams};
use dialtone_media::dsp::measure::{db, dominant_frequency, tone, tone_amplitude};
use dialtone_media::{Bridge, Endpoint, MediaEngine, Recording, StreamFormat};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Peak amplitude of the tones the phones send (about −10 dBFS).
const AMP: f64 = 10_000.0;
/// A's tone and B's tone.
const A_HZ: f64 = 1000.0;
const B_HZ: f64 = 400.0;
const FRAME: Duration = Duration::from_millis(20);
/// How long the phones keep listening after the last packet sent.
const TAIL: Duration = Duration::from_millis(400);

fn opus() -> Codec {
    Codec::opus(OpusParams::default())
}

fn opus_format(pt: u8) -> StreamFormat {
    StreamFormat::of(opus(), pt).with_dtmf(101, 48000)
}

fn pcmu_format() -> StreamFormat {
    StreamFormat::of(Codec::pcmu(), 0).with_dtmf(101, 8000)
}

/// What a phone says: a tone, encoded 20 ms at a time into RTP packets of
/// one stream, and RFC 4733 digits on the same stream.
struct Voice {
    pt: u8,
    ssrc: u32,
    seq: u16,
    ts: u32,
    /// RTP clock ticks per 20 ms.
    step: u32,
    freq: f64,
    /// PCM rate fed to the encoder.
    rate: u32,
    sample: usize,
    first: bool,
    enc: Box<dyn Encoder>,
}

impl Voice {
    fn new(codec: &Codec, pt: u8, freq: f64, ssrc: u32) -> Voice {
        let rate = match codec.kind {
            CodecKind::Opus => 48000,
            _ => codec.native_rate(),
        };
        Voice {
            pt,
            ssrc,
            // Arbitrary bases, near the wrap-around for good measure.
            seq: 65_500,
            ts: u32::MAX - 5 * codec.clock_rate(),
            step: codec.clock_rate() / 50,
            freq,
            rate,
            sample: 0,
            first: true,
            enc: codec::encoder(codec, rate).expect("encoder"),
        }
    }

    /// The payload of the next 20 ms of tone.
    fn frame(&mut self) -> Vec<u8> {
        let n = self.rate as usize / 50;
        let pcm = tone(self.rate, self.freq, AMP, self.sample, n);
        self.sample += n;
        let mut payload = Vec::new();
        self.enc.encode(&pcm, &mut payload).expect("encode");
        payload
    }

    /// The next 20 ms voice packet.
    fn packet(&mut self) -> Vec<u8> {
        let payload = self.frame();
        let p = rtp(self.pt, self.first, self.seq, self.ts, self.ssrc, &payload);
        self.first = false;
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(self.step);
        p
    }

    /// `n` voice packets.
    fn packets(&mut self, n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|_| self.packet()).collect()
    }

    /// Digit `digit` as RFC 4733 packets of payload type `pt`, one per 20 ms
    /// of the event (which starts now on this stream's clock): 4 updates
    /// (marker on the first), then the end packet 3 times, all with the
    /// event's start timestamp. The voice resumes after the event.
    fn digit(&mut self, pt: u8, digit: u8) -> Vec<Vec<u8>> {
        let start = self.ts;
        let mut out = Vec::new();
        for i in 1..=7u32 {
            let end = i >= 5;
            let ev = TelephoneEvent {
                event: digit,
                end,
                volume: 10,
                duration: u16::try_from(self.step * i.min(5)).expect("short event"),
            };
            out.push(rtp(pt, i == 1, self.seq, start, self.ssrc, &ev.to_bytes()));
            self.seq = self.seq.wrapping_add(1);
        }
        // The event took 5 frames of the stream's time.
        self.ts = start.wrapping_add(5 * self.step);
        self.sample += 5 * self.rate as usize / 50;
        out
    }
}

/// Sends each packet at its offset from when this is called.
async fn play(phone: &Phone, to: SocketAddr, script: Vec<(Duration, Vec<u8>)>) {
    let start = Instant::now();
    for (at, p) in script {
        tokio::time::sleep_until(start + at).await;
        phone.send(to, &p).await;
    }
}

/// One packet every 20 ms.
fn paced(packets: Vec<Vec<u8>>) -> Vec<(Duration, Vec<u8>)> {
    packets
        .into_iter()
        .enumerate()
        .map(|(i, p)| (FRAME * i as u32, p))
        .collect()
}

/// Every RTP datagram arriving at `phone` until `until`.
async fn listen(phone: &Phone, until: Instant) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 2048];
    while let Ok(Ok((n, _))) = tokio::time::timeout_at(until, phone.rtp.recv_from(&mut buf)).await {
        got.push(buf[..n].to_vec());
    }
    got
}

/// Checks that `pkts` are one stream as a phone wants it: a single SSRC,
/// sequence numbers +1 from packet to packet (no gap, nothing reordered).
fn assert_one_stream(pkts: &[Vec<u8>]) {
    assert!(!pkts.is_empty(), "no packets");
    let hs: Vec<Hdr> = pkts.iter().map(|p| hdr(p)).collect();
    for (i, h) in hs.iter().enumerate().skip(1) {
        assert_eq!(h.ssrc, hs[0].ssrc, "packet {i}: one SSRC");
        assert_eq!(h.seq, hs[i - 1].seq.wrapping_add(1), "packet {i}: seq +1");
    }
}

/// Checks the voice packets (payload type `pt`) among `pkts`: timestamps
/// `step` apart, marker on the first only, and every payload `len` bytes
/// when given. Returns their payloads.
fn voice(pkts: &[Vec<u8>], pt: u8, step: u32, len: Option<usize>) -> Vec<Vec<u8>> {
    let hs: Vec<(usize, Hdr)> = pkts
        .iter()
        .map(|p| hdr(p))
        .enumerate()
        .filter(|(_, h)| h.pt == pt)
        .collect();
    assert!(!hs.is_empty(), "no voice packets of PT {pt}");
    for (n, (i, h)) in hs.iter().enumerate() {
        assert_eq!(h.marker, n == 0, "packet {i}: marker on the first only");
        if n > 0 {
            let prev = hs[n - 1].1.ts;
            assert_eq!(h.ts.wrapping_sub(prev), step, "packet {i}: ts +{step}");
        }
        if let Some(len) = len {
            assert_eq!(payload(&pkts[*i]).len(), len, "packet {i}: payload size");
        }
    }
    hs.iter().map(|(i, _)| payload(&pkts[*i])).collect()
}

/// Decodes `payloads` in order with a fresh `codec` decoder at `rate`.
fn decode(codec: &Codec, rate: u32, payloads: &[Vec<u8>]) -> Vec<i16> {
    let mut dec = codec::decoder(codec, rate).expect("decoder");
    let mut pcm = Vec::new();
    for p in payloads {
        dec.decode(p, &mut pcm).expect("decodable payload");
    }
    pcm
}

/// Checks the tone in `pcm` (at `rate`): over the whole of it the strongest
/// frequency is `freq`; cut into 100 ms windows, at least 3 in 4 have it as
/// their strongest too (a scheduling hiccup on a busy machine may leave a
/// gap that the receiving side conceals), and the median window's level of
/// `freq` is `AMP` ± `db_tolerance` (when given).
fn assert_tone(pcm: &[i16], rate: u32, freq: f64, db_tolerance: Option<f64>) {
    let (lo, hi) = (100.0, f64::from(rate) * 0.45);
    let f = dominant_frequency(pcm, rate, lo, hi);
    let win = rate as usize / 10;
    let windows: Vec<(f64, f64)> = pcm
        .chunks_exact(win)
        .map(|w| {
            let level = db(tone_amplitude(w, rate, freq) / AMP);
            (
                dominant_frequency(w, rate, lo, hi),
                (level * 10.0).round() / 10.0,
            )
        })
        .collect();
    let what = format!("{freq} Hz tone; windows (Hz, dB): {windows:?}");
    assert!((f - freq).abs() <= 5.0, "dominant {f} Hz: {what}");
    let on = windows
        .iter()
        .filter(|(f, _)| (f - freq).abs() <= 20.0)
        .count();
    assert!(on * 4 >= windows.len() * 3, "{what}");
    if let Some(tol) = db_tolerance {
        let mut levels: Vec<f64> = windows.iter().map(|w| w.1).collect();
        levels.sort_by(f64::total_cmp);
        let median = levels[levels.len() / 2];
        assert!(median.abs() <= tol, "median level {median} dB: {what}");
    }
}

/// `pcm` from `from` for `len` (both in 20 ms frames), checking it is there.
fn frames(pcm: &[i16], rate: u32, from: usize, len: usize) -> &[i16] {
    let f = rate as usize / 50;
    assert!(
        pcm.len() >= (from + len) * f,
        "only {} ms of audio",
        pcm.len() / (rate as usize / 1000)
    );
    &pcm[from * f..(from + len) * f]
}

/// Two phones and a bridge between their legs: what every test here
/// starts from.
struct Bridged {
    /// Kept alive for the legs' ports.
    _engine: MediaEngine,
    a: Phone,
    b: Phone,
    /// Where A and B send to: their legs' local addresses.
    a_port: SocketAddr,
    b_port: SocketAddr,
    bridge: Bridge,
}

/// Phones A and B with legs on engine ports `ports`, A's leg in format
/// `fa` and B's in `fb`, bridged (transcoding where the formats differ).
async fn bridged(ports: RangeInclusive<u16>, fa: StreamFormat, fb: StreamFormat) -> Bridged {
    let engine = engine(ports, Duration::ZERO);
    let (a, b) = (Phone::new().await, Phone::new().await);
    let (ea, eb) = legs(&engine, &a, &b).await;
    ea.set_format(fa);
    eb.set_format(fb);
    let (a_port, b_port) = (ea.local(), eb.local());
    let (tx, _rx) = mpsc::unbounded_channel();
    Bridged {
        _engine: engine,
        a,
        b,
        a_port,
        b_port,
        bridge: Bridge::start(ea, eb, tx),
    }
}

/// What a call through a transcoding bridge gave: the datagrams each phone
/// received, and the two endpoints back from the stopped bridge.
struct Heard {
    at_a: Vec<Vec<u8>>,
    at_b: Vec<Vec<u8>>,
    ea: Endpoint,
    eb: Endpoint,
}

/// Bridges phone A (leg format `fa`) and phone B (`fb`) on engine ports
/// `ports`; each plays its packets paced at 20 ms while both listen, until
/// [`TAIL`] after the longer script.
async fn call(
    ports: RangeInclusive<u16>,
    (fa, from_a): (StreamFormat, Vec<Vec<u8>>),
    (fb, from_b): (StreamFormat, Vec<Vec<u8>>),
) -> Heard {
    let Bridged {
        a,
        b,
        a_port,
        b_port,
        bridge,
        ..
    } = bridged(ports, fa, fb).await;
    let longest = from_a.len().max(from_b.len());
    let until = Instant::now() + FRAME * longest as u32 + TAIL;
    let ((), (), at_a, at_b) = tokio::join!(
        play(&a, a_port, paced(from_a)),
        play(&b, b_port, paced(from_b)),
        listen(&a, until),
        listen(&b, until),
    );
    let (ea, eb) = bridge.stop().await;
    Heard { at_a, at_b, ea, eb }
}

/// Checks that `pkts` are one stream of `codec` voice at payload type `pt`
/// (at least 3/4 of `sent` packets, payloads `len` bytes when given)
/// carrying a `freq` tone at the codec's native rate.
fn assert_hears(
    pkts: &[Vec<u8>],
    codec: &Codec,
    pt: u8,
    len: Option<usize>,
    freq: f64,
    sent: usize,
) {
    assert_one_stream(pkts);
    let payloads = voice(pkts, pt, codec.clock_rate() / 50, len);
    assert!(
        payloads.len() >= sent * 3 / 4,
        "{} {} packets",
        payloads.len(),
        codec.encoding_name()
    );
    let rate = codec.native_rate();
    let pcm = decode(codec, rate, &payloads);
    // Past the start (jitter buffer, encoder warm-up), while the other
    // party still talked.
    assert_tone(frames(&pcm, rate, 10, 40), rate, freq, Some(2.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opus_and_pcmu_are_transcoded_both_ways() {
    const N: usize = 75;
    let from_a = Voice::new(&opus(), 111, A_HZ, 0xa1).packets(N);
    let from_b = Voice::new(&Codec::pcmu(), 0, B_HZ, 0xb1).packets(N);
    let Heard { at_a, at_b, ea, eb } = call(
        31120..=31129,
        (opus_format(111), from_a),
        (pcmu_format(), from_b),
    )
    .await;

    // B hears PCMU: 160-byte payloads, one stream, ts +160, A's tone.
    assert_hears(&at_b, &Codec::pcmu(), 0, Some(160), A_HZ, N);
    // A hears Opus at PT 111, ts +960 (48 kHz clock), decoding to B's tone.
    assert_hears(&at_a, &opus(), 111, None, B_HZ, N);

    // Both inputs were decoded through a jitter buffer.
    let (sa, sb) = (ea.stats(), eb.stats());
    assert_eq!((sa.rtp_in, sb.rtp_in), (N as u64, N as u64));
    let (ja, jb) = (
        sa.jitter.expect("A's input decoded"),
        sb.jitter.expect("B's input decoded"),
    );
    assert_eq!((ja.received, jb.received), (N as u64, N as u64));
    assert!(sb.rtp_out >= at_b.len() as u64 && sa.rtp_out >= at_a.len() as u64);
}

/// G.722 and Opus meet at 16 kHz: tones above 4 kHz, which no narrowband
/// path could carry, cross in both directions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g722_and_opus_are_transcoded_wideband() {
    const N: usize = 75;
    const A_WIDE: f64 = 6000.0;
    const B_WIDE: f64 = 5000.0;
    let g722 = StreamFormat::of(Codec::g722(), 9).with_dtmf(101, 8000);
    let from_a = Voice::new(&Codec::g722(), 9, A_WIDE, 0xa2).packets(N);
    let from_b = Voice::new(&opus(), 111, B_WIDE, 0xb2).packets(N);
    let heard = call(33000..=33009, (g722, from_a), (opus_format(111), from_b)).await;

    // A hears G.722: 160-byte payloads on the 8000 Hz clock (ts +160).
    assert_hears(&heard.at_a, &Codec::g722(), 9, Some(160), B_WIDE, N);
    // B hears Opus carrying A's 6 kHz.
    assert_hears(&heard.at_b, &opus(), 111, None, A_WIDE, N);
}

/// Checks the telephone-event packets of payload type `pt` among `pkts`:
/// digit `digit` as [`Voice::digit`] sends it, durations on a clock of
/// `step` ticks per 20 ms, one timestamp anchored on the voice stream
/// (the voice packet before it + `step`), marker on the first only.
fn assert_digit(pkts: &[Vec<u8>], pt: u8, digit: u8, step: u32, voice_pt: u8) {
    let evs: Vec<(usize, Hdr, TelephoneEvent)> = pkts
        .iter()
        .enumerate()
        .map(|(i, p)| (i, hdr(p), p))
        .filter(|(_, h, _)| h.pt == pt)
        .map(|(i, h, p)| (i, h, TelephoneEvent::parse(&payload(p)).expect("event")))
        .collect();
    assert_eq!(evs.len(), 7, "every event packet arrives: {evs:#?}");
    let durations: Vec<u32> = evs.iter().map(|e| u32::from(e.2.duration)).collect();
    let want: Vec<u32> = (1..=7).map(|i: u32| step * i.min(5)).collect();
    assert_eq!(durations, want, "durations on the outgoing clock");
    let ends: Vec<bool> = evs.iter().map(|e| e.2.end).collect();
    assert_eq!(ends, [false, false, false, false, true, true, true]);
    let markers: Vec<bool> = evs.iter().map(|e| e.1.marker).collect();
    assert_eq!(markers, [true, false, false, false, false, false, false]);
    for (_, h, ev) in &evs {
        assert_eq!((ev.event, ev.volume), (digit, 10));
        assert_eq!(h.ts, evs[0].1.ts, "one timestamp for the whole event");
    }
    // Anchored where the voice stream is: right after the last voice frame.
    let before = pkts[..evs[0].0]
        .iter()
        .map(|p| hdr(p))
        .rfind(|h| h.pt == voice_pt)
        .expect("voice before the event");
    assert_eq!(evs[0].1.ts.wrapping_sub(before.ts), step, "event anchor");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telephone_events_are_retimed_between_clocks() {
    // Each phone: 300 ms of voice, a digit, 200 ms of voice.
    let talk = |mut v: Voice, digit: u8| {
        let mut ps = v.packets(15);
        ps.extend(v.digit(101, digit));
        ps.extend(v.packets(10));
        ps
    };
    let from_a = talk(Voice::new(&opus(), 111, A_HZ, 0xa2), 9);
    let from_b = talk(Voice::new(&Codec::pcmu(), 0, B_HZ, 0xb2), 5);
    let Heard { at_a, at_b, .. } = call(
        31130..=31139,
        (opus_format(111), from_a),
        (pcmu_format(), from_b),
    )
    .await;

    // B's digit 5 at 8 kHz reaches A at 48 kHz: durations ×6, on A's stream.
    assert_one_stream(&at_a);
    voice(&at_a, 111, 960, None);
    assert_digit(&at_a, 101, 5, 960, 111);
    // A's digit 9 at 48 kHz reaches B at 8 kHz: durations ÷6.
    assert_one_stream(&at_b);
    voice(&at_b, 0, 160, Some(160));
    assert_digit(&at_b, 101, 9, 160, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lossy_jittery_input_is_concealed_into_a_continuous_stream() {
    let Bridged {
        a,
        b,
        a_port,
        bridge,
        ..
    } = bridged(31140..=31149, opus_format(111), pcmu_format()).await;

    // 100 Opus packets from A: 3 lost, 4 pairs swapped, 2 bursts held back
    // 60 ms (arriving together with the packet after them).
    const N: usize = 100;
    const LOST: [usize; 3] = [20, 45, 80];
    let mut script: Vec<(Duration, Vec<u8>)> = Vec::new();
    for (i, p) in Voice::new(&opus(), 111, A_HZ, 0xa3)
        .packets(N)
        .into_iter()
        .enumerate()
    {
        if LOST.contains(&i) {
            continue;
        }
        let delay = match i {
            10 | 30 | 50 | 90 => Duration::from_millis(25),
            60..=62 => Duration::from_millis(60 - 20 * (i as u64 - 60)),
            70..=72 => Duration::from_millis(60 - 20 * (i as u64 - 70)),
            _ => Duration::ZERO,
        };
        script.push((FRAME * i as u32 + delay, p));
    }
    script.sort_by_key(|(at, _)| *at);
    let until = Instant::now() + FRAME * N as u32 + TAIL;
    let ((), at_b) = tokio::join!(play(&a, a_port, script), listen(&b, until));
    let (ea, _eb) = bridge.stop().await;

    // B gets one gapless PCMU stream, at least as long as what A sent:
    // the missing and late packets were concealed, not skipped.
    assert_one_stream(&at_b);
    let pcmu = voice(&at_b, 0, 160, Some(160));
    assert!(pcmu.len() >= N, "{} PCMU packets for {N} sent", pcmu.len());
    let pcm = decode(&Codec::pcmu(), 8000, &pcmu);
    // The tone holds across the losses.
    assert_tone(frames(&pcm, 8000, 5, 90), 8000, A_HZ, Some(2.0));

    let jitter = ea.stats().jitter.expect("A's input decoded");
    assert_eq!(ea.stats().rtp_in, (N - LOST.len()) as u64);
    assert_eq!(jitter.received, (N - LOST.len()) as u64, "{jitter:#?}");
    assert_eq!(jitter.expected, N as u64, "{jitter:#?}");
    assert_eq!(jitter.cumulative_lost, LOST.len() as i64, "{jitter:#?}");
    assert!(jitter.lost >= LOST.len() as u64, "{jitter:#?}");
    assert!(jitter.concealed >= LOST.len() as u64, "{jitter:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_codec_different_payload_types_is_relayed_untouched() {
    let Bridged {
        a,
        b,
        a_port,
        b_port,
        bridge,
        ..
    } = bridged(
        31150..=31159,
        opus_format(111),
        StreamFormat::of(opus(), 96).with_dtmf(100, 48000),
    )
    .await;

    let mut va = Voice::new(&opus(), 111, A_HZ, 0xa4);
    let mut from_a = va.packets(10);
    from_a.extend(va.digit(101, 1));
    from_a.extend(va.packets(3));
    let from_b = Voice::new(&opus(), 96, B_HZ, 0xb4).packets(10);
    for (pa, pb) in from_a.iter().zip(&from_b) {
        a.send(a_port, pa).await;
        b.send(b_port, pb).await;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    for p in &from_a[from_b.len()..] {
        a.send(a_port, p).await;
    }
    let at_b = b.recv_n(from_a.len()).await;
    let at_a = a.recv_n(from_b.len()).await;
    assert!(b.recv(Duration::from_millis(200)).await.is_none());

    // Every byte as sent but the payload type (marker bit kept).
    let renumbered = |sent: &[Vec<u8>], map: &[(u8, u8)]| -> Vec<Vec<u8>> {
        sent.iter()
            .map(|p| {
                let mut p = p.clone();
                let pt = p[1] & 0x7f;
                let (_, to) = map.iter().find(|(from, _)| *from == pt).expect("mapped");
                p[1] = (p[1] & 0x80) | to;
                p
            })
            .collect()
    };
    assert_eq!(at_b, renumbered(&from_a, &[(111, 96), (101, 100)]));
    assert_eq!(at_a, renumbered(&from_b, &[(96, 111)]));

    let (ea, eb) = bridge.stop().await;
    assert!(
        ea.stats().jitter.is_none() && eb.stats().jitter.is_none(),
        "nothing was decoded"
    );
}

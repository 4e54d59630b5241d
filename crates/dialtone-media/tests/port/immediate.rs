//! Immediate caller timing: every RTP packet comes out as one frame of its
//! duration as soon as it arrives (no jitter-buffer priming), late and
//! duplicate packets are dropped, a short gap is concealed first, and G.711
//! passes through, PCMU is resampled, Opus is decoded.

use dialtone_media::CallerTiming;

use super::*;

const IMMEDIATE: PortOptions = PortOptions {
    caller: CallerTiming::Immediate,
};

/// A PCMU packet of `noise` that tells which sequence number it was.
fn numbered(seq: u16) -> (Vec<u8>, Vec<u8>) {
    let bytes = noise(160, u32::from(seq) + 1);
    let pkt = rtp(0, false, seq, u32::from(seq) * 160, 0x1111, &bytes);
    (pkt, bytes)
}

#[tokio::test]
async fn one_packet_is_one_frame_at_once() -> TestResult {
    let eng = engine(30500..=30509, Duration::ZERO);
    let phone = Phone::new().await;
    let fmt = StreamFormat::of(Codec::pcmu(), 0);
    let pcm24 = PortFormat::pcm16(24000);
    let (port, mut rx, local) = port_with(&eng, &phone, fmt, pcm24, pcm24, IMMEDIATE).await?;

    let pkts = pcmu_packets(&tone(8000, 1000.0, AMPLITUDE, 0, 160), 40, 0, 0x2222);
    phone.send(local, &pkts[0]).await;
    let got = events(&mut rx, 2, Duration::from_millis(500)).await;
    assert_eq!(got.len(), 1, "one packet, one frame, no more: {got:?}");
    let PortEvent::Audio(frame) = &got[0] else {
        panic!("expected audio, got {got:?}");
    };
    assert_eq!(pcm(frame).len(), 480, "20 ms at 24 kHz");
    port.stop().await;
    Ok(())
}

#[tokio::test]
async fn late_and_duplicate_packets_are_dropped_and_short_gaps_concealed() -> TestResult {
    let eng = engine(30510..=30519, Duration::ZERO);
    let phone = Phone::new().await;
    let fmt = StreamFormat::of(Codec::pcmu(), 0);
    let pcmu = PortFormat::pcmu();
    let (port, mut rx, local) = port_with(&eng, &phone, fmt, pcmu, pcmu, IMMEDIATE).await?;

    // 10 11 12, 12 again (duplicate), 13, then 16 after a gap of two, 14
    // and 15 after it (late), then 30 after a gap of thirteen.
    let order = [10u16, 11, 12, 12, 13, 16, 14, 15, 30];
    for seq in order {
        phone.send(local, &numbered(seq).0).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let got = frames(&mut rx, 8).await;
    let which: Vec<Option<u16>> = got
        .iter()
        .map(|f| {
            assert_eq!(bytes(f).len(), 160, "20 ms frames");
            order.into_iter().find(|&s| numbered(s).1 == bytes(f))
        })
        .collect();
    assert_eq!(
        which,
        [
            Some(10),
            Some(11),
            Some(12),
            Some(13),
            // Two concealment frames for 14 and 15, before 16.
            None,
            None,
            Some(16),
            // A bigger gap just continues.
            Some(30)
        ]
    );
    let more = events(&mut rx, 1, Duration::from_millis(300)).await;
    assert!(more.is_empty(), "nothing else: {more:?}");
    let ep = port.stop().await;
    let jitter = ep.stats().jitter.ok_or("jitter stats published")?;
    assert_eq!(
        (
            jitter.late,
            jitter.duplicates,
            jitter.concealed,
            jitter.played
        ),
        (2, 1, 2, 6),
        "{jitter:?}"
    );
    Ok(())
}

#[tokio::test]
async fn pcmu_comes_out_as_24k_pcm_and_g711_passes_through() -> TestResult {
    let eng = engine(30520..=30529, Duration::ZERO);
    let fmt = StreamFormat::of(Codec::pcmu(), 0);

    // PCMU → 24 kHz PCM.
    let phone = Phone::new().await;
    let pcm24 = PortFormat::pcm16(24000);
    let (port, mut rx, local) =
        port_with(&eng, &phone, fmt.clone(), pcm24, pcm24, IMMEDIATE).await?;
    let pkts = pcmu_packets(&tone(8000, 1000.0, AMPLITUDE, 0, 8000), 1000, 5000, 0x1234);
    let (_, got) = tokio::join!(send_paced(&phone, local, &pkts), frames(&mut rx, 50));
    assert_eq!(got.len(), 50, "a frame per packet");
    assert!(got.iter().all(|f| pcm(f).len() == 480), "20 ms at 24 kHz");
    let steady: Vec<i16> = got[5..45].iter().flat_map(|f| pcm(f).to_vec()).collect();
    assert_tone(&steady, 24000, 1000.0, 1.0);
    assert_eq!(port.dropped_frames(), 0);
    port.stop().await;

    // A µ-law port on a PCMU leg: the payloads, byte for byte, in order.
    let phone = Phone::new().await;
    let pcmu = PortFormat::pcmu();
    let (port, mut rx, local) = port_with(&eng, &phone, fmt, pcmu, pcmu, IMMEDIATE).await?;
    let sent = noise(8000, 7);
    let pkts: Vec<Vec<u8>> = sent
        .chunks(160)
        .enumerate()
        .map(|(i, c)| rtp(0, false, 300 + i as u16, 160 * i as u32, 0x711, c))
        .collect();
    let (_, got) = tokio::join!(send_paced(&phone, local, &pkts), frames(&mut rx, 50));
    let got: Vec<&[u8]> = got.iter().map(bytes).collect();
    let expected: Vec<&[u8]> = sent.chunks(160).collect();
    assert_eq!(got, expected, "every payload unchanged, nothing else");
    port.stop().await;
    Ok(())
}

#[tokio::test]
async fn opus_packets_of_any_duration_are_frames_of_that_duration() -> TestResult {
    let eng = engine(30530..=30539, Duration::ZERO);
    let phone = Phone::new().await;
    let opus = Codec::opus(OpusParams::default());
    let fmt = StreamFormat::of(opus.clone(), 111);
    let pcm16 = PortFormat::pcm16(16000);
    let (port, mut rx, local) = port_with(&eng, &phone, fmt, pcm16, pcm16, IMMEDIATE).await?;

    // 40 packets of 20 ms, then 10, 40 and 60 ms ones.
    let mut pkts = opus_tone_packets(&opus, 40, 7)?;
    let mut enc = codec::encoder(&opus, 48000)?;
    let mut ts = 90_000 + 40 * 960;
    for (i, ms) in [10u32, 40, 60].into_iter().enumerate() {
        let n = 48 * ms;
        let mut payload = Vec::new();
        enc.encode(&tone(48000, 1000.0, AMPLITUDE, 0, n as usize), &mut payload)?;
        pkts.push(rtp(111, false, 47 + i as u16, ts, 0x0bad, &payload));
        ts += n;
    }
    let (_, got) = tokio::join!(send_paced(&phone, local, &pkts), frames(&mut rx, 43));
    let lens: Vec<usize> = got.iter().map(|f| pcm(f).len()).collect();
    assert_eq!(lens.len(), 43, "a frame per packet: {lens:?}");
    assert!(lens[..40].iter().all(|&n| n == 320), "20 ms at 16 kHz");
    assert_eq!(lens[40..], [160, 640, 960], "10, 40 and 60 ms");
    let steady: Vec<i16> = got[5..38].iter().flat_map(|f| pcm(f).to_vec()).collect();
    assert_tone(&steady, 16000, 1000.0, 3.0);
    port.stop().await;
    Ok(())
}

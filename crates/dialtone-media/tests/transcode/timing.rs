//! The transcoded stream's clock: across a pause of the input, and fed by
//! 30 ms packets.

use super::*;

/// A pauses for 1 s (its timestamps move on with the pause, marker on the
/// first packet after it, as a phone muting or on hold does). Past 500 ms of
/// concealment the transcoder stops sending to B; when A resumes, the stream
/// to B must say that time passed: a timestamp jump of about the silence and
/// the marker (RFC 3550 §5.1, RFC 3551 §4.1), as the DTX path does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_pause_moves_output_timestamps_on() {
    let Bridged {
        a,
        b,
        a_port,
        bridge,
        ..
    } = bridged(31180..=31189, opus_format(111), pcmu_format()).await;

    let mut v = Voice::new(&opus(), 111, A_HZ, 0xa6);
    let mut script = paced(v.packets(20));
    let pause = Duration::from_secs(1);
    v.ts = v.ts.wrapping_add(48_000);
    v.first = true;
    for (at, p) in paced(v.packets(20)) {
        script.push((FRAME * 20 + pause + at, p));
    }
    let until = Instant::now() + FRAME * 40 + pause + TAIL;
    let ((), at_b) = tokio::join!(play(&a, a_port, script), listen(&b, until));
    bridge.stop().await;

    assert_one_stream(&at_b);
    let hs: Vec<Hdr> = at_b.iter().map(|p| hdr(p)).collect();
    let jumps: Vec<(usize, u32, bool)> = hs
        .windows(2)
        .enumerate()
        .map(|(i, w)| (i + 1, w[1].ts.wrapping_sub(w[0].ts), w[1].marker))
        .filter(|&(_, step, marker)| step != 160 || marker)
        .collect();
    // One splice where A resumed: marked, at least 300 ms on (the output
    // was silent for ~500 ms of the 1 s pause).
    assert_eq!(jumps.len(), 1, "one resumption: {jumps:?}");
    let (_, step, marker) = jumps[0];
    assert!(
        marker && step >= 2400,
        "resumed with ts +{step}, marker {marker}"
    );
}

/// A carrier sending 30 ms packets (ptime 30: 240 PCMU bytes, ts +240)
/// into a 20 ms transcoding clock: the jitter buffer and the decoder's PCM
/// carry-over keep the output continuous, with nothing made up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_ms_packets_feed_the_twenty_ms_clock() {
    let Bridged {
        a,
        b,
        b_port,
        bridge,
        ..
    } = bridged(31190..=31199, opus_format(111), pcmu_format()).await;

    const N: usize = 60; // 1.8 s
    let pcm = tone(8000, B_HZ, AMP, 0, N * 240);
    let script: Vec<(Duration, Vec<u8>)> = pcm
        .chunks_exact(240)
        .enumerate()
        .map(|(i, chunk)| {
            let mut payload = Vec::new();
            dialtone_media::codec::g711::encode_ulaw(chunk, &mut payload);
            let pkt = rtp(0, i == 0, i as u16, (i * 240) as u32, 0xb30, &payload);
            (Duration::from_millis(30) * i as u32, pkt)
        })
        .collect();
    let until = Instant::now() + Duration::from_millis(30) * N as u32 + TAIL;
    let ((), at_a) = tokio::join!(play(&b, b_port, script), listen(&a, until));
    let (_, eb) = bridge.stop().await;

    assert_one_stream(&at_a);
    let op = voice(&at_a, 111, 960, None);
    // 1.8 s of input is 90 frames of output.
    assert!(
        op.len() >= 80,
        "{} Opus packets for 1.8 s of audio",
        op.len()
    );
    let out = decode(&opus(), 48000, &op);
    assert_tone(frames(&out, 48000, 10, 60), 48000, B_HZ, Some(2.0));
    let j = eb.stats().jitter.expect("B's input decoded");
    assert_eq!(j.received, N as u64);
    assert_eq!(j.lost, 0, "nothing lost: {j:?}");
    assert!(
        j.late <= 1,
        "30 ms packets are not late on a 20 ms clock: {j:?}"
    );
}

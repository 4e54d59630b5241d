//! Playout: audio given to an idle port leaves at once rather than at the
//! next 20 ms mark, then every 20 ms on one continuous stream; cloned
//! players share one queue, clear it, and fail once the port stopped.

use dialtone_media::PortPlayer;

use super::*;

/// Receives until a packet of µ-law silence arrives; when it arrived.
async fn next_silence(phone: &Phone) -> TestResult<(Instant, Vec<u8>)> {
    loop {
        let (p, _) = phone.recv(WAIT).await.ok_or("the port keeps sending")?;
        if payload(&p).iter().all(|&b| b == 0xff) {
            return Ok((Instant::now(), p));
        }
    }
}

#[tokio::test]
async fn audio_into_an_idle_port_leaves_at_once_then_every_20_ms() -> TestResult {
    let eng = engine(30540..=30549, Duration::ZERO);
    let phone = Phone::new().await;
    let fmt = StreamFormat::of(Codec::pcmu(), 0);
    let pcmu = PortFormat::pcmu();
    let (port, _rx, _) = port_on(&eng, &phone, fmt, pcmu, pcmu).await?;
    let player = port.player();

    let mut stream = Vec::new();
    for round in 0..3u32 {
        // Right after a silence packet, the next regular one is 20 ms away.
        let (silence_at, silence) = next_silence(&phone).await?;
        let played = noise(160 * 25, round + 10);
        player.play(PortFrame::G711(played.clone()))?;
        let got = receive_for(&phone, Duration::from_millis(700)).await;
        let (first_at, first) = got.first().ok_or("packets keep coming")?;
        assert_eq!(
            payload(first),
            played[..160],
            "round {round}: the audio is the next packet"
        );
        let gap = *first_at - silence_at;
        assert!(
            gap < Duration::from_millis(15),
            "round {round}: {gap:?} after the silence packet, not a whole frame"
        );
        // The rest follows 20 ms apart, not in a burst.
        let audio: Vec<&(Instant, Vec<u8>)> = got
            .iter()
            .filter(|(_, p)| payload(p).iter().any(|&b| b != 0xff))
            .collect();
        assert_eq!(audio.len(), 25, "round {round}: every frame once");
        let span = audio[24].0 - audio[0].0;
        assert!(
            span >= Duration::from_millis(24 * 15) && span <= Duration::from_millis(1500),
            "round {round}: paced, not burst: {span:?}"
        );
        let heard: Vec<u8> = audio.iter().flat_map(|(_, p)| payload(p)).collect();
        assert_eq!(heard, played, "round {round}: played bytes unchanged");
        stream.push(silence);
        stream.extend(got.into_iter().map(|(_, p)| p));
    }
    // Starting early took no sequence number or timestamp out of line.
    let mut contiguous = Vec::new();
    for p in stream {
        // The rounds' windows leave packets out between them; check within.
        if contiguous
            .last()
            .is_some_and(|last: &Vec<u8>| hdr(&p).seq != hdr(last).seq.wrapping_add(1))
        {
            assert_continuous(&contiguous, 0, 160);
            contiguous.clear();
        }
        contiguous.push(p);
    }
    assert_continuous(&contiguous, 0, 160);
    assert_eq!(port.played(), Duration::from_millis(3 * 500));
    port.stop().await;
    Ok(())
}

/// What a player must be to move into the task that talks to the LLM.
fn movable<T: Clone + Send + Sync + 'static>(t: &T) -> T {
    t.clone()
}

#[tokio::test]
async fn players_share_one_queue_clear_it_and_fail_after_stop() -> TestResult {
    let eng = engine(30550..=30559, Duration::ZERO);
    let phone = Phone::new().await;
    let fmt = StreamFormat::of(Codec::pcmu(), 0);
    let pcm24 = PortFormat::pcm16(24000);
    let (port, _rx, _) = port_on(&eng, &phone, fmt, pcm24, pcm24).await?;
    let one: PortPlayer = port.player();
    let two = movable(&one);

    // One player from another task, one here: a single queue.
    let second =
        tokio::spawn(
            async move { two.play(PortFrame::Pcm(tone(24000, 440.0, AMPLITUDE, 0, 24000))) },
        );
    second.await??;
    one.play(PortFrame::Pcm(tone(24000, 440.0, AMPLITUDE, 0, 24000)))?;
    // (The first frame may have left already: the port was idle.)
    assert_eq!(one.queued() + one.played(), Duration::from_secs(2));
    assert_eq!(port.queued() + port.played(), Duration::from_secs(2));

    let barge_in = async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let at = Instant::now();
        (at, movable(&one).clear())
    };
    let (got, (cleared_at, dropped)) =
        tokio::join!(receive_for(&phone, Duration::from_millis(1200)), barge_in);
    assert_eq!(port.queued(), Duration::ZERO);
    let played = one.played();
    assert!(
        dropped >= Duration::from_millis(1000) && dropped <= Duration::from_millis(1800),
        "dropped {dropped:?} of 2 s after 400 ms"
    );
    assert_eq!(
        played + dropped,
        Duration::from_secs(2),
        "all accounted for"
    );
    let decoded: Vec<Vec<i16>> = got.iter().map(|(_, p)| unulaw(&payload(p))).collect();
    let run = loud_run(&decoded);
    let late = got[run.clone()]
        .iter()
        .filter(|(at, _)| *at > cleared_at)
        .count();
    assert!(late <= 2, "{late} packets of audio after the clear");

    // Stopped: players outlive the port harmlessly.
    port.stop().await;
    assert!(one.play(PortFrame::Pcm(vec![0; 480])).is_err());
    assert_eq!(one.queued(), Duration::ZERO);
    assert_eq!(one.played(), played);
    assert_eq!(one.clear(), Duration::ZERO);
    Ok(())
}

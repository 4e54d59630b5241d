//! DTMF from the caller: RFC 4733 telephone-events come out of the port as
//! one `PortEvent::Dtmf` per key press, in both timings, and are not lost
//! when the application is not reading.

use dialtone_media::codec::dtmf::TelephoneEvent;
use dialtone_media::CallerTiming;

use super::*;

const DTMF_PT: u8 = 101;
const SSRC: u32 = 0xd7f;

/// PCMU with telephone-event at 101/8000.
fn pcmu_dtmf() -> StreamFormat {
    StreamFormat::of(Codec::pcmu(), 0).with_dtmf(DTMF_PT, 8000)
}

/// The packets of one key press as a phone sends them, from sequence number
/// `seq0`: `updates` packets 20 ms apart (the first marked), then the end
/// packet three times; the press lasts `updates + 1` × 20 ms.
fn press(event: u8, seq0: u16, ts: u32, updates: u16) -> Vec<Vec<u8>> {
    let packet = |end: bool, n: u16| {
        TelephoneEvent {
            event,
            end,
            volume: 10,
            duration: 160 * n,
        }
        .to_bytes()
    };
    let mut pkts: Vec<Vec<u8>> = (0..updates)
        .map(|i| rtp(DTMF_PT, i == 0, seq0 + i, ts, SSRC, &packet(false, i + 1)))
        .collect();
    for j in 0..3 {
        let seq = seq0 + updates + j;
        pkts.push(rtp(
            DTMF_PT,
            false,
            seq,
            ts,
            SSRC,
            &packet(true, updates + 1),
        ));
    }
    pkts
}

/// The key presses among `events`.
fn digits(events: &[PortEvent]) -> Vec<(char, Duration)> {
    events
        .iter()
        .filter_map(|ev| match ev {
            PortEvent::Dtmf { digit, duration } => Some((*digit, *duration)),
            PortEvent::Audio(_) => None,
        })
        .collect()
}

fn audio_count(events: &[PortEvent]) -> usize {
    events
        .iter()
        .filter(|ev| matches!(ev, PortEvent::Audio(_)))
        .count()
}

/// Everything the port hands over until it has been quiet for 500 ms.
async fn drain(rx: &mut mpsc::Receiver<PortEvent>) -> Vec<PortEvent> {
    events(rx, usize::MAX, Duration::from_millis(500)).await
}

#[tokio::test]
async fn a_key_press_is_reported_once_and_two_keys_twice() -> TestResult {
    let eng = engine(30470..=30479, Duration::ZERO);
    let phone = Phone::new().await;
    let pcm = PortFormat::pcm16(16000);
    // Paced timing (the default): DTMF does not wait for the jitter buffer.
    let (port, mut rx, local) = port_on(&eng, &phone, pcmu_dtmf(), pcm, pcm).await?;

    send_paced(&phone, local, &press(5, 100, 8000, 4)).await;
    let got = drain(&mut rx).await;
    assert_eq!(digits(&got), [('5', Duration::from_millis(100))]);

    let mut two = press(1, 200, 16000, 2);
    two.extend(press(11, 205, 24000, 7));
    send_paced(&phone, local, &two).await;
    let got = drain(&mut rx).await;
    assert_eq!(
        digits(&got),
        [
            ('1', Duration::from_millis(60)),
            ('#', Duration::from_millis(160))
        ]
    );
    port.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_key_press_between_audio_takes_no_audio_slot() -> TestResult {
    let eng = engine(30480..=30489, Duration::ZERO);
    let phone = Phone::new().await;
    let pcmu = PortFormat::pcmu();
    let options = PortOptions {
        caller: CallerTiming::Immediate,
    };
    let (port, mut rx, local) = port_with(&eng, &phone, pcmu_dtmf(), pcmu, pcmu, options).await?;

    // Audio, a key press on the same sequence numbers, audio again (the
    // timestamp moved on by the press, as a phone does).
    let audio = |seq: u16, ts: u32| rtp(0, false, seq, ts, SSRC, &[0x55; 160]);
    let mut pkts: Vec<Vec<u8>> = (0..5).map(|i| audio(i, u32::from(i) * 160)).collect();
    pkts.extend(press(9, 5, 800, 3));
    pkts.extend((11..16).map(|i| audio(i, 800 + 640 + u32::from(i - 11) * 160)));
    send_paced(&phone, local, &pkts).await;
    let got = drain(&mut rx).await;
    assert_eq!(digits(&got), [('9', Duration::from_millis(80))]);
    // The event's packets are not taken for lost audio: no concealment.
    assert_eq!(audio_count(&got), 10, "one frame per audio packet");
    let ep = port.stop().await;
    let jitter = ep.stats().jitter.ok_or("jitter stats published")?;
    assert_eq!(jitter.lost, 0, "{jitter:?}");
    Ok(())
}

#[tokio::test]
async fn a_digit_is_not_lost_while_the_application_is_not_reading() -> TestResult {
    let eng = engine(30490..=30499, Duration::ZERO);
    let phone = Phone::new().await;
    let pcmu = PortFormat::pcmu();
    let options = PortOptions {
        caller: CallerTiming::Immediate,
    };
    let (port, mut rx, local) = port_with(&eng, &phone, pcmu_dtmf(), pcmu, pcmu, options).await?;

    // Far more audio than the channel holds, unread; then a key press.
    const SENT: u16 = 120;
    for i in 0..SENT {
        let pkt = rtp(0, false, i, u32::from(i) * 160, SSRC, &[0x55; 160]);
        phone.send(local, &pkt).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for p in press(3, SENT, u32::from(SENT) * 160, 2) {
        phone.send(local, &p).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(port.dropped_frames() > 0, "the channel filled up");

    let got = drain(&mut rx).await;
    assert_eq!(digits(&got), [('3', Duration::from_millis(60))]);
    assert!(
        matches!(got.last(), Some(PortEvent::Dtmf { .. })),
        "the digit comes after the audio that filled the channel"
    );
    assert_eq!(
        audio_count(&got) as u64 + port.dropped_frames(),
        u64::from(SENT),
        "every audio packet was handed over or counted as dropped"
    );
    port.stop().await;
    Ok(())
}

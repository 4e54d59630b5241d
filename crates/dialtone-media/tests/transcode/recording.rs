//! Call recording of relayed and transcoded bridges.

use std::path::PathBuf;

use super::*;

/// A scratch directory for one test's files, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "dialtone-media-transcode-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Records a call between A (`fa`, saying `A_HZ`) and B (`fb`, saying
/// `B_HZ`) for 2 s and checks the WAV file: stereo 8 kHz, as long as the
/// recording ran, A on the left and B on the right.
async fn record_call(ports: std::ops::RangeInclusive<u16>, fa: StreamFormat, fb: StreamFormat) {
    let eng = engine(ports, Duration::ZERO);
    let (a, b) = (Phone::new().await, Phone::new().await);
    let (ea, eb) = legs(&eng, &a, &b).await;
    let (ca, cb) = (
        fa.codec.clone().expect("codec"),
        fb.codec.clone().expect("codec"),
    );
    let (pta, ptb) = (fa.pt, fb.pt);
    ea.set_format(fa);
    eb.set_format(fb);
    let (a_port, b_port) = (ea.local(), eb.local());
    let dir = TempDir::new(ca.encoding_name());
    let path = dir.0.join("calls").join("x.wav");

    let started = std::time::Instant::now();
    let rec = Recording::start(&path, 8000).expect("recording starts");
    let (tx, _rx) = mpsc::unbounded_channel();
    let bridge = Bridge::start_recorded(ea, eb, tx, Some(&rec));
    const N: usize = 100;
    let from_a = Voice::new(&ca, pta, A_HZ, 0xa5).packets(N);
    let from_b = Voice::new(&cb, ptb, B_HZ, 0xb5).packets(N);
    let until = Instant::now() + FRAME * N as u32 + Duration::from_millis(100);
    let ((), (), at_a, at_b) = tokio::join!(
        play(&a, a_port, paced(from_a)),
        play(&b, b_port, paced(from_b)),
        listen(&a, until),
        listen(&b, until),
    );
    assert!(!at_a.is_empty() && !at_b.is_empty(), "media flowed");
    bridge.stop().await;
    let info = rec.finish().await.expect("recording finishes");
    let wall = started.elapsed();

    assert_eq!(
        (info.path.as_path(), info.sample_rate),
        (path.as_path(), 8000)
    );
    let mut wav = hound::WavReader::open(&path).expect("a WAV file");
    let spec = wav.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (2, 8000, 16)
    );
    let samples: Vec<i16> = wav
        .samples::<i16>()
        .collect::<Result<_, _>>()
        .expect("samples");
    let per_channel = samples.len() / 2;
    assert_eq!(
        Duration::from_secs_f64(per_channel as f64 / 8000.0),
        info.duration,
        "the WAV holds what the recording says"
    );
    // About the time the recording ran (the 2 s call and a little more).
    assert!(
        info.duration >= Duration::from_millis(1800) && info.duration <= wall + FRAME,
        "recorded {:?} in {wall:?}",
        info.duration
    );

    let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
    let right: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
    // 0.5 s .. 1.5 s: both parties talking.
    let (l, r) = (frames(&left, 8000, 25, 50), frames(&right, 8000, 25, 50));
    assert_tone(l, 8000, A_HZ, Some(2.0));
    assert_tone(r, 8000, B_HZ, Some(2.0));
    // Each party on its own channel only.
    for (ch, own, other) in [(l, A_HZ, B_HZ), (r, B_HZ, A_HZ)] {
        let sep = db(tone_amplitude(ch, 8000, other) / tone_amplitude(ch, 8000, own));
        assert!(sep < -30.0, "crosstalk {sep:.1} dB");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_a_relayed_call() {
    record_call(31160..=31169, pcmu_format(), pcmu_format()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_a_transcoded_call() {
    record_call(31170..=31179, opus_format(111), pcmu_format()).await;
}

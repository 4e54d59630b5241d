//! Hold beeps: what the caller hears while a slow tool runs and the model
//! cannot be asked for a filler line (Gemini blocks on a pending function
//! call). Two short soft 440 Hz beeps, then silence, two seconds in all —
//! in the agent's output format, ready for the playout queue.

use std::f64::consts::PI;

use dialtone_media::codec::g711;
use dialtone_media::PortFrame;

use crate::protocol::AudioFormat;

/// Beep level: about -20 dBFS, soft beside speech.
const AMPLITUDE: f64 = 3277.0;
const BEEP_MS: u32 = 120;
const GAP_MS: u32 = 120;
const CYCLE_MS: u32 = 2000;

fn pcm(rate: u32) -> Vec<i16> {
    let per_ms = rate / 1000;
    let total = (CYCLE_MS * per_ms) as usize;
    let beep = (BEEP_MS * per_ms) as usize;
    let second = ((BEEP_MS + GAP_MS) * per_ms) as usize;
    (0..total)
        .map(|n| {
            let on = n < beep || (n >= second && n < second + beep);
            if on {
                let t = n as f64 / f64::from(rate);
                (AMPLITUDE * (2.0 * PI * 440.0 * t).sin()) as i16
            } else {
                0
            }
        })
        .collect()
}

/// One cycle of the beeps in `format`.
pub fn beeps(format: AudioFormat) -> PortFrame {
    match format {
        AudioFormat::Pcm16 { rate } => PortFrame::Pcm(pcm(rate)),
        AudioFormat::Pcmu => {
            let mut out = Vec::new();
            g711::encode_ulaw(&pcm(8000), &mut out);
            PortFrame::G711(out)
        }
        AudioFormat::Pcma => {
            let mut out = Vec::new();
            g711::encode_alaw(&pcm(8000), &mut out);
            PortFrame::G711(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_seconds_of_beeps_in_each_format() {
        match beeps(AudioFormat::Pcm16 { rate: 24000 }) {
            PortFrame::Pcm(p) => {
                assert_eq!(p.len(), 48000);
                assert!(p[..2880].iter().any(|s| s.abs() > 3000));
                assert!(p[10000..].iter().all(|s| *s == 0));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(beeps(AudioFormat::Pcmu), PortFrame::G711(b) if b.len() == 16000));
    }
}

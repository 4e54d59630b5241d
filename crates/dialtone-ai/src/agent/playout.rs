//! What of the agent's speech the caller has heard. The port plays one
//! stream; this keeps, per response item, where in that stream its audio
//! starts and how much of it arrived, so that after a barge-in the item
//! being played can be truncated at exactly what was played (clamped to
//! what was received) and its transcript cut to match. Positions are the
//! port's `played()` clock: audio actually sent, silence excluded.

use std::collections::VecDeque;
use std::time::Duration;

/// Items remembered (older ones are long played).
const ITEMS_KEPT: usize = 8;

/// One response item's audio and transcript.
#[derive(Debug, Default)]
pub struct Item {
    pub id: Option<String>,
    /// Where its first sample sits in the played stream.
    start: Duration,
    /// Audio received for it.
    received: Duration,
    /// Its transcript so far.
    pub transcript: String,
    /// The provider said the transcript is complete.
    pub transcript_done: bool,
    /// The share of it the caller heard, once it was cut off.
    pub heard: Option<f64>,
    /// Its transcript line was given out.
    pub reported: bool,
    /// Cut off by a barge-in: any audio still arriving for it is dropped.
    pub muted: bool,
}

/// A barge-in's verdict on the item being played.
#[derive(Debug, PartialEq, Eq)]
pub struct Cut {
    pub item_id: Option<String>,
    /// Milliseconds of the item played (what `conversation.item.truncate`
    /// names), never more than was received.
    pub audio_end_ms: u32,
    /// Whether any of it was left unplayed.
    pub partial: bool,
}

#[derive(Debug, Default)]
pub struct Playout {
    /// Where the next audio appended will start in the played stream.
    next: Duration,
    items: VecDeque<Item>,
}

impl Playout {
    /// The item `id`, creating it when it is new (a `None` id continues the
    /// last id-less item: providers without item ids send one turn at a
    /// time).
    pub fn item(&mut self, id: Option<&str>) -> &mut Item {
        let known = self
            .items
            .iter()
            .rposition(|i| i.id.as_deref() == id && !(id.is_none() && i.reported));
        let idx = match known {
            Some(i) => i,
            None => {
                if self.items.len() >= ITEMS_KEPT {
                    self.items.pop_front();
                }
                self.items.push_back(Item {
                    id: id.map(str::to_string),
                    ..Item::default()
                });
                self.items.len() - 1
            }
        };
        &mut self.items[idx]
    }

    /// `len` of audio for item `id` was queued, the port having played
    /// `played` so far.
    pub fn append(&mut self, id: Option<&str>, len: Duration, played: Duration) {
        // An empty queue has caught up with everything appended.
        let at = self.next.max(played);
        let item = self.item(id);
        if item.received.is_zero() {
            item.start = at;
        }
        item.received += len;
        self.next = at + len;
    }

    /// The caller interrupted: the playout queue was just cleared with
    /// `played` sent. Returns what was heard of the item being played.
    pub fn cut(&mut self, played: Duration) -> Option<Cut> {
        self.next = played;
        let item = self
            .items
            .iter_mut()
            .rev()
            .find(|i| !i.received.is_zero() && i.start <= played)?;
        let heard = played.saturating_sub(item.start).min(item.received);
        let partial = heard < item.received;
        if !partial {
            return None;
        }
        item.muted = true;
        item.heard = Some(heard.as_secs_f64() / item.received.as_secs_f64());
        // Items queued after it were not heard at all.
        let ms = u32::try_from(heard.as_millis()).unwrap_or(u32::MAX);
        let id = item.id.clone();
        let start = item.start;
        for later in self.items.iter_mut().filter(|i| i.start > start) {
            later.muted = true;
            later.heard = Some(0.0);
        }
        Some(Cut {
            item_id: id,
            audio_end_ms: ms,
            partial,
        })
    }

    /// Whether audio for item `id` is to be dropped (it was cut off).
    pub fn muted(&self, id: Option<&str>) -> bool {
        id.is_some() && self.items.iter().any(|i| i.id.as_deref() == id && i.muted)
    }

    /// Transcript lines ready to report: items whose transcript is complete
    /// (or all of them, when the response is over), each cut to what was
    /// heard. Each item is reported once.
    pub fn ready_transcripts(&mut self, all: bool) -> Vec<String> {
        let mut out = Vec::new();
        for item in self.items.iter_mut() {
            if item.reported || item.transcript.trim().is_empty() {
                continue;
            }
            if !(item.transcript_done || all) {
                continue;
            }
            item.reported = true;
            let text = match item.heard {
                Some(share) => heard_part(&item.transcript, share),
                None => item.transcript.trim().to_string(),
            };
            if !text.is_empty() {
                out.push(text);
            }
        }
        out
    }
}

/// The first `share` of `text`, ended at a word boundary, with "…" when
/// it was cut.
pub fn heard_part(text: &str, share: f64) -> String {
    let text = text.trim();
    if share >= 0.999 {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    let n = ((chars.len() as f64) * share.clamp(0.0, 1.0)).round() as usize;
    let mut cut: String = chars[..n.min(chars.len())].iter().collect();
    if n < chars.len() && chars.get(n).is_some_and(|c| !c.is_whitespace()) {
        // Drop the half-said word.
        match cut.rfind(char::is_whitespace) {
            Some(i) => cut.truncate(i),
            None => cut.clear(),
        }
    }
    let cut = cut.trim_end().to_string();
    if cut.is_empty() {
        cut
    } else {
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn truncate_names_what_was_played_of_the_item_playing() {
        let mut p = Playout::default();
        p.append(Some("a"), ms(1000), ms(0));
        p.append(Some("a"), ms(1000), ms(0));
        // 700 ms played when the caller speaks.
        let cut = p.cut(ms(700));
        assert_eq!(
            cut,
            Some(Cut {
                item_id: Some("a".into()),
                audio_end_ms: 700,
                partial: true
            })
        );
        assert!(p.muted(Some("a")));
    }

    #[test]
    fn items_start_where_the_stream_is() {
        let mut p = Playout::default();
        p.append(Some("a"), ms(500), ms(0));
        // "a" fully played and 2 s of silence later "b" starts.
        p.append(Some("b"), ms(1000), ms(500));
        let cut = p.cut(ms(800)).map(|c| (c.item_id, c.audio_end_ms));
        assert_eq!(cut, Some((Some("b".into()), 300)));
    }

    #[test]
    fn nothing_to_truncate_when_everything_was_heard() {
        let mut p = Playout::default();
        p.append(Some("a"), ms(400), ms(0));
        assert_eq!(p.cut(ms(400)), None);
        assert!(!p.muted(Some("a")));
        // After a cut the next item starts at the cut.
        p.append(Some("b"), ms(400), ms(400));
        assert_eq!(p.cut(ms(500)).map(|c| c.audio_end_ms), Some(100));
    }

    #[test]
    fn played_is_clamped_to_received() {
        let mut p = Playout::default();
        p.append(Some("a"), ms(300), ms(0));
        p.append(Some("b"), ms(300), ms(0));
        // Cut at 450: "b" began at 300 and 150 of it was heard.
        assert_eq!(p.cut(ms(450)).map(|c| c.audio_end_ms), Some(150));
    }

    #[test]
    fn transcripts_are_cut_to_what_was_heard() {
        assert_eq!(heard_part("Hello there, how are you", 0.5), "Hello there,…");
        assert_eq!(heard_part("Hello there", 1.0), "Hello there");
        assert_eq!(heard_part("Hello", 0.1), "");
        let mut p = Playout::default();
        p.append(Some("a"), ms(1000), ms(0));
        p.item(Some("a")).transcript = "one two three four".into();
        p.cut(ms(500));
        assert!(
            p.ready_transcripts(false).is_empty(),
            "not before it is complete"
        );
        assert_eq!(p.ready_transcripts(true), vec!["one two…".to_string()]);
        assert!(p.ready_transcripts(true).is_empty(), "reported once");
    }

    #[test]
    fn idless_items_are_one_per_turn() {
        let mut p = Playout::default();
        p.append(None, ms(100), ms(0));
        p.item(None).transcript = "hi".into();
        assert_eq!(p.ready_transcripts(true), vec!["hi".to_string()]);
        p.append(None, ms(100), ms(100));
        p.item(None).transcript = "again".into();
        assert_eq!(p.ready_transcripts(true), vec!["again".to_string()]);
    }
}

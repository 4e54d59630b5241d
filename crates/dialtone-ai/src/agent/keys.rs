//! Keypad digits into words for the model. Callers type account numbers
//! and menu choices; one message per digit would make the model answer
//! each keypress, so digits are gathered until the caller pauses (or
//! presses `#`) and given as one sentence.

use std::time::{Duration, Instant};

/// A pause this long ends an entry.
pub const PAUSE: Duration = Duration::from_millis(1200);

#[derive(Debug, Default)]
pub struct Keys {
    digits: String,
    last: Option<Instant>,
}

impl Keys {
    /// A digit pressed at `now`; returns the entry when `#` ends it.
    pub fn press(&mut self, digit: char, now: Instant) -> Option<String> {
        self.digits.push(digit);
        self.last = Some(now);
        if digit == '#' {
            return self.take();
        }
        None
    }

    /// The entry, once the caller has paused long enough.
    pub fn due(&mut self, now: Instant) -> Option<String> {
        match self.last {
            Some(t) if now.duration_since(t) >= PAUSE => self.take(),
            _ => None,
        }
    }

    fn take(&mut self) -> Option<String> {
        self.last = None;
        if self.digits.is_empty() {
            return None;
        }
        let d = std::mem::take(&mut self.digits);
        Some(if d.chars().count() == 1 {
            format!("The caller pressed the key {d} on the phone keypad.")
        } else {
            format!("The caller entered {d} on the phone keypad.")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_gathered_until_a_pause_or_hash() {
        let t0 = Instant::now();
        let mut k = Keys::default();
        assert_eq!(k.press('1', t0), None);
        assert_eq!(k.press('2', t0 + Duration::from_millis(300)), None);
        assert_eq!(k.due(t0 + Duration::from_millis(900)), None);
        assert_eq!(
            k.due(t0 + Duration::from_millis(1600)).as_deref(),
            Some("The caller entered 12 on the phone keypad.")
        );
        assert_eq!(k.due(t0 + Duration::from_secs(5)), None);
        assert_eq!(k.press('4', t0), None);
        assert_eq!(
            k.press('#', t0).as_deref(),
            Some("The caller entered 4# on the phone keypad.")
        );
        k.press('7', t0);
        assert_eq!(
            k.due(t0 + PAUSE).as_deref(),
            Some("The caller pressed the key 7 on the phone keypad.")
        );
    }
}

//! A token bucket: `burst` requests at once, then `rate` a second. Used by
//! the per-party call limits ([`admission`](crate::admission)) and the
//! per-source request limits ([`abuse`](crate::abuse)), and the API-key
//! failure limit of the MCP server.

use std::time::Instant;

#[derive(Clone, Copy, Debug)]
pub struct TokenBucket {
    tokens: f64,
    refilled: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn full(burst: f64, now: Instant) -> TokenBucket {
        TokenBucket {
            tokens: burst,
            refilled: now,
        }
    }

    fn refill(&mut self, rate: f64, burst: f64, now: Instant) {
        self.tokens = self.level(rate, burst, now);
        self.refilled = now;
    }

    /// The tokens there at `now` (the bucket is left as it is).
    pub fn level(&self, rate: f64, burst: f64, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        (self.tokens + elapsed * rate).min(burst)
    }

    /// Takes a token, or says how many seconds until one is there (at
    /// least one; `None` when the rate is zero and none ever will be).
    pub fn take(&mut self, rate: f64, burst: f64, now: Instant) -> Result<(), Option<u32>> {
        self.refill(rate, burst, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        if rate <= 0.0 {
            return Err(None);
        }
        let wait = ((1.0 - self.tokens) / rate).ceil().max(1.0);
        Err(Some(wait.min(f64::from(u32::MAX)) as u32))
    }

    /// Gives a token back (what was taken for something that did not happen).
    pub fn give_back(&mut self, burst: f64) {
        self.tokens = (self.tokens + 1.0).min(burst);
    }

    /// Whether the bucket is full again: nothing to remember about its owner.
    pub fn is_full(&self, rate: f64, burst: f64, now: Instant) -> bool {
        self.level(rate, burst, now) >= burst
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::full(3.0, t0);
        for _ in 0..3 {
            assert!(b.take(2.0, 3.0, t0).is_ok());
        }
        assert_eq!(b.take(2.0, 3.0, t0), Err(Some(1)));
        let t1 = t0 + Duration::from_millis(500);
        assert!(
            b.take(2.0, 3.0, t1).is_ok(),
            "half a second at 2/s is one token"
        );
        assert!(b.take(2.0, 3.0, t1).is_err());
        assert!(b.is_full(2.0, 3.0, t1 + Duration::from_secs(2)));
    }

    #[test]
    fn a_zero_rate_never_refills() {
        let t0 = Instant::now();
        let mut b = TokenBucket::full(1.0, t0);
        assert!(b.take(0.0, 1.0, t0).is_ok());
        assert_eq!(b.take(0.0, 1.0, t0 + Duration::from_secs(60)), Err(None));
    }
}

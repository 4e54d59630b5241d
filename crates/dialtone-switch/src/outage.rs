//! A background job that keeps failing (the database is away) is logged
//! once when it starts failing and once when it works again, with how long
//! it failed — not on every tick.

use std::fmt::Display;
use std::time::Instant;

#[derive(Debug)]
pub struct Outage {
    what: &'static str,
    since: Option<Instant>,
    failures: u64,
}

impl Outage {
    /// `what` names the job in the log ("scheduled calls: claiming").
    pub fn new(what: &'static str) -> Outage {
        Outage {
            what,
            since: None,
            failures: 0,
        }
    }

    /// One failure: a warning for the first, debug for the repeats.
    pub fn failed(&mut self, error: &dyn Display) {
        self.failures += 1;
        if self.since.is_none() {
            self.since = Some(Instant::now());
            tracing::warn!(job = self.what, %error, "failing (logged again when it works)");
        } else {
            tracing::debug!(job = self.what, %error, "still failing");
        }
    }

    /// One success: after failures, says so once.
    pub fn ok(&mut self) {
        if let Some(since) = self.since.take() {
            tracing::info!(
                job = self.what,
                failures = self.failures,
                secs = since.elapsed().as_secs(),
                "working again"
            );
            self.failures = 0;
        }
    }

    /// `result`'s success or failure.
    pub fn note<T, E: Display>(&mut self, result: &Result<T, E>) {
        match result {
            Ok(_) => self.ok(),
            Err(e) => self.failed(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_an_outage_until_it_ends() {
        let mut o = Outage::new("test");
        o.ok();
        assert!(o.since.is_none());
        o.note::<(), _>(&Err("down"));
        o.note::<(), _>(&Err("down"));
        assert!(o.since.is_some());
        assert_eq!(o.failures, 2);
        o.note::<(), &str>(&Ok(()));
        assert!(o.since.is_none());
        assert_eq!(o.failures, 0);
    }
}

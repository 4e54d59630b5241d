//! The ban list (fail2ban's idea): a source that fails digest
//! authentication `max_failures` times within `window` is banned for
//! `ban_for`; while banned, every new request it sends is refused at the
//! gate. Bans expire on their own, or an operator lifts one
//! ([`Bans::lift`]: the `lift_ban` tool, `DELETE /api/v1/bans/IP`). They
//! live in this process: in a cluster each node keeps its own.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use dashmap::DashMap;

#[derive(Clone, Debug)]
pub struct BanConfig {
    pub max_failures: u32,
    pub window: Duration,
    pub ban_for: Duration,
}

#[derive(Debug)]
pub struct Bans {
    cfg: BanConfig,
    /// Failures counted per source: how many, since when.
    failures: DashMap<IpAddr, (u32, Instant), foldhash::fast::RandomState>,
    /// Banned sources, until when.
    banned: DashMap<IpAddr, Instant, foldhash::fast::RandomState>,
    total: AtomicU64,
}

impl Bans {
    pub fn new(cfg: BanConfig) -> Bans {
        Bans {
            cfg,
            failures: DashMap::default(),
            banned: DashMap::default(),
            total: AtomicU64::new(0),
        }
    }

    /// Counts a failure of `ip`; true when it got the source banned.
    pub fn failed(&self, ip: IpAddr) -> bool {
        self.failed_at(ip, Instant::now())
    }

    fn failed_at(&self, ip: IpAddr, now: Instant) -> bool {
        let count = {
            let mut e = self.failures.entry(ip).or_insert((0, now));
            if now.saturating_duration_since(e.1) >= self.cfg.window {
                *e = (0, now);
            }
            e.0 += 1;
            e.0
        };
        if count < self.cfg.max_failures || self.banned_at(ip, now) {
            return false;
        }
        self.failures.remove(&ip);
        self.banned.insert(ip, now + self.cfg.ban_for);
        self.total.fetch_add(1, Relaxed);
        tracing::warn!(source = %ip, failures = count, ban_secs = self.cfg.ban_for.as_secs(), "source banned: repeated authentication failures");
        true
    }

    pub fn is_banned(&self, ip: IpAddr) -> bool {
        self.banned_at(ip, Instant::now())
    }

    fn banned_at(&self, ip: IpAddr, now: Instant) -> bool {
        self.banned.get(&ip).is_some_and(|until| now < *until)
    }

    /// Forgets expired bans and failure counts whose window has passed.
    pub fn purge(&self) {
        let now = Instant::now();
        self.banned.retain(|_, until| now < *until);
        let window = self.cfg.window;
        self.failures
            .retain(|_, e| now.saturating_duration_since(e.1) < window);
    }

    /// Sources banned now (expired bans not yet purged excluded).
    pub fn active(&self) -> usize {
        let now = Instant::now();
        self.banned.iter().filter(|e| now < *e.value()).count()
    }

    /// The sources banned now, with how long each ban has left, longest
    /// first.
    pub fn list(&self) -> Vec<(IpAddr, Duration)> {
        let now = Instant::now();
        let mut v: Vec<_> = self
            .banned
            .iter()
            .filter_map(|e| {
                let left = e.value().saturating_duration_since(now);
                (!left.is_zero()).then_some((*e.key(), left))
            })
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }

    /// Lifts the ban of `ip` and forgets its failures; false when it was
    /// not banned.
    pub fn lift(&self, ip: IpAddr) -> bool {
        self.failures.remove(&ip);
        let was = self.is_banned(ip);
        self.banned.remove(&ip);
        if was {
            tracing::info!(source = %ip, "ban lifted");
        }
        was
    }

    /// Bans given since the start.
    pub fn total(&self) -> u64 {
        self.total.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bans() -> Bans {
        Bans::new(BanConfig {
            max_failures: 3,
            window: Duration::from_secs(60),
            ban_for: Duration::from_secs(600),
        })
    }

    #[test]
    fn the_third_failure_in_the_window_bans_until_it_expires() {
        let b = bans();
        let ip: IpAddr = "192.0.2.7".parse().unwrap_or_else(|_| unreachable!());
        let t0 = Instant::now();
        assert!(!b.failed_at(ip, t0));
        assert!(!b.failed_at(ip, t0));
        assert!(b.failed_at(ip, t0 + Duration::from_secs(1)));
        assert!(b.banned_at(ip, t0 + Duration::from_secs(599)));
        assert!(!b.banned_at(ip, t0 + Duration::from_secs(602)));
        assert_eq!(b.total(), 1);
    }

    #[test]
    fn a_lifted_ban_is_gone_and_its_failures_count_afresh() {
        let b = bans();
        let ip: IpAddr = "192.0.2.8".parse().unwrap_or_else(|_| unreachable!());
        let other: IpAddr = "192.0.2.9".parse().unwrap_or_else(|_| unreachable!());
        let t0 = Instant::now();
        for _ in 0..3 {
            b.failed_at(ip, t0);
            b.failed_at(other, t0 + Duration::from_secs(1));
        }
        let listed: Vec<IpAddr> = b.list().into_iter().map(|(ip, _)| ip).collect();
        assert_eq!(
            listed,
            vec![other, ip],
            "the ban given last has the most left"
        );
        assert!(b
            .list()
            .iter()
            .all(|(_, left)| *left <= Duration::from_secs(601)));
        assert!(b.lift(ip));
        assert!(!b.lift(ip), "lifted twice");
        assert!(!b.is_banned(ip) && b.is_banned(other));
        assert!(
            !b.failed(ip) && !b.failed(ip),
            "its failures count from zero"
        );
        assert!(b.failed(ip), "and the third bans it again");
    }

    #[test]
    fn failures_spread_wider_than_the_window_do_not_ban() {
        let b = bans();
        let ip: IpAddr = "2001:db8::1".parse().unwrap_or_else(|_| unreachable!());
        let t0 = Instant::now();
        for i in 0..6 {
            assert!(!b.failed_at(ip, t0 + Duration::from_secs(40 * i)));
        }
        assert!(!b.banned_at(ip, t0 + Duration::from_secs(241)));
    }
}

//! Abuse limits at the front door, in the spirit of Kamailio's pike and of
//! fail2ban. [`Shield`] is the transaction layer's
//! [`RequestGate`]: it decides on each new request before a transaction
//! exists for it —
//! - a banned source (see [`bans`]) is refused (403 or silence, as
//!   `auth.lockout` says);
//! - a request from a scanner's User-Agent (SIPVicious and friends) is
//!   dropped, when configured;
//! - each source has a token bucket per kind of request (REGISTER, INVITE,
//!   OPTIONS, everything else); over it, requests are dropped or answered
//!   503 with Retry-After.
//!
//! Trusted networks and every trunk's inbound addresses are never
//! rate-limited; bans apply to everyone, since they are earned.

pub mod bans;
mod trusted;

use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use dashmap::DashMap;
use dialtone_sip::transaction::{Admit, RequestGate};
use dialtone_sip::transport::Peer;
use rsip::{Header, Method, Request};

use crate::auth_guard::Lockout;
use crate::token_bucket::TokenBucket;
pub use bans::{BanConfig, Bans};
pub use trusted::Trusted;

/// The kinds of request with a rate of their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    Register,
    Invite,
    Options,
    /// Every other method, in or out of dialog (ACK never counts).
    Other,
}

impl Class {
    pub const ALL: [Class; 4] = [Class::Register, Class::Invite, Class::Options, Class::Other];

    pub fn of(method: &Method) -> Class {
        match method {
            Method::Register => Class::Register,
            Method::Invite => Class::Invite,
            Method::Options => Class::Options,
            _ => Class::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Class::Register => "register",
            Class::Invite => "invite",
            Class::Options => "options",
            Class::Other => "other",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A request rate: `per_sec` on average, `burst` at once. A rate of zero
/// means no limit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    pub per_sec: f64,
    pub burst: f64,
}

impl Rate {
    pub const UNLIMITED: Rate = Rate {
        per_sec: 0.0,
        burst: 0.0,
    };

    fn limits(self) -> bool {
        self.per_sec > 0.0
    }

    fn burst(self) -> f64 {
        self.burst.max(1.0)
    }
}

/// What a source over its rate gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverRate {
    /// Nothing: a flood costs us no response.
    Silence,
    /// 503 Service Unavailable with Retry-After.
    Unavailable,
}

#[derive(Clone, Debug)]
pub struct AbuseConfig {
    pub trusted: Trusted,
    /// By [`Class`], in [`Class::ALL`] order.
    pub rates: [Rate; 4],
    pub over_rate: OverRate,
    /// User-Agent substrings (lower case) whose requests are dropped; empty
    /// to drop none.
    pub scanner_agents: Vec<String>,
}

impl Default for AbuseConfig {
    /// No limits at all (the library default; the binary's config sets them).
    fn default() -> Self {
        AbuseConfig {
            trusted: Trusted::default(),
            rates: [Rate::UNLIMITED; 4],
            over_rate: OverRate::Silence,
            scanner_agents: Vec::new(),
        }
    }
}

/// Why the gate turned a request away.
#[derive(Clone, Copy, Debug)]
enum Refused {
    Rate,
    Banned,
    Scanner,
}

impl Refused {
    const ALL: [Refused; 3] = [Refused::Rate, Refused::Banned, Refused::Scanner];

    fn as_str(self) -> &'static str {
        match self {
            Refused::Rate => "rate",
            Refused::Banned => "banned",
            Refused::Scanner => "scanner",
        }
    }
}

/// One source's bucket for one class.
struct SourceRate {
    bucket: TokenBucket,
    /// Over its rate since the last purge found it quiet (logged once).
    limited: bool,
}

pub struct Shield {
    cfg: AbuseConfig,
    bans: Arc<Bans>,
    lockout: Lockout,
    /// The trunks' inbound addresses and blocks, refreshed by the switch.
    trunks: RwLock<Trusted>,
    rates: DashMap<(IpAddr, Class), SourceRate, foldhash::fast::RandomState>,
    /// Refusals by reason and class.
    refused: [[AtomicU64; 4]; 3],
}

impl Shield {
    pub fn new(cfg: AbuseConfig, bans: Arc<Bans>, lockout: Lockout) -> Shield {
        Shield {
            cfg,
            bans,
            lockout,
            trunks: RwLock::new(Trusted::default()),
            rates: DashMap::default(),
            refused: Default::default(),
        }
    }

    /// The trunks' inbound addresses (they are trusted like `trusted`).
    pub fn set_trunks(&self, specs: Vec<String>) {
        let parsed = Trusted::lenient(&specs);
        if let Ok(mut t) = self.trunks.write() {
            *t = parsed;
        }
    }

    /// Whether rates never apply to `ip`.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.cfg.trusted.contains(ip) || self.trunks.read().is_ok_and(|t| t.contains(ip))
    }

    fn is_scanner(&self, req: &Request) -> bool {
        if self.cfg.scanner_agents.is_empty() {
            return false;
        }
        req.headers.iter().any(|h| match h {
            Header::UserAgent(ua) => {
                let ua = ua.to_string().to_ascii_lowercase();
                self.cfg.scanner_agents.iter().any(|s| ua.contains(s))
            }
            _ => false,
        })
    }

    fn refuse(&self, why: Refused, class: Class) {
        self.refused[why as usize][class.index()].fetch_add(1, Relaxed);
    }

    /// Whether a malformed request (or an unknown method) from `ip` may be
    /// answered: the transport asks, since such requests never reach the
    /// transaction layer. They count as [`Class::Other`].
    pub fn may_answer_malformed(&self, ip: IpAddr) -> bool {
        if self.bans.is_banned(ip) {
            self.refuse(Refused::Banned, Class::Other);
            return false;
        }
        self.within_rate(ip, Class::Other, Instant::now()).is_ok()
    }

    /// Takes a token from `ip`'s bucket for `class` (trusted sources and
    /// unlimited classes always pass); on refusal, the seconds until a
    /// retry can work.
    fn within_rate(&self, ip: IpAddr, class: Class, now: Instant) -> Result<(), Option<u32>> {
        let rate = self.cfg.rates[class.index()];
        if !rate.limits() || self.is_trusted(ip) {
            return Ok(());
        }
        let mut entry = self.rates.entry((ip, class)).or_insert_with(|| SourceRate {
            bucket: TokenBucket::full(rate.burst(), now),
            limited: false,
        });
        let wait = match entry.bucket.take(rate.per_sec, rate.burst(), now) {
            Ok(()) => return Ok(()),
            Err(wait) => wait,
        };
        if !entry.limited {
            entry.limited = true;
            tracing::warn!(source = %ip, method = class.as_str(), rate = rate.per_sec, burst = rate.burst(), "source over its request rate: limited");
        }
        drop(entry);
        self.refuse(Refused::Rate, class);
        Err(wait)
    }

    fn admit_at(&self, req: &Request, ip: IpAddr, now: Instant) -> Admit {
        let class = Class::of(&req.method);
        if self.bans.is_banned(ip) {
            self.refuse(Refused::Banned, class);
            return match self.lockout {
                Lockout::Forbidden => Admit::Reject {
                    status: 403,
                    reason: "Too Many Failed Attempts",
                    retry_after: None,
                },
                Lockout::Silence => Admit::Drop,
            };
        }
        if self.is_scanner(req) {
            self.refuse(Refused::Scanner, class);
            tracing::debug!(source = %ip, method = %req.method, "scanner dropped");
            return Admit::Drop;
        }
        let Err(wait) = self.within_rate(ip, class, now) else {
            return Admit::Pass;
        };
        match self.cfg.over_rate {
            OverRate::Silence => Admit::Drop,
            OverRate::Unavailable => Admit::Reject {
                status: 503,
                reason: "Rate Limit Exceeded",
                retry_after: Some(wait.unwrap_or(1)),
            },
        }
    }

    /// Forgets sources whose buckets are full again, and expired bans.
    pub fn purge(&self) {
        let now = Instant::now();
        let rates = self.cfg.rates;
        self.rates.retain(|(_, class), r| {
            let rate = rates[class.index()];
            !r.bucket.is_full(rate.per_sec, rate.burst(), now)
        });
        self.bans.purge();
    }

    /// Prometheus text for `/metrics`.
    pub fn render(&self, out: &mut String) {
        let name = "dialtone_abuse_refused_total";
        let _ = writeln!(
            out,
            "# HELP {name} New requests turned away at the gate, by reason and method.\n\
             # TYPE {name} counter"
        );
        for why in Refused::ALL {
            for class in Class::ALL {
                let n = self.refused[why as usize][class.index()].load(Relaxed);
                let _ = writeln!(
                    out,
                    "{name}{{reason=\"{}\",method=\"{}\"}} {n}",
                    why.as_str(),
                    class.as_str()
                );
            }
        }
        let limited = self.rates.iter().filter(|r| r.limited).count();
        let _ = writeln!(
            out,
            "# HELP dialtone_abuse_limited_sources Sources over a request rate now.\n\
             # TYPE dialtone_abuse_limited_sources gauge\n\
             dialtone_abuse_limited_sources {limited}\n\
             # HELP dialtone_abuse_banned_sources Sources banned now.\n\
             # TYPE dialtone_abuse_banned_sources gauge\n\
             dialtone_abuse_banned_sources {}\n\
             # HELP dialtone_abuse_bans_total Bans given since the start.\n\
             # TYPE dialtone_abuse_bans_total counter\n\
             dialtone_abuse_bans_total {}",
            self.bans.active(),
            self.bans.total()
        );
    }
}

impl RequestGate for Shield {
    fn admit(&self, req: &Request, from: &Peer) -> Admit {
        self.admit_at(req, from.addr.ip(), Instant::now())
    }
}

#[cfg(test)]
mod tests;

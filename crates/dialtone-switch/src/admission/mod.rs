//! Admission control: the per-party call limits (`max_calls`, `max_cps`) of
//! users, trunks and accounts, enforced here, in one place, for every new
//! call and every transfer — an INVITE, a REFER, a REST or MCP transfer, an
//! AI agent's `transfer_call`, a call placed through the API, MCP or the
//! scheduler.
//!
//! Who is counted: the party that places or asks for a call — a trunk or a
//! user sending an INVITE, the party sending a REFER, a persona or an API
//! key asking for a transfer or a new call — and the account it belongs to
//! (its users, personas and API keys together); the user whose phone rings
//! first on a click-to-dial call; and the trunk a call goes out through
//! (a trunk's limits count its calls both ways, like the channels of a
//! circuit). A call counts once against each party, until it ends: a
//! transfer that party asks for in the same call is a new call for the rate
//! but not a second concurrent one; a transfer that brings in a new party
//! (a user's REFER of a trunk's call) counts against it from the answer
//! until the call ends, and not at all if it fails.
//!
//! What the caller hears: over a user's or an account's `max_calls`, `403
//! Call Limit Reached` (a policy: retrying will not help until one of its
//! calls ends); over a trunk's, `503 Trunk Call Limit Reached` (all
//! circuits busy, so a carrier may try another route); over any `max_cps`,
//! `503 Call Rate Limit Exceeded` with `Retry-After` (when the next call
//! would be admitted). A REFER refused here is answered with that status
//! itself; a transfer or call asked for by the REST API, MCP or an AI agent
//! gets the sentence (`Refusal::detail`) naming the party and the limit.
//! Every refusal is logged and counted in `/metrics`.
//!
//! The counters live in memory, per node: [`Permits`] decrement them when
//! dropped, which a call does when it ends (whatever way it ends).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use dashmap::DashMap;
use dialtone_sip::transaction::ServerTransaction;
use dialtone_store::{format_rate, Account, CallLimits, Store, Trunk, User};
use rsip::Header;

use crate::router::{Caller, Target};
use crate::token_bucket::TokenBucket;
use crate::with_reason;

/// What kind of party a limit belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PartyKind {
    User,
    Trunk,
    Account,
}

impl PartyKind {
    const ALL: [PartyKind; 3] = [PartyKind::User, PartyKind::Trunk, PartyKind::Account];

    pub fn as_str(self) -> &'static str {
        match self {
            PartyKind::User => "user",
            PartyKind::Trunk => "trunk",
            PartyKind::Account => "account",
        }
    }

    fn index(self) -> usize {
        match self {
            PartyKind::User => 0,
            PartyKind::Trunk => 1,
            PartyKind::Account => 2,
        }
    }
}

/// A party calls are counted against: a user by name, a trunk by name, an
/// account by id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PartyKey {
    pub kind: PartyKind,
    pub id: String,
}

/// A party with its limits as stored now.
#[derive(Clone, Debug, PartialEq)]
pub struct Limited {
    pub key: PartyKey,
    /// How logs, metrics and refusals name it (an account by its name).
    pub name: String,
    pub limits: CallLimits,
}

impl Limited {
    pub fn user(u: &User) -> Limited {
        Limited {
            key: PartyKey {
                kind: PartyKind::User,
                id: u.username.clone(),
            },
            name: u.username.clone(),
            limits: u.limits,
        }
    }

    pub fn trunk(t: &Trunk) -> Limited {
        Limited {
            key: PartyKey {
                kind: PartyKind::Trunk,
                id: t.name.clone(),
            },
            name: t.name.clone(),
            limits: t.limits,
        }
    }

    pub fn account(a: &Account) -> Limited {
        Limited {
            key: PartyKey {
                kind: PartyKind::Account,
                id: a.id.clone(),
            },
            name: a.name.clone(),
            limits: a.limits,
        }
    }

    /// "user alice", "trunk carrier", "account acme".
    pub fn label(&self) -> String {
        format!("{} {}", self.key.kind.as_str(), self.name)
    }
}

/// Which limit refused a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// `max_calls`: calls at once.
    Calls,
    /// `max_cps`: new calls per second.
    Rate,
}

impl Limit {
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Calls => "max_calls",
            Limit::Rate => "max_cps",
        }
    }

    fn index(self) -> usize {
        match self {
            Limit::Calls => 0,
            Limit::Rate => 1,
        }
    }
}

/// Why a call or a transfer is not placed: the SIP answer, and a sentence
/// for the front end that asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    /// The SIP reason phrase.
    pub reason: &'static str,
    /// Who and which limit, for logs, front ends and models.
    pub detail: String,
    /// Seconds, for a Retry-After header.
    pub retry_after: Option<u32>,
}

impl Refusal {
    /// A refusal of the transfer policy (no limit involved).
    pub fn policy(status: u16, reason: &'static str) -> Refusal {
        Refusal {
            status,
            reason,
            detail: reason.to_string(),
            retry_after: None,
        }
    }

    /// The final response to the request `tx` that asked.
    pub fn response(&self, tx: &ServerTransaction) -> rsip::Response {
        let mut r = with_reason(tx.response(self.status), self.reason);
        if let Some(secs) = self.retry_after {
            r.headers
                .push(Header::RetryAfter(rsip::headers::RetryAfter::from(
                    secs.to_string(),
                )));
        }
        r
    }

    fn limit(p: &Limited, limit: Limit, retry_after: Option<u32>) -> Refusal {
        let label = p.label();
        match limit {
            Limit::Calls => {
                let max = p.limits.max_calls.unwrap_or_default();
                let calls = if max == 1 { "call" } else { "calls" };
                let detail = format!("call limit: {label} may have {max} {calls} at once");
                if p.key.kind == PartyKind::Trunk {
                    Refusal {
                        status: 503,
                        reason: "Trunk Call Limit Reached",
                        detail,
                        retry_after: None,
                    }
                } else {
                    Refusal {
                        status: 403,
                        reason: "Call Limit Reached",
                        detail,
                        retry_after: None,
                    }
                }
            }
            Limit::Rate => {
                let rate = format_rate(p.limits.max_cps_milli.unwrap_or_default());
                Refusal {
                    status: 503,
                    reason: "Call Rate Limit Exceeded",
                    detail: format!("call rate limit: {label} may start {rate} new calls a second"),
                    retry_after,
                }
            }
        }
    }
}

/// One party's counters.
#[derive(Debug)]
struct Usage {
    name: String,
    /// Calls counted against its `max_calls` now.
    active: u32,
    /// Its `max_cps`: a second's worth of calls (at least one) may start
    /// at once, then at the rate.
    bucket: TokenBucket,
    /// The burst of the rate the bucket was last used with.
    burst: f64,
}

impl Usage {
    fn new(p: &Limited, now: Instant) -> Usage {
        let burst = p.limits.max_cps().map_or(1.0, bucket_size);
        Usage {
            name: p.name.clone(),
            active: 0,
            bucket: TokenBucket::full(burst, now),
            burst,
        }
    }

    /// Takes one call for `limits` (and counts it when `count`); which
    /// limit refuses it otherwise, with the seconds until a retry can work.
    fn take(
        &mut self,
        limits: &CallLimits,
        count: bool,
        now: Instant,
    ) -> Result<Taken, (Limit, Option<u32>)> {
        let counted = count && limits.max_calls.is_some();
        if counted && limits.max_calls.is_some_and(|max| self.active >= max) {
            return Err((Limit::Calls, None));
        }
        let token = match limits.max_cps() {
            None => false,
            // A rate of zero: no calls at all.
            Some(rate) if rate <= 0.0 => return Err((Limit::Rate, None)),
            Some(rate) => {
                self.burst = bucket_size(rate);
                self.bucket
                    .take(rate, self.burst, now)
                    .map_err(|wait| (Limit::Rate, wait))?;
                true
            }
        };
        if counted {
            self.active += 1;
        }
        Ok(Taken { counted, token })
    }
}

/// How many calls may start at once at `rate` a second.
fn bucket_size(rate: f64) -> f64 {
    rate.max(1.0)
}

struct Taken {
    counted: bool,
    token: bool,
}

/// The counters of every limited party, shared by all calls.
#[derive(Debug, Default)]
pub struct Admission {
    parties: DashMap<PartyKey, Usage>,
    /// Refusals by party kind and limit.
    refused: [[AtomicU64; 2]; 3],
}

impl Admission {
    /// Admits a new call (or transfer) counted against `parties`, all or
    /// none: the permits it returns hold the counts until dropped. A party
    /// `held` already holds (the same call) is not counted twice; its rate
    /// still applies.
    pub fn admit(
        self: &Arc<Self>,
        parties: &[Limited],
        held: &Permits,
    ) -> Result<Permits, Refusal> {
        self.admit_at(parties, held, Instant::now())
    }

    fn admit_at(
        self: &Arc<Self>,
        parties: &[Limited],
        held: &Permits,
        now: Instant,
    ) -> Result<Permits, Refusal> {
        let mut permits = Permits {
            admission: Some(self.clone()),
            held: Vec::new(),
        };
        let mut tokens: Vec<PartyKey> = Vec::new();
        for p in parties.iter().filter(|p| !p.limits.is_unlimited()) {
            if permits.holds(&p.key) || tokens.contains(&p.key) {
                continue; // named twice (a hairpin through one trunk)
            }
            let taken = {
                let mut usage = self
                    .parties
                    .entry(p.key.clone())
                    .or_insert_with(|| Usage::new(p, now));
                usage.name.clone_from(&p.name);
                usage.take(&p.limits, !held.holds(&p.key), now)
            };
            match taken {
                Ok(t) => {
                    if t.token {
                        tokens.push(p.key.clone());
                    }
                    if t.counted {
                        permits.held.push(Held {
                            key: p.key.clone(),
                            counted: true,
                        });
                    } else if !held.holds(&p.key) {
                        permits.held.push(Held {
                            key: p.key.clone(),
                            counted: false,
                        });
                    }
                }
                Err((limit, retry_after)) => {
                    // Give back what this call took from the others.
                    for key in &tokens {
                        if let Some(mut u) = self.parties.get_mut(key) {
                            let burst = u.burst;
                            u.bucket.give_back(burst);
                        }
                    }
                    drop(permits);
                    self.refused[p.key.kind.index()][limit.index()].fetch_add(1, Relaxed);
                    let refusal = Refusal::limit(p, limit, retry_after);
                    tracing::info!(
                        party = %p.label(),
                        limit = limit.as_str(),
                        max_calls = ?p.limits.max_calls,
                        max_cps = ?p.limits.max_cps(),
                        status = refusal.status,
                        "call refused by a limit"
                    );
                    return Err(refusal);
                }
            }
        }
        Ok(permits)
    }

    fn release(&self, key: &PartyKey) {
        if let Some(mut u) = self.parties.get_mut(key) {
            u.active = u.active.saturating_sub(1);
        }
    }

    /// Calls counted against a `max_calls` limit now, all parties together.
    pub fn active(&self) -> u64 {
        self.parties.iter().map(|u| u64::from(u.active)).sum()
    }

    /// Calls counted against one party now.
    pub fn active_of(&self, kind: PartyKind, id: &str) -> u32 {
        self.parties
            .get(&PartyKey {
                kind,
                id: id.to_string(),
            })
            .map_or(0, |u| u.active)
    }

    /// Refusals so far by one kind of limit of one kind of party.
    pub fn refused(&self, kind: PartyKind, limit: Limit) -> u64 {
        self.refused[kind.index()][limit.index()].load(Relaxed)
    }

    /// Prometheus text exposition.
    pub fn render(&self, out: &mut String) {
        let name = "dialtone_call_limit_refusals_total";
        let _ = writeln!(
            out,
            "# HELP {name} Calls and transfers refused by a call limit, by party and limit.\n\
             # TYPE {name} counter"
        );
        for kind in PartyKind::ALL {
            for limit in [Limit::Calls, Limit::Rate] {
                let _ = writeln!(
                    out,
                    "{name}{{party=\"{}\",limit=\"{}\"}} {}",
                    kind.as_str(),
                    limit.as_str(),
                    self.refused(kind, limit)
                );
            }
        }
        let name = "dialtone_call_limit_calls";
        let _ = writeln!(
            out,
            "# HELP {name} Calls counted against a max_calls limit now, all parties.\n\
             # TYPE {name} gauge\n{name} {}",
            self.active()
        );
        let mut each: Vec<(String, u32)> = self
            .parties
            .iter()
            .map(|e| {
                let party = format!("{}:{}", e.key().kind.as_str(), e.value().name);
                (party, e.value().active)
            })
            .collect();
        each.sort();
        let name = "dialtone_call_limit_party_calls";
        let _ = writeln!(
            out,
            "# HELP {name} Calls counted against each limited party now.\n# TYPE {name} gauge"
        );
        for (party, n) in each {
            let _ = writeln!(out, "{name}{{party=\"{}\"}} {n}", escape_label(&party));
        }
    }
}

/// A Prometheus label value: backslash, quote and newline escaped.
fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[derive(Debug)]
struct Held {
    key: PartyKey,
    /// It holds one of the party's `max_calls`.
    counted: bool,
}

/// What a call holds of the limits: its counts go back when it is dropped.
#[derive(Debug, Default)]
pub struct Permits {
    admission: Option<Arc<Admission>>,
    held: Vec<Held>,
}

impl Permits {
    /// Whether the call is already counted against this party.
    pub fn holds(&self, key: &PartyKey) -> bool {
        self.held.iter().any(|h| &h.key == key)
    }

    /// Takes `other`'s counts into these (a transfer's, once it answered).
    pub fn absorb(&mut self, mut other: Permits) {
        if self.admission.is_none() {
            self.admission = other.admission.clone();
        }
        self.held.append(&mut other.held);
    }
}

impl Drop for Permits {
    fn drop(&mut self) {
        if let Some(a) = &self.admission {
            for h in self.held.drain(..).filter(|h| h.counted) {
                a.release(&h.key);
            }
        }
    }
}

/// Who asks for a call, and where it goes: what [`admit`] counts it against.
#[derive(Clone, Copy, Debug)]
pub struct Ask<'a> {
    /// The party placing or asking for it (and through it, its account).
    pub who: &'a Caller,
    /// The account the call belongs to, when not `who`'s own.
    pub account: Option<&'a str>,
    /// A user whose phone it rings first (click-to-dial).
    pub user: Option<&'a str>,
    /// Where it goes: a trunk there is counted too.
    pub target: Option<&'a Target>,
}

/// The parties `ask` counts against that have a limit, as stored now.
pub async fn parties(
    store: &Store,
    ask: &Ask<'_>,
) -> Result<Vec<Limited>, dialtone_store::StoreError> {
    let mut out = Vec::new();
    let mut accounts: Vec<String> = Vec::new();
    match ask.who {
        Caller::Trunk(t) => out.push(Limited::trunk(t)),
        Caller::User(u) => {
            if let Some(row) = store.users().get_cached(u).await? {
                out.push(Limited::user(&row));
                accounts.push(row.account_id);
            }
        }
        Caller::Persona(p) => {
            if let Some(row) = store.personas().get(p).await? {
                accounts.push(row.account_id);
            }
        }
        Caller::Account(a) => accounts.push(a.clone()),
        Caller::Operator => {}
    }
    if let Some(u) = ask
        .user
        .filter(|u| !matches!(ask.who, Caller::User(w) if w.as_str() == *u))
    {
        if let Some(row) = store.users().get_cached(u).await? {
            out.push(Limited::user(&row));
            accounts.push(row.account_id);
        }
    }
    accounts.extend(ask.account.map(str::to_string));
    accounts.sort();
    accounts.dedup();
    for id in accounts {
        if let Some(a) = store.accounts().get(&id).await? {
            out.push(Limited::account(&a));
        }
    }
    if let Some(Target::Trunk { trunk, .. }) = ask.target {
        out.push(Limited::trunk(trunk));
    }
    out.retain(|p| !p.limits.is_unlimited());
    Ok(out)
}

/// The one admission check every call and transfer goes through: the
/// parties of `ask`, with their limits read now, against the counters;
/// `held` is what the call asking already holds (nothing for a new call).
pub async fn admit(
    admission: &Arc<Admission>,
    store: &Store,
    ask: &Ask<'_>,
    held: &Permits,
) -> Result<Permits, Refusal> {
    let parties = parties(store, ask).await.map_err(|e| {
        tracing::warn!(error = %e, who = ?ask.who, "call limits could not be read");
        Refusal {
            status: 500,
            reason: "Database Unavailable",
            detail: format!("call limits could not be read: {e}"),
            retry_after: None,
        }
    })?;
    admission.admit(&parties, held)
}

#[cfg(test)]
mod tests;

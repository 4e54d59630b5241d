//! The registrar, RFC 3261 §10.3: authenticates a REGISTER with digest,
//! checks that the user registers its own address of record, applies the
//! Contact changes (refresh, `expires=0`, `Contact: *`) with the Call-ID and
//! CSeq ordering rule atomically, and answers 200 with every current
//! binding. Bindings live in the store, in memory on a switch of its own
//! (written to the database behind, `dialtone_store::write_behind`), and
//! are purged on expiry.
//! The Path of a REGISTER that came through proxies (RFC 3327) is kept with
//! its bindings ([`path`]).

mod contact;
pub mod path;

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use dialtone_sip::auth::ChallengeKind;
use dialtone_sip::message::NameAddr;
use dialtone_sip::transaction::ServerTransaction;
use dialtone_store::{Binding, BindingChange, Store, StoreError};
use rsip::headers::UntypedHeader;
use rsip::prelude::*;
use rsip::{Header, Response};

use crate::auth_guard::{AuthGuard, Lockout, Verdict};
use crate::with_reason;
pub use contact::{contacts, ContactEntry, Contacts};

#[derive(Clone, Debug)]
pub struct RegistrarConfig {
    /// Shorter registrations get 423 Interval Too Brief.
    pub min_expires: u32,
    /// Longer ones are shortened to this.
    pub max_expires: u32,
    /// When neither the contact nor the request says.
    pub default_expires: u32,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
        }
    }
}

pub struct Registrar {
    cfg: RegistrarConfig,
    store: Store,
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Unix milliseconds (call records, node heartbeats).
pub fn unix_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// How a REGISTER ends, before it is turned into a response.
enum Outcome {
    Ok(Vec<Binding>),
    Reply(u16, &'static str),
    TooBrief,
    Silence,
    Challenge { stale: bool },
}

impl Registrar {
    pub fn new(cfg: RegistrarConfig, store: Store) -> Self {
        Registrar { cfg, store }
    }

    /// Handles one REGISTER to the end (response sent).
    /// Answers a REGISTER; `source` is the phone's address (behind a front
    /// proxy, not the packet's), for the digest failure bans.
    pub async fn handle(&self, tx: ServerTransaction, guard: &AuthGuard, source: IpAddr) {
        let outcome = self.process(&tx, guard, source).await;
        let resp = match outcome {
            Outcome::Silence => return,
            Outcome::Ok(bindings) => self.ok(&tx, &bindings),
            Outcome::Reply(code, reason) => with_reason(tx.response(code), reason),
            Outcome::TooBrief => {
                let mut r = tx.response(423);
                r.headers
                    .push(Header::MinExpires(rsip::headers::MinExpires::new(
                        self.cfg.min_expires.to_string(),
                    )));
                r
            }
            Outcome::Challenge { stale } => {
                let mut r = tx.response(401);
                for h in guard.digest().challenge(ChallengeKind::Www, stale) {
                    r.headers.push(h);
                }
                r
            }
        };
        let _ = tx.respond(resp);
    }

    async fn process(&self, tx: &ServerTransaction, guard: &AuthGuard, source: IpAddr) -> Outcome {
        let req = tx.request();
        let user = match guard.check_register(req, source).await {
            Verdict::Authenticated(u) => u,
            Verdict::Challenge { stale } => return Outcome::Challenge { stale },
            Verdict::Failed => return Outcome::Challenge { stale: false },
            Verdict::Malformed(_) => return Outcome::Reply(400, "Malformed Authorization"),
            Verdict::Locked(Lockout::Forbidden) => {
                return Outcome::Reply(403, "Too Many Failed Attempts")
            }
            Verdict::Locked(Lockout::Silence) => return Outcome::Silence,
            Verdict::StoreError(e) => {
                tracing::error!(error = %e, "registrar: store error during auth");
                return Outcome::Reply(500, "Database Unavailable");
            }
        };
        // §10.3 step 6: only the owner may change an AOR's bindings.
        let to = req.to_header().map(|t| NameAddr::parse(t.value()));
        let aor = match to {
            Ok(Ok(na)) => na.uri.auth.map(|a| a.user).unwrap_or_default(),
            _ => return Outcome::Reply(400, "Bad To"),
        };
        if aor != user.username {
            return Outcome::Reply(403, "Not Your Address Of Record");
        }
        let changes = match self.changes(req, tx.source().to_string()) {
            Ok(c) => c,
            Err(o) => return o,
        };
        let call_id = req
            .call_id_header()
            .map(|c| c.value().to_string())
            .unwrap_or_default();
        let cseq = req.cseq_header().and_then(|c| c.seq()).unwrap_or(0);
        let now = unix_now();
        let result = match &changes {
            None => self.store.registrations().list(&aor, now).await,
            Some(changes) => {
                self.store
                    .registrations()
                    .apply(&aor, &call_id, cseq, changes, now)
                    .await
            }
        };
        match result {
            Ok(bindings) => {
                if changes.is_some() {
                    tracing::info!(%aor, bindings = bindings.len(), source = %tx.source(), "registered");
                }
                Outcome::Ok(bindings)
            }
            Err(StoreError::OutOfOrder) => Outcome::Reply(500, "Out Of Order CSeq"),
            Err(e) => {
                tracing::error!(error = %e, "registrar: store error");
                Outcome::Reply(500, "Database Unavailable")
            }
        }
    }

    /// The binding changes a REGISTER asks for; None for a query.
    fn changes(
        &self,
        req: &rsip::Request,
        source: String,
    ) -> Result<Option<Vec<BindingChange>>, Outcome> {
        let header_expires = match req.expires_header() {
            Some(e) => Some(
                e.seconds()
                    .map_err(|_| Outcome::Reply(400, "Bad Expires"))?,
            ),
            None => None,
        };
        let list = match contacts(req) {
            Ok(Contacts::Query) => return Ok(None),
            Ok(Contacts::Wildcard) if header_expires == Some(0) => {
                return Ok(Some(vec![BindingChange::RemoveAll]))
            }
            Ok(Contacts::Wildcard) => {
                return Err(Outcome::Reply(400, "Contact * Requires Expires 0"))
            }
            Ok(Contacts::List(l)) => l,
            Err(_) => return Err(Outcome::Reply(400, "Bad Contact")),
        };
        let user_agent = req.user_agent_header().map(|u| u.value().to_string());
        let route = path::of_request(req);
        let now = unix_now();
        let mut out = Vec::with_capacity(list.len());
        for c in list {
            let expires = c
                .expires
                .or(header_expires)
                .unwrap_or(self.cfg.default_expires);
            if expires == 0 {
                out.push(BindingChange::Remove { contact: c.uri });
                continue;
            }
            if expires < self.cfg.min_expires {
                return Err(Outcome::TooBrief);
            }
            let expires = expires.min(self.cfg.max_expires);
            out.push(BindingChange::Upsert {
                contact: c.uri,
                expires_at: now + i64::from(expires),
                q: c.q,
                source: source.clone(),
                user_agent: user_agent.clone(),
                instance: c.instance,
                path: route.clone(),
            });
        }
        Ok(Some(out))
    }

    fn ok(&self, tx: &ServerTransaction, bindings: &[Binding]) -> Response {
        let now = unix_now();
        let mut r = tx.response(200);
        for b in bindings {
            let left = (b.expires_at - now).max(0);
            let mut v = format!("<{}>;expires={left}", b.contact);
            if let Some(q) = b.q {
                v.push_str(&format!(";q={q}"));
            }
            r.headers
                .push(Header::Contact(rsip::headers::Contact::new(v)));
        }
        if path::supported(tx.request()) {
            if let Some(p) = path::of_request(tx.request()) {
                r.headers.push(Header::Other("Path".into(), p));
            }
        }
        r.headers
            .push(Header::Date(rsip::headers::Date::new(httpdate(
                SystemTime::now(),
            ))));
        r
    }

    /// Deletes expired bindings; returns how many.
    pub async fn purge(&self) -> Result<u64, StoreError> {
        self.store.registrations().purge_expired(unix_now()).await
    }
}

/// RFC 1123 date for the Date header (§20.17).
fn httpdate(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    // Civil from days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(mo - 1) as usize];
    format!("{weekday}, {d:02} {month} {y} {h:02}:{m:02}:{s:02} GMT")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn http_date_format() {
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(httpdate(t), "Tue, 14 Nov 2023 22:13:20 GMT");
        assert_eq!(httpdate(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
    }
}

//! Registrations: the contact bindings of each address of record (RFC 3261
//! section 10), durable across restarts. This module owns the REGISTER
//! ordering rule (section 10.3 step 7), applies each REGISTER atomically,
//! and hides expired bindings from every read.

use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, Row, Transaction};

use crate::batch::{self, AnyQuery, MultiRow};
use crate::location::Change;
use crate::writer::Lane;
use crate::{Store, StoreError};

/// One contact bound to an address of record (RFC 3261 §10).
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// The username, e.g. "1001".
    pub aor: String,
    /// The Contact URI as registered, e.g. "sip:1001@127.0.0.1:5062;transport=udp".
    pub contact: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// Round-trips exactly to 3 decimals (stored as an integer of q * 1000).
    pub q: Option<f32>,
    pub call_id: String,
    pub cseq: u32,
    /// Where the REGISTER came from, e.g. "udp:127.0.0.1:5062" (for reaching phones behind NAT).
    pub source: String,
    pub user_agent: Option<String>,
    /// +sip.instance, RFC 5626, if present.
    pub instance: Option<String>,
    /// Unix seconds of the REGISTER that last wrote this binding.
    pub updated_at: i64,
    /// RFC 3327 Path of that REGISTER (comma-separated header value): the
    /// route set to reach the contact through; None: sent straight to it.
    pub path: Option<String>,
}

/// One change a REGISTER asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum BindingChange {
    /// Add or refresh this contact with a new expiry.
    Upsert {
        contact: String,
        expires_at: i64,
        q: Option<f32>,
        source: String,
        user_agent: Option<String>,
        instance: Option<String>,
        /// RFC 3327 Path header values, comma-separated; None without one.
        path: Option<String>,
    },
    /// Remove this contact (Expires: 0).
    Remove { contact: String },
    /// Remove every contact of the AOR (`Contact: *`, Expires: 0).
    RemoveAll,
}

impl BindingChange {
    /// The binding an `Upsert` makes for `aor` at `now` (written by the
    /// REGISTER with `call_id` and `cseq`); None for a removal, or for an
    /// expiry already past (which is a removal too).
    pub(crate) fn binding(&self, aor: &str, call_id: &str, cseq: u32, now: i64) -> Option<Binding> {
        let BindingChange::Upsert {
            contact,
            expires_at,
            q,
            source,
            user_agent,
            instance,
            path,
        } = self
        else {
            return None;
        };
        (*expires_at > now).then(|| Binding {
            aor: aor.to_string(),
            contact: contact.clone(),
            expires_at: *expires_at,
            q: *q,
            call_id: call_id.to_string(),
            cseq,
            source: source.clone(),
            user_agent: user_agent.clone(),
            instance: instance.clone(),
            updated_at: now,
            path: path.clone(),
        })
    }
}

/// The registrations table. Obtained from [`Store::registrations`].
#[derive(Debug, Clone, Copy)]
pub struct Registrations<'a> {
    store: &'a Store,
}

/// Columns in the order `binding_from_row` reads them; a macro so the queries
/// stay `&'static str` (sqlx caches prepared statements by text).
macro_rules! select_bindings {
    ($where:literal) => {
        concat!(
            "SELECT aor, contact, expires_at, q_milli, call_id, cseq, source, user_agent, \
             instance, updated_at, path FROM registrations WHERE ",
            $where
        )
    };
}

const UPSERT: &str = "INSERT INTO registrations \
     (aor, contact, expires_at, q_milli, call_id, cseq, source, user_agent, instance, \
      created_at, updated_at, path) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
     ON CONFLICT (aor, contact) DO UPDATE SET \
     expires_at = excluded.expires_at, q_milli = excluded.q_milli, \
     call_id = excluded.call_id, cseq = excluded.cseq, source = excluded.source, \
     user_agent = excluded.user_agent, instance = excluded.instance, \
     updated_at = excluded.updated_at, path = excluded.path";

impl<'a> Registrations<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Registrations { store }
    }

    /// Applies one REGISTER's changes atomically (one DB transaction) with RFC 3261 §10.3 step 7
    /// ordering: for each contact already bound, if the stored Call-ID equals `call_id` and the stored
    /// CSeq >= `cseq`, nothing is changed and Err(StoreError::OutOfOrder) is returned (the registrar
    /// answers 500). For RemoveAll the same check applies to every stored binding.
    /// Expired bindings (expires_at <= now) of this AOR are deleted first and never returned.
    /// Returns the AOR's bindings after the change, unexpired ones only (expires_at > now), ordered by contact.
    pub async fn apply(
        &self,
        aor: &str,
        call_id: &str,
        cseq: u32,
        changes: &[BindingChange],
        now: i64,
    ) -> Result<Vec<Binding>, StoreError> {
        if let Some(table) = self.store.location() {
            return table.apply(aor, call_id, cseq, changes, now);
        }
        let mut tx = self.store.begin_write().await?;
        lock_aor(&mut tx, aor, now).await?;

        // Expired bindings are gone before the ordering check, so a stale binding
        // can never make a fresh REGISTER look out of order.
        sqlx::query("DELETE FROM registrations WHERE aor = $1 AND expires_at <= $2")
            .bind(aor)
            .bind(now)
            .execute(&mut *tx)
            .await?;

        let stored = sqlx::query("SELECT contact, call_id, cseq FROM registrations WHERE aor = $1")
            .bind(aor)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| {
                Ok::<_, sqlx::Error>((
                    row.try_get::<String, _>("contact")?,
                    row.try_get::<String, _>("call_id")?,
                    row.try_get::<i64, _>("cseq")?,
                ))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let stored: Vec<(&str, &str, i64)> = stored
            .iter()
            .map(|(c, id, seq)| (c.as_str(), id.as_str(), *seq))
            .collect();
        if out_of_order(&stored, changes, call_id, i64::from(cseq)) {
            tx.rollback().await?;
            tracing::debug!(
                aor,
                call_id,
                cseq,
                "REGISTER out of order; bindings unchanged"
            );
            return Err(StoreError::OutOfOrder);
        }

        for change in changes {
            match change {
                BindingChange::Upsert { contact, .. } => {
                    match change.binding(aor, call_id, cseq, now) {
                        Some(b) => {
                            bind_binding(sqlx::query(UPSERT), &b)
                                .execute(&mut *tx)
                                .await?;
                        }
                        // An expiry already past is a removal: storing it would only
                        // leave a row that every read skips.
                        None => delete_contact(&mut tx, aor, contact).await?,
                    }
                }
                BindingChange::Remove { contact } => delete_contact(&mut tx, aor, contact).await?,
                BindingChange::RemoveAll => {
                    sqlx::query("DELETE FROM registrations WHERE aor = $1")
                        .bind(aor)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }

        let rows = sqlx::query(select_bindings!("aor = $1 AND expires_at > $2"))
            .bind(aor)
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
        let bindings = bindings_from_rows(&rows)?;
        tx.commit().await?;
        Ok(bindings)
    }

    /// Unexpired bindings of one AOR (expires_at > now), ordered by contact.
    pub async fn list(&self, aor: &str, now: i64) -> Result<Vec<Binding>, StoreError> {
        if let Some(table) = self.store.location() {
            return Ok(table.list(aor, now));
        }
        let rows = sqlx::query(select_bindings!("aor = $1 AND expires_at > $2"))
            .bind(aor)
            .bind(now)
            .fetch_all(self.store.pool())
            .await?;
        bindings_from_rows(&rows)
    }

    /// Every unexpired binding, ordered by AOR then contact.
    pub async fn list_all(&self, now: i64) -> Result<Vec<Binding>, StoreError> {
        if let Some(table) = self.store.location() {
            return Ok(table.list_all(now));
        }
        let rows = sqlx::query(select_bindings!("expires_at > $1"))
            .bind(now)
            .fetch_all(self.store.pool())
            .await?;
        bindings_from_rows(&rows)
    }

    /// Deletes every binding with expires_at <= now; returns how many.
    pub async fn purge_expired(&self, now: i64) -> Result<u64, StoreError> {
        let in_memory = self.store.location().map(|t| t.purge(now));
        let purged = sqlx::query("DELETE FROM registrations WHERE expires_at <= $1")
            .bind(now)
            .execute(self.store.pool())
            .await?
            .rows_affected();
        let purged = in_memory.unwrap_or(purged);
        if purged > 0 {
            tracing::debug!(purged, "purged expired registrations");
        }
        Ok(purged)
    }
}

/// RFC 3261 §10.3 step 7: a change is out of order when it touches a
/// binding (every binding, for `Contact: *`) last written by the same
/// Call-ID with a CSeq not lower than this one. `stored`: (contact,
/// Call-ID, CSeq) of the AOR's unexpired bindings.
pub(crate) fn out_of_order(
    stored: &[(&str, &str, i64)],
    changes: &[BindingChange],
    call_id: &str,
    cseq: i64,
) -> bool {
    let stale = |c_id: &str, c_seq: i64| c_id == call_id && c_seq >= cseq;
    changes.iter().any(|change| match change {
        BindingChange::Upsert { contact, .. } | BindingChange::Remove { contact } => stored
            .iter()
            .any(|(c, c_id, c_seq)| c == contact && stale(c_id, *c_seq)),
        BindingChange::RemoveAll => stored.iter().any(|(_, c_id, c_seq)| stale(c_id, *c_seq)),
    })
}

/// Writes the location table's changed bindings, all or none: the
/// bindings that are gone one DELETE each, the others as multi-row upserts
/// ([`crate::batch`]), in one transaction when that is more than one
/// statement. Each statement keeps its text, so each backend
/// prepares it once (SQLite looks `$N` parameters up by name while it
/// parses: a statement built afresh for every batch cost more than all the
/// rest of a registration).
pub(crate) async fn write_changes(store: &Store, batch: &[Change]) -> Result<(), StoreError> {
    let mut rows = Vec::with_capacity(batch.len());
    let mut gone = Vec::new();
    for change in batch {
        match change {
            Change::Upsert(b) => rows.push(b),
            Change::Delete { aor, contact } => gone.push((aor, contact)),
        }
    }
    let write = async |conn: &mut AnyConnection| {
        for (aor, contact) in &gone {
            delete_contact(conn, aor, contact).await?;
        }
        UPSERTS.execute(conn, &rows, bind_ref).await
    };
    let statements = gone.len() + batch::statements(rows.len());
    store.write_batch(Lane::Bindings, statements, write).await
}

/// [`UPSERT`] for one row and for many.
static UPSERTS: MultiRow = MultiRow::new(|| UPSERT);

fn bind_ref<'q>(q: AnyQuery<'q>, b: &'q &Binding) -> AnyQuery<'q> {
    bind_binding(q, b)
}

fn bind_binding<'q>(q: AnyQuery<'q>, b: &'q Binding) -> AnyQuery<'q> {
    q.bind(b.aor.as_str())
        .bind(b.contact.as_str())
        .bind(b.expires_at)
        .bind(b.q.map(q_to_milli))
        .bind(b.call_id.as_str())
        .bind(i64::from(b.cseq))
        .bind(b.source.as_str())
        .bind(b.user_agent.as_deref())
        .bind(b.instance.as_deref())
        .bind(b.updated_at)
        .bind(b.updated_at)
        .bind(b.path.as_deref())
}

/// Serialises writers of one AOR until the transaction ends. Upserting the
/// AOR's row makes PostgreSQL hold its row lock (a concurrent insert of the
/// same key waits for us, then updates and waits too), so the ordering check
/// and the writes of two REGISTERs never interleave. Portable SQL, and
/// harmless on SQLite, where BEGIN IMMEDIATE already serialises writers.
pub(crate) async fn lock_aor(
    tx: &mut Transaction<'static, Any>,
    aor: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO aors (aor, updated_at) VALUES ($1, $2) \
         ON CONFLICT (aor) DO UPDATE SET updated_at = excluded.updated_at",
    )
    .bind(aor)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn delete_contact(
    conn: &mut AnyConnection,
    aor: &str,
    contact: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM registrations WHERE aor = $1 AND contact = $2")
        .bind(aor)
        .bind(contact)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

fn q_to_milli(q: f32) -> i64 {
    // Saturating cast; q is 0..=1 in practice.
    (f64::from(q) * 1000.0).round() as i64
}

fn q_from_milli(milli: i64) -> f32 {
    // One correctly rounded f32 division gives the same f32 as parsing the
    // 3-decimal literal, so e.g. 0.7 comes back as exactly 0.7f32.
    milli as f32 / 1000.0
}

/// Decodes rows and sorts them by (aor, contact). Sorted in Rust rather than
/// with ORDER BY because PostgreSQL orders text by the database collation and
/// SQLite bytewise; Rust's byte order is the same on both.
fn bindings_from_rows(rows: &[AnyRow]) -> Result<Vec<Binding>, StoreError> {
    let mut bindings = rows
        .iter()
        .map(binding_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    bindings.sort_by(|a, b| (&a.aor, &a.contact).cmp(&(&b.aor, &b.contact)));
    Ok(bindings)
}

fn binding_from_row(row: &AnyRow) -> Result<Binding, sqlx::Error> {
    let cseq: i64 = row.try_get("cseq")?;
    Ok(Binding {
        aor: row.try_get("aor")?,
        contact: row.try_get("contact")?,
        expires_at: row.try_get("expires_at")?,
        q: row.try_get::<Option<i64>, _>("q_milli")?.map(q_from_milli),
        call_id: row.try_get("call_id")?,
        cseq: u32::try_from(cseq).map_err(|e| sqlx::Error::ColumnDecode {
            index: "cseq".into(),
            source: Box::new(e),
        })?,
        source: row.try_get("source")?,
        user_agent: row.try_get("user_agent")?,
        instance: row.try_get("instance")?,
        updated_at: row.try_get("updated_at")?,
        path: row.try_get("path")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q_round_trips_to_three_decimals() {
        for milli in 0..=1000 {
            let q: f32 = format!("{}.{:03}", milli / 1000, milli % 1000)
                .parse()
                .expect("valid float");
            assert_eq!(q_to_milli(q), i64::from(milli));
            assert_eq!(q_from_milli(q_to_milli(q)), q, "q = {q}");
        }
    }
}

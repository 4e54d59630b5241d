//! Leads: the people who called an account, one per account and phone
//! number, each with the cases recorded about them (one per conversation:
//! what they wanted, how the agent classified them, a summary, notes, and
//! which call and persona it came from). [`Leads::record`] finds or creates
//! the lead and adds a case in one transaction, so concurrent calls from one
//! number end up as one lead with all their cases, on both backends. A lead
//! keeps the name it was created with.

use std::collections::HashMap;

use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;

use crate::error::{is_foreign_key_violation, is_unique_violation};
use crate::store::unix_now;
use crate::{Store, StoreError};

/// What a case's classification may be.
pub const CLASSIFICATIONS: [&str; 4] = ["lead", "customer", "spam", "other"];

/// How often [`Leads::record`] starts over after losing a race on a unique key.
const RECORD_ATTEMPTS: u32 = 5;

/// A caller of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lead {
    pub id: String,
    pub account_id: String,
    /// E.164 as the caller of the store gave it; unique per account.
    pub phone_number: String,
    pub name: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds: when the last case was recorded.
    pub updated_at: i64,
}

/// One conversation about a lead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadCase {
    pub id: String,
    pub lead_id: String,
    /// What the caller wanted.
    pub intent: String,
    /// One of [`CLASSIFICATIONS`].
    pub classification: String,
    pub summary: Option<String>,
    pub notes: Option<String>,
    /// The call record it came from.
    pub call_id: Option<String>,
    /// The persona (by name) that recorded it.
    pub persona: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
}

/// What [`Leads::record`] adds to a lead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCase {
    pub intent: String,
    pub classification: String,
    pub summary: Option<String>,
    pub notes: Option<String>,
    pub call_id: Option<String>,
    pub persona: Option<String>,
}

/// The leads and lead_cases tables. Obtained from [`Store::leads`].
#[derive(Debug, Clone, Copy)]
pub struct Leads<'a> {
    store: &'a Store,
}

const SELECT_LEADS: &str =
    "SELECT id, account_id, phone_number, name, created_at, updated_at FROM leads";

type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// Refuses a case or number the store should not keep.
fn check(phone_number: &str, case: &NewCase) -> Result<(), StoreError> {
    if phone_number.trim().is_empty() {
        return Err(StoreError::Invalid {
            reason: "a lead needs a phone number".to_owned(),
        });
    }
    if case.intent.trim().is_empty() {
        return Err(StoreError::Invalid {
            reason: "a case needs an intent: what the caller wanted".to_owned(),
        });
    }
    if !CLASSIFICATIONS.contains(&case.classification.as_str()) {
        return Err(StoreError::Invalid {
            reason: format!(
                "classification {:?} is not one of {}",
                case.classification,
                CLASSIFICATIONS.join(", ")
            ),
        });
    }
    Ok(())
}

impl<'a> Leads<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Leads { store }
    }

    /// Finds the account's lead for `phone_number` or creates it (with
    /// `name`), adds the case and moves the lead's updated_at to now, all in
    /// one transaction committed before this returns. Returns the lead, the
    /// case, and whether the lead is new. [`StoreError::Invalid`] for an
    /// unknown classification or an empty number or intent,
    /// [`StoreError::NotFound`] if the account does not exist.
    pub async fn record(
        &self,
        account_id: &str,
        phone_number: &str,
        name: &str,
        case: NewCase,
    ) -> Result<(Lead, LeadCase, bool), StoreError> {
        check(phone_number, &case)?;
        let mut attempt = 1;
        loop {
            match self.try_record(account_id, phone_number, name, &case).await {
                // A race the statements below do not already absorb (they use
                // ON CONFLICT and the lead's row lock): start over, and the
                // lookup finds what the other writer committed.
                Err(StoreError::Database(e))
                    if is_unique_violation(&e) && attempt < RECORD_ATTEMPTS =>
                {
                    tracing::debug!(attempt, error = %e, "lead record raced; retrying");
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn try_record(
        &self,
        account_id: &str,
        phone_number: &str,
        name: &str,
        case: &NewCase,
    ) -> Result<(Lead, LeadCase, bool), StoreError> {
        let now = unix_now();
        let mut tx = self.store.begin_write().await?;
        // DO NOTHING rather than look-then-insert: a concurrent writer's
        // uncommitted lead makes this wait for it instead of failing.
        let inserted = sqlx::query(
            "INSERT INTO leads (id, account_id, phone_number, name, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (account_id, phone_number) DO NOTHING",
        )
        .bind(Uuid::new_v4().to_string())
        .bind(account_id)
        .bind(phone_number)
        .bind(name)
        .bind(now)
        .execute(&mut *tx)
        .await;
        let created = match inserted {
            Ok(done) => done.rows_affected() > 0,
            Err(e) if is_foreign_key_violation(&e) => {
                tx.rollback().await?;
                return Err(StoreError::NotFound {
                    what: format!("account {account_id:?}"),
                });
            }
            Err(e) => return Err(e.into()),
        };
        // Takes the lead's row lock on PostgreSQL, so concurrent cases of one
        // lead get their seq one after the other (SQLite: BEGIN IMMEDIATE).
        sqlx::query(
            "UPDATE leads SET updated_at = CASE WHEN updated_at < $3 THEN $3 ELSE updated_at END \
             WHERE account_id = $1 AND phone_number = $2",
        )
        .bind(account_id)
        .bind(phone_number)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(&format!(
            "{SELECT_LEADS} WHERE account_id = $1 AND phone_number = $2"
        ))
        .bind(account_id)
        .bind(phone_number)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Err(StoreError::NotFound {
                what: format!("lead {phone_number:?}"),
            });
        };
        let lead = lead_from_row(&row)?;
        let added = add_case(&mut tx, &lead.id, case, now).await?;
        tx.commit().await?;
        Ok((lead, added, created))
    }

    /// The lead with that id and its cases, oldest first.
    pub async fn get(&self, id: &str) -> Result<Option<(Lead, Vec<LeadCase>)>, StoreError> {
        let mut tx = self.store.pool().begin().await?;
        let row = sqlx::query(&format!("{SELECT_LEADS} WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            tx.commit().await?;
            return Ok(None);
        };
        let rows = sqlx::query(
            "SELECT id, lead_id, intent, classification, summary, notes, call_id, persona, \
             created_at FROM lead_cases WHERE lead_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let cases = rows
            .iter()
            .map(case_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some((lead_from_row(&row)?, cases)))
    }

    /// The account's lead for that number, if any.
    pub async fn find(
        &self,
        account_id: &str,
        phone_number: &str,
    ) -> Result<Option<Lead>, StoreError> {
        let row = sqlx::query(&format!(
            "{SELECT_LEADS} WHERE account_id = $1 AND phone_number = $2"
        ))
        .bind(account_id)
        .bind(phone_number)
        .fetch_optional(self.store.pool())
        .await?;
        Ok(row.as_ref().map(lead_from_row).transpose()?)
    }

    /// Every lead, most recently updated first.
    pub async fn list(&self) -> Result<Vec<Lead>, StoreError> {
        let rows = sqlx::query(SELECT_LEADS)
            .fetch_all(self.store.pool())
            .await?;
        newest_first(&rows)
    }

    /// The account's leads, most recently updated first.
    pub async fn list_for_account(&self, account_id: &str) -> Result<Vec<Lead>, StoreError> {
        let rows = sqlx::query(&format!("{SELECT_LEADS} WHERE account_id = $1"))
            .bind(account_id)
            .fetch_all(self.store.pool())
            .await?;
        newest_first(&rows)
    }

    /// How many cases each lead has, by lead id (leads without cases are absent).
    pub async fn case_counts(&self) -> Result<HashMap<String, u64>, StoreError> {
        let rows = sqlx::query("SELECT lead_id, COUNT(*) AS n FROM lead_cases GROUP BY lead_id")
            .fetch_all(self.store.pool())
            .await?;
        rows.iter()
            .map(|row| {
                let n: i64 = row.try_get("n")?;
                Ok((row.try_get("lead_id")?, u64::try_from(n).unwrap_or(0)))
            })
            .collect()
    }
}

/// Inserts the lead's next case (seq one past its last).
async fn add_case(
    tx: &mut Tx,
    lead_id: &str,
    case: &NewCase,
    now: i64,
) -> Result<LeadCase, StoreError> {
    let last: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM lead_cases WHERE lead_id = $1")
            .bind(lead_id)
            .fetch_one(&mut **tx)
            .await?;
    let added = LeadCase {
        id: Uuid::new_v4().to_string(),
        lead_id: lead_id.to_owned(),
        intent: case.intent.clone(),
        classification: case.classification.clone(),
        summary: case.summary.clone(),
        notes: case.notes.clone(),
        call_id: case.call_id.clone(),
        persona: case.persona.clone(),
        created_at: now,
    };
    sqlx::query(
        "INSERT INTO lead_cases (id, lead_id, seq, intent, classification, summary, notes, \
         call_id, persona, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(added.id.as_str())
    .bind(lead_id)
    .bind(last + 1)
    .bind(added.intent.as_str())
    .bind(added.classification.as_str())
    .bind(added.summary.as_deref())
    .bind(added.notes.as_deref())
    .bind(added.call_id.as_deref())
    .bind(added.persona.as_deref())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(added)
}

/// Sorted in Rust (updated_at, created_at, id, all descending) so both backends agree.
fn newest_first(rows: &[AnyRow]) -> Result<Vec<Lead>, StoreError> {
    let mut leads = rows
        .iter()
        .map(lead_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    leads.sort_by(|a, b| {
        (b.updated_at, b.created_at, &b.id).cmp(&(a.updated_at, a.created_at, &a.id))
    });
    Ok(leads)
}

fn lead_from_row(row: &AnyRow) -> Result<Lead, sqlx::Error> {
    Ok(Lead {
        id: row.try_get("id")?,
        account_id: row.try_get("account_id")?,
        phone_number: row.try_get("phone_number")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn case_from_row(row: &AnyRow) -> Result<LeadCase, sqlx::Error> {
    Ok(LeadCase {
        id: row.try_get("id")?,
        lead_id: row.try_get("lead_id")?,
        intent: row.try_get("intent")?,
        classification: row.try_get("classification")?,
        summary: row.try_get("summary")?,
        notes: row.try_get("notes")?,
        call_id: row.try_get("call_id")?,
        persona: row.try_get("persona")?,
        created_at: row.try_get("created_at")?,
    })
}

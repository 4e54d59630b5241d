//! Outbound routes: which trunk a dialled number leaves through. Routes are
//! tried by priority (ascending), then in the order they were created; the
//! first whose pattern matches wins, and the number is rewritten by dropping
//! `strip` leading characters and putting `prepend` in front.

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use uuid::Uuid;

use crate::error::is_foreign_key_violation;
use crate::store::unix_now;
use crate::{Store, StoreError};

/// How far apart routes created without a priority are placed, leaving room
/// to slot a route in between with an explicit priority.
const PRIORITY_STEP: i64 = 10;

/// One outbound route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub id: String,
    /// A regex over the dialled number, validated by the caller.
    pub pattern: String,
    /// The trunk's name.
    pub trunk: String,
    /// How many leading characters to drop from the dialled number.
    pub strip: u32,
    /// What to put in front after stripping.
    pub prepend: String,
    /// Lower is tried first.
    pub priority: i64,
    /// Calls leaving through this route are recorded.
    pub record: bool,
    /// Unix seconds.
    pub created_at: i64,
}

/// The routes table. Obtained from [`Store::routes`].
#[derive(Debug, Clone, Copy)]
pub struct Routes<'a> {
    store: &'a Store,
}

impl<'a> Routes<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Routes { store }
    }

    /// Creates a route through the named trunk; [`StoreError::NotFound`] if there is no such
    /// trunk. `priority` None places it after the last route: the highest priority so far plus
    /// 10 (or 10 for the first route), leaving room to slot routes in between.
    /// `record`: calls leaving through it are recorded.
    pub async fn create(
        &self,
        pattern: &str,
        trunk: &str,
        strip: u32,
        prepend: &str,
        priority: Option<i64>,
        record: bool,
    ) -> Result<Route, StoreError> {
        let not_found = || StoreError::NotFound {
            what: format!("trunk {trunk:?}"),
        };
        let mut tx = self.store.begin_write().await?;
        // Bumped first: on PostgreSQL its row lock serialises route creation, so
        // "after the last" sees every route committed before.
        let seq = next_counter(&mut tx, "routes").await?;
        let Some(trunk_id) =
            sqlx::query_scalar::<_, String>("SELECT id FROM trunks WHERE name = $1")
                .bind(trunk)
                .fetch_optional(&mut *tx)
                .await?
        else {
            tx.rollback().await?;
            return Err(not_found());
        };
        let priority = match priority {
            Some(p) => p,
            None => sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(priority) FROM routes")
                .fetch_one(&mut *tx)
                .await?
                .map_or(PRIORITY_STEP, |max| max.saturating_add(PRIORITY_STEP)),
        };
        let route = Route {
            id: Uuid::new_v4().to_string(),
            pattern: pattern.to_owned(),
            trunk: trunk.to_owned(),
            strip,
            prepend: prepend.to_owned(),
            priority,
            record,
            created_at: unix_now(),
        };
        let inserted = sqlx::query(
            "INSERT INTO routes \
             (id, pattern, trunk_id, strip, prepend, priority, seq, record, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(route.id.as_str())
        .bind(pattern)
        .bind(trunk_id.as_str())
        .bind(i64::from(strip))
        .bind(prepend)
        .bind(priority)
        .bind(seq)
        .bind(i64::from(record))
        .bind(route.created_at)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {
                tx.commit().await?;
                Ok(route)
            }
            // The trunk was removed between our read and insert.
            Err(e) if is_foreign_key_violation(&e) => {
                tx.rollback().await?;
                Err(not_found())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// In the order they are tried: priority ascending, then creation order.
    pub async fn list(&self) -> Result<Vec<Route>, StoreError> {
        let rows = sqlx::query(
            "SELECT r.id, r.pattern, t.name AS trunk, r.strip, r.prepend, r.priority, r.seq, \
             r.record, r.created_at FROM routes r JOIN trunks t ON t.id = r.trunk_id",
        )
        .fetch_all(self.store.pool())
        .await?;
        let mut routes = rows
            .iter()
            .map(|row| Ok::<_, sqlx::Error>((route_from_row(row)?, row.try_get::<i64, _>("seq")?)))
            .collect::<Result<Vec<_>, _>>()?;
        routes.sort_by_key(|(route, seq)| (route.priority, *seq));
        Ok(routes.into_iter().map(|(route, _)| route).collect())
    }

    /// Switches recording of calls through the route with that id on or off;
    /// Ok(false) when there is no such route.
    pub async fn set_record(&self, id: &str, record: bool) -> Result<bool, StoreError> {
        let updated = sqlx::query("UPDATE routes SET record = $2 WHERE id = $1")
            .bind(id)
            .bind(i64::from(record))
            .execute(self.store.pool())
            .await?
            .rows_affected();
        Ok(updated > 0)
    }

    /// Removes the route with that id; Ok(false) when there was none.
    pub async fn remove(&self, id: &str) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM routes WHERE id = $1")
            .bind(id)
            .execute(self.store.pool())
            .await?
            .rows_affected();
        Ok(deleted > 0)
    }
}

/// Increments the named counter (starting at 1) and returns its new value.
/// The upsert keeps the row locked until the transaction ends (PostgreSQL), so
/// concurrent callers get distinct, increasing values.
async fn next_counter(tx: &mut Transaction<'static, Any>, name: &str) -> Result<i64, sqlx::Error> {
    sqlx::query(
        "INSERT INTO counters (name, value) VALUES ($1, 1) \
         ON CONFLICT (name) DO UPDATE SET value = counters.value + 1",
    )
    .bind(name)
    .execute(&mut **tx)
    .await?;
    sqlx::query_scalar("SELECT value FROM counters WHERE name = $1")
        .bind(name)
        .fetch_one(&mut **tx)
        .await
}

fn route_from_row(row: &AnyRow) -> Result<Route, sqlx::Error> {
    let strip: i64 = row.try_get("strip")?;
    Ok(Route {
        id: row.try_get("id")?,
        pattern: row.try_get("pattern")?,
        trunk: row.try_get("trunk")?,
        strip: u32::try_from(strip).map_err(|e| sqlx::Error::ColumnDecode {
            index: "strip".into(),
            source: Box::new(e),
        })?,
        prepend: row.try_get("prepend")?,
        priority: row.try_get("priority")?,
        record: row.try_get::<i64, _>("record")? != 0,
        created_at: row.try_get("created_at")?,
    })
}

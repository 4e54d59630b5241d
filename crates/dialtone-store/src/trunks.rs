//! Trunks: the SIP peers (carriers, other PBXs) calls are sent to and come
//! from. A trunk has a unique name, an optional destination, the source
//! addresses its inbound calls arrive from, and the credentials dialtone
//! answers the trunk's digest challenges with.

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use uuid::Uuid;

use crate::cache::{Table, ALL_TRUNKS};
use crate::error::{is_foreign_key_violation, is_unique_violation};
use crate::limits::CallLimits;
use crate::numbers::TargetKind;
use crate::srtp::SrtpPolicy;
use crate::store::unix_now;
use crate::{Store, StoreError};

/// A SIP peer.
///
/// The password is stored as given, in clear: unlike [`crate::User`]s, whose
/// HA1 digests suffice to *check* a challenge response, dialtone is the
/// digest *client* towards a trunk and must know the password to compute its
/// responses. Protect the database accordingly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trunk {
    pub id: String,
    pub name: String,
    /// "host:port" (or "[v6]:port") where calls to the trunk go; None = inbound-only.
    pub host: Option<String>,
    /// "udp" or "tcp".
    pub transport: String,
    /// Source IPs (or CIDRs) calls from this trunk come from, in the order given.
    pub inbound_ips: Vec<String>,
    /// To answer the trunk's digest challenge.
    pub username: Option<String>,
    /// To answer the trunk's digest challenge; kept as given (see the type's docs).
    pub password: Option<String>,
    /// Keep an upstream registration alive.
    pub register: bool,
    /// Unix seconds.
    pub created_at: i64,
    /// How many calls the trunk may carry at once (both ways), and how fast
    /// new ones may start.
    pub limits: CallLimits,
    /// Its own SRTP policy; `None`: the configured default (`media.srtp`).
    pub srtp: Option<SrtpPolicy>,
}

/// What [`Trunks::create`] needs. The store does not validate the fields.
#[derive(Debug, Clone, Copy)]
pub struct NewTrunk<'a> {
    pub name: &'a str,
    pub host: Option<&'a str>,
    pub transport: &'a str,
    pub inbound_ips: &'a [String],
    pub username: Option<&'a str>,
    pub password: Option<&'a str>,
    pub register: bool,
}

/// The trunks table. Obtained from [`Store::trunks`].
#[derive(Debug, Clone, Copy)]
pub struct Trunks<'a> {
    store: &'a Store,
}

const SELECT_TRUNKS: &str = "SELECT id, name, host, transport, username, password, register, \
     created_at, max_calls, max_cps_milli, srtp FROM trunks";

impl<'a> Trunks<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Trunks { store }
    }

    /// Creates a trunk; [`StoreError::Conflict`] if the name is taken.
    pub async fn create(&self, t: NewTrunk<'_>) -> Result<Trunk, StoreError> {
        let trunk = Trunk {
            id: Uuid::new_v4().to_string(),
            name: t.name.to_owned(),
            host: t.host.map(str::to_owned),
            transport: t.transport.to_owned(),
            inbound_ips: t.inbound_ips.to_vec(),
            username: t.username.map(str::to_owned),
            password: t.password.map(str::to_owned),
            register: t.register,
            created_at: unix_now(),
            limits: CallLimits::default(),
            srtp: None,
        };
        let mut tx = self.store.begin_write().await?;
        match insert(&mut tx, &trunk).await {
            Ok(()) => {
                tx.commit().await?;
                self.store.changed(Table::Trunks, t.name).await?;
                Ok(trunk)
            }
            Err(e) => {
                tx.rollback().await?;
                if is_unique_violation(&e) {
                    Err(StoreError::Conflict {
                        what: format!("trunk {:?}", t.name),
                    })
                } else {
                    Err(e.into())
                }
            }
        }
    }

    /// The trunk with that name, if any.
    /// Creates trunk `t`, or replaces the host, credentials, addresses and
    /// registration flag of the trunk of that name (keeping its id, so the
    /// routes and numbers that name it stay valid). The trunk as stored.
    pub async fn upsert(&self, t: NewTrunk<'_>) -> Result<Trunk, StoreError> {
        let mut tx = self.store.begin_write().await?;
        let id: Option<String> = sqlx::query_scalar("SELECT id FROM trunks WHERE name = $1")
            .bind(t.name)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(id) = id else {
            tx.rollback().await?;
            return self.create(t).await;
        };
        sqlx::query(
            "UPDATE trunks SET host = $1, transport = $2, username = $3, password = $4, \
             register = $5 WHERE id = $6",
        )
        .bind(t.host)
        .bind(t.transport)
        .bind(t.username)
        .bind(t.password)
        .bind(i64::from(t.register))
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM trunk_inbound_ips WHERE trunk_id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        for (position, ip) in (0_i64..).zip(t.inbound_ips) {
            sqlx::query(
                "INSERT INTO trunk_inbound_ips (trunk_id, position, ip) VALUES ($1, $2, $3)",
            )
            .bind(id.as_str())
            .bind(position)
            .bind(ip.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.store.changed(Table::Trunks, t.name).await?;
        self.get(t.name).await?.ok_or_else(|| StoreError::NotFound {
            what: format!("trunk {:?}", t.name),
        })
    }

    pub async fn get(&self, name: &str) -> Result<Option<Trunk>, StoreError> {
        let Some(row) = sqlx::query(&format!("{SELECT_TRUNKS} WHERE name = $1"))
            .bind(name)
            .fetch_optional(self.store.pool())
            .await?
        else {
            return Ok(None);
        };
        let mut trunk = trunk_from_row(&row)?;
        let ips = sqlx::query("SELECT position, ip FROM trunk_inbound_ips WHERE trunk_id = $1")
            .bind(trunk.id.as_str())
            .fetch_all(self.store.pool())
            .await?;
        let mut ips = ips.iter().map(ip_from_row).collect::<Result<Vec<_>, _>>()?;
        ips.sort();
        trunk.inbound_ips = ips.into_iter().map(|(_, ip)| ip).collect();
        Ok(Some(trunk))
    }

    /// Every trunk, ordered by name.
    pub async fn list(&self) -> Result<Vec<Trunk>, StoreError> {
        // One transaction so the trunks and their addresses are one snapshot.
        let mut tx = self.store.pool().begin().await?;
        let rows = sqlx::query(SELECT_TRUNKS).fetch_all(&mut *tx).await?;
        let ip_rows = sqlx::query("SELECT trunk_id, position, ip FROM trunk_inbound_ips")
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;

        let mut ips: HashMap<String, Vec<(i64, String)>> = HashMap::new();
        for row in &ip_rows {
            let trunk_id: String = row.try_get("trunk_id")?;
            ips.entry(trunk_id).or_default().push(ip_from_row(row)?);
        }
        let mut trunks = rows
            .iter()
            .map(trunk_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        for trunk in &mut trunks {
            if let Some(mut list) = ips.remove(&trunk.id) {
                list.sort();
                trunk.inbound_ips = list.into_iter().map(|(_, ip)| ip).collect();
            }
        }
        // Sorted in Rust so both backends agree (see `Accounts::list`).
        trunks.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(trunks)
    }

    /// The first trunk `matches` accepts (by name, by a call's source
    /// address), through the switch's cache when this process keeps one
    /// ([`Store::keep_in_memory`]). A miss reads the trunks again: as
    /// nothing absent is cached, a trunk just added elsewhere is found at
    /// once. With the database away, a miss is a miss.
    pub async fn find_cached(
        &self,
        matches: impl Fn(&Trunk) -> bool,
    ) -> Result<Option<Trunk>, StoreError> {
        let Some(cache) = self.store.memory.caches.get().map(|c| &c.trunks) else {
            return Ok(self.list().await?.into_iter().find(|t| matches(t)));
        };
        let cached = cache.get(ALL_TRUNKS);
        if let Some(t) = cached
            .as_ref()
            .and_then(|l| l.iter().find(|t| matches(t)).cloned())
        {
            return Ok(Some(t));
        }
        let epoch = cache.epoch();
        let list = match self.list().await {
            Ok(list) => Arc::new(list),
            // The database away: the trunks cached stand, and a call from
            // elsewhere is no trunk's (a user's, which the caches serve).
            Err(e) if cached.is_some() => {
                tracing::debug!(error = %e, "trunks not read again: the cached ones stand");
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let found = list.iter().find(|t| matches(t)).cloned();
        cache.keep(ALL_TRUNKS, list, epoch);
        Ok(found)
    }

    /// [`get`](Self::get) through the switch's cache (see [`find_cached`](Self::find_cached)).
    pub async fn get_cached(&self, name: &str) -> Result<Option<Trunk>, StoreError> {
        self.find_cached(|t| t.name == name).await
    }

    /// Sets the trunk's call limits (both; None clears one); Ok(false) when
    /// there is no such trunk.
    pub async fn set_limits(&self, name: &str, limits: CallLimits) -> Result<bool, StoreError> {
        let found = crate::limits::set(self.store, "trunks", "name", name, limits).await?;
        self.store.changed(Table::Trunks, name).await?;
        Ok(found)
    }

    /// Sets the trunk's SRTP policy (None: back to the configured default);
    /// Ok(false) when there is no such trunk.
    pub async fn set_srtp(
        &self,
        name: &str,
        policy: Option<SrtpPolicy>,
    ) -> Result<bool, StoreError> {
        let found = crate::srtp::set(self.store, "trunks", "name", name, policy).await?;
        self.store.changed(Table::Trunks, name).await?;
        Ok(found)
    }

    /// Removes the trunk; Ok(false) when there was no such trunk.
    /// [`StoreError::Conflict`] (nothing removed) while a number targets it
    /// or a route uses it: remove or repoint those first.
    pub async fn remove(&self, name: &str) -> Result<bool, StoreError> {
        let mut tx = self.store.begin_write().await?;
        let Some(id) = sqlx::query_scalar::<_, String>("SELECT id FROM trunks WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
        else {
            tx.rollback().await?;
            return Ok(false);
        };

        let numbers: Vec<String> =
            sqlx::query_scalar("SELECT number FROM numbers WHERE target_kind = $1 AND target = $2")
                .bind(TargetKind::Trunk.as_str())
                .bind(name)
                .fetch_all(&mut *tx)
                .await?;
        let routes: Vec<String> =
            sqlx::query_scalar("SELECT pattern FROM routes WHERE trunk_id = $1")
                .bind(id.as_str())
                .fetch_all(&mut *tx)
                .await?;
        if !numbers.is_empty() || !routes.is_empty() {
            tx.rollback().await?;
            return Err(in_use(name, numbers, routes));
        }

        let deleted = async {
            sqlx::query("DELETE FROM trunk_inbound_ips WHERE trunk_id = $1")
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM trunks WHERE id = $1")
                .bind(id.as_str())
                .execute(&mut *tx)
                .await
        }
        .await;
        match deleted {
            Ok(_) => {
                tx.commit().await?;
                self.store.changed(Table::Trunks, name).await?;
                Ok(true)
            }
            // A route created concurrently (PostgreSQL) still holds the foreign key.
            Err(e) if is_foreign_key_violation(&e) => {
                tx.rollback().await?;
                Err(StoreError::Conflict {
                    what: format!("a route using trunk {name:?}"),
                })
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// The Conflict for a trunk still referenced; reads "… already exists".
fn in_use(name: &str, mut numbers: Vec<String>, mut routes: Vec<String>) -> StoreError {
    numbers.sort();
    routes.sort();
    let mut parts = Vec::new();
    if !numbers.is_empty() {
        parts.push(format!("number(s) {numbers:?}"));
    }
    if !routes.is_empty() {
        parts.push(format!("route(s) {routes:?}"));
    }
    StoreError::Conflict {
        what: format!("{} using trunk {name:?}", parts.join(" and ")),
    }
}

async fn insert(tx: &mut Transaction<'static, Any>, trunk: &Trunk) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO trunks \
         (id, name, host, transport, username, password, register, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(trunk.id.as_str())
    .bind(trunk.name.as_str())
    .bind(trunk.host.as_deref())
    .bind(trunk.transport.as_str())
    .bind(trunk.username.as_deref())
    .bind(trunk.password.as_deref())
    .bind(i64::from(trunk.register))
    .bind(trunk.created_at)
    .execute(&mut **tx)
    .await?;
    for (position, ip) in (0_i64..).zip(&trunk.inbound_ips) {
        sqlx::query("INSERT INTO trunk_inbound_ips (trunk_id, position, ip) VALUES ($1, $2, $3)")
            .bind(trunk.id.as_str())
            .bind(position)
            .bind(ip.as_str())
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// A trunk without its inbound addresses (they live in another table).
fn trunk_from_row(row: &AnyRow) -> Result<Trunk, sqlx::Error> {
    Ok(Trunk {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        host: row.try_get("host")?,
        transport: row.try_get("transport")?,
        inbound_ips: Vec::new(),
        username: row.try_get("username")?,
        password: row.try_get("password")?,
        register: row.try_get::<i64, _>("register")? != 0,
        created_at: row.try_get("created_at")?,
        limits: CallLimits::from_row(row)?,
        srtp: crate::srtp::from_row(row)?,
    })
}

fn ip_from_row(row: &AnyRow) -> Result<(i64, String), sqlx::Error> {
    Ok((row.try_get("position")?, row.try_get("ip")?))
}

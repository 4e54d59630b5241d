//! Users: the SIP identities that may register and place calls. A user
//! belongs to an account and keeps only RFC 7616 HA1 digests, never the
//! password. Removing a user also drops its registrations. A user may be
//! on do-not-disturb ([`Users::set_dnd`]), which availability checks report.

use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;

use crate::cache::Table;
use crate::error::{is_foreign_key_violation, is_unique_violation};
use crate::limits::CallLimits;
use crate::registrations::lock_aor;
use crate::srtp::SrtpPolicy;
use crate::store::unix_now;
use crate::{Store, StoreError};

/// A SIP user. The password is never stored: only the RFC 7616 HA1 digests
/// H(username:realm:password) for MD5 and SHA-256, as lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub account_id: String,
    pub username: String,
    pub realm: String,
    pub ha1_md5: String,
    pub ha1_sha256: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Do not disturb: the user does not want calls now.
    pub dnd: bool,
    /// How many calls the user may place at once, and how fast.
    pub limits: CallLimits,
    /// Its own SRTP policy; `None`: the configured default (`media.srtp`).
    pub srtp: Option<SrtpPolicy>,
}

/// What [`Users::create`] needs.
#[derive(Debug, Clone, Copy)]
pub struct NewUser<'a> {
    pub account_id: &'a str,
    pub username: &'a str,
    pub realm: &'a str,
    pub ha1_md5: &'a str,
    pub ha1_sha256: &'a str,
}

/// The users table. Obtained from [`Store::users`].
#[derive(Debug, Clone, Copy)]
pub struct Users<'a> {
    store: &'a Store,
}

const SELECT_USERS: &str = "SELECT id, account_id, username, realm, ha1_md5, ha1_sha256, \
     created_at, dnd, max_calls, max_cps_milli, srtp FROM users";

impl<'a> Users<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Users { store }
    }

    /// Creates a user. [`StoreError::Conflict`] if the username exists (usernames are
    /// unique across the switch), [`StoreError::NotFound`] if the account does not.
    pub async fn create(&self, u: NewUser<'_>) -> Result<User, StoreError> {
        let user = User {
            id: Uuid::new_v4().to_string(),
            account_id: u.account_id.to_owned(),
            username: u.username.to_owned(),
            realm: u.realm.to_owned(),
            ha1_md5: u.ha1_md5.to_owned(),
            ha1_sha256: u.ha1_sha256.to_owned(),
            created_at: unix_now(),
            dnd: false,
            limits: CallLimits::default(),
            srtp: None,
        };
        let inserted = sqlx::query(
            "INSERT INTO users (id, account_id, username, realm, ha1_md5, ha1_sha256, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(user.id.as_str())
        .bind(u.account_id)
        .bind(u.username)
        .bind(u.realm)
        .bind(u.ha1_md5)
        .bind(u.ha1_sha256)
        .bind(user.created_at)
        .execute(self.store.pool())
        .await;
        match inserted {
            Ok(_) => Ok(user),
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict {
                what: format!("user {:?}", u.username),
            }),
            Err(e) if is_foreign_key_violation(&e) => Err(StoreError::NotFound {
                what: format!("account {:?}", u.account_id),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// The user with that username, if any.
    pub async fn get(&self, username: &str) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(&format!("{SELECT_USERS} WHERE username = $1"))
            .bind(username)
            .fetch_optional(self.store.pool())
            .await?;
        Ok(row.as_ref().map(user_from_row).transpose()?)
    }

    /// [`get`](Self::get) through the registrar's cache when this process
    /// keeps one ([`Store::keep_in_memory`]); a user that does not exist is
    /// read from the database every time.
    pub async fn get_cached(&self, username: &str) -> Result<Option<User>, StoreError> {
        self.store
            .read_through(|c| &c.users, username, self.get(username))
            .await
    }

    /// Every user, ordered by username.
    pub async fn list(&self) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query(SELECT_USERS)
            .fetch_all(self.store.pool())
            .await?;
        let mut users = rows
            .iter()
            .map(user_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        // Sorted in Rust so both backends agree (see `Accounts::list`).
        users.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(users)
    }

    /// Switches the user's do-not-disturb on or off; Ok(false) when there
    /// is no such user.
    pub async fn set_dnd(&self, username: &str, on: bool) -> Result<bool, StoreError> {
        let updated = sqlx::query("UPDATE users SET dnd = $2 WHERE username = $1")
            .bind(username)
            .bind(i64::from(on))
            .execute(self.store.pool())
            .await?
            .rows_affected();
        self.store.changed(Table::Users, username).await?;
        Ok(updated > 0)
    }

    /// Sets the user's call limits (both; None clears one); Ok(false) when
    /// there is no such user.
    pub async fn set_limits(&self, username: &str, limits: CallLimits) -> Result<bool, StoreError> {
        let found = crate::limits::set(self.store, "users", "username", username, limits).await?;
        self.store.changed(Table::Users, username).await?;
        Ok(found)
    }

    /// Sets the user's SRTP policy (None: back to the configured default);
    /// Ok(false) when there is no such user.
    pub async fn set_srtp(
        &self,
        username: &str,
        policy: Option<SrtpPolicy>,
    ) -> Result<bool, StoreError> {
        let found = crate::srtp::set(self.store, "users", "username", username, policy).await?;
        self.store.changed(Table::Users, username).await?;
        Ok(found)
    }

    /// Removes the user and all its registrations; Ok(false) when there was no such user.
    pub async fn remove(&self, username: &str) -> Result<bool, StoreError> {
        let mut tx = self.store.begin_write().await?;
        let deleted = sqlx::query("DELETE FROM users WHERE username = $1")
            .bind(username)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        // Take the AOR lock so a REGISTER in flight finishes before its bindings go.
        lock_aor(&mut tx, username, unix_now()).await?;
        sqlx::query("DELETE FROM registrations WHERE aor = $1")
            .bind(username)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM aors WHERE aor = $1")
            .bind(username)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if let Some(table) = self.store.location() {
            table.forget(username);
        }
        self.store.changed(Table::Users, username).await?;
        Ok(true)
    }
}

fn user_from_row(row: &AnyRow) -> Result<User, sqlx::Error> {
    Ok(User {
        id: row.try_get("id")?,
        account_id: row.try_get("account_id")?,
        username: row.try_get("username")?,
        realm: row.try_get("realm")?,
        ha1_md5: row.try_get("ha1_md5")?,
        ha1_sha256: row.try_get("ha1_sha256")?,
        created_at: row.try_get("created_at")?,
        dnd: row.try_get::<i64, _>("dnd")? != 0,
        limits: CallLimits::from_row(row)?,
        srtp: crate::srtp::from_row(row)?,
    })
}

//! API keys: the bearer secrets that let a client act for one account (the
//! MCP server and the REST API check them). A key is `dtk_` and 40 random
//! letters and digits from the operating system's CSPRNG; it is returned once,
//! by [`ApiKeys::create`], and only its hex SHA-256 is stored, with its first
//! 12 characters as a prefix to tell keys apart in listings. Keys are revoked,
//! never deleted, so listings keep showing them.

use rand::distributions::Alphanumeric;
use rand::rngs::OsRng;
use rand::Rng;
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;

use crate::error::{is_foreign_key_violation, is_unique_violation};
use crate::store::unix_now;
use crate::{Store, StoreError};

/// What every key starts with, so a leaked one is recognisable (secret scanners).
pub const KEY_PREFIX: &str = "dtk_";
/// How many random characters follow [`KEY_PREFIX`].
const RANDOM_CHARS: usize = 40;
/// How much of the key is kept in clear to tell keys apart.
const SHOWN_CHARS: usize = 12;

/// An account's API key, without the key itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    pub account_id: String,
    /// A label given at creation.
    pub name: Option<String>,
    /// The key's first 12 characters, e.g. "dtk_AbCdEfGh".
    pub prefix: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; None: never used.
    pub last_used_at: Option<i64>,
    /// Unix seconds; None: still valid.
    pub revoked_at: Option<i64>,
}

/// The api_keys table. Obtained from [`Store::api_keys`].
#[derive(Debug, Clone, Copy)]
pub struct ApiKeys<'a> {
    store: &'a Store,
}

const SELECT_KEYS: &str =
    "SELECT id, account_id, name, prefix, created_at, last_used_at, revoked_at FROM api_keys";

/// The hex SHA-256 of a key, as stored.
fn hash_of(plain: &str) -> String {
    hex::encode(Sha256::digest(plain.as_bytes()))
}

/// A fresh key: the prefix and 40 characters from [A-Za-z0-9].
fn generate() -> String {
    let random: String = OsRng
        .sample_iter(&Alphanumeric)
        .take(RANDOM_CHARS)
        .map(char::from)
        .collect();
    format!("{KEY_PREFIX}{random}")
}

impl<'a> ApiKeys<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        ApiKeys { store }
    }

    /// Creates a key for the account and returns it with the plain key, which
    /// is not stored and cannot be shown again. [`StoreError::NotFound`] if
    /// the account does not exist.
    pub async fn create(
        &self,
        account_id: &str,
        name: Option<&str>,
    ) -> Result<(ApiKey, String), StoreError> {
        let plain = generate();
        let key = ApiKey {
            id: Uuid::new_v4().to_string(),
            account_id: account_id.to_owned(),
            name: name.map(str::to_owned),
            prefix: plain.chars().take(SHOWN_CHARS).collect(),
            created_at: unix_now(),
            last_used_at: None,
            revoked_at: None,
        };
        let inserted = sqlx::query(
            "INSERT INTO api_keys (id, account_id, name, prefix, hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(key.id.as_str())
        .bind(account_id)
        .bind(name)
        .bind(key.prefix.as_str())
        .bind(hash_of(&plain))
        .bind(key.created_at)
        .execute(self.store.pool())
        .await;
        match inserted {
            Ok(_) => Ok((key, plain)),
            Err(e) if is_foreign_key_violation(&e) => Err(StoreError::NotFound {
                what: format!("account {account_id:?}"),
            }),
            // 238 bits of randomness: a repeat means a broken generator.
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict {
                what: "API key with the same hash".to_owned(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// The key `plain` stands for, if it exists and is not revoked. The lookup
    /// is by hash, so comparing in constant time is not needed.
    pub async fn verify(&self, plain: &str) -> Result<Option<ApiKey>, StoreError> {
        let row = sqlx::query(&format!(
            "{SELECT_KEYS} WHERE hash = $1 AND revoked_at IS NULL"
        ))
        .bind(hash_of(plain))
        .fetch_optional(self.store.pool())
        .await?;
        Ok(row.as_ref().map(key_from_row).transpose()?)
    }

    /// The key with that id, revoked or not.
    pub async fn get(&self, id: &str) -> Result<Option<ApiKey>, StoreError> {
        let row = sqlx::query(&format!("{SELECT_KEYS} WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.store.pool())
            .await?;
        Ok(row.as_ref().map(key_from_row).transpose()?)
    }

    /// Records a use of the key at `now` (unix seconds); last_used_at never
    /// moves back when uses are recorded out of order.
    /// [`StoreError::NotFound`] if there is no such key.
    pub async fn touch(&self, id: &str, now: i64) -> Result<(), StoreError> {
        let updated = sqlx::query(
            "UPDATE api_keys SET last_used_at = CASE \
             WHEN last_used_at IS NULL OR last_used_at < $2 THEN $2 ELSE last_used_at END \
             WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .execute(self.store.pool())
        .await?
        .rows_affected();
        if updated == 0 {
            return Err(StoreError::NotFound {
                what: format!("API key {id:?}"),
            });
        }
        Ok(())
    }

    /// Every key, newest first.
    pub async fn list(&self) -> Result<Vec<ApiKey>, StoreError> {
        let rows = sqlx::query(SELECT_KEYS)
            .fetch_all(self.store.pool())
            .await?;
        newest_first(&rows)
    }

    /// The account's keys, newest first.
    pub async fn list_for_account(&self, account_id: &str) -> Result<Vec<ApiKey>, StoreError> {
        let rows = sqlx::query(&format!("{SELECT_KEYS} WHERE account_id = $1"))
            .bind(account_id)
            .fetch_all(self.store.pool())
            .await?;
        newest_first(&rows)
    }

    /// Revokes the key now; Ok(false) when there is no such key or it was
    /// revoked already.
    pub async fn revoke(&self, id: &str) -> Result<bool, StoreError> {
        let updated =
            sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                .bind(id)
                .bind(unix_now())
                .execute(self.store.pool())
                .await?
                .rows_affected();
        Ok(updated > 0)
    }
}

/// Sorted in Rust (created_at, then id, both descending) so both backends agree.
fn newest_first(rows: &[AnyRow]) -> Result<Vec<ApiKey>, StoreError> {
    let mut keys = rows
        .iter()
        .map(key_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    keys.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    Ok(keys)
}

fn key_from_row(row: &AnyRow) -> Result<ApiKey, sqlx::Error> {
    Ok(ApiKey {
        id: row.try_get("id")?,
        account_id: row.try_get("account_id")?,
        name: row.try_get("name")?,
        prefix: row.try_get("prefix")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_the_documented_form() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert_eq!(a.len(), KEY_PREFIX.len() + RANDOM_CHARS);
        assert!(a.starts_with(KEY_PREFIX));
        assert!(a[KEY_PREFIX.len()..]
            .chars()
            .all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn hash_is_hex_sha256() {
        assert_eq!(
            hash_of("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

//! Accounts: the tenants that own users. An account is little more than a
//! unique name today; the "default" account is created on demand with
//! [`Accounts::ensure`].

use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;

use crate::error::is_unique_violation;
use crate::store::unix_now;
use crate::{Store, StoreError};

/// A tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub name: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// The accounts table. Obtained from [`Store::accounts`].
#[derive(Debug, Clone, Copy)]
pub struct Accounts<'a> {
    store: &'a Store,
}

impl<'a> Accounts<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Accounts { store }
    }

    /// Creates an account; [`StoreError::Conflict`] if the name is taken.
    pub async fn create(&self, name: &str) -> Result<Account, StoreError> {
        let account = Account {
            id: Uuid::new_v4().to_string(),
            name: name.to_owned(),
            created_at: unix_now(),
        };
        let inserted =
            sqlx::query("INSERT INTO accounts (id, name, created_at) VALUES ($1, $2, $3)")
                .bind(account.id.as_str())
                .bind(account.name.as_str())
                .bind(account.created_at)
                .execute(self.store.pool())
                .await;
        match inserted {
            Ok(_) => Ok(account),
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict {
                what: format!("account {name:?}"),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// The account with that name, if any.
    pub async fn get_by_name(&self, name: &str) -> Result<Option<Account>, StoreError> {
        let row = sqlx::query("SELECT id, name, created_at FROM accounts WHERE name = $1")
            .bind(name)
            .fetch_optional(self.store.pool())
            .await?;
        Ok(row.as_ref().map(account_from_row).transpose()?)
    }

    /// Returns the account with that name, creating it when missing (used for the "default" account).
    pub async fn ensure(&self, name: &str) -> Result<Account, StoreError> {
        // ON CONFLICT DO NOTHING rather than get-then-create: two callers racing
        // to ensure the same name both succeed and see the same row.
        sqlx::query(
            "INSERT INTO accounts (id, name, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(Uuid::new_v4().to_string())
        .bind(name)
        .bind(unix_now())
        .execute(self.store.pool())
        .await?;
        self.get_by_name(name)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                what: format!("account {name:?}"),
            })
    }

    /// Every account, ordered by name.
    pub async fn list(&self) -> Result<Vec<Account>, StoreError> {
        let rows = sqlx::query("SELECT id, name, created_at FROM accounts")
            .fetch_all(self.store.pool())
            .await?;
        let mut accounts = rows
            .iter()
            .map(account_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        // Sorted here, not with ORDER BY: PostgreSQL orders text by the database
        // collation, SQLite bytewise; Rust's byte order is the same everywhere.
        accounts.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(accounts)
    }
}

fn account_from_row(row: &AnyRow) -> Result<Account, sqlx::Error> {
    Ok(Account {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
    })
}

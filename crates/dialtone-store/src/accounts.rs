//! Accounts: the tenants that own users, personas, contacts and queues. An
//! account has a unique name, the region its national phone numbers are read
//! in (see [`crate::phone`]) and, optionally, an HTTP contact source; the
//! "default" account is created on demand with [`Accounts::ensure`].

use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;

use crate::error::is_unique_violation;
use crate::limits::CallLimits;
use crate::phone;
use crate::store::unix_now;
use crate::{Store, StoreError};

/// A tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub name: String,
    /// ISO 3166 region (upper case) national numbers are normalised in; "US"
    /// unless set.
    pub region: String,
    /// An HTTP/JSON contact source: a URL template with `{phone_number}`
    /// (the caller's E.164 number). None: the address book only.
    pub contact_url: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// How many calls the account's users, personas and API keys may place
    /// at once, all together, and how fast.
    pub limits: CallLimits,
}

/// The region accounts get when none is set (the column's default).
pub const DEFAULT_REGION: &str = "US";

/// Every column, as `account_from_row` reads them.
const SELECT_ACCOUNTS: &str =
    "SELECT id, name, region, contact_url, created_at, max_calls, max_cps_milli FROM accounts";

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
            region: DEFAULT_REGION.to_owned(),
            contact_url: None,
            created_at: unix_now(),
            limits: CallLimits::default(),
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
        let row = sqlx::query(&format!("{SELECT_ACCOUNTS} WHERE name = $1"))
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

    /// The account with that id, if any.
    pub async fn get(&self, id: &str) -> Result<Option<Account>, StoreError> {
        let row = sqlx::query(&format!("{SELECT_ACCOUNTS} WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.store.pool())
            .await?;
        Ok(row.as_ref().map(account_from_row).transpose()?)
    }

    /// Sets the region the account's national numbers are read in (an ISO
    /// code [`crate::phone`] knows, any case; stored upper case) and returns
    /// the account. Numbers already stored keep their E.164 form.
    /// [`StoreError::Invalid`] for an unknown region, [`StoreError::NotFound`]
    /// for an unknown account.
    pub async fn set_region(&self, name: &str, region: &str) -> Result<Account, StoreError> {
        if !phone::is_known_region(region) {
            let known: Vec<&str> = phone::regions().collect();
            return Err(StoreError::Invalid {
                reason: format!(
                    "unknown region {region:?} (expected one of {})",
                    known.join(", ")
                ),
            });
        }
        self.set(name, "region", Some(&region.to_ascii_uppercase()))
            .await
    }

    /// Sets (Some) or clears (None) the account's HTTP contact source and
    /// returns the account. The URL must be http:// or https:// and contain
    /// `{phone_number}`, and no other `{placeholder}` ([`StoreError::Invalid`]);
    /// [`StoreError::NotFound`] for an unknown account.
    pub async fn set_contact_url(
        &self,
        name: &str,
        url: Option<&str>,
    ) -> Result<Account, StoreError> {
        if let Some(url) = url {
            check_contact_url(url).map_err(|reason| StoreError::Invalid { reason })?;
        }
        self.set(name, "contact_url", url).await
    }

    /// Sets the account's call limits (both; None clears one) and returns
    /// the account; [`StoreError::NotFound`] for an unknown account.
    pub async fn set_limits(&self, name: &str, limits: CallLimits) -> Result<Account, StoreError> {
        let found = if crate::limits::set(self.store, "accounts", "name", name, limits).await? {
            self.get_by_name(name).await?
        } else {
            None
        };
        found.ok_or_else(|| StoreError::NotFound {
            what: format!("account {name:?}"),
        })
    }

    /// Sets one column of the named account; `column` is one of ours, never input.
    async fn set(
        &self,
        name: &str,
        column: &str,
        value: Option<&str>,
    ) -> Result<Account, StoreError> {
        let updated = sqlx::query(&format!(
            "UPDATE accounts SET {column} = $2 WHERE name = $1"
        ))
        .bind(name)
        .bind(value)
        .execute(self.store.pool())
        .await?
        .rows_affected();
        let found = if updated == 0 {
            None
        } else {
            self.get_by_name(name).await?
        };
        found.ok_or_else(|| StoreError::NotFound {
            what: format!("account {name:?}"),
        })
    }

    /// Every account, ordered by name.
    pub async fn list(&self) -> Result<Vec<Account>, StoreError> {
        let rows = sqlx::query(SELECT_ACCOUNTS)
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
        region: row.try_get("region")?,
        contact_url: row.try_get("contact_url")?,
        created_at: row.try_get("created_at")?,
        limits: CallLimits::from_row(row)?,
    })
}

/// Why `url` is not a usable contact source URL template: it must be
/// http:// or https:// with a host written out, and contain `{phone_number}`
/// and no other `{placeholder}`.
pub fn check_contact_url(url: &str) -> Result<(), String> {
    let lower = url.to_ascii_lowercase();
    let Some(rest) = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
    else {
        return Err(format!(
            "contact URL {url:?} must start with http:// or https://"
        ));
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.contains('{') {
        return Err(format!(
            "contact URL {url:?} needs a host, written out (no placeholder in it)"
        ));
    }
    if url.chars().any(char::is_whitespace) {
        return Err(format!("contact URL {url:?} must not contain spaces"));
    }
    let mut placeholders = Vec::new();
    let mut rest = url;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else {
            return Err(format!("contact URL {url:?} has an unclosed '{{'"));
        };
        placeholders.push(&after[..end]);
        rest = &after[end + 1..];
    }
    if let Some(other) = placeholders.iter().find(|p| **p != "phone_number") {
        return Err(format!(
            "contact URL {url:?}: unknown placeholder {{{other}}} (only {{phone_number}} is filled in)"
        ));
    }
    if placeholders.is_empty() {
        return Err(format!(
            "contact URL {url:?} must contain {{phone_number}} (where the caller's number goes)"
        ));
    }
    Ok(())
}

//! Contacts: an account's address book. A contact has a name, optionally a
//! company and an email, and numbers in the order given; each number is kept
//! as written and in E.164 form (normalised in the account's region with
//! [`crate::phone::normalize`]), so a caller ID finds the contact however its
//! number was typed. Lookups never cross accounts.

use std::collections::HashMap;

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use uuid::Uuid;

use crate::error::is_foreign_key_violation;
use crate::phone;
use crate::store::unix_now;
use crate::{Store, StoreError};

/// Someone an account knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub company: Option<String>,
    pub email: Option<String>,
    /// In the order given.
    pub numbers: Vec<ContactNumber>,
    /// Unix seconds.
    pub created_at: i64,
}

/// One of a contact's numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactNumber {
    /// As written ("(555) 010-0123").
    pub number: String,
    /// Normalised ("+15550100123"); None when it cannot be (an extension, junk).
    pub e164: Option<String>,
}

/// A contact to create: what [`Contacts::import`] takes per row.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewContact {
    pub name: String,
    /// As written; normalised on insert.
    pub numbers: Vec<String>,
    pub company: Option<String>,
    pub email: Option<String>,
}

/// The contacts table and its numbers. Obtained from [`Store::contacts`].
#[derive(Debug, Clone, Copy)]
pub struct Contacts<'a> {
    store: &'a Store,
}

const SELECT_CONTACTS: &str =
    "SELECT c.id, c.account_id, c.name, c.company, c.email, c.created_at FROM contacts c";

impl<'a> Contacts<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Contacts { store }
    }

    /// Creates a contact, normalising each number in `region` (an ISO code,
    /// usually the account's). [`StoreError::NotFound`] if the account does
    /// not exist. The fields are not validated (the CLI and API do that).
    pub async fn create(
        &self,
        account_id: &str,
        name: &str,
        numbers: &[String],
        company: Option<&str>,
        email: Option<&str>,
        region: &str,
    ) -> Result<Contact, StoreError> {
        let new = NewContact {
            name: name.to_owned(),
            numbers: numbers.to_vec(),
            company: company.map(str::to_owned),
            email: email.map(str::to_owned),
        };
        let contact = build(account_id, new, region);
        let mut tx = self.store.begin_write().await?;
        match insert(&mut tx, &contact).await {
            Ok(()) => {
                tx.commit().await?;
                Ok(contact)
            }
            Err(e) => {
                tx.rollback().await?;
                Err(write_error(e, account_id))
            }
        }
    }

    /// Creates every row in one transaction (all or nothing) and returns how
    /// many were created. [`StoreError::NotFound`] if the account does not exist.
    pub async fn import(
        &self,
        account_id: &str,
        rows: Vec<NewContact>,
        region: &str,
    ) -> Result<usize, StoreError> {
        let count = rows.len();
        let mut tx = self.store.begin_write().await?;
        for row in rows {
            let contact = build(account_id, row, region);
            if let Err(e) = insert(&mut tx, &contact).await {
                tx.rollback().await?;
                return Err(write_error(e, account_id));
            }
        }
        tx.commit().await?;
        Ok(count)
    }

    /// The account's contacts with a number whose E.164 form is exactly
    /// `e164`, ordered by name (usually one; several people can share a line).
    pub async fn find_by_number(
        &self,
        account_id: &str,
        e164: &str,
    ) -> Result<Vec<Contact>, StoreError> {
        let mut tx = self.store.pool().begin().await?;
        let rows = sqlx::query(&format!(
            "{SELECT_CONTACTS} WHERE c.account_id = $1 AND c.id IN \
             (SELECT n.contact_id FROM contact_numbers n WHERE n.e164 = $2)"
        ))
        .bind(account_id)
        .bind(e164)
        .fetch_all(&mut *tx)
        .await?;
        let number_rows = sqlx::query(
            "SELECT n.contact_id, n.position, n.number, n.e164 FROM contact_numbers n \
             JOIN contacts c ON c.id = n.contact_id WHERE c.account_id = $1 AND c.id IN \
             (SELECT m.contact_id FROM contact_numbers m WHERE m.e164 = $2)",
        )
        .bind(account_id)
        .bind(e164)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        assemble(&rows, &number_rows)
    }

    /// The contact with that id, if any.
    pub async fn get(&self, id: &str) -> Result<Option<Contact>, StoreError> {
        let mut tx = self.store.pool().begin().await?;
        let rows = sqlx::query(&format!("{SELECT_CONTACTS} WHERE c.id = $1"))
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
        let number_rows = sqlx::query(
            "SELECT n.contact_id, n.position, n.number, n.e164 FROM contact_numbers n \
             WHERE n.contact_id = $1",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(assemble(&rows, &number_rows)?.into_iter().next())
    }

    /// The account's contacts (every account's when None), ordered by name
    /// (bytewise; ties by id).
    pub async fn list(&self, account_id: Option<&str>) -> Result<Vec<Contact>, StoreError> {
        let mut tx = self.store.pool().begin().await?;
        let (rows, number_rows) = match account_id {
            Some(account) => {
                let rows = sqlx::query(&format!("{SELECT_CONTACTS} WHERE c.account_id = $1"))
                    .bind(account)
                    .fetch_all(&mut *tx)
                    .await?;
                let numbers = sqlx::query(
                    "SELECT n.contact_id, n.position, n.number, n.e164 FROM contact_numbers n \
                     JOIN contacts c ON c.id = n.contact_id WHERE c.account_id = $1",
                )
                .bind(account)
                .fetch_all(&mut *tx)
                .await?;
                (rows, numbers)
            }
            None => {
                let rows = sqlx::query(SELECT_CONTACTS).fetch_all(&mut *tx).await?;
                let numbers = sqlx::query(
                    "SELECT n.contact_id, n.position, n.number, n.e164 FROM contact_numbers n",
                )
                .fetch_all(&mut *tx)
                .await?;
                (rows, numbers)
            }
        };
        tx.commit().await?;
        assemble(&rows, &number_rows)
    }

    /// Removes the contact and its numbers; Ok(false) when there was none.
    pub async fn remove(&self, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.store.begin_write().await?;
        sqlx::query("DELETE FROM contact_numbers WHERE contact_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let deleted = sqlx::query("DELETE FROM contacts WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(deleted > 0)
    }
}

/// The contact `new` becomes, with a fresh id and its numbers normalised.
fn build(account_id: &str, new: NewContact, region: &str) -> Contact {
    Contact {
        id: Uuid::new_v4().to_string(),
        account_id: account_id.to_owned(),
        name: new.name,
        company: new.company,
        email: new.email,
        numbers: new
            .numbers
            .into_iter()
            .map(|number| ContactNumber {
                e164: phone::normalize(&number, region),
                number,
            })
            .collect(),
        created_at: unix_now(),
    }
}

async fn insert(tx: &mut Transaction<'static, Any>, c: &Contact) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO contacts (id, account_id, name, company, email, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(c.id.as_str())
    .bind(c.account_id.as_str())
    .bind(c.name.as_str())
    .bind(c.company.as_deref())
    .bind(c.email.as_deref())
    .bind(c.created_at)
    .execute(&mut **tx)
    .await?;
    for (position, n) in (0_i64..).zip(&c.numbers) {
        sqlx::query(
            "INSERT INTO contact_numbers (contact_id, position, number, e164) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(c.id.as_str())
        .bind(position)
        .bind(n.number.as_str())
        .bind(n.e164.as_deref())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

fn write_error(e: sqlx::Error, account_id: &str) -> StoreError {
    if is_foreign_key_violation(&e) {
        StoreError::NotFound {
            what: format!("account {account_id:?}"),
        }
    } else {
        e.into()
    }
}

/// Contacts from their rows and their numbers' rows, sorted by name then id.
fn assemble(rows: &[AnyRow], number_rows: &[AnyRow]) -> Result<Vec<Contact>, StoreError> {
    let mut numbers: HashMap<String, Vec<(i64, ContactNumber)>> = HashMap::new();
    for row in number_rows {
        let contact_id: String = row.try_get("contact_id")?;
        let position: i64 = row.try_get("position")?;
        numbers.entry(contact_id).or_default().push((
            position,
            ContactNumber {
                number: row.try_get("number")?,
                e164: row.try_get("e164")?,
            },
        ));
    }
    let mut contacts = Vec::with_capacity(rows.len());
    for row in rows {
        let id: String = row.try_get("id")?;
        let mut list = numbers.remove(&id).unwrap_or_default();
        list.sort_by_key(|(position, _)| *position);
        contacts.push(Contact {
            account_id: row.try_get("account_id")?,
            name: row.try_get("name")?,
            company: row.try_get("company")?,
            email: row.try_get("email")?,
            numbers: list.into_iter().map(|(_, n)| n).collect(),
            created_at: row.try_get("created_at")?,
            id,
        });
    }
    // Sorted in Rust so both backends agree (see `Accounts::list`).
    contacts.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
    Ok(contacts)
}

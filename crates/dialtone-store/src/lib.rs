//! dialtone's persistent state: accounts, SIP users with their digest
//! credentials, and registrations (contact bindings), behind one API over two
//! backends — an embedded SQLite file (the default) or PostgreSQL when the URL
//! starts with `postgres://` or `postgresql://`. Every query and the single set
//! of migrations (`migrations/`, embedded) are written once in SQL both
//! engines accept, run through sqlx's `Any` driver.
//!
//! ```no_run
//! # async fn demo() -> Result<(), dialtone_store::StoreError> {
//! let store = dialtone_store::Store::connect("sqlite://data/dialtone.db").await?;
//! let account = store.accounts().ensure("default").await?;
//! # let _ = account; Ok(()) }
//! ```

mod accounts;
mod error;
mod registrations;
mod store;
mod users;

pub use accounts::{Account, Accounts};
pub use error::StoreError;
pub use registrations::{Binding, BindingChange, Registrations};
pub use store::{Backend, Store};
pub use users::{NewUser, User, Users};

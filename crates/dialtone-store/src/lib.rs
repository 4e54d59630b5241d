//! dialtone's persistent state: accounts, SIP users with their digest
//! credentials, registrations (contact bindings), trunks, numbers (DIDs),
//! outbound routes, personas (AI agents) and call records, behind one API over two
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
mod calls;
mod error;
mod numbers;
mod personas;
mod registrations;
mod routes;
mod store;
mod trunks;
mod users;

pub use accounts::{Account, Accounts};
pub use calls::{CallRecord, Calls};
pub use error::StoreError;
pub use numbers::{Number, Numbers, ParseTargetKindError, TargetKind};
pub use personas::{NewPersona, Persona, PersonaUpdate, Personas};
pub use registrations::{Binding, BindingChange, Registrations};
pub use routes::{Route, Routes};
pub use store::{Backend, Store};
pub use trunks::{NewTrunk, Trunk, Trunks};
pub use users::{NewUser, User, Users};

//! The crate's single error type. Callers match on the domain variants
//! (`NotFound`, `Conflict`, `InUse`, `Invalid`, `OutOfOrder`) to pick a SIP or CLI answer; the
//! wrapped sqlx errors are for logs.

use std::path::PathBuf;

/// Everything a store operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL could not be understood. The URL itself is not
    /// repeated because it may carry a password.
    #[error("invalid database URL: {reason}")]
    InvalidUrl { reason: String },

    /// The directory for the SQLite file could not be created.
    #[error("cannot create database directory {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },

    /// The driver or the database reported an error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),

    /// Applying the embedded migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),

    /// Something the operation refers to does not exist.
    #[error("{what} not found")]
    NotFound { what: String },

    /// Something with the same unique key already exists.
    #[error("{what} already exists")]
    Conflict { what: String },

    /// Something cannot be removed while other rows still refer to it; `by`
    /// says which (e.g. `number(s) ["+15550100"]`). Nothing was changed.
    #[error("{what} is still in use by {by}")]
    InUse { what: String, by: String },

    /// A value the store refuses to keep (a malformed time or date, an
    /// unknown classification, …); `reason` says what is wrong and what is
    /// allowed. Nothing was changed.
    #[error("{reason}")]
    Invalid { reason: String },

    /// A REGISTER arrived with a CSeq not higher than the one stored for the
    /// same Call-ID (RFC 3261 section 10.3 step 7); nothing was changed.
    #[error("out-of-order request: CSeq is not higher than the stored binding's for this Call-ID")]
    OutOfOrder,
}

/// Whether `e` is a unique or primary-key violation, on either backend.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

/// Whether `e` is a foreign-key violation, on either backend.
pub(crate) fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_foreign_key_violation())
}

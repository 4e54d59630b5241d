//! The `Store` handle: it owns the connection pool, turns a database URL into
//! pool settings for the chosen backend (SQLite file, SQLite in memory, or
//! PostgreSQL), applies the embedded migrations on connect, and hands out the
//! per-table repositories. Every query goes through one sqlx `AnyPool`, so
//! the repositories carry a single implementation for both backends.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Any, AnyPool, ConnectOptions, Executor, Transaction};

use crate::writer::{begin_sql, Writers};
use crate::{
    Accounts, ApiKeys, Calls, Contacts, Hours, Leads, Nodes, Numbers, PersonaMcpServers,
    PersonaTools, Personas, Queues, Registrations, Routes, ScheduledCalls, StoreError, Trunks,
    Users,
};

/// How often a migration that lost a race with another process is retried.
const MIGRATE_ATTEMPTS: u32 = 10;

/// Switches a SQLite file to WAL and runs the pending migrations. Two
/// processes opening a fresh SQLite file at once (two CLI commands, or the
/// switch and a CLI) race on both: SQLite has no migration lock, so the
/// loser fails on a table the winner just created, and the journal-mode
/// switch can return SQLITE_BUSY without waiting. Running again sees the
/// winner's work done and does nothing. (PostgreSQL takes an advisory lock
/// around migrations and does not race.)
async fn prepare(pool: &sqlx::AnyPool, target: &Target) -> Result<(), StoreError> {
    let mut attempt = 1;
    loop {
        let result = async {
            if let Target::SqliteFile(path) = target {
                enable_wal(pool, path).await?;
            }
            MIGRATOR.run(pool).await.map_err(StoreError::from)
        }
        .await;
        match result {
            Ok(()) => return Ok(()),
            Err(e) if attempt < MIGRATE_ATTEMPTS => {
                tracing::debug!(attempt, error = %e, "opening raced another process; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(50 * u64::from(attempt))).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The migrations in `crates/dialtone-store/migrations`, embedded at build time.
static MIGRATOR: Migrator = sqlx::migrate!();

/// How long a SQLite writer waits for the write lock before failing with
/// "database is locked". Generous: REGISTER bursts queue instead of failing.
const SQLITE_BUSY_TIMEOUT_MS: u64 = 5_000;
/// WAL lets readers run beside the single writer, so a few connections help.
const SQLITE_FILE_POOL_SIZE: u32 = 8;
const POSTGRES_POOL_SIZE: u32 = 10;
const POSTGRES_ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Which database engine a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// dialtone's persistent state. Cheap to clone: clones share one pool.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// What a running switch keeps in memory ([`crate::write_behind`]);
    /// empty in every other process.
    pub(crate) memory: std::sync::Arc<Memory>,
    /// The connections write-behind batches keep ([`crate::writer`]).
    pub(crate) writers: std::sync::Arc<Writers>,
}

/// The tables one process keeps in memory, once it asks to.
#[derive(Debug, Default)]
pub(crate) struct Memory {
    pub(crate) location: std::sync::OnceLock<crate::location::Location>,
    pub(crate) caches: std::sync::OnceLock<crate::cache::Caches>,
}

/// What a database URL designates.
#[derive(Debug, PartialEq)]
enum Target {
    Postgres,
    SqliteMemory,
    SqliteFile(PathBuf),
}

impl Store {
    /// Opens the database, creating the SQLite file and its parent directory if missing
    /// (URL form `sqlite://data/dialtone.db` = relative path, `sqlite:///abs/path.db`, and
    /// `sqlite::memory:`; a bare path without a scheme is taken as a SQLite file too),
    /// and runs pending migrations. PostgreSQL is chosen by a `postgres://` or
    /// `postgresql://` URL.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();

        let target = parse_target(url)?;
        let (backend, options, pool) = match &target {
            Target::Postgres => {
                let options =
                    AnyConnectOptions::from_str(url).map_err(|e| StoreError::InvalidUrl {
                        reason: e.to_string(),
                    })?;
                // A database that is down fails a query in seconds, not the
                // default 30: a call must not wait that long to end.
                let pool = AnyPoolOptions::new()
                    .max_connections(POSTGRES_POOL_SIZE)
                    .acquire_timeout(POSTGRES_ACQUIRE_TIMEOUT);
                (Backend::Postgres, options, pool)
            }
            Target::SqliteMemory => {
                let options = AnyConnectOptions::from_str("sqlite::memory:")?;
                // Every new connection to `:memory:` is a new, empty database, so the
                // pool keeps exactly one connection forever.
                let pool = AnyPoolOptions::new()
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None);
                (Backend::Sqlite, options, sqlite_pool(pool))
            }
            Target::SqliteFile(path) => {
                create_parent_dir(path)?;
                // The Any driver only takes a URL, so build one that also asks SQLite
                // to create the file (mode=rwc).
                let sqlite = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true);
                let options = AnyConnectOptions::from_url(&sqlite.to_url_lossy())?;
                let pool = AnyPoolOptions::new().max_connections(SQLITE_FILE_POOL_SIZE);
                (Backend::Sqlite, options, sqlite_pool(pool))
            }
        };

        let pool = pool.connect_with(options).await?;
        prepare(&pool, &target).await?;

        match &target {
            Target::SqliteFile(path) => {
                tracing::info!(backend = ?backend, path = %path.display(), "store opened")
            }
            _ => tracing::info!(backend = ?backend, "store opened"),
        }
        Ok(Store {
            pool,
            backend,
            memory: Default::default(),
            // The in-memory database's one connection serves every query.
            writers: std::sync::Arc::new(Writers::new(target != Target::SqliteMemory)),
        })
    }

    /// Which engine this store runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A cheap round trip (SELECT 1) for health checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Tenants.
    pub fn accounts(&self) -> Accounts<'_> {
        Accounts::new(self)
    }

    /// SIP users and their digest credentials.
    pub fn users(&self) -> Users<'_> {
        Users::new(self)
    }

    /// Contact bindings of addresses of record.
    pub fn registrations(&self) -> Registrations<'_> {
        Registrations::new(self)
    }

    /// SIP peers calls go to and come from.
    pub fn trunks(&self) -> Trunks<'_> {
        Trunks::new(self)
    }

    /// Dialled numbers (DIDs) and what they ring.
    pub fn numbers(&self) -> Numbers<'_> {
        Numbers::new(self)
    }

    /// AI agents numbers can ring.
    pub fn personas(&self) -> Personas<'_> {
        Personas::new(self)
    }

    /// Outbound routes to trunks.
    pub fn routes(&self) -> Routes<'_> {
        Routes::new(self)
    }

    /// Call records.
    pub fn calls(&self) -> Calls<'_> {
        Calls::new(self)
    }

    /// The nodes of a cluster sharing this database.
    pub fn nodes(&self) -> Nodes<'_> {
        Nodes::new(self)
    }

    /// Accounts' API keys (stored hashed).
    pub fn api_keys(&self) -> ApiKeys<'_> {
        ApiKeys::new(self)
    }

    /// Personas' office hours and closure days.
    pub fn office_hours(&self) -> Hours<'_> {
        Hours::new(self)
    }

    /// Callers of accounts and the cases recorded about them.
    pub fn leads(&self) -> Leads<'_> {
        Leads::new(self)
    }

    /// Accounts' address books.
    pub fn contacts(&self) -> Contacts<'_> {
        Contacts::new(self)
    }

    /// Call queues and their members.
    pub fn queues(&self) -> Queues<'_> {
        Queues::new(self)
    }

    /// Personas' own tools.
    pub fn persona_tools(&self) -> PersonaTools<'_> {
        PersonaTools::new(self)
    }

    /// Personas' external MCP servers.
    pub fn persona_mcp_servers(&self) -> PersonaMcpServers<'_> {
        PersonaMcpServers::new(self)
    }

    /// Calls to place later.
    pub fn scheduled_calls(&self) -> ScheduledCalls<'_> {
        ScheduledCalls::new(self)
    }

    /// Closes every connection; later calls on any clone fail.
    pub async fn close(&self) {
        self.writers.release();
        self.pool.close().await;
    }

    /// The location table, when this process keeps it.
    pub(crate) fn location(&self) -> Option<&crate::location::Location> {
        self.memory.location.get()
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Starts a transaction that will write.
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Any>, StoreError> {
        Ok(self.pool.begin_with(begin_sql(self.backend)).await?)
    }
}

/// The current time in unix seconds, for `created_at` columns.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Settings every SQLite connection gets when it is opened. An embedded
/// database has no link to lose, so a connection is not pinged each time
/// it is taken from the pool (sqlx's default): the ping is a round trip to
/// the connection's worker thread, as much as a statement.
fn sqlite_pool(pool: AnyPoolOptions) -> AnyPoolOptions {
    pool.test_before_acquire(false)
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                // sqlx's own default is also 5 s, but Any cannot pass connect options
                // except through the URL, so state it rather than rely on a default.
                conn.execute(format!("PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}").as_str())
                    .await?;
                // A multi-row upsert inside a transaction keeps a statement
                // journal; in memory, not a temporary file created and
                // deleted at every commit of a write-behind batch.
                conn.execute("PRAGMA temp_store = MEMORY").await?;
                Ok(())
            })
        })
}

/// Switches the file to write-ahead logging, so readers do not block the writer
/// and vice versa. The mode is stored in the file, so this is done once per
/// connect rather than per connection (changing it needs an exclusive lock).
async fn enable_wal(pool: &AnyPool, path: &Path) -> Result<(), StoreError> {
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode = WAL")
        .fetch_one(pool)
        .await?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), mode = %mode, "SQLite refused WAL journal mode");
    }
    Ok(())
}

fn create_parent_dir(path: &Path) -> Result<(), StoreError> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })
        }
        _ => Ok(()),
    }
}

/// Classifies a database URL. SQLite URLs follow sqlx: the text after
/// `sqlite://` (or `sqlite:`) up to `?` is the file path, so `sqlite://a/b.db`
/// is relative and `sqlite:///a/b.db` absolute.
fn parse_target(url: &str) -> Result<Target, StoreError> {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        return Ok(Target::Postgres);
    }
    let rest = if lower.starts_with("sqlite:") {
        let rest = &url["sqlite:".len()..];
        rest.strip_prefix("//").unwrap_or(rest)
    } else if url.contains("://") {
        return Err(StoreError::InvalidUrl {
            reason: "unsupported scheme (expected sqlite:, postgres:// or postgresql://)".into(),
        });
    } else {
        url
    };

    let (database, params) = rest.split_once('?').unwrap_or((rest, ""));
    if database == ":memory:" || params.split('&').any(|p| p == "mode=memory") {
        return Ok(Target::SqliteMemory);
    }
    if database.is_empty() {
        return Err(StoreError::InvalidUrl {
            reason: "no SQLite file path".into(),
        });
    }
    // Let sqlx decode the path (percent-escapes) the same way it would itself.
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{database}")).map_err(|e| {
        StoreError::InvalidUrl {
            reason: e.to_string(),
        }
    })?;
    Ok(Target::SqliteFile(options.get_filename().to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(url: &str) -> PathBuf {
        match parse_target(url) {
            Ok(Target::SqliteFile(path)) => path,
            other => panic!("{url}: expected a SQLite file, got {other:?}"),
        }
    }

    #[test]
    fn sqlite_url_forms() {
        assert_eq!(
            file("sqlite://data/dialtone.db"),
            Path::new("data/dialtone.db")
        );
        assert_eq!(file("sqlite:///abs/path.db"), Path::new("/abs/path.db"));
        assert_eq!(file("sqlite:rel.db"), Path::new("rel.db"));
        assert_eq!(file("sqlite://data/x.db?mode=rwc"), Path::new("data/x.db"));
        assert_eq!(file("sqlite://data/a%20b.db"), Path::new("data/a b.db"));
        assert_eq!(file("data/plain.db"), Path::new("data/plain.db"));
        assert!(matches!(
            parse_target("sqlite::memory:"),
            Ok(Target::SqliteMemory)
        ));
        assert!(matches!(
            parse_target("sqlite://:memory:"),
            Ok(Target::SqliteMemory)
        ));
        assert!(matches!(
            parse_target("sqlite://?mode=memory"),
            Ok(Target::SqliteMemory)
        ));
    }

    #[test]
    fn postgres_and_bad_urls() {
        for url in [
            "postgres://u@h/db",
            "postgresql://u@h/db",
            "POSTGRES://u@h/db",
        ] {
            assert!(matches!(parse_target(url), Ok(Target::Postgres)), "{url}");
        }
        assert!(matches!(
            parse_target("mysql://h/db"),
            Err(StoreError::InvalidUrl { .. })
        ));
        assert!(matches!(
            parse_target("sqlite://"),
            Err(StoreError::InvalidUrl { .. })
        ));
    }

    #[tokio::test]
    #[allow(clippy::unwrap_used)]
    async fn a_sqlite_file_connection_has_its_pragmas() {
        let dir = std::env::temp_dir().join(format!("dialtone-pragmas-{}", std::process::id()));
        let path = dir.join("p.db");
        let store = Store::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let mut conn = store.pool().acquire().await.unwrap();
        let temp_store: i64 = sqlx::query_scalar("PRAGMA temp_store")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        drop(conn);
        store.pool().close().await;
        let _ = std::fs::remove_dir_all(&dir);
        // 2 is MEMORY.
        assert_eq!(temp_store, 2);
        assert_eq!(u64::try_from(busy).ok(), Some(SQLITE_BUSY_TIMEOUT_MS));
        assert_eq!(journal.to_ascii_lowercase(), "wal");
    }
}

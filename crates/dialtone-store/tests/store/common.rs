//! Test harness: runs one async test body against each backend on a private,
//! throwaway database, and cleans the database up even when the body panics.
//!
//! SQLite: a uniquely named file under `std::env::temp_dir()`, removed after.
//! PostgreSQL: `CREATE DATABASE dialtone_test_<uuid>` on the server named by
//! `DIALTONE_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`),
//! dropped `WITH (FORCE)` after. If that server is unreachable the test fails
//! when `CI=true` and otherwise prints a SKIPPED notice and returns.

use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use dialtone_store::Store;
use sqlx::{Connection, Executor, PgConnection};
use uuid::Uuid;

pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// What a test body gets: the open store and the URL it came from (to reopen it).
pub struct TestDb {
    pub url: String,
    pub store: Store,
}

impl TestDb {
    /// A second, independent connection to the same database (runs migrations again).
    pub async fn reopen(&self) -> Store {
        Store::connect(&self.url).await.expect("reopen the store")
    }
}

/// Generates `sqlite::<name>` and `postgres::<name>` tests for each named
/// `async fn <name>(db: TestDb)` in the invoking module.
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    $crate::common::run_sqlite(super::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    $crate::common::run_postgres(super::$name).await;
                }
            )*
        }
    };
}

/// Like `backend_tests!`, for `async fn <name>(url: String)` bodies that get
/// an empty database (no migrations run) to set up themselves.
macro_rules! empty_backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    $crate::common::run_sqlite_empty(super::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    $crate::common::run_postgres_empty(super::$name).await;
                }
            )*
        }
    };
}

/// A unique path under the temp dir; nothing is created.
pub fn temp_path(suffix: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "dialtone-store-test-{}{suffix}",
        Uuid::new_v4().simple()
    ))
}

/// Runs `body` on its own task so a panic in it is caught, then re-raises it
/// after cleanup.
async fn run_then_cleanup<B, Fut, C, CFut>(db: TestDb, body: B, cleanup: C)
where
    B: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
    C: FnOnce() -> CFut,
    CFut: Future<Output = ()>,
{
    let store = db.store.clone();
    let outcome = tokio::spawn(body(db)).await;
    store.close().await;
    cleanup().await;
    reraise(outcome);
}

/// Re-raises a panic of the spawned test body.
fn reraise(outcome: Result<(), tokio::task::JoinError>) {
    if let Err(e) = outcome {
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
        panic!("test task failed: {e}");
    }
}

fn remove_sqlite_files(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.to_path_buf().into_os_string();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
}

/// Runs `body` with the URL of a SQLite file that does not exist yet.
pub async fn run_sqlite_empty<B, Fut>(body: B)
where
    B: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let path = temp_path(".db");
    let url = format!("sqlite://{}", path.display());
    let outcome = tokio::spawn(body(url)).await;
    remove_sqlite_files(&path);
    reraise(outcome);
}

/// Runs `body` with the URL of a freshly created, empty PostgreSQL database.
pub async fn run_postgres_empty<B, Fut>(body: B)
where
    B: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let base = std::env::var("DIALTONE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
    let Some(mut admin) = connect_admin(&base).await else {
        return;
    };
    let name = format!("dialtone_test_{}", Uuid::new_v4().simple());
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create the test database");
    let outcome = tokio::spawn(body(with_database(&base, &name))).await;
    drop_database(&mut admin, &name).await;
    let _ = admin.close().await;
    reraise(outcome);
}

pub async fn run_sqlite<B, Fut>(body: B)
where
    B: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let path = temp_path(".db");
    let url = format!("sqlite://{}", path.display());
    let store = Store::connect(&url).await.expect("open the SQLite store");
    let db = TestDb { url, store };
    run_then_cleanup(db, body, || async move { remove_sqlite_files(&path) }).await;
}

pub async fn run_postgres<B, Fut>(body: B)
where
    B: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let base = std::env::var("DIALTONE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
    let Some(mut admin) = connect_admin(&base).await else {
        return;
    };

    let name = format!("dialtone_test_{}", Uuid::new_v4().simple());
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create the test database");
    let url = with_database(&base, &name);
    let store = match Store::connect(&url).await {
        Ok(store) => store,
        Err(e) => {
            drop_database(&mut admin, &name).await;
            panic!("open the PostgreSQL store: {e}");
        }
    };
    let db = TestDb { url, store };
    run_then_cleanup(db, body, || async move {
        drop_database(&mut admin, &name).await;
        let _ = admin.close().await;
    })
    .await;
}

/// Connects to the base PostgreSQL URL, or applies the unreachable-server rule:
/// fail under CI, otherwise say loudly that the test is skipped.
async fn connect_admin(base: &str) -> Option<PgConnection> {
    let error =
        match tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(base)).await {
            Ok(Ok(conn)) => return Some(conn),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "timed out after 5 s".to_owned(),
        };
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "PostgreSQL unreachable at {base} ({error}); CI=true, so PostgreSQL tests must run. \
             Set DIALTONE_TEST_POSTGRES_URL or start PostgreSQL."
        );
    }
    // Written to the real stderr, not through eprintln!, which libtest
    // captures and hides for passing tests: a skip must never be silent.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: PostgreSQL unreachable at {base} ({error}); \
         set DIALTONE_TEST_POSTGRES_URL or start PostgreSQL to run this test"
    );
    None
}

async fn drop_database(admin: &mut PgConnection, name: &str) {
    admin
        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await
        .expect("drop the test database");
}

/// `base` with its database (the URL path) replaced by `name`, query kept.
pub fn with_database(base: &str, name: &str) -> String {
    let (main, query) = match base.split_once('?') {
        Some((main, query)) => (main, Some(query)),
        None => (base, None),
    };
    let authority = main.find("://").map_or(0, |i| i + 3);
    let path = main[authority..]
        .find('/')
        .map_or(main.len(), |i| authority + i);
    match query {
        Some(query) => format!("{}/{name}?{query}", &main[..path]),
        None => format!("{}/{name}", &main[..path]),
    }
}

#[test]
fn with_database_replaces_the_path() {
    assert_eq!(
        with_database("postgres://u@h:1/test", "x"),
        "postgres://u@h:1/x"
    );
    assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
    assert_eq!(
        with_database("postgresql://u:p@h/test?sslmode=disable", "x"),
        "postgresql://u:p@h/x?sslmode=disable"
    );
}

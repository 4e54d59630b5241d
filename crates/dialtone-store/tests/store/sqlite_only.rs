//! What only SQLite has: URL forms that create the file and its directories,
//! WAL journal mode, and the in-memory database.

use dialtone_store::{Backend, BindingChange, Store};

use crate::common::temp_path;

const NOW: i64 = 1_700_000_000;

fn upsert(contact: String) -> BindingChange {
    BindingChange::Upsert {
        contact,
        expires_at: NOW + 60,
        q: None,
        source: "udp:127.0.0.1:5062".to_owned(),
        user_agent: None,
        instance: None,
        path: None,
    }
}

#[tokio::test]
async fn creates_missing_parent_directories_and_uses_wal() {
    let root = temp_path("-dir");
    let file = root.join("nested").join("deeper").join("dialtone.db");
    let url = format!("sqlite://{}", file.display());
    assert!(url.starts_with("sqlite:///"), "absolute form: {url}");

    let outcome = tokio::spawn({
        let file = file.clone();
        async move {
            let store = Store::connect(&url)
                .await
                .expect("connect creates dirs and file");
            assert_eq!(store.backend(), Backend::Sqlite);
            assert!(file.is_file(), "database file created");
            store.accounts().ensure("default").await.expect("write");
            // In WAL mode committed writes sit in the -wal file while connections are open;
            // the rollback journal would have deleted its -journal file instead.
            let mut wal = file.clone().into_os_string();
            wal.push("-wal");
            assert!(std::path::Path::new(&wal).is_file(), "WAL journal in use");
            store.close().await;
        }
    })
    .await;
    let _ = std::fs::remove_dir_all(&root);
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_memory_database_works_with_concurrent_writers() {
    let store = Store::connect("sqlite::memory:").await.expect("connect");
    assert_eq!(store.backend(), Backend::Sqlite);
    let account = store.accounts().ensure("default").await.expect("account");
    assert_eq!(store.accounts().list().await.expect("list"), vec![account]);

    // One pooled connection holds the whole database; concurrent users queue on it.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let change = upsert(format!("sip:1001@10.0.0.{i}"));
            store
                .registrations()
                .apply("1001", &format!("call-{i}"), 1, &[change], NOW)
                .await
        }));
    }
    for task in tasks {
        task.await.expect("join").expect("apply");
    }
    assert_eq!(
        store
            .registrations()
            .list("1001", NOW)
            .await
            .expect("list")
            .len(),
        20
    );

    // Another memory store is a separate, empty database.
    let other = Store::connect("sqlite::memory:").await.expect("connect");
    assert!(other.accounts().list().await.expect("list").is_empty());
    store.close().await;
    other.close().await;
}

#[tokio::test]
async fn rejects_unsupported_urls() {
    let err = Store::connect("mysql://root@localhost/db")
        .await
        .expect_err("mysql is not supported");
    assert!(
        matches!(err, dialtone_store::StoreError::InvalidUrl { .. }),
        "{err}"
    );
    assert!(
        !err.to_string().contains("root@"),
        "the URL is not echoed: {err}"
    );
}

/// Several processes (the switch and CLI commands) may open a fresh file at
/// the same moment; each must come up with the schema in place, none may
/// fail on the other's migration or journal-mode switch.
#[tokio::test]
async fn concurrent_first_opens_of_one_file_all_succeed() {
    for round in 0..5 {
        let file = temp_path(&format!("-race{round}.db"));
        let url = format!("sqlite://{}", file.display());
        let opens: Vec<_> = (0..6)
            .map(|i| {
                let url = url.clone();
                tokio::spawn(async move {
                    let store = Store::connect(&url).await?;
                    store.accounts().ensure(&format!("acct{i}")).await?;
                    store.close().await;
                    Ok::<_, dialtone_store::StoreError>(())
                })
            })
            .collect();
        for o in opens {
            o.await
                .expect("task")
                .expect("concurrent open of a fresh file");
        }
        let store = Store::connect(&url).await.expect("reopen");
        assert_eq!(store.accounts().list().await.expect("list").len(), 6);
        store.close().await;
        for suffix in ["", "-wal", "-shm"] {
            let mut p = file.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

//! The location table kept in memory and written behind (issue 13): a
//! store that keeps it answers from memory, another process (a reopened
//! store) sees the bindings only once they are written, `flush` writes
//! everything, a restart loads them back; the registrar's user cache
//! follows a change made by another process through the `users`
//! generation, and a user removed elsewhere loses its bindings; the
//! number and trunk caches follow theirs.

use std::time::Duration;

use dialtone_store::{BindingChange, NewTrunk, SrtpPolicy, TargetKind};
use tokio::sync::watch;

use crate::common::TestDb;
use crate::queues::setup;

backend_tests!(
    bindings_are_written_behind_and_loaded_back,
    the_user_cache_follows_other_processes,
    the_number_and_trunk_caches_follow_changes,
);

fn upsert(contact: &str, expires_at: i64) -> BindingChange {
    BindingChange::Upsert {
        contact: contact.into(),
        expires_at,
        q: Some(0.5),
        source: "udp:127.0.0.1:5062".into(),
        user_agent: Some("phone".into()),
        instance: None,
        path: Some("<sip:edge;lr>".into()),
    }
}

/// The switch's write-behind task, as `run` starts it.
struct Writer {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Writer {
    fn start(store: &dialtone_store::Store) -> Writer {
        let (stop, stopped) = watch::channel(false);
        let s = store.clone();
        let task = tokio::spawn(async move { s.run_write_behind(stopped).await });
        Writer { stop, task }
    }

    async fn stop(self) {
        self.stop.send(true).expect("stop");
        self.task.await.expect("writer");
    }
}

async fn wait_for<F: std::future::Future<Output = bool>>(what: &str, mut f: impl FnMut() -> F) {
    for _ in 0..200 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn bindings_are_written_behind_and_loaded_back(db: TestDb) {
    let now = 1_000_000;
    let far = i64::MAX / 2;
    let switch = db.reopen().await;
    switch.keep_in_memory().await.expect("keep");
    let other = db.reopen().await;
    for (i, aor) in ["alice", "bob", "carol"].iter().enumerate() {
        let b = switch
            .registrations()
            .apply(
                aor,
                "c1",
                1,
                &[upsert(&format!("sip:{aor}@h{i}"), far)],
                now,
            )
            .await
            .expect("apply");
        assert_eq!(b.len(), 1);
    }
    // Not running the writer yet: only the switch sees them.
    assert_eq!(
        switch
            .registrations()
            .list_all(now)
            .await
            .expect("list")
            .len(),
        3
    );
    assert!(other
        .registrations()
        .list_all(now)
        .await
        .expect("list")
        .is_empty());
    assert_eq!(switch.write_behind_stats().expect("kept").pending, 3);

    let writer = Writer::start(&switch);
    wait_for("the batch", || async {
        other
            .registrations()
            .list_all(now)
            .await
            .expect("list")
            .len()
            == 3
    })
    .await;
    let written = other.registrations().list("bob", now).await.expect("bob");
    assert_eq!(
        written,
        switch.registrations().list("bob", now).await.expect("bob")
    );
    let stats = switch.write_behind_stats().expect("kept");
    assert_eq!((stats.pending, stats.written), (0, 3), "{stats:?}");

    // A removal is written as a deletion; the ordering rule still holds.
    switch
        .registrations()
        .apply("alice", "c1", 2, &[BindingChange::RemoveAll], now)
        .await
        .expect("remove");
    assert!(switch
        .registrations()
        .apply("bob", "c1", 1, &[BindingChange::RemoveAll], now)
        .await
        .is_err());
    wait_for("the deletion", || async {
        other
            .registrations()
            .list("alice", now)
            .await
            .expect("list")
            .is_empty()
    })
    .await;
    writer.stop().await;

    // Shutdown's flush writes what changed after the writer stopped.
    switch
        .registrations()
        .apply("dave", "c9", 1, &[upsert("sip:dave@h", far)], now)
        .await
        .expect("apply");
    assert_eq!(
        other
            .registrations()
            .list("dave", now)
            .await
            .expect("list")
            .len(),
        0
    );
    switch.flush_write_behind(Duration::from_secs(2)).await;
    assert_eq!(
        other
            .registrations()
            .list("dave", now)
            .await
            .expect("list")
            .len(),
        1
    );

    // A restarted switch starts from what the database holds.
    let restarted = db.reopen().await;
    restarted.keep_in_memory().await.expect("keep");
    let aors: Vec<String> = restarted
        .registrations()
        .list_all(now)
        .await
        .expect("list")
        .into_iter()
        .map(|b| b.aor)
        .collect();
    assert_eq!(aors, ["bob", "carol", "dave"]);
}

async fn the_user_cache_follows_other_processes(db: TestDb) {
    let now = 1_000_000;
    let switch = db.reopen().await;
    setup(&switch, &["alice", "bob"]).await;
    switch.keep_in_memory().await.expect("keep");
    let cli = db.reopen().await;
    let writer = Writer::start(&switch);
    let cached = switch.users().get_cached("alice").await.expect("get");
    assert!(!cached.expect("alice").dnd);
    switch
        .registrations()
        .apply("bob", "c1", 1, &[upsert("sip:bob@h", i64::MAX / 2)], now)
        .await
        .expect("apply");

    // Another process changes alice and removes bob.
    assert!(cli.users().set_dnd("alice", true).await.expect("dnd"));
    assert!(cli.users().remove("bob").await.expect("remove"));
    wait_for("the cache to follow", || async {
        switch
            .users()
            .get_cached("alice")
            .await
            .expect("get")
            .is_some_and(|u| u.dnd)
    })
    .await;
    wait_for("bob's bindings to go", || async {
        switch
            .registrations()
            .list("bob", now)
            .await
            .expect("list")
            .is_empty()
    })
    .await;
    assert!(switch
        .users()
        .get_cached("bob")
        .await
        .expect("get")
        .is_none());

    // A change made in this process is seen at once.
    assert!(switch.users().set_dnd("alice", false).await.expect("dnd"));
    let alice = switch.users().get_cached("alice").await.expect("get");
    assert!(!alice.expect("alice").dnd);
    writer.stop().await;
}

fn trunk<'a>(ips: &'a [String]) -> NewTrunk<'a> {
    NewTrunk {
        name: "carrier",
        host: Some("sip.example.net"),
        transport: "udp",
        inbound_ips: ips,
        username: None,
        password: None,
        register: false,
    }
}

async fn the_number_and_trunk_caches_follow_changes(db: TestDb) {
    let switch = db.reopen().await;
    let first = ["192.0.2.1".to_owned()];
    switch.trunks().create(trunk(&first)).await.expect("trunk");
    switch
        .numbers()
        .create("+15551230001", TargetKind::User, "alice", false)
        .await
        .expect("number");
    switch.keep_in_memory().await.expect("keep");
    let cli = db.reopen().await;
    let writer = Writer::start(&switch);
    let target = |n: Option<dialtone_store::Number>| n.map(|n| n.target).unwrap_or_default();
    // Cached in both forms dialled.
    for dialled in ["+15551230001", "15551230001"] {
        let n = switch
            .numbers()
            .lookup_cached(dialled)
            .await
            .expect("lookup");
        assert_eq!(target(n), "alice");
    }
    let from_first = |t: &dialtone_store::Trunk| t.inbound_ips == first;
    let t = switch.trunks().find_cached(from_first).await.expect("find");
    assert!(t.is_some());

    // Another process repoints the number and moves the trunk.
    assert!(cli.numbers().remove("+15551230001").await.expect("remove"));
    cli.numbers()
        .create("+15551230001", TargetKind::User, "bob", false)
        .await
        .expect("number");
    let second = ["192.0.2.2".to_owned()];
    cli.trunks().upsert(trunk(&second)).await.expect("upsert");
    wait_for("the number cache to follow", || async {
        let n = switch
            .numbers()
            .lookup_cached("15551230001")
            .await
            .expect("lookup");
        target(n) == "bob"
    })
    .await;
    // A trunk added elsewhere is found at once, as a miss reads again.
    let other = ["192.0.2.9".to_owned()];
    let mut added = trunk(&other);
    added.name = "backup";
    cli.trunks().create(added).await.expect("trunk");
    let t = switch.trunks().get_cached("backup").await.expect("get");
    assert_eq!(t.map(|t| t.inbound_ips), Some(other.to_vec()));
    wait_for("the trunk cache to follow", || async {
        let t = switch.trunks().get_cached("carrier").await.expect("get");
        t.is_some_and(|t| t.inbound_ips == second)
    })
    .await;

    // Changes made in this process are seen at once: the exact form of
    // a number wins over the other form cached before it existed.
    switch
        .numbers()
        .create("15551230001", TargetKind::User, "carol", false)
        .await
        .expect("number");
    let n = switch
        .numbers()
        .lookup_cached("15551230001")
        .await
        .expect("lookup");
    assert_eq!(target(n), "carol");
    assert!(switch
        .trunks()
        .set_srtp("carrier", Some(SrtpPolicy::Required))
        .await
        .expect("srtp"));
    let t = switch.trunks().get_cached("carrier").await.expect("get");
    assert_eq!(t.and_then(|t| t.srtp), Some(SrtpPolicy::Required));
    assert!(switch
        .numbers()
        .remove("15551230001")
        .await
        .expect("remove"));
    let n = switch
        .numbers()
        .lookup_cached("15551230001")
        .await
        .expect("lookup");
    assert_eq!(target(n), "bob");
    writer.stop().await;

    // The database away: what is cached still answers, and a source no
    // cached trunk has is no trunk's (not an error).
    switch.close().await;
    let from_second = |t: &dialtone_store::Trunk| t.inbound_ips == second;
    let t = switch
        .trunks()
        .find_cached(from_second)
        .await
        .expect("cached");
    assert_eq!(t.map(|t| t.name), Some("carrier".to_string()));
    let nobody = |t: &dialtone_store::Trunk| t.inbound_ips.is_empty();
    assert!(switch
        .trunks()
        .find_cached(nobody)
        .await
        .expect("a miss")
        .is_none());
    let n = switch
        .numbers()
        .lookup_cached("15551230001")
        .await
        .expect("cached");
    assert_eq!(target(n), "bob");
}

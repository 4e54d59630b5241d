//! Nodes of a cluster: join, heartbeat, listing with live call counts, and
//! a survivor closing the calls of a node whose heartbeat stopped.

use dialtone_store::NODE_LOST_CAUSE;

use crate::calls::call;
use crate::common::TestDb;

backend_tests!(
    join_heartbeat_and_list,
    a_dead_nodes_open_calls_are_closed_once,
);

const T0: i64 = 1_700_000_000_000;

async fn join_heartbeat_and_list(db: TestDb) {
    let nodes = db.store.nodes();
    assert!(nodes.list().await.expect("list").is_empty());
    assert!(
        !nodes.heartbeat("a", T0).await.expect("heartbeat"),
        "no row yet"
    );
    nodes
        .join("b", "udp:127.0.0.3:5060", "http://127.0.0.3:8080", T0)
        .await
        .expect("join b");
    nodes
        .join("a", "udp:127.0.0.2:5060", "http://127.0.0.2:8080", T0)
        .await
        .expect("join a");
    assert!(nodes.heartbeat("a", T0 + 500).await.expect("heartbeat"));
    db.store
        .calls()
        .start(&call("c1", "a", T0))
        .await
        .expect("call");

    let all = nodes.list().await.expect("list");
    assert_eq!(
        all.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert_eq!((all[0].heartbeat_at, all[0].live_calls), (T0 + 500, 1));
    assert_eq!((all[1].heartbeat_at, all[1].live_calls), (T0, 0));
    assert!(all[0].alive(T0 + 1000, 3000));
    assert!(!all[1].alive(T0 + 3000, 3000));

    // A restart keeps the id and takes the new addresses.
    nodes
        .join(
            "b",
            "udp:127.0.0.9:5060",
            "http://127.0.0.9:8080",
            T0 + 9000,
        )
        .await
        .expect("rejoin");
    let b = nodes.get("b").await.expect("get").expect("b");
    assert_eq!(
        (b.sip.as_str(), b.started_at, b.heartbeat_at),
        ("udp:127.0.0.9:5060", T0 + 9000, T0 + 9000)
    );
    assert_eq!(nodes.get("nobody").await.expect("get"), None);
}

async fn a_dead_nodes_open_calls_are_closed_once(db: TestDb) {
    let nodes = db.store.nodes();
    let calls = db.store.calls();
    nodes
        .join("a", "udp:127.0.0.2:5060", "http://a", T0)
        .await
        .expect("join a");
    nodes
        .join("b", "udp:127.0.0.3:5060", "http://b", T0)
        .await
        .expect("join b");
    calls.start(&call("a-live", "a", T0)).await.expect("call");
    calls.start(&call("b-live", "b", T0)).await.expect("call");
    let mut done = call("a-done", "a", T0);
    calls.start(&done).await.expect("call");
    done.ended_at = Some(T0 + 100);
    done.outcome = Some("answered".into());
    done.hangup_cause = Some("BYE".into());
    calls.update(&done).await.expect("end");

    // b beats, a stops: at T0 + 4000, a is dead for b (3 s), b alive.
    nodes.heartbeat("b", T0 + 3500).await.expect("beat");
    let closed = nodes
        .close_calls_of_dead("b", T0 + 4000, 3000)
        .await
        .expect("reap");
    assert_eq!(closed, vec![("a".to_string(), 1)]);
    let a_live = calls.get("a-live").await.expect("get").expect("row");
    assert_eq!(a_live.ended_at, Some(T0 + 4000));
    assert_eq!(a_live.hangup_cause.as_deref(), Some(NODE_LOST_CAUSE));
    assert_eq!(a_live.outcome.as_deref(), Some("failed"));
    let kept = calls.get("a-done").await.expect("get").expect("row");
    assert_eq!(
        (kept.outcome.as_deref(), kept.hangup_cause.as_deref()),
        (Some("answered"), Some("BYE"))
    );
    assert_eq!(
        calls
            .get("b-live")
            .await
            .expect("get")
            .expect("row")
            .ended_at,
        None
    );
    // A second survivor finds nothing left to close.
    assert!(nodes
        .close_calls_of_dead("c", T0 + 5000, 3000)
        .await
        .expect("reap")
        .is_empty());
    // Later b is dead too: a (back) closes b's call, never its own rows.
    let closed = nodes
        .close_calls_of_dead("a", T0 + 9000, 3000)
        .await
        .expect("reap");
    assert_eq!(closed, vec![("b".to_string(), 1)]);
}

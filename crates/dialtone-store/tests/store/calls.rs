//! Call records: start → update → get round trip of every field, list order
//! and limit, closing a restarted node's orphans, counting active calls, the
//! recording path and the call's account, and the batched upsert.

use dialtone_store::{CallRecord, StoreError};

use crate::common::TestDb;

backend_tests!(
    start_update_get_round_trip,
    start_conflicts_and_update_of_unknown_is_not_found,
    list_is_newest_first_with_limit,
    close_orphans_touches_only_that_nodes_open_rows,
    count_active_counts_open_calls_on_every_node,
    recording_path_is_written_at_start_and_by_update,
    account_id_is_written_at_start_and_by_update,
    upsert_inserts_then_overwrites_but_keeps_the_start,
    upsert_all_writes_a_batch_of_any_size_and_the_later_version_wins,
);

/// Unix milliseconds.
const T0: i64 = 1_700_000_000_000;

pub fn call(id: &str, node: &str, started_at: i64) -> CallRecord {
    CallRecord {
        id: id.to_owned(),
        node: node.to_owned(),
        direction: "internal".to_owned(),
        from_uri: "sip:1001@dialtone".to_owned(),
        to_uri: "sip:1002@dialtone".to_owned(),
        caller: "1001".to_owned(),
        callee: "1002".to_owned(),
        started_at,
        answered_at: None,
        ended_at: None,
        outcome: None,
        hangup_cause: None,
        hangup_side: None,
        codecs: None,
        legs: "[]".to_owned(),
        stats: None,
        recording: None,
        persona: None,
        transcript: None,
        account_id: None,
    }
}

async fn start_update_get_round_trip(db: TestDb) {
    let calls = db.store.calls();
    let id = "5b1f6a5e-8a51-4c56-9d62-0d8f4b1f0001";
    assert!(calls.get(id).await.expect("get").is_none());

    let started = CallRecord {
        direction: "inbound".to_owned(),
        from_uri: "sip:+15550100@carrier.example;user=phone".to_owned(),
        to_uri: "sip:+15550199@dialtone".to_owned(),
        caller: "+15550100".to_owned(),
        callee: "+15550199".to_owned(),
        legs: r#"[{"leg":"a","call_id":"abc@h","tag":"x"}]"#.to_owned(),
        ..call(id, "node-1", T0 + 1)
    };
    calls.start(&started).await.expect("start");
    assert_eq!(calls.get(id).await.expect("get"), Some(started.clone()));
    assert_eq!(calls.count_active().await.expect("count"), 1);

    // Answered.
    let answered = CallRecord {
        answered_at: Some(T0 + 2_500),
        codecs: Some("PCMU/8000".to_owned()),
        legs: r#"[{"leg":"a"},{"leg":"b","to":"sip:1001@10.0.0.1"}]"#.to_owned(),
        ..started.clone()
    };
    calls.update(&answered).await.expect("answer");
    assert_eq!(calls.get(id).await.expect("get"), Some(answered.clone()));

    // Transferred, then ended: every mutable field changes, text with quotes,
    // newlines and non-ASCII included.
    let ended = CallRecord {
        direction: "outbound".to_owned(),
        from_uri: "sip:1001@dialtone".to_owned(),
        to_uri: "sip:+4930123@carrier.example".to_owned(),
        caller: "Zoë \"1001\"".to_owned(),
        callee: "+4930123".to_owned(),
        answered_at: Some(T0 + 3_000),
        ended_at: Some(T0 + 65_432),
        outcome: Some("answered".to_owned()),
        hangup_cause: Some("BYE".to_owned()),
        hangup_side: Some("callee".to_owned()),
        codecs: Some("PCMA/8000".to_owned()),
        legs: "[\n {\"leg\": \"c\"}\n]".to_owned(),
        stats: Some(r#"{"a":{"rx":3210,"tx":3208},"b":{"rx":3208,"tx":3210}}"#.to_owned()),
        recording: Some("/var/lib/dialtone/recordings/2023-11-14/Zoë 'a'.wav".to_owned()),
        ..answered.clone()
    };
    calls.update(&ended).await.expect("end");
    assert_eq!(calls.get(id).await.expect("get"), Some(ended.clone()));
    assert_eq!(calls.count_active().await.expect("count"), 0);

    // Back to None everywhere it is allowed (e.g. a correction).
    let cleared = CallRecord {
        legs: String::new(),
        ..call(id, "node-1", T0 + 1)
    };
    calls.update(&cleared).await.expect("clear");
    assert_eq!(calls.get(id).await.expect("get"), Some(cleared.clone()));

    // id, node and started_at are fixed at start: update does not move them.
    let moved = CallRecord {
        node: "node-2".to_owned(),
        started_at: T0 + 999,
        outcome: Some("failed".to_owned()),
        ..cleared.clone()
    };
    calls.update(&moved).await.expect("update");
    let got = calls.get(id).await.expect("get").expect("exists");
    assert_eq!((got.node.as_str(), got.started_at), ("node-1", T0 + 1));
    assert_eq!(got.outcome.as_deref(), Some("failed"));

    // Extreme times survive (BIGINT milliseconds).
    let extreme = CallRecord {
        answered_at: Some(i64::MAX),
        ended_at: Some(0),
        ..call("extreme", "node-1", i64::MIN)
    };
    calls.start(&extreme).await.expect("start extreme");
    assert_eq!(calls.get("extreme").await.expect("get"), Some(extreme));
}

async fn start_conflicts_and_update_of_unknown_is_not_found(db: TestDb) {
    let calls = db.store.calls();
    let first = call("c1", "node-1", T0);
    calls.start(&first).await.expect("start");
    match calls.start(&call("c1", "node-2", T0 + 5)).await {
        Err(StoreError::Conflict { what }) => assert!(what.contains("c1"), "{what}"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(calls.get("c1").await.expect("get"), Some(first));

    match calls.update(&call("c2", "node-1", T0)).await {
        Err(StoreError::NotFound { what }) => assert!(what.contains("c2"), "{what}"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(calls.get("c2").await.expect("get").is_none(), "not created");
}

async fn list_is_newest_first_with_limit(db: TestDb) {
    let calls = db.store.calls();
    assert!(calls.list(10).await.expect("list").is_empty());

    // Started out of order, two pairs in the same millisecond.
    let starts = [
        ("c-3", T0 + 3),
        ("c-1", T0 + 1),
        ("c-5b", T0 + 5),
        ("c-4", T0 + 4),
        ("c-5a", T0 + 5),
        ("c-2", T0 + 2),
        ("c-0a", T0),
        ("c-0b", T0),
    ];
    for (id, at) in starts {
        calls.start(&call(id, "node-1", at)).await.expect("start");
    }
    // One ended call: list shows ended and active alike.
    let mut ended = call("c-1", "node-1", T0 + 1);
    ended.ended_at = Some(T0 + 10);
    ended.outcome = Some("busy".to_owned());
    calls.update(&ended).await.expect("end");

    let ids = |list: Vec<CallRecord>| list.into_iter().map(|c| c.id).collect::<Vec<_>>();
    let all = ["c-5b", "c-5a", "c-4", "c-3", "c-2", "c-1", "c-0b", "c-0a"];
    assert_eq!(ids(calls.list(100).await.expect("list")), all);
    assert_eq!(ids(calls.list(8).await.expect("list")), all);
    for limit in 1..8u32 {
        assert_eq!(
            ids(calls.list(limit).await.expect("list")),
            all[..limit as usize],
            "limit {limit}"
        );
    }
    assert!(calls.list(0).await.expect("list 0").is_empty());
    assert_eq!(calls.list(u32::MAX).await.expect("list max").len(), 8);
    let listed = calls.list(6).await.expect("list");
    assert_eq!(listed[5], ended, "full records");
}

async fn close_orphans_touches_only_that_nodes_open_rows(db: TestDb) {
    let calls = db.store.calls();
    let open_a1 = CallRecord {
        answered_at: Some(T0 + 100),
        codecs: Some("PCMU/8000".to_owned()),
        ..call("a1", "node-a", T0)
    };
    let open_a2 = call("a2", "node-a", T0 + 1);
    let ended_a = CallRecord {
        ended_at: Some(T0 + 50),
        outcome: Some("no_answer".to_owned()),
        hangup_cause: Some("480 Temporarily Unavailable".to_owned()),
        hangup_side: Some("callee".to_owned()),
        ..call("a3", "node-a", T0 + 2)
    };
    let open_b = call("b1", "node-b", T0 + 3);
    let ended_b = CallRecord {
        ended_at: Some(T0 + 60),
        outcome: Some("cancelled".to_owned()),
        ..call("b2", "node-b", T0 + 4)
    };
    for rec in [&open_a1, &open_a2, &ended_a, &open_b, &ended_b] {
        calls.start(rec).await.expect("start");
    }
    assert_eq!(calls.count_active().await.expect("count"), 3);

    let now = T0 + 1_000_000;
    assert_eq!(calls.close_orphans("node-a", now).await.expect("close"), 2);
    for open in [&open_a1, &open_a2] {
        let expected = CallRecord {
            ended_at: Some(now),
            outcome: Some("failed".to_owned()),
            hangup_cause: Some("node restart".to_owned()),
            hangup_side: Some("system".to_owned()),
            ..open.clone()
        };
        assert_eq!(calls.get(&open.id).await.expect("get"), Some(expected));
    }
    assert_eq!(
        calls.get("a3").await.expect("get"),
        Some(ended_a),
        "ended: untouched"
    );
    assert_eq!(
        calls.get("b1").await.expect("get"),
        Some(open_b.clone()),
        "other node"
    );
    assert_eq!(calls.get("b2").await.expect("get"), Some(ended_b));
    assert_eq!(calls.count_active().await.expect("count"), 1);

    assert_eq!(
        calls.close_orphans("node-a", now + 1).await.expect("again"),
        0,
        "nothing left open"
    );
    assert_eq!(
        calls
            .close_orphans("node-c", now)
            .await
            .expect("unknown node"),
        0
    );
    assert_eq!(calls.close_orphans("node-b", now).await.expect("node b"), 1);
    assert_eq!(calls.count_active().await.expect("count"), 0);
}

async fn count_active_counts_open_calls_on_every_node(db: TestDb) {
    let calls = db.store.calls();
    assert_eq!(calls.count_active().await.expect("count"), 0);
    for i in 0..7 {
        let node = if i % 2 == 0 { "node-a" } else { "node-b" };
        calls
            .start(&call(&format!("c{i}"), node, T0 + i))
            .await
            .expect("start");
    }
    assert_eq!(calls.count_active().await.expect("count"), 7);

    // Answering keeps a call active; ending it does not.
    let mut c0 = call("c0", "node-a", T0);
    c0.answered_at = Some(T0 + 10);
    calls.update(&c0).await.expect("answer");
    assert_eq!(calls.count_active().await.expect("count"), 7);
    c0.ended_at = Some(T0 + 20);
    calls.update(&c0).await.expect("end");
    let mut c1 = call("c1", "node-b", T0 + 1);
    c1.ended_at = Some(T0 + 30);
    calls.update(&c1).await.expect("end");
    assert_eq!(calls.count_active().await.expect("count"), 5);

    // A call started already ended (e.g. rejected at once) never counts.
    let mut rejected = call("r", "node-a", T0 + 50);
    rejected.ended_at = Some(T0 + 50);
    rejected.outcome = Some("rejected".to_owned());
    calls.start(&rejected).await.expect("start");
    assert_eq!(calls.count_active().await.expect("count"), 5);
}

async fn recording_path_is_written_at_start_and_by_update(db: TestDb) {
    let calls = db.store.calls();
    // Known when the call starts (the number or route says record).
    let started = CallRecord {
        recording: Some("recordings/rec-1.wav".to_owned()),
        ..call("rec-1", "node-1", T0)
    };
    calls.start(&started).await.expect("start");
    assert_eq!(
        calls.get("rec-1").await.expect("get"),
        Some(started.clone())
    );

    // Or only later (recording switched on mid-call): update writes it.
    let plain = call("rec-2", "node-1", T0 + 1);
    calls.start(&plain).await.expect("start");
    assert_eq!(
        calls
            .get("rec-2")
            .await
            .expect("get")
            .expect("exists")
            .recording,
        None
    );
    let later = CallRecord {
        recording: Some("/abs/path with spaces/rec-2.wav".to_owned()),
        answered_at: Some(T0 + 100),
        ..plain.clone()
    };
    calls.update(&later).await.expect("update");
    assert_eq!(calls.get("rec-2").await.expect("get"), Some(later.clone()));

    // close_orphans leaves the path alone; list carries it.
    assert_eq!(
        calls
            .close_orphans("node-1", T0 + 500)
            .await
            .expect("close"),
        2
    );
    let listed = calls.list(10).await.expect("list");
    assert_eq!(
        listed
            .iter()
            .map(|c| (c.id.as_str(), c.recording.as_deref()))
            .collect::<Vec<_>>(),
        [
            ("rec-2", Some("/abs/path with spaces/rec-2.wav")),
            ("rec-1", Some("recordings/rec-1.wav")),
        ]
    );

    // And update can clear it again.
    let cleared = CallRecord {
        recording: None,
        ..listed[0].clone()
    };
    calls.update(&cleared).await.expect("clear");
    assert_eq!(calls.get("rec-2").await.expect("get"), Some(cleared));
}

async fn account_id_is_written_at_start_and_by_update(db: TestDb) {
    let calls = db.store.calls();
    // Known at start (a trunk call to a number of the account) ...
    let started = CallRecord {
        account_id: Some("acc-1".to_owned()),
        ..call("acc-call-1", "node-1", T0)
    };
    calls.start(&started).await.expect("start");
    assert_eq!(
        calls.get("acc-call-1").await.expect("get"),
        Some(started.clone())
    );
    // ... or only once the call is routed; update writes and clears it.
    let plain = call("acc-call-2", "node-1", T0 + 1);
    calls.start(&plain).await.expect("start");
    let stored = calls.get("acc-call-2").await.expect("get").expect("exists");
    assert_eq!(stored.account_id, None);
    let routed = CallRecord {
        account_id: Some("acc-2".to_owned()),
        ..plain
    };
    calls.update(&routed).await.expect("update");
    assert_eq!(
        calls.get("acc-call-2").await.expect("get"),
        Some(routed.clone())
    );
    let listed = calls.list(10).await.expect("list");
    assert_eq!(listed, vec![routed.clone(), started]);
    let cleared = CallRecord {
        account_id: None,
        ..routed
    };
    calls.update(&cleared).await.expect("clear");
    assert_eq!(calls.get("acc-call-2").await.expect("get"), Some(cleared));
}

async fn upsert_inserts_then_overwrites_but_keeps_the_start(db: TestDb) {
    let calls = db.store.calls();
    let mut rec = call("u1", "node-a", T0);
    calls.upsert(&rec).await.expect("insert");
    assert_eq!(calls.get("u1").await.expect("get"), Some(rec.clone()));
    rec.ended_at = Some(T0 + 5000);
    rec.outcome = Some("answered".into());
    rec.hangup_cause = Some("BYE".into());
    // node and started_at are fixed by the first write.
    let mut changed = rec.clone();
    changed.node = "node-b".into();
    changed.started_at = T0 + 1;
    calls.upsert(&changed).await.expect("update");
    assert_eq!(calls.get("u1").await.expect("get"), Some(rec));
    assert_eq!(calls.list(10).await.expect("list").len(), 1);
}

/// 203 records are four multi-row statements and three smaller ones; a
/// call given twice keeps its later version; a second batch overwrites.
async fn upsert_all_writes_a_batch_of_any_size_and_the_later_version_wins(db: TestDb) {
    let calls = db.store.calls();
    calls.upsert_all(&[]).await.expect("nothing");
    let mut batch: Vec<CallRecord> = (0..200)
        .map(|i| call(&format!("b{i:03}"), "node-a", T0 + i))
        .collect();
    let mut answered = batch[7].clone();
    answered.answered_at = Some(T0 + 900);
    batch.push(answered.clone());
    let mut ended = batch[150].clone();
    ended.ended_at = Some(T0 + 950);
    batch.push(ended.clone());
    batch.push(call("b200", "node-a", T0 + 200));
    calls.upsert_all(&batch).await.expect("first batch");
    let listed = calls.list(1000).await.expect("list");
    assert_eq!(listed.len(), 201);
    assert_eq!(calls.get("b007").await.expect("get"), Some(answered));
    assert_eq!(calls.get("b150").await.expect("get"), Some(ended));
    assert_eq!(
        calls.get("b199").await.expect("get"),
        Some(call("b199", "node-a", T0 + 199))
    );

    let again: Vec<CallRecord> = (0..70)
        .map(|i| {
            let mut r = call(&format!("b{i:03}"), "node-a", T0 + i);
            r.outcome = Some("answered".into());
            r
        })
        .collect();
    calls.upsert_all(&again).await.expect("second batch");
    assert_eq!(calls.list(1000).await.expect("list").len(), 201);
    assert_eq!(
        calls.get("b069").await.expect("get"),
        Some(again[69].clone())
    );
    assert_eq!(
        calls
            .get("b070")
            .await
            .expect("get")
            .and_then(|r| r.outcome),
        None
    );
    // One record alone goes without a transaction of its own.
    calls.upsert_all(&again[..1]).await.expect("one");
    assert_eq!(
        calls.get("b000").await.expect("get"),
        Some(again[0].clone())
    );
}

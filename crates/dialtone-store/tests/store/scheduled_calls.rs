//! Scheduled calls: created pending and read back (variables in order),
//! refused without exactly one speaker or with an unknown account, listed
//! per account and status, cancelled only while pending and only by their
//! account; claimed only when due, each row by exactly one claimer —
//! sequentially and with many claimers on separate pools at once — then
//! recorded as fired or failed; rows a stopped node had claimed are closed
//! as failed, never fired again. And the call records of a period, per
//! account, for the management listings.

use std::collections::HashSet;

use dialtone_store::{
    CallRecord, NewScheduledCall, ScheduledStatus, Store, StoreError, INTERRUPTED,
};

use crate::common::TestDb;

backend_tests!(
    create_get_and_list,
    refused_without_one_speaker_or_account,
    cancel_only_pending_and_only_own,
    claim_only_due_rows_once,
    concurrent_claimers_take_each_row_once,
    fired_failed_and_interrupted,
    call_records_between_times_per_account,
);

/// Unix milliseconds.
const T0: i64 = 1_800_000_000_000;

async fn account(store: &Store, name: &str) -> String {
    store.accounts().ensure(name).await.expect("account").id
}

fn new_call(account_id: &str, due_at: i64) -> NewScheduledCall {
    NewScheduledCall {
        account_id: account_id.to_owned(),
        persona_id: Some("persona-1".to_owned()),
        username: None,
        customer: "+15551230001".to_owned(),
        customer_name: Some("Jeremy".to_owned()),
        from_number: Some("+15550100".to_owned()),
        variables: vec![
            ("order".to_owned(), "A-17".to_owned()),
            ("day".to_owned(), "Friday".to_owned()),
        ],
        due_at,
    }
}

async fn create_get_and_list(db: TestDb) {
    let acme = account(&db.store, "acme").await;
    let other = account(&db.store, "other").await;
    let sc = db.store.scheduled_calls();
    let later = sc.create(new_call(&acme, T0 + 2000)).await.expect("create");
    let sooner = sc.create(new_call(&acme, T0 + 1000)).await.expect("create");
    let theirs = sc.create(new_call(&other, T0)).await.expect("create");
    assert_eq!(later.status, ScheduledStatus::Pending);
    assert_eq!(sc.get(&later.id).await.expect("get"), Some(later.clone()));
    let got = sc.get(&sooner.id).await.expect("get").expect("there");
    assert_eq!(
        got.variables,
        [
            ("order".into(), "A-17".into()),
            ("day".into(), "Friday".into())
        ]
    );
    assert_eq!(got.customer_name.as_deref(), Some("Jeremy"));
    let ids =
        |v: Vec<dialtone_store::ScheduledCall>| v.into_iter().map(|c| c.id).collect::<Vec<_>>();
    assert_eq!(
        ids(sc.list(Some(&acme), None, 100).await.expect("list")),
        [sooner.id.clone(), later.id.clone()]
    );
    assert_eq!(
        ids(sc.list(None, None, 100).await.expect("list")),
        [theirs.id.clone(), sooner.id.clone(), later.id.clone()]
    );
    assert_eq!(
        ids(sc.list(None, None, 1).await.expect("list")),
        [theirs.id]
    );
    sc.cancel(&later.id, None).await.expect("cancel");
    assert_eq!(
        ids(sc
            .list(Some(&acme), Some(ScheduledStatus::Pending), 100)
            .await
            .expect("list")),
        [sooner.id]
    );
    assert!(sc.get("nope").await.expect("get").is_none());
}

async fn refused_without_one_speaker_or_account(db: TestDb) {
    let acme = account(&db.store, "acme").await;
    let sc = db.store.scheduled_calls();
    let mut both = new_call(&acme, T0);
    both.username = Some("alice".into());
    assert!(matches!(
        sc.create(both).await,
        Err(StoreError::Invalid { .. })
    ));
    let mut neither = new_call(&acme, T0);
    neither.persona_id = None;
    assert!(matches!(
        sc.create(neither).await,
        Err(StoreError::Invalid { .. })
    ));
    let mut user = new_call(&acme, T0);
    user.persona_id = None;
    user.username = Some("alice".into());
    assert!(sc.create(user).await.is_ok());
    assert!(matches!(
        sc.create(new_call("no-such-account", T0)).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn cancel_only_pending_and_only_own(db: TestDb) {
    let acme = account(&db.store, "acme").await;
    let other = account(&db.store, "other").await;
    let sc = db.store.scheduled_calls();
    let c = sc.create(new_call(&acme, T0)).await.expect("create");
    // Another account's cancel looks like an unknown id's.
    assert!(matches!(
        sc.cancel(&c.id, Some(&other)).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        sc.cancel("nope", None).await,
        Err(StoreError::NotFound { .. })
    ));
    let done = sc.cancel(&c.id, Some(&acme)).await.expect("cancel");
    assert_eq!(done.status, ScheduledStatus::Cancelled);
    match sc.cancel(&c.id, Some(&acme)).await {
        Err(StoreError::Invalid { reason }) => assert!(reason.contains("cancelled"), "{reason}"),
        other => panic!("a second cancel: {other:?}"),
    }
    // A cancelled call is never claimed.
    assert!(sc
        .claim_due(T0 + 10, "n1", 10)
        .await
        .expect("claim")
        .is_empty());
}

async fn claim_only_due_rows_once(db: TestDb) {
    let acme = account(&db.store, "acme").await;
    let sc = db.store.scheduled_calls();
    let a = sc.create(new_call(&acme, T0)).await.expect("create");
    let b = sc.create(new_call(&acme, T0 + 500)).await.expect("create");
    let c = sc.create(new_call(&acme, T0 + 5000)).await.expect("create");
    assert!(sc
        .claim_due(T0 - 1, "n1", 10)
        .await
        .expect("claim")
        .is_empty());
    let first = sc.claim_due(T0 + 500, "n1", 1).await.expect("claim");
    assert_eq!(first.iter().map(|r| &r.id).collect::<Vec<_>>(), [&a.id]);
    assert_eq!(first[0].status, ScheduledStatus::Fired);
    assert_eq!(first[0].claimed_by.as_deref(), Some("n1"));
    assert_eq!(first[0].claimed_at, Some(T0 + 500));
    let second = sc.claim_due(T0 + 500, "n2", 10).await.expect("claim");
    assert_eq!(second.iter().map(|r| &r.id).collect::<Vec<_>>(), [&b.id]);
    assert!(sc
        .claim_due(T0 + 4999, "n1", 10)
        .await
        .expect("claim")
        .is_empty());
    let last = sc.claim_due(T0 + 60_000, "n1", 10).await.expect("claim");
    assert_eq!(last.iter().map(|r| &r.id).collect::<Vec<_>>(), [&c.id]);
    assert!(sc
        .claim_due(T0 + 60_000, "n1", 0)
        .await
        .expect("claim")
        .is_empty());
}

async fn concurrent_claimers_take_each_row_once(db: TestDb) {
    const ROWS: usize = 200;
    const CLAIMERS: usize = 6;
    let acme = account(&db.store, "acme").await;
    let mut all = HashSet::new();
    for i in 0..ROWS {
        let due = T0 + i64::try_from(i % 7).expect("small");
        let c = db
            .store
            .scheduled_calls()
            .create(new_call(&acme, due))
            .await
            .expect("create");
        all.insert(c.id);
    }
    // Each claimer on its own pool, like nodes sharing the database.
    let mut tasks = Vec::new();
    for n in 0..CLAIMERS {
        let store = db.reopen().await;
        tasks.push(tokio::spawn(async move {
            let node = format!("node-{n}");
            let mut mine = Vec::new();
            loop {
                let got = store
                    .scheduled_calls()
                    .claim_due(T0 + 10, &node, 7)
                    .await
                    .expect("claim");
                if got.is_empty() {
                    break;
                }
                assert!(got
                    .iter()
                    .all(|c| c.claimed_by.as_deref() == Some(node.as_str())));
                mine.extend(got.into_iter().map(|c| c.id));
            }
            store.close().await;
            mine
        }));
    }
    let mut claimed = Vec::new();
    for t in tasks {
        claimed.extend(t.await.expect("claimer"));
    }
    let unique: HashSet<String> = claimed.iter().cloned().collect();
    assert_eq!(claimed.len(), unique.len(), "a row was claimed twice");
    assert_eq!(unique, all, "every due row is claimed");
    let pending = db
        .store
        .scheduled_calls()
        .list(None, Some(ScheduledStatus::Pending), 1000)
        .await
        .expect("list");
    assert!(pending.is_empty());
}

async fn fired_failed_and_interrupted(db: TestDb) {
    let acme = account(&db.store, "acme").await;
    let sc = db.store.scheduled_calls();
    for _ in 0..3 {
        sc.create(new_call(&acme, T0)).await.expect("create");
    }
    let claimed = sc.claim_due(T0, "n1", 10).await.expect("claim");
    assert_eq!(claimed.len(), 3);
    sc.set_fired(&claimed[0].id, "call-1").await.expect("fired");
    sc.set_failed(&claimed[1].id, "no route to \"+1555\"")
        .await
        .expect("failed");
    assert!(matches!(
        sc.set_fired("nope", "x").await,
        Err(StoreError::NotFound { .. })
    ));
    // n1 stopped before it placed the third: closed, not re-fired; another
    // node's claims are not touched.
    assert_eq!(sc.close_interrupted("n2").await.expect("close"), 0);
    assert_eq!(sc.close_interrupted("n1").await.expect("close"), 1);
    let read = |i: usize| {
        let id = claimed[i].id.clone();
        async move { sc.get(&id).await.expect("get").expect("there") }
    };
    let (fired, failed, interrupted) = (read(0).await, read(1).await, read(2).await);
    assert_eq!(
        (fired.status, fired.call_id.as_deref()),
        (ScheduledStatus::Fired, Some("call-1"))
    );
    assert_eq!(failed.status, ScheduledStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some("no route to \"+1555\""));
    assert_eq!(interrupted.status, ScheduledStatus::Failed);
    assert_eq!(interrupted.error.as_deref(), Some(INTERRUPTED));
    assert!(sc
        .claim_due(T0 + 1000, "n1", 10)
        .await
        .expect("claim")
        .is_empty());
}

fn record(id: &str, account: Option<&str>, started_at: i64) -> CallRecord {
    CallRecord {
        id: id.to_owned(),
        node: "n1".to_owned(),
        direction: "outbound".to_owned(),
        from_uri: "sip:15550100@dialtone".to_owned(),
        to_uri: "sip:15551230001@dialtone".to_owned(),
        caller: "15550100".to_owned(),
        callee: "15551230001".to_owned(),
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
        account_id: account.map(str::to_owned),
    }
}

async fn call_records_between_times_per_account(db: TestDb) {
    let calls = db.store.calls();
    for (id, account, at) in [
        ("c1", Some("a"), T0),
        ("c2", Some("b"), T0 + 10),
        ("c3", Some("a"), T0 + 20),
        ("c4", None, T0 + 30),
        ("c5", Some("a"), T0 + 40),
    ] {
        calls.start(&record(id, account, at)).await.expect("start");
    }
    let ids = |v: Vec<CallRecord>| v.into_iter().map(|c| c.id).collect::<Vec<_>>();
    assert_eq!(
        ids(calls
            .between(None, T0, T0 + 40, 100)
            .await
            .expect("between")),
        ["c4", "c3", "c2", "c1"]
    );
    assert_eq!(
        ids(calls
            .between(Some("a"), T0, T0 + 41, 100)
            .await
            .expect("between")),
        ["c5", "c3", "c1"]
    );
    assert_eq!(
        ids(calls
            .between(Some("a"), T0 + 1, T0 + 41, 1)
            .await
            .expect("between")),
        ["c5"]
    );
}

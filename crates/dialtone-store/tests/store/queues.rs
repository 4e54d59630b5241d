//! Queues: create (members must be users, names unique), get and list,
//! strategies' text form, update and set_members (idle times kept),
//! removal refused while a number, a persona fallback or a persona tool
//! refers to the queue, the round-robin cursor (distinct under concurrency)
//! and longest-idle bookkeeping.

use std::collections::HashSet;

use dialtone_store::{
    NewPersona, NewQueue, NewUser, PersonaToolKind, QueueMember, QueueStrategy, Store, StoreError,
    TargetKind,
};

use crate::common::TestDb;

backend_tests!(
    create_get_and_list,
    create_refuses_missing_members_and_taken_names,
    update_and_set_members,
    remove_is_refused_while_referenced,
    round_robin_cursor_is_distinct_under_concurrency,
    member_call_ended_moves_forward_only,
);

/// An account "acme" with these users; returns the account id.
pub(crate) async fn setup(store: &Store, users: &[&str]) -> String {
    let account = store.accounts().ensure("acme").await.expect("account");
    for name in users {
        store
            .users()
            .create(NewUser {
                account_id: &account.id,
                username: name,
                realm: "dialtone",
                ha1_md5: "md5",
                ha1_sha256: "sha256",
            })
            .await
            .expect("user");
    }
    account.id
}

fn new_queue(account_id: &str, name: &str, members: &[&str]) -> NewQueue {
    NewQueue {
        account_id: account_id.to_owned(),
        name: name.to_owned(),
        strategy: QueueStrategy::RingAll,
        timeout_secs: 30,
        fallback: None,
        members: members.iter().map(|m| (*m).to_owned()).collect(),
    }
}

fn member(name: &str, at: Option<i64>) -> QueueMember {
    QueueMember {
        username: name.to_owned(),
        last_call_ended_at: at,
    }
}

async fn create_get_and_list(db: TestDb) {
    let acme = setup(&db.store, &["1001", "1002", "1003"]).await;
    let queues = db.store.queues();
    assert!(queues.list().await.expect("list").is_empty());
    let support = queues
        .create(NewQueue {
            strategy: QueueStrategy::RoundRobin,
            timeout_secs: 45,
            fallback: Some("user:1003".into()),
            ..new_queue(&acme, "support", &["1002", "1001"])
        })
        .await
        .expect("create");
    assert_eq!(
        support.members,
        [member("1002", None), member("1001", None)]
    );
    assert_eq!(
        (
            support.strategy,
            support.timeout_secs,
            support.fallback.as_deref()
        ),
        (QueueStrategy::RoundRobin, 45, Some("user:1003"))
    );
    let sales = queues
        .create(new_queue(&acme, "Sales", &["1003"]))
        .await
        .expect("create");
    assert_eq!(
        queues.get("support").await.expect("get"),
        Some(support.clone())
    );
    assert_eq!(queues.get("ghost").await.expect("get"), None);
    assert_eq!(queues.list().await.expect("list"), [sales, support]);

    for s in QueueStrategy::ALL {
        assert_eq!(s.as_str().parse::<QueueStrategy>(), Ok(s));
        assert_eq!(s.to_string(), s.as_str());
    }
    assert_eq!(
        "longest-idle".parse::<QueueStrategy>(),
        Ok(QueueStrategy::LongestIdle)
    );
    let err = "Ring-All".parse::<QueueStrategy>().expect_err("exact only");
    assert!(err.to_string().contains("ring-all"), "{err}");
}

async fn create_refuses_missing_members_and_taken_names(db: TestDb) {
    let acme = setup(&db.store, &["1001"]).await;
    let queues = db.store.queues();
    match queues
        .create(new_queue(
            &acme,
            "support",
            &["1001", "1009", "1008", "1009"],
        ))
        .await
    {
        Err(StoreError::NotFound { what }) => {
            assert_eq!(what, r#"user(s) ["1009", "1008"]"#)
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(
        queues.list().await.expect("list").is_empty(),
        "nothing stored"
    );
    queues
        .create(new_queue(&acme, "support", &["1001"]))
        .await
        .expect("create");
    match queues.create(new_queue(&acme, "support", &[])).await {
        Err(StoreError::Conflict { what }) => assert!(what.contains("support"), "{what}"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    match queues
        .create(new_queue("no-such-account", "other", &[]))
        .await
    {
        Err(StoreError::NotFound { what }) => assert!(what.contains("account"), "{what}"),
        other => panic!("expected NotFound, got {other:?}"),
    }
}

async fn update_and_set_members(db: TestDb) {
    let acme = setup(&db.store, &["1001", "1002", "1003"]).await;
    let queues = db.store.queues();
    let made = queues
        .create(new_queue(&acme, "support", &["1001", "1002"]))
        .await
        .expect("create");
    let updated = queues
        .update(
            "support",
            Some(QueueStrategy::LongestIdle),
            Some(10),
            Some(Some("persona:receptionist".into())),
        )
        .await
        .expect("update");
    assert_eq!(
        (
            updated.strategy,
            updated.timeout_secs,
            updated.fallback.as_deref()
        ),
        (QueueStrategy::LongestIdle, 10, Some("persona:receptionist"))
    );
    let same = queues
        .update("support", None, None, None)
        .await
        .expect("no-op");
    assert_eq!(same, updated);
    let cleared = queues
        .update("support", None, None, Some(None))
        .await
        .expect("clear");
    assert_eq!(cleared.fallback, None);
    assert!(matches!(
        queues.update("ghost", None, Some(5), None).await,
        Err(StoreError::NotFound { .. })
    ));

    queues
        .member_call_ended("support", "1002", 1_700_000_100)
        .await
        .expect("ended");
    let members = ["1003".to_owned(), "1002".to_owned()];
    let reset = queues.set_members("support", &members).await.expect("set");
    assert_eq!(
        reset.members,
        [member("1003", None), member("1002", Some(1_700_000_100))],
        "a member that stays keeps its idle time"
    );
    assert_eq!(reset.id, made.id);
    match queues
        .set_members("support", &["1001".to_owned(), "ghost".to_owned()])
        .await
    {
        Err(StoreError::NotFound { what }) => assert!(what.contains("ghost"), "{what}"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_eq!(
        queues.get("support").await.expect("get"),
        Some(reset),
        "nothing changed"
    );
    assert!(matches!(
        queues.set_members("ghost", &[]).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn remove_is_refused_while_referenced(db: TestDb) {
    let acme = setup(&db.store, &["1001"]).await;
    let queues = db.store.queues();
    let numbers = db.store.numbers();
    assert!(!queues.remove("support").await.expect("remove none"));
    queues
        .create(new_queue(&acme, "support", &["1001"]))
        .await
        .expect("create");
    for n in ["+15550199", "+15550100"] {
        numbers
            .create(n, TargetKind::Queue, "support", false)
            .await
            .expect("number");
    }
    numbers
        .create("+15550111", TargetKind::User, "support", false)
        .await
        .expect("same name, other kind");
    let persona = db
        .store
        .personas()
        .create(persona(&acme, "receptionist", Some("queue:support")))
        .await
        .expect("persona");
    db.store
        .persona_tools()
        .create(
            &persona.id,
            "to_support",
            "Transfer to support",
            PersonaToolKind::TransferQueue {
                queue: "support".into(),
            },
        )
        .await
        .expect("tool");
    match queues.remove("support").await {
        Err(e @ StoreError::InUse { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains(r#"number(s) ["+15550100", "+15550199"]"#),
                "{text}"
            );
            assert!(
                text.contains(r#"persona fallback(s) ["receptionist"]"#),
                "{text}"
            );
            assert!(
                text.contains(r#"persona tool(s) ["receptionist/to_support"]"#),
                "{text}"
            );
            assert!(!text.contains("+15550111"), "{text}");
        }
        other => panic!("expected InUse, got {other:?}"),
    }
    assert!(queues.get("support").await.expect("get").is_some());

    numbers.remove("+15550100").await.expect("remove");
    numbers.remove("+15550199").await.expect("remove");
    db.store
        .personas()
        .update(
            "receptionist",
            dialtone_store::PersonaUpdate {
                fallback: Some(None),
                ..Default::default()
            },
        )
        .await
        .expect("repoint");
    match queues.remove("support").await {
        Err(StoreError::InUse { by, .. }) => {
            assert_eq!(by, r#"persona tool(s) ["receptionist/to_support"]"#)
        }
        other => panic!("expected InUse, got {other:?}"),
    }
    assert!(db
        .store
        .persona_tools()
        .remove(&persona.id, "to_support")
        .await
        .expect("remove tool"));
    assert!(queues.remove("support").await.expect("remove"));
    assert!(queues.get("support").await.expect("get").is_none());
    // The name is free again.
    queues
        .create(new_queue(&acme, "support", &[]))
        .await
        .expect("re-create");
}

fn persona(account_id: &str, name: &str, fallback: Option<&str>) -> NewPersona {
    NewPersona {
        account_id: account_id.to_owned(),
        name: name.to_owned(),
        provider: "openai".to_owned(),
        url: "wss://api.openai.com/v1/realtime".to_owned(),
        model: None,
        voice: None,
        instructions: "You answer calls.".to_owned(),
        greeting: None,
        api_key_env: None,
        timezone: "UTC".to_owned(),
        turn_detection: "server_vad".to_owned(),
        vad_threshold: None,
        vad_prefix_padding_ms: None,
        vad_silence_ms: None,
        vad_eagerness: None,
        barge_in_min_ms: 0,
        max_duration_secs: 0,
        idle_timeout_secs: 30,
        fallback: fallback.map(str::to_owned),
        transcription_model: None,
    }
}

async fn round_robin_cursor_is_distinct_under_concurrency(db: TestDb) {
    let acme = setup(&db.store, &["1001", "1002", "1003"]).await;
    let queues = db.store.queues();
    queues
        .create(NewQueue {
            strategy: QueueStrategy::RoundRobin,
            ..new_queue(&acme, "support", &["1001", "1002", "1003"])
        })
        .await
        .expect("create");
    // In turn: 0, 1, 2, then around again.
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(queues.next_round_robin("support", 3).await.expect("next"));
    }
    assert_eq!(seen, [0, 1, 2, 0]);

    // Ten at once (another connection each on PostgreSQL): ten distinct cursors.
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let store = db.store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .queues()
                .next_round_robin("support", 1_000_000)
                .await
                .expect("next")
        }));
    }
    let mut values = HashSet::new();
    for task in tasks {
        values.insert(task.await.expect("join"));
    }
    assert_eq!(values, (4..14).collect::<HashSet<usize>>());

    assert_eq!(
        queues.next_round_robin("support", 0).await.expect("none"),
        0
    );
    assert!(matches!(
        queues.next_round_robin("ghost", 3).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn member_call_ended_moves_forward_only(db: TestDb) {
    let acme = setup(&db.store, &["1001", "1002"]).await;
    let queues = db.store.queues();
    queues
        .create(NewQueue {
            strategy: QueueStrategy::LongestIdle,
            ..new_queue(&acme, "support", &["1001", "1002"])
        })
        .await
        .expect("create");
    queues
        .member_call_ended("support", "1002", 1_700_000_200)
        .await
        .expect("ended");
    queues
        .member_call_ended("support", "1002", 1_700_000_100)
        .await
        .expect("an older end is ignored");
    queues
        .member_call_ended("support", "1001", 1_700_000_300)
        .await
        .expect("ended");
    let got = queues.get("support").await.expect("get").expect("exists");
    assert_eq!(
        got.members,
        [
            member("1001", Some(1_700_000_300)),
            member("1002", Some(1_700_000_200))
        ]
    );
    for (queue, user) in [("support", "1003"), ("ghost", "1001")] {
        match queues.member_call_ended(queue, user, 1).await {
            Err(StoreError::NotFound { what }) => assert!(what.contains(user), "{what}"),
            other => panic!("expected NotFound, got {other:?}"),
        }
    }
}

//! Office hours: none configured until set; a whole week set and read back
//! (split shifts, 24:00, closed days); one day replaced; closures added and
//! removed, read back sorted; bad times, ranges, weekdays and dates refused
//! with nothing changed; unknown personas; clear; and removing the persona
//! removes its hours and closures.

use dialtone_store::{NewPersona, OfficeHours, Store, StoreError, TimeRange};

use crate::common::TestDb;

backend_tests!(
    set_week_get_and_replace_a_day,
    closures_add_remove_and_sort,
    invalid_input_is_refused_and_changes_nothing,
    unknown_persona,
    clear_and_persona_removal_remove_everything,
);

fn range(opens: &str, closes: &str) -> TimeRange {
    TimeRange {
        opens: opens.to_owned(),
        closes: closes.to_owned(),
    }
}

/// Creates a persona (and the default account) and returns its id.
async fn persona(store: &Store, name: &str) -> String {
    let account = store.accounts().ensure("default").await.expect("account");
    store
        .personas()
        .create(NewPersona {
            account_id: account.id,
            name: name.to_owned(),
            provider: "openai".to_owned(),
            url: "wss://api.openai.com/v1/realtime".to_owned(),
            model: None,
            voice: None,
            instructions: "You are the receptionist.".to_owned(),
            greeting: None,
            api_key_env: None,
            timezone: "Europe/Berlin".to_owned(),
            turn_detection: "server_vad".to_owned(),
            vad_threshold: None,
            vad_prefix_padding_ms: None,
            vad_silence_ms: None,
            vad_eagerness: None,
            barge_in_min_ms: 0,
            max_duration_secs: 0,
            idle_timeout_secs: 30,
            fallback: None,
            transcription_model: None,
        })
        .await
        .expect("persona")
        .id
}

/// Monday to Friday with a lunch break, Saturday morning, Sunday closed.
fn office_week() -> [Vec<TimeRange>; 7] {
    let split = vec![range("09:00", "12:00"), range("13:00", "17:30")];
    [
        split.clone(),
        split.clone(),
        split.clone(),
        split.clone(),
        vec![range("09:00", "12:00"), range("12:00", "24:00")],
        vec![range("10:00", "13:00")],
        vec![],
    ]
}

async fn set_week_get_and_replace_a_day(db: TestDb) {
    let id = persona(&db.store, "receptionist").await;
    let other = persona(&db.store, "other").await;
    let hours = db.store.office_hours();
    assert_eq!(
        hours.get(&id).await.expect("get"),
        None,
        "nothing configured"
    );

    hours.set_week(&id, &office_week()).await.expect("set week");
    let expected = OfficeHours {
        weekly: office_week(),
        closures: vec![],
    };
    assert_eq!(hours.get(&id).await.expect("get"), Some(expected.clone()));
    assert_eq!(hours.get(&other).await.expect("other"), None, "per persona");

    // One day replaced; the others stay.
    hours
        .set_day(&id, 2, &[range("00:00", "24:00")])
        .await
        .expect("set wednesday");
    hours.set_day(&id, 0, &[]).await.expect("close monday");
    let mut week = office_week();
    week[2] = vec![range("00:00", "24:00")];
    week[0] = vec![];
    assert_eq!(
        hours.get(&id).await.expect("get"),
        Some(OfficeHours {
            weekly: week.clone(),
            closures: vec![]
        })
    );

    // A new week replaces every day, including ones it leaves closed.
    let mut only_sunday: [Vec<TimeRange>; 7] = Default::default();
    only_sunday[6] = vec![range("08:00", "08:30"), range("20:00", "21:00")];
    hours.set_week(&id, &only_sunday).await.expect("set week 2");
    let stored = hours.get(&id).await.expect("get").expect("configured");
    assert_eq!(stored.weekly, only_sunday);

    // An all-closed week without closures is "nothing configured".
    hours
        .set_week(&id, &Default::default())
        .await
        .expect("empty week");
    assert_eq!(hours.get(&id).await.expect("get"), None);
}

async fn closures_add_remove_and_sort(db: TestDb) {
    let id = persona(&db.store, "receptionist").await;
    let hours = db.store.office_hours();
    for day in ["2026-12-26", "2026-12-25", "2027-01-01", "2026-04-03"] {
        assert!(hours.add_closure(&id, day).await.expect("add"), "{day}");
    }
    assert!(!hours
        .add_closure(&id, "2026-12-25")
        .await
        .expect("add again"));
    // Closures alone count as configured: every weekday closed.
    let stored = hours.get(&id).await.expect("get").expect("configured");
    assert_eq!(
        stored.closures,
        ["2026-04-03", "2026-12-25", "2026-12-26", "2027-01-01"]
    );
    assert!(stored.weekly.iter().all(Vec::is_empty));

    assert!(hours
        .remove_closure(&id, "2026-12-26")
        .await
        .expect("remove"));
    assert!(!hours
        .remove_closure(&id, "2026-12-26")
        .await
        .expect("remove again"));
    assert!(!hours
        .remove_closure(&id, "2030-01-01")
        .await
        .expect("remove unknown"));
    hours.set_week(&id, &office_week()).await.expect("set week");
    assert_eq!(
        hours.get(&id).await.expect("get"),
        Some(OfficeHours {
            weekly: office_week(),
            closures: vec![
                "2026-04-03".to_owned(),
                "2026-12-25".to_owned(),
                "2027-01-01".to_owned()
            ],
        }),
        "setting the week keeps the closures"
    );
}

async fn invalid_input_is_refused_and_changes_nothing(db: TestDb) {
    let id = persona(&db.store, "receptionist").await;
    let hours = db.store.office_hours();
    hours.set_week(&id, &office_week()).await.expect("set week");
    let before = hours.get(&id).await.expect("get");

    let bad_days: [&[TimeRange]; 7] = [
        &[range("17:00", "09:00")],
        &[range("09:00", "09:00")],
        &[range("9:00", "17:00")],
        &[range("09:00", "24:30")],
        &[range("24:00", "24:00")],
        &[range("13:00", "17:00"), range("09:00", "12:00")],
        &[range("09:00", "13:00"), range("12:00", "17:00")],
    ];
    for ranges in bad_days {
        match hours.set_day(&id, 1, ranges).await {
            Err(StoreError::Invalid { reason }) => {
                assert!(reason.starts_with("Tuesday: "), "{reason}")
            }
            other => panic!("{ranges:?}: expected Invalid, got {other:?}"),
        }
        let mut week = office_week();
        week[4] = ranges.to_vec();
        match hours.set_week(&id, &week).await {
            Err(StoreError::Invalid { reason }) => {
                assert!(reason.starts_with("Friday: "), "{reason}")
            }
            other => panic!("{ranges:?}: expected Invalid, got {other:?}"),
        }
    }
    assert!(matches!(
        hours.set_day(&id, 7, &[]).await,
        Err(StoreError::Invalid { .. })
    ));
    for day in ["2026-02-30", "2026-13-01", "25.12.2026", "2026-12-25 "] {
        assert!(
            matches!(
                hours.add_closure(&id, day).await,
                Err(StoreError::Invalid { .. })
            ),
            "{day}"
        );
    }
    assert_eq!(hours.get(&id).await.expect("get"), before);
}

async fn unknown_persona(db: TestDb) {
    let hours = db.store.office_hours();
    assert_eq!(hours.get("no-such-persona").await.expect("get"), None);
    for result in [
        hours.set_week("no-such-persona", &office_week()).await,
        hours
            .set_day("no-such-persona", 0, &[range("09:00", "17:00")])
            .await,
    ] {
        match result {
            Err(StoreError::NotFound { what }) => assert!(what.contains("no-such-persona")),
            other => panic!("expected NotFound, got {other:?}"),
        }
    }
    assert!(matches!(
        hours.add_closure("no-such-persona", "2026-12-25").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(!hours
        .remove_closure("no-such-persona", "2026-12-25")
        .await
        .expect("remove"));
    hours.clear("no-such-persona").await.expect("clear");
}

async fn clear_and_persona_removal_remove_everything(db: TestDb) {
    let id = persona(&db.store, "receptionist").await;
    let other = persona(&db.store, "other").await;
    let hours = db.store.office_hours();
    for persona_id in [&id, &other] {
        hours
            .set_week(persona_id, &office_week())
            .await
            .expect("set week");
        hours
            .add_closure(persona_id, "2026-12-25")
            .await
            .expect("closure");
    }

    hours.clear(&id).await.expect("clear");
    assert_eq!(hours.get(&id).await.expect("get"), None);
    assert!(hours.get(&other).await.expect("other").is_some());

    // Removing a persona takes its hours and closures with it (and nothing else's).
    hours.set_week(&id, &office_week()).await.expect("again");
    hours.add_closure(&id, "2026-12-24").await.expect("again");
    assert!(db
        .store
        .personas()
        .remove("receptionist")
        .await
        .expect("remove persona"));
    assert_eq!(hours.get(&id).await.expect("get"), None);
    let left = hours.get(&other).await.expect("other").expect("kept");
    assert_eq!(left.closures, ["2026-12-25"]);

    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db.url).await.expect("connect raw");
    for table in ["office_hours", "office_closures"] {
        let orphans: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM {table} WHERE persona_id = $1"
        ))
        .bind(&id)
        .fetch_one(&pool)
        .await
        .expect("count");
        assert_eq!(orphans, 0, "{table}");
    }
    pool.close().await;
}

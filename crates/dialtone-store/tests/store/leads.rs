//! Leads: recording twice for one number gives one lead with two cases (in
//! order, the lead keeping its first name, updated_at moving); different
//! numbers and different accounts give different leads; ten concurrent
//! records for one new number give one lead with ten cases; get, find, lists
//! and case counts; an unknown classification, empty number or intent, and
//! an unknown account are refused with nothing stored.

use std::collections::HashSet;

use dialtone_store::{Lead, NewCase, Store, StoreError, CLASSIFICATIONS};

use crate::common::TestDb;

backend_tests!(
    same_number_twice_is_one_lead_with_two_cases,
    numbers_and_accounts_separate_leads,
    concurrent_records_make_one_lead,
    invalid_cases_are_refused,
);

fn case(intent: &str, classification: &str) -> NewCase {
    NewCase {
        intent: intent.to_owned(),
        classification: classification.to_owned(),
        summary: None,
        notes: None,
        call_id: None,
        persona: None,
    }
}

async fn account(store: &Store, name: &str) -> String {
    store.accounts().ensure(name).await.expect("account").id
}

async fn same_number_twice_is_one_lead_with_two_cases(db: TestDb) {
    let acme = account(&db.store, "acme").await;
    let leads = db.store.leads();
    assert_eq!(leads.find(&acme, "+15550100").await.expect("find"), None);

    let first_case = NewCase {
        summary: Some("Wants a quote for 40 chairs.".to_owned()),
        notes: Some("Call back after 3 pm.\n\"Urgent\"".to_owned()),
        call_id: Some("call-1".to_owned()),
        persona: Some("receptionist".to_owned()),
        ..case("quote", "lead")
    };
    let (lead, c1, new) = leads
        .record(&acme, "+15550100", "Zoë Müller", first_case.clone())
        .await
        .expect("record 1");
    assert!(new);
    assert_eq!(
        (
            lead.account_id.as_str(),
            lead.phone_number.as_str(),
            lead.name.as_str()
        ),
        (acme.as_str(), "+15550100", "Zoë Müller")
    );
    assert!(lead.created_at > 1_600_000_000 && lead.updated_at >= lead.created_at);
    assert_eq!(c1.lead_id, lead.id);
    assert_eq!(
        (
            c1.intent.as_str(),
            c1.classification.as_str(),
            c1.summary.clone(),
            c1.notes.clone(),
            c1.call_id.clone(),
            c1.persona.clone()
        ),
        (
            "quote",
            "lead",
            first_case.summary,
            first_case.notes,
            first_case.call_id,
            first_case.persona
        )
    );

    let (again, c2, new) = leads
        .record(
            &acme,
            "+15550100",
            "Z. Mueller",
            case("support", "customer"),
        )
        .await
        .expect("record 2");
    assert!(!new);
    assert_eq!(again.id, lead.id);
    assert_eq!(again.name, "Zoë Müller", "the lead keeps its first name");
    assert!(again.updated_at >= lead.updated_at);
    assert_ne!(c2.id, c1.id);

    let (got, cases) = leads.get(&lead.id).await.expect("get").expect("exists");
    assert_eq!(got, again);
    assert_eq!(cases, vec![c1, c2], "oldest first");
    assert_eq!(
        leads.find(&acme, "+15550100").await.expect("find"),
        Some(again.clone())
    );
    assert_eq!(leads.list().await.expect("list"), vec![again.clone()]);
    let counts = leads.case_counts().await.expect("counts");
    assert_eq!(counts.get(&lead.id), Some(&2));
    assert_eq!(leads.get("no-such-lead").await.expect("get"), None);
}

async fn numbers_and_accounts_separate_leads(db: TestDb) {
    let acme = account(&db.store, "acme").await;
    let other = account(&db.store, "other").await;
    let leads = db.store.leads();
    let (a, _, new_a) = leads
        .record(&acme, "+15550100", "Ann", case("quote", "lead"))
        .await
        .expect("a");
    let (b, _, new_b) = leads
        .record(&acme, "+15550101", "Bob", case("spam call", "spam"))
        .await
        .expect("b");
    let (c, _, new_c) = leads
        .record(
            &other,
            "+15550100",
            "Ann at other",
            case("billing", "other"),
        )
        .await
        .expect("c");
    assert!(new_a && new_b && new_c);
    let ids: HashSet<&str> = [a.id.as_str(), b.id.as_str(), c.id.as_str()].into();
    assert_eq!(ids.len(), 3);

    assert_eq!(
        leads.find(&other, "+15550100").await.expect("find"),
        Some(c.clone())
    );
    assert_eq!(leads.find(&other, "+15550101").await.expect("find"), None);

    // Most recently updated first: a gets a new case now.
    let (a, _, _) = leads
        .record(&acme, "+15550100", "Ann", case("follow-up", "customer"))
        .await
        .expect("a again");
    let mut expected = vec![a.clone(), b.clone(), c.clone()];
    expected.sort_by(|x, y| {
        (y.updated_at, y.created_at, &y.id).cmp(&(x.updated_at, x.created_at, &x.id))
    });
    assert_eq!(leads.list().await.expect("list"), expected);
    let acme_only: Vec<Lead> = expected
        .iter()
        .filter(|l| l.account_id == acme)
        .cloned()
        .collect();
    assert_eq!(
        leads.list_for_account(&acme).await.expect("list acme"),
        acme_only
    );
    let counts = leads.case_counts().await.expect("counts");
    assert_eq!(
        (counts.get(&a.id), counts.get(&b.id), counts.get(&c.id)),
        (Some(&2), Some(&1), Some(&1))
    );
}

async fn concurrent_records_make_one_lead(db: TestDb) {
    let acme = account(&db.store, "acme").await;
    let tasks: Vec<_> = (0..10)
        .map(|n| {
            let store = db.store.clone();
            let acme = acme.clone();
            tokio::spawn(async move {
                store
                    .leads()
                    .record(
                        &acme,
                        "+15550123",
                        &format!("caller {n}"),
                        NewCase {
                            call_id: Some(format!("call-{n}")),
                            ..case("quote", "lead")
                        },
                    )
                    .await
            })
        })
        .collect();
    let mut lead_ids = HashSet::new();
    let mut created = 0;
    for task in tasks {
        let (lead, _, new) = task.await.expect("task").expect("record");
        lead_ids.insert(lead.id);
        created += usize::from(new);
    }
    assert_eq!(lead_ids.len(), 1, "one lead");
    assert_eq!(created, 1, "created once");
    let leads = db.store.leads();
    assert_eq!(leads.list().await.expect("list").len(), 1);
    let id = lead_ids.into_iter().next().expect("one");
    let (_, cases) = leads.get(&id).await.expect("get").expect("exists");
    assert_eq!(cases.len(), 10);
    let calls: HashSet<String> = cases.into_iter().filter_map(|c| c.call_id).collect();
    assert_eq!(calls.len(), 10, "every case kept");
}

async fn invalid_cases_are_refused(db: TestDb) {
    let acme = account(&db.store, "acme").await;
    let leads = db.store.leads();
    for classification in CLASSIFICATIONS {
        leads
            .record(&acme, "+15550100", "Ann", case("x", classification))
            .await
            .expect(classification);
    }
    let before = leads.list().await.expect("list");
    let (_, cases_before) = leads
        .get(&before[0].id)
        .await
        .expect("get")
        .expect("exists");

    match leads
        .record(&acme, "+15550100", "Ann", case("x", "Lead"))
        .await
    {
        Err(StoreError::Invalid { reason }) => {
            assert!(reason.contains("\"Lead\""), "{reason}");
            assert!(reason.contains("lead, customer, spam, other"), "{reason}");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    for (number, intent) in [("+15550100", ""), ("+15550100", "  "), ("", "quote")] {
        assert!(matches!(
            leads
                .record(&acme, number, "Ann", case(intent, "lead"))
                .await,
            Err(StoreError::Invalid { .. })
        ));
    }
    match leads
        .record("no-such-account", "+15550100", "Ann", case("x", "lead"))
        .await
    {
        Err(StoreError::NotFound { what }) => assert!(what.contains("no-such-account"), "{what}"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_eq!(leads.list().await.expect("list"), before);
    let (_, cases_after) = leads
        .get(&before[0].id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(cases_after, cases_before);
}

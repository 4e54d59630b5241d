//! Concurrent REGISTERs on one AOR: none fails with a locking error, and the
//! RFC 3261 §10.3 ordering holds whatever the interleaving.

use dialtone_store::StoreError;

use crate::common::TestDb;
use crate::registrations::{apply, upsert, AOR, NOW};

backend_tests!(
    concurrent_registers_on_one_aor_all_land,
    concurrent_cseqs_on_one_binding_keep_the_highest,
);

/// 20 phones register different contacts on one AOR at the same moment.
async fn concurrent_registers_on_one_aor_all_land(db: TestDb) {
    let mut tasks = Vec::new();
    for i in 0..20u32 {
        let store = db.store.clone();
        tasks.push(tokio::spawn(async move {
            let contact = format!("sip:1001@10.0.0.{i}:5060");
            apply(
                &store,
                &format!("call-{i}"),
                1,
                &[upsert(&contact, NOW + 100)],
                NOW,
            )
            .await
        }));
    }
    for task in tasks {
        task.await
            .expect("join")
            .expect("every concurrent REGISTER succeeds");
    }
    let bound = db.store.registrations().list(AOR, NOW).await.expect("list");
    assert_eq!(bound.len(), 20);
}

/// 20 REGISTERs of one dialog (same Call-ID, CSeq 1..=20) race for one contact.
/// Whatever the interleaving, each is applied or rejected as a whole and the
/// stored CSeq ends at 20: CSeq 20 can never be out of order, and no lower
/// CSeq may overwrite it afterwards. Several rounds, as a lost race is luck.
async fn concurrent_cseqs_on_one_binding_keep_the_highest(db: TestDb) {
    for round in 0..8 {
        let contact = format!("sip:1001@10.0.0.{round}");
        let mut tasks = Vec::new();
        for cseq in 1..=20u32 {
            let store = db.store.clone();
            let change = upsert(&contact, NOW + i64::from(cseq));
            tasks.push(tokio::spawn(async move {
                (cseq, apply(&store, "call-a", cseq, &[change], NOW).await)
            }));
        }
        for task in tasks {
            match task.await.expect("join") {
                (_, Ok(_)) => {}
                (cseq, Err(StoreError::OutOfOrder)) => assert_ne!(cseq, 20, "CSeq 20 rejected"),
                (cseq, Err(e)) => panic!("CSeq {cseq}: unexpected error {e}"),
            }
        }
        let bound = db.store.registrations().list(AOR, NOW).await.expect("list");
        let binding = bound
            .iter()
            .find(|b| b.contact == contact)
            .expect("contact bound");
        assert_eq!(
            (binding.cseq, binding.expires_at),
            (20, NOW + 20),
            "round {round}: a lower CSeq overwrote CSeq 20"
        );
    }
}

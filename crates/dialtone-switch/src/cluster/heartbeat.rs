//! The node's heartbeat: its row in `nodes` is written at start and
//! refreshed every `heartbeat`; on each beat the node counts its live peers
//! and closes the call rows of nodes silent for `dead_after` (every node
//! does; a row is closed once). A database that cannot be reached is logged
//! once when it goes and once when it comes back ([`crate::outage`]).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use dialtone_store::Store;
use tokio::sync::watch;

use super::Cluster;

use crate::registrar::unix_now_ms as now_ms;

/// Runs until `shutdown` turns true; a no-op when the cluster is off.
pub async fn run(cluster: Arc<Cluster>, store: Store, mut shutdown: watch::Receiver<bool>) {
    if !cluster.enabled() {
        return;
    }
    let cfg = cluster.config().clone();
    let mut joined = false;
    let mut outage =
        crate::outage::Outage::new("cluster heartbeat (a node without one is taken for dead)");
    let mut tick = tokio::time::interval(cfg.heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        outage.note(&beat(&cluster, &store, &mut joined).await);
    }
}

async fn beat(
    cluster: &Cluster,
    store: &Store,
    joined: &mut bool,
) -> Result<(), dialtone_store::StoreError> {
    let cfg = cluster.config();
    let nodes = store.nodes();
    let now = now_ms();
    if !*joined || !nodes.heartbeat(&cfg.node, now).await? {
        nodes
            .join(&cfg.node, &cfg.advertise_sip, &cfg.advertise_http, now)
            .await?;
        if !*joined {
            tracing::info!(node = %cfg.node, http = %cfg.advertise_http, "joined the cluster");
        }
        *joined = true;
    }
    let dead_after = i64::try_from(cfg.dead_after.as_millis()).unwrap_or(i64::MAX);
    let all = nodes.list().await?;
    let alive = all
        .iter()
        .filter(|n| n.id != cfg.node && n.alive(now, dead_after))
        .count();
    cluster
        .stats
        .peers_alive
        .store(alive as u64, Ordering::Relaxed);
    for (node, closed) in nodes
        .close_calls_of_dead(&cfg.node, now, dead_after)
        .await?
    {
        cluster
            .stats
            .calls_reaped
            .fetch_add(closed, Ordering::Relaxed);
        tracing::warn!(dead = %node, calls = closed, "node silent for {} ms: its calls are marked ended", dead_after);
    }
    Ok(())
}

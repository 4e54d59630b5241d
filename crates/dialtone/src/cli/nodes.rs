//! `nodes list`: the cluster as the shared database sees it — each node's
//! addresses, when it started, its last heartbeat, alive or dead (by this
//! configuration's `cluster.dead_after_ms`) and the live calls it owns.

use anyhow::Result;
use clap::Subcommand;
use dialtone_store::Store;
use dialtone_switch::registrar::unix_now_ms;
use serde_json::json;

#[derive(Subcommand)]
pub enum NodesCommand {
    /// Every node that has joined, by id.
    List {
        /// One JSON array, for scripts.
        #[arg(long)]
        json: bool,
    },
}

pub async fn nodes(store: &Store, cmd: NodesCommand, dead_after_ms: u64) -> Result<()> {
    let NodesCommand::List { json } = cmd;
    let now = unix_now_ms();
    let dead_after = i64::try_from(dead_after_ms).unwrap_or(i64::MAX);
    let rows = store.nodes().list().await?;
    if json {
        let all: Vec<_> = rows
            .iter()
            .map(|n| {
                json!({
                    "id": n.id, "sip": n.sip, "http": n.http, "started_at": n.started_at,
                    "heartbeat_at": n.heartbeat_at, "alive": n.alive(now, dead_after),
                    "live_calls": n.live_calls,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(all));
        return Ok(());
    }
    if rows.is_empty() {
        println!("no nodes (none has run with cluster.enabled)");
        return Ok(());
    }
    println!(
        "{:<16} {:<6} {:>9} {:>10}  {:<26} SIP",
        "NODE", "STATE", "HEARD", "LIVE CALLS", "HTTP"
    );
    for n in rows {
        let state = if n.alive(now, dead_after) {
            "alive"
        } else {
            "dead"
        };
        let heard = format!("{:.1}s ago", (now - n.heartbeat_at).max(0) as f64 / 1000.0);
        println!(
            "{:<16} {:<6} {:>9} {:>10}  {:<26} {}",
            n.id, state, heard, n.live_calls, n.http, n.sip
        );
    }
    Ok(())
}

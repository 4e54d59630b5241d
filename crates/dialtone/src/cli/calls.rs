//! `calls list`: the call records, as a table or as JSON.

use anyhow::Result;
use clap::Subcommand;
use dialtone_store::{CallRecord, Store};

#[derive(Subcommand)]
pub enum CallsCommand {
    /// Newest first.
    List {
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// One JSON array, for scripts.
        #[arg(long)]
        json: bool,
    },
}

fn json_of(r: &CallRecord) -> serde_json::Value {
    let parse =
        |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap_or(serde_json::Value::Null);
    serde_json::json!({
        "id": r.id, "node": r.node, "direction": r.direction,
        "from_uri": r.from_uri, "to_uri": r.to_uri, "caller": r.caller, "callee": r.callee,
        "started_at": r.started_at, "answered_at": r.answered_at, "ended_at": r.ended_at,
        "outcome": r.outcome, "hangup_cause": r.hangup_cause, "hangup_side": r.hangup_side,
        "codecs": r.codecs, "legs": parse(&r.legs),
        "stats": r.stats.as_deref().map(parse), "recording": r.recording,
    })
}

pub async fn calls(store: &Store, cmd: CallsCommand) -> Result<()> {
    match cmd {
        CallsCommand::List { limit, json } => {
            let rows = store.calls().list(limit).await?;
            if json {
                let all: Vec<_> = rows.iter().map(json_of).collect();
                println!("{}", serde_json::Value::Array(all));
                return Ok(());
            }
            for r in rows {
                let secs = r.ended_at.zip(r.answered_at).map(|(e, a)| (e - a) / 1000);
                println!(
                    "{}\t{}\t{} -> {}\t{}\t{}\t{}\t{}\t{}",
                    r.id,
                    r.direction,
                    r.caller,
                    r.callee,
                    r.outcome.as_deref().unwrap_or("active"),
                    r.hangup_cause.as_deref().unwrap_or("-"),
                    r.hangup_side.as_deref().unwrap_or("-"),
                    secs.map(|s| format!("{s}s")).unwrap_or_else(|| "-".into()),
                    r.recording.as_deref().unwrap_or("-"),
                );
            }
        }
    }
    Ok(())
}

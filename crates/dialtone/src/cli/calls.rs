//! `calls list` and `calls show`: the call records, as a table, one record
//! in full (legs, stats, the transcript of an AI conversation), or as JSON.

use anyhow::{bail, Result};
use clap::Subcommand;
use dialtone_store::{CallRecord, Store};
use serde_json::Value;

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
    /// One call record in full: times, outcome, persona, legs, stats and the transcript.
    Show {
        id: String,
        /// One JSON object, for scripts.
        #[arg(long)]
        json: bool,
    },
}

/// JSON text stored by the switch, parsed (null when it does not parse).
fn parse(s: &str) -> Value {
    serde_json::from_str::<Value>(s).unwrap_or(Value::Null)
}

pub fn json_of(r: &CallRecord) -> Value {
    serde_json::json!({
        "id": r.id, "node": r.node, "direction": r.direction,
        "from_uri": r.from_uri, "to_uri": r.to_uri, "caller": r.caller, "callee": r.callee,
        "started_at": r.started_at, "answered_at": r.answered_at, "ended_at": r.ended_at,
        "outcome": r.outcome, "hangup_cause": r.hangup_cause, "hangup_side": r.hangup_side,
        "codecs": r.codecs, "legs": parse(&r.legs),
        "stats": r.stats.as_deref().map(parse), "recording": r.recording,
        "persona": r.persona, "transcript": r.transcript.as_deref().map(parse),
    })
}

/// Answered-to-ended duration in whole seconds, as `calls list` shows it.
fn duration(r: &CallRecord) -> String {
    r.ended_at
        .zip(r.answered_at)
        .map_or_else(|| "-".into(), |(e, a)| format!("{}s", (e - a) / 1000))
}

pub async fn calls(store: &Store, cmd: CallsCommand) -> Result<()> {
    match cmd {
        CallsCommand::List { limit, json } => {
            let rows = store.calls().list(limit).await?;
            if json {
                let all: Vec<_> = rows.iter().map(json_of).collect();
                println!("{}", Value::Array(all));
                return Ok(());
            }
            for r in rows {
                println!(
                    "{}\t{}\t{} -> {}\t{}\t{}\t{}\t{}\t{}\t{}",
                    r.id,
                    r.direction,
                    r.caller,
                    r.callee,
                    r.outcome.as_deref().unwrap_or("active"),
                    r.hangup_cause.as_deref().unwrap_or("-"),
                    r.hangup_side.as_deref().unwrap_or("-"),
                    duration(&r),
                    r.recording.as_deref().unwrap_or("-"),
                    r.persona
                        .as_deref()
                        .map_or_else(|| "-".to_owned(), |p| format!("persona:{p}")),
                );
            }
        }
        CallsCommand::Show { id, json } => {
            let Some(r) = store.calls().get(&id).await? else {
                bail!("no call {id} (see `dialtone calls list` for the ids)");
            };
            if json {
                println!("{}", json_of(&r));
            } else {
                print!("{}", show_text(&r));
            }
        }
    }
    Ok(())
}

fn time_of(unix_ms: Option<i64>) -> String {
    unix_ms.map_or_else(
        || "-".to_owned(),
        |ms| {
            jiff::Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
        },
    )
}

fn show_text(r: &CallRecord) -> String {
    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_owned());
    let rows: [(&str, String); 17] = [
        ("id", r.id.clone()),
        ("node", r.node.clone()),
        ("direction", r.direction.clone()),
        ("caller", r.caller.clone()),
        ("callee", r.callee.clone()),
        ("from", r.from_uri.clone()),
        ("to", r.to_uri.clone()),
        ("started", time_of(Some(r.started_at))),
        ("answered", time_of(r.answered_at)),
        ("ended", time_of(r.ended_at)),
        (
            "outcome",
            r.outcome.clone().unwrap_or_else(|| "active".to_owned()),
        ),
        ("hangup_cause", or_dash(&r.hangup_cause)),
        ("hangup_side", or_dash(&r.hangup_side)),
        ("duration", duration(r)),
        ("codecs", or_dash(&r.codecs)),
        ("recording", or_dash(&r.recording)),
        ("persona", or_dash(&r.persona)),
    ];
    let mut out = String::new();
    for (label, value) in rows {
        out.push_str(&format!("{:<14}{value}\n", format!("{label}:")));
    }
    out.push_str(&format!("legs:\n{}\n", indented_json(&r.legs)));
    if let Some(stats) = &r.stats {
        out.push_str(&format!("stats:\n{}\n", indented_json(stats)));
    }
    match r.transcript.as_deref().map(transcript_lines) {
        Some(lines) => {
            out.push_str("transcript:\n");
            for line in lines {
                out.push_str(&format!("    {line}\n"));
            }
        }
        None => out.push_str("transcript:   -\n"),
    }
    out
}

/// Pretty JSON, indented under its label; the text as stored if it is not JSON.
fn indented_json(text: &str) -> String {
    let pretty = serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| text.to_owned());
    pretty
        .lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `[mm:ss] side: text` for each entry (at_ms counts from the call's start);
/// the stored text as one line when it is not the expected JSON array.
fn transcript_lines(text: &str) -> Vec<String> {
    let Ok(Value::Array(entries)) = serde_json::from_str::<Value>(text) else {
        return vec![text.to_owned()];
    };
    entries
        .iter()
        .map(|e| {
            let at = e.get("at_ms").and_then(Value::as_i64).unwrap_or(0).max(0) / 1000;
            let side = e.get("side").and_then(Value::as_str).unwrap_or("?");
            // One line per entry, whatever the text holds.
            let said = e
                .get("text")
                .and_then(Value::as_str)
                .unwrap_or("")
                .replace(['\r', '\n'], " ");
            format!("[{:02}:{:02}] {side}: {said}", at / 60, at % 60)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcript_lines_count_from_the_start() {
        let text = r#"[{"side":"agent","text":"Hello","at_ms":120},
                       {"side":"caller","text":"Hi there","at_ms":65999},
                       {"side":"agent","text":"Bye","at_ms":3723000}]"#;
        assert_eq!(
            transcript_lines(text),
            [
                "[00:00] agent: Hello",
                "[01:05] caller: Hi there",
                "[62:03] agent: Bye"
            ]
        );
        assert_eq!(transcript_lines("not json"), ["not json"]);
        assert!(transcript_lines("[]").is_empty());
    }
}

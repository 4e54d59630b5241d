//! The call record: written when the call starts (so a crash leaves an
//! "active" row rather than nothing), updated when it is answered, and
//! completed when it ends with outcome, cause, which side hung up, the
//! legs, the codec and the per-leg packet counts.

use dialtone_media::EndpointStats;
use dialtone_store::CallRecord;
use rsip::headers::UntypedHeader;
use rsip::{Header, Request};

use super::leg::Leg;
use super::live::TranscriptLine;
use super::Origin;
use crate::router::Target;

pub struct Record {
    pub rec: CallRecord,
    /// Both sides of an AI conversation, as heard.
    pub transcript: Vec<TranscriptLine>,
    /// Why the AI agent's model could not be reached or was lost.
    pub ai_failure: Option<String>,
    /// What a test call measured.
    pub probe: Option<super::probe::ProbeReport>,
    /// The persona's external MCP servers that could not be used: (server,
    /// reason); the call went on without their tools.
    pub mcp_failures: Vec<(String, String)>,
    caller_label: String,
}

use super::outbox::RecordOutbox;
use crate::registrar::unix_now_ms as now_ms;

fn user_of(headers: &rsip::Headers, pick: fn(&Header) -> Option<&str>) -> (String, String) {
    let value = headers.iter().find_map(pick).unwrap_or_default();
    let user = dialtone_sip::message::NameAddr::parse(value)
        .ok()
        .and_then(|n| n.uri.auth.map(|a| a.user))
        .unwrap_or_default();
    (value.to_string(), user)
}

impl Record {
    /// The record of a call dialtone places: from `from` (the number shown)
    /// to `to` (the customer).
    pub fn outbound(
        id: &str,
        node: &str,
        origin: &Origin,
        from: &str,
        to: &str,
        domain: &str,
    ) -> Record {
        let mut r = Record::blank(id, node, origin, "outbound");
        r.rec.from_uri = format!("<sip:{from}@{domain}>");
        r.rec.to_uri = format!("<sip:{to}@{domain}>");
        r.rec.caller = from.to_string();
        r.rec.callee = to.to_string();
        r
    }

    pub fn new(id: &str, node: &str, invite: &Request, origin: &Origin, target: &Target) -> Record {
        let (from_uri, caller) = user_of(&invite.headers, |h| match h {
            Header::From(f) => Some(f.value()),
            _ => None,
        });
        let (to_uri, callee) = user_of(&invite.headers, |h| match h {
            Header::To(t) => Some(t.value()),
            _ => None,
        });
        let to_trunk = matches!(target, Target::Trunk { .. });
        let direction = match (origin.from_trunk, to_trunk) {
            (true, _) => "inbound",
            (false, true) => "outbound",
            (false, false) => "internal",
        };
        let mut r = Record::blank(id, node, origin, direction);
        r.rec.from_uri = from_uri;
        r.rec.to_uri = to_uri;
        r.rec.caller = caller;
        r.rec.callee = callee;
        r
    }

    fn blank(id: &str, node: &str, origin: &Origin, direction: &str) -> Record {
        Record {
            rec: CallRecord {
                account_id: origin.account_id.clone(),
                id: id.to_string(),
                node: node.to_string(),
                direction: direction.to_string(),
                from_uri: String::new(),
                to_uri: String::new(),
                caller: String::new(),
                callee: String::new(),
                started_at: now_ms(),
                answered_at: None,
                ended_at: None,
                outcome: None,
                hangup_cause: None,
                hangup_side: None,
                codecs: None,
                legs: "[]".into(),
                stats: None,
                recording: None,
                persona: None,
                transcript: None,
            },
            transcript: Vec::new(),
            ai_failure: None,
            mcp_failures: Vec::new(),
            probe: None,
            caller_label: origin.label.clone(),
        }
    }

    /// Adds a line to the transcript and returns it.
    pub fn transcript_line(&mut self, side: &str, text: &str) -> TranscriptLine {
        let line = TranscriptLine {
            side: side.to_string(),
            text: text.to_string(),
            at_ms: (now_ms() - self.rec.started_at).max(0),
        };
        self.transcript.push(line.clone());
        line
    }

    pub fn caller_label(&self) -> String {
        self.caller_label.clone()
    }

    // The first cause, outcome and side recorded win: later ones are
    // consequences (the BYE we send after the caller's BYE, say).
    pub fn outcome(&mut self, o: &str) {
        self.rec.outcome.get_or_insert_with(|| o.to_string());
    }

    pub fn cause(&mut self, c: &str) {
        self.rec.hangup_cause.get_or_insert_with(|| c.to_string());
    }

    pub fn end_side(&mut self, s: &str) {
        self.rec.hangup_side.get_or_insert_with(|| s.to_string());
    }

    pub fn answered(&mut self, callee_label: &str) {
        self.rec.answered_at = Some(now_ms());
        self.rec.outcome = Some("answered".into());
        tracing::debug!(call = %self.rec.id, callee = callee_label, "answered");
    }

    pub fn transferred(&mut self, to_label: &str) {
        tracing::debug!(call = %self.rec.id, to = to_label, "transferred");
    }

    pub fn finish(&mut self, legs: &[Leg], stats: &[(String, Option<EndpointStats>)]) {
        self.rec.ended_at = Some(now_ms());
        if self.rec.outcome.is_none() {
            self.rec.outcome = Some("failed".into());
        }
        let legs_json: Vec<serde_json::Value> = legs
            .iter()
            .map(|l| {
                serde_json::json!({
                    "label": l.label,
                    "role": l.role.as_str(),
                    "sip_call_id": l.sip_call_id,
                    "peer": l.peer.to_string(),
                    "final_status": l.final_status.as_ref().map(|(c, r)| format!("{c} {r}")),
                })
            })
            .collect();
        self.rec.legs = serde_json::Value::Array(legs_json).to_string();
        // Each leg's codec, in leg order; two different ones mean the call
        // was transcoded ("opus/48000 PCMU/8000").
        let mut codecs: Vec<String> = Vec::new();
        for c in legs.iter().filter_map(|l| l.codec.as_ref()) {
            let c = super::live::codec_name(c);
            if !codecs.contains(&c) {
                codecs.push(c);
            }
        }
        if !codecs.is_empty() {
            self.rec.codecs = Some(codecs.join(" "));
        }
        let mut stats_json: serde_json::Map<String, serde_json::Value> = stats
            .iter()
            .enumerate()
            .map(|(i, (label, s))| {
                let v = match s {
                    Some(s) => serde_json::json!({
                        "label": label,
                        "rtp_in": s.rtp_in, "rtp_out": s.rtp_out,
                        "bytes_in": s.bytes_in, "bytes_out": s.bytes_out,
                        "rtcp_in": s.rtcp_in, "rtcp_out": s.rtcp_out,
                        "dropped": s.dropped,
                        "srtp": s.srtp, "srtp_rejected": s.srtp_rejected,
                        "latched": s.latched.map(|a| a.to_string()),
                        // The jitter buffer's view, where this leg's audio
                        // was decoded (transcoding).
                        "jitter": s.jitter.as_ref().map(|j| serde_json::json!({
                            "received": j.received, "played": j.played,
                            "lost": j.lost, "late": j.late,
                            "duplicates": j.duplicates, "discarded": j.discarded,
                            "concealed": j.concealed,
                            "jitter_ms": (j.jitter_ms * 100.0).round() / 100.0,
                            "delay_ms": j.delay_ms, "max_delay_ms": j.max_delay_ms,
                        })),
                    }),
                    None => serde_json::json!({ "label": label }),
                };
                (format!("leg{i}"), v)
            })
            .collect();
        if let Some(p) = self
            .probe
            .as_ref()
            .and_then(|p| serde_json::to_value(p).ok())
        {
            stats_json.insert("probe".into(), p);
        }
        if let Some(f) = &self.ai_failure {
            stats_json.insert("ai_failure".into(), serde_json::Value::String(f.clone()));
        }
        if !self.mcp_failures.is_empty() {
            let failures = self
                .mcp_failures
                .iter()
                .map(|(server, reason)| serde_json::json!({"server": server, "reason": reason}))
                .collect();
            stats_json.insert("mcp_failures".into(), serde_json::Value::Array(failures));
        }
        self.rec.stats = Some(serde_json::Value::Object(stats_json).to_string());
        if !self.transcript.is_empty() {
            self.rec.transcript = serde_json::to_string(&self.transcript).ok();
        }
    }

    /// Hands the record as it is now to `outbox`, which writes it to the
    /// database behind the call (batched; the call never waits for it).
    pub fn save(&self, outbox: &RecordOutbox) {
        outbox.put(&self.rec);
    }
}

//! The SIP-account tools, with the names and arguments a lightweight MCP
//! SIP client offers, each real in dialtone's terms: `sip_configure` makes
//! (or updates) the trunk `sip-account` that registers upstream and answers
//! with the registration's real outcome; `sip_call` places a test call
//! through it (a tone, an echo check, RTP counts, loss, jitter);
//! `sip_status`, `sip_statistics` and `sip_reset` report and reset.

use std::time::Duration;

use dialtone_store::NewTrunk;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{arguments, FnTool, ToolAnnotations, ToolContext, ToolError, ToolOutput, ToolSpec};
use crate::call::{CallCommand, CallNotice, Outbound, Talker};
use crate::control::{CallControl, Scope};
use crate::router::{Caller, Target};

/// The trunk the SIP-account tools manage.
pub const TRUNK: &str = "sip-account";
const MAX_CALL_SECS: u64 = 3600;

fn spec(name: &str, description: &str, input: Value, annotations: ToolAnnotations) -> ToolSpec {
    ToolSpec {
        name: name.into(),
        description: description.into(),
        input_schema: input,
        output_schema: None,
        annotations,
        call_bound: false,
    }
}

fn db(e: dialtone_store::StoreError) -> ToolError {
    ToolError::Failed(format!("database: {e}"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ConfigureArgs {
    sip_server: String,
    username: String,
    password: String,
    domain: String,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default)]
    local_port: Option<u16>,
}

pub fn sip_configure() -> FnTool {
    FnTool::new(
        spec(
            "sip_configure",
            "Configure the SIP account (a provider that dialtone registers with) and register \
             now. Answers with the registration's real outcome.",
            json!({
                "type": "object",
                "properties": {
                    "sipServer": {"type": "string", "description": "The provider's SIP server (host name or address)."},
                    "username": {"type": "string"},
                    "password": {"type": "string"},
                    "domain": {"type": "string", "description": "The SIP domain of the account."},
                    "port": {"type": "integer", "minimum": 1, "maximum": 65535, "description": "Default 5060."},
                    "localPort": {"type": "integer", "minimum": 1, "maximum": 65535, "description": "dialtone's own SIP port (it cannot change at runtime)."}
                },
                "required": ["sipServer", "username", "password", "domain"],
                "additionalProperties": false
            }),
            ToolAnnotations {
                idempotent: true,
                open_world: true,
                ..Default::default()
            },
        ),
        |c, x, a| Box::pin(configure(c, x, a)),
    )
}

async fn configure(
    control: &CallControl,
    _ctx: &ToolContext,
    args: Value,
) -> Result<ToolOutput, ToolError> {
    let a: ConfigureArgs = arguments(args)?;
    let bad = |m: String| ToolError::InvalidArguments(m);
    let server = a.sip_server.trim();
    if server.is_empty() || server.contains(['/', ' ', '@']) {
        return Err(bad(format!(
            "sipServer must be a host name or address, not {server:?}"
        )));
    }
    if a.username.trim().is_empty() || a.password.is_empty() || a.domain.trim().is_empty() {
        return Err(bad("username, password and domain must not be empty".into()));
    }
    let ctx = control.context();
    let ours: Vec<u16> = ctx
        .layer
        .transports()
        .local_addrs()
        .iter()
        .map(|(_, a)| a.port())
        .collect();
    if let Some(p) = a.local_port.filter(|p| !ours.contains(p)) {
        return Err(bad(format!(
            "dialtone's SIP listens on port(s) {ours:?}; localPort {p} cannot be changed at runtime (sip.listen in the config)"
        )));
    }
    let port = a.port.unwrap_or(5060);
    let host = if server.contains(':') && !server.starts_with('[') {
        format!("[{server}]:{port}")
    } else {
        format!("{server}:{port}")
    };
    // Calls from the provider are recognised by its address.
    let ips: Vec<String> = tokio::net::lookup_host(&host)
        .await
        .map_err(|e| bad(format!("{server} does not resolve: {e}")))?
        .map(|s| s.ip().to_string())
        .collect();
    let trunk = control
        .store()
        .trunks()
        .upsert(NewTrunk {
            name: TRUNK,
            host: Some(&host),
            transport: "udp",
            inbound_ips: &ips,
            username: Some(a.username.trim()),
            password: Some(&a.password),
            register: true,
        })
        .await
        .map_err(db)?;
    let result =
        crate::uplink::register_now(&ctx.layer, &trunk, &ctx.cfg.user_agent, &ctx.uplinks).await;
    match result {
        Ok(expires) => Ok(ToolOutput::with(
            format!(
                "registered {}@{} with {host} (expires in {expires} s)",
                a.username.trim(),
                a.domain.trim()
            ),
            json!({"registered": true, "trunk": TRUNK, "server": host, "expires": expires}),
        )),
        Err(e) => Err(ToolError::Failed(format!(
            "the account is saved, but registration with {host} failed: {e}"
        ))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CallArgs {
    phone_number: String,
    #[serde(default)]
    duration: Option<u64>,
}

pub fn sip_call() -> FnTool {
    FnTool::new(
        spec(
            "sip_call",
            "Place a test call through the SIP account: it plays a tone for `duration` \
             seconds, checks that the audio comes back (echo), hangs up, and reports the \
             outcome, RTP counts, loss and jitter.",
            json!({
                "type": "object",
                "properties": {
                    "phoneNumber": {"type": "string"},
                    "duration": {"type": "integer", "minimum": 1, "maximum": MAX_CALL_SECS, "description": "Seconds, default 10."}
                },
                "required": ["phoneNumber"],
                "additionalProperties": false
            }),
            ToolAnnotations {
                open_world: true,
                ..Default::default()
            },
        ),
        |c, x, a| Box::pin(call(c, x, a)),
    )
}

async fn call(
    control: &CallControl,
    ctx: &ToolContext,
    args: Value,
) -> Result<ToolOutput, ToolError> {
    let a: CallArgs = arguments(args)?;
    let secs = a.duration.unwrap_or(10);
    if !(1..=MAX_CALL_SECS).contains(&secs) {
        return Err(ToolError::InvalidArguments(format!(
            "duration must be 1 to {MAX_CALL_SECS} seconds, not {secs}"
        )));
    }
    let number: String = a
        .phone_number
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
        .collect();
    if number.is_empty()
        || !number
            .chars()
            .all(|c| c.is_ascii_digit() || "+*#".contains(c))
    {
        return Err(ToolError::InvalidArguments(format!(
            "{:?} is not a phone number",
            a.phone_number
        )));
    }
    let trunk = control
        .store()
        .trunks()
        .get(TRUNK)
        .await
        .map_err(db)?
        .ok_or_else(|| ToolError::Failed("no SIP account: call sip_configure first".into()))?;
    let out = Outbound {
        customer: Target::Trunk {
            trunk,
            number: number.clone(),
        },
        customer_label: number.clone(),
        talker: Talker::Probe(Duration::from_secs(secs)),
        from_number: None,
        account_id: ctx.account_id.clone(),
        who: Caller::Operator,
    };
    let handle = crate::call::start_outbound(control.context().clone(), out)
        .await
        .map_err(|e| ToolError::Failed(format!("the test call was not placed: {e}")))?;
    let mut notices = handle.subscribe();
    let id = handle.id.to_string();
    // Ringing, then the tone: bounded by both.
    let limit =
        Duration::from_secs(secs) + control.context().cfg.ring_timeout + Duration::from_secs(10);
    let ended = tokio::time::timeout(limit, async {
        loop {
            match notices.recv().await {
                Ok(CallNotice::Ended { .. })
                | Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                _ => {}
            }
        }
    })
    .await;
    if ended.is_err() {
        let _ = handle
            .command(CallCommand::Hangup {
                cause: "sip_call timed out".into(),
                after_playout: false,
            })
            .await;
    }
    // The record is written before the call says it ended.
    let rec = control.record(&id).await.map_err(db)?;
    let rec = rec.ok_or_else(|| ToolError::Failed(format!("call {id} left no record")))?;
    let stats: Value = rec
        .stats
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null);
    let probe = stats.get("probe").cloned().unwrap_or(Value::Null);
    let outcome = rec.outcome.clone().unwrap_or_else(|| "failed".into());
    let text = match probe.get("echo").and_then(Value::as_bool) {
        Some(echo) => format!(
            "call {outcome}; echo {}; {} RTP packets sent, {} received, {} lost, jitter {} ms",
            if echo { "ok" } else { "NOT heard" },
            probe["rtp_sent"],
            probe["rtp_received"],
            probe["lost"],
            probe["jitter_ms"]
        ),
        None => format!(
            "call {outcome}: {}",
            rec.hangup_cause.as_deref().unwrap_or("no answer")
        ),
    };
    Ok(ToolOutput::with(
        text,
        json!({"callId": id, "outcome": outcome, "cause": rec.hangup_cause, "probe": probe}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusArgs {
    #[serde(default)]
    detailed: bool,
}

pub fn sip_status() -> FnTool {
    FnTool::new(
        spec(
            "sip_status",
            "The SIP account's registration state, dialtone's listen addresses and the active calls.",
            json!({"type": "object", "properties": {"detailed": {"type": "boolean"}}, "additionalProperties": false}),
            ToolAnnotations {
                read_only: true,
                idempotent: true,
                ..Default::default()
            },
        ),
        |c, x, a| Box::pin(status(c, x, a)),
    )
}

async fn status(
    control: &CallControl,
    ctx: &ToolContext,
    args: Value,
) -> Result<ToolOutput, ToolError> {
    let StatusArgs { detailed } = arguments(args)?;
    let c = control.context();
    let reg = c.uplinks.get(TRUNK);
    let listen: Vec<String> = c
        .layer
        .transports()
        .local_addrs()
        .iter()
        .map(|(p, a)| format!("{p}:{a}"))
        .collect();
    let scope = match &ctx.account_id {
        Some(a) => Scope::Account(a),
        None => Scope::Operator,
    };
    let calls = control.list(scope);
    let state = match &reg {
        Some(r) if r.registered => "registered",
        Some(_) => "registration failed",
        None => "not configured",
    };
    let mut out = json!({
        "registration": state,
        "lastError": reg.as_ref().and_then(|r| r.last_error.clone()),
        "expiresAt": reg.as_ref().and_then(|r| r.expires_at),
        "listen": listen,
        "activeCalls": calls.len(),
    });
    if detailed {
        out["trunks"] = json!(c
            .uplinks
            .all()
            .into_iter()
            .map(|(name, r)| json!({"trunk": name, "registered": r.registered, "lastError": r.last_error, "expiresAt": r.expires_at}))
            .collect::<Vec<_>>());
        out["calls"] = json!(calls);
    }
    Ok(ToolOutput::with(
        format!(
            "SIP account: {state}; listening on {}; {} active call(s)",
            listen.join(", "),
            calls.len()
        ),
        out,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoArgs {}

pub fn sip_statistics() -> FnTool {
    FnTool::new(
        spec(
            "sip_statistics",
            "Success rate and RTP figures of the test calls sip_call placed (since sip_reset).",
            json!({"type": "object", "properties": {}, "additionalProperties": false}),
            ToolAnnotations {
                read_only: true,
                idempotent: true,
                ..Default::default()
            },
        ),
        |c, _x, a| {
            Box::pin(async move {
                let NoArgs {} = arguments(a)?;
                let t = c.context().probes.totals();
                let rate = if t.calls == 0 {
                    0.0
                } else {
                    t.answered as f64 / t.calls as f64
                };
                let out = json!({
                    "calls": t.calls, "answered": t.answered, "failed": t.failed,
                    "successRate": (rate * 1000.0).round() / 1000.0, "echoOk": t.echo_ok,
                    "rtpSent": t.rtp_sent, "rtpReceived": t.rtp_received, "lost": t.lost,
                    "jitterMs": (t.jitter_ms * 100.0).round() / 100.0,
                });
                Ok(ToolOutput::with(
                    format!(
                        "{} test call(s), {} answered ({:.0}%), echo ok on {}; RTP {} sent, {} received, {} lost",
                        t.calls, t.answered, rate * 100.0, t.echo_ok, t.rtp_sent, t.rtp_received, t.lost
                    ),
                    out,
                ))
            })
        },
    )
}

pub fn sip_reset() -> FnTool {
    FnTool::new(
        spec(
            "sip_reset",
            "End the test calls sip_call placed and zero their statistics (call records are kept).",
            json!({"type": "object", "properties": {}, "additionalProperties": false}),
            ToolAnnotations {
                destructive: true,
                idempotent: true,
                ..Default::default()
            },
        ),
        |c, _x, a| {
            Box::pin(async move {
                let NoArgs {} = arguments(a)?;
                let live = c.context().probes.reset();
                let mut ended = 0;
                for id in &live {
                    let cmd = CallCommand::Hangup {
                        cause: "sip_reset".into(),
                        after_playout: false,
                    };
                    if c.command(id, Scope::Operator, cmd).await.is_ok() {
                        ended += 1;
                    }
                }
                Ok(ToolOutput::with(
                    format!("statistics reset; {ended} test call(s) ended"),
                    json!({"ended": ended}),
                ))
            })
        },
    )
}

//! A persona (its row in the store) into an agent's configuration: the
//! realtime session (URL, key from the environment, model, voice, turn
//! detection, the call-bound tools of the registry) and the agent's own
//! behaviour (greeting, barge-in guard, idle timeout). Instructions may use
//! variables filled per call: `{caller_number}`, `{called_number}`,
//! `{contact_name}`, `{date}` and `{time}` in the persona's time zone.
//! The persona's external MCP servers go to the agent as they are stored
//! (header values keep their `${NAME}`: the agent reads the environment when
//! it connects).

use std::time::Duration;

use dialtone_ai::agent::AgentConfig;
use dialtone_ai::mcp_client::{ExternalServer, ServerTransport};
use dialtone_ai::{AudioFormat, Provider, SessionConfig, ToolSpec, TurnDetection};
use dialtone_store::{split_command, McpTransport, Persona, PersonaMcpServer, Store};

use super::super::actor::Call;
use super::AgentSettings;
use crate::tools::ToolContext;

/// The values an instruction template may use.
pub struct Variables {
    pub caller_number: String,
    pub called_number: String,
    pub contact_name: String,
    pub date: String,
    pub time: String,
    pub tools: Vec<ToolSpec>,
    /// More variables (`assistantOverrides.variableValues` of a call an
    /// assistant places).
    pub extra: Vec<(String, String)>,
}

impl Variables {
    pub async fn of(call: &Call, persona: &Persona) -> Variables {
        // The number of the person on the line, and the number they are
        // in touch with: the other way round on a call dialtone placed.
        let (caller, called) = if call.placed {
            (&call.record.rec.callee, &call.record.rec.caller)
        } else {
            (&call.record.rec.caller, &call.record.rec.callee)
        };
        let (date, time) = local_date_time(&persona.timezone);
        let ctx = ToolContext {
            account_id: Some(persona.account_id.clone()),
            persona: Some(persona.name.clone()),
            call_id: Some(call.id.to_string()),
            caller_number: Some(caller.clone()),
        };
        let control = crate::control::CallControl::new(call.ctx.clone());
        let tools = call
            .ctx
            .tools
            .list(&control, &ctx)
            .await
            .into_iter()
            .map(|t| ToolSpec {
                name: t.name,
                description: t.description,
                parameters: t.input_schema,
            })
            .collect();
        Variables {
            caller_number: caller.clone(),
            called_number: called.clone(),
            contact_name: String::new(),
            date,
            time,
            tools,
            extra: Vec::new(),
        }
    }
}

/// Today's date (2026-12-04) and the time (14:05) in time zone `tz` (an
/// IANA name; UTC when it is unknown).
fn local_date_time(tz: &str) -> (String, String) {
    let zone = jiff::tz::TimeZone::get(tz).unwrap_or(jiff::tz::TimeZone::UTC);
    let now = jiff::Timestamp::now().to_zoned_datetime(zone);
    (
        now.strftime("%Y-%m-%d (%A)").to_string(),
        now.strftime("%H:%M").to_string(),
    )
}

/// `template` with each `{name}` replaced; unknown names stay as written.
pub fn fill(template: &str, vars: &Variables) -> String {
    let pairs = [
        ("{caller_number}", vars.caller_number.as_str()),
        ("{called_number}", vars.called_number.as_str()),
        ("{contact_name}", vars.contact_name.as_str()),
        ("{date}", vars.date.as_str()),
        ("{time}", vars.time.as_str()),
    ];
    let mut out = template.to_string();
    for (k, v) in vars.extra.iter() {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    for (k, v) in pairs {
        out = out.replace(k, v);
    }
    out
}

fn turn_detection(p: &Persona) -> TurnDetection {
    match p.turn_detection.as_str() {
        "none" => TurnDetection::Manual,
        "semantic_vad" => TurnDetection::SemanticVad {
            eagerness: p.vad_eagerness.clone().unwrap_or_else(|| "auto".into()),
        },
        _ => TurnDetection::ServerVad {
            threshold: p.vad_threshold.unwrap_or(0.5) as f32,
            prefix_padding_ms: p.vad_prefix_padding_ms.unwrap_or(300),
            silence_duration_ms: p.vad_silence_ms.unwrap_or(500),
        },
    }
}

/// The provider key: from the persona's variable, else the provider's
/// usual one. Never stored; absent is allowed (a local server may need
/// none) and logged.
fn api_key(p: &Persona, provider: Provider) -> Option<String> {
    let var = p.api_key_env.clone().unwrap_or_else(|| match provider {
        Provider::OpenAi => "OPENAI_API_KEY".into(),
        Provider::Gemini => "GEMINI_API_KEY".into(),
    });
    match std::env::var(&var) {
        Ok(k) if !k.is_empty() => Some(k),
        _ => {
            tracing::warn!(persona = %p.name, variable = %var, "no provider key in the environment");
            None
        }
    }
}

pub fn agent_config(
    p: &Persona,
    provider: Provider,
    settings: &AgentSettings,
    input: AudioFormat,
    output: AudioFormat,
    vars: &Variables,
) -> AgentConfig {
    let barge_in_min = Duration::from_millis(u64::from(p.barge_in_min_ms));
    AgentConfig {
        session: SessionConfig {
            provider,
            url: p.url.clone(),
            api_key: api_key(p, provider),
            model: p.model.clone(),
            voice: p.voice.clone(),
            instructions: fill(&p.instructions, vars),
            tools: vars.tools.clone(),
            input,
            output,
            turn_detection: turn_detection(p),
            // With a guard, dialtone decides when the caller interrupts.
            interrupt_response: barge_in_min.is_zero(),
            transcription_model: p.transcription_model.clone(),
            history: Vec::new(),
            resume_handle: None,
            connect_timeout: settings.connect_timeout,
        },
        greeting: p.greeting.as_deref().map(|g| fill(g, vars)),
        barge_in_min,
        idle_timeout: (p.idle_timeout_secs > 0)
            .then(|| Duration::from_secs(u64::from(p.idle_timeout_secs))),
        tool_timeout: settings.tool_timeout,
        filler_after: settings.filler_after,
        renew_after: settings.renew_after,
        drain_limit: settings.drain_limit,
        external: Vec::new(),
        external_budget: EXTERNAL_BUDGET,
    }
}

/// How long the agent may take to connect the persona's external MCP
/// servers, all together (the caller hears ringing meanwhile).
const EXTERNAL_BUDGET: Duration = Duration::from_secs(2);

/// The persona's external MCP servers for its agent. The call goes on
/// without them when they cannot be read.
pub async fn external_servers(store: &Store, p: &Persona) -> Vec<ExternalServer> {
    let rows = match store.persona_mcp_servers().list_for_persona(&p.id).await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(persona = %p.name, error = %e, "the persona's MCP servers could not be read");
            return Vec::new();
        }
    };
    let mut servers = Vec::new();
    for row in rows {
        match external_server(row) {
            Ok(s) => servers.push(s),
            Err((name, why)) => {
                tracing::warn!(persona = %p.name, server = %name, %why, "MCP server skipped")
            }
        }
    }
    servers
}

fn external_server(s: PersonaMcpServer) -> Result<ExternalServer, (String, String)> {
    let fail = |why: String| (s.name.clone(), why);
    let transport = match (s.transport, &s.url, &s.command) {
        (McpTransport::Http, Some(url), _) => ServerTransport::Http { url: url.clone() },
        (McpTransport::Sse, Some(url), _) => ServerTransport::Sse { url: url.clone() },
        (McpTransport::Stdio, _, Some(command)) => {
            let mut words = split_command(command).map_err(fail)?.into_iter();
            let program = words.next().ok_or_else(|| fail("no command".into()))?;
            ServerTransport::Stdio {
                program,
                args: words.collect(),
            }
        }
        (t, _, _) => return Err(fail(format!("transport {t} without its URL or command"))),
    };
    Ok(ExternalServer {
        name: s.name,
        transport,
        headers: s.headers,
        allow: s.allow,
        timeout: Duration::from_millis(u64::from(s.timeout_ms)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_filled_and_unknown_ones_kept() {
        let v = Variables {
            caller_number: "+15550100".into(),
            called_number: "+15550199".into(),
            contact_name: String::new(),
            date: "2026-12-04 (Friday)".into(),
            time: "09:30".into(),
            tools: Vec::new(),
            extra: vec![("first_name".into(), "Jeremy".into())],
        };
        assert_eq!(
            fill("Caller {caller_number} rang {called_number} at {time} on {date}; {contact_name}{other} {first_name}", &v),
            "Caller +15550100 rang +15550199 at 09:30 on 2026-12-04 (Friday); {other} Jeremy"
        );
    }

    #[test]
    fn time_zones_shift_the_clock() {
        let (_, utc) = local_date_time("UTC");
        let (_, tokyo) = local_date_time("Asia/Tokyo");
        assert_ne!(utc, tokyo, "Tokyo is 9 hours ahead of UTC");
        // An unknown zone falls back to UTC rather than failing the call.
        assert_eq!(local_date_time("Not/AZone").1.len(), utc.len());
    }
}

//! The model's tool calls: each runs as a task bounded by its timeout; its
//! answer goes back when the model can take it; a tool that runs long gets
//! a filler (a short line from OpenAI's model, hold beeps for Gemini).

use super::*;

const FILLER: &str = "A tool you called is still running. Tell the caller in one short \
    sentence that you are working on it; say nothing else.";

pub(super) struct RunningTool {
    name: String,
    started: Instant,
    filler: bool,
}

/// A tool call's end: its id, name, answer, and outcome for the stats.
pub(super) type ToolDone = (String, String, ToolReply, &'static str);

impl Agent {
    pub(super) fn start_tool(&mut self, call_id: String, name: String, arguments: String) {
        self.activity();
        tracing::debug!(%name, %call_id, "tool call");
        let fut = self.tools.call(&name, &arguments);
        let limit = self.tools.timeout(&name).unwrap_or(self.cfg.tool_timeout);
        self.in_flight.insert(
            call_id.clone(),
            RunningTool {
                name: name.clone(),
                started: Instant::now(),
                filler: false,
            },
        );
        self.running.spawn(async move {
            match tokio::time::timeout(limit, fut).await {
                Ok(reply) => {
                    let outcome = if reply.ok { "ok" } else { "error" };
                    (call_id, name, reply, outcome)
                }
                Err(_) => {
                    let reply = ToolReply {
                        output: format!(
                            "error: the tool {name} did not answer within {} s",
                            limit.as_secs()
                        ),
                        ok: false,
                    };
                    (call_id, name, reply, "timeout")
                }
            }
        });
    }

    pub(super) fn on_tool_done(&mut self, (call_id, name, reply, outcome): ToolDone) {
        self.in_flight.remove(&call_id);
        self.stats.tool(&name, outcome);
        self.activity();
        tracing::debug!(%name, %call_id, outcome, output = %reply.output, "tool answered");
        if self.cancelled.remove(&call_id) {
            return;
        }
        if self.in_flight.is_empty() {
            if let (Some(_), Some(p)) = (self.holding.take(), &self.player) {
                p.clear();
            }
        }
        self.send_when_idle(ClientCommand::ToolResult {
            call_id,
            name,
            output: reply.output,
        });
    }

    /// A filler for tools that run long: a short line from OpenAI's model,
    /// hold beeps for Gemini (it waits for the tool's answer).
    pub(super) fn fillers(&mut self, now: Instant) {
        if self.cfg.filler_after.is_zero() || self.ending {
            return;
        }
        let slow = self
            .in_flight
            .values()
            .any(|t| now.duration_since(t.started) >= self.cfg.filler_after);
        if !slow {
            return;
        }
        match self.provider {
            Provider::OpenAi => {
                let quiet = !self.generating() && self.queued().is_zero();
                let first = self
                    .in_flight
                    .values_mut()
                    .find(|t| !t.filler && now.duration_since(t.started) >= self.cfg.filler_after);
                if let (true, Some(t)) = (quiet, first) {
                    t.filler = true;
                    tracing::debug!(tool = %t.name, "filler line while a tool runs");
                    self.send_creating(ClientCommand::Respond {
                        instructions: Some(FILLER.into()),
                    });
                }
            }
            Provider::Gemini => {
                let Some(p) = self.player.clone() else { return };
                if p.queued() < Duration::from_millis(200) {
                    let _ = p.play(hold::beeps(self.cfg.session.output));
                    self.holding.get_or_insert(now);
                }
            }
        }
    }
}

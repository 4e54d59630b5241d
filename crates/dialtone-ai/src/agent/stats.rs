//! Counters of the agents of one process, for /metrics: agents active,
//! how long sessions took to open, tool calls by name and outcome,
//! barge-ins, reconnects and failures. Written from the agents' tasks,
//! read by whoever renders Prometheus text.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the session-open histogram buckets.
const OPEN_BUCKETS: [f64; 8] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0];

#[derive(Debug, Default)]
pub struct AgentStats {
    active: AtomicU64,
    sessions: AtomicU64,
    failures: AtomicU64,
    reconnects: AtomicU64,
    renewals: AtomicU64,
    barge_ins: AtomicU64,
    open: Mutex<Histogram>,
    tools: Mutex<BTreeMap<(String, &'static str), u64>>,
}

#[derive(Debug, Default)]
struct Histogram {
    buckets: [u64; OPEN_BUCKETS.len()],
    count: u64,
    sum: f64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl AgentStats {
    /// An agent started; the returned guard counts it active until dropped.
    pub fn started(self: &std::sync::Arc<Self>) -> ActiveGuard {
        self.active.fetch_add(1, Relaxed);
        ActiveGuard(std::sync::Arc::clone(self))
    }

    pub fn session_opened(&self, took: Duration) {
        self.sessions.fetch_add(1, Relaxed);
        let secs = took.as_secs_f64();
        let mut h = lock(&self.open);
        for (i, le) in OPEN_BUCKETS.iter().enumerate() {
            if secs <= *le {
                h.buckets[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    pub fn failed(&self) {
        self.failures.fetch_add(1, Relaxed);
    }

    pub fn reconnected(&self) {
        self.reconnects.fetch_add(1, Relaxed);
    }

    pub fn renewed(&self) {
        self.renewals.fetch_add(1, Relaxed);
    }

    pub fn barge_in(&self) {
        self.barge_ins.fetch_add(1, Relaxed);
    }

    /// A tool call ended: outcome "ok", "error" or "timeout".
    pub fn tool(&self, name: &str, outcome: &'static str) {
        *lock(&self.tools)
            .entry((name.to_string(), outcome))
            .or_insert(0) += 1;
    }

    pub fn active(&self) -> u64 {
        self.active.load(Relaxed)
    }

    pub fn barge_ins(&self) -> u64 {
        self.barge_ins.load(Relaxed)
    }

    /// Prometheus text exposition of every counter.
    pub fn render(&self, out: &mut String) {
        let counters = [
            (
                "dialtone_ai_calls_active",
                "gauge",
                "AI agents in calls now",
                self.active(),
            ),
            (
                "dialtone_ai_sessions_total",
                "counter",
                "Realtime sessions opened",
                self.sessions.load(Relaxed),
            ),
            (
                "dialtone_ai_failures_total",
                "counter",
                "Agents that could not reach their model",
                self.failures.load(Relaxed),
            ),
            (
                "dialtone_ai_reconnects_total",
                "counter",
                "Sessions re-established after a drop",
                self.reconnects.load(Relaxed),
            ),
            (
                "dialtone_ai_renewals_total",
                "counter",
                "Sessions renewed before the provider's limit",
                self.renewals.load(Relaxed),
            ),
            (
                "dialtone_ai_barge_ins_total",
                "counter",
                "Agent speech cut off by the caller",
                self.barge_ins(),
            ),
        ];
        for (name, kind, help, v) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        }
        let h = lock(&self.open);
        let name = "dialtone_ai_session_open_seconds";
        let _ = writeln!(out, "# HELP {name} Time to open a realtime session (websocket and setup)\n# TYPE {name} histogram");
        for (le, n) in OPEN_BUCKETS.iter().zip(h.buckets.iter()) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{le=\"+Inf\"}} {}\n{name}_sum {}\n{name}_count {}",
            h.count, h.sum, h.count
        );
        drop(h);
        let name = "dialtone_ai_tool_calls_total";
        let _ = writeln!(
            out,
            "# HELP {name} Tool calls by AI agents, by tool and outcome\n# TYPE {name} counter"
        );
        for ((tool, outcome), n) in lock(&self.tools).iter() {
            let tool = tool.replace(['\\', '"', '\n'], "_");
            let _ = writeln!(out, "{name}{{tool=\"{tool}\",outcome=\"{outcome}\"}} {n}");
        }
    }
}

/// Counts one agent as active while it lives.
pub struct ActiveGuard(std::sync::Arc<AgentStats>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn renders_prometheus_text() {
        let s = Arc::new(AgentStats::default());
        let g = s.started();
        s.session_opened(Duration::from_millis(80));
        s.tool("transfer_call", "ok");
        s.tool("transfer_call", "ok");
        s.barge_in();
        let mut out = String::new();
        s.render(&mut out);
        assert!(out.contains("dialtone_ai_calls_active 1"), "{out}");
        assert!(out.contains("dialtone_ai_barge_ins_total 1"));
        assert!(out.contains("dialtone_ai_session_open_seconds_bucket{le=\"0.1\"} 1"));
        assert!(out.contains("dialtone_ai_session_open_seconds_bucket{le=\"0.05\"} 0"));
        assert!(
            out.contains("dialtone_ai_tool_calls_total{tool=\"transfer_call\",outcome=\"ok\"} 2")
        );
        drop(g);
        assert_eq!(s.active(), 0);
    }
}

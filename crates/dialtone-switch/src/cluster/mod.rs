//! Several dialtone nodes on one database, behind a SIP load balancer
//! (Kamailio's dispatcher). Each node announces itself in the `nodes` table
//! and refreshes its heartbeat ([`heartbeat`]); a node whose heartbeat stops
//! is dead, and the survivors close the live call rows it owned. A tool call
//! about a call another live node owns is forwarded to that node over HTTP
//! with the cluster secret ([`forward`]), so the MCP door and the REST door
//! act on any call from any node.
//!
//! Off by default (one node on SQLite): the node id still names the owner of
//! every call row, and nothing is forwarded.

mod forward;
mod heartbeat;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use forward::{ForwardReply, ForwardRequest, FORWARD_PATH};

/// `[cluster]` as the switch uses it.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub enabled: bool,
    /// This node's id (also `calls.node`).
    pub node: String,
    /// Shared by the nodes; a forwarded request must carry it.
    pub secret: String,
    /// The base URL the other nodes reach this node's HTTP server at.
    pub advertise_http: String,
    /// This node's SIP address, for `dialtone nodes list`.
    pub advertise_sip: String,
    pub heartbeat: Duration,
    /// A node silent this long is dead.
    pub dead_after: Duration,
}

impl ClusterConfig {
    /// One node on its own.
    pub fn single(node: &str) -> ClusterConfig {
        ClusterConfig {
            enabled: false,
            node: node.to_string(),
            secret: String::new(),
            advertise_http: String::new(),
            advertise_sip: String::new(),
            heartbeat: Duration::from_secs(2),
            dead_after: Duration::from_secs(10),
        }
    }
}

/// Counters for /metrics.
#[derive(Debug, Default)]
pub struct ClusterStats {
    /// Other nodes whose heartbeat is fresh, as of the last beat.
    pub peers_alive: AtomicU64,
    pub forwarded_ok: AtomicU64,
    pub forwarded_failed: AtomicU64,
    /// Call rows of dead nodes this node closed.
    pub calls_reaped: AtomicU64,
}

/// This node's place in the cluster.
#[derive(Debug)]
pub struct Cluster {
    cfg: ClusterConfig,
    pub stats: ClusterStats,
}

impl Cluster {
    pub fn new(cfg: ClusterConfig) -> Cluster {
        Cluster {
            cfg,
            stats: ClusterStats::default(),
        }
    }

    pub fn config(&self) -> &ClusterConfig {
        &self.cfg
    }

    pub fn enabled(&self) -> bool {
        self.cfg.enabled
    }

    pub fn node(&self) -> &str {
        &self.cfg.node
    }

    /// Whether `presented` is the cluster secret (never with an empty one).
    pub fn admits(&self, presented: &str) -> bool {
        let secret = self.cfg.secret.as_bytes();
        if !self.cfg.enabled || secret.is_empty() || presented.len() != secret.len() {
            return false;
        }
        // Constant time over the length.
        presented
            .as_bytes()
            .iter()
            .zip(secret)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }

    pub fn peers_alive(&self) -> u64 {
        self.stats.peers_alive.load(Ordering::Relaxed)
    }

    /// The cluster's lines of /metrics; `calls_owned` is the live calls.
    pub fn render(&self, out: &mut String, calls_owned: usize) {
        use std::fmt::Write as _;
        let s = &self.stats;
        let node = self.cfg.node.replace(['\\', '"', '\n'], "_");
        let _ = writeln!(
            out,
            "# HELP dialtone_cluster_node_info This node's id; 1 when the cluster is on, else 0.\n\
             # TYPE dialtone_cluster_node_info gauge\n\
             dialtone_cluster_node_info{{node=\"{node}\"}} {}\n\
             # HELP dialtone_cluster_peers_alive Other nodes whose heartbeat is fresh.\n\
             # TYPE dialtone_cluster_peers_alive gauge\n\
             dialtone_cluster_peers_alive {}\n\
             # HELP dialtone_cluster_calls_owned Live calls this node owns.\n\
             # TYPE dialtone_cluster_calls_owned gauge\n\
             dialtone_cluster_calls_owned {calls_owned}\n\
             # HELP dialtone_cluster_forwarded_total Tool calls forwarded to the node owning their call, by result.\n\
             # TYPE dialtone_cluster_forwarded_total counter\n\
             dialtone_cluster_forwarded_total{{result=\"answered\"}} {}\n\
             dialtone_cluster_forwarded_total{{result=\"unreachable\"}} {}\n\
             # HELP dialtone_cluster_calls_reaped_total Calls of dead nodes this node marked ended.\n\
             # TYPE dialtone_cluster_calls_reaped_total counter\n\
             dialtone_cluster_calls_reaped_total {}",
            u8::from(self.cfg.enabled),
            self.peers_alive(),
            s.forwarded_ok.load(Ordering::Relaxed),
            s.forwarded_failed.load(Ordering::Relaxed),
            s.calls_reaped.load(Ordering::Relaxed),
        );
    }
}

pub use heartbeat::run as run_heartbeat;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_must_match_and_be_set() {
        let mut cfg = ClusterConfig::single("a");
        cfg.secret = "s3cret".into();
        assert!(!Cluster::new(cfg.clone()).admits("s3cret"), "disabled");
        cfg.enabled = true;
        let c = Cluster::new(cfg.clone());
        assert!(c.admits("s3cret"));
        assert!(!c.admits("s3cres") && !c.admits("s3cret!") && !c.admits(""));
        cfg.secret.clear();
        assert!(!Cluster::new(cfg).admits(""));
    }
}

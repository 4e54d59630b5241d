//! The sections of the configuration file, one struct each, with their
//! defaults (what `config/dialtone.toml` documents) and the checks that
//! belong to one section alone.

use anyhow::{bail, Result};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sip {
    pub listen: Vec<String>,
    pub domain: String,
    pub t1_ms: u64,
    pub t2_ms: u64,
    pub t4_ms: u64,
    pub user_agent: String,
    /// SIP proxies in front (Kamailio, an SBC): a request relayed by one is
    /// taken as from the address on the Via below the proxy's (trunk match,
    /// digest bans), and the proxies are exempt from the request rates.
    pub front_proxies: Vec<String>,
    /// The address written in Via and Contact for listeners on 0.0.0.0 or
    /// [::] (a public address in front of NAT); empty: the local address
    /// the system routes each destination from.
    pub advertise: String,
}

impl Default for Sip {
    fn default() -> Self {
        Sip {
            listen: vec!["udp:127.0.0.1:5060".into(), "tcp:127.0.0.1:5060".into()],
            domain: "127.0.0.1".into(),
            t1_ms: 500,
            t2_ms: 4000,
            t4_ms: 5000,
            user_agent: format!("dialtone/{}", env!("CARGO_PKG_VERSION")),
            front_proxies: Vec::new(),
            advertise: String::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Registrar {
    pub min_expires: u32,
    pub max_expires: u32,
    pub default_expires: u32,
    pub purge_interval_secs: u64,
}

impl Default for Registrar {
    fn default() -> Self {
        Registrar {
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            purge_interval_secs: 10,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Auth {
    pub nonce_ttl_secs: u64,
    pub max_failures: u32,
    pub failure_window_secs: u64,
    /// How long a source that reached max_failures stays banned.
    pub ban_secs: u64,
    pub lockout: String,
    pub algorithms: Vec<String>,
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            nonce_ttl_secs: 300,
            max_failures: 10,
            failure_window_secs: 60,
            ban_secs: 600,
            lockout: "403".into(),
            // MD5 only, as Kamailio, Asterisk and FreeSWITCH: many phones
            // (baresip 1.0 among them) give up on a 401 that carries any
            // challenge they do not know, even beside an MD5 one.
            algorithms: vec!["MD5".into()],
        }
    }
}

/// Per-source limits at the front door (Kamailio's pike, fail2ban).
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Abuse {
    /// Addresses and CIDR blocks the rates and the TCP limit never apply to.
    pub trusted: Vec<String>,
    /// New requests a second per source, and the burst allowed; a rate of
    /// 0 means no limit.
    pub register_rate: f64,
    pub register_burst: f64,
    pub invite_rate: f64,
    pub invite_burst: f64,
    pub options_rate: f64,
    pub options_burst: f64,
    pub other_rate: f64,
    pub other_burst: f64,
    /// "silence" (drop) or "503" (with Retry-After).
    pub over_rate: String,
    /// Drop requests whose User-Agent contains one of `scanner_user_agents`.
    pub drop_scanners: bool,
    pub scanner_user_agents: Vec<String>,
    /// Accepted TCP connections open at once per source; 0: no limit.
    pub tcp_max_per_source: usize,
    /// A TCP message (and a new connection's first one) must be complete
    /// this long after its first byte.
    pub tcp_message_timeout_secs: u64,
    /// A TCP connection with nothing in progress is closed after this long
    /// without a byte (above registrar.max_expires, so that phones
    /// registered over TCP stay reachable).
    pub tcp_idle_timeout_secs: u64,
}

impl Default for Abuse {
    fn default() -> Self {
        Abuse {
            trusted: vec!["127.0.0.0/8".into(), "::1".into()],
            register_rate: 20.0,
            register_burst: 60.0,
            invite_rate: 10.0,
            invite_burst: 30.0,
            options_rate: 10.0,
            options_burst: 20.0,
            other_rate: 30.0,
            other_burst: 60.0,
            over_rate: "silence".into(),
            drop_scanners: true,
            scanner_user_agents: [
                "friendly-scanner",
                "sipvicious",
                "sipcli",
                "sip-scan",
                "sipscan",
                "iwar",
                "sundayddr",
                "vaxsipuseragent",
                "sivus",
                "pplsip",
                "smap",
            ]
            .map(String::from)
            .to_vec(),
            tcp_max_per_source: 64,
            tcp_message_timeout_secs: 10,
            tcp_idle_timeout_secs: 3900,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Calls {
    pub ring_timeout_secs: u64,
    pub max_duration_secs: u64,
    /// Names this instance in call records (default: the host name).
    pub node: String,
    /// RFC 4028 session interval asked for; 0 turns session timers off.
    pub session_expires_secs: u64,
    /// The shortest session interval accepted (422 below it).
    pub min_se_secs: u64,
}

impl Default for Calls {
    fn default() -> Self {
        Calls {
            ring_timeout_secs: 60,
            max_duration_secs: 14_400,
            node: String::new(),
            session_expires_secs: 1800,
            min_se_secs: 90,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Media {
    pub rtp_ports: String,
    pub advertise_ip: String,
    /// Where RTP sockets bind; empty means advertise_ip.
    pub bind_ip: String,
    pub rtp_timeout_secs: u64,
    /// SRTP policy of parties without their own (`--srtp` on a user or
    /// trunk): "off", "optional" or "required".
    pub srtp: dialtone_store::SrtpPolicy,
}

impl Default for Media {
    fn default() -> Self {
        Media {
            rtp_ports: "20000-29999".into(),
            advertise_ip: "127.0.0.1".into(),
            bind_ip: String::new(),
            rtp_timeout_secs: 60,
            srtp: dialtone_store::SrtpPolicy::default(),
        }
    }
}

impl Media {
    /// `rtp_ports` as a range, checked.
    pub fn port_range(&self) -> Result<std::ops::RangeInclusive<u16>> {
        let (a, b) = self.rtp_ports.split_once('-').ok_or_else(|| {
            anyhow::anyhow!("media.rtp_ports must be LOW-HIGH, not {:?}", self.rtp_ports)
        })?;
        let (a, b): (u16, u16) = (a.trim().parse()?, b.trim().parse()?);
        if a >= b {
            bail!("media.rtp_ports: {a} is not below {b}");
        }
        Ok(a..=b)
    }
}

/// Call recording: stereo WAV files, one channel per party.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Recording {
    /// Record every answered call; otherwise only calls to numbers and
    /// through routes whose record flag is set.
    pub all: bool,
    /// Where the files go (created if missing), as `<call id>.wav`.
    pub dir: String,
    /// 8000 (narrowband), 16000 (keeps wideband Opus), 24000 or 48000.
    pub sample_rate: u32,
}

impl Recording {
    /// `sample_rate`, checked: one of the rates the media engine records at.
    pub fn checked_rate(&self) -> Result<u32> {
        match self.sample_rate {
            8000 | 16000 | 24000 | 48000 => Ok(self.sample_rate),
            r => bail!("recording.sample_rate must be 8000, 16000, 24000 or 48000, not {r}"),
        }
    }
}

impl Default for Recording {
    fn default() -> Self {
        Recording {
            all: false,
            dir: "data/recordings".into(),
            sample_rate: 8000,
        }
    }
}

/// How calls to personas (AI agents) talk to their realtime model.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ai {
    /// Bounds the websocket handshake and session setup together; past it
    /// the call goes to the persona's fallback (or gets 503).
    pub connect_timeout_ms: u64,
    /// A tool call that takes longer is answered "timed out" to the model.
    pub tool_timeout_secs: u64,
    /// A running tool gets a filler line (or hold beeps) after this long; 0: never.
    pub filler_after_ms: u64,
    /// Sessions are renewed, the conversation carried over, after this long
    /// (OpenAI ends a session at 60 minutes).
    pub renew_after_secs: u64,
    /// How long a hangup waits for the agent's last words at most.
    pub drain_limit_secs: u64,
}

impl Default for Ai {
    fn default() -> Self {
        Ai {
            connect_timeout_ms: 5000,
            tool_timeout_secs: 10,
            filler_after_ms: 1500,
            renew_after_secs: 3300,
            drain_limit_secs: 15,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Database {
    pub url: String,
}

impl Default for Database {
    fn default() -> Self {
        Database {
            url: "sqlite://data/dialtone.db".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Http {
    pub listen: String,
    /// Bearer token for /api/v1; empty turns the API off.
    pub api_token: String,
}

impl Default for Http {
    fn default() -> Self {
        Http {
            listen: "127.0.0.1:8080".into(),
            api_token: String::new(),
        }
    }
}

/// The MCP server at `/mcp` on the HTTP listener.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Mcp {
    pub enabled: bool,
    /// Host header values accepted (DNS-rebinding protection): names or
    /// `name:port`; empty accepts any.
    pub allowed_hosts: Vec<String>,
    /// Origins accepted as `scheme://host[:port|:*]` or "null"; a request
    /// with another Origin is refused, one without passes.
    pub allowed_origins: Vec<String>,
}

impl Default for Mcp {
    fn default() -> Self {
        Mcp {
            enabled: true,
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            allowed_origins: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Log {
    pub format: String,
    pub level: String,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            format: "text".into(),
            level: "info".into(),
        }
    }
}

/// SIP over TLS: the certificate `tls:` listeners present, and what the
/// servers dialtone connects to (trunks with transport "tls") are checked
/// against.
#[derive(Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Tls {
    /// PEM certificate chain (leaf first); with `private_key`, needed by a
    /// `tls:` listener.
    pub certificate: String,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub private_key: String,
    /// PEM CA certificates a TLS trunk's certificate must chain to; empty:
    /// the public web roots (webpki-roots).
    pub ca_file: String,
}

impl Tls {
    pub(super) fn validate(&self, listen: &[String]) -> Result<()> {
        if self.certificate.is_empty() != self.private_key.is_empty() {
            bail!("tls.certificate and tls.private_key go together");
        }
        if self.certificate.is_empty() && listen.iter().any(|l| l.starts_with("tls:")) {
            bail!("a tls: entry in sip.listen needs tls.certificate and tls.private_key");
        }
        Ok(())
    }
}

/// Several nodes on one PostgreSQL database behind a SIP load balancer.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Cluster {
    pub enabled: bool,
    /// This node's id, unique in the cluster (default: calls.node, else the
    /// host name); it names the owner of every call row.
    pub node: String,
    /// Shared by every node: forwarded tool calls must carry it.
    pub secret: String,
    /// The URL the other nodes reach this node's HTTP server at (default
    /// http://<http.listen>, which must then be a specific address).
    pub advertise_http: String,
    pub heartbeat_ms: u64,
    /// A node whose heartbeat is older than this is dead: its calls are
    /// marked ended by the survivors.
    pub dead_after_ms: u64,
}

impl Default for Cluster {
    fn default() -> Self {
        Cluster {
            enabled: false,
            node: String::new(),
            secret: String::new(),
            advertise_http: String::new(),
            heartbeat_ms: 2000,
            dead_after_ms: 10_000,
        }
    }
}

impl Cluster {
    pub(super) fn validate(&self, database_url: &str, http_listen: &str) -> Result<()> {
        if !self.enabled {
            return Ok(());
        }
        if self.secret.len() < 16 {
            bail!("cluster.secret must be set (16 characters or more) when cluster.enabled");
        }
        if !database_url.starts_with("postgres") {
            bail!("cluster.enabled needs a database the nodes share: database.url must be postgres://…");
        }
        if self.heartbeat_ms == 0 || self.dead_after_ms < 2 * self.heartbeat_ms {
            bail!("cluster.dead_after_ms must be at least twice cluster.heartbeat_ms (above 0)");
        }
        let unspecified = http_listen
            .parse::<std::net::SocketAddr>()
            .is_ok_and(|a| a.ip().is_unspecified());
        if self.advertise_http.is_empty() && unspecified {
            bail!("cluster.advertise_http must be set: http.listen {http_listen} is no address another node can reach");
        }
        if !self.advertise_http.is_empty() && !self.advertise_http.starts_with("http") {
            bail!(
                "cluster.advertise_http must be an http:// or https:// URL, not {:?}",
                self.advertise_http
            );
        }
        Ok(())
    }
}

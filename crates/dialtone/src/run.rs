//! `dialtone run`: opens the database, binds the SIP transports and the
//! HTTP listener, starts the switch, and on SIGTERM or SIGINT shuts down in
//! order — stop taking new SIP traffic, let requests in hand finish, close
//! HTTP and the database.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use dialtone_mcp::{KeyAuth, McpConfig};
use dialtone_media::{MediaConfig, MediaEngine};
use dialtone_sip::transaction::{TimerConfig, TransactionLayer};
use dialtone_sip::transport::{Listen, TcpLimits, TlsSetup, Transports};
use dialtone_store::Store;
use dialtone_switch::abuse::{AbuseConfig, OverRate, Rate, Trusted};
use dialtone_switch::auth_guard::{GuardConfig, Lockout};
use dialtone_switch::call::{AgentSettings, CallConfig, RecordingPolicy, TimerPolicy};
use dialtone_switch::cluster::ClusterConfig;
use dialtone_switch::registrar::RegistrarConfig;
use dialtone_switch::{Switch, SwitchConfig};
use std::net::IpAddr;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::http;

pub async fn run(cfg: Config) -> Result<()> {
    let listen: Vec<Listen> = cfg
        .sip
        .listen
        .iter()
        .map(|l| l.parse().with_context(|| format!("sip.listen entry {l:?}")))
        .collect::<Result<_>>()?;
    let store = Store::connect(&cfg.database.url)
        .await
        .with_context(|| format!("opening database {}", cfg.database.url))?;
    // One node on its own keeps the location table in memory and writes it
    // behind; nodes sharing a database read and write it there.
    if !cfg.cluster.enabled {
        store
            .keep_in_memory()
            .await
            .context("loading the location table")?;
    }

    let (in_tx, in_rx) = mpsc::channel(8192);
    let trusted = abuse_config(&cfg)?.trusted;
    let tcp_limits = TcpLimits {
        per_source: cfg.abuse.tcp_max_per_source,
        message_timeout: Duration::from_secs(cfg.abuse.tcp_message_timeout_secs),
        idle_timeout: Duration::from_secs(cfg.abuse.tcp_idle_timeout_secs),
        exempt: {
            let trusted = trusted.clone();
            Arc::new(move |ip| trusted.contains(ip))
        },
    };
    let transports =
        Transports::bind_secure(&listen, in_tx, tcp_limits, Some(tls_setup(&cfg)?)).await?;
    if let Ok(ip) = cfg.sip.advertise.parse() {
        transports.set_advertise(ip);
    }
    for (proto, addr) in transports.local_addrs() {
        tracing::info!(%proto, %addr, "SIP listening");
    }
    let timers = TimerConfig {
        t1: Duration::from_millis(cfg.sip.t1_ms),
        t2: Duration::from_millis(cfg.sip.t2_ms),
        t4: Duration::from_millis(cfg.sip.t4_ms),
    };
    let layer = TransactionLayer::new(transports.clone(), timers);
    // Nothing reads the channel: the layer takes messages on the receive
    // tasks once the switch serves (below); earlier ones are dropped, and
    // UDP peers retransmit them.
    drop(in_rx);
    let media = MediaEngine::new(media_config(&cfg)?).context("media configuration")?;
    let node = node_name(&cfg);
    match store.calls().close_orphans(&node, now_ms()).await {
        Ok(0) => {}
        Ok(n) => {
            tracing::warn!(calls = n, %node, "closed call records left open by an earlier crash")
        }
        Err(e) => tracing::warn!(error = %e, "could not close orphaned call records"),
    }
    let switch = Switch::new(switch_config(&cfg, node)?, layer, store.clone(), media);

    let (stop_tx, stop_rx) = watch::channel(false);
    let tu = switch.clone();
    if !switch.layer().serve(Arc::new(move |ev| tu.on_event(ev))) {
        anyhow::bail!("the SIP transports already had a receiver");
    }
    let switch_task = tokio::spawn(switch.clone().run(stop_rx.clone()));

    let http_listener = tokio::net::TcpListener::bind(&cfg.http.listen)
        .await
        .with_context(|| format!("binding http.listen {}", cfg.http.listen))?;
    tracing::info!(addr = %cfg.http.listen, "HTTP listening");
    let keys = Arc::new(KeyAuth::new(store.clone()));
    let mcp_stop = CancellationToken::new();
    let mcp = cfg.mcp.enabled.then(|| {
        let mcp_cfg = McpConfig {
            allowed_hosts: cfg.mcp.allowed_hosts.clone(),
            allowed_origins: cfg.mcp.allowed_origins.clone(),
        };
        tracing::info!(hosts = ?mcp_cfg.allowed_hosts, "MCP server at /mcp");
        dialtone_mcp::router(switch.control(), keys.clone(), &mcp_cfg, mcp_stop.clone())
    });
    let state = Arc::new(http::AppState {
        store: store.clone(),
        switch: switch.clone(),
        switch_running: switch_task_alive(&switch_task),
        api_token: cfg.http.api_token.clone(),
        keys,
    });
    let http_task = tokio::spawn(http::serve(http_listener, state, mcp, stop_rx, mcp_stop));

    wait_for_signal().await?;
    tracing::info!("shutting down");
    transports.shutdown();
    let _ = stop_tx.send(true);
    if tokio::time::timeout(Duration::from_secs(8), switch_task)
        .await
        .is_err()
    {
        tracing::warn!("switch did not stop within 8 s");
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), http_task).await;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// The TLS listeners' certificate (when configured) and the roots TLS
/// trunks are checked against.
fn tls_setup(cfg: &Config) -> Result<TlsSetup> {
    let t = &cfg.tls;
    let path = |s: &str| (!s.is_empty()).then(|| std::path::PathBuf::from(s));
    let (cert, key, ca) = (path(&t.certificate), path(&t.private_key), path(&t.ca_file));
    let pair = cert.as_deref().zip(key.as_deref());
    Ok(TlsSetup::from_pem_files(pair, ca.as_deref())?)
}

fn media_config(cfg: &Config) -> Result<MediaConfig> {
    let advertise: IpAddr = cfg
        .media
        .advertise_ip
        .parse()
        .context("media.advertise_ip")?;
    let bind = if cfg.media.bind_ip.is_empty() {
        advertise
    } else {
        cfg.media.bind_ip.parse().context("media.bind_ip")?
    };
    Ok(MediaConfig {
        bind_ip: bind,
        advertise_ip: advertise,
        ports: cfg.media.port_range()?,
        rtp_timeout: Duration::from_secs(cfg.media.rtp_timeout_secs),
    })
}

/// This node's id: cluster.node, else calls.node, else the host name.
pub(crate) fn node_name(cfg: &Config) -> String {
    for n in [&cfg.cluster.node, &cfg.calls.node] {
        if !n.is_empty() {
            return n.clone();
        }
    }
    std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "dialtone".into())
}

use dialtone_switch::registrar::unix_now_ms as now_ms;

fn switch_config(cfg: &Config, node: String) -> Result<SwitchConfig> {
    Ok(SwitchConfig {
        calls: CallConfig {
            domain: cfg.sip.domain.clone(),
            user_agent: cfg.sip.user_agent.clone(),
            ring_timeout: Duration::from_secs(cfg.calls.ring_timeout_secs),
            max_duration: Duration::from_secs(cfg.calls.max_duration_secs),
            node,
            timers: (cfg.calls.session_expires_secs > 0).then(|| TimerPolicy {
                session_expires: Duration::from_secs(cfg.calls.session_expires_secs),
                min_se: Duration::from_secs(cfg.calls.min_se_secs.max(1)),
            }),
            recording: RecordingPolicy {
                all: cfg.recording.all,
                dir: cfg.recording.dir.clone().into(),
                sample_rate: cfg.recording.checked_rate()?,
            },
            srtp: cfg.media.srtp,
            ai: AgentSettings {
                connect_timeout: Duration::from_millis(cfg.ai.connect_timeout_ms),
                tool_timeout: Duration::from_secs(cfg.ai.tool_timeout_secs),
                filler_after: Duration::from_millis(cfg.ai.filler_after_ms),
                renew_after: Duration::from_secs(cfg.ai.renew_after_secs),
                drain_limit: Duration::from_secs(cfg.ai.drain_limit_secs),
            },
        },
        domain: cfg.sip.domain.clone(),
        user_agent: cfg.sip.user_agent.clone(),
        registrar: RegistrarConfig {
            min_expires: cfg.registrar.min_expires,
            max_expires: cfg.registrar.max_expires,
            default_expires: cfg.registrar.default_expires,
        },
        nonce_ttl: Duration::from_secs(cfg.auth.nonce_ttl_secs),
        // Checked by Config::validate.
        algorithms: cfg
            .auth
            .algorithms
            .iter()
            .filter_map(|a| a.parse().ok())
            .collect(),
        abuse: abuse_config(cfg)?,
        guard: GuardConfig {
            max_failures: cfg.auth.max_failures,
            window: Duration::from_secs(cfg.auth.failure_window_secs),
            ban_for: Duration::from_secs(cfg.auth.ban_secs),
            lockout: if cfg.auth.lockout == "silence" {
                Lockout::Silence
            } else {
                Lockout::Forbidden
            },
        },
        purge_interval: Duration::from_secs(cfg.registrar.purge_interval_secs.max(1)),
        front_proxies: Trusted::parse(&cfg.sip.front_proxies)
            .map_err(|e| anyhow::anyhow!("sip.front_proxies: {e}"))?,
        cluster: cluster_config(cfg, &node_name(cfg)),
    })
}

fn cluster_config(cfg: &Config, node: &str) -> ClusterConfig {
    let c = &cfg.cluster;
    ClusterConfig {
        enabled: c.enabled,
        node: node.to_string(),
        secret: c.secret.clone(),
        advertise_http: if c.advertise_http.is_empty() {
            format!("http://{}", cfg.http.listen)
        } else {
            c.advertise_http.clone()
        },
        advertise_sip: cfg.sip.listen.first().cloned().unwrap_or_default(),
        heartbeat: Duration::from_millis(c.heartbeat_ms),
        dead_after: Duration::from_millis(c.dead_after_ms),
    }
}

fn abuse_config(cfg: &Config) -> Result<AbuseConfig> {
    let a = &cfg.abuse;
    let rate = |per_sec, burst| Rate { per_sec, burst };
    Ok(AbuseConfig {
        // The front proxies relay everyone's requests: never rate-limited.
        trusted: Trusted::parse(&[a.trusted.as_slice(), cfg.sip.front_proxies.as_slice()].concat())
            .map_err(|e| anyhow::anyhow!("abuse.trusted: {e}"))?,
        // In Class::ALL order.
        rates: [
            rate(a.register_rate, a.register_burst),
            rate(a.invite_rate, a.invite_burst),
            rate(a.options_rate, a.options_burst),
            rate(a.other_rate, a.other_burst),
        ],
        over_rate: if a.over_rate == "503" {
            OverRate::Unavailable
        } else {
            OverRate::Silence
        },
        scanner_agents: if a.drop_scanners {
            a.scanner_user_agents
                .iter()
                .map(|s| s.to_ascii_lowercase())
                .filter(|s| !s.is_empty())
                .collect()
        } else {
            Vec::new()
        },
    })
}

/// A flag the health check reads: true while the switch task runs.
fn switch_task_alive(task: &tokio::task::JoinHandle<()>) -> Arc<dyn Fn() -> bool + Send + Sync> {
    let handle = task.abort_handle();
    Arc::new(move || !handle.is_finished())
}

async fn wait_for_signal() -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

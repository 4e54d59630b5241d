//! ai-load: the load peer of dialtone's AI bridge, both ends in one process
//! on one clock. It places N SIP calls from a trunk address to a number
//! routed to an OpenAI persona, sends each call's RTP (PCMU with a marker
//! per packet), and plays the model itself: the persona's websocket URL
//! points at this process, which answers as an OpenAI Realtime (GA) server
//! and streams marked audio back. Matching the markers gives the latency
//! dialtone adds each way, barge-in to silence, loss, order and late
//! playout; /proc gives dialtone's CPU and memory over a window while every
//! call is up. See bench/ai_load.sh and BENCHMARKS.md.

mod model;
mod procfs;
mod report;
mod rtp;
mod sip;
mod state;
mod stats;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;
use tokio::net::{TcpListener, UdpSocket};
use tokio::time::Instant;

use state::{Call, Config, Scenario, Shared, NONE};

#[derive(Parser, Debug, Clone)]
#[command(
    version,
    about = "Load peer for dialtone's AI bridge (SIP + RTP callers, OpenAI Realtime server)"
)]
pub struct Args {
    /// dialtone's SIP address (UDP).
    #[arg(long, default_value = "127.0.0.1:5060")]
    pub sip: SocketAddr,
    /// The number routed to the persona.
    #[arg(long, default_value = "15550100")]
    pub number: String,
    /// The callers' address: dialtone's trunk recognises it (inbound IP).
    #[arg(long, default_value = "127.0.0.2")]
    pub local_ip: IpAddr,
    /// The callers' first RTP port (one even port per call).
    #[arg(long, default_value_t = 40000)]
    pub rtp_base: u16,
    /// Where the model's websocket server listens (the persona's URL:
    /// ws://ADDR/v1/realtime).
    #[arg(long, default_value = "127.0.0.1:28090")]
    pub ws_listen: SocketAddr,
    /// The bearer key dialtone must present; unset: not checked.
    #[arg(long, env = "AI_LOAD_API_KEY")]
    pub api_key: Option<String>,
    #[arg(long, value_enum, default_value = "load")]
    pub scenario: Scenario,
    /// Concurrent calls.
    #[arg(long, default_value_t = 10)]
    pub calls: u32,
    /// New calls per second while setting up.
    #[arg(long, default_value_t = 50.0)]
    pub cps: f64,
    /// Seconds after every call is up before the measurement window.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// The measurement window in seconds (CPU is taken over it).
    #[arg(long, default_value_t = 20.0)]
    pub seconds: f64,
    /// dialtone's process id: its CPU, threads and RSS over the window.
    #[arg(long)]
    pub pid: Option<u32>,
    /// Also write the summary as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// A label for the summary (e.g. the step).
    #[arg(long)]
    pub label: Option<String>,
    /// Caller RTP phases: call i sends in slot i mod N of each 20 ms (20:
    /// spread 1 ms apart, as independent phones are; 1: every call's packet
    /// in the same millisecond, a burst of N calls).
    #[arg(long, default_value_t = 20)]
    pub rtp_slots: u32,
    /// The peer's tokio worker threads (1: a stalled peer shows as a late
    /// sender tick, which the report sets against the gaps it saw).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// load: the model's delta size (ms of audio, a multiple of 20).
    #[arg(long, default_value_t = 100)]
    pub chunk_ms: u32,
    /// load: audio sent ahead at the start of a call, then real time.
    #[arg(long, default_value_t = 200)]
    pub lead_ms: u32,
    /// load: length of each response (a new response.created after it).
    #[arg(long, default_value_t = 5000)]
    pub response_ms: u32,
    /// latency: one single-frame delta per call this often.
    #[arg(long, default_value_t = 500)]
    pub delta_every_ms: u32,
    /// bargein: agent audio sent at once at the start of each cycle.
    #[arg(long, default_value_t = 3000)]
    pub talk_ms: u32,
    /// bargein: speech_started this long into the cycle (+0..19 ms).
    #[arg(long, default_value_t = 1000)]
    pub barge_after_ms: u32,
    /// bargein: one cycle per call this often.
    #[arg(long, default_value_t = 2500)]
    pub cycle_ms: u32,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ai-load: no runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let r = rt.block_on(run(args));
    rt.shutdown_timeout(Duration::from_millis(500));
    match r {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("ai-load: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn check(a: &Args) -> Result<()> {
    if a.calls == 0 || a.calls > 20_000 {
        bail!("--calls must be 1..=20000");
    }
    let frames = |x: u32| x.is_multiple_of(20);
    if !frames(a.chunk_ms) || !frames(a.lead_ms) || !frames(a.talk_ms) || a.chunk_ms == 0 {
        bail!("--chunk-ms, --lead-ms and --talk-ms are whole 20 ms frames");
    }
    if a.scenario == Scenario::Bargein && a.barge_after_ms + 100 >= a.talk_ms {
        bail!("--barge-after-ms must leave audio queued: below --talk-ms - 100");
    }
    if a.scenario == Scenario::Bargein && a.cycle_ms < a.barge_after_ms + 500 {
        bail!("--cycle-ms must leave 500 ms after the barge-in");
    }
    if a.cps.is_nan() || a.cps <= 0.0 || a.seconds.is_nan() || a.seconds <= 0.0 || a.warmup < 0.0 {
        bail!("--cps and --seconds must be positive");
    }
    Ok(())
}

async fn run(args: Args) -> Result<bool> {
    check(&args)?;
    let loadavg = procfs::loadavg();
    let cfg = Config {
        scenario: args.scenario,
        api_key: args.api_key.clone(),
        chunk_ms: args.chunk_ms,
        lead_ms: args.lead_ms,
        response_ms: args.response_ms,
        delta_every_ms: args.delta_every_ms,
        talk_ms: args.talk_ms,
        barge_after_ms: args.barge_after_ms,
        cycle_ms: args.cycle_ms,
    };
    let listener = TcpListener::bind(args.ws_listen)
        .await
        .with_context(|| format!("websocket listener on {}", args.ws_listen))?;
    let sip_sock = UdpSocket::bind((args.local_ip, 0))
        .await
        .with_context(|| format!("SIP socket on {}", args.local_ip))?;
    let mut calls = Vec::with_capacity(args.calls as usize);
    let mut port = u32::from(args.rtp_base & !1);
    for i in 0..args.calls {
        let sock = loop {
            let p = u16::try_from(port).context("ran out of RTP ports")?;
            match UdpSocket::bind((args.local_ip, p)).await {
                Ok(s) => break s,
                // Taken (an ephemeral port of someone else): the next pair.
                Err(_) => port += 2,
            }
        };
        calls.push(Arc::new(Call::new(i, sock, port as u16)));
        port += 2;
    }
    let sh = Arc::new(Shared::new(cfg, calls));
    tokio::spawn(model::serve(listener, Arc::clone(&sh)));
    let sip = Arc::new(sip::Sip::new(
        sip_sock,
        args.sip,
        args.number.clone(),
        Arc::clone(&sh),
    )?);
    tokio::spawn(Arc::clone(&sip).receive());
    for c in &sh.calls {
        tokio::spawn(rtp::receive(Arc::clone(c), Arc::clone(&sh)));
    }
    tokio::spawn(rtp::sender(Arc::clone(&sh), args.rtp_slots));

    // Set-up, paced, each call shifted by 0..19 ms so that dialtone's
    // playout clocks (started at each answer) do not all tick together.
    let t_setup = Instant::now();
    let mut pending = Vec::with_capacity(sh.calls.len());
    for i in 0..args.calls {
        let sip = Arc::clone(&sip);
        pending.push(tokio::spawn(async move { sip.call(i).await }));
        let next = Duration::from_secs_f64(f64::from(i + 1) / args.cps)
            + Duration::from_millis(u64::from((i + 1) * 13 % 20));
        tokio::time::sleep_until(t_setup + next).await;
    }
    let mut codes: BTreeMap<u16, u32> = BTreeMap::new();
    let mut up = Vec::with_capacity(pending.len());
    for p in pending {
        let code = p.await.unwrap_or(500);
        *codes.entry(code).or_insert(0) += 1;
        up.push((200..300).contains(&code));
    }
    let setup_s = t_setup.elapsed().as_secs_f64();
    let n_up = up.iter().filter(|u| **u).count();
    eprintln!(
        "ai-load: {n_up}/{} calls up in {setup_s:.1} s ({codes:?})",
        args.calls
    );
    // Every model session hears its caller (the audio port is attached).
    let deadline = Instant::now() + Duration::from_secs(10);
    let deaf = |sh: &Shared| {
        sh.calls
            .iter()
            .zip(&up)
            .filter(|(c, u)| **u && c.heard_first.load(Relaxed) == NONE)
            .count()
    };
    while deaf(&sh) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;
    let w0 = report::Window::take(&sh, args.pid);
    tokio::time::sleep(Duration::from_secs_f64(args.seconds)).await;
    let w1 = report::Window::take(&sh, args.pid);

    // The model stops; the playout drains (no agent audio for 400 ms).
    sh.model_on.store(false, Relaxed);
    let stop = Instant::now();
    let limit = Duration::from_millis(u64::from(args.talk_ms.max(args.lead_ms)) + 3000);
    while stop.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let quiet = sh.now_ns().saturating_sub(sh.last_agent_ns.load(Relaxed));
        if stop.elapsed() > Duration::from_millis(600) && quiet > 400_000_000 {
            break;
        }
    }
    // The callers stop; the last appends arrive.
    for c in &sh.calls {
        c.rtp_on.store(false, Relaxed);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    sh.rtp_stop.store(true, Relaxed);
    for c in &sh.calls {
        c.finish_barge(&sh);
    }
    let mut out = report::build(&args, &sh, &w0, &w1, &up, &codes, setup_s, &loadavg);

    // Hang up, paced at twice the set-up rate.
    let t_bye = Instant::now();
    let mut byes = Vec::new();
    for (i, _) in up.iter().enumerate().filter(|(_, u)| **u) {
        let sip = Arc::clone(&sip);
        byes.push(tokio::spawn(async move { sip.bye(i as u32).await }));
        let next = Duration::from_secs_f64(byes.len() as f64 / (2.0 * args.cps));
        tokio::time::sleep_until(t_bye + next).await;
    }
    let mut bye_codes: BTreeMap<u16, u32> = BTreeMap::new();
    for b in byes {
        *bye_codes.entry(b.await.unwrap_or(500)).or_insert(0) += 1;
    }
    let closing = Instant::now();
    while sh.ws_open.load(Relaxed) > 0 && closing.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ok = report::finish(&mut out, &sh, &bye_codes, n_up, args.calls as usize);
    println!("{}", report::text(&out));
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&out)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ok)
}

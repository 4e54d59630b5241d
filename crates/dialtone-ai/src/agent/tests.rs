//! The agent between a realtime session (an in-process Gemini Live peer on
//! 127.0.0.1) and a real audio port (a media endpoint facing a UDP socket
//! that stands for the caller's phone).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use dialtone_media::codec::{g711, Codec};
use dialtone_media::{AudioPort, MediaConfig, MediaEngine, PortFormat, StreamFormat};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::{spawn, AgentConfig, AgentControl, AgentEvent, AgentStats, ToolDispatcher, ToolReply};
use crate::protocol::{Provider, SessionConfig};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Long enough for a loaded CI machine, short enough to fail a hung test.
const WAIT: Duration = Duration::from_secs(10);
/// Gemini Live's output: 16-bit PCM at 24 kHz.
const OUT_RATE: u32 = 24_000;

/// Tells the test each tool call's name as it starts; answers "ok".
struct Tools(mpsc::UnboundedSender<String>);

impl ToolDispatcher for Tools {
    fn call(
        &self,
        name: &str,
        _arguments: &str,
    ) -> Pin<Box<dyn Future<Output = ToolReply> + Send + 'static>> {
        let _ = self.0.send(name.to_string());
        Box::pin(async {
            ToolReply {
                output: "ok".into(),
                ok: true,
            }
        })
    }
}

fn config(url: String) -> AgentConfig {
    let mut session = SessionConfig::new(Provider::Gemini, url);
    session.api_key = Some("AIza-test".into());
    session.connect_timeout = WAIT;
    AgentConfig {
        session,
        greeting: None,
        barge_in_min: Duration::ZERO,
        idle_timeout: None,
        tool_timeout: WAIT,
        filler_after: Duration::ZERO,
        renew_after: Duration::from_secs(3600),
        drain_limit: Duration::from_secs(5),
        external: Vec::new(),
        external_budget: Duration::from_secs(1),
    }
}

/// `ms` of a 500 Hz tone as Gemini sends it: 24 kHz 16-bit PCM, little-endian.
fn tone_bytes(ms: u32) -> Vec<u8> {
    let n = OUT_RATE * ms / 1000;
    (0..n)
        .flat_map(|i| {
            let t = f64::from(i) / f64::from(OUT_RATE);
            let s = (8000.0 * (2.0 * std::f64::consts::PI * 500.0 * t).sin()) as i16;
            s.to_le_bytes()
        })
        .collect()
}

fn model_audio(chunk: &[u8]) -> Message {
    let data = base64::engine::general_purpose::STANDARD.encode(chunk);
    let v = serde_json::json!({"serverContent": {"modelTurn": {"parts": [
        {"inlineData": {"mimeType": format!("audio/pcm;rate={OUT_RATE}"), "data": data}}
    ]}}});
    Message::binary(v.to_string().into_bytes())
}

/// How many RTP packets with a loud µ-law payload reach `phone` within
/// `within` (the port goes on sending silence after the speech).
async fn loud_packets(phone: &UdpSocket, within: Duration) -> usize {
    let mut buf = [0u8; 2048];
    let mut loud = 0;
    let end = tokio::time::Instant::now() + within;
    while let Ok(Ok(n)) = tokio::time::timeout_at(end, phone.recv(&mut buf)).await {
        let Some(payload) = buf.get(12..n) else {
            continue;
        };
        let mut pcm = Vec::new();
        g711::decode_ulaw(payload, &mut pcm);
        let peak = pcm.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
        if peak > 2000 {
            loud += 1;
        }
    }
    loud
}

/// The model may speak the moment its session is up, before the call has
/// answered and handed the agent its audio port: those words are kept and
/// played once the port is there, not dropped.
#[tokio::test]
async fn model_audio_before_the_audio_port_is_played_when_it_comes() -> TestResult {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("ws://{}/ws", l.local_addr()?);
    let (tool_tx, mut tool_rx) = mpsc::unbounded_channel();
    let (event_tx, mut event_rx) = mpsc::unbounded_channel();
    let sink = Box::new(move |e: AgentEvent| event_tx.send(e).is_ok());
    let agent = spawn(
        config(url),
        Arc::new(Tools(tool_tx)),
        sink,
        Arc::new(AgentStats::default()),
    );

    // The model: set-up answered, then a whole second of speech at once,
    // then a tool call — which tells the test the speech has been taken in
    // (the agent handles the session's events in order).
    let (tcp, _) = tokio::time::timeout(WAIT, l.accept()).await??;
    let mut ws = tokio_tungstenite::accept_async(tcp).await?;
    let _setup = tokio::time::timeout(WAIT, ws.next()).await?;
    ws.send(Message::binary(br#"{"setupComplete":{}}"#.to_vec()))
        .await?;
    let ready = tokio::time::timeout(WAIT, event_rx.recv()).await?;
    assert_eq!(ready, Some(AgentEvent::Ready));
    for chunk in tone_bytes(1000).chunks(4800) {
        ws.send(model_audio(chunk)).await?;
    }
    let call = br#"{"toolCall":{"functionCalls":[{"id":"c1","name":"ping","args":{}}]}}"#;
    ws.send(Message::binary(call.to_vec())).await?;
    let tool = tokio::time::timeout(WAIT, tool_rx.recv()).await?;
    assert_eq!(tool.as_deref(), Some("ping"));

    // Only now does the call answer: the port starts and is handed over.
    let media = MediaEngine::new(MediaConfig {
        bind_ip: [127, 0, 0, 1].into(),
        advertise_ip: [127, 0, 0, 1].into(),
        ports: 29000..=29019,
        rtp_timeout: Duration::ZERO,
    })?;
    let phone = UdpSocket::bind("127.0.0.1:0").await?;
    let ep = media.allocate().await?;
    ep.set_remote(Some(phone.local_addr()?), None);
    ep.set_format(StreamFormat::of(Codec::pcmu(), 0));
    let (events, _) = mpsc::unbounded_channel();
    let (port, frames) = AudioPort::start(
        ep,
        PortFormat::pcm16(16_000),
        PortFormat::pcm16(OUT_RATE),
        events,
    )
    .map_err(|(e, _)| e)?;
    assert!(agent.send(AgentControl::Audio {
        player: port.player(),
        frames,
    }));
    let loud = loud_packets(&phone, Duration::from_secs(3)).await;
    assert!(
        loud >= 48,
        "{loud} of 50 packets of the model's first second reached the caller"
    );
    agent.send(AgentControl::Close);
    port.stop().await;
    Ok(())
}

//! The model's side: a websocket server speaking the OpenAI Realtime GA
//! protocol, minimally but correctly. The handshake checks the path and
//! `Authorization: Bearer KEY`; `session.created` is sent at once and each
//! `session.update` is answered with `session.updated` (the session echoed).
//! `input_audio_buffer.append` is decoded (base64 µ-law) and its markers
//! matched to the caller's packets (latency, loss). The persona's
//! instructions carry the caller's number, which names the call.
//!
//! Once the first caller audio arrives (dialtone has attached its audio
//! port) the model speaks as the scenario says: `response.created`,
//! `response.output_audio.delta` (base64 µ-law frames, each with a marker),
//! `response.output_audio.done`, `response.done`; and for barge-in
//! `input_audio_buffer.speech_started` followed by the response cancelled,
//! as a server with `interrupt_response` does. A `conversation.item.truncate`
//! is answered with `conversation.item.truncated`.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use anyhow::Result;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::state::{ms, Call, Scenario, Shared, NONE};
use crate::stats::{mark, marker, tone, AGENT_MAGIC, CALLER_MAGIC, FRAME};

type Ws = WebSocketStream<TcpStream>;

/// Where the instructions name the call: `AILOADCALL={caller_number}`.
const CALL_TAG: &str = "AILOADCALL=";

pub async fn serve(listener: TcpListener, sh: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let sh = Arc::clone(&sh);
                tokio::spawn(async move {
                    if let Err(e) = session(stream, Arc::clone(&sh)).await {
                        if sh.ws_errors.fetch_add(1, Relaxed) < 5 {
                            eprintln!("ai-load: websocket session: {e:#}");
                        }
                    }
                });
            }
            Err(e) => {
                eprintln!("ai-load: accept: {e}");
                tokio::time::sleep(ms(10)).await;
            }
        }
    }
}

fn refuse(status: StatusCode, text: &str) -> ErrorResponse {
    let mut r = ErrorResponse::new(Some(text.to_string()));
    *r.status_mut() = status;
    r
}

async fn session(stream: TcpStream, sh: Arc<Shared>) -> Result<()> {
    stream.set_nodelay(true)?;
    let key = sh.cfg.api_key.clone();
    let sh2 = Arc::clone(&sh);
    // tungstenite's callback type returns the whole error response.
    #[allow(clippy::result_large_err)]
    let check = move |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        if !req.uri().path().starts_with("/v1/realtime") {
            sh2.ws_refused.fetch_add(1, Relaxed);
            return Err(refuse(StatusCode::NOT_FOUND, "not found"));
        }
        if let Some(k) = &key {
            let auth = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok());
            if auth != Some(format!("Bearer {k}").as_str()) {
                sh2.ws_refused.fetch_add(1, Relaxed);
                return Err(refuse(StatusCode::UNAUTHORIZED, "invalid api key"));
            }
        }
        Ok(resp)
    };
    // tungstenite zero-fills its whole read buffer before every read: the
    // default 128 KiB made memset a quarter of this peer's CPU. Client
    // events here are a few hundred bytes.
    let config = WebSocketConfig::default().read_buffer_size(8 * 1024);
    let mut ws =
        tokio_tungstenite::accept_hdr_async_with_config(stream, check, Some(config)).await?;
    sh.ws_accepted.fetch_add(1, Relaxed);
    sh.ws_open.fetch_add(1, Relaxed);
    let mut s = Session::new(Arc::clone(&sh));
    let r = s.run(&mut ws).await;
    sh.ws_open.fetch_sub(1, Relaxed);
    r
}

/// A client event, only the fields this server reads.
#[derive(Deserialize)]
struct ClientEvent<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    audio: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    session: Option<Value>,
    #[serde(default)]
    item_id: Option<String>,
    #[serde(default)]
    audio_end_ms: Option<i64>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Waiting for the first caller audio.
    Idle,
    /// Next: the scenario's action at `next`.
    Speak,
    /// Bargein: speech_started at `next`.
    Barge,
    Stopped,
}

struct Session {
    sh: Arc<Shared>,
    call: Option<Arc<Call>>,
    events: u64,
    responses: u32,
    /// The response in progress: (response id, item id).
    open: Option<(String, String)>,
    /// Frames in the response in progress.
    open_frames: u32,
    step: Step,
    next: Instant,
    /// Bargein: when the next cycle starts.
    cycle_start: Instant,
    rearm: bool,
    cycle: u32,
    last_caller_seq: Option<u32>,
    caller_bytes: u64,
    body: [u8; FRAME],
}

impl Session {
    fn new(sh: Arc<Shared>) -> Session {
        Session {
            sh,
            call: None,
            events: 0,
            responses: 0,
            open: None,
            open_frames: 0,
            step: Step::Idle,
            next: Instant::now(),
            cycle_start: Instant::now(),
            rearm: false,
            cycle: 0,
            last_caller_seq: None,
            caller_bytes: 0,
            body: tone(400.0),
        }
    }

    async fn run(&mut self, ws: &mut Ws) -> Result<()> {
        let created = json!({
            "type": "session.created", "event_id": self.event_id(),
            "session": {"type": "realtime", "object": "realtime.session", "id": "sess_aiload",
                        "model": "gpt-realtime", "output_modalities": ["audio"],
                        "audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000}},
                                  "output": {"format": {"type": "audio/pcm", "rate": 24000},
                                             "voice": "marin"}}},
        });
        ws.send(Message::text(created.to_string())).await?;
        let sleep = tokio::time::sleep_until(self.next);
        tokio::pin!(sleep);
        loop {
            let speaking = matches!(self.step, Step::Speak | Step::Barge);
            tokio::select! {
                msg = ws.next() => {
                    let now = self.sh.now_ns();
                    match msg {
                        Some(Ok(Message::Text(t))) => self.on_text(ws, t.as_bytes(), now).await?,
                        Some(Ok(Message::Binary(b))) => self.on_text(ws, &b, now).await?,
                        Some(Ok(Message::Close(_))) | None => break,
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Err(e.into()),
                    }
                    if self.rearm {
                        self.rearm = false;
                        sleep.as_mut().reset(self.next);
                    }
                }
                () = &mut sleep, if speaking => {
                    self.act(ws).await?;
                    sleep.as_mut().reset(self.next);
                }
            }
        }
        Ok(())
    }

    fn event_id(&mut self) -> String {
        self.events += 1;
        format!("event_{}", self.events)
    }

    async fn on_text(&mut self, ws: &mut Ws, text: &[u8], now: u64) -> Result<()> {
        let ev: ClientEvent<'_> = match serde_json::from_slice(text) {
            Ok(ev) => ev,
            Err(_) => {
                self.sh.unexpected("non-JSON or no type");
                return Ok(());
            }
        };
        match ev.kind.as_ref() {
            "input_audio_buffer.append" => {
                let Some(b64) = ev.audio else {
                    self.sh.unexpected("append without audio");
                    return Ok(());
                };
                let Ok(audio) = B64.decode(b64.as_bytes()) else {
                    self.sh.unexpected("append: bad base64");
                    return Ok(());
                };
                self.caller_audio(&audio, now);
                if self.step == Step::Idle && self.call.is_some() {
                    self.start();
                }
            }
            "session.update" => {
                let mut session = ev.session.unwrap_or_else(|| json!({}));
                if let Some(idx) = session
                    .get("instructions")
                    .and_then(Value::as_str)
                    .and_then(call_in)
                {
                    self.claim(idx);
                }
                if let Some(obj) = session.as_object_mut() {
                    obj.insert("object".into(), json!("realtime.session"));
                    obj.insert("id".into(), json!("sess_aiload"));
                }
                let answer = json!({"type": "session.updated", "event_id": self.event_id(),
                                    "session": session});
                ws.send(Message::text(answer.to_string())).await?;
            }
            "conversation.item.truncate" => {
                let heard = self.call.as_ref().map_or(0, |c| c.barge().heard);
                let end = ev.audio_end_ms.unwrap_or(0);
                if let Ok(mut v) = self.sh.truncate_diff_ms.lock() {
                    v.push(end - i64::from(heard) * 20);
                }
                let answer = json!({"type": "conversation.item.truncated",
                                    "event_id": self.event_id(), "item_id": ev.item_id,
                                    "content_index": 0, "audio_end_ms": end});
                ws.send(Message::text(answer.to_string())).await?;
            }
            "response.cancel" => {
                if self.open.is_some() {
                    self.close_response(ws, "cancelled").await?;
                    ws.flush().await?;
                }
                self.sh.unexpected("response.cancel");
            }
            other => self.sh.unexpected(other),
        }
        Ok(())
    }

    /// The call this session belongs to (first claim wins).
    fn claim(&mut self, idx: u32) {
        if self.call.is_some() {
            return;
        }
        if let Some(call) = self.sh.call(idx) {
            call.session.store(true, Relaxed);
            self.call = Some(Arc::clone(call));
        }
    }

    fn caller_audio(&mut self, audio: &[u8], now: u64) {
        self.caller_bytes += audio.len() as u64;
        for frame in audio.chunks(FRAME) {
            let Some((idx, seq)) = marker(frame, CALLER_MAGIC) else {
                if let Some(c) = &self.call {
                    c.heard_unmarked.fetch_add(1, Relaxed);
                }
                continue;
            };
            if self.call.is_none() {
                self.claim(idx);
            }
            let Some(call) = self.call.as_ref() else {
                continue;
            };
            if call.idx != idx {
                call.heard_foreign.fetch_add(1, Relaxed);
                continue;
            }
            match self.last_caller_seq {
                Some(l) if seq <= l => {
                    call.heard_dup.fetch_add(1, Relaxed);
                    continue;
                }
                _ => {}
            }
            if self.last_caller_seq.is_none() && call.heard_first.load(Relaxed) == NONE {
                call.heard_first.store(seq, Relaxed);
            }
            self.last_caller_seq = Some(seq);
            call.heard.fetch_add(1, Relaxed);
            if let Some(t) = call.sent_at.get(seq) {
                self.sh.lat_up.record(now.saturating_sub(t));
            }
        }
    }

    /// The caller's audio flows: the model starts speaking.
    fn start(&mut self) {
        let idx = self.call.as_ref().map_or(0, |c| c.idx);
        let cfg = &self.sh.cfg;
        // Spread the calls over the period, so they do not all speak at once.
        let period = match cfg.scenario {
            Scenario::Latency => cfg.delta_every_ms,
            Scenario::Bargein => cfg.cycle_ms,
            Scenario::Load => 0,
        };
        let offset = if period == 0 { 0 } else { (idx * 37) % period };
        self.next = Instant::now() + ms(offset);
        self.step = Step::Speak;
        self.rearm = true;
    }

    async fn act(&mut self, ws: &mut Ws) -> Result<()> {
        if !self.sh.model_on.load(Relaxed) {
            if self.step == Step::Barge {
                return self.barge(ws).await;
            }
            if self.open.is_some() {
                self.close_response(ws, "completed").await?;
                ws.flush().await?;
            }
            self.step = Step::Stopped;
            return Ok(());
        }
        let cfg = self.sh.cfg.clone();
        match (cfg.scenario, self.step) {
            (Scenario::Latency, _) => {
                self.open_response(ws).await?;
                self.deltas(ws, 1, 1).await?;
                self.close_response(ws, "completed").await?;
                ws.flush().await?;
                self.next += ms(cfg.delta_every_ms);
            }
            (Scenario::Load, _) => {
                let first = self.open.is_none() && self.responses == 0;
                if self.open.is_some() && self.open_frames * 20 >= cfg.response_ms {
                    self.close_response(ws, "completed").await?;
                }
                if self.open.is_none() {
                    self.open_response(ws).await?;
                }
                let frames = if first {
                    cfg.lead_ms / 20
                } else {
                    cfg.chunk_ms / 20
                };
                self.deltas(ws, frames.max(1), (cfg.chunk_ms / 20).max(1))
                    .await?;
                ws.flush().await?;
                self.next = if first {
                    Instant::now() + ms(cfg.chunk_ms)
                } else {
                    self.next + ms(cfg.chunk_ms)
                };
            }
            (Scenario::Bargein, Step::Barge) => self.barge(ws).await?,
            (Scenario::Bargein, _) => {
                if let Some(c) = &self.call {
                    c.finish_barge(&self.sh);
                }
                self.open_response(ws).await?;
                let frames = cfg.talk_ms / 20;
                self.deltas(ws, frames, (cfg.chunk_ms / 20).max(1)).await?;
                ws.flush().await?;
                let idx = self.call.as_ref().map_or(0, |c| c.idx);
                // Where speech_started falls in dialtone's 20 ms rhythm varies.
                let jitter = (self.cycle * 7 + idx * 3) % 20;
                self.cycle += 1;
                let start = self.next;
                self.next = start + ms(cfg.barge_after_ms + jitter);
                self.step = Step::Barge;
                // The next cycle starts cycle_ms after this one.
                self.cycle_start = start + ms(cfg.cycle_ms);
            }
        }
        Ok(())
    }

    async fn barge(&mut self, ws: &mut Ws) -> Result<()> {
        let item = format!("item_user_{}", self.cycle);
        let start_ms = self.caller_bytes / 8;
        let ev = json!({"type": "input_audio_buffer.speech_started", "event_id": self.event_id(),
                        "audio_start_ms": start_ms, "item_id": item});
        if let Some(c) = &self.call {
            c.barge().t_s = Some(self.sh.now_ns());
        }
        ws.send(Message::text(ev.to_string())).await?;
        if self.open.is_some() {
            self.close_response(ws, "cancelled").await?;
        }
        ws.flush().await?;
        self.step = if self.sh.model_on.load(Relaxed) {
            Step::Speak
        } else {
            Step::Stopped
        };
        self.next = self.cycle_start;
        Ok(())
    }

    async fn open_response(&mut self, ws: &mut Ws) -> Result<()> {
        self.responses += 1;
        let idx = self.call.as_ref().map_or(0, |c| c.idx);
        let rid = format!("resp_{idx}_{}", self.responses);
        let iid = format!("item_{idx}_{}", self.responses);
        let ev = json!({"type": "response.created", "event_id": self.event_id(),
                        "response": response_obj(&rid, "in_progress", None)});
        ws.feed(Message::text(ev.to_string())).await?;
        self.open = Some((rid, iid));
        self.open_frames = 0;
        Ok(())
    }

    /// `frames` agent frames in deltas of up to `per_delta` frames, fed
    /// (not flushed); the send time of each frame is noted.
    async fn deltas(&mut self, ws: &mut Ws, frames: u32, per_delta: u32) -> Result<()> {
        let Some(call) = self.call.clone() else {
            return Ok(());
        };
        let Some((rid, iid)) = self.open.clone() else {
            return Ok(());
        };
        let mut left = frames;
        let mut audio = Vec::with_capacity(FRAME * per_delta as usize);
        while left > 0 {
            let n = left.min(per_delta);
            audio.clear();
            let first = call.agent_sent.fetch_add(n, Relaxed);
            for seq in first..first + n {
                let at = audio.len();
                audio.extend_from_slice(&self.body);
                mark(&mut audio[at..], AGENT_MAGIC, call.idx, seq);
            }
            let eid = self.event_id();
            let msg = format!(
                r#"{{"type":"response.output_audio.delta","event_id":"{eid}","response_id":"{rid}","item_id":"{iid}","output_index":0,"content_index":0,"delta":"{}"}}"#,
                B64.encode(&audio)
            );
            let t = self.sh.now_ns();
            for seq in first..first + n {
                call.agent_at.put(seq, t);
            }
            if n == frames {
                // One delta: written now, so that its time is the write's.
                ws.send(Message::text(msg)).await?;
            } else {
                ws.feed(Message::text(msg)).await?;
            }
            self.open_frames += n;
            left -= n;
        }
        Ok(())
    }

    /// output_audio.done and response.done, fed (not flushed).
    async fn close_response(&mut self, ws: &mut Ws, status: &str) -> Result<()> {
        let Some((rid, iid)) = self.open.take() else {
            return Ok(());
        };
        let done = json!({"type": "response.output_audio.done", "event_id": self.event_id(),
                          "response_id": rid, "item_id": iid, "output_index": 0,
                          "content_index": 0});
        ws.feed(Message::text(done.to_string())).await?;
        let item = json!({"id": iid, "object": "realtime.item", "type": "message",
                          "status": if status == "completed" { "completed" } else { "incomplete" },
                          "role": "assistant", "content": [{"type": "output_audio"}]});
        let ev = json!({"type": "response.done", "event_id": self.event_id(),
                        "response": response_obj(&rid, status, Some(item))});
        ws.feed(Message::text(ev.to_string())).await?;
        Ok(())
    }
}

fn response_obj(id: &str, status: &str, item: Option<Value>) -> Value {
    let details = match status {
        "cancelled" => json!({"type": "cancelled", "reason": "turn_detected"}),
        _ => Value::Null,
    };
    json!({"object": "realtime.response", "id": id, "status": status,
           "status_details": details, "output": item.into_iter().collect::<Vec<_>>(),
           "conversation_id": "conv_aiload", "output_modalities": ["audio"],
           "audio": {"output": {"format": {"type": "audio/pcmu"}, "voice": "marin"}},
           "usage": null, "metadata": null})
}

/// The call index in the instructions: `AILOADCALL=7000123` names call 123.
fn call_in(instructions: &str) -> Option<u32> {
    let at = instructions.find(CALL_TAG)? + CALL_TAG.len();
    let digits: String = instructions[at..]
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse::<u32>().ok()?.checked_sub(700_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_from_instructions() {
        assert_eq!(call_in("ai-load AILOADCALL=700012 done"), Some(12));
        assert_eq!(call_in("ai-load AILOADCALL=+700000"), Some(0));
        assert_eq!(call_in("nothing"), None);
    }
}

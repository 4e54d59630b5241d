//! The agent's task: connect, then one loop over the call's controls, the
//! model's events, the caller's audio, finished tools, a session being
//! (re)opened, and a 20 ms tick for its timers (barge-in guard, idle
//! re-prompt, keypad pauses, fillers, hangup after playout, renewal).
//! Tool calls and their fillers are in [`tool_calls`]; reopening and
//! renewing the session in [`renewal`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dialtone_media::{PortEvent, PortFrame, PortPlayer};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

mod renewal;
mod tool_calls;
mod voice;
use tool_calls::{RunningTool, ToolDone};
use voice::from_frame;

use super::keys::Keys;
use super::playout::Playout;
use super::{external, hold};
use super::{
    AgentConfig, AgentControl, AgentEvent, AgentStats, EventSink, Side, ToolDispatcher, ToolReply,
};
use crate::protocol::{AudioFormat, ClientCommand, HistoryItem, Provider, Role, ServerEvent};
use crate::session::{connect, ConnectError, SessionHandle};

/// Conversation items carried over to a new session at most.
const HISTORY_KEPT: usize = 40;
const REPROMPT: &str = "The caller has been silent for a while. Ask briefly, in one short \
    sentence, whether they are still there.";
/// How long a response we asked for may take to start before the commands
/// held for it go anyway (the model may have refused it).
const CREATE_WAIT: Duration = Duration::from_secs(2);

type Events = mpsc::UnboundedReceiver<ServerEvent>;
type Connected = Result<(SessionHandle, Events), ConnectError>;

/// Why a new session is being opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purpose {
    /// The connection dropped.
    Reconnect,
    /// The session is near the provider's limit (or the provider said it
    /// will go away).
    Renew,
}

type Opening = Pin<Box<dyn Future<Output = (Purpose, Connected)> + Send>>;

pub(super) async fn run(
    mut cfg: AgentConfig,
    tools: Arc<dyn ToolDispatcher>,
    sink: EventSink,
    stats: Arc<AgentStats>,
    mut control: mpsc::UnboundedReceiver<AgentControl>,
) {
    let active = stats.started();
    let t0 = Instant::now();
    // The external MCP servers first: their tools go into the session setup.
    let external = tokio::select! {
        e = external::connect(&mut cfg, &sink) => Arc::new(e),
        _ = closed(&mut control) => return,
    };
    let tools: Arc<dyn ToolDispatcher> = Arc::new(external::Routed {
        external: Arc::clone(&external),
        builtin: tools,
    });
    let connected = tokio::select! {
        r = connect(cfg.session.clone()) => r,
        _ = closed(&mut control) => return,
    };
    let (session, events) = match connected {
        Ok(s) => s,
        Err(e) => {
            stats.failed();
            tracing::warn!(error = %e, url = %cfg.session.url, "realtime session not opened");
            sink(AgentEvent::Failed {
                reason: format!("the model could not be reached: {e}"),
            });
            return;
        }
    };
    stats.session_opened(t0.elapsed());
    tracing::debug!(took = ?t0.elapsed(), provider = %cfg.session.provider, "realtime session open");
    if !sink(AgentEvent::Ready) {
        let _ = session.send(ClientCommand::Close);
        return;
    }
    let mut agent = Agent::new(cfg, tools, sink, stats, session, events);
    agent.run(control).await;
    agent.shut();
    drop(agent);
    drop(active);
    // Dropping would close them too; closing lets a stdio server exit cleanly.
    if let Ok(external) = Arc::try_unwrap(external) {
        external.close().await;
    }
}

/// Waits for the call to close the agent (or go away) before it is ready.
async fn closed(control: &mut mpsc::UnboundedReceiver<AgentControl>) {
    while let Some(c) = control.recv().await {
        if matches!(c, AgentControl::Close) {
            return;
        }
    }
}

async fn next_of<T>(rx: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn next_event(rx: &mut Option<Events>) -> Option<ServerEvent> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn opened(o: &mut Option<Opening>) -> (Purpose, Connected) {
    match o {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

struct Agent {
    cfg: AgentConfig,
    tools: Arc<dyn ToolDispatcher>,
    sink: EventSink,
    stats: Arc<AgentStats>,
    provider: Provider,
    session: SessionHandle,
    events: Option<Events>,
    session_started: Instant,
    opening: Option<Opening>,
    /// A renewed session waiting for a quiet moment to take over.
    standby: Option<(SessionHandle, Events, Instant)>,
    reconnects_left: u32,
    resume_handle: Option<String>,
    history: Vec<HistoryItem>,
    player: Option<PortPlayer>,
    frames: Option<mpsc::Receiver<PortEvent>>,
    /// The model's audio that arrived before the call's audio port was up
    /// (the model may speak the moment it connects): played when it is.
    early: Vec<(Option<String>, Vec<u8>)>,
    early_len: Duration,
    playout: Playout,
    /// A model response is being generated.
    response_active: bool,
    /// We asked for a response (OpenAI) and it has not started yet.
    requested: Option<Instant>,
    /// Commands that start a response, held while one is active (OpenAI
    /// refuses a second).
    deferred: VecDeque<ClientCommand>,
    running: JoinSet<ToolDone>,
    in_flight: HashMap<String, RunningTool>,
    cancelled: HashSet<String>,
    /// Hold beeps are queued for a slow tool (and when last).
    holding: Option<Instant>,
    keys: Keys,
    /// A barge-in waiting for the caller's speech to last.
    guard: Option<Instant>,
    last_activity: Instant,
    reprompted: bool,
    /// Hang up once the last words are out, at the latest by then.
    hangup: Option<Instant>,
    /// The call is ending: nothing more is said.
    ending: bool,
}

impl Agent {
    fn new(
        cfg: AgentConfig,
        tools: Arc<dyn ToolDispatcher>,
        sink: EventSink,
        stats: Arc<AgentStats>,
        session: SessionHandle,
        events: Events,
    ) -> Agent {
        let provider = cfg.session.provider;
        let now = Instant::now();
        Agent {
            cfg,
            tools,
            sink,
            stats,
            provider,
            session,
            events: Some(events),
            session_started: now,
            opening: None,
            standby: None,
            reconnects_left: 1,
            resume_handle: None,
            history: Vec::new(),
            player: None,
            frames: None,
            early: Vec::new(),
            early_len: Duration::ZERO,
            playout: Playout::default(),
            response_active: false,
            requested: None,
            deferred: VecDeque::new(),
            running: JoinSet::new(),
            in_flight: HashMap::new(),
            cancelled: HashSet::new(),
            holding: None,
            keys: Keys::default(),
            guard: None,
            last_activity: now,
            reprompted: false,
            hangup: None,
            ending: false,
        }
    }

    async fn run(&mut self, mut control: mpsc::UnboundedReceiver<AgentControl>) {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                biased;
                ctl = control.recv() => match ctl {
                    None | Some(AgentControl::Close) => return,
                    Some(c) => self.on_control(c),
                },
                ev = next_event(&mut self.events) => {
                    let ev = ev.unwrap_or(ServerEvent::Closed { reason: "connection ended".into() });
                    if !self.on_server(ev) {
                        return;
                    }
                }
                ev = next_of(&mut self.frames) => self.on_port(ev),
                Some(done) = self.running.join_next(), if !self.running.is_empty() => {
                    match done {
                        Ok(d) => self.on_tool_done(d),
                        Err(e) => tracing::warn!(error = %e, "tool task failed"),
                    }
                }
                (purpose, result) = opened(&mut self.opening) => {
                    self.opening = None;
                    if !self.on_opened(purpose, result) {
                        return;
                    }
                }
                _ = tick.tick() => self.on_tick(),
            }
        }
    }

    /// Closes the session(s) at the end.
    fn shut(&mut self) {
        let _ = self.session.send(ClientCommand::Close);
        if let Some((s, _, _)) = self.standby.take() {
            let _ = s.send(ClientCommand::Close);
        }
        self.running.abort_all();
        self.report_transcripts(true);
    }

    fn emit(&self, ev: AgentEvent) {
        (self.sink)(ev);
    }

    fn send(&self, cmd: ClientCommand) {
        if self.session.send(cmd).is_err() {
            tracing::debug!("realtime session closed: command dropped");
        }
    }

    /// Sends a command that makes the model respond, once no response is
    /// being generated (OpenAI allows one at a time; Gemini takes them as
    /// they come — a tool answer must never wait there).
    fn send_when_idle(&mut self, cmd: ClientCommand) {
        if self.ending {
            return;
        }
        if self.provider == Provider::OpenAi && self.generating() {
            self.deferred.push_back(cmd);
        } else {
            self.send_creating(cmd);
        }
    }

    /// Sends a command that starts a response, and remembers that one was
    /// asked for (OpenAI allows one at a time).
    fn send_creating(&mut self, cmd: ClientCommand) {
        self.send(cmd);
        if self.provider == Provider::OpenAi {
            self.requested = Some(Instant::now());
        }
    }

    /// A response is being generated, or was asked for and has not started.
    fn generating(&self) -> bool {
        self.response_active || self.requested.is_some()
    }

    /// Sends the held commands, one response at a time.
    fn flush_deferred(&mut self) {
        if self.generating() {
            return;
        }
        if let Some(cmd) = self.deferred.pop_front() {
            self.send_creating(cmd);
        }
    }

    fn activity(&mut self) {
        self.last_activity = Instant::now();
    }

    fn queued(&self) -> Duration {
        self.player
            .as_ref()
            .map(PortPlayer::queued)
            .unwrap_or_default()
    }

    fn remember(&mut self, role: Role, text: &str) {
        self.history.push(HistoryItem {
            role,
            text: text.to_string(),
        });
        if self.history.len() > HISTORY_KEPT {
            let extra = self.history.len() - HISTORY_KEPT;
            self.history.drain(..extra);
        }
    }

    fn on_control(&mut self, ctl: AgentControl) {
        match ctl {
            AgentControl::Audio { player, frames } => {
                self.player = Some(player);
                self.frames = Some(frames);
                self.activity();
                self.early_len = Duration::ZERO;
                for (item_id, data) in std::mem::take(&mut self.early) {
                    self.on_audio(item_id, data);
                }
                if let Some(g) = self.cfg.greeting.clone() {
                    self.send_when_idle(ClientCommand::Respond {
                        instructions: Some(format!(
                            "Greet the caller now by saying exactly this, and nothing else: {g}"
                        )),
                    });
                }
            }
            AgentControl::Dtmf(d) => self.on_digit(d),
            AgentControl::HangupAfterPlayout => {
                self.ending = true;
                self.deferred.clear();
                self.hangup = Some(Instant::now() + self.cfg.drain_limit);
            }
            AgentControl::Close => {}
        }
    }

    fn on_digit(&mut self, digit: char) {
        self.activity();
        self.reprompted = false;
        self.emit(AgentEvent::Dtmf(digit));
        if let Some(text) = self.keys.press(digit, Instant::now()) {
            self.send_when_idle(ClientCommand::UserText(text));
        }
    }

    fn on_port(&mut self, ev: Option<PortEvent>) {
        match ev {
            Some(PortEvent::Audio(frame)) => {
                if self.events.is_some() {
                    self.send(ClientCommand::Audio(from_frame(frame)));
                }
            }
            Some(PortEvent::Dtmf { digit, .. }) => self.on_digit(digit),
            // The port stopped (the caller was transferred away).
            None => self.frames = None,
        }
    }

    /// One event from the model; false ends the agent.
    fn on_server(&mut self, ev: ServerEvent) -> bool {
        match ev {
            ServerEvent::Ready | ServerEvent::AudioDone { .. } => {}
            ServerEvent::ResponseStarted { .. } => {
                self.response_active = true;
                self.requested = None;
            }
            ServerEvent::Audio { item_id, data } => self.on_audio(item_id, data),
            ServerEvent::SpeechStarted { .. } => {
                self.activity();
                self.reprompted = false;
                if self.cfg.barge_in_min.is_zero() {
                    self.barge_in(self.cfg.session.interrupt_response);
                } else if self.speaking() && self.guard.is_none() {
                    self.guard = Some(Instant::now() + self.cfg.barge_in_min);
                }
            }
            ServerEvent::SpeechStopped => {
                self.activity();
                if self.guard.take().is_some() {
                    tracing::debug!("caller speech too short to interrupt the agent");
                }
            }
            ServerEvent::Interrupted => {
                self.activity();
                self.barge_in(true);
            }
            ServerEvent::AgentTranscript {
                item_id,
                text,
                done,
            } => {
                let item = self.playout.item(item_id.as_deref());
                if done {
                    item.transcript = text;
                    item.transcript_done = true;
                } else {
                    item.transcript.push_str(&text);
                }
                self.report_transcripts(false);
            }
            ServerEvent::CallerTranscript { text } => {
                self.activity();
                let text = text.trim().to_string();
                if !text.is_empty() {
                    self.remember(Role::User, &text);
                    self.emit(AgentEvent::Transcript {
                        side: Side::Caller,
                        text,
                    });
                }
            }
            ServerEvent::ResponseDone { .. } => {
                self.response_active = false;
                self.report_transcripts(true);
                self.flush_deferred();
            }
            ServerEvent::ToolCall {
                call_id,
                name,
                arguments,
            } => self.start_tool(call_id, name, arguments),
            ServerEvent::ToolCallCancelled { call_ids } => self.cancelled.extend(call_ids),
            ServerEvent::IdleTimeout => self.on_idle(),
            ServerEvent::GoAway { time_left } => {
                tracing::info!(?time_left, "the model's connection will go away: renewing");
                self.open(Purpose::Renew);
            }
            ServerEvent::ResumeHandle(h) => self.resume_handle = Some(h),
            ServerEvent::Error {
                message,
                code,
                fatal,
            } => {
                tracing::warn!(%message, ?code, fatal, "realtime model error");
                // A response we asked for may have been refused.
                self.requested = None;
                if fatal {
                    return self.lost(&message);
                }
            }
            ServerEvent::Closed { reason } => return self.lost(&reason),
        }
        true
    }

    fn speaking(&self) -> bool {
        self.generating() || !self.queued().is_zero()
    }

    fn on_idle(&mut self) {
        if self.ending || self.player.is_none() {
            return;
        }
        if self.reprompted {
            self.ending = true;
            self.emit(AgentEvent::IdleHangup);
        } else {
            self.reprompted = true;
            self.activity();
            self.send_when_idle(ClientCommand::Respond {
                instructions: Some(REPROMPT.into()),
            });
        }
    }

    fn on_tick(&mut self) {
        let now = Instant::now();
        if self
            .requested
            .is_some_and(|t| now.duration_since(t) >= CREATE_WAIT)
        {
            tracing::debug!("a response we asked for did not start; sending what waits");
            self.requested = None;
            self.flush_deferred();
        }
        if self.guard.is_some_and(|g| now >= g) {
            self.barge_in(false);
        }
        if let Some(text) = self.keys.due(now) {
            self.send_when_idle(ClientCommand::UserText(text));
        }
        self.fillers(now);
        if let Some(deadline) = self.hangup {
            let drained = !self.generating() && self.queued().is_zero();
            if drained || now >= deadline {
                self.hangup = None;
                self.emit(AgentEvent::HangupReady);
            }
        }
        if let Some(idle) = self.cfg.idle_timeout {
            let busy = self.speaking() || !self.in_flight.is_empty() || self.ending;
            if busy || self.player.is_none() {
                self.last_activity = now;
            } else if now.duration_since(self.last_activity) >= idle {
                self.on_idle();
            }
        }
        if self.opening.is_none()
            && self.standby.is_none()
            && now.duration_since(self.session_started) >= self.cfg.renew_after
        {
            self.open(Purpose::Renew);
        }
        self.maybe_switch(now);
    }
}

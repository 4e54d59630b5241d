//! The model's voice: its audio onto the call's playout (kept while the
//! audio port is not up yet), barge-in when the caller talks over it, and
//! the agent's transcript cut to what was heard.

use super::*;

/// The most of the model's audio kept while the call's audio port is not
/// up yet.
const EARLY_KEPT: Duration = Duration::from_secs(20);

/// The model's audio as a playout frame, and how long it lasts.
fn to_frame(format: AudioFormat, data: Vec<u8>) -> (PortFrame, Duration) {
    let len = audio_len(format, data.len());
    let frame = match format {
        AudioFormat::Pcm16 { .. } => PortFrame::Pcm(
            data.chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect(),
        ),
        AudioFormat::Pcmu | AudioFormat::Pcma => PortFrame::G711(data),
    };
    (frame, len)
}

/// How long `bytes` of the model's audio play.
fn audio_len(format: AudioFormat, bytes: usize) -> Duration {
    match format {
        AudioFormat::Pcm16 { rate } => {
            Duration::from_micros((bytes / 2) as u64 * 1_000_000 / u64::from(rate.max(1)))
        }
        AudioFormat::Pcmu | AudioFormat::Pcma => Duration::from_micros(bytes as u64 * 125),
    }
}

/// The caller's audio as the provider takes it.
pub(super) fn from_frame(frame: PortFrame) -> Vec<u8> {
    match frame {
        PortFrame::Pcm(pcm) => pcm.iter().flat_map(|s| s.to_le_bytes()).collect(),
        PortFrame::G711(bytes) => bytes,
    }
}
impl Agent {
    pub(super) fn on_audio(&mut self, item_id: Option<String>, data: Vec<u8>) {
        if self.playout.muted(item_id.as_deref()) {
            return;
        }
        let Some(player) = self.player.clone() else {
            self.keep_early(item_id, data);
            return;
        };
        if let Some(since) = self.holding.take() {
            // The model speaks again: the hold beeps stop.
            tracing::debug!(held = ?since.elapsed(), "hold beeps stopped");
            player.clear();
        }
        let (frame, len) = to_frame(self.cfg.session.output, data);
        self.playout
            .append(item_id.as_deref(), len, player.played());
        if let Err(e) = player.play(frame) {
            tracing::debug!(error = %e, "agent audio not queued");
        }
        self.activity();
    }

    /// Keeps audio that came before the port, up to [`EARLY_KEPT`].
    fn keep_early(&mut self, item_id: Option<String>, data: Vec<u8>) {
        let len = audio_len(self.cfg.session.output, data.len());
        if self.ending || self.early_len + len > EARLY_KEPT {
            tracing::debug!(?len, "agent audio before the audio port dropped");
            return;
        }
        self.early_len += len;
        self.early.push((item_id, data));
    }

    /// The caller talks over the agent: stop its voice at once, and tell
    /// the model what was heard. `server_cancels`: the provider stops the
    /// response itself.
    pub(super) fn barge_in(&mut self, server_cancels: bool) {
        self.guard = None;
        if !self.speaking() {
            return;
        }
        let Some(player) = self.player.clone() else {
            self.early.clear();
            self.early_len = Duration::ZERO;
            return;
        };
        player.clear();
        self.holding = None;
        let cut = self.playout.cut(player.played());
        self.stats.barge_in();
        self.emit(AgentEvent::BargeIn);
        if self.provider == Provider::OpenAi {
            if let Some(c) = &cut {
                if let Some(id) = &c.item_id {
                    self.send(ClientCommand::Truncate {
                        item_id: id.clone(),
                        audio_end_ms: c.audio_end_ms,
                    });
                }
            }
            if !server_cancels && self.response_active {
                self.send(ClientCommand::CancelResponse);
            }
        }
        tracing::debug!(?cut, "barge-in");
        self.report_transcripts(false);
    }

    pub(super) fn report_transcripts(&mut self, all: bool) {
        for text in self.playout.ready_transcripts(all) {
            self.remember(Role::Assistant, &text);
            self.emit(AgentEvent::Transcript {
                side: Side::Agent,
                text,
            });
        }
    }
}

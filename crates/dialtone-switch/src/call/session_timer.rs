//! Session timers (RFC 4028), per leg: dialtone is a UAS to the caller and a
//! UAC to every party it calls, so each dialog gets its own timer. The
//! caller's Session-Expires is honoured (422 with our Min-SE when it is too
//! short) and answered with `refresher=uac`; the legs we place offer
//! `Supported: timer` and our interval, and when the far end makes us the
//! refresher we re-INVITE at half the interval. A dialog whose refresher
//! stays silent past the interval (less min(32 s, interval/3), §10) ends
//! the call.

use std::time::{Duration, Instant};

use dialtone_sip::message::header;
use dialtone_sip::message::headers::{MinSe, SessionExpires};
use rsip::headers::UntypedHeader;
use rsip::{Header, Method, Request, Response};

use super::actor::Call;
use super::event::{CallEvent, LegId, Pending};
use super::leg::{set_sdp_body, LegState};

/// One dialog's session timer.
#[derive(Clone, Debug)]
pub struct SessionTimer {
    pub interval: Duration,
    /// We send the refreshes (else the far end does).
    pub we_refresh: bool,
    pub last_refresh: Instant,
}

impl SessionTimer {
    fn new(interval: Duration, we_refresh: bool) -> Self {
        SessionTimer {
            interval,
            we_refresh,
            last_refresh: Instant::now(),
        }
    }

    /// §10: the session ends this long after the last refresh.
    fn expiry(&self) -> Duration {
        self.interval - (self.interval / 3).min(Duration::from_secs(32))
    }
}

/// The session-timer settings of a switch.
#[derive(Clone, Copy, Debug)]
pub struct TimerPolicy {
    /// What we ask for on the legs we place, and the cap on the caller's.
    pub session_expires: Duration,
    /// The shortest interval we accept.
    pub min_se: Duration,
}

fn supports_timer(headers: &rsip::Headers) -> bool {
    headers.iter().any(|h| match h {
        Header::Supported(s) => s
            .value()
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("timer")),
        Header::Require(r) => r
            .value()
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("timer")),
        _ => false,
    })
}

/// §8.1: the caller asked for less than our Min-SE: answer 422 with it.
pub fn too_small(req: &Request, policy: &TimerPolicy) -> Option<Header> {
    let se = header::<SessionExpires>(&req.headers)?.ok()?;
    (u64::from(se.delta) < policy.min_se.as_secs())
        .then(|| Header::Other("Min-SE".into(), policy.min_se.as_secs().to_string()))
}

/// Headers for the legs we place (§7.1).
pub fn offer_headers(policy: &TimerPolicy) -> Vec<Header> {
    vec![
        Header::Supported(rsip::headers::Supported::from("timer")),
        Header::Other(
            "Session-Expires".into(),
            policy.session_expires.as_secs().to_string(),
        ),
        Header::Other("Min-SE".into(), policy.min_se.as_secs().to_string()),
    ]
}

impl Call {
    /// Our 2xx to the caller: adopt its timer (capped by ours) with the
    /// caller as refresher, if it supports timers.
    pub fn caller_timer(&mut self, invite: &Request, ok: &mut Response) {
        let Some(policy) = self.ctx.cfg.timers else {
            return;
        };
        if !supports_timer(&invite.headers) {
            return;
        }
        let asked = header::<SessionExpires>(&invite.headers)
            .and_then(Result::ok)
            .map(|s| u64::from(s.delta));
        let min = header::<MinSe>(&invite.headers)
            .and_then(Result::ok)
            .map(|m| u64::from(m.delta))
            .unwrap_or(0);
        let interval = asked
            .unwrap_or(policy.session_expires.as_secs())
            .min(policy.session_expires.as_secs())
            .max(min)
            .max(policy.min_se.as_secs());
        ok.headers
            .push(Header::Require(rsip::headers::Require::from("timer")));
        ok.headers.push(Header::Other(
            "Session-Expires".into(),
            format!("{interval};refresher=uac"),
        ));
        let a = self.a();
        self.legs[a].session = Some(SessionTimer::new(Duration::from_secs(interval), false));
        self.arm_session_tick();
    }

    /// A 2xx from a leg we placed: who refreshes, and how often.
    pub fn callee_timer(&mut self, leg: LegId, resp: &Response) {
        if self.ctx.cfg.timers.is_none() {
            return;
        }
        let Some(Ok(se)) = header::<SessionExpires>(&resp.headers) else {
            return;
        };
        // No refresher parameter in a 2xx means the UAC (us) refreshes (§7.2).
        let we_refresh = !matches!(
            se.refresher,
            Some(dialtone_sip::message::headers::Refresher::Uas)
        );
        self.legs[leg].session = Some(SessionTimer::new(
            Duration::from_secs(u64::from(se.delta).max(1)),
            we_refresh,
        ));
        self.arm_session_tick();
    }

    /// A refresh happened on this leg (a re-INVITE or UPDATE either way).
    pub fn refreshed(&mut self, leg: LegId) {
        if let Some(t) = self.legs[leg].session.as_mut() {
            t.last_refresh = Instant::now();
        }
    }

    fn arm_session_tick(&mut self) {
        let shortest = self
            .legs
            .iter()
            .filter_map(|l| l.session.as_ref())
            .map(|t| t.interval)
            .min();
        let Some(shortest) = shortest else { return };
        let every = (shortest / 8).max(Duration::from_millis(250));
        self.every(every, || CallEvent::SessionTick);
    }

    /// Refreshes what we refresh; ends the call when a far end did not.
    pub async fn on_session_tick(&mut self) {
        for id in self.legs.ids() {
            let Some(t) = self.legs[id].session.clone() else {
                continue;
            };
            if self.legs[id].state != LegState::Connected {
                continue;
            }
            let since = t.last_refresh.elapsed();
            if t.we_refresh && since >= t.interval / 2 {
                self.send_refresh(id);
            } else if !t.we_refresh && since >= t.expiry() {
                tracing::info!(call = %self.id, leg = %id, "session timer expired");
                let side = if id == self.a() { "caller" } else { "callee" };
                self.hangup("session timer expired", side, 408).await;
                return;
            }
        }
    }

    /// A session refresh: re-INVITE with the SDP this party already has.
    fn send_refresh(&mut self, id: LegId) {
        if self.in_flight.busy() {
            return; // a re-INVITE in flight refreshes anyway
        }
        let Some(source) = self.other(id).and_then(|o| self.legs[o].remote_sdp.clone()) else {
            return;
        };
        let local = self.media.local(self.legs[id].slot);
        let body = self.legs[id].offer_from(&source, local);
        let interval = self.legs[id]
            .session
            .as_ref()
            .map(|t| t.interval.as_secs())
            .unwrap_or(1800);
        let peer = self.legs[id].peer;
        let Some(dialog) = self.legs[id].dialog.as_mut() else {
            return;
        };
        let mut req = dialog.request(Method::Invite);
        req.headers
            .push(Header::Supported(rsip::headers::Supported::from("timer")));
        req.headers.push(Header::Other(
            "Session-Expires".into(),
            format!("{interval};refresher=uac"),
        ));
        set_sdp_body(&mut req.headers, &mut req.body, body);
        // Counted as refreshed now; a failure ends the call (on_refresh_event).
        self.refreshed(id);
        match self.ctx.layer.send_request(req, peer) {
            Ok(tx) => self.watch_client(id, Pending::Refresh, tx),
            Err(e) => {
                tracing::warn!(call = %self.id, leg = %id, error = %e, "session refresh not sent")
            }
        }
    }

    pub async fn on_refresh_event(
        &mut self,
        leg: LegId,
        event: dialtone_sip::transaction::ClientEvent,
    ) {
        use dialtone_sip::transaction::ClientEvent;
        match event {
            ClientEvent::Provisional(_) => {}
            ClientEvent::Final(resp) if resp.status_code.code() < 300 => {
                self.ack_reinvite(leg, &resp).await;
                self.refreshed(leg);
                // The answer may settle on another codec from our offer.
                if let Some(Ok(sdp)) = super::leg::response_sdp(&resp) {
                    self.took_description(leg, sdp, true).await;
                }
            }
            // §10: 408 or 481 to a refresh ends the session; other failures
            // leave it to the next refresh.
            ClientEvent::Final(resp) if matches!(resp.status_code.code(), 408 | 481) => {
                self.hangup("session refresh failed", "system", 408).await;
            }
            ClientEvent::Final(_) => {}
            ClientEvent::Timeout | ClientEvent::TransportError(_) => {
                self.hangup("session refresh failed", "system", 408).await;
            }
        }
    }
}

//! The caller's in-dialog requests while it talks to the AI agent, which
//! has no SIP dialog to relay them to: dialtone answers them itself. A
//! re-INVITE or UPDATE with an offer (hold, a new address, a session
//! refresh) is answered from the caller's offer, keeping the codec in use
//! when it is still offered; one without an offer gets our description
//! again. INFO carrying a keypad digit (application/dtmf-relay or
//! application/dtmf) goes to the agent.

use dialtone_ai::agent::AgentControl;
use dialtone_sip::transaction::ServerTransaction;
use rsip::headers::UntypedHeader;
use rsip::{Header, Method};

use super::super::actor::{with_reason, Call};
use super::super::event::LegId;
use super::super::leg::{request_sdp, set_sdp_body};

/// The digit an INFO body carries, if it is one.
pub fn info_digit(content_type: &str, body: &[u8]) -> Option<char> {
    let text = std::str::from_utf8(body).ok()?;
    let ct = content_type.to_ascii_lowercase();
    let value = if ct.starts_with("application/dtmf-relay") {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            k.trim().eq_ignore_ascii_case("signal").then(|| v.trim())
        })?
    } else if ct.starts_with("application/dtmf") {
        text.trim()
    } else {
        return None;
    };
    let mut chars = value.chars();
    let c = chars.next()?.to_ascii_uppercase();
    let ok = chars.next().is_none() && (c.is_ascii_digit() || "*#ABCD".contains(c));
    // RFC 2833-style numbers for * and # in some phones' INFO.
    match (ok, value) {
        (true, _) => Some(c),
        (false, "10") => Some('*'),
        (false, "11") => Some('#'),
        _ => None,
    }
}

impl Call {
    /// A re-INVITE or UPDATE from the caller while it talks to the agent.
    pub(in super::super) async fn answer_for_agent(
        &mut self,
        from: LegId,
        mut tx: ServerTransaction,
    ) {
        if self.in_flight.busy() {
            let _ = tx.respond(with_reason(tx.response(491), "Request Pending"));
            return;
        }
        let offer = match request_sdp(tx.request()) {
            Some(Ok(s)) => Some(s),
            Some(Err(e)) => {
                let _ = tx.respond(with_reason(tx.response(400), &format!("Bad SDP: {e}")));
                return;
            }
            None => None,
        };
        let before = self.legs[from].codec.clone();
        if let Some(sdp) = offer {
            self.legs[from].remote_sdp = Some(sdp);
        }
        let local = self.media.local(self.legs[from].slot);
        let body = self.legs[from].answer_alone_keeping(local, before.as_ref());
        let Some(body) = body else {
            let _ = tx.respond(with_reason(tx.response(488), "Not Acceptable Here"));
            return;
        };
        self.apply_leg_plan(from).await;
        let changed = before
            .as_ref()
            .zip(self.legs[from].codec.as_ref())
            .is_some_and(|(b, a)| !b.same_codec(a));
        let method = tx.request().method;
        let mut ok = tx.response(200);
        // A re-INVITE's 200 always describes our media (an answer, or an
        // offer when it had none); an UPDATE's only answers an offer.
        if method == Method::Invite || !tx.request().body.is_empty() {
            set_sdp_body(&mut ok.headers, &mut ok.body, body);
        }
        if method == Method::Invite {
            ok.headers
                .push(Header::Contact(rsip::headers::Contact::from(
                    self.contact_for(&self.legs[from].peer),
                )));
            self.watch_server(from, &mut tx);
        }
        let _ = tx.respond(ok);
        if changed {
            // The caller's codec changed under the agent: restart its port
            // (the agent's own formats stay as they are).
            if let Some((input, output)) = self.agent.as_ref().map(|a| (a.input, a.output)) {
                tracing::info!(call = %self.id, "caller changed codec; restarting the agent's audio port");
                self.media.detach_port().await;
                self.attach_agent_audio(input, output).await;
            }
        }
    }

    /// INFO from the caller while it talks to the agent.
    pub(in super::super) fn info_for_agent(&mut self, tx: ServerTransaction) {
        let req = tx.request();
        let ct = req
            .headers
            .iter()
            .find_map(|h| match h {
                Header::ContentType(c) => Some(c.value().to_string()),
                _ => None,
            })
            .unwrap_or_default();
        if req.body.is_empty() {
            let _ = tx.reply(200);
            return;
        }
        match info_digit(&ct, &req.body) {
            Some(d) => {
                if let Some(agent) = &self.agent {
                    agent.handle.send(AgentControl::Dtmf(d));
                }
                let _ = tx.reply(200);
            }
            None => {
                let _ = tx.respond(with_reason(tx.response(415), "Unsupported Media Type"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_in_info_bodies() {
        assert_eq!(
            info_digit("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n"),
            Some('5')
        );
        assert_eq!(
            info_digit("Application/DTMF-Relay", b"signal= #\r\n"),
            Some('#')
        );
        assert_eq!(info_digit("application/dtmf", b"7"), Some('7'));
        assert_eq!(
            info_digit("application/dtmf-relay", b"Signal=11\r\n"),
            Some('#')
        );
        assert_eq!(info_digit("application/dtmf-relay", b"Signal=99\r\n"), None);
        assert_eq!(info_digit("text/plain", b"5"), None);
        assert_eq!(info_digit("application/dtmf-relay", b"\xff\xfe"), None);
    }
}

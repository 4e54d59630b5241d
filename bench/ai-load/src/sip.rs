//! A minimal SIP UAC over one UDP socket for every call: INVITE with a
//! PCMU + telephone-event offer (retransmitted on T1, doubling, until a
//! response comes; Timer B 32 s), 1xx, the 200 (its SDP gives dialtone's
//! RTP address; ACKed, and ACKed again if it is retransmitted), non-2xx
//! finals ACKed; BYE at the end (retransmitted on T1 doubling to T2 until
//! its final response). In-dialog requests from dialtone (BYE, re-INVITE,
//! UPDATE, INFO, OPTIONS) are answered 200.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Result;
use tokio::net::UdpSocket;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::state::Shared;

const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
const TIMER_B: Duration = Duration::from_secs(32);
const BYE_LIMIT: Duration = Duration::from_secs(16);

#[derive(Default)]
struct Dialog {
    provisional: bool,
    final_code: Option<u16>,
    /// The To header of the 2xx, with dialtone's tag.
    to: Option<String>,
    remote_target: Option<String>,
    bye_code: Option<u16>,
    bye_provisional: bool,
}

pub struct Sip {
    sock: UdpSocket,
    local: SocketAddr,
    server: SocketAddr,
    number: String,
    run: u64,
    dialogs: Vec<(Mutex<Dialog>, Notify)>,
    sh: Arc<Shared>,
}

/// Outcome of a call's INVITE: its final status, or 408 when none came.
pub type Code = u16;

impl Sip {
    pub fn new(
        sock: UdpSocket,
        server: SocketAddr,
        number: String,
        sh: Arc<Shared>,
    ) -> Result<Sip> {
        let local = sock.local_addr()?;
        let run = sh.t0.elapsed().as_nanos() as u64 ^ u64::from(std::process::id()) << 20;
        let dialogs = (0..sh.calls.len())
            .map(|_| (Mutex::new(Dialog::default()), Notify::new()))
            .collect();
        Ok(Sip {
            sock,
            local,
            server,
            number,
            run: run % 1_000_000_007,
            dialogs,
            sh,
        })
    }

    fn dialog(&self, idx: u32) -> Option<(MutexGuard<'_, Dialog>, &Notify)> {
        let (m, n) = self.dialogs.get(idx as usize)?;
        Some((m.lock().unwrap_or_else(|p| p.into_inner()), n))
    }

    /// Reads a dialog's state without holding its lock across an await.
    fn with<R>(&self, idx: u32, f: impl FnOnce(&Dialog) -> R) -> Option<(R, &Notify)> {
        let (d, n) = self.dialog(idx)?;
        Some((f(&d), n))
    }

    fn call_id(&self, idx: u32) -> String {
        format!("aiload-{}-{idx}@{}", self.run, self.local.ip())
    }

    fn user(idx: u32) -> u32 {
        700_000 + idx
    }

    fn from(&self, idx: u32) -> String {
        format!(
            "<sip:{}@{}>;tag=al{idx}x{}",
            Sip::user(idx),
            self.local.ip(),
            self.run
        )
    }

    fn sdp(&self, idx: u32) -> String {
        let ip = self.local.ip();
        let port = self.sh.call(idx).map_or(0, |c| c.port);
        format!(
            "v=0\r\no=ai-load {idx} 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
        )
    }

    fn branch(&self, idx: u32, what: &str) -> String {
        format!("z9hG4bK-al{}-{idx}-{what}", self.run)
    }

    fn invite(&self, idx: u32) -> Vec<u8> {
        let sdp = self.sdp(idx);
        format!(
            "INVITE sip:{num}@{srv} SIP/2.0\r\nVia: SIP/2.0/UDP {loc};branch={br};rport\r\n\
             Max-Forwards: 70\r\nFrom: {from}\r\nTo: <sip:{num}@{srv}>\r\nCall-ID: {cid}\r\n\
             CSeq: 1 INVITE\r\nContact: <sip:{user}@{loc}>\r\n\
             Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO\r\nUser-Agent: ai-load\r\n\
             Content-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{sdp}",
            num = self.number,
            srv = self.server,
            loc = self.local,
            br = self.branch(idx, "inv"),
            from = self.from(idx),
            cid = self.call_id(idx),
            user = Sip::user(idx),
            len = sdp.len(),
        )
        .into_bytes()
    }

    /// An in-dialog request (ACK or BYE) on the confirmed dialog.
    fn in_dialog(&self, idx: u32, method: &str, cseq: u32, d: &Dialog, branch: &str) -> Vec<u8> {
        let target = d
            .remote_target
            .clone()
            .unwrap_or_else(|| format!("sip:{}@{}", self.number, self.server));
        let to =
            d.to.clone()
                .unwrap_or_else(|| format!("<sip:{}@{}>", self.number, self.server));
        format!(
            "{method} {target} SIP/2.0\r\nVia: SIP/2.0/UDP {loc};branch={branch};rport\r\n\
             Max-Forwards: 70\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {cid}\r\n\
             CSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n",
            loc = self.local,
            from = self.from(idx),
            cid = self.call_id(idx),
        )
        .into_bytes()
    }

    async fn send(&self, data: &[u8]) {
        // Lost like any datagram; the retransmissions cover it.
        let _ = self.sock.send_to(data, self.server).await;
    }

    /// Places call `idx`: its INVITE's final status (408 without one).
    pub async fn call(&self, idx: u32) -> Code {
        let msg = self.invite(idx);
        let start = Instant::now();
        let deadline = start + TIMER_B;
        let mut interval = T1;
        let mut retransmit = start + interval;
        self.send(&msg).await;
        loop {
            let Some(((final_code, provisional), notify)) =
                self.with(idx, |d| (d.final_code, d.provisional))
            else {
                return 500;
            };
            if let Some(code) = final_code {
                if (200..300).contains(&code) {
                    let ms = start.elapsed().as_secs_f64() * 1e3;
                    if let Ok(mut v) = self.sh.setup_ms.lock() {
                        v.push(ms);
                    }
                }
                return code;
            }
            let wake = if provisional {
                deadline
            } else {
                retransmit.min(deadline)
            };
            tokio::select! {
                () = notify.notified() => {}
                () = tokio::time::sleep_until(wake) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return 408;
                    }
                    if !provisional && now >= retransmit {
                        self.send(&msg).await;
                        interval *= 2;
                        retransmit = now + interval;
                    }
                }
            }
        }
    }

    /// Hangs call `idx` up: the BYE's final status (408 without one).
    pub async fn bye(&self, idx: u32) -> Code {
        let msg = {
            let Some((d, _)) = self.dialog(idx) else {
                return 500;
            };
            self.in_dialog(idx, "BYE", 2, &d, &self.branch(idx, "bye"))
        };
        let start = Instant::now();
        let deadline = start + BYE_LIMIT;
        let mut interval = T1;
        let mut retransmit = start + interval;
        self.send(&msg).await;
        loop {
            let Some(((bye_code, bye_provisional), notify)) =
                self.with(idx, |d| (d.bye_code, d.bye_provisional))
            else {
                return 500;
            };
            if let Some(code) = bye_code {
                return code;
            }
            // Non-INVITE: after a provisional, retransmit at T2.
            if bye_provisional {
                interval = T2;
            }
            tokio::select! {
                () = notify.notified() => {}
                () = tokio::time::sleep_until(retransmit.min(deadline)) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return 408;
                    }
                    if now >= retransmit {
                        self.send(&msg).await;
                        interval = (interval * 2).min(T2);
                        retransmit = now + interval;
                    }
                }
            }
        }
    }

    pub async fn receive(self: Arc<Self>) {
        let mut buf = vec![0u8; 65536];
        loop {
            let (n, src) = match self.sock.recv_from(&mut buf).await {
                Ok(r) => r,
                Err(_) => continue,
            };
            let Some(msg) = buf.get(..n).and_then(Msg::parse) else {
                continue;
            };
            if let Some(code) = msg.status() {
                self.response(&msg, code).await;
            } else {
                self.request(&msg, src).await;
            }
        }
    }

    fn idx_of(&self, msg: &Msg<'_>) -> Option<u32> {
        let cid = msg.get("call-id")?;
        let rest = cid.strip_prefix(&format!("aiload-{}-", self.run))?;
        rest.split('@').next()?.parse().ok()
    }

    async fn response(&self, msg: &Msg<'_>, code: u16) {
        let Some(idx) = self.idx_of(msg) else {
            return;
        };
        let Some((_, method)) = msg.cseq() else {
            return;
        };
        let mut send = None;
        {
            let Some((mut d, notify)) = self.dialog(idx) else {
                return;
            };
            match method {
                "INVITE" if code < 200 => {
                    d.provisional = true;
                    notify.notify_one();
                }
                "INVITE" if code < 300 => {
                    if d.final_code.is_none() {
                        d.final_code = Some(code);
                        d.to = msg.get("to").map(str::to_string);
                        d.remote_target = msg.get("contact").map(uri_of);
                        if let (Some(call), Some(addr)) = (self.sh.call(idx), sdp_addr(msg.body)) {
                            let _ = call.media.set(addr);
                            call.rtp_on.store(true, Relaxed);
                        }
                        notify.notify_one();
                    }
                    // Every 200 (a retransmission: our ACK was lost) gets an ACK.
                    send = Some(self.in_dialog(idx, "ACK", 1, &d, &self.branch(idx, "ack")));
                }
                "INVITE" => {
                    if d.final_code.is_none() {
                        d.final_code = Some(code);
                        notify.notify_one();
                    }
                    // The ACK of a non-2xx is hop by hop, on the INVITE's branch.
                    let mut ack = Dialog {
                        to: msg.get("to").map(str::to_string),
                        ..Dialog::default()
                    };
                    ack.remote_target = Some(format!("sip:{}@{}", self.number, self.server));
                    send = Some(self.in_dialog(idx, "ACK", 1, &ack, &self.branch(idx, "inv")));
                }
                "BYE" if code < 200 => d.bye_provisional = true,
                "BYE" if d.bye_code.is_none() => {
                    d.bye_code = Some(code);
                    notify.notify_one();
                }
                _ => {}
            }
        }
        if let Some(data) = send {
            self.send(&data).await;
        }
    }

    async fn request(&self, msg: &Msg<'_>, src: SocketAddr) {
        let method = msg.start.split(' ').next().unwrap_or("");
        if method == "ACK" {
            return;
        }
        let idx = self.idx_of(msg);
        if method == "BYE" {
            if let Some(call) = idx.and_then(|i| self.sh.call(i)) {
                call.rtp_on.store(false, Relaxed);
                self.sh.remote_byes.fetch_add(1, Relaxed);
            }
        }
        let mut out = String::from("SIP/2.0 200 OK\r\n");
        for via in msg.all("via") {
            out.push_str(&format!("Via: {via}\r\n"));
        }
        for h in ["from", "to", "call-id", "cseq"] {
            if let Some(v) = msg.get(h) {
                out.push_str(&format!("{}: {v}\r\n", canonical(h)));
            }
        }
        let body = match (method, idx) {
            ("INVITE", Some(i)) => {
                out.push_str(&format!(
                    "Contact: <sip:{}@{}>\r\n",
                    Sip::user(i),
                    self.local
                ));
                out.push_str("Content-Type: application/sdp\r\n");
                self.sdp(i)
            }
            _ => String::new(),
        };
        out.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        let _ = self.sock.send_to(out.as_bytes(), src).await;
    }
}

fn canonical(h: &str) -> &str {
    match h {
        "from" => "From",
        "to" => "To",
        "call-id" => "Call-ID",
        "cseq" => "CSeq",
        _ => h,
    }
}

/// The URI of a Contact (or To/From) value.
fn uri_of(v: &str) -> String {
    match (v.find('<'), v.find('>')) {
        (Some(a), Some(b)) if a < b => v[a + 1..b].to_string(),
        _ => v.split(';').next().unwrap_or(v).trim().to_string(),
    }
}

/// The connection address and audio port of an SDP body.
fn sdp_addr(body: &str) -> Option<SocketAddr> {
    let mut ip = None;
    let mut port = None;
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("c=IN IP4 ") {
            ip.get_or_insert(rest.trim().to_string());
        } else if let Some(rest) = line.strip_prefix("m=audio ") {
            port = rest
                .split_whitespace()
                .next()
                .and_then(|p| p.parse::<u16>().ok());
        }
    }
    format!("{}:{}", ip?, port?).parse().ok()
}

/// A SIP message, split but not interpreted beyond what the UAC needs.
struct Msg<'a> {
    start: &'a str,
    headers: Vec<(&'a str, &'a str)>,
    body: &'a str,
}

impl<'a> Msg<'a> {
    fn parse(data: &'a [u8]) -> Option<Msg<'a>> {
        let text = std::str::from_utf8(data).ok()?;
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
        let mut lines = head.split("\r\n");
        let start = lines.next()?;
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim(), v.trim()))
            .collect();
        Some(Msg {
            start,
            headers,
            body,
        })
    }

    fn status(&self) -> Option<u16> {
        let rest = self.start.strip_prefix("SIP/2.0 ")?;
        rest.get(..3)?.parse().ok()
    }

    fn matches(k: &str, name: &str) -> bool {
        let compact = match name {
            "call-id" => "i",
            "from" => "f",
            "to" => "t",
            "via" => "v",
            "contact" => "m",
            _ => "",
        };
        k.eq_ignore_ascii_case(name) || (!compact.is_empty() && k.eq_ignore_ascii_case(compact))
    }

    fn get(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|(k, _)| Msg::matches(k, name))
            .map(|(_, v)| *v)
    }

    fn all(&self, name: &str) -> Vec<&'a str> {
        self.headers
            .iter()
            .filter(|(k, _)| Msg::matches(k, name))
            .map(|(_, v)| *v)
            .collect()
    }

    fn cseq(&self) -> Option<(u32, &'a str)> {
        let (n, m) = self.get("cseq")?.split_once(' ')?;
        Some((n.trim().parse().ok()?, m.trim()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_200_with_sdp() {
        let raw = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.2:5000;branch=z9hG4bK1\r\n\
            i: aiload-7-12@127.0.0.2\r\nCSeq: 1 INVITE\r\nm: <sip:x@127.0.0.1:5060;transport=udp>\r\n\
            Content-Length: 40\r\n\r\nv=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 20002 RTP/AVP 0\r\n";
        let m = Msg::parse(raw).unwrap_or_else(|| panic!("no parse"));
        assert_eq!(m.status(), Some(200));
        assert_eq!(m.cseq(), Some((1, "INVITE")));
        assert_eq!(m.get("call-id"), Some("aiload-7-12@127.0.0.2"));
        assert_eq!(
            uri_of(m.get("contact").unwrap_or("")),
            "sip:x@127.0.0.1:5060;transport=udp"
        );
        assert_eq!(sdp_addr(m.body), "127.0.0.1:20002".parse().ok());
    }
}

//! The fake peers' side of SIP: raw message text built by hand (so that
//! nothing here shares code with what is under test, beyond the parser),
//! and accessors for the messages dialtone sent.
//!
//! A peer is a [`Ua`] (an address and a user). A call a peer places is an
//! [`OutCall`] (the trunk's INVITE, its CANCEL, the ACK for a non-2xx);
//! an INVITE dialtone sends a phone is an [`Offered`] (the phone's 180,
//! 200, 486, 487); once answered, either becomes a [`Dlg`], the peer's
//! half of the dialog, which builds in-dialog requests (ACK, BYE,
//! re-INVITE, REFER) with the peer's own CSeq.

use dialtone_sip::message::{header_name_value, uri::format_uri, NameAddr, SipMessage};
use dialtone_sip::transport::{Peer, Protocol};
use rsip::Method;

/// Where dialtone listens (the sink transport's address).
pub const DIALTONE: &str = "127.0.0.1:5060";
/// dialtone's SIP domain (SwitchConfig.domain).
pub const DOMAIN: &str = "dialtone.test";

fn token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

fn new_branch() -> String {
    format!("z9hG4bK{}", token())
}

/// An SDP offer or answer for a peer's media address.
pub fn sdp(ip: &str, port: u16, direction: &str) -> String {
    format!(
        "v=0\r\n\
         o=- {port} 1 IN IP4 {ip}\r\n\
         s=-\r\n\
         c=IN IP4 {ip}\r\n\
         t=0 0\r\n\
         m=audio {port} RTP/AVP 0 101\r\n\
         a=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-15\r\n\
         a={direction}\r\n"
    )
}

/// Drops a `;tag=…` parameter from a From/To value.
fn strip_tag(value: &str) -> String {
    let lower = value.to_ascii_lowercase();
    match lower.find(";tag=") {
        Some(i) => {
            let rest = &value[i + 5..];
            let end = rest.find(';').map(|j| i + 5 + j).unwrap_or(value.len());
            format!("{}{}", &value[..i], &value[end..])
        }
        None => value.to_string(),
    }
}

/// Accessors for a message dialtone sent.
pub trait Msg {
    fn method(&self) -> Option<Method>;
    fn code(&self) -> Option<u16>;
    /// Every value of the header `name` (case-insensitive), in order.
    fn headers_named(&self, name: &str) -> Vec<String>;
    fn header(&self, name: &str) -> Option<String> {
        self.headers_named(name).into_iter().next()
    }
    fn call_id(&self) -> String {
        self.header("Call-ID").unwrap_or_default()
    }
    /// The CSeq number and method.
    fn cseq(&self) -> (u32, String) {
        let v = self.header("CSeq").unwrap_or_default();
        let mut it = v.split_whitespace();
        let n = it.next().and_then(|n| n.parse().ok()).unwrap_or(0);
        (n, it.next().unwrap_or_default().to_string())
    }
    fn tag(&self, header: &str) -> Option<String> {
        NameAddr::parse(&self.header(header)?)
            .ok()?
            .tag()
            .map(str::to_string)
    }
    fn to_tag(&self) -> Option<String> {
        self.tag("To")
    }
    fn tag_in_from(&self) -> Option<String> {
        self.tag("From")
    }
    /// The branch of the top Via.
    fn branch(&self) -> Option<String> {
        let via = self.header("Via")?;
        via.split(';')
            .find_map(|p| p.trim().strip_prefix("branch=").map(str::to_string))
    }
    /// The URI of the first Contact.
    fn contact_uri(&self) -> Option<String> {
        let na = NameAddr::parse(&self.header("Contact")?).ok()?;
        Some(format_uri(&na.uri))
    }
    fn body_text(&self) -> String;
    /// The `c=` address and `m=audio` port of an SDP body.
    fn sdp_addr(&self) -> Option<(String, u16)> {
        let body = self.body_text();
        let ip = body
            .lines()
            .find_map(|l| l.trim().strip_prefix("c=IN IP4 "))?
            .trim()
            .to_string();
        let port = body
            .lines()
            .find_map(|l| l.trim().strip_prefix("m=audio "))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()?;
        Some((ip, port))
    }
    /// The `a=` direction attribute of an SDP body, if any.
    fn sdp_direction(&self) -> Option<String> {
        self.body_text().lines().map(str::trim).find_map(|l| {
            ["sendrecv", "sendonly", "recvonly", "inactive"]
                .into_iter()
                .find(|d| l == format!("a={d}"))
                .map(str::to_string)
        })
    }
    /// The first line, for messages in assertions.
    fn first_line(&self) -> String;
}

impl Msg for SipMessage {
    fn method(&self) -> Option<Method> {
        match self {
            SipMessage::Request(r) => Some(r.method),
            SipMessage::Response(_) => None,
        }
    }

    fn code(&self) -> Option<u16> {
        match self {
            SipMessage::Response(r) => Some(r.status_code.code()),
            SipMessage::Request(_) => None,
        }
    }

    fn headers_named(&self, name: &str) -> Vec<String> {
        let headers = match self {
            SipMessage::Request(r) => &r.headers,
            SipMessage::Response(r) => &r.headers,
        };
        headers
            .iter()
            .map(header_name_value)
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.to_string())
            .collect()
    }

    fn body_text(&self) -> String {
        let body = match self {
            SipMessage::Request(r) => &r.body,
            SipMessage::Response(r) => &r.body,
        };
        String::from_utf8_lossy(body).into_owned()
    }

    fn first_line(&self) -> String {
        let text = String::from_utf8_lossy(&dialtone_sip::message::to_bytes(self)).into_owned();
        text.lines().next().unwrap_or_default().to_string()
    }
}

/// A fake SIP party: its address (UDP) and user name.
#[derive(Clone, Debug)]
pub struct Ua {
    pub peer: Peer,
    pub user: String,
}

impl Ua {
    pub fn udp(addr: &str, user: &str) -> Ua {
        Ua {
            peer: Peer::new(
                Protocol::Udp,
                addr.parse().unwrap_or_else(|e| panic!("{addr}: {e}")),
            ),
            user: user.to_string(),
        }
    }

    pub fn ip(&self) -> String {
        self.peer.addr.ip().to_string()
    }

    fn via(&self, branch: &str) -> String {
        format!("SIP/2.0/UDP {};branch={branch};rport", self.peer.addr)
    }

    /// Our Contact value.
    pub fn contact(&self) -> String {
        format!("<sip:{}@{}>", self.user, self.peer.addr)
    }

    /// Starts a call to `number` at dialtone (an INVITE with an offer
    /// whose media address is `rtp_port` on our IP).
    pub fn call(&self, number: &str, rtp_port: u16) -> OutCall {
        let branch = new_branch();
        let call_id = format!("{}@{}", token(), self.ip());
        let from_tag = token();
        let uri = format!("sip:{number}@{DIALTONE}");
        let to = format!("<sip:{number}@{DOMAIN}>");
        let from = format!("<sip:{}@{}>", self.user, self.ip());
        let body = sdp(&self.ip(), rtp_port, "sendrecv");
        let text = format!(
            "INVITE {uri} SIP/2.0\r\n\
             Via: {via}\r\n\
             Max-Forwards: 70\r\n\
             From: {from};tag={from_tag}\r\n\
             To: {to}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 1 INVITE\r\n\
             Contact: {contact}\r\n\
             Allow: INVITE, ACK, CANCEL, BYE, REFER, NOTIFY, INFO, UPDATE\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: {len}\r\n\r\n{body}",
            via = self.via(&branch),
            contact = self.contact(),
            len = body.len(),
        );
        OutCall {
            ua: self.clone(),
            uri,
            from,
            from_tag,
            to,
            call_id,
            branch,
            text,
        }
    }
}

/// A call a fake peer placed: its INVITE, and what goes with that
/// transaction (CANCEL, the ACK of a non-2xx).
pub struct OutCall {
    pub ua: Ua,
    pub uri: String,
    pub from: String,
    pub from_tag: String,
    pub to: String,
    pub call_id: String,
    pub branch: String,
    /// The INVITE.
    pub text: String,
}

impl OutCall {
    /// §9.1: the CANCEL of our INVITE (same branch, Call-ID, From, To, CSeq number).
    pub fn cancel(&self) -> String {
        self.same_transaction("CANCEL", &self.to)
    }

    /// §17.1.1.3: the ACK of a non-2xx final response (same branch, its To).
    pub fn ack_non2xx(&self, resp: &SipMessage) -> String {
        self.same_transaction("ACK", &resp.header("To").unwrap_or_default())
    }

    /// A request of the INVITE's transaction: its URI, branch, From,
    /// Call-ID and CSeq number, with `method` and `to`.
    fn same_transaction(&self, method: &str, to: &str) -> String {
        format!(
            "{method} {uri} SIP/2.0\r\n\
             Via: {via}\r\n\
             Max-Forwards: 70\r\n\
             From: {from};tag={tag}\r\n\
             To: {to}\r\n\
             Call-ID: {cid}\r\n\
             CSeq: 1 {method}\r\n\
             Content-Length: 0\r\n\r\n",
            uri = self.uri,
            via = self.ua.via(&self.branch),
            from = self.from,
            tag = self.from_tag,
            cid = self.call_id,
        )
    }

    /// Our half of the dialog the 2xx `ok` made.
    pub fn dialog(&self, ok: &SipMessage) -> Dlg {
        Dlg {
            ua: self.ua.clone(),
            call_id: self.call_id.clone(),
            local: self.from.clone(),
            local_tag: self.from_tag.clone(),
            remote: strip_tag(&ok.header("To").unwrap_or_default()),
            remote_tag: ok.to_tag().unwrap_or_default(),
            target: ok
                .contact_uri()
                .unwrap_or_else(|| panic!("2xx without Contact: {}", ok.first_line())),
            cseq: 1,
        }
    }
}

/// An INVITE dialtone sent to a fake phone, and the phone's answers to it.
pub struct Offered {
    pub ua: Ua,
    pub invite: SipMessage,
    /// The phone's To tag.
    pub tag: String,
}

impl Offered {
    pub fn new(ua: &Ua, invite: SipMessage) -> Offered {
        Offered {
            ua: ua.clone(),
            invite,
            tag: token(),
        }
    }

    pub fn call_id(&self) -> String {
        self.invite.call_id()
    }

    /// A response without a body (180, 486, 487, …), with our tag and Contact.
    pub fn reply(&self, code: u16, reason: &str) -> String {
        let contact = format!("Contact: {}", self.ua.contact());
        reply(
            &self.invite,
            code,
            reason,
            Some(&self.tag),
            &[contact],
            None,
        )
    }

    /// 200 OK with our SDP answer.
    pub fn answer(&self, rtp_port: u16) -> String {
        let contact = format!("Contact: {}", self.ua.contact());
        let body = sdp(&self.ua.ip(), rtp_port, "sendrecv");
        reply(
            &self.invite,
            200,
            "OK",
            Some(&self.tag),
            &[contact],
            Some(&body),
        )
    }

    /// Our half of the dialog our 2xx made.
    pub fn dialog(&self) -> Dlg {
        Dlg {
            ua: self.ua.clone(),
            call_id: self.call_id(),
            local: strip_tag(&self.invite.header("To").unwrap_or_default()),
            local_tag: self.tag.clone(),
            remote: strip_tag(&self.invite.header("From").unwrap_or_default()),
            remote_tag: self.invite.tag_in_from().unwrap_or_default(),
            target: self
                .invite
                .contact_uri()
                .unwrap_or_else(|| panic!("INVITE without Contact")),
            // A phone's CSeq space is its own.
            cseq: 100,
        }
    }
}

/// A response to a request dialtone sent: its Via(s), From, To (with
/// `to_tag` added when it has none), Call-ID and CSeq, then `extra`
/// header lines and an SDP `body`.
pub fn reply(
    req: &SipMessage,
    code: u16,
    reason: &str,
    to_tag: Option<&str>,
    extra: &[String],
    body: Option<&str>,
) -> String {
    let mut s = format!("SIP/2.0 {code} {reason}\r\n");
    for v in req.headers_named("Via") {
        s.push_str(&format!("Via: {v}\r\n"));
    }
    s.push_str(&format!(
        "From: {}\r\n",
        req.header("From").unwrap_or_default()
    ));
    let to = req.header("To").unwrap_or_default();
    match to_tag {
        Some(t) if req.to_tag().is_none() => s.push_str(&format!("To: {to};tag={t}\r\n")),
        _ => s.push_str(&format!("To: {to}\r\n")),
    }
    s.push_str(&format!("Call-ID: {}\r\n", req.call_id()));
    s.push_str(&format!(
        "CSeq: {}\r\n",
        req.header("CSeq").unwrap_or_default()
    ));
    for h in extra {
        s.push_str(h);
        s.push_str("\r\n");
    }
    match body {
        Some(b) => s.push_str(&format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{b}",
            b.len()
        )),
        None => s.push_str("Content-Length: 0\r\n\r\n"),
    }
    s
}

/// A request a peer sent in a dialog: its text, branch and CSeq number.
pub struct Req {
    pub text: String,
    pub branch: String,
    pub cseq: u32,
}

/// A fake peer's half of a dialog with dialtone (§12).
pub struct Dlg {
    pub ua: Ua,
    pub call_id: String,
    /// Our From value, without tag.
    pub local: String,
    pub local_tag: String,
    /// dialtone's, without tag.
    pub remote: String,
    pub remote_tag: String,
    /// dialtone's Contact: the Request-URI of our requests.
    pub target: String,
    /// The last CSeq number we used.
    pub cseq: u32,
}

impl Dlg {
    fn request_with(
        &self,
        method: &'static str,
        cseq: u32,
        branch: &str,
        extra: &[String],
        body: Option<(&str, &str)>,
    ) -> String {
        let mut s = format!(
            "{method} {target} SIP/2.0\r\n\
             Via: {via}\r\n\
             Max-Forwards: 70\r\n\
             From: {local};tag={ltag}\r\n\
             To: {remote};tag={rtag}\r\n\
             Call-ID: {cid}\r\n\
             CSeq: {cseq} {method}\r\n",
            target = self.target,
            via = self.ua.via(branch),
            local = self.local,
            ltag = self.local_tag,
            remote = self.remote,
            rtag = self.remote_tag,
            cid = self.call_id,
        );
        for h in extra {
            s.push_str(h);
            s.push_str("\r\n");
        }
        match body {
            Some((ctype, b)) => s.push_str(&format!(
                "Content-Type: {ctype}\r\nContent-Length: {}\r\n\r\n{b}",
                b.len()
            )),
            None => s.push_str("Content-Length: 0\r\n\r\n"),
        }
        s
    }

    /// A new request in the dialog, with our next CSeq.
    pub fn request(
        &mut self,
        method: &'static str,
        extra: &[String],
        body: Option<(&str, &str)>,
    ) -> Req {
        self.cseq += 1;
        let branch = new_branch();
        Req {
            text: self.request_with(method, self.cseq, &branch, extra, body),
            branch,
            cseq: self.cseq,
        }
    }

    /// §13.2.2.4: the ACK of a 2xx to our INVITE with CSeq `cseq` (a
    /// transaction of its own).
    pub fn ack(&self, cseq: u32) -> String {
        self.request_with("ACK", cseq, &new_branch(), &[], None)
    }

    /// §17.1.1.3: the ACK of a non-2xx to our in-dialog INVITE `req`.
    pub fn ack_non2xx(&self, req: &Req) -> String {
        self.request_with("ACK", req.cseq, &req.branch, &[], None)
    }

    pub fn bye(&mut self) -> Req {
        self.request("BYE", &[], None)
    }

    /// A re-INVITE with an offer whose stream is `direction`.
    pub fn reinvite(&mut self, rtp_port: u16, direction: &str) -> Req {
        self.offer("INVITE", rtp_port, direction)
    }

    /// An UPDATE (RFC 3311) with an offer whose stream is `direction`.
    pub fn update(&mut self, rtp_port: u16, direction: &str) -> Req {
        self.offer("UPDATE", rtp_port, direction)
    }

    fn offer(&mut self, method: &'static str, rtp_port: u16, direction: &str) -> Req {
        let contact = format!("Contact: {}", self.ua.contact());
        let body = sdp(&self.ua.ip(), rtp_port, direction);
        self.request(method, &[contact], Some(("application/sdp", &body)))
    }

    /// REFER (RFC 3515) of the other party to `target` (a SIP URI).
    pub fn refer(&mut self, target: &str) -> Req {
        let extra = [
            format!("Contact: {}", self.ua.contact()),
            format!("Refer-To: <{target}>"),
            format!("Referred-By: {}", self.ua.contact()),
        ];
        self.request("REFER", &extra, None)
    }

    /// A 2xx to a re-INVITE dialtone sent us, with our SDP.
    pub fn answer(&self, req: &SipMessage, rtp_port: u16, direction: &str) -> String {
        let contact = format!("Contact: {}", self.ua.contact());
        let body = sdp(&self.ua.ip(), rtp_port, direction);
        reply(req, 200, "OK", None, &[contact], Some(&body))
    }
}

//! A real [`Switch`] with nothing on a socket: its transaction layer runs
//! over [`Transports::sink`], so every message dialtone sends lands in a
//! channel this harness reads ([`Harness::expect`]), and every message a
//! peer "sends" is injected as if a transport had received it
//! ([`Harness::inject`]). The store is an in-memory SQLite provisioned
//! like the end-to-end tests' cast (tests/test_calls.py); the media engine
//! is real, on 127.0.0.1 and a port range of the test's own. Timers run on
//! tokio's real clock with T1 = 50 ms, so a transaction's 64·T1 is 3.2 s.
//!
//! Retransmissions (ours are UDP peers) are absorbed here as a peer's
//! transaction layer would: a message byte-identical to one already seen
//! for the same peer is dropped.

pub mod sip;

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dialtone_media::{MediaConfig, MediaEngine};
use dialtone_sip::auth::Algorithm;
use dialtone_sip::message::SipMessage;
use dialtone_sip::transaction::{TimerConfig, TransactionLayer};
use dialtone_sip::transport::{via, Incoming, Peer, Transports};
use dialtone_store::{BindingChange, CallRecord, NewTrunk, NewUser, Store, TargetKind};
use dialtone_switch::abuse::AbuseConfig;
use dialtone_switch::auth_guard::{GuardConfig, Lockout};
use dialtone_switch::call::{AgentSettings, CallConfig, RecordingPolicy};
use dialtone_switch::cluster::ClusterConfig;
use dialtone_switch::registrar::RegistrarConfig;
use dialtone_switch::{Switch, SwitchConfig};
use rsip::Method;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

pub use sip::{reply, Dlg, Msg, Offered, OutCall, Req, Ua, DOMAIN};

/// How long a message dialtone owes may take.
pub const WAIT: Duration = Duration::from_secs(2);
/// How long we listen to be sure something is not sent.
pub const QUIET: Duration = Duration::from_millis(300);

/// The numbers (DIDs), as in tests/test_calls.py.
pub const N_BOB: &str = "15551230001";
pub const N_ALICE: &str = "15551230002";
pub const N_CAROL: &str = "15551230003";
/// dave exists but never registers.
pub const N_DAVE: &str = "15551230004";

/// The trunk "carrier", known by its source address 127.0.0.2.
pub fn trunk() -> Ua {
    Ua::udp("127.0.0.2:5070", "15550009999")
}

/// Phones on 127.0.0.1, one port each.
pub fn alice() -> Ua {
    Ua::udp("127.0.0.1:5062", "alice")
}
pub fn bob() -> Ua {
    Ua::udp("127.0.0.1:5064", "bob")
}
/// bob's second phone (another contact of the same user).
pub fn bob2() -> Ua {
    Ua::udp("127.0.0.1:5066", "bob")
}
pub fn carol() -> Ua {
    Ua::udp("127.0.0.1:5068", "carol")
}

type Pred = Box<dyn Fn(&Peer, &SipMessage) -> bool + Send>;

/// A predicate on what dialtone sent, with words for the failure message.
pub struct Want {
    desc: String,
    pred: Pred,
}

impl Want {
    pub fn new(
        desc: impl Into<String>,
        pred: impl Fn(&Peer, &SipMessage) -> bool + Send + 'static,
    ) -> Want {
        Want {
            desc: desc.into(),
            pred: Box::new(pred),
        }
    }

    /// Narrows this predicate.
    pub fn and(self, desc: &str, more: impl Fn(&SipMessage) -> bool + Send + 'static) -> Want {
        let Want { desc: d, pred } = self;
        Want {
            desc: format!("{d}, {desc}"),
            pred: Box::new(move |p, m| pred(p, m) && more(m)),
        }
    }

    /// Only in the dialog (or transaction) of this SIP Call-ID.
    pub fn in_call(self, call_id: &str) -> Want {
        let cid = call_id.to_string();
        self.and(&format!("Call-ID {call_id}"), move |m| m.call_id() == cid)
    }

    fn matches(&self, peer: &Peer, msg: &SipMessage) -> bool {
        (self.pred)(peer, msg)
    }
}

/// A request with `method` sent to `to`.
pub fn req(to: &Ua, method: Method) -> Want {
    let peer = to.peer;
    Want::new(format!("{method} to {}", to.peer), move |p, m| {
        *p == peer && m.method() == Some(method)
    })
}

/// A response `code` to a `method` request, sent to `to`.
pub fn resp(to: &Ua, code: u16, method: Method) -> Want {
    let peer = to.peer;
    let name = method.to_string();
    Want::new(
        format!("{code} for {method} to {}", to.peer),
        move |p, m| *p == peer && m.code() == Some(code) && m.cseq().1 == name,
    )
}

/// Any request sent to `to`.
pub fn any_req(to: &Ua) -> Want {
    let peer = to.peer;
    Want::new(format!("any request to {}", to.peer), move |p, m| {
        *p == peer && m.method().is_some()
    })
}

/// Any message sent to `to` but a 100 Trying (which an INVITE server
/// transaction sends by itself when the call takes over 200 ms to answer,
/// so a loaded machine may or may not see one).
pub fn anything(to: &Ua) -> Want {
    let peer = to.peer;
    Want::new(format!("anything but 100 to {}", to.peer), move |p, m| {
        *p == peer && m.code() != Some(100)
    })
}

/// Each harness gets 64 ports of its own (tests run in parallel).
static NEXT_PORTS: AtomicU16 = AtomicU16::new(0);

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub struct Harness {
    pub switch: Arc<Switch>,
    pub store: Store,
    in_tx: mpsc::Sender<Incoming>,
    sent: mpsc::UnboundedReceiver<(Peer, SipMessage)>,
    /// Sent, not yet taken by an `expect`.
    queue: VecDeque<(Peer, SipMessage)>,
    /// Every message seen, to drop retransmissions.
    seen: HashSet<(Peer, Vec<u8>)>,
    local: SocketAddr,
    _stop: watch::Sender<bool>,
}

impl Harness {
    /// A switch with the cast of tests/test_calls.py: the trunk
    /// "carrier" (127.0.0.2), users alice, bob, carol and dave (none
    /// registered yet), and a number for each.
    pub async fn new() -> Harness {
        let store = Store::connect("sqlite::memory:")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        provision(&store).await;
        let local: SocketAddr = sip::DIALTONE.parse().unwrap_or_else(|e| panic!("{e}"));
        let (in_tx, in_rx) = mpsc::channel(1024);
        let (transports, sent) = Transports::sink(local, in_tx.clone());
        let timers = TimerConfig {
            t1: Duration::from_millis(50),
            t2: Duration::from_millis(400),
            t4: Duration::from_millis(500),
        };
        let layer = TransactionLayer::new(transports, timers);
        let events = layer.start(in_rx);
        let first = 30000 + 64 * (NEXT_PORTS.fetch_add(1, Ordering::Relaxed) % 400);
        let media = MediaEngine::new(MediaConfig {
            bind_ip: [127, 0, 0, 1].into(),
            advertise_ip: [127, 0, 0, 1].into(),
            ports: first..=first + 63,
            rtp_timeout: Duration::ZERO,
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let switch = Switch::new(config(), layer, store.clone(), media);
        let (stop, stop_rx) = watch::channel(false);
        tokio::spawn(switch.clone().run(stop_rx));
        let tu = switch.clone();
        tokio::spawn(async move {
            let mut events = events;
            while let Some(ev) = events.recv().await {
                tu.on_event(ev);
            }
        });
        Harness {
            switch,
            store,
            in_tx,
            sent,
            queue: VecDeque::new(),
            seen: HashSet::new(),
            local,
            _stop: stop,
        }
    }

    /// Binds a contact of `ua`'s user at `ua`'s address, as a REGISTER
    /// from there would.
    pub async fn register(&self, ua: &Ua) {
        let now = unix_now();
        let change = BindingChange::Upsert {
            contact: format!("sip:{}@{}", ua.user, ua.peer.addr),
            expires_at: now + 3600,
            q: None,
            source: format!("udp:{}", ua.peer.addr),
            user_agent: None,
            instance: None,
            path: None,
        };
        let call_id = format!("reg-{}", ua.peer.addr);
        self.store
            .registrations()
            .apply(&ua.user, &call_id, 1, &[change], now)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Hands `raw` to the transaction layer as if it had arrived from
    /// `from` (with `received`/`rport` stamped, as a transport does).
    pub async fn inject(&self, from: &Peer, raw: &str) {
        let mut msg =
            dialtone_sip::message::parse(raw.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{raw}"));
        if let SipMessage::Request(r) = &mut msg {
            via::stamp(r, from);
        }
        self.in_tx
            .send(Incoming {
                msg,
                from: *from,
                local: self.local,
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Takes what dialtone has sent meanwhile into the queue (dropping
    /// retransmissions).
    fn take_sent(&mut self) {
        while let Ok((peer, msg)) = self.sent.try_recv() {
            self.keep(peer, msg);
        }
    }

    fn keep(&mut self, peer: Peer, msg: SipMessage) {
        if self
            .seen
            .insert((peer, dialtone_sip::message::to_bytes(&msg)))
        {
            self.queue.push_back((peer, msg));
        }
    }

    fn take_match(&mut self, want: &Want) -> Option<(Peer, SipMessage)> {
        let i = self.queue.iter().position(|(p, m)| want.matches(p, m))?;
        self.queue.remove(i)
    }

    /// The next message dialtone sent that `want` matches, waiting up to
    /// `within`; the others stay queued for later expectations.
    pub async fn expect(&mut self, want: Want, within: Duration) -> (Peer, SipMessage) {
        let deadline = Instant::now() + within;
        loop {
            self.take_sent();
            if let Some(found) = self.take_match(&want) {
                return found;
            }
            match tokio::time::timeout_at(deadline, self.sent.recv()).await {
                Ok(Some((peer, msg))) => self.keep(peer, msg),
                Ok(None) => panic!("the sink closed while waiting for {}", want.desc),
                Err(_) => panic!(
                    "dialtone did not send {} within {within:?}; sent meanwhile:\n{}",
                    want.desc,
                    self.describe_queue()
                ),
            }
        }
    }

    /// [`expect`](Self::expect) with [`WAIT`].
    pub async fn wait(&mut self, want: Want) -> SipMessage {
        self.expect(want, WAIT).await.1
    }

    /// Asserts that nothing `want` matches is sent within `within`.
    pub async fn expect_none(&mut self, want: Want, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            self.take_sent();
            if let Some((peer, msg)) = self.take_match(&want) {
                panic!(
                    "dialtone sent {} to {peer}, which it must not ({}):\n{}",
                    msg.first_line(),
                    want.desc,
                    String::from_utf8_lossy(&dialtone_sip::message::to_bytes(&msg))
                );
            }
            match tokio::time::timeout_at(deadline, self.sent.recv()).await {
                Ok(Some((peer, msg))) => self.keep(peer, msg),
                Ok(None) | Err(_) => return,
            }
        }
    }

    fn describe_queue(&self) -> String {
        self.queue
            .iter()
            .map(|(p, m)| format!("  to {p}: {} (Call-ID {})", m.first_line(), m.call_id()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The call's record once it has ended (each harness has one call).
    pub async fn record(&self) -> CallRecord {
        let deadline = Instant::now() + WAIT;
        loop {
            let recs = self
                .store
                .calls()
                .list(10)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(recs.len() <= 1, "more than one call record: {recs:#?}");
            if let Some(r) = recs.into_iter().next().filter(|r| r.ended_at.is_some()) {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "no ended call record within {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether a call is live (in the registry).
    pub fn live_calls(&self) -> usize {
        self.switch.calls().registry.len()
    }

    /// RTP port pairs held.
    pub fn media_in_use(&self) -> usize {
        self.switch.calls().media.in_use()
    }

    /// Waits until no call is live and every RTP port is free.
    pub async fn wait_idle(&self) {
        let deadline = Instant::now() + WAIT;
        while self.live_calls() > 0 || self.media_in_use() > 0 {
            assert!(
                Instant::now() < deadline,
                "still {} live call(s) and {} RTP pair(s) after {WAIT:?}",
                self.live_calls(),
                self.media_in_use()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `n` RTP pairs are held.
    pub async fn wait_media(&self, n: usize) {
        let deadline = Instant::now() + WAIT;
        while self.media_in_use() != n {
            assert!(
                Instant::now() < deadline,
                "{} RTP pair(s) held, expected {n}",
                self.media_in_use()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A trunk call to `number`, answered by `callee` (registered here):
    /// returns the trunk's and the callee's halves of their dialogs, every
    /// ACK delivered.
    pub async fn establish(&mut self, callee: &Ua, number: &str) -> Established {
        self.register(callee).await;
        let trunk = trunk();
        let call = trunk.call(number, 40000);
        self.inject(&trunk.peer, &call.text).await;
        let inv = self.wait(req(callee, Method::Invite)).await;
        let offered = Offered::new(callee, inv);
        self.inject(&callee.peer, &offered.reply(180, "Ringing"))
            .await;
        self.wait(resp(&trunk, 180, Method::Invite)).await;
        self.inject(&callee.peer, &offered.answer(40100)).await;
        let ack = self
            .wait(req(callee, Method::Ack).in_call(&offered.call_id()))
            .await;
        assert_eq!(ack.to_tag().as_deref(), Some(offered.tag.as_str()));
        let ok = self.wait(resp(&trunk, 200, Method::Invite)).await;
        let caller = call.dialog(&ok);
        self.inject(&trunk.peer, &caller.ack(1)).await;
        Established {
            caller,
            callee: offered.dialog(),
            trunk,
            callee_ua: callee.clone(),
        }
    }
}

/// A connected trunk call.
pub struct Established {
    /// The trunk's half of its dialog with dialtone.
    pub caller: Dlg,
    /// The callee's half of its dialog with dialtone.
    pub callee: Dlg,
    pub trunk: Ua,
    pub callee_ua: Ua,
}

async fn provision(store: &Store) {
    let fail = |e: dialtone_store::StoreError| -> ! { panic!("{e}") };
    let account = store
        .accounts()
        .ensure("acme")
        .await
        .unwrap_or_else(|e| fail(e));
    for u in ["alice", "bob", "carol", "dave"] {
        store
            .users()
            .create(NewUser {
                account_id: &account.id,
                username: u,
                realm: DOMAIN,
                ha1_md5: "00",
                ha1_sha256: "00",
            })
            .await
            .unwrap_or_else(|e| fail(e));
    }
    let inbound = ["127.0.0.2".to_string()];
    store
        .trunks()
        .create(NewTrunk {
            name: "carrier",
            host: Some("127.0.0.2:5070"),
            transport: "udp",
            inbound_ips: &inbound,
            username: None,
            password: None,
            register: false,
        })
        .await
        .unwrap_or_else(|e| fail(e));
    for (n, user) in [
        (N_BOB, "bob"),
        (N_ALICE, "alice"),
        (N_CAROL, "carol"),
        (N_DAVE, "dave"),
    ] {
        store
            .numbers()
            .create(n, TargetKind::User, user, false)
            .await
            .unwrap_or_else(|e| fail(e));
    }
}

fn config() -> SwitchConfig {
    let node = "test-node";
    SwitchConfig {
        domain: DOMAIN.into(),
        user_agent: "dialtone-test".into(),
        registrar: RegistrarConfig::default(),
        nonce_ttl: Duration::from_secs(300),
        algorithms: vec![Algorithm::Md5],
        guard: GuardConfig {
            max_failures: 100,
            window: Duration::from_secs(60),
            ban_for: Duration::from_secs(1),
            lockout: Lockout::Forbidden,
        },
        abuse: AbuseConfig::default(),
        purge_interval: Duration::from_secs(3600),
        calls: CallConfig {
            domain: DOMAIN.into(),
            user_agent: "dialtone-test".into(),
            ring_timeout: Duration::from_secs(10),
            max_duration: Duration::ZERO,
            node: node.into(),
            timers: None,
            recording: RecordingPolicy {
                all: false,
                dir: std::env::temp_dir(),
                sample_rate: 8000,
            },
            srtp: dialtone_store::SrtpPolicy::default(),
            ai: AgentSettings::default(),
        },
        front_proxies: Default::default(),
        cluster: ClusterConfig::single(node),
    }
}

/// The harness itself can fail: an expectation nothing meets, and a
/// message that must not be sent.
mod self_check {
    use super::*;

    #[tokio::test]
    #[should_panic(expected = "did not send")]
    async fn expect_fails_when_nothing_matches() {
        let mut h = Harness::new().await;
        h.expect(req(&bob(), Method::Invite), Duration::from_millis(100))
            .await;
    }

    #[tokio::test]
    #[should_panic(expected = "must not")]
    async fn expect_none_fails_when_a_match_is_sent() {
        let mut h = Harness::new().await;
        let trunk = trunk();
        // dave is not registered: the trunk's call gets 480 at once.
        h.inject(&trunk.peer, &trunk.call(N_DAVE, 40000).text).await;
        h.expect_none(resp(&trunk, 480, Method::Invite), QUIET)
            .await;
    }
}

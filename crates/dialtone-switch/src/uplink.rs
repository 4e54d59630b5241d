//! Registrations with upstream trunks (`trunk add --register`): dialtone
//! registers as a client (RFC 3261 §10.2) to each such trunk, answers its
//! digest challenge with the trunk's credentials, re-registers when 80 % of
//! the granted expiry has passed, and retries with backoff after a failure.
//! The set of trunks is re-read periodically, so trunks added or removed
//! with the CLI are picked up without a restart.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;

use dialtone_sip::auth;
use dialtone_sip::message::{new_call_id, new_tag};
use dialtone_sip::transaction::TransactionLayer;
use dialtone_sip::transport::Protocol;
use dialtone_store::{Store, Trunk};
use rsip::headers::UntypedHeader;
use rsip::{Header, Method, Request, Response};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What we ask a trunk for.
const REQUESTED_EXPIRES: u32 = 3600;
/// How often the trunk list is re-read.
const RESCAN: Duration = Duration::from_secs(30);
const MIN_RETRY: Duration = Duration::from_secs(5);
const MAX_RETRY: Duration = Duration::from_secs(300);

/// Where one trunk's registration stands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrunkRegistration {
    pub registered: bool,
    /// Unix seconds the binding runs out, when registered.
    pub expires_at: Option<i64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Unix seconds of the last attempt.
    pub updated_at: i64,
}

/// Every upstream registration's state, by trunk name (for `sip_status`
/// and /metrics).
#[derive(Debug, Default)]
pub struct UplinkStatus(DashMap<String, TrunkRegistration>);

impl UplinkStatus {
    pub fn get(&self, trunk: &str) -> Option<TrunkRegistration> {
        self.0.get(trunk).map(|r| r.clone())
    }

    pub fn all(&self) -> Vec<(String, TrunkRegistration)> {
        let mut v: Vec<_> = self
            .0
            .iter()
            .map(|e| (e.key().clone(), e.value().clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    fn record(&self, trunk: &str, result: &Result<u32, String>) {
        let now = crate::registrar::unix_now();
        let state = match result {
            Ok(granted) => TrunkRegistration {
                registered: true,
                expires_at: Some(now + i64::from(*granted)),
                last_error: None,
                updated_at: now,
            },
            Err(e) => TrunkRegistration {
                registered: false,
                expires_at: None,
                last_error: Some(e.clone()),
                updated_at: now,
            },
        };
        self.0.insert(trunk.to_string(), state);
    }

    fn forget(&self, trunk: &str) {
        self.0.remove(trunk);
    }
}

/// Registers with `trunk` once, now, and records the outcome: what
/// `sip_configure` answers with. The background task keeps it registered
/// from its next scan.
pub async fn register_now(
    layer: &TransactionLayer,
    trunk: &Trunk,
    ua: &str,
    status: &UplinkStatus,
) -> Result<u32, String> {
    let mut cseq = 0;
    let result = register_once(
        layer,
        trunk,
        ua,
        &new_call_id("dialtone"),
        &new_tag(),
        &mut cseq,
    )
    .await;
    status.record(&trunk.name, &result);
    result
}

/// Keeps every `register` trunk registered until `stop` turns true.
pub async fn run(
    layer: TransactionLayer,
    store: Store,
    user_agent: String,
    status: Arc<UplinkStatus>,
    mut stop: watch::Receiver<bool>,
) {
    let mut running: HashMap<String, (Trunk, JoinHandle<()>)> = HashMap::new();
    let ua = Arc::new(user_agent);
    loop {
        match store.trunks().list().await {
            Ok(trunks) => {
                let wanted: HashMap<String, Trunk> = trunks
                    .into_iter()
                    .filter(|t| t.register)
                    .map(|t| (t.name.clone(), t))
                    .collect();
                running.retain(|name, (old, task)| {
                    let keep = wanted.get(name).is_some_and(|t| t == old);
                    if !keep {
                        task.abort();
                        status.forget(name);
                    }
                    keep
                });
                for (name, t) in wanted {
                    if let std::collections::hash_map::Entry::Vacant(slot) = running.entry(name) {
                        let task = tokio::spawn(keep_registered(
                            layer.clone(),
                            t.clone(),
                            ua.clone(),
                            status.clone(),
                        ));
                        slot.insert((t, task));
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read trunks for upstream registration"),
        }
        tokio::select! {
            _ = tokio::time::sleep(RESCAN) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    for (_, (_, task)) in running {
        task.abort();
    }
}

async fn keep_registered(
    layer: TransactionLayer,
    trunk: Trunk,
    ua: Arc<String>,
    status: Arc<UplinkStatus>,
) {
    let call_id = new_call_id("dialtone");
    let tag = new_tag();
    let mut cseq = 0u32;
    let mut retry = MIN_RETRY;
    loop {
        let result = register_once(&layer, &trunk, &ua, &call_id, &tag, &mut cseq).await;
        status.record(&trunk.name, &result);
        let wait = match result {
            Ok(granted) => {
                retry = MIN_RETRY;
                tracing::info!(trunk = %trunk.name, expires = granted, "registered with trunk");
                Duration::from_secs(u64::from(granted) * 4 / 5).max(Duration::from_secs(5))
            }
            Err(e) => {
                tracing::warn!(trunk = %trunk.name, error = %e, retry_in = ?retry, "trunk registration failed");
                let w = retry;
                retry = (retry * 2).min(MAX_RETRY);
                w
            }
        };
        tokio::time::sleep(wait).await;
    }
}

/// One REGISTER (answering one challenge); the expiry granted.
async fn register_once(
    layer: &TransactionLayer,
    trunk: &Trunk,
    ua: &str,
    call_id: &str,
    tag: &str,
    cseq: &mut u32,
) -> Result<u32, String> {
    let host = trunk.host.as_deref().ok_or("trunk has no host")?;
    let (user, pass) = trunk
        .username
        .clone()
        .zip(trunk.password.clone())
        .ok_or("trunk has no credentials")?;
    let peer = crate::router::trunk_peer(trunk, layer.transports()).await?;
    let protocol = peer.protocol;
    let local = layer
        .transports()
        .local_for(&peer)
        .ok_or("no local transport for the trunk")?;
    let domain = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
    let mut authorization: Option<Header> = None;
    for _ in 0..2 {
        *cseq += 1;
        let req = register_request(
            domain,
            &user,
            &local.to_string(),
            protocol,
            call_id,
            tag,
            *cseq,
            ua,
            authorization.take(),
        )?;
        let uri = req.uri.clone();
        let mut tx = layer.send_request(req, peer).map_err(|e| e.to_string())?;
        let resp = tx.final_response().await.map_err(|e| e.to_string())?;
        match resp.status_code.code() {
            200..=299 => return Ok(granted_expires(&resp)),
            401 | 407 => {
                authorization = Some(
                    auth::answer(&resp, &Method::Register, &uri, &user, &pass, 1)
                        .map_err(|e| e.to_string())?,
                );
            }
            code => return Err(format!("trunk answered {code}")),
        }
    }
    Err("credentials refused".into())
}

#[allow(clippy::too_many_arguments)]
fn register_request(
    domain: &str,
    user: &str,
    local: &str,
    protocol: Protocol,
    call_id: &str,
    tag: &str,
    cseq: u32,
    ua: &str,
    authorization: Option<Header>,
) -> Result<Request, String> {
    use rsip::headers as h;
    let uri = dialtone_sip::message::uri::parse_uri(&format!("sip:{domain}"))?.uri;
    let aor = format!("<sip:{user}@{domain}>");
    let transport = protocol.uri_param();
    let mut headers: rsip::Headers = Default::default();
    headers.push(Header::MaxForwards(h::MaxForwards::from("70")));
    headers.push(Header::From(h::From::from(format!("{aor};tag={tag}"))));
    headers.push(Header::To(h::To::from(aor)));
    headers.push(Header::CallId(h::CallId::from(call_id.to_string())));
    headers.push(Header::CSeq(h::CSeq::from(format!("{cseq} REGISTER"))));
    headers.push(Header::Contact(h::Contact::from(format!(
        "<sip:{user}@{local}{transport}>"
    ))));
    headers.push(Header::Expires(h::Expires::from(
        REQUESTED_EXPIRES.to_string(),
    )));
    headers.push(Header::UserAgent(h::UserAgent::from(ua)));
    if let Some(a) = authorization {
        headers.push(a);
    }
    headers.push(Header::ContentLength(h::ContentLength::from("0")));
    Ok(Request {
        method: Method::Register,
        uri,
        version: rsip::Version::V2,
        headers,
        body: Vec::new(),
    })
}

/// The expiry the registrar granted: our contact's `expires` parameter,
/// else the Expires header, else what we asked for.
fn granted_expires(resp: &Response) -> u32 {
    let from_contact = resp.headers.iter().find_map(|h| match h {
        Header::Contact(c) => dialtone_sip::message::NameAddr::parse(c.value())
            .ok()?
            .param("expires")
            .flatten()?
            .parse::<u32>()
            .ok(),
        _ => None,
    });
    let from_header = resp.headers.iter().find_map(|h| match h {
        Header::Expires(e) => e.value().trim().parse::<u32>().ok(),
        _ => None,
    });
    from_contact
        .or(from_header)
        .unwrap_or(REQUESTED_EXPIRES)
        .max(1)
}

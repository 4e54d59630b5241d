//! Registrations with upstream trunks (`trunk add --register`): dialtone
//! registers as a client (RFC 3261 §10.2) to each such trunk, answers its
//! digest challenge with the trunk's credentials, re-registers when 80 % of
//! the granted expiry has passed, and retries with backoff after a failure.
//! The set of trunks is re-read periodically, so trunks added or removed
//! with the CLI are picked up without a restart.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

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

/// Keeps every `register` trunk registered until `stop` turns true.
pub async fn run(
    layer: TransactionLayer,
    store: Store,
    user_agent: String,
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
                    }
                    keep
                });
                for (name, t) in wanted {
                    if let std::collections::hash_map::Entry::Vacant(slot) = running.entry(name) {
                        let task =
                            tokio::spawn(keep_registered(layer.clone(), t.clone(), ua.clone()));
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

async fn keep_registered(layer: TransactionLayer, trunk: Trunk, ua: Arc<String>) {
    let call_id = new_call_id("dialtone");
    let tag = new_tag();
    let mut cseq = 0u32;
    let mut retry = MIN_RETRY;
    loop {
        let wait = match register_once(&layer, &trunk, &ua, &call_id, &tag, &mut cseq).await {
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
    let peer = crate::router::trunk_peer(trunk).await?;
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
    let transport = if protocol == Protocol::Tcp {
        ";transport=tcp"
    } else {
        ""
    };
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

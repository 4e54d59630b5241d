//! Where a destination leads: routing (numbers, outbound routes, the
//! transfer policy's view of them), a user's registered contacts, a trunk's
//! or a SIP URI's address (which may need DNS). A [`Resolver`] holds only
//! what the call shares with every other (its context) and the call's id,
//! so this work runs in a task of its own while the call's actor goes on
//! with its events: a slow database or a DNS server that does not answer
//! delays the transfer, not the call's BYE (see `transfer.rs`).

use std::sync::Arc;

use dialtone_sip::message::NameAddr;
use dialtone_sip::transport::{Peer, Protocol};

use super::actor::Call;
use super::command::Destination;
use super::dial::Fork;
use super::transfer::{Placing, PlanError, ResolvedTransfer};
use super::CallContext;
use crate::admission::{self, Ask, Refusal};
use crate::registrar::{path, unix_now};
use crate::router::{self, Caller, Target};

/// Works out destinations for one call (cheap to clone).
#[derive(Clone)]
pub struct Resolver {
    pub ctx: Arc<CallContext>,
    /// The call's id, for logs.
    pub call: Arc<str>,
}

impl Call {
    /// A resolver for this call's destinations, to run where it may wait.
    pub(super) fn resolver(&self) -> Resolver {
        Resolver {
            ctx: Arc::clone(&self.ctx),
            call: Arc::clone(&self.id),
        }
    }
}

impl Resolver {
    /// Works out a blind transfer for `who`: the transfer policy (a
    /// trunk's party reaches the numbers only, a SIP URI is the
    /// operator's), the parties the call limits count it against (when
    /// `admit`), and the legs to place.
    pub async fn transfer(
        &self,
        to: &Destination,
        who: &Caller,
        admit: bool,
    ) -> Result<ResolvedTransfer, PlanError> {
        let policy = |(code, reason): (u16, &'static str)| {
            if code == 403 {
                tracing::info!(call = %self.call, dest = %to, ?who, reason, "transfer refused");
                PlanError::Refused(Refusal::policy(code, reason))
            } else {
                PlanError::Failed(code, reason)
            }
        };
        let target = match to {
            Destination::Queue(_) => None,
            Destination::Uri(_) if !matches!(who, Caller::Operator) => {
                return Err(policy((403, "Transfer To A URI Not Allowed")));
            }
            Destination::Uri(_) => None,
            _ => Some(self.target_of(to, who).await.map_err(policy)?),
        };
        let parties =
            if admit {
                let ask = Ask {
                    who,
                    account: None,
                    user: None,
                    target: target.as_ref(),
                };
                let parties = admission::parties(&self.ctx.store, &ask).await.map_err(|e| {
                tracing::warn!(call = %self.call, error = %e, "call limits could not be read");
                PlanError::Refused(Refusal {
                    status: 500,
                    reason: "Database Unavailable",
                    detail: format!("call limits could not be read: {e}"),
                    retry_after: None,
                })
            })?;
                Some(parties)
            } else {
                None
            };
        // Placing can fail too (nobody registered, a host unknown): that is
        // reported after the call limits had their say.
        let how = match (to, target) {
            (Destination::Queue(q), _) => Ok(Placing::Queue(q.clone())),
            (Destination::Uri(u), _) => self.uri_forks(u).await.map(Placing::Forks),
            (_, Some(target)) => self.forks_for(&target).await.map(Placing::Forks),
            (_, None) => Err((400, "Not A Routable Destination")),
        };
        Ok(ResolvedTransfer { how, parties })
    }

    /// Where a destination leads for `who` (not for SIP URIs, which are
    /// dialled directly). A trunk's party may reach the numbers (DIDs)
    /// only: a user, or a number only the outbound routes know, is 403 for
    /// it (and 404 when nobody could reach it).
    pub async fn target_of(
        &self,
        to: &Destination,
        who: &Caller,
    ) -> Result<Target, (u16, &'static str)> {
        match to {
            Destination::User(_) if matches!(who, Caller::Trunk(_)) => {
                Err((403, "Transfer Not Allowed"))
            }
            Destination::User(u) => Ok(Target::User(u.clone())),
            Destination::Queue(q) => Ok(Target::Queue(q.clone())),
            Destination::Dial(d) => match router::route(&self.ctx.store, who, d).await {
                Ok(r) => Ok(r.target),
                Err(router::RouteError::NotFound(_)) if matches!(who, Caller::Trunk(_)) => {
                    match router::route(&self.ctx.store, &Caller::Operator, d).await {
                        Ok(_) => Err((403, "Transfer Not Allowed")),
                        Err(_) => Err((404, "Not Found")),
                    }
                }
                Err(router::RouteError::NotFound(_)) => Err((404, "Not Found")),
                Err(e) => {
                    tracing::warn!(call = %self.call, error = %e, "transfer routing failed");
                    Err((500, "Routing Failed"))
                }
            },
            Destination::Uri(_) => Err((400, "Not A Routable Destination")),
        }
    }

    /// Works out the forks for `target`, or the status to refuse with.
    pub async fn forks_for(&self, target: &Target) -> Result<Vec<Fork>, (u16, &'static str)> {
        let domain = &self.ctx.cfg.domain;
        match target {
            Target::User(name) => {
                let bindings = self
                    .ctx
                    .store
                    .registrations()
                    .list(name, unix_now())
                    .await
                    .map_err(|_| (500, "Database Unavailable"))?;
                let srtp = match bindings.is_empty() {
                    true => None,
                    false => self
                        .ctx
                        .store
                        .users()
                        .get_cached(name)
                        .await
                        .map_err(|_| (500, "Database Unavailable"))?
                        .and_then(|u| u.srtp),
                };
                let mut forks = Vec::with_capacity(bindings.len());
                for b in &bindings {
                    let route = b.path.as_deref().map(path::route_set).unwrap_or_default();
                    let peer = if route.is_empty() {
                        parse_peer(&b.source)
                    } else {
                        path::first_hop(&route)
                            .await
                            .map_err(|e| tracing::warn!(user = %name, error = %e, "Path unusable"))
                            .ok()
                    };
                    let Some(peer) = peer else { continue };
                    forks.push(Fork {
                        peer,
                        route,
                        request_uri: b.contact.clone(),
                        to: format!("<sip:{name}@{domain}>"),
                        label: format!("user:{name}"),
                        credentials: None,
                        who: Caller::User(name.clone()),
                        srtp,
                    });
                }
                if forks.is_empty() {
                    return Err((480, "Temporarily Unavailable"));
                }
                Ok(forks)
            }
            Target::Trunk { trunk, number } => {
                let peer = crate::router::trunk_peer(trunk, self.ctx.layer.transports())
                    .await
                    .map_err(|e| {
                        tracing::warn!(trunk = %trunk.name, error = %e, "trunk unreachable");
                        (503, "Trunk Unreachable")
                    })?;
                let host = trunk.host.clone().unwrap_or_default();
                Ok(vec![Fork {
                    peer,
                    route: Vec::new(),
                    request_uri: format!("sip:{number}@{host}"),
                    to: format!("<sip:{number}@{host}>"),
                    label: format!("trunk:{}", trunk.name),
                    credentials: trunk.username.clone().zip(trunk.password.clone()),
                    who: Caller::Trunk(trunk.clone()),
                    srtp: trunk.srtp,
                }])
            }
            // An AI agent is not a leg to place: only a new call reaches
            // one (dial_initial), never a transfer.
            Target::Persona(_) => Err((488, "Persona Not Reachable By Transfer")),
            Target::Queue(_) => Err((503, "Queues Not Available Yet")),
        }
    }

    /// The leg for a SIP URI (the operator's transfers only).
    pub async fn uri_forks(&self, u: &str) -> Result<Vec<Fork>, (u16, &'static str)> {
        let na = NameAddr::parse(u).map_err(|_| (400, "Bad Transfer Target"))?;
        let host = dialtone_sip::message::uri::format_uri(&na.uri);
        let peer = crate::router::resolve_peer(&na.uri.host_with_port.to_string(), Protocol::Udp)
            .await
            .map_err(|_| (404, "Not Found"))?;
        Ok(vec![Fork {
            peer,
            route: Vec::new(),
            request_uri: host.clone(),
            to: format!("<{host}>"),
            label: format!("uri:{host}"),
            credentials: None,
            who: Caller::Operator,
            srtp: None,
        }])
    }
}

/// `udp:1.2.3.4:5060` (a binding's source) as a peer.
pub(super) fn parse_peer(s: &str) -> Option<Peer> {
    let (proto, addr) = s.split_once(':')?;
    Some(Peer::new(proto.parse().ok()?, addr.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dialtone_sip::transport::Protocol;

    #[test]
    fn binding_source_is_a_peer() {
        let p = parse_peer("udp:127.0.0.1:5062").unwrap_or_else(|| panic!());
        assert_eq!(p.addr.port(), 5062);
        assert_eq!(p.protocol, Protocol::Udp);
        assert!(parse_peer("tcp:[::1]:5070").is_some());
        let tls = parse_peer("tls:127.0.0.1:5061").unwrap_or_else(|| panic!());
        assert_eq!(tls.protocol, Protocol::Tls);
        assert!(parse_peer("nonsense").is_none());
    }
}

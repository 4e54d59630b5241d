//! Queues (`dialtone queue add`): a call or transfer to a queue rings its
//! members by the queue's strategy — all at once (ring-all), or one at a
//! time for the queue's timeout each, starting after the member rung last
//! (round-robin) or with the member idle longest (longest-idle). Members
//! on do-not-disturb, unregistered or already on a call are skipped. When
//! nobody answers, the queue's fallback takes the call (or the attempt
//! fails as a dial does).

use std::collections::VecDeque;
use std::time::Duration;

use dialtone_store::{Queue, QueueStrategy};

use super::actor::{Call, DialPurpose};
use super::dial::Fork;
use super::event::CallEvent;
use crate::registrar::unix_now;
use crate::router::Target;

/// What is left of a queue's hunt.
pub struct Hunt {
    pub queue: String,
    /// Members still to ring, one at a time (empty for ring-all).
    pub left: VecDeque<String>,
    pub timeout: Duration,
    pub fallback: Option<String>,
}

impl Call {
    /// Whether user `name` can take a queue call now.
    async fn member_free(&self, name: &str) -> bool {
        let store = &self.ctx.store;
        let dnd = matches!(store.users().get_cached(name).await, Ok(Some(u)) if u.dnd);
        if dnd {
            return false;
        }
        let registered =
            matches!(store.registrations().list(name, unix_now()).await, Ok(b) if !b.is_empty());
        if !registered {
            return false;
        }
        let label = format!("user:{name}");
        !self.ctx.registry.all().iter().any(|h| {
            h.snapshot()
                .legs
                .iter()
                .any(|l| l.label == label && l.state == "connected")
        })
    }

    /// The hunt for queue `name`: its free members in strategy order.
    async fn hunt_for(&self, name: &str) -> Result<(Queue, Hunt), (u16, &'static str)> {
        let queue = match self.ctx.store.queues().get(name).await {
            Ok(Some(q)) => q,
            Ok(None) => return Err((404, "No Such Queue")),
            Err(e) => {
                tracing::error!(call = %self.id, error = %e, "queue lookup failed");
                return Err((500, "Database Unavailable"));
            }
        };
        let mut members = queue.members.clone();
        match queue.strategy {
            QueueStrategy::LongestIdle => {
                // Never-called members first, then the longest since their last call.
                members.sort_by_key(|m| m.last_call_ended_at.unwrap_or(i64::MIN));
            }
            QueueStrategy::RoundRobin if !members.is_empty() => {
                let start = self
                    .ctx
                    .store
                    .queues()
                    .next_round_robin(&queue.name, members.len())
                    .await
                    .unwrap_or(0);
                let n = members.len();
                members.rotate_left(start % n);
            }
            _ => {}
        }
        let mut left = VecDeque::new();
        for m in members {
            if self.member_free(&m.username).await {
                left.push_back(m.username);
            }
        }
        let hunt = Hunt {
            queue: queue.name.clone(),
            left,
            timeout: Duration::from_secs(u64::from(queue.timeout_secs.max(1))),
            fallback: queue.fallback.clone(),
        };
        Ok((queue, hunt))
    }

    /// Rings queue `name` for `purpose`.
    pub(super) async fn dial_queue(
        &mut self,
        name: &str,
        purpose: DialPurpose,
        max_forwards: u32,
    ) -> Result<(), (u16, &'static str, DialPurpose)> {
        let (queue, mut hunt) = match self.hunt_for(name).await {
            Ok(x) => x,
            Err((c, r)) => return Err((c, r, purpose)),
        };
        if queue.strategy == QueueStrategy::RingAll {
            let all: Vec<String> = hunt.left.drain(..).collect();
            return self.ring_members(&all, hunt, purpose, max_forwards).await;
        }
        self.hunt_next(hunt, purpose, max_forwards).await
    }

    /// Rings the next member of a sequential hunt; when none is left, the
    /// queue's fallback, else the attempt fails.
    pub(super) async fn hunt_next(
        &mut self,
        mut hunt: Hunt,
        purpose: DialPurpose,
        max_forwards: u32,
    ) -> Result<(), (u16, &'static str, DialPurpose)> {
        let mut purpose = purpose;
        while let Some(member) = hunt.left.pop_front() {
            let rest = Hunt {
                queue: hunt.queue.clone(),
                left: std::mem::take(&mut hunt.left),
                timeout: hunt.timeout,
                fallback: hunt.fallback.clone(),
            };
            match self
                .ring_members(&[member], rest, purpose, max_forwards)
                .await
            {
                Ok(()) => return Ok(()),
                Err((_, _, p)) => {
                    // That member could not be rung: on to the next.
                    purpose = p;
                    if let Some(d) = &self.dial {
                        hunt.left = d.hunt.as_ref().map(|h| h.left.clone()).unwrap_or_default();
                    }
                }
            }
        }
        self.queue_fallback(hunt, purpose, max_forwards).await
    }

    async fn ring_members(
        &mut self,
        members: &[String],
        hunt: Hunt,
        purpose: DialPurpose,
        max_forwards: u32,
    ) -> Result<(), (u16, &'static str, DialPurpose)> {
        let mut forks: Vec<Fork> = Vec::new();
        for m in members {
            if let Ok(f) = self.resolver().forks_for(&Target::User(m.clone())).await {
                forks.extend(f);
            }
        }
        if forks.is_empty() {
            return self.queue_fallback(hunt, purpose, max_forwards).await;
        }
        let timeout = hunt.timeout;
        self.place(forks, purpose, max_forwards).await?;
        if let Some(d) = self.dial.as_mut() {
            let attempt = d.attempt;
            d.hunt = Some(hunt);
            if timeout < self.ctx.cfg.ring_timeout {
                self.after(timeout, CallEvent::RingTimeout { attempt });
            }
        }
        Ok(())
    }

    /// Nobody in the queue answered: its fallback, if it has one.
    async fn queue_fallback(
        &mut self,
        hunt: Hunt,
        purpose: DialPurpose,
        max_forwards: u32,
    ) -> Result<(), (u16, &'static str, DialPurpose)> {
        let Some(fb) = hunt.fallback else {
            return Err((480, "No Queue Member Available", purpose));
        };
        tracing::info!(call = %self.id, queue = %hunt.queue, fallback = %fb, "queue fallback");
        if let Some(name) = fb.strip_prefix("persona:") {
            // Only a new call can reach an agent.
            if matches!(purpose, DialPurpose::Initial) {
                self.start_agent(name).await;
                return Ok(());
            }
            return Err((488, "Queue Fallback Unreachable", purpose));
        }
        let Ok(dest) = super::command::Destination::parse(&fb) else {
            return Err((500, "Bad Queue Fallback", purpose));
        };
        // The fallback is the operator's configuration.
        let who = crate::router::Caller::Operator;
        let target = match self.resolver().target_of(&dest, &who).await {
            Ok(t) => t,
            Err((c, r)) => return Err((c, r, purpose)),
        };
        let forks = match self.resolver().forks_for(&target).await {
            Ok(f) => f,
            Err((c, r)) => return Err((c, r, purpose)),
        };
        self.place(forks, purpose, max_forwards).await
    }

    /// A queue member answered: remember them, for longest-idle.
    pub(super) fn queue_answered(&mut self, queue: &str, label: &str) {
        if let Some(user) = label.strip_prefix("user:") {
            self.queue_member = Some((queue.to_string(), user.to_string()));
        }
    }

    /// The call ends: the member it reached is idle from now.
    pub(super) async fn queue_call_ended(&mut self) {
        if let Some((queue, user)) = self.queue_member.take() {
            let at = unix_now();
            if let Err(e) = self
                .ctx
                .store
                .queues()
                .member_call_ended(&queue, &user, at)
                .await
            {
                tracing::warn!(call = %self.id, error = %e, "queue member's last call not recorded");
            }
        }
    }
}

//! A call's timers (ring timeout, maximum duration, session refresh), kept
//! by the call itself: its loop waits for the earliest of them beside its
//! channel ([`Timers::fired`]), so a timer costs no task of its own, and an
//! ended call's timers end with it.

use std::pin::Pin;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use super::actor::Call;
use super::event::CallEvent;

/// What a timer gives the call when it fires.
enum Fire {
    /// This event, once.
    Once(CallEvent),
    /// What the function makes, every period.
    Every(Duration, fn() -> CallEvent),
}

struct Timer {
    at: Instant,
    fire: Fire,
}

/// The timers a call has armed. One sleep serves them all: it is set to
/// the earliest deadline whenever the call waits.
#[derive(Default)]
pub struct Timers {
    armed: Vec<Timer>,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Timers {
    fn arm(&mut self, at: Instant, fire: Fire) {
        self.armed.push(Timer { at, fire });
    }

    /// Waits for the earliest timer and gives its event; never finishes
    /// while none is armed. Cancel-safe: nothing changes until the
    /// deadline has passed, and then nothing is awaited.
    pub async fn fired(&mut self) -> CallEvent {
        loop {
            let Some(at) = self.armed.iter().map(|t| t.at).min() else {
                return std::future::pending().await;
            };
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
            if sleep.deadline() != at {
                sleep.as_mut().reset(at);
            }
            sleep.as_mut().await;
            if let Some(ev) = self.take_due() {
                return ev;
            }
        }
    }

    /// The event of a timer whose deadline has passed: a one-off timer is
    /// disarmed, a periodic one rearmed a period on.
    fn take_due(&mut self) -> Option<CallEvent> {
        let now = Instant::now();
        let i = self.armed.iter().position(|t| t.at <= now)?;
        match self.armed[i].fire {
            Fire::Every(period, make) => {
                self.armed[i].at = now + period;
                Some(make())
            }
            Fire::Once(_) => match self.armed.swap_remove(i).fire {
                Fire::Once(ev) => Some(ev),
                Fire::Every(..) => None,
            },
        }
    }
}

impl Call {
    /// Gives this call `event` after `delay` (a timer the call's end
    /// cancels).
    pub fn after(&mut self, delay: Duration, event: CallEvent) {
        self.timers.arm(Instant::now() + delay, Fire::Once(event));
    }

    /// Gives this call what `make` makes every `period` until it ends.
    pub fn every(&mut self, period: Duration, make: fn() -> CallEvent) {
        self.timers
            .arm(Instant::now() + period, Fire::Every(period, make));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(ev: &CallEvent) -> Option<u64> {
        match ev {
            CallEvent::RingTimeout { attempt } => Some(*attempt),
            _ => None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_earliest_fires_first_and_a_one_off_fires_once() {
        let mut t = Timers::default();
        let start = Instant::now();
        t.arm(
            start + Duration::from_secs(30),
            Fire::Once(CallEvent::RingTimeout { attempt: 2 }),
        );
        t.arm(
            start + Duration::from_secs(10),
            Fire::Once(CallEvent::RingTimeout { attempt: 1 }),
        );
        assert_eq!(ring(&t.fired().await), Some(1));
        assert_eq!(Instant::now() - start, Duration::from_secs(10));
        assert_eq!(ring(&t.fired().await), Some(2));
        assert_eq!(Instant::now() - start, Duration::from_secs(30));
        assert_eq!(t.armed.len(), 0);
        // None armed: it waits for ever.
        assert!(tokio::time::timeout(Duration::from_secs(3600), t.fired())
            .await
            .is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_periodic_timer_rearms_and_a_later_arm_can_come_first() {
        let mut t = Timers::default();
        let start = Instant::now();
        t.arm(
            start + Duration::from_secs(5),
            Fire::Every(Duration::from_secs(5), || CallEvent::SessionTick),
        );
        for n in 1..=3u64 {
            assert!(matches!(t.fired().await, CallEvent::SessionTick));
            assert_eq!(Instant::now() - start, Duration::from_secs(5 * n));
        }
        // A wait given up (the call's channel won) changes nothing, and a
        // timer armed meanwhile for sooner fires first.
        assert!(tokio::time::timeout(Duration::from_secs(1), t.fired())
            .await
            .is_err());
        t.arm(
            Instant::now() + Duration::from_secs(1),
            Fire::Once(CallEvent::MaxDuration),
        );
        assert!(matches!(t.fired().await, CallEvent::MaxDuration));
        assert_eq!(Instant::now() - start, Duration::from_secs(17));
        assert!(matches!(t.fired().await, CallEvent::SessionTick));
        assert_eq!(Instant::now() - start, Duration::from_secs(20));
        assert_eq!(t.armed.len(), 1);
    }
}

//! hyper's timer for HTTP/1.1 connections, with its sleeps recycled.
//!
//! hyper starts the header read timeout each time it waits for a request head and drops it
//! once the head is read. With hyper-util's `TokioTimer` every request then allocates a tokio
//! timer, inserts it into the runtime's timer wheel when it first waits (taking the wheel's
//! lock) and removes it again when dropped. Here a dropped sleep goes back to a pool, still in
//! the wheel, and the next request resets it to its new deadline: a later one, which tokio
//! records without touching the wheel (the entry comes due at its old slot, is found early and
//! moves on). A pooled sleep whose old deadline passes before it is reused fires once, waking
//! the task that last waited on it for nothing. The upstream exchange's deadline, also one per
//! request, borrows from a pool of its own the same way ([`RecyclingTimer::lease`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::rt::{Sleep, Timer};

/// Most spare sleeps a pool keeps (those beyond are dropped, leaving the wheel).
const SPARE: usize = 1024;

/// A tokio timer as a pinned allocation of its own, which outlives the hyper sleep it served.
type TokioSleep = Pin<Box<tokio::time::Sleep>>;

/// A [`Timer`] whose sleeps go back to a pool when dropped. One per listener (and one for the
/// upstream exchanges): its sleeps belong to the runtime that serves it.
#[derive(Clone, Default)]
pub struct RecyclingTimer {
    spare: Arc<Mutex<Vec<TokioSleep>>>,
}

impl std::fmt::Debug for RecyclingTimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecyclingTimer")
    }
}

/// `now + after`, or about thirty years from now when that does not fit in an `Instant` (a
/// duration from the configuration is not bounded).
pub fn deadline_after(now: Instant, after: Duration) -> Instant {
    now.checked_add(after)
        .or_else(|| now.checked_add(Duration::from_secs(30 * 365 * 86_400)))
        .unwrap_or(now)
}

impl RecyclingTimer {
    /// A sleep until `deadline`, back in the pool when dropped.
    pub fn lease(&self, deadline: Instant) -> Lease {
        Lease {
            sleep: Some(self.take(deadline)),
            spare: self.spare.clone(),
        }
    }

    fn take(&self, deadline: Instant) -> TokioSleep {
        let spare = self.spare.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match spare {
            Some(mut sleep) => {
                sleep.as_mut().reset(deadline.into());
                sleep
            }
            None => Box::pin(tokio::time::sleep_until(deadline.into())),
        }
    }
}

impl Timer for RecyclingTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        self.sleep_until(deadline_after(Instant::now(), duration))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        Box::pin(self.lease(deadline))
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<Lease>() {
            Some(recycled) => {
                if let Some(inner) = &mut recycled.get_mut().sleep {
                    inner.as_mut().reset(new_deadline.into());
                }
            }
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}

/// A sleep on loan from a [`RecyclingTimer`]'s pool.
pub struct Lease {
    /// `Some` until dropped.
    sleep: Option<TokioSleep>,
    spare: Arc<Mutex<Vec<TokioSleep>>>,
}

impl Future for Lease {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.get_mut().sleep {
            Some(sleep) => sleep.as_mut().poll(cx),
            None => Poll::Ready(()),
        }
    }
}

impl Sleep for Lease {}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(sleep) = self.sleep.take() else {
            return;
        };
        let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
        if spare.len() < SPARE {
            spare.push(sleep);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_past_what_an_instant_holds_is_far_off_not_a_panic() {
        let now = Instant::now();
        let far = deadline_after(now, Duration::MAX);
        assert!(far > now + Duration::from_secs(10 * 365 * 86_400));
        assert_eq!(
            deadline_after(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
    }

    #[tokio::test]
    async fn a_recycled_sleep_keeps_its_new_deadline() {
        let timer = RecyclingTimer::default();
        // Used, then returned to the pool with a deadline far off.
        let first = timer.sleep(Duration::from_secs(60));
        drop(first);
        assert_eq!(timer.spare.lock().unwrap().len(), 1);
        // Reused for a short sleep: it ends at the new deadline, not the old one.
        let started = Instant::now();
        timer.sleep(Duration::from_millis(50)).await;
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(50), "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
        assert_eq!(timer.spare.lock().unwrap().len(), 1, "one sleep, reused");
    }

    #[tokio::test]
    async fn a_sleep_reused_with_a_later_deadline_does_not_end_at_its_old_one() {
        let timer = RecyclingTimer::default();
        // Waited on (so in the timer wheel) for 30 ms, then returned to the pool unfinished.
        let mut first = timer.lease(Instant::now() + Duration::from_millis(30));
        let polled = std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut first).poll(cx))).await;
        assert!(polled.is_pending());
        drop(first);
        // The next lease moves the same timer later without taking it out of the wheel: it
        // comes due at the old slot and must not end there.
        let started = Instant::now();
        timer.lease(started + Duration::from_millis(300)).await;
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(300),
            "ended early: {waited:?}"
        );
        assert_eq!(timer.spare.lock().unwrap().len(), 1, "one sleep, reused");
    }

    #[tokio::test]
    async fn a_pooled_sleep_reused_after_it_fired_waits_again() {
        let timer = RecyclingTimer::default();
        timer.sleep(Duration::from_millis(10)).await;
        // Fired and back in the pool: reused, it waits for its new deadline again.
        let mut again = timer.sleep(Duration::from_secs(60));
        assert_eq!(
            timer.spare.lock().unwrap().len(),
            0,
            "the pooled one is on loan"
        );
        let first = std::future::poll_fn(|cx| Poll::Ready(again.as_mut().poll(cx))).await;
        assert!(first.is_pending());
        timer.reset(&mut again, Instant::now() + Duration::from_millis(20));
        tokio::time::timeout(Duration::from_secs(5), again)
            .await
            .expect("the reset deadline is kept");
    }
}

//! The one background loop behind everything that keeps itself fresh (a JWKS, a vendor token,
//! the revocation file, the usage log): it runs a step, sleeps as long as the step asks, and
//! ends when its owner is dropped.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// Owned by the thing it refreshes; starts its loop at most once (an owner kept across a
/// reload keeps its loop) and wakes it to end as soon as the owner is dropped.
#[derive(Debug, Default)]
pub struct Refresher {
    started: AtomicBool,
    stop: Arc<Notify>,
}

impl Drop for Refresher {
    fn drop(&mut self) {
        // A stored permit: the loop sees it even if it is not waiting yet, so a sleeping loop
        // ends now rather than after its next sleep (an embedder's layer may come and go).
        self.stop.notify_one();
    }
}

impl Refresher {
    /// A refresher whose loop has not started.
    pub fn new() -> Self {
        Self::default()
    }

    /// A refresher that never starts (an owner with nothing to refresh: tools, tests).
    pub fn never() -> Self {
        Self {
            started: AtomicBool::new(true),
            stop: Arc::default(),
        }
    }

    /// Claims the loop: true the first time only. For an owner that runs its own watcher (a
    /// Redis subscription) and only needs the once-only start.
    pub fn claim(&self) -> bool {
        !self.started.swap(true, Ordering::AcqRel)
    }

    /// Starts the loop once: sleeps `first`, then runs `step` with a strong reference to the
    /// owner and sleeps the duration it returns, until the owner is gone. The loop holds only a
    /// weak reference between steps, so it never keeps its owner alive.
    pub fn start<T, S, F>(&self, owner: &Arc<T>, first: Duration, mut step: S)
    where
        T: Send + Sync + 'static,
        S: FnMut(Arc<T>) -> F + Send + 'static,
        F: Future<Output = Duration> + Send,
    {
        if !self.claim() {
            return;
        }
        let weak = Arc::downgrade(owner);
        let stop = self.stop.clone();
        tokio::spawn(async move {
            let mut wait = first;
            loop {
                if !wait.is_zero() {
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.notified() => return,
                    }
                }
                let Some(owner) = weak.upgrade() else { return };
                wait = step(owner).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    struct Owner {
        steps: Arc<AtomicUsize>,
        refresher: Refresher,
    }

    fn owner() -> (Arc<Owner>, Arc<AtomicUsize>) {
        let steps = Arc::new(AtomicUsize::new(0));
        let owner = Arc::new(Owner {
            steps: steps.clone(),
            refresher: Refresher::new(),
        });
        (owner, steps)
    }

    fn count(owner: Arc<Owner>) -> impl Future<Output = Duration> {
        owner.steps.fetch_add(1, Ordering::SeqCst);
        async { Duration::from_millis(10) }
    }

    #[tokio::test]
    async fn steps_until_the_owner_is_dropped_and_starts_once() {
        let (owner, steps) = owner();
        owner.refresher.start(&owner, Duration::ZERO, count);
        let second = Arc::new(AtomicUsize::new(0));
        let seen_by_second = second.clone();
        owner.refresher.start(&owner, Duration::ZERO, move |_| {
            seen_by_second.fetch_add(1, Ordering::SeqCst);
            async { Duration::from_millis(10) }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(steps.load(Ordering::SeqCst) >= 2);
        assert_eq!(second.load(Ordering::SeqCst), 0, "a second loop started");
        drop(owner);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let after = steps.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            steps.load(Ordering::SeqCst),
            after,
            "the loop outlived its owner"
        );
    }

    #[tokio::test]
    async fn a_dropped_owner_ends_a_long_sleep_at_once() {
        let (owner, steps) = owner();
        owner
            .refresher
            .start(&owner, Duration::from_secs(3600), count);
        let stop = owner.refresher.stop.clone();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(
            Arc::strong_count(&stop),
            3,
            "the loop holds the signal while it sleeps"
        );
        drop(owner);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(Arc::strong_count(&stop), 1, "the loop is still sleeping");
        assert_eq!(steps.load(Ordering::SeqCst), 0);
    }
}

//! Counting limits that refuse instead of queueing: requests in flight and connections open
//! per upstream, requests in flight per route.
//!
//! A stalled upstream must cost the gateway a bounded number of sockets and tasks: beyond the
//! limit a request is answered 503 at once (with `Retry-After`), never parked in a queue that
//! grows with the attack, the way Envoy's circuit breakers do.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tollgate_core::error::GatewayError;

/// A count with a ceiling.
#[derive(Debug)]
pub struct Limit {
    max: usize,
    current: AtomicUsize,
}

/// One unit of a [`Limit`], given back when dropped.
#[derive(Debug)]
pub struct Permit(Arc<Limit>);

impl Limit {
    /// A limit of `max` at once.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            current: AtomicUsize::new(0),
        })
    }

    /// A permit, or `None` when `max` are out.
    pub fn try_acquire(self: &Arc<Self>) -> Option<Permit> {
        let before = self.current.fetch_add(1, Ordering::AcqRel);
        if before >= self.max {
            self.current.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Permit(self.clone()))
    }

    /// A permit, or the `503 upstream_overloaded` refusal naming `what` is at its limit.
    pub fn acquire(self: &Arc<Self>, what: &'static str) -> Result<Permit, GatewayError> {
        self.try_acquire().ok_or(GatewayError::UpstreamOverloaded {
            what,
            limit: self.max,
        })
    }

    /// The ceiling.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Permits out now.
    pub fn in_use(&self) -> usize {
        self.current.load(Ordering::Acquire)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.current.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_past_the_ceiling_and_recovers_on_drop() {
        let limit = Limit::new(2);
        let a = limit.try_acquire().unwrap();
        let _b = limit.try_acquire().unwrap();
        assert!(limit.try_acquire().is_none());
        assert_eq!(limit.in_use(), 2);
        drop(a);
        assert!(limit.try_acquire().is_some());
        assert_eq!(limit.in_use(), 1);
    }
}

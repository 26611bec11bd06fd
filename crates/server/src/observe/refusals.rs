//! The last refusals, for the admin console: a bounded ring of what was refused where and why,
//! never a token, a query string or an identity value.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::Serialize;

use tollgate_core::error::GatewayError;

/// Most refusals the console may keep.
pub const MAX_KEPT: usize = tollgate_config::MAX_RECENT_REFUSALS;

/// One refused request.
#[derive(Debug, Clone, Serialize)]
pub struct Refusal {
    /// When, seconds since the epoch.
    pub at: u64,
    /// The matched route's name, or `-`.
    pub route: String,
    /// The answer's status.
    pub status: u16,
    /// Why, in the gateway's fixed wording (`token expired`, `service not allowed`, ...).
    pub reason: String,
    /// The request id, to find the access log line.
    pub request_id: String,
}

/// The last `capacity` refusals (none kept when 0: the console is off).
#[derive(Debug)]
pub struct Refusals {
    capacity: usize,
    kept: Mutex<VecDeque<Refusal>>,
}

impl Refusals {
    /// A ring of `capacity` (at most [`MAX_KEPT`]).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.min(MAX_KEPT);
        Self {
            capacity,
            kept: Mutex::new(VecDeque::with_capacity(capacity)),
        }
    }

    /// How many it keeps.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Keeps a refusal, forgetting the oldest when full. Only the reason's fixed text is kept:
    /// no value from the request (a path, a token, a header) ever enters the ring.
    pub fn record(&self, error: &GatewayError, route: Option<&str>, request_id: &str) {
        if self.capacity == 0 {
            return;
        }
        let (status, message) = error.status_and_message();
        let reason = match error {
            GatewayError::Refused(refusal) => refusal.reason(),
            _ => message.to_owned(),
        };
        let refusal = Refusal {
            at: tollgate_state::clock::now(),
            route: route.unwrap_or("-").to_owned(),
            status: status.as_u16(),
            reason,
            request_id: request_id.to_owned(),
        };
        if let Ok(mut kept) = self.kept.lock() {
            if kept.len() == self.capacity {
                kept.pop_front();
            }
            kept.push_back(refusal);
        }
    }

    /// The refusals kept, newest first.
    pub fn newest_first(&self) -> Vec<Refusal> {
        self.kept
            .lock()
            .map(|kept| kept.iter().rev().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_auth::AuthError;

    #[test]
    fn the_ring_keeps_the_newest_and_nothing_from_the_request() {
        let ring = Refusals::new(2);
        ring.record(
            &GatewayError::Refused(tollgate_auth::Refusal::Unauthenticated(AuthError::Expired)),
            Some("a"),
            "r1",
        );
        ring.record(&GatewayError::NoRoute, None, "r2");
        ring.record(
            &GatewayError::BadRequest("/secret/path?access_token=abc"),
            Some("b"),
            "r3",
        );
        let kept = ring.newest_first();
        let ids: Vec<_> = kept.iter().map(|r| r.request_id.as_str()).collect();
        assert_eq!(ids, ["r3", "r2"]);
        assert_eq!(
            kept[0].reason, "bad request",
            "never the request's own text"
        );
        assert_eq!(kept[1].route, "-");
        let off = Refusals::new(0);
        off.record(&GatewayError::NoRoute, None, "r");
        assert!(off.newest_first().is_empty());
    }
}

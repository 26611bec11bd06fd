//! Rate limits and quotas: GCRA per key, kept by this gateway ([`LocalLimits`]) or by the
//! fleet in Redis (`SharedLimits`, feature `redis`), where each replica falls back to its share
//! of every limit while Redis cannot be reached.

pub mod gcra;
#[cfg(feature = "redis")]
pub mod lease;
pub mod local;
#[cfg(feature = "redis")]
pub mod shared;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tollgate_config::{Rate, StateConfig};

use crate::events::StateEvents;
use gcra::{Admission, Cells};
pub use local::LocalLimits;

/// Where a check was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keeper {
    /// This gateway's memory (`[state] backend = "file"`).
    Local,
    /// Redis, for the whole fleet.
    Shared,
    /// This gateway's memory with its share of the limit, because Redis could not be reached.
    Fallback,
}

/// What a limit decided about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// The request may go on.
    pub allowed: bool,
    /// Further requests allowed right now.
    pub remaining: u64,
    /// Until the whole burst is available again.
    pub reset_after: Duration,
    /// Until a refused caller may try again (zero when allowed).
    pub retry_after: Duration,
    /// Where it was decided.
    pub keeper: Keeper,
}

/// A limiter's Redis half: the store, the fleet's size, the batch and this replica's leases.
#[cfg(feature = "redis")]
#[derive(Debug)]
struct Shared {
    limits: shared::SharedLimits,
    replicas: u64,
    batch: u64,
    leases: lease::Leases,
}

/// One caller under one limit.
#[derive(Debug, Clone, Copy)]
pub struct LimitKey<'a> {
    /// The limit's place from [`RateLimiter::place`].
    pub place: u64,
    /// The route's and the limit's names (the fleet's key in Redis is made from them).
    pub names: [&'a str; 2],
    /// What the caller is keyed by: `user`, `service`, `tenant`, `client_ip` or `route`.
    pub class: &'static str,
    /// The caller's one or two parts (issuer and user id; a service; an address...).
    pub caller: [&'a [u8]; 2],
}

impl LimitKey<'_> {
    #[cfg(feature = "redis")]
    fn parts(&self) -> [&[u8]; 5] {
        let [route, limit] = self.names;
        let [a, b] = self.caller;
        [
            route.as_bytes(),
            limit.as_bytes(),
            self.class.as_bytes(),
            a,
            b,
        ]
    }
}

/// Every limit of one gateway, under one config and across reloads.
pub struct RateLimiter {
    local: LocalLimits,
    #[cfg(feature = "redis")]
    shared: Option<Shared>,
    epoch: Instant,
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    events: Arc<dyn StateEvents>,
    /// What the events last heard: Redis up or not.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    reported_up: std::sync::atomic::AtomicBool,
    state: StateConfig,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("local_keys", &self.local.len())
            .field("shared_up", &self.shared_up())
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// A limiter remembering at most about `keys` keys locally, shared through `state` when it
    /// is Redis (built with the `redis` feature).
    pub fn new(keys: usize, state: &StateConfig, events: Arc<dyn StateEvents>) -> Self {
        Self {
            local: LocalLimits::new(keys),
            #[cfg(feature = "redis")]
            shared: match (
                crate::revocation::redis::RedisStore::for_state(state),
                state,
            ) {
                (
                    Some(Ok(store)),
                    StateConfig::Redis {
                        replicas,
                        rate_limit_batch,
                        ..
                    },
                ) => Some(Shared {
                    limits: shared::SharedLimits::new(store),
                    replicas: u64::from(*replicas),
                    batch: u64::from(*rate_limit_batch),
                    leases: lease::Leases::new(keys),
                }),
                _ => None,
            },
            epoch: Instant::now(),
            events,
            reported_up: std::sync::atomic::AtomicBool::new(true),
            state: state.clone(),
        }
    }

    /// Whether this limiter can serve a config with `keys` and `state` as they are (a reload
    /// that changes neither keeps every caller's history).
    pub fn serves(&self, keys: usize, state: &StateConfig) -> bool {
        self.local.capacity() == LocalLimits::capacity_for(keys) && &self.state == state
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Whether the limits are kept in Redis: then [`RateLimiter::check_shared`], else
    /// [`RateLimiter::check`] (which never waits).
    pub fn is_shared(&self) -> bool {
        #[cfg(feature = "redis")]
        if self.shared.is_some() {
            return true;
        }
        false
    }

    /// A limit's place: its route's and its own name, hashed once per config.
    pub fn place(&self, route: &str, limit: &str) -> u64 {
        self.local.place(&[route, limit])
    }

    fn local_key(&self, key: &LimitKey<'_>) -> u64 {
        self.local.key(key.place, key.class, key.caller)
    }

    /// Takes one request from this gateway's allowance of `key` under `rate`.
    pub fn check(&self, key: &LimitKey<'_>, rate: &Rate) -> Verdict {
        let key = self.local_key(key);
        verdict(
            self.local.check(key, self.now(), cells(rate)),
            1,
            Keeper::Local,
        )
    }

    /// Takes one request from the fleet's allowance in Redis, or from this replica's share of
    /// it when Redis cannot be reached.
    #[cfg(feature = "redis")]
    pub async fn check_shared(&self, key: &LimitKey<'_>, rate: &Rate) -> Verdict {
        let Some(shared) = &self.shared else {
            return self.check(key, rate);
        };
        let local = self.local_key(key);
        // A batch is at most half a replica's share of the burst: a lease never holds back
        // most of what the others could admit.
        let batch = shared.batch.min(rate.burst / (2 * shared.replicas)).max(1);
        if let Some(held) = shared.leases.take(local, self.now()) {
            return held_verdict(held, self.now());
        }
        let micros = Cells {
            interval: rate.interval_nanos() / 1000,
            tolerance: rate.tolerance_nanos() / 1000,
        };
        let redis_key = shared.limits.key(&key.parts());
        match shared.limits.check(&redis_key, micros, batch).await {
            Ok((taken, admission)) => {
                self.report(true);
                if taken == 0 {
                    let until = self.now() + admission.retry_after.saturating_mul(1000);
                    shared.leases.refuse(local, until);
                } else if taken > 1 {
                    let until = self.now() + lease::LEASE.as_nanos() as u64;
                    shared.leases.put(local, taken - 1, until);
                }
                verdict(admission, 1000, Keeper::Shared)
            }
            Err(why) => {
                if why == shared::Unshared::Failed {
                    self.report(false);
                }
                let cells = share(rate, shared.replicas);
                verdict(
                    self.local.check(local, self.now(), cells),
                    1,
                    Keeper::Fallback,
                )
            }
        }
    }

    /// Tells the events when Redis goes away or comes back (not on every request).
    #[cfg(feature = "redis")]
    fn report(&self, up: bool) {
        use std::sync::atomic::Ordering;
        if self.reported_up.swap(up, Ordering::Relaxed) != up {
            self.events.rate_limits_shared(up);
        }
    }

    /// What a check would decide from this gateway's memory, taking nothing (`explain`).
    pub fn peek(&self, key: &LimitKey<'_>, rate: &Rate) -> Verdict {
        let key = self.local_key(key);
        verdict(
            self.local.peek(key, self.now(), cells(rate)),
            1,
            Keeper::Local,
        )
    }

    /// Whether the fleet's limits are kept in Redis and Redis answered when last asked
    /// (`None`: the limits are this gateway's own).
    pub fn shared_up(&self) -> Option<bool> {
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            return Some(shared.limits.up());
        }
        None
    }

    /// Keys remembered in this gateway's memory.
    pub fn local_keys(&self) -> usize {
        self.local.len()
    }
}

/// A rate's cells in nanoseconds.
fn cells(rate: &Rate) -> Cells {
    Cells {
        interval: rate.interval_nanos(),
        tolerance: rate.tolerance_nanos(),
    }
}

#[cfg_attr(not(feature = "redis"), allow(dead_code))]
/// One replica's share of a rate: `1 / replicas` of the count and of the burst (at least one).
fn share(rate: &Rate, replicas: u64) -> Cells {
    let interval = (rate.period.as_nanos() * u128::from(replicas.max(1)) / u128::from(rate.count))
        .min(u128::from(u64::MAX)) as u64;
    let burst = (rate.burst / replicas.max(1)).max(1);
    Cells {
        interval,
        tolerance: interval.saturating_mul(burst - 1),
    }
}

/// The verdict for a request a lease answered: admitted from its reservation (the fleet's
/// remaining allowance is not known here: what is left of the lease stands for it), or refused
/// until the retry time Redis gave.
#[cfg(feature = "redis")]
fn held_verdict(held: lease::Held, now: u64) -> Verdict {
    let (allowed, remaining, retry_after) = match held {
        lease::Held::Admit(left) => (true, left, Duration::ZERO),
        lease::Held::RefusedUntil(until) => (false, 0, Duration::from_nanos(until - now)),
    };
    Verdict {
        allowed,
        remaining,
        reset_after: retry_after,
        retry_after,
        keeper: Keeper::Shared,
    }
}

fn verdict(admission: Admission, nanos_per_unit: u64, keeper: Keeper) -> Verdict {
    let duration = |units: u64| Duration::from_nanos(units.saturating_mul(nanos_per_unit));
    Verdict {
        allowed: admission.allowed,
        remaining: admission.remaining,
        reset_after: duration(admission.reset_after),
        retry_after: duration(admission.retry_after),
        keeper,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_share_divides_rate_and_burst() {
        let rate = Rate {
            count: 300,
            period: Duration::from_secs(1),
            burst: 30,
        };
        let one = share(&rate, 3);
        assert_eq!(one.interval, 10_000_000, "100/s each");
        assert_eq!(one.tolerance, 9 * 10_000_000, "burst 10 each");
        let tiny = Rate { burst: 2, ..rate };
        assert_eq!(share(&tiny, 3).tolerance, 0, "a burst of at least one");
    }
}

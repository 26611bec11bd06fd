//! Requests a replica reserved from a limit kept in Redis and admits on its own: one Redis call
//! per batch instead of per request. A lease lasts [`LEASE`]; what is left of it then is not
//! used (the fleet may refuse a little early, never admit more than the limit).

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Mutex;
use std::time::Duration;

use super::local::{Prehashed, SHARDS};

/// How long reserved requests may be spent.
pub const LEASE: Duration = Duration::from_secs(1);

/// Marks a key Redis refused: nothing frees a cell before the retry time it gave (time only
/// moves forward), so until then this replica refuses it without asking.
const REFUSED: u64 = u64::MAX;

/// What a replica knows about a key without asking Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// One reserved request spent; this many are left.
    Admit(u64),
    /// Refused until this time (nanoseconds of the limiter's clock).
    RefusedUntil(u64),
}

/// Requests left (or [`REFUSED`]) and until when (nanoseconds of the limiter's clock).
type Shard = HashMap<u64, (u64, u64), BuildHasherDefault<Prehashed>>;

/// The leases of one replica, bounded like the local store.
#[derive(Debug)]
pub struct Leases {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
}

impl Leases {
    /// Room for about `keys` leases.
    pub fn new(keys: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard: keys.div_ceil(SHARDS).max(1),
        }
    }

    fn shard(&self, key: u64) -> std::sync::MutexGuard<'_, Shard> {
        self.shards[(key >> 58) as usize % SHARDS]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Spends one reserved request of `key` at `now`, or says it is refused, if either is known.
    pub fn take(&self, key: u64, now: u64) -> Option<Held> {
        let mut shard = self.shard(key);
        let (left, until) = shard.get_mut(&key)?;
        let held = match (*left, *until) {
            (_, until) if until <= now => None,
            (REFUSED, until) => return Some(Held::RefusedUntil(until)),
            (0, _) => None,
            (n, _) => {
                *left = n - 1;
                Some(Held::Admit(n - 1))
            }
        };
        if !matches!(held, Some(Held::Admit(n)) if n > 0) {
            shard.remove(&key);
        }
        held
    }

    /// Notes that Redis refused `key` until `until`, unless this replica still holds requests
    /// of it reserved earlier (a concurrent request's batch): those are spent first.
    pub fn refuse(&self, key: u64, until: u64) {
        let mut shard = self.shard(key);
        let lease = shard.entry(key).or_insert((REFUSED, until));
        if lease.0 == 0 || lease.0 == REFUSED {
            *lease = (REFUSED, until);
        }
    }

    /// Keeps `left` more reserved requests of `key` until `until` (added to what is left of a
    /// lease still running: concurrent requests that each reserved must not lose a batch).
    pub fn put(&self, key: u64, left: u64, until: u64) {
        let mut shard = self.shard(key);
        if shard.len() >= self.per_shard && !shard.contains_key(&key) {
            let now = until.saturating_sub(LEASE.as_nanos() as u64);
            shard.retain(|_, (_, u)| *u > now);
            if shard.len() >= self.per_shard
                && let Some((&soonest, _)) = shard.iter().min_by_key(|(_, (_, u))| *u)
            {
                shard.remove(&soonest);
            }
        }
        let now = until.saturating_sub(LEASE.as_nanos() as u64);
        let lease = shard.entry(key).or_insert((0, until));
        if lease.1 <= now || lease.0 == REFUSED {
            *lease = (0, until);
        }
        lease.0 += left;
        lease.1 = until;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_spent_once_per_request_and_not_after_it_ends() {
        let leases = Leases::new(64);
        leases.put(7, 3, 1_000);
        assert_eq!(leases.take(7, 10), Some(Held::Admit(2)));
        assert_eq!(leases.take(7, 20), Some(Held::Admit(1)));
        assert_eq!(leases.take(7, 30), Some(Held::Admit(0)));
        assert_eq!(leases.take(7, 40), None, "spent");
        leases.put(8, 5, 1_000);
        assert_eq!(leases.take(8, 1_000), None, "ended");
        assert_eq!(leases.take(9, 0), None, "never reserved");
        leases.put(10, 2, 1_500);
        leases.put(10, 3, 1_600);
        assert_eq!(
            leases.take(10, 700),
            Some(Held::Admit(4)),
            "two batches add up"
        );
        leases.refuse(11, 900);
        assert_eq!(leases.take(11, 800), Some(Held::RefusedUntil(900)));
        assert_eq!(
            leases.take(11, 900),
            None,
            "asks Redis again at the retry time"
        );
        for key in 0..10_000u64 {
            leases.put(key.wrapping_mul(0x9e37_79b9_7f4a_7c15), 1, 2_000 + key);
        }
        let held: usize = leases.shards.iter().map(|s| s.lock().unwrap().len()).sum();
        assert!(held <= 64, "{held}");
    }
}

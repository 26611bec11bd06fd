//! The limits one gateway keeps in memory: one TAT per key in a bounded, sharded map.
//!
//! Keys are 64-bit hashes (foldhash with a per-process random seed) of the limit and the caller,
//! so an entry is two words and a check allocates nothing. When a shard is full, keys that have
//! rested (TAT in the past, so they hold nothing) are dropped first; if none has, the one
//! closest to rested goes: a caller flooding new identities loses its own history first and
//! memory stays bounded.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::Mutex;

use super::gcra::{self, Admission, Cells};

pub(super) const SHARDS: usize = 64;

/// A hasher for keys that are already hashes. Its output is mixed once more: within a shard
/// the top bits (which chose the shard) are all alike, and the map reads its tags from them.
#[derive(Default)]
pub(super) struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Shard = HashMap<u64, u64, BuildHasherDefault<Prehashed>>;

/// The in-memory store of one gateway.
#[derive(Debug)]
pub struct LocalLimits {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
    hasher: foldhash::quality::RandomState,
}

impl LocalLimits {
    /// A store that remembers at most about `keys` keys.
    pub fn new(keys: usize) -> Self {
        let per_shard = Self::capacity_for(keys) / SHARDS;
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard,
            hasher: foldhash::quality::RandomState::default(),
        }
    }

    /// A limit's place (its route and name), hashed once when the config is loaded.
    pub fn place(&self, names: &[&str]) -> u64 {
        let mut h = self.hasher.build_hasher();
        for name in names {
            h.write_usize(name.len());
            h.write(name.as_bytes());
        }
        h.finish()
    }

    /// The key of a caller under a limit: its place, the caller's class and one or two parts
    /// (length-prefixed, so ("ab", "c") and ("a", "bc") are two keys). Never stored as text.
    pub fn key(&self, place: u64, class: &str, caller: [&[u8]; 2]) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write_u64(place);
        h.write(class.as_bytes());
        h.write_usize(caller[0].len());
        h.write(caller[0]);
        h.write(caller[1]);
        h.finish()
    }

    fn shard(&self, key: u64) -> std::sync::MutexGuard<'_, Shard> {
        // The top bits pick the shard; the map hashes with all of them.
        let shard = &self.shards[(key >> 58) as usize % SHARDS];
        shard
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes one request for `key` at `now` (nanoseconds) if the limit allows it.
    pub fn check(&self, key: u64, now: u64, cells: Cells) -> Admission {
        let mut shard = self.shard(key);
        if let Some(tat) = shard.get_mut(&key) {
            let admission = gcra::check(Some(*tat), now, cells);
            if admission.allowed {
                *tat = admission.tat;
            }
            return admission;
        }
        let admission = gcra::check(None, now, cells);
        if admission.allowed {
            if shard.len() >= self.per_shard {
                evict(&mut shard, now, self.per_shard);
            }
            shard.insert(key, admission.tat);
        }
        admission
    }

    /// What a check would decide, taking nothing.
    pub fn peek(&self, key: u64, now: u64, cells: Cells) -> Admission {
        let stored = self.shard(key).get(&key).copied();
        gcra::peek(stored, now, cells)
    }

    /// Most keys remembered.
    pub fn capacity(&self) -> usize {
        self.per_shard * SHARDS
    }

    /// Most keys a store asked for `keys` remembers (whole shards).
    pub fn capacity_for(keys: usize) -> usize {
        keys.div_ceil(SHARDS).max(1) * SHARDS
    }

    /// Keys remembered now.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |s| s.len()))
            .sum()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Makes room in a full shard: every rested key goes; if that frees nothing, the key closest to
/// rested does.
fn evict(shard: &mut Shard, now: u64, capacity: usize) {
    shard.retain(|_, tat| *tat > now);
    if shard.len() >= capacity
        && let Some((&oldest, _)) = shard.iter().min_by_key(|(_, tat)| **tat)
    {
        shard.remove(&oldest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn cells() -> Cells {
        Cells {
            interval: 10 * MS,
            tolerance: 0,
        }
    }

    #[test]
    fn keys_are_apart_and_the_same_key_is_one() {
        let limits = LocalLimits::new(1000);
        let place = limits.place(&["route", "limit"]);
        let a = limits.key(place, "user", [b"idp", b"alice"]);
        let b = limits.key(place, "user", [b"idp", b"bob"]);
        // Length-prefixed parts: ("ab","c") and ("a","bc") are two keys.
        assert_ne!(
            limits.key(place, "user", [b"ab", b"c"]),
            limits.key(place, "user", [b"a", b"bc"])
        );
        assert_ne!(limits.place(&["ab", "c"]), limits.place(&["a", "bc"]));
        assert_ne!(
            a,
            limits.key(
                limits.place(&["route", "other"]),
                "user",
                [b"idp", b"alice"]
            )
        );
        assert!(limits.check(a, 0, cells()).allowed);
        assert!(!limits.check(a, 0, cells()).allowed);
        assert!(limits.check(b, 0, cells()).allowed);
        assert!(limits.check(a, 10 * MS, cells()).allowed);
    }

    #[test]
    fn a_flood_of_new_keys_stays_within_the_bound() {
        let limits = LocalLimits::new(6400);
        let daily = Cells {
            interval: 86_400_000 * MS,
            tolerance: 0,
        };
        for i in 0u64..200_000 {
            let key = limits.key(7, "client_ip", [&i.to_le_bytes(), b""]);
            assert!(limits.check(key, i, daily).allowed, "a new key is allowed");
        }
        assert!(limits.len() <= 6400, "{} keys", limits.len());
        // A key used long ago is forgotten before one used just now.
        let recent = limits.key(7, "client_ip", [&199_999u64.to_le_bytes(), b""]);
        assert!(!limits.check(recent, 200_000, daily).allowed);
    }

    #[test]
    fn rested_keys_are_dropped_before_active_ones() {
        let limits = LocalLimits::new(6400);
        let busy = limits.key(1, "route", [b"", b""]);
        let long = Cells {
            interval: 1000 * MS,
            tolerance: 0,
        };
        assert!(limits.check(busy, 0, long).allowed);
        // 10,000 keys that rest after 10 ms: the busy key (active for a second) survives them.
        for i in 0u64..10_000 {
            let key = limits.key(2, "client_ip", [&i.to_le_bytes(), b""]);
            limits.check(key, 20 * MS + i * 20 * MS / 10_000, cells());
        }
        assert!(!limits.check(busy, 500 * MS, long).allowed, "still limited");
    }
}

//! The limits a fleet shares in Redis: one GCRA step per request in a Lua script, atomic on the
//! server and timed by the server's clock, so replicas whose clocks differ still agree.
//!
//! The request path never waits long on Redis: a call has [`CALL_TIMEOUT`]; after a failure
//! the limiter stays local for [`RETRY_AFTER`], then the next request connects again (the
//! others wait for that connection, at most [`CALL_TIMEOUT`]).

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

use super::gcra::{Admission, Cells};
use crate::revocation::redis::RedisStore;

/// Longest wait for Redis on a request (connecting or one script call).
pub const CALL_TIMEOUT: Duration = Duration::from_millis(100);
/// How long the limiter stays local after Redis failed.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Up to ARGV[3] GCRA steps at once in microseconds of the server's clock. KEYS[1]: the key;
/// ARGV: interval, tolerance, cells wanted. Takes as many cells as fit (with one, exactly one
/// GCRA step). Returns {cells taken, remaining, reset_after, retry_after}.
const SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local ahead = tat - now
if ahead > tolerance then
  return {0, 0, ahead, ahead - tolerance}
end
local taken = math.min(wanted, math.floor((tolerance - ahead) / interval) + 1)
tat = tat + taken * interval
ahead = tat - now
redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', math.floor(ahead / 1000) + 1)
return {taken, math.floor((tolerance + interval - ahead) / interval), ahead, 0}
";

/// The Redis half of a shared limiter.
pub struct SharedLimits {
    store: RedisStore,
    script: redis::Script,
    /// The connection every check uses (multiplexed: one for all requests).
    connection: ArcSwapOption<redis::aio::MultiplexedConnection>,
    /// Held while connecting, so that one request connects and the others wait for it.
    connecting: tokio::sync::Mutex<()>,
    /// Milliseconds since `epoch` before which Redis is not asked (0: up).
    down_until: AtomicU64,
    epoch: Instant,
}

impl std::fmt::Debug for SharedLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedLimits")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

/// Why Redis was not used for a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unshared {
    /// It failed just now (the first failure after it worked).
    Failed,
    /// It failed recently and is not asked again yet.
    Resting,
}

impl SharedLimits {
    /// Limits kept in `store`'s Redis.
    pub fn new(store: RedisStore) -> Self {
        Self {
            store,
            script: redis::Script::new(SCRIPT),
            connection: ArcSwapOption::empty(),
            connecting: tokio::sync::Mutex::new(()),
            down_until: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// The Redis key of a limit key: a digest, so no user id or address is stored as text and
    /// every key has one size.
    pub fn key(&self, parts: &[&[u8]]) -> String {
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        for part in parts {
            context.update(&(part.len() as u64).to_be_bytes());
            context.update(part);
        }
        let digest = context.finish();
        let mut key = self.store.key("rl:");
        for b in &digest.as_ref()[..16] {
            let _ = write!(key, "{b:02x}");
        }
        key
    }

    fn millis(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn resting(&self) -> bool {
        self.millis() < self.down_until.load(Ordering::Relaxed)
    }

    /// Takes up to `wanted` requests' cells for `key` in Redis (`cells` in microseconds): how
    /// many it got (0: refused) and the admission of the first, or why Redis was not used.
    pub async fn check(
        &self,
        key: &str,
        cells: Cells,
        wanted: u64,
    ) -> Result<(u64, Admission), Unshared> {
        if self.resting() {
            return Err(Unshared::Resting);
        }
        let mut connection = match self.connection.load_full() {
            Some(connection) => (*connection).clone(),
            None => self.connect().await?,
        };
        let mut invocation = self.script.key(key);
        invocation
            .arg(cells.interval.max(1))
            .arg(cells.tolerance)
            .arg(wanted.max(1));
        let call = invocation.invoke_async::<(u64, u64, u64, u64)>(&mut connection);
        match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(Ok((taken, remaining, reset_after, retry_after))) => Ok((
                taken,
                Admission {
                    allowed: taken > 0,
                    tat: 0,
                    remaining,
                    reset_after,
                    retry_after,
                },
            )),
            _ => Err(self.failed()),
        }
    }

    /// The connection, made by the first request that needs it while the others wait (at most
    /// [`CALL_TIMEOUT`]) and then use it.
    async fn connect(&self) -> Result<redis::aio::MultiplexedConnection, Unshared> {
        let _one = tokio::time::timeout(CALL_TIMEOUT, self.connecting.lock())
            .await
            .map_err(|_| Unshared::Resting)?;
        if let Some(connection) = self.connection.load_full() {
            return Ok((*connection).clone());
        }
        if self.resting() {
            return Err(Unshared::Resting);
        }
        match tokio::time::timeout(CALL_TIMEOUT, self.store.connect()).await {
            Ok(Ok(connection)) => {
                self.connection.store(Some(Arc::new(connection.clone())));
                self.down_until.store(0, Ordering::Relaxed);
                Ok(connection)
            }
            _ => Err(self.failed()),
        }
    }

    /// Stays local for [`RETRY_AFTER`]; the connection is dropped, to be made again.
    fn failed(&self) -> Unshared {
        let until = self.millis() + RETRY_AFTER.as_millis() as u64;
        let was = self.down_until.swap(until.max(1), Ordering::Relaxed);
        self.connection.store(None);
        if was == 0 {
            Unshared::Failed
        } else {
            Unshared::Resting
        }
    }

    /// Whether the last call reached Redis.
    pub fn up(&self) -> bool {
        self.down_until.load(Ordering::Relaxed) == 0
    }
}

//! One vendor token for a whole fleet: with the Redis state store, one replica logs in and
//! stores the token (with its expiry) for the others. Cross-replica single flight is a lock
//! with a lease (`SET NX PX`), so a replica that dies mid-login blocks the others at most for
//! the lease. A vendor `401` deletes the shared token only if it is still the refused one, so
//! a fleet re-logs in once, not once per replica.
//!
//! The token in Redis is the same secret it is in memory: it lives under the configured key
//! prefix with a TTL equal to its remaining life (it disappears when it would be useless), and
//! whoever can read those keys can use the vendor account, so Redis must be reachable only by
//! the fleet (network policy, `requirepass`/ACL via `[state] password`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::AsyncCommands;
use tracing::debug;

use super::provider::Fetched;
use crate::config::StateConfig;

/// Deletes a key only while it holds the value this replica expects.
const DELETE_IF: &str = r#"
local value = redis.call('GET', KEYS[1])
if value and value == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

/// Deletes the shared token only while it is the refused one (the value is `<exp> <token>`).
const DELETE_IF_TOKEN: &str = r#"
local value = redis.call('GET', KEYS[1])
if value then
  local space = string.find(value, ' ', 1, true)
  if space and string.sub(value, space + 1) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
end
return 0
"#;

/// The fleet's shared vendor tokens.
pub struct SharedTokens {
    store: crate::revocation::redis::RedisStore,
    prefix: String,
    /// This replica's lock value, so it only ever releases its own lock.
    owner: String,
}

impl std::fmt::Debug for SharedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedTokens")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl SharedTokens {
    /// Shared tokens when the state store is Redis; `None` for the embedded store.
    pub fn from_state(state: &StateConfig) -> Option<Self> {
        let StateConfig::Redis { key_prefix, .. } = state else {
            return None;
        };
        Some(Self {
            store: crate::revocation::redis::RedisStore::for_state(state)?.ok()?,
            prefix: key_prefix.clone(),
            owner: uuid::Uuid::new_v4().to_string(),
        })
    }

    fn key(&self, provider: &str, what: &str) -> String {
        format!("{}vendor:{provider}:{what}", self.prefix)
    }

    async fn connection(&self) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        self.store.connect().await
    }

    /// The token another replica stored, if any and still valid.
    pub async fn get(&self, provider: &str) -> redis::RedisResult<Option<Fetched>> {
        let value: Option<String> = self
            .connection()
            .await?
            .get(self.key(provider, "token"))
            .await?;
        Ok(value.and_then(|v| {
            let (exp, token) = v.split_once(' ')?;
            let expires_at = UNIX_EPOCH.checked_add(Duration::from_secs(exp.parse().ok()?))?;
            (expires_at > SystemTime::now()).then(|| Fetched {
                token: token.to_owned(),
                expires_at,
            })
        }))
    }

    /// Takes the provider's login lock for `lease`; `false` when another replica holds it.
    pub async fn try_lock(&self, provider: &str, lease: Duration) -> redis::RedisResult<bool> {
        let taken: Option<String> = redis::cmd("SET")
            .arg(self.key(provider, "lock"))
            .arg(&self.owner)
            .arg("NX")
            .arg("PX")
            .arg(u64::try_from(lease.as_millis()).unwrap_or(u64::MAX).max(1))
            .query_async(&mut self.connection().await?)
            .await?;
        Ok(taken.is_some())
    }

    /// Stores `fetched` for the fleet, expiring with the token.
    pub async fn put(&self, provider: &str, fetched: &Fetched) -> redis::RedisResult<()> {
        let exp = fetched
            .expires_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let ttl = fetched
            .expires_at
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        if ttl.is_zero() {
            return Ok(());
        }
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        self.connection()
            .await?
            .pset_ex(
                self.key(provider, "token"),
                format!("{exp} {}", fetched.token),
                ttl_ms,
            )
            .await
    }

    /// Releases the lock if this replica still holds it.
    pub async fn unlock(&self, provider: &str) {
        let result: redis::RedisResult<i64> = async {
            redis::Script::new(DELETE_IF)
                .key(self.key(provider, "lock"))
                .arg(&self.owner)
                .invoke_async(&mut self.connection().await?)
                .await
        }
        .await;
        if let Err(e) = result {
            debug!(provider, error = %e, "login lock not released; its lease will end it");
        }
    }

    /// The vendor refused `token`: forget it fleet-wide, unless a replica already replaced it.
    pub async fn invalidate(&self, provider: &str, token: &str) {
        let result: redis::RedisResult<i64> = async {
            redis::Script::new(DELETE_IF_TOKEN)
                .key(self.key(provider, "token"))
                .arg(token)
                .invoke_async(&mut self.connection().await?)
                .await
        }
        .await;
        if let Err(e) = result {
            debug!(provider, error = %e, "shared token not invalidated");
        }
    }
}

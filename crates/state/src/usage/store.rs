//! Where the usage log is kept: beside the revocation list in the file store
//! (`<list>.usage.json`), or the hash `<prefix>usage` in Redis (field: `jti`, value: the
//! [`TokenUse`] as JSON). Several gateways write the same entries, so a write keeps whichever
//! sighting is later.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::TokenUse;
use crate::revocation::redis::RedisStore;
use crate::revocation::store::{self as file, StoreError};
use tollgate_config::StateConfig;

/// Sets each field to its new value unless the stored one was seen later; drops the expired.
/// KEYS[1]: the hash; ARGV: now, then field/value pairs.
#[cfg(feature = "redis")]
const MERGE: &str = r"
local now = tonumber(ARGV[1])
for i = 2, #ARGV, 2 do
  local new = cjson.decode(ARGV[i + 1])
  local old = redis.call('HGET', KEYS[1], ARGV[i])
  local keep = false
  if old then
    local ok, stored = pcall(cjson.decode, old)
    keep = ok and type(stored) == 'table' and tonumber(stored.last_seen) ~= nil
      and tonumber(stored.last_seen) >= tonumber(new.last_seen)
  end
  if not keep then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
return 1
";

#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    tokens: BTreeMap<String, TokenUse>,
}

/// The file beside the revocation list at `list`.
pub fn file_path(list: &Path) -> PathBuf {
    list.with_extension("usage.json")
}

#[cfg(feature = "redis")]
fn redis(state: &StateConfig) -> Option<Result<(RedisStore, String), StoreError>> {
    RedisStore::for_state(state).map(|store| {
        store.map(|store| {
            let hash = store.key("usage");
            (store, hash)
        })
    })
}

#[cfg(feature = "redis")]
fn unavailable(store: &RedisStore) -> impl Fn(redis::RedisError) -> StoreError + '_ {
    move |e| StoreError::Unavailable {
        store: store.url().to_owned(),
        reason: e.to_string(),
    }
}

/// Adds `changed` to the store, keeping the later sighting of each token.
pub async fn merge(
    state: &StateConfig,
    changed: &[(String, TokenUse)],
    now: u64,
) -> Result<(), StoreError> {
    if let StateConfig::File { path } = state {
        let path = file_path(path);
        file::rewrite(&path, |document: &mut Document| {
            document.tokens.retain(|_, u| u.expires_at > now);
            for (jti, seen) in changed {
                let stored = document.tokens.entry(jti.clone()).or_insert(seen.clone());
                stored.last_seen = stored.last_seen.max(seen.last_seen);
            }
            Ok(())
        })?;
        return Ok(());
    }
    merge_redis(state, changed, now).await
}

/// Every stored token use; in Redis, entries expired at `now` are deleted on the way (the
/// file drops them at each write).
pub async fn read(state: &StateConfig, now: u64) -> Result<Vec<(String, TokenUse)>, StoreError> {
    if let StateConfig::File { path } = state {
        let document: Document = file::read_json(&file_path(path))?.unwrap_or_default();
        return Ok(document.tokens.into_iter().collect());
    }
    read_redis(state, now).await
}
#[cfg(feature = "redis")]
async fn merge_redis(
    state: &StateConfig,
    changed: &[(String, TokenUse)],
    now: u64,
) -> Result<(), StoreError> {
    let Some(found) = redis(state) else {
        return Ok(());
    };
    let (store, hash) = found?;
    let mut connection = store.connect().await.map_err(unavailable(&store))?;
    let script = redis::Script::new(MERGE);
    let mut invocation = script.key(&hash);
    invocation.arg(now);
    for (jti, seen) in changed {
        let value = serde_json::to_string(seen).map_err(|e| StoreError::Invalid {
            path: hash.clone().into(),
            reason: e.to_string(),
        })?;
        invocation.arg(jti).arg(value);
    }
    let _: i64 = invocation
        .invoke_async(&mut connection)
        .await
        .map_err(unavailable(&store))?;
    Ok(())
}

#[cfg(feature = "redis")]
async fn read_redis(state: &StateConfig, now: u64) -> Result<Vec<(String, TokenUse)>, StoreError> {
    let Some(found) = redis(state) else {
        return Ok(Vec::new());
    };
    let (store, hash) = found?;
    let mut connection = store.connect().await.map_err(unavailable(&store))?;
    let fields: Vec<(String, String)> = redis::AsyncCommands::hgetall(&mut connection, &hash)
        .await
        .map_err(unavailable(&store))?;
    let mut all = Vec::with_capacity(fields.len());
    let mut expired = Vec::new();
    for (jti, value) in fields {
        match serde_json::from_str::<TokenUse>(&value) {
            Ok(seen) if seen.expires_at > now => all.push((jti, seen)),
            Ok(_) => expired.push(jti),
            Err(e) => {
                return Err(StoreError::Invalid {
                    path: format!("{hash} {jti}").into(),
                    reason: e.to_string(),
                });
            }
        }
    }
    if !expired.is_empty() {
        let _: i64 = redis::AsyncCommands::hdel(&mut connection, &hash, &expired)
            .await
            .map_err(unavailable(&store))?;
    }
    Ok(all)
}

/// Without Redis support: a Redis `[state]` is an error, never an empty log.
#[cfg(not(feature = "redis"))]
async fn merge_redis(
    state: &StateConfig,
    _: &[(String, TokenUse)],
    _: u64,
) -> Result<(), StoreError> {
    match RedisStore::for_state(state) {
        Some(Err(e)) => Err(e),
        _ => Ok(()),
    }
}

/// Without Redis support: a Redis `[state]` is an error, never an empty log.
#[cfg(not(feature = "redis"))]
async fn read_redis(state: &StateConfig, _: u64) -> Result<Vec<(String, TokenUse)>, StoreError> {
    match RedisStore::for_state(state) {
        Some(Err(e)) => Err(e),
        _ => Ok(Vec::new()),
    }
}

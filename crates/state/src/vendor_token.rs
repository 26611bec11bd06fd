//! One vendor token for a whole fleet: with the Redis state store, one replica logs in and
//! stores the token (with its expiry) for the others. Cross-replica single flight is a lock
//! with a lease (`SET NX PX`), so a replica that dies mid-login blocks the others at most for
//! the lease. A vendor `401` deletes the shared token only if it is still the refused one, so
//! a fleet re-logs in once, not once per replica.
//!
//! The token in Redis is the same secret it is in memory: it lives under the configured key
//! prefix with a TTL equal to its remaining life (it disappears when it would be useless), and
//! Redis must be reachable only by the fleet (network policy, `requirepass`/ACL via
//! `[state] password`, `rediss://`). With `[state] encryption_key` it is stored sealed
//! (AES-256-GCM, bound to its key name and expiry) under `…:token.sealed`, so a Redis dump or
//! a reader without the key learns nothing usable, and a replica configured without the key
//! never mistakes a sealed value for a token.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::AsyncCommands;
use tracing::{debug, warn};

use tollgate_config::StateConfig;
use tollgate_http::BoxFuture;

/// A token as obtained, with when it stops being valid.
pub struct Fetched {
    /// The bearer token.
    pub token: String,
    /// When it expires.
    pub expires_at: SystemTime,
}

impl std::fmt::Debug for Fetched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetched")
            .field("token", &"***")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Deletes a key only while it holds the value this replica expects.
const DELETE_IF: &str = r#"
local value = redis.call('GET', KEYS[1])
if value and value == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

/// The fleet's shared vendor tokens.
pub struct SharedTokens {
    store: crate::revocation::redis::RedisStore,
    prefix: String,
    /// This replica's lock value, so it only ever releases its own lock.
    owner: String,
    seal: Option<Seal>,
}

/// AES-256-GCM with the `[state] encryption_key`.
struct Seal {
    key: ring::aead::LessSafeKey,
    random: ring::rand::SystemRandom,
}

impl Seal {
    fn new(key: &[u8]) -> Option<Self> {
        let key = ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, key).ok()?;
        Some(Self {
            key: ring::aead::LessSafeKey::new(key),
            random: ring::rand::SystemRandom::new(),
        })
    }

    /// `base64url(nonce ‖ ciphertext ‖ tag)`, authenticated with `context`.
    fn seal(&self, context: &str, plain: &str) -> Option<String> {
        use base64::Engine;
        use ring::rand::SecureRandom;
        let mut nonce = [0u8; ring::aead::NONCE_LEN];
        self.random.fill(&mut nonce).ok()?;
        let mut sealed = plain.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                ring::aead::Nonce::assume_unique_for_key(nonce),
                ring::aead::Aad::from(context.as_bytes()),
                &mut sealed,
            )
            .ok()?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(out))
    }

    fn open(&self, context: &str, text: &str) -> Option<String> {
        use base64::Engine;
        let mut bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .ok()?;
        if bytes.len() < ring::aead::NONCE_LEN {
            return None;
        }
        let mut sealed = bytes.split_off(ring::aead::NONCE_LEN);
        let nonce = ring::aead::Nonce::try_assume_unique_for_key(&bytes).ok()?;
        let plain = self
            .key
            .open_in_place(
                nonce,
                ring::aead::Aad::from(context.as_bytes()),
                &mut sealed,
            )
            .ok()?;
        String::from_utf8(plain.to_vec()).ok()
    }
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
        let StateConfig::Redis {
            key_prefix,
            encryption_key,
            ..
        } = state
        else {
            return None;
        };
        Some(Self {
            store: crate::revocation::redis::RedisStore::for_state(state)?.ok()?,
            prefix: key_prefix.clone(),
            owner: uuid::Uuid::new_v4().to_string(),
            // The key's length is checked at config load.
            seal: encryption_key.as_ref().and_then(|k| Seal::new(k.expose())),
        })
    }

    /// Where the provider's token is stored: sealed tokens under their own key.
    fn token_key(&self, provider: &str) -> String {
        self.key(
            provider,
            if self.seal.is_some() {
                "token.sealed"
            } else {
                "token"
            },
        )
    }

    /// The stored value: `<exp> <token>`, the token sealed when a key is configured.
    fn encode(&self, key: &str, exp: u64, token: &str) -> Option<String> {
        match &self.seal {
            None => Some(format!("{exp} {token}")),
            Some(seal) => Some(format!(
                "{exp} {}",
                seal.seal(&format!("{key} {exp}"), token)?
            )),
        }
    }

    /// The expiry and token in a stored value (`None`: malformed, or sealed with another key).
    fn decode(&self, key: &str, value: &str) -> Option<(u64, String)> {
        let (exp, token) = value.split_once(' ')?;
        let exp: u64 = exp.parse().ok()?;
        let token = match &self.seal {
            None => token.to_owned(),
            Some(seal) => seal.open(&format!("{key} {exp}"), token)?,
        };
        Some((exp, token))
    }

    fn key(&self, provider: &str, what: &str) -> String {
        format!("{}vendor:{provider}:{what}", self.prefix)
    }

    async fn connection(&self) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        self.store.connect().await
    }

    /// The token another replica stored, if any and still valid.
    #[inline(never)]
    pub fn get<'a>(
        &'a self,
        provider: &'a str,
    ) -> BoxFuture<'a, redis::RedisResult<Option<Fetched>>> {
        Box::pin(async move {
            let key = self.token_key(provider);
            let value: Option<String> = self.connection().await?.get(&key).await?;
            Ok(value.and_then(|v| {
                let Some((exp, token)) = self.decode(&key, &v) else {
                    warn!(
                        provider,
                        "the shared vendor token cannot be read (another state.encryption_key?); \
                     logging in instead"
                    );
                    return None;
                };
                let expires_at = UNIX_EPOCH.checked_add(Duration::from_secs(exp))?;
                (expires_at > SystemTime::now()).then_some(Fetched { token, expires_at })
            }))
        })
    }

    /// Takes the provider's login lock for `lease`; `false` when another replica holds it.
    #[inline(never)]
    pub fn try_lock<'a>(
        &'a self,
        provider: &'a str,
        lease: Duration,
    ) -> BoxFuture<'a, redis::RedisResult<bool>> {
        Box::pin(async move {
            let taken: Option<String> = redis::cmd("SET")
                .arg(self.key(provider, "lock"))
                .arg(&self.owner)
                .arg("NX")
                .arg("PX")
                .arg(u64::try_from(lease.as_millis()).unwrap_or(u64::MAX).max(1))
                .query_async(&mut self.connection().await?)
                .await?;
            Ok(taken.is_some())
        })
    }

    /// Stores `fetched` for the fleet, expiring with the token.
    #[inline(never)]
    pub fn put<'a>(
        &'a self,
        provider: &'a str,
        fetched: &'a Fetched,
    ) -> BoxFuture<'a, redis::RedisResult<()>> {
        Box::pin(async move {
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
            let key = self.token_key(provider);
            let Some(value) = self.encode(&key, exp, &fetched.token) else {
                return Ok(());
            };
            self.connection().await?.pset_ex(key, value, ttl_ms).await
        })
    }

    /// Releases the lock if this replica still holds it.
    #[inline(never)]
    pub fn unlock<'a>(&'a self, provider: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
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
        })
    }

    /// The vendor refused `token`: forget it fleet-wide, unless a replica already replaced it.
    #[inline(never)]
    pub fn invalidate<'a>(&'a self, provider: &'a str, token: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let key = self.token_key(provider);
            let result: redis::RedisResult<i64> = async {
                let mut connection = self.connection().await?;
                let value: Option<String> = connection.get(&key).await?;
                // Delete exactly the value read, and only if it holds the refused token: another
                // replica may have stored a fresh one since.
                match value.filter(|v| self.decode(&key, v).is_some_and(|(_, t)| t == token)) {
                    Some(value) => {
                        redis::Script::new(DELETE_IF)
                            .key(&key)
                            .arg(value)
                            .invoke_async(&mut connection)
                            .await
                    }
                    None => Ok(0),
                }
            }
            .await;
            if let Err(e) = result {
                debug!(provider, error = %e, "shared token not invalidated");
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_token_opens_only_with_its_key_and_for_its_place() {
        let seal = Seal::new(&[7u8; 32]).unwrap();
        let sealed = seal
            .seal("p:vendor:a:token.sealed 100", "vendor-token")
            .unwrap();
        assert!(!sealed.contains("vendor-token"));
        assert_ne!(
            sealed,
            seal.seal("p:vendor:a:token.sealed 100", "vendor-token")
                .unwrap(),
            "a fresh nonce each time"
        );
        assert_eq!(
            seal.open("p:vendor:a:token.sealed 100", &sealed).as_deref(),
            Some("vendor-token")
        );
        assert_eq!(
            seal.open("p:vendor:a:token.sealed 999", &sealed),
            None,
            "its expiry cannot be extended"
        );
        assert_eq!(seal.open("p:vendor:b:token.sealed 100", &sealed), None);
        let other = Seal::new(&[8u8; 32]).unwrap();
        assert_eq!(other.open("p:vendor:a:token.sealed 100", &sealed), None);
        assert_eq!(seal.open("p:vendor:a:token.sealed 100", "!!"), None);
    }
}

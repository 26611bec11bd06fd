//! The shared state store for a fleet: the revocation list in Redis, so every replica refuses
//! a revoked token. Keys (under the configured prefix): `revocations` (a hash, one field per
//! revocation: `jti:<id>` or `service:<name>`, the value its JSON), `revocations:version` (bumped
//! by each change) and the channel `revocations` (a change's version is published on it).
//! Replicas reload on a published change at once, and check the version every second in case
//! a message was missed (a reconnect, a replica that was down).

use std::time::Duration;

use redis::AsyncCommands;

use super::Revocation;
use super::listing::Listing;
use super::store::StoreError;
use tollgate_http::BoxFuture;

/// Deadline for connecting and for each command: the request path never waits on Redis, but
/// the CLI and the watcher must not hang on an unreachable one.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// A Redis-backed revocation list.
#[derive(Clone)]
pub struct RedisStore {
    client: redis::Client,
    url: String,
    prefix: String,
    hash: String,
    version: String,
    channel: String,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.url)
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

fn failed(url: &str) -> impl Fn(redis::RedisError) -> StoreError + '_ {
    move |e| StoreError::Unavailable {
        store: url.to_owned(),
        reason: e.to_string(),
    }
}

impl RedisStore {
    /// A store at `url` (`redis://host:port/db` or `rediss://`, checked at config load) under
    /// `prefix`; a `rediss://` server is verified against `ca_pem`, else the system roots.
    pub fn new(
        url: &str,
        prefix: &str,
        password: Option<&[u8]>,
        ca_pem: Option<&str>,
    ) -> Result<Self, StoreError> {
        let mut info: redis::ConnectionInfo =
            redis::IntoConnectionInfo::into_connection_info(url).map_err(failed(url))?;
        if let Some(password) = password {
            info.redis.password = Some(String::from_utf8_lossy(password).into_owned());
        }
        let client = match ca_pem {
            Some(pem) => redis::Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.as_bytes().to_vec()),
                },
            ),
            None => redis::Client::open(info),
        };
        Ok(Self {
            client: client.map_err(failed(url))?,
            url: url.to_owned(),
            prefix: prefix.to_owned(),
            hash: format!("{prefix}revocations"),
            version: format!("{prefix}revocations:version"),
            channel: format!("{prefix}revocations"),
        })
    }

    /// The store `state` names, when it is Redis.
    pub fn for_state(state: &tollgate_config::StateConfig) -> Option<Result<Self, StoreError>> {
        match state {
            tollgate_config::StateConfig::Redis {
                url,
                password,
                key_prefix,
                ca_pem,
                ..
            } => Some(Self::new(
                url,
                key_prefix,
                password.as_ref().map(|p| p.expose()),
                ca_pem.as_deref(),
            )),
            tollgate_config::StateConfig::File { .. } => None,
        }
    }

    /// `redis://host:port/db`, for messages.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The key `name` under the configured prefix, for other users of the same Redis.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// A multiplexed connection with the store's deadlines, for other users of the same Redis
    /// (the shared vendor token).
    #[inline(never)]
    pub fn connect<'a>(
        &'a self,
    ) -> BoxFuture<'a, redis::RedisResult<redis::aio::MultiplexedConnection>> {
        Box::pin(async move {
            let config = redis::AsyncConnectionConfig::new()
                .set_connection_timeout(TIMEOUT)
                .set_response_timeout(TIMEOUT);
            self.client
                .get_multiplexed_async_connection_with_config(&config)
                .await
        })
    }

    async fn connection(&self) -> Result<redis::aio::MultiplexedConnection, StoreError> {
        self.connect().await.map_err(failed(&self.url))
    }

    /// Every stored revocation (expired ones included; the caller filters), the entries that
    /// could not be read, and the list's version.
    pub async fn read(&self) -> Result<Listing, StoreError> {
        let mut connection = self.connection().await?;
        let version = self.version_with(&mut connection).await?;
        let mut listing = self.read_with(&mut connection).await?;
        listing.version = version;
        Ok(listing)
    }

    async fn read_with(
        &self,
        connection: &mut redis::aio::MultiplexedConnection,
    ) -> Result<Listing, StoreError> {
        let fields: Vec<(String, String)> = connection
            .hgetall(&self.hash)
            .await
            .map_err(failed(&self.url))?;
        // Entry by entry: one unreadable entry (a hand edit, another version's format) must not
        // stop the fleet from reading, adding or listing the others. It is skipped and named.
        Ok(Listing::parse(fields))
    }

    /// The list's version: changes whenever a revocation is added.
    async fn version_with(
        &self,
        connection: &mut redis::aio::MultiplexedConnection,
    ) -> Result<Option<i64>, StoreError> {
        connection
            .get(&self.version)
            .await
            .map_err(failed(&self.url))
    }

    /// Adds `revocation`, drops those expired at `now`, bumps the version and tells every
    /// replica; returns the list as stored.
    pub async fn add(
        &self,
        revocation: Revocation,
        now: u64,
    ) -> Result<Vec<Revocation>, StoreError> {
        let mut connection = self.connection().await?;
        let existing = self.read_with(&mut connection).await?.revocations;
        let field = |r: &Revocation| match (&r.jti, &r.service) {
            (Some(jti), _) => format!("jti:{jti}"),
            (None, Some(service)) => format!("service:{service}"),
            (None, None) => "none".to_owned(),
        };
        let expired: Vec<String> = existing
            .iter()
            .filter(|r| r.expires_at <= now)
            .map(field)
            .collect();
        let value = serde_json::to_string(&revocation).map_err(|e| StoreError::Invalid {
            path: self.hash.clone().into(),
            reason: e.to_string(),
        })?;
        let mut pipe = redis::pipe();
        pipe.atomic();
        if !expired.is_empty() {
            pipe.hdel(&self.hash, &expired).ignore();
        }
        pipe.hset(&self.hash, field(&revocation), value).ignore();
        pipe.incr(&self.version, 1);
        let (version,): (i64,) = pipe
            .query_async(&mut connection)
            .await
            .map_err(failed(&self.url))?;
        let _: i64 = connection
            .publish(&self.channel, version)
            .await
            .map_err(failed(&self.url))?;
        let mut stored: Vec<Revocation> = existing
            .into_iter()
            .filter(|r| r.expires_at > now && field(r) != field(&revocation))
            .collect();
        stored.push(revocation);
        Ok(stored)
    }

    /// Calls `apply` with the list whenever it changes, until `apply` returns false (its
    /// owner is gone); `up` reports whether Redis answers. Reconnects by itself.
    pub async fn watch(
        &self,
        mut apply: impl FnMut(Listing) -> bool,
        mut up: impl FnMut(Option<&StoreError>),
    ) {
        // The version last applied; `None` until a list has been read on this connection.
        let mut seen: Option<Option<i64>> = None;
        loop {
            match self.session(&mut seen, &mut apply, &mut up).await {
                Ok(()) => return,
                Err(e) => {
                    up(Some(&e));
                    seen = None;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// One connection's worth of watching; `Ok` when the owner is gone.
    async fn session(
        &self,
        seen: &mut Option<Option<i64>>,
        apply: &mut impl FnMut(Listing) -> bool,
        up: &mut impl FnMut(Option<&StoreError>),
    ) -> Result<(), StoreError> {
        use futures_util::StreamExt;
        let mut connection = self.connection().await?;
        let mut pubsub = tokio::time::timeout(TIMEOUT, self.client.get_async_pubsub())
            .await
            .map_err(|_| StoreError::Unavailable {
                store: self.url.clone(),
                reason: "timed out".into(),
            })?
            .map_err(failed(&self.url))?;
        pubsub
            .subscribe(&self.channel)
            .await
            .map_err(failed(&self.url))?;
        let mut messages = pubsub.on_message();
        loop {
            let version = self.version_with(&mut connection).await?;
            if seen.as_ref() != Some(&version) {
                let mut list = self.read_with(&mut connection).await?;
                list.version = version;
                up(None);
                if !apply(list) {
                    return Ok(());
                }
                *seen = Some(version);
            }
            // A published change wakes the replica at once; the timer catches a message lost
            // while it reconnected, and notices a Redis that stopped answering.
            tokio::select! {
                message = messages.next() => {
                    if message.is_none() {
                        return Err(StoreError::Unavailable {
                            store: self.url.clone(),
                            reason: "subscription closed".into(),
                        });
                    }
                }
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}

//! Revoked tokens and services: what the gateway refuses although the signature is good.
//!
//! The list lives in a state store (`[state]`; for now the embedded file store, see [`store`]):
//! `tollgate token revoke` writes it, every gateway reading that store picks the change up by
//! itself within [`POLL_INTERVAL`], and each request costs one hash lookup in memory.

pub mod listing;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(not(feature = "redis"))]
#[path = "redis_off.rs"]
pub mod redis;
pub mod store;

pub use listing::{Listing, Unreadable};

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use tollgate_http::identity::Identity;

use crate::events::StateEvents;
use crate::refresher::Refresher;
use tollgate_http::BoxFuture;

/// How often a gateway looks for a changed revocation list (a metadata check; the file is read
/// only when it changed).
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// One revocation, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// The revoked token's `jti`, for a single token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// The revoked service, for every token of it issued at or before `revoked_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// When it was revoked, seconds since the epoch.
    pub revoked_at: u64,
    /// When it may be forgotten: no token it refuses can be valid any more by then.
    pub expires_at: u64,
    /// Why, for the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Revocation {
    /// Whether it names exactly one of a token (`jti`) or a service, as every store requires.
    pub fn names_one_target(&self) -> bool {
        self.jti.is_some() != self.service.is_some()
    }

    /// `jti <id>` or `service <name>`.
    pub fn target(&self) -> String {
        match (&self.jti, &self.service) {
            (Some(jti), _) => format!("jti {jti}"),
            (None, Some(service)) => format!("service {service}"),
            (None, None) => "nothing".to_owned(),
        }
    }
}

/// What `tollgate token revoke` was asked to revoke.
#[derive(Debug, Clone)]
pub enum Target {
    /// A token: its `jti` is read from it (unverified: revoking a forged token is harmless).
    Token(String),
    /// A `jti`.
    Jti(String),
    /// Every token of a service issued until now.
    Service(String),
}

impl Target {
    /// A token (three dot-separated parts) or a `jti`.
    pub fn token_or_jti(text: &str) -> Self {
        let text = text.trim();
        if text.split('.').count() == 3 {
            Target::Token(text.to_owned())
        } else {
            Target::Jti(text.to_owned())
        }
    }
}

/// Why a revocation could not be made.
#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    /// The token carries no `jti`.
    #[error("the token has no jti to revoke it by; revoke its service instead (--service NAME)")]
    NoJti,
    /// The token's payload could not be read.
    #[error("not a JWT: {0}")]
    NotAToken(String),
    /// Nothing to revoke: the token is already past its `exp`.
    #[error("the token expired already; nothing to revoke")]
    AlreadyExpired,
    /// An empty `jti` or service name.
    #[error("an empty jti or service name revokes nothing")]
    Empty,
}

/// The revocation for `target` at `now`, kept until no token it refuses can still be valid:
/// the token's own `exp`, else the longest lifetime the config's issuers accept.
pub fn plan(
    config: &tollgate_config::Config,
    target: Target,
    reason: Option<String>,
    now: u64,
) -> Result<Revocation, RevokeError> {
    let leeway = config
        .issuers
        .iter()
        .map(|i| i.leeway.as_secs())
        .max()
        .unwrap_or(0);
    let longest = |service_only: bool| {
        config
            .issuers
            .iter()
            .map(|i| {
                if service_only {
                    i.max_service_lifetime
                } else {
                    i.max_service_lifetime.max(i.max_access_lifetime)
                }
            })
            .max()
            .unwrap_or_default()
            .as_secs()
    };
    let until = |lifetime: u64| now.saturating_add(lifetime).saturating_add(leeway);
    let (jti, service, expires_at) = match target {
        Target::Service(name) if !name.trim().is_empty() => {
            (None, Some(name), until(longest(true)))
        }
        Target::Jti(jti) if !jti.is_empty() => (Some(jti), None, until(longest(false))),
        Target::Token(token) => {
            let (jti, exp) = token_jti_and_expiry(&token)?;
            let latest = until(longest(false));
            let exp = exp.map_or(latest, |exp| exp.saturating_add(leeway).min(latest));
            if exp <= now {
                return Err(RevokeError::AlreadyExpired);
            }
            (Some(jti), None, exp)
        }
        _ => return Err(RevokeError::Empty),
    };
    Ok(Revocation {
        jti,
        service,
        revoked_at: now,
        expires_at,
        reason,
    })
}

/// A token's `jti` and `exp`, read without verifying it (a revocation may name any token that
/// was issued, valid or not).
fn token_jti_and_expiry(token: &str) -> Result<(String, Option<u64>), RevokeError> {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap_or_default();
    let claims: serde_json::Value = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| RevokeError::NotAToken("its payload is not base64url JSON".into()))?;
    let jti = claims["jti"]
        .as_str()
        .filter(|j| !j.is_empty())
        .ok_or(RevokeError::NoJti)?
        .to_owned();
    let exp = claims["exp"].as_f64().map(|e| e.max(0.0) as u64);
    Ok((jti, exp))
}

/// The revocations in force, indexed for the request path.
#[derive(Debug, Default)]
pub struct RevocationSet {
    tokens: HashMap<String, u64>,
    /// Service name → tokens issued at or before this time are refused.
    services: HashMap<String, u64>,
}

impl RevocationSet {
    /// Indexes `revocations`, skipping those already expired at `now`.
    pub fn new(revocations: &[Revocation], now: u64) -> Self {
        let mut set = Self::default();
        for r in revocations.iter().filter(|r| r.expires_at > now) {
            if let Some(jti) = &r.jti {
                set.tokens.insert(jti.clone(), r.expires_at);
            } else if let Some(service) = &r.service {
                let at = set.services.entry(service.clone()).or_default();
                *at = (*at).max(r.revoked_at);
            }
        }
        set
    }

    /// How many revocations are in force.
    pub fn len(&self) -> usize {
        self.tokens.len() + self.services.len()
    }

    /// Whether nothing is revoked.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty() && self.services.is_empty()
    }

    /// Whether `identity`'s token is revoked: its `jti` is listed, or its service was revoked
    /// at or after the token was issued (a token without `iat` counts as issued at 0).
    pub fn refuses(&self, identity: &Identity) -> bool {
        if let Some(jti) = &identity.token_id
            && self.tokens.contains_key(jti.as_str())
        {
            return true;
        }
        match &identity.service {
            Some(service) if !self.services.is_empty() => self
                .services
                .get(service.as_str())
                .is_some_and(|revoked_at| identity.issued_at.unwrap_or(0) <= *revoked_at),
            _ => false,
        }
    }
}

/// Where a gateway's list comes from.
enum Source {
    /// Nothing is ever revoked.
    Nothing,
    /// The embedded file store.
    File(PathBuf),
    /// The shared Redis store.
    Redis(Box<redis::RedisStore>),
    /// The configured store cannot be used: no list is ever loaded.
    Unusable,
}

/// A token on the revocation list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("token revoked")]
pub struct Revoked;

/// The list a gateway enforces, refreshed from its store in the background.
pub struct Revocations {
    source: Source,
    state: Option<tollgate_config::StateConfig>,
    set: ArcSwap<RevocationSet>,
    refresher: Refresher,
    /// Whether the store answered last time it was asked (always true for the file store).
    up: AtomicBool,
    /// Whether a list has been read: until then nothing is refused, so the gateway is not
    /// ready.
    loaded: AtomicBool,
    /// Whether the list in force came from this replica's local copy (Redis not read yet).
    seeded: AtomicBool,
    /// Where the last list read from Redis is copied, to start from it next time.
    copy: Option<PathBuf>,
    /// Refuse service tokens while no list was ever read (not even the copy).
    fail_closed: bool,
    events: Option<Arc<dyn StateEvents>>,
}

impl std::fmt::Debug for Revocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revocations")
            .field("store", &self.state.as_ref().map(|s| s.describe()))
            .field("in_force", &self.set.load().len())
            .finish()
    }
}

impl Revocations {
    /// Nothing is ever revoked (tools that verify a token offline, tests).
    pub fn none() -> Arc<Self> {
        Arc::new(Self {
            source: Source::Nothing,
            state: None,
            set: ArcSwap::from_pointee(RevocationSet::default()),
            refresher: Refresher::never(),
            up: AtomicBool::new(true),
            loaded: AtomicBool::new(true),
            seeded: AtomicBool::new(false),
            copy: None,
            fail_closed: false,
            events: None,
        })
    }

    /// The list in `state`'s store. The file store is read now (a missing file is an empty
    /// list); Redis is read by [`Revocations::start`]'s watcher, which keeps either current.
    pub fn from_config(
        state: &tollgate_config::StateConfig,
        events: Arc<dyn StateEvents>,
    ) -> Arc<Self> {
        use tollgate_config::StateConfig;
        let source = match (state, redis::RedisStore::for_state(state)) {
            (StateConfig::File { path }, _) => Source::File(path.clone()),
            (_, Some(Ok(store))) => Source::Redis(Box::new(store)),
            // A URL is checked at config load, so in practice a build without Redis support:
            // the list is never read, so the gateway never reports ready (fails closed).
            (_, Some(Err(e))) => {
                tracing::error!(error = %e, "state store unusable; no revocation list is read");
                Source::Unusable
            }
            (_, None) => Source::Nothing,
        };
        let this = Arc::new(Self {
            source,
            state: Some(state.clone()),
            set: ArcSwap::from_pointee(RevocationSet::default()),
            refresher: Refresher::new(),
            up: AtomicBool::new(true),
            loaded: AtomicBool::new(false),
            seeded: AtomicBool::new(false),
            copy: match state {
                StateConfig::Redis { copy, .. } => copy.clone(),
                StateConfig::File { .. } => None,
            },
            fail_closed: matches!(
                state,
                StateConfig::Redis {
                    fail_closed: true,
                    ..
                }
            ),
            events: Some(events),
        });
        this.seed_from_copy();
        match &this.source {
            Source::File(path) => this.apply(read_file(path)),
            Source::Nothing => this.loaded.store(true, Ordering::Release),
            Source::Redis(_) | Source::Unusable => {}
        }
        this
    }

    /// Whether this list comes from `state` (a reload that keeps it keeps the watcher).
    pub fn serves(&self, state: &tollgate_config::StateConfig) -> bool {
        self.state.as_ref() == Some(state)
    }

    /// The store, for messages (`None`: nothing is ever revoked).
    pub fn store(&self) -> Option<String> {
        self.state.as_ref().map(|s| s.describe())
    }

    /// Whether the store answered when last asked: while it does not, the last list read stays
    /// in force.
    pub fn store_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Whether a list has been read since start: a replica that started while its store was
    /// unreachable (or its file unreadable) knows no revocation yet, and says so on `/readyz`.
    pub fn loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// Refuses a revoked token. An empty list costs one atomic load. With `fail_closed`, a
    /// service token is refused while no list was ever read.
    pub fn check(&self, identity: &Identity) -> Result<(), Revoked> {
        if self.fail_closed
            && identity.kind == tollgate_http::identity::TokenKind::Service
            && !self.loaded.load(Ordering::Acquire)
            && !self.seeded.load(Ordering::Acquire)
        {
            return Err(Revoked);
        }
        let set = self.set.load();
        if !set.is_empty() && set.refuses(identity) {
            return Err(Revoked);
        }
        Ok(())
    }

    /// Watches the store until the last reference is dropped.
    #[cfg_attr(not(feature = "redis"), allow(unreachable_code, unused_variables))]
    pub fn start(self: &Arc<Self>) {
        match &self.source {
            Source::Nothing | Source::Unusable => {}
            Source::File(path) => {
                let path = path.clone();
                let mut last = tollgate_config::file_stamp(&path);
                self.refresher.start(self, POLL_INTERVAL, move |this| {
                    let now = tollgate_config::file_stamp(&path);
                    let changed = std::mem::replace(&mut last, now) != now;
                    let read = changed.then(|| read_file(&path));
                    async move {
                        if let Some(read) = read {
                            this.apply(read);
                        }
                        POLL_INTERVAL
                    }
                });
            }
            // A subscription, not a period: it runs its own loop and holds only weak references.
            Source::Redis(store) if self.refresher.claim() => {
                let store = store.as_ref().clone();
                let weak = Arc::downgrade(self);
                let (for_apply, for_up) = (weak.clone(), weak);
                tokio::spawn(async move {
                    store
                        .watch(
                            |list| match for_apply.upgrade() {
                                Some(this) => {
                                    this.apply(Ok(list));
                                    true
                                }
                                None => false,
                            },
                            |error| {
                                if let Some(this) = for_up.upgrade() {
                                    this.mark(error);
                                }
                            },
                        )
                        .await;
                });
            }
            Source::Redis(_) => {}
        }
    }

    /// Reads a Redis store's list once, now (the file store is read when the list is built):
    /// for tools that judge one token without starting the watcher (`token verify`,
    /// `explain`). An unreachable store leaves the list empty.
    #[inline(never)]
    pub fn read_once<'a>(&'a self) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Source::Redis(store) = &self.source
                && let Ok(listing) = store.read().await
            {
                self.apply(Ok(listing));
            }
        })
    }

    /// Enforces `list` from now on (a one-off read, e.g. by `tollgate token verify`).
    pub fn load(&self, list: Vec<Revocation>) {
        self.apply(Ok(Listing::of(list)));
    }

    /// Records whether the store answers; logs the transitions only.
    fn mark(&self, error: Option<&store::StoreError>) {
        let up = error.is_none();
        if let Some(events) = &self.events {
            events.store_reachable(up);
        }
        if self.up.swap(up, Ordering::AcqRel) != up {
            match error {
                None => {
                    info!(store = %self.store().unwrap_or_default(), "state store reachable again")
                }
                Some(e) => {
                    warn!(error = %e, "state store unreachable; the last revocation list read stays in force")
                }
            }
        }
    }

    /// Starts a Redis-backed list from this replica's copy of the last list it read, so a
    /// replica started while Redis is unreachable still refuses what was revoked before.
    fn seed_from_copy(&self) {
        let Some(path) = self.copy.as_deref().filter(|p| p.exists()) else {
            return;
        };
        match store::read_copy(path) {
            Ok(copy) => {
                let set = RevocationSet::new(&copy.revocations, crate::clock::now());
                info!(copy = %path.display(), version = ?copy.version, in_force = set.len(), "revocation list taken from the local copy until the store answers");
                self.set.store(Arc::new(set));
                self.seeded.store(true, Ordering::Release);
            }
            Err(e) => {
                warn!(copy = %path.display(), error = %e, "local copy of the revocation list unreadable; not used")
            }
        }
    }

    fn apply(&self, list: Result<Listing, String>) {
        match list {
            Ok(listing) => {
                if let Some(path) = &self.copy
                    && let Err(e) = store::replace_copy(path, &listing)
                {
                    warn!(copy = %path.display(), error = %e, "local copy of the revocation list not written");
                }
                let set = RevocationSet::new(&listing.revocations, crate::clock::now());
                let in_force = set.len();
                self.set.store(Arc::new(set));
                self.loaded.store(true, Ordering::Release);
                if let Some(events) = &self.events {
                    events.revocations_loaded(in_force, listing.unreadable.len());
                }
                if !listing.unreadable.is_empty() {
                    warn!(store = %self.store().unwrap_or_default(), skipped = ?listing.unreadable_fields(), "unreadable revocation entries skipped; the others are enforced (`tollgate token revoked` names them)");
                }
                info!(store = %self.store().unwrap_or_default(), version = ?listing.version, in_force, "revocation list loaded");
            }
            Err(e) => {
                if let Some(events) = &self.events {
                    events.revocation_load_failed();
                }
                warn!(error = %e, "revocation list not loaded; the previous one stays in force");
            }
        }
    }
}

/// The file store's list, for [`Revocations::apply`].
fn read_file(path: &std::path::Path) -> Result<Listing, String> {
    store::read(path)
        .map(Listing::of)
        .map_err(|e| e.to_string())
}

/// Adds a revocation to `state`'s store; returns the list as stored.
#[inline(never)]
pub fn add<'a>(
    state: &'a tollgate_config::StateConfig,
    revocation: Revocation,
    now: u64,
) -> BoxFuture<'a, Result<Vec<Revocation>, store::StoreError>> {
    Box::pin(async move {
        match (state, redis::RedisStore::for_state(state)) {
            (tollgate_config::StateConfig::File { path }, _) => store::add(path, revocation, now),
            (_, Some(store)) => store?.add(revocation, now).await,
            (_, None) => Ok(Vec::new()),
        }
    })
}

/// Every revocation in `state`'s store (expired ones included), and the entries it could
/// not read.
#[inline(never)]
pub fn list<'a>(
    state: &'a tollgate_config::StateConfig,
) -> BoxFuture<'a, Result<Listing, store::StoreError>> {
    Box::pin(async move {
        match (state, redis::RedisStore::for_state(state)) {
            (tollgate_config::StateConfig::File { path }, _) => store::read(path).map(Listing::of),
            (_, Some(store)) => store?.read().await,
            (_, None) => Ok(Listing::default()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_http::identity::TokenKind;

    fn identity(jti: Option<&str>, service: Option<&str>, iat: Option<u64>) -> Identity {
        Identity {
            kind: if service.is_some() {
                TokenKind::Service
            } else {
                TokenKind::Access
            },
            issuer: "t".into(),
            subject: "s".into(),
            role: None,
            service: service.map(str::to_owned),
            expires_at: 0,
            token_id: jti.map(str::to_owned),
            issued_at: iat,
            headers: Vec::new(),
            grants: Default::default(),
        }
    }

    fn revocation(jti: Option<&str>, service: Option<&str>, at: u64, until: u64) -> Revocation {
        Revocation {
            jti: jti.map(str::to_owned),
            service: service.map(str::to_owned),
            revoked_at: at,
            expires_at: until,
            reason: None,
        }
    }

    #[test]
    fn a_token_is_refused_by_jti_and_a_service_up_to_its_revocation_time() {
        let set = RevocationSet::new(
            &[
                revocation(Some("leaked"), None, 100, 1_000),
                revocation(None, Some("orders"), 500, 1_000),
                revocation(Some("forgotten"), None, 100, 150),
            ],
            200,
        );
        assert_eq!(set.len(), 2, "an expired revocation is not kept");
        assert!(set.refuses(&identity(Some("leaked"), None, Some(1))));
        assert!(!set.refuses(&identity(Some("forgotten"), None, Some(1))));
        assert!(set.refuses(&identity(Some("x"), Some("orders"), Some(500))));
        assert!(set.refuses(&identity(Some("x"), Some("orders"), None)));
        assert!(
            !set.refuses(&identity(Some("x"), Some("orders"), Some(501))),
            "a token issued after the revocation is the rotation's new token"
        );
        assert!(!set.refuses(&identity(Some("x"), Some("billing"), Some(1))));
        assert!(!set.refuses(&identity(None, None, None)));
    }
}

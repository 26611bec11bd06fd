//! Which service tokens are in use: when each one (by `jti`) was last seen, kept in the state
//! store rather than in metric labels (whose set must stay bounded), so `tollgate token usage`
//! tells an operator which tokens are still presented before rotating or revoking them.
//!
//! A request records its token in memory (a map lookup under a short lock, nothing when the
//! token was already seen this second); a background task writes what changed to the store
//! every `[state] usage_flush_interval` and once more when the gateway stops. Only service
//! tokens are tracked: access tokens are short-lived and minted per login, so tracking them
//! would grow the store with every sign-in while telling nobody anything.

pub mod report;
mod store;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use crate::refresher::Refresher;
use crate::revocation::store::StoreError;
use tollgate_config::StateConfig;
use tollgate_http::BoxFuture;
use tollgate_http::identity::Identity;

pub use report::{ServiceUsage, report};

/// Most tokens one gateway tracks between two writes: bounds memory whatever the issuers mint.
pub const MAX_TRACKED: usize = 10_000;

/// One token's use, as stored (keyed by its `jti`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUse {
    /// The token's `service` claim.
    pub service: String,
    /// The issuer that signed it.
    pub issuer: String,
    /// Last time it was presented (and valid), seconds since the epoch.
    pub last_seen: u64,
    /// Its `exp`: the entry is forgotten after that.
    pub expires_at: u64,
}

#[derive(Debug)]
struct Entry {
    seen: TokenUse,
    /// Changed since the last write.
    dirty: bool,
}

/// The usage log a gateway fills in and writes to its state store.
pub struct UsageLog {
    state: Option<StateConfig>,
    flush_interval: Duration,
    /// By `jti`, looked up on every request with a service token: foldhash (seeded per process;
    /// the keys come from verified tokens) hashes one in ~90 instructions, SipHash in ~250.
    tokens: Mutex<HashMap<Box<str>, Entry, foldhash::quality::RandomState>>,
    refresher: Refresher,
}

impl std::fmt::Debug for UsageLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsageLog")
            .field("store", &self.state.as_ref().map(StateConfig::describe))
            .field("tracked", &self.tracked())
            .finish()
    }
}

impl UsageLog {
    /// A log written to `state`'s store every `flush_interval` once started.
    pub fn new(state: &StateConfig, flush_interval: Duration) -> Arc<Self> {
        Arc::new(Self {
            state: Some(state.clone()),
            flush_interval,
            tokens: Mutex::new(HashMap::default()),
            refresher: Refresher::new(),
        })
    }

    /// A log that is never written anywhere (in-process tools and tests).
    pub fn none() -> Arc<Self> {
        Arc::new(Self {
            state: None,
            flush_interval: Duration::MAX,
            tokens: Mutex::new(HashMap::default()),
            refresher: Refresher::never(),
        })
    }

    /// Whether this log writes to `state` with `flush_interval` (a reload that keeps both keeps
    /// the log and what it has not written yet).
    pub fn serves(&self, state: &StateConfig, flush_interval: Duration) -> bool {
        self.state.as_ref() == Some(state) && self.flush_interval == flush_interval
    }

    /// How many tokens are held in memory.
    pub fn tracked(&self) -> usize {
        self.tokens.lock().map_or(0, |t| t.len())
    }

    /// Records that `identity`'s token was presented at `now` (seconds). Tokens without a
    /// `jti` or a service are not tracked.
    pub fn seen(&self, identity: &Identity, now: u64) {
        let (Some(jti), Some(service)) = (&identity.token_id, &identity.service) else {
            return;
        };
        let Ok(mut tokens) = self.tokens.lock() else {
            return;
        };
        if let Some(entry) = tokens.get_mut(jti.as_str()) {
            if entry.seen.last_seen < now {
                entry.seen.last_seen = now;
                entry.dirty = true;
            }
            return;
        }
        if tokens.len() >= MAX_TRACKED {
            return;
        }
        tokens.insert(
            jti.as_str().into(),
            Entry {
                seen: TokenUse {
                    service: service.clone(),
                    issuer: identity.issuer.clone(),
                    last_seen: now,
                    expires_at: identity.expires_at,
                },
                dirty: true,
            },
        );
    }

    /// Writes what changed since the last write; returns how many tokens were written. Tokens
    /// past their expiry are dropped from memory; on failure the changes are kept for the next
    /// attempt.
    pub async fn flush(&self, now: u64) -> Result<usize, StoreError> {
        let Some(state) = &self.state else {
            return Ok(0);
        };
        let changed: Vec<(String, TokenUse)> = match self.tokens.lock() {
            Ok(mut tokens) => {
                tokens.retain(|_, e| e.seen.expires_at > now);
                tokens
                    .iter_mut()
                    .filter(|(_, e)| e.dirty)
                    .map(|(jti, e)| {
                        e.dirty = false;
                        (jti.to_string(), e.seen.clone())
                    })
                    .collect()
            }
            Err(_) => return Ok(0),
        };
        if changed.is_empty() {
            return Ok(0);
        }
        let written = changed.len();
        if let Err(e) = store::merge(state, &changed, now).await {
            if let Ok(mut tokens) = self.tokens.lock() {
                for (jti, _) in &changed {
                    if let Some(entry) = tokens.get_mut(jti.as_str()) {
                        entry.dirty = true;
                    }
                }
            }
            return Err(e);
        }
        Ok(written)
    }

    /// Writes every `flush_interval` until the last reference is dropped.
    pub fn start(self: &Arc<Self>) {
        let interval = self.flush_interval;
        self.refresher
            .start(self, interval, move |this| async move {
                match this.flush(crate::clock::now()).await {
                    Ok(0) => {}
                    Ok(written) => debug!(written, "token usage written"),
                    Err(e) => warn!(error = %e, "token usage not written; retrying later"),
                }
                interval
            });
    }
}

/// Every token use in `state`'s store that has not expired at `now`, by `jti`.
#[inline(never)]
pub fn read<'a>(
    state: &'a StateConfig,
    now: u64,
) -> BoxFuture<'a, Result<Vec<(String, TokenUse)>, StoreError>> {
    Box::pin(async move {
        let mut all = store::read(state, now).await?;
        all.retain(|(_, u)| u.expires_at > now);
        all.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(all)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_http::identity::TokenKind;

    fn service_token(jti: &str, service: &str, expires_at: u64) -> Identity {
        Identity {
            kind: TokenKind::Service,
            issuer: "internal".into(),
            subject: service.into(),
            role: None,
            service: Some(service.into()),
            expires_at,
            token_id: Some(jti.into()),
            issued_at: Some(1),
            headers: Vec::new(),
            grants: Default::default(),
        }
    }

    #[tokio::test]
    async fn the_file_store_keeps_the_latest_sighting_of_each_token_until_it_expires() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateConfig::File {
            path: dir.path().join("revocations.json"),
        };
        let first = UsageLog::new(&state, Duration::from_secs(60));
        let second = UsageLog::new(&state, Duration::from_secs(60));
        first.seen(&service_token("a", "orders", 1_000), 100);
        first.seen(&service_token("b", "billing", 150), 100);
        first.seen(&service_token("a", "orders", 1_000), 120);
        second.seen(&service_token("a", "orders", 1_000), 110);
        assert_eq!(first.flush(130).await.unwrap(), 2);
        assert_eq!(first.flush(130).await.unwrap(), 0, "nothing changed since");
        // Another gateway's older sighting does not move the time back.
        assert_eq!(second.flush(130).await.unwrap(), 1);
        let stored = read(&state, 130).await.unwrap();
        let times: Vec<_> = stored
            .iter()
            .map(|(jti, u)| (jti.as_str(), u.last_seen))
            .collect();
        assert_eq!(times, [("a", 120), ("b", 100)]);
        assert_eq!(
            read(&state, 200).await.unwrap().len(),
            1,
            "an expired token is not reported"
        );
        let untracked = Identity {
            token_id: None,
            ..service_token("x", "orders", 1_000)
        };
        first.seen(&untracked, 140);
        assert_eq!(first.tracked(), 2, "a token without a jti is not tracked");
    }
}

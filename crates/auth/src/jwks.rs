//! A remote JWKS key set: fetched at startup without blocking, refreshed periodically and on
//! unknown key ids (single flight, rate-limited), the last good set kept on failure.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use http::{Request, StatusCode};
use http_body_util::Full;
use jsonwebtoken::jwk::Jwk;
use tokio::sync::Mutex;
use tracing::{info, warn};

use super::keys::{self, VerifyKey};
use crate::discovery;
use crate::events::AuthEvents;
use tollgate_client::fetch::{FetchClient, FetchError, fetch, fetch_client};
use tollgate_config::JwksConfig;
use tollgate_state::refresher::Refresher;

/// Largest discovery document accepted.
const MAX_DISCOVERY_BYTES: usize = 256 * 1024;
/// Largest JWKS document accepted.
const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// After a failed fetch, the periodic refresher retries this much sooner than its period.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);

/// Why a JWKS fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// Connect, TLS or protocol failure.
    #[error("jwks {url}: fetch failed: {source}")]
    Fetch {
        /// Document URL.
        url: String,
        /// Cause.
        #[source]
        source: tollgate_http::BoxError,
    },
    /// No answer within the timeout.
    #[error("jwks {url}: timed out")]
    Timeout {
        /// Document URL.
        url: String,
    },
    /// A non-200 answer.
    #[error("jwks {url}: status {status}")]
    Status {
        /// Document URL.
        url: String,
        /// The status.
        status: StatusCode,
    },
    /// Not a JWKS document, or no usable key in it.
    #[error("jwks {url}: invalid document: {reason}")]
    Invalid {
        /// Document URL.
        url: String,
        /// What was wrong.
        reason: String,
    },
}

/// One issuer's remote key set.
pub struct JwksSource {
    issuer: String,
    config: JwksConfig,
    client: FetchClient,
    keys: ArcSwap<Vec<VerifyKey>>,
    generation: AtomicU64,
    /// Held for the duration of a fetch: concurrent refreshes wait for it instead of fetching.
    last_fetch: Mutex<Option<Instant>>,
    events: Arc<dyn AuthEvents>,
    refresher: Refresher,
    /// What discovery found last time it succeeded; kept when a later fetch fails.
    discovered: arc_swap::ArcSwapOption<discovery::Discovered>,
}

impl std::fmt::Debug for JwksSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksSource")
            .field("issuer", &self.issuer)
            .field("url", &self.config.url)
            .field("keys", &self.keys.load().len())
            .finish()
    }
}

impl JwksSource {
    /// A source with no keys yet; call [`JwksSource::spawn_refresher`] to fill it.
    pub fn new(issuer: String, config: JwksConfig, events: Arc<dyn AuthEvents>) -> Self {
        Self {
            issuer,
            client: fetch_client(&config.roots),
            config,
            keys: ArcSwap::from_pointee(Vec::new()),
            generation: AtomicU64::new(0),
            last_fetch: Mutex::new(None),
            events,
            refresher: Refresher::new(),
            discovered: arc_swap::ArcSwapOption::empty(),
        }
    }

    /// The current keys.
    pub fn keys(&self) -> arc_swap::Guard<Arc<Vec<VerifyKey>>> {
        self.keys.load()
    }

    /// Bumped whenever the key set changes; cached verifications from older generations are
    /// not trusted.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Fetches now at startup and then every refresh period, until the source is dropped.
    pub fn spawn_refresher(self: &Arc<Self>) {
        self.refresher
            .start(self, Duration::ZERO, |source| async move {
                match source.refresh(false).await {
                    Ok(()) => source.config.refresh,
                    Err(()) => RETRY_AFTER_FAILURE.min(source.config.refresh),
                }
            });
    }

    /// Refetches the key set after a token named an unknown `kid`; waits for a fetch already
    /// in flight instead of starting another, and fetches at most once per minimum interval.
    pub async fn refresh_for_unknown_kid(&self) {
        let _ = self.refresh(true).await;
    }

    async fn refresh(&self, rate_limited: bool) -> Result<(), ()> {
        let generation_before = self.generation();
        let mut last = self.last_fetch.lock().await;
        if rate_limited {
            if self.generation() != generation_before {
                return Ok(()); // another caller fetched while we waited
            }
            if last.is_some_and(|t| t.elapsed() < self.config.min_refresh_interval) {
                return Ok(());
            }
        }
        *last = Some(Instant::now());
        let result = self.fetch().await;
        self.events.jwks_fetched(&self.issuer, result.is_ok());
        match result {
            Ok(keys) => {
                let count = keys.len();
                self.keys.store(Arc::new(keys));
                self.generation.fetch_add(1, Ordering::AcqRel);
                info!(issuer = %self.issuer, keys = count, "jwks refreshed");
                Ok(())
            }
            Err(e) => {
                warn!(issuer = %self.issuer, error = %e, "jwks refresh failed; keeping the last good keys");
                Err(())
            }
        }
    }

    async fn fetch(&self) -> Result<Vec<VerifyKey>, JwksError> {
        let jwks_uri = match &self.config.discovery {
            None => self.config.url.clone(),
            Some(issuer) => {
                let body = self.download(&self.config.url, MAX_DISCOVERY_BYTES).await?;
                let found = discovery::read(&body, issuer, &self.config.url).map_err(|reason| {
                    JwksError::Invalid {
                        url: self.config.url.to_string(),
                        reason,
                    }
                })?;
                let jwks_uri = found.jwks_uri.clone();
                self.discovered.store(Some(Arc::new(found)));
                jwks_uri
            }
        };
        let body = self.download(&jwks_uri, MAX_JWKS_BYTES).await?;
        self.parse(&body)
    }

    /// Whether the provider's discovery document (if any) lists `alg`: the configured
    /// allow-list is narrowed to what the provider says it signs with.
    pub fn allows_algorithm(&self, alg: jsonwebtoken::Algorithm) -> bool {
        match self.discovered.load().as_deref() {
            Some(discovery::Discovered {
                algorithms: Some(listed),
                ..
            }) => listed.contains(&alg),
            _ => true,
        }
    }

    /// The last good discovery document's findings (`None` without discovery, or before the
    /// first good fetch).
    pub fn discovered(&self) -> Option<Arc<discovery::Discovered>> {
        self.discovered.load_full()
    }

    /// The key set document, within the configured timeout and size.
    async fn download(&self, from: &http::Uri, max: usize) -> Result<bytes::Bytes, JwksError> {
        let url = || from.to_string();
        let request = Request::get(from.clone())
            .header(http::header::ACCEPT, "application/json")
            .body(Full::default())
            .map_err(|e| JwksError::Fetch {
                url: url(),
                source: Box::new(e),
            })?;
        let answer = fetch(&self.client, request, self.config.timeout, max).await;
        match answer {
            Ok((head, body)) if head.status == StatusCode::OK => Ok(body),
            Ok((head, _)) => Err(JwksError::Status {
                url: url(),
                status: head.status,
            }),
            Err(FetchError::Timeout(_)) => Err(JwksError::Timeout { url: url() }),
            Err(e) => Err(JwksError::Fetch {
                url: url(),
                source: Box::new(e),
            }),
        }
    }

    /// The usable keys of a key set document.
    fn parse(&self, body: &[u8]) -> Result<Vec<VerifyKey>, JwksError> {
        let url = self.config.url.to_string();
        // Parsed entry by entry: one key of a type we do not know must not hide the others.
        #[derive(serde::Deserialize)]
        struct Document {
            keys: Vec<serde_json::Value>,
        }
        let document: Document = serde_json::from_slice(body).map_err(|e| JwksError::Invalid {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        // One refused key (weak, for encryption, wrong curve) is skipped with a warning and
        // counted; it must not blank the set for the keys beside it.
        let mut keys = Vec::with_capacity(document.keys.len());
        for value in document.keys {
            let kid = value.get("kid").and_then(|k| k.as_str()).map(str::to_owned);
            let checked = serde_json::from_value::<Jwk>(value)
                .map_err(|e| keys::KeyRefusal::Malformed(e.to_string()))
                .and_then(|jwk| keys::from_jwk(&jwk));
            match checked {
                Ok(key) => keys.push(key),
                Err(refusal) => {
                    warn!(issuer = %self.issuer, kid = kid.as_deref().unwrap_or("-"), reason = %refusal, "jwks key skipped");
                    self.events.jwks_key_refused(&self.issuer, refusal.reason());
                }
            }
        }
        if keys.is_empty() {
            return Err(JwksError::Invalid {
                url,
                reason: "no usable key".to_owned(),
            });
        }
        Ok(keys)
    }
}

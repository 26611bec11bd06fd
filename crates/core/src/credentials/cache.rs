//! A provider's token cache: single-flight login, proactive background refresh, bounded
//! retries with backoff and jitter, and a brief memory of failure.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwapOption;
use http::HeaderValue;
use tokio::sync::Mutex;
use tracing::{debug, error, info, warn};

use super::events::CredentialEvents;
use super::provider::{self, LoginClient, ProviderError};
use tollgate_config::ProviderConfig;
use tollgate_state::refresher::Refresher;

/// First retry delay; doubled per retry, with jitter, capped at [`MAX_BACKOFF`].
const BASE_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Longest a vendor token is cached before it is fetched anew.
const MAX_CACHED_LIFETIME: Duration = Duration::from_secs(365 * 86_400);

/// No token could be had; the reason is safe to show clients.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{reason}")]
pub struct CredentialError {
    /// What the last attempt said.
    pub reason: String,
}

/// A cached token.
struct Token {
    header: HeaderValue,
    expires_at: Instant,
    expires_at_wall: SystemTime,
    refresh_at: Instant,
    generation: u64,
}

struct Failure {
    at: Instant,
    reason: String,
}

/// What a request does after the vendor refused the token it carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterRejection {
    /// Ask for a token again: a login was allowed, or another one already replaced it.
    Retry,
    /// A login for a rejection was made within `relogin_interval`: return the vendor's answer.
    GiveUp,
}

/// What `/readyz` reports about a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderState {
    /// No token yet and no failure.
    Empty,
    /// A valid token, expiring at this wall-clock time.
    Valid(SystemTime),
    /// The last attempt failed.
    Failed(String),
}

/// One provider's cached bearer token.
pub struct TokenCache {
    config: ProviderConfig,
    client: LoginClient,
    token: ArcSwapOption<Token>,
    failure: ArcSwapOption<Failure>,
    /// Held while a login is in flight: concurrent callers wait for its result.
    flight: Mutex<()>,
    background: AtomicBool,
    /// When the vendor last caused a re-login, to allow one per `relogin_interval`.
    last_rejection: std::sync::Mutex<Option<Instant>>,
    /// The next login happens because the vendor refused the token (for the metric).
    rejected: AtomicBool,
    generation: AtomicU64,
    events: Arc<dyn CredentialEvents>,
    refresher: Refresher,
    /// The fleet's shared token (Redis state store), and the store it came from.
    shared: Option<(
        Arc<tollgate_state::vendor_token::SharedTokens>,
        tollgate_config::StateConfig,
    )>,
    /// The token the vendor last refused, never to be taken from the fleet again.
    refused: std::sync::Mutex<Option<String>>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("provider", &self.config.name)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl TokenCache {
    /// An empty cache for `config`.
    pub fn new(config: ProviderConfig, events: Arc<dyn CredentialEvents>) -> Arc<Self> {
        Arc::new(Self {
            client: tollgate_client::fetch::fetch_client(&config.roots),
            config,
            token: ArcSwapOption::empty(),
            failure: ArcSwapOption::empty(),
            flight: Mutex::new(()),
            background: AtomicBool::new(false),
            last_rejection: std::sync::Mutex::new(None),
            rejected: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            events,
            refresher: Refresher::new(),
            shared: None,
            refused: std::sync::Mutex::new(None),
        })
    }

    /// Shares tokens with the fleet through `shared` (built for `state`), when there is one.
    /// Called once, on a new cache.
    pub fn sharing(
        self: Arc<Self>,
        state: &tollgate_config::StateConfig,
        shared: Option<tollgate_state::vendor_token::SharedTokens>,
    ) -> Arc<Self> {
        match (Arc::try_unwrap(self), shared) {
            (Ok(mut cache), Some(shared)) => {
                cache.shared = Some((Arc::new(shared), state.clone()));
                Arc::new(cache)
            }
            (Ok(cache), None) => Arc::new(cache),
            (Err(cache), _) => cache,
        }
    }

    /// Whether this cache shares its token through `state` (or shares nothing while `state`
    /// is not a shared store).
    pub fn shares_through(&self, state: &tollgate_config::StateConfig) -> bool {
        match &self.shared {
            Some((_, current)) => current == state,
            None => tollgate_state::vendor_token::SharedTokens::from_state(state).is_none(),
        }
    }

    /// How long a request on a route with `route_timeout` waits for a token: the route's
    /// timeout, or the provider's `acquire_timeout` when smaller.
    pub fn wait_within(&self, route_timeout: Duration) -> Duration {
        route_timeout.min(self.config.acquire_timeout)
    }

    /// The provider's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The provider's settings.
    pub fn config(&self) -> &ProviderConfig {
        &self.config
    }

    /// Current state, for readiness.
    pub fn state(&self) -> ProviderState {
        if let Some(token) = self.token.load().as_ref()
            && Instant::now() < token.expires_at
        {
            return ProviderState::Valid(token.expires_at_wall);
        }
        match self.failure.load().as_ref() {
            Some(f) => ProviderState::Failed(f.reason.clone()),
            None => ProviderState::Empty,
        }
    }

    /// The `Authorization` value to attach: the cached token while it is valid (starting a
    /// background refresh once it is within `refresh_before` of expiry), else a fresh login,
    /// waited for at most `wait` (the smaller of the route's timeout and the provider's
    /// `acquire_timeout`). A login outlives a caller that stopped waiting: it runs in its own
    /// task, so the next caller finds its token.
    pub async fn bearer(self: &Arc<Self>, wait: Duration) -> Result<HeaderValue, CredentialError> {
        let now = Instant::now();
        let observed = match self.token.load().as_ref() {
            Some(token) if now < token.expires_at => {
                if now >= token.refresh_at {
                    self.refresh_in_background();
                }
                debug!(provider = %self.config.name, "using cached upstream token");
                return Ok(token.header.clone());
            }
            Some(token) => Some(token.generation),
            None => None,
        };
        let this = self.clone();
        let login = tokio::spawn(async move { this.refresh(observed).await });
        match tokio::time::timeout(wait, login).await {
            Ok(Ok(result)) => result.map(|t| t.header.clone()),
            Ok(Err(_)) => Err(CredentialError {
                reason: "the login task failed".to_owned(),
            }),
            Err(_) => Err(CredentialError {
                reason: format!(
                    "no token within {}; the login continues in the background",
                    humantime::format_duration(wait)
                ),
            }),
        }
    }

    /// The vendor refused `refused`. Drops it and allows one new login, at most one per
    /// `relogin_interval`: otherwise any caller could drive the vendor's auth API into rate
    /// limits or lockout, and on single-session vendors each login would revoke the token
    /// every other request is using. A token that a login already replaced is retried.
    pub fn reject(&self, refused: &HeaderValue) -> AfterRejection {
        let current = self.token.load();
        if current.as_ref().is_none_or(|t| t.header != refused) {
            return AfterRejection::Retry;
        }
        {
            let mut last = self
                .last_rejection
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|at| at.elapsed() < self.config.relogin_interval) {
                self.events.login_suppressed(&self.config.name);
                warn!(provider = %self.config.name, "vendor refused the token again within relogin_interval; no new login");
                return AfterRejection::GiveUp;
            }
            *last = Some(Instant::now());
        }
        self.rejected.store(true, Ordering::Release);
        if let Some(refused) = refused
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
        {
            *self.refused.lock().unwrap_or_else(|e| e.into_inner()) = Some(refused.to_owned());
            if let Some((shared, _)) = &self.shared {
                // Once for the fleet: deleted only while it is still the refused token.
                let (shared, name, refused) =
                    (shared.clone(), self.config.name.clone(), refused.to_owned());
                tokio::spawn(async move { shared.invalidate(&name, &refused).await });
            }
        }
        self.token.compare_and_swap(&current, None);
        info!(provider = %self.config.name, "vendor refused the cached token; dropped it");
        AfterRejection::Retry
    }

    /// Starts a refresh off the request path unless one is already running.
    pub fn refresh_in_background(self: &Arc<Self>) {
        if self.background.swap(true, Ordering::AcqRel) {
            return;
        }
        let observed = self.token.load().as_ref().map(|t| t.generation);
        let this = self.clone();
        tokio::spawn(async move {
            let _ = this.refresh(observed).await;
            this.background.store(false, Ordering::Release);
        });
    }

    /// Keeps the token fresh without waiting for requests: wakes at each refresh point.
    /// Stops when the cache is dropped.
    pub fn spawn_refresher(self: &Arc<Self>) {
        // A required provider logs in at once; the others when their first request needs it.
        let mut eager = self.config.required;
        self.refresher.start(self, Duration::ZERO, move |this| {
            let login_now = std::mem::take(&mut eager);
            async move {
                if login_now {
                    let _ = this.refresh(None).await;
                } else if this.refresh_due() {
                    this.refresh_in_background();
                }
                this.next_wake()
            }
        });
    }

    fn refresh_due(&self) -> bool {
        let now = Instant::now();
        self.token
            .load()
            .as_ref()
            .is_some_and(|t| now >= t.refresh_at)
    }

    fn next_wake(&self) -> Duration {
        let now = Instant::now();
        match self.token.load().as_ref() {
            Some(t) if t.refresh_at > now => t.refresh_at - now,
            // In the refresh window (a previous refresh failed): retry after the cooldown.
            Some(t) if t.expires_at > now => {
                self.config.failure_cooldown.max(Duration::from_millis(200))
            }
            _ => Duration::from_secs(1),
        }
    }

    /// Single flight: one login at a time; callers that waited reuse its result.
    async fn refresh(&self, observed: Option<u64>) -> Result<Arc<Token>, CredentialError> {
        let _flight = self.flight.lock().await;
        if let Some(token) = self.token.load_full()
            && Some(token.generation) != observed
            && Instant::now() < token.refresh_at
        {
            return Ok(token); // another caller logged in while this one waited
        }
        if let Some(failure) = self.failure.load().as_ref()
            && failure.at.elapsed() < self.config.failure_cooldown
        {
            return Err(CredentialError {
                reason: failure.reason.clone(),
            });
        }
        let renewing = self.token.load().is_some();
        let reason = if self.rejected.swap(false, Ordering::AcqRel) {
            "rejected_by_upstream"
        } else if renewing {
            "refresh"
        } else {
            "initial"
        };
        self.events.login_started(&self.config.name, reason);
        info!(provider = %self.config.name, reason, "fetching upstream token");
        match self.obtain().await {
            Ok(fetched) => {
                let token = self.store(fetched);
                self.failure.store(None);
                let expires_in_secs = token
                    .expires_at
                    .saturating_duration_since(Instant::now())
                    .as_secs();
                if renewing {
                    info!(provider = %self.config.name, expires_in_secs, "refreshed upstream token");
                } else {
                    info!(provider = %self.config.name, expires_in_secs, "fetched upstream token");
                }
                Ok(token)
            }
            Err(e) => {
                let reason = e.to_string();
                self.failure.store(Some(Arc::new(Failure {
                    at: Instant::now(),
                    reason: reason.clone(),
                })));
                Err(CredentialError { reason })
            }
        }
    }

    fn store(&self, fetched: provider::Fetched) -> Arc<Token> {
        let lifetime = fetched
            .expires_at
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        // Kept at most a year between logins, whatever the vendor says: a later refresh costs
        // nothing, and the monotonic clock never has to hold a far-off instant.
        let lifetime = lifetime.min(MAX_CACHED_LIFETIME);
        let expires_at = Instant::now() + lifetime;
        // Refresh `refresh_before` ahead, but not before half the lifetime has passed, so a
        // short-lived token is not refreshed continuously.
        let lead = self.config.refresh_before.min(lifetime / 2);
        let mut header = HeaderValue::from_str(&format!("Bearer {}", fetched.token))
            .unwrap_or_else(|_| HeaderValue::from_static("Bearer invalid"));
        header.set_sensitive(true);
        let token = Arc::new(Token {
            header,
            expires_at,
            expires_at_wall: fetched.expires_at,
            refresh_at: expires_at - lead,
            generation: self.generation.fetch_add(1, Ordering::AcqRel) + 1,
        });
        self.token.store(Some(token.clone()));
        self.events
            .token_obtained(&self.config.name, token.expires_at_wall);
        token
    }

    /// A new token: the fleet's, when another replica already has a newer one; else a login,
    /// made by one replica of the fleet at a time (the lock's lease bounds a dead holder).
    async fn obtain(&self) -> Result<provider::Fetched, ProviderError> {
        let Some((shared, _)) = &self.shared else {
            return self.login_with_retries().await;
        };
        let name = &self.config.name;
        let current = self.token.load_full().map(|t| t.header.clone());
        let refused = self
            .refused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let usable = |fetched: &provider::Fetched| {
            let header = format!("Bearer {}", fetched.token);
            Some(&fetched.token) != refused.as_ref()
                && current
                    .as_ref()
                    .is_none_or(|c| c.as_bytes() != header.as_bytes())
                && fetched.expires_at > SystemTime::now() + Duration::from_secs(1)
        };
        let lease = self.login_lease();
        let give_up = Instant::now() + lease;
        loop {
            match shared.get(name).await {
                Ok(Some(fetched)) if usable(&fetched) => {
                    info!(provider = %name, "using the upstream token another replica obtained");
                    return Ok(fetched);
                }
                Ok(_) => {}
                Err(e) => {
                    warn!(provider = %name, error = %e, "state store unreachable; logging in without the fleet");
                    return self.login_with_retries().await;
                }
            }
            match shared.try_lock(name, lease).await {
                Ok(true) => {
                    let result = self.login_with_retries().await;
                    if let Ok(fetched) = &result
                        && let Err(e) = shared.put(name, fetched).await
                    {
                        warn!(provider = %name, error = %e, "upstream token not shared with the fleet");
                    }
                    shared.unlock(name).await;
                    return result;
                }
                Ok(false) if Instant::now() < give_up => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                // The holder outlived its lease without storing a token, or Redis failed.
                _ => return self.login_with_retries().await,
            }
        }
    }

    /// How long one replica may hold the fleet's login lock: every attempt's timeout and the
    /// backoffs between them, plus a margin.
    fn login_lease(&self) -> Duration {
        let attempts = self.config.max_retries.saturating_add(1);
        self.config
            .timeout
            .saturating_mul(attempts)
            .saturating_add(MAX_BACKOFF.saturating_mul(self.config.max_retries))
            .saturating_add(Duration::from_secs(2))
    }

    /// Logs in, trying again (with backoff) up to `max_retries` times what can succeed on a
    /// retry. Attempts are counted from 1 in the log.
    async fn login_with_retries(&self) -> Result<provider::Fetched, ProviderError> {
        let mut attempt = 1u32;
        loop {
            let started = Instant::now();
            let result = provider::fetch_once(&self.client, &self.config).await;
            self.events
                .login_finished(&self.config.name, result.is_ok(), started.elapsed());
            match result {
                Ok(fetched) => return Ok(fetched),
                Err(e) => {
                    match &e {
                        ProviderError::Status(status) => {
                            error!(provider = %self.config.name, status = status.as_u16(), attempt, "auth API error")
                        }
                        other => {
                            error!(provider = %self.config.name, error = %other, attempt, "auth API error")
                        }
                    }
                    if !e.retryable() {
                        warn!(provider = %self.config.name, attempts = attempt, "the auth API refused the login; not retrying it");
                        return Err(e);
                    }
                    if attempt > self.config.max_retries {
                        warn!(provider = %self.config.name, attempts = attempt, "giving up on upstream token for now");
                        return Err(e);
                    }
                    tokio::time::sleep(backoff(attempt - 1)).await;
                    attempt += 1;
                }
            }
        }
    }
}

/// Exponential backoff with full jitter (cheap randomness from the clock is enough here).
fn backoff(attempt: u32) -> Duration {
    let ceiling = BASE_BACKOFF
        .saturating_mul(1 << attempt.min(10))
        .min(MAX_BACKOFF);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let fraction = 0.5 + f64::from(nanos % 1000) / 2000.0;
    ceiling.mul_f64(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(0) <= BASE_BACKOFF);
        assert!(backoff(0) >= BASE_BACKOFF / 2);
        assert!(backoff(3) >= BASE_BACKOFF * 4);
        assert!(backoff(20) <= MAX_BACKOFF);
    }
}

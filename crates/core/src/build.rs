//! Building the [`Core`] for a validated config (keeping what a reload may keep) and what the
//! rest of the gateway reads from it.

use std::sync::Arc;

use crate::credentials::Providers;
use crate::credentials::events::CredentialEvents;
use crate::decide::{Core, CoreEvents};
use crate::routing::RouteTable;
use tollgate_auth::Verifier;
use tollgate_config::Config;
use tollgate_http::forwarded::TrustedProxies;
use tollgate_state::ratelimit::RateLimiter;

impl Core {
    /// Builds the core for a validated config, keeping caches of unchanged issuers and
    /// providers from `previous`. `events` hears the verifier's, the revocation list's and the
    /// providers' background events (never a request's: those are in the [`Trace`]).
    pub fn new(config: &Config, events: Arc<dyn CoreEvents>, previous: Option<&Core>) -> Self {
        let limiter = match previous.map(|p| &p.limiter) {
            Some(kept) if kept.serves(config.limits.rate_limit_keys, &config.state) => kept.clone(),
            _ => Arc::new(RateLimiter::new(
                config.limits.rate_limit_keys,
                &config.state,
                events.clone(),
            )),
        };
        let limit_places = config
            .routes
            .iter()
            .map(|r| {
                let place = |l: &tollgate_config::RateLimit| limiter.place(&r.name, &l.name);
                r.rate_limits.iter().map(place).collect()
            })
            .collect();
        Self {
            routes: RouteTable::new(&config.routes),
            max_uri_bytes: config.limits.max_uri_bytes,
            trusted_proxies: config.trusted_proxies.clone(),
            verifier: Verifier::reusing(
                &config.issuers,
                &config.identity,
                // The list (and its watcher) survives a reload that keeps its path.
                match previous.map(|p| p.verifier.revocations()) {
                    Some(kept) if kept.serves(&config.state) => kept.clone(),
                    _ => tollgate_state::revocation::Revocations::from_config(
                        &config.state,
                        events.clone(),
                    ),
                },
                events.clone(),
                previous.map(|p| &p.verifier),
            ),
            providers: Providers::reusing(
                &config.providers,
                &config.state,
                &(events.clone() as Arc<dyn CredentialEvents>),
                previous.map(|p| &p.providers),
            ),
            assertion: config.assertion.clone(),
            limiter,
            limit_places,
            timing: config.telemetry.is_some(),
        }
    }

    /// Starts the background work: JWKS refreshers, the revocation watcher and vendor logins.
    pub fn start(&self) {
        self.verifier.start();
        self.providers.start();
    }

    /// The peers whose proxy headers are believed.
    pub fn trusted_proxies(&self) -> &TrustedProxies {
        &self.trusted_proxies
    }

    /// The route table.
    pub fn routes(&self) -> &RouteTable {
        &self.routes
    }

    /// The token verifier.
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// The upstream credential providers.
    pub fn providers(&self) -> &Providers {
        &self.providers
    }

    /// The rate limits' store.
    pub fn limiter(&self) -> &RateLimiter {
        &self.limiter
    }
}

//! Upstream credentials: on vendor routes, the caller's token is replaced by the vendor's
//! bearer token, obtained by a provider and cached until shortly before it expires.

pub mod cache;
pub mod events;
pub mod provider;
use tollgate_state::vendor_token as shared;

use std::sync::Arc;

use tollgate_config::ProviderConfig;

pub use cache::{AfterRejection, CredentialError, ProviderState, TokenCache};

/// Every configured provider's cache, indexed like [`tollgate_config::Config::providers`].
#[derive(Debug, Default, Clone)]
pub struct Providers {
    caches: Vec<Arc<TokenCache>>,
}

impl Providers {
    /// Caches for the configured providers; those whose settings and secrets are unchanged
    /// from `previous` keep their cache and token.
    pub fn reusing(
        configs: &[ProviderConfig],
        state: &tollgate_config::StateConfig,
        events: &Arc<dyn events::CredentialEvents>,
        previous: Option<&Providers>,
    ) -> Self {
        let caches = configs
            .iter()
            .map(|config| {
                previous
                    .and_then(|p| {
                        p.caches.iter().find(|c| {
                            c.config().fingerprint == config.fingerprint && c.shares_through(state)
                        })
                    })
                    .cloned()
                    .unwrap_or_else(|| {
                        TokenCache::new(config.clone(), events.clone())
                            .sharing(state, shared::SharedTokens::from_state(state))
                    })
            })
            .collect();
        Self { caches }
    }

    /// Starts each provider's background refresher (and the first login of required ones).
    pub fn start(&self) {
        for cache in &self.caches {
            cache.spawn_refresher();
        }
    }

    /// The cache at `index`.
    pub fn get(&self, index: usize) -> Option<&Arc<TokenCache>> {
        self.caches.get(index)
    }

    /// All caches.
    pub fn all(&self) -> &[Arc<TokenCache>] {
        &self.caches
    }
}

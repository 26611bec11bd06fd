//! Built without the `redis` feature: a Redis `[state]` is refused when a store is built from
//! it (never read as an empty list), and no `RedisStore` value can exist.

use super::Revocation;
use super::listing::Listing;
use super::store::StoreError;

/// No Redis store in this build: an enum without variants, so every method is unreachable.
#[derive(Debug, Clone)]
pub enum RedisStore {}

impl RedisStore {
    /// `None` for the file store; an error for a Redis one.
    pub fn for_state(state: &tollgate_config::StateConfig) -> Option<Result<Self, StoreError>> {
        match state {
            tollgate_config::StateConfig::File { .. } => None,
            tollgate_config::StateConfig::Redis { url, .. } => Some(Err(StoreError::Unavailable {
                store: url.clone(),
                reason: "this build has no Redis support (feature `redis` of tollgate-state)"
                    .to_owned(),
            })),
        }
    }

    /// Unreachable.
    pub fn url(&self) -> &str {
        match *self {}
    }

    /// Unreachable.
    pub async fn read(&self) -> Result<Listing, StoreError> {
        match *self {}
    }

    /// Unreachable.
    pub async fn add(&self, _: Revocation, _: u64) -> Result<Vec<Revocation>, StoreError> {
        match *self {}
    }

    /// Unreachable.
    pub async fn watch(
        &self,
        _apply: impl FnMut(Listing) -> bool,
        _up: impl FnMut(Option<&StoreError>),
    ) {
        match *self {}
    }
}

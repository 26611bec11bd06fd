//! An issuer's token introspection (RFC 7662): where opaque tokens are sent, and the client
//! credentials tollgate presents there.

use std::fmt;
use std::time::Duration;

use http::Uri;

use super::RawIssuer;
use crate::Invalid;
use crate::values::Secret;

/// How to ask an issuer about an opaque token.
#[derive(Clone)]
pub struct IntrospectionConfig {
    /// The introspection endpoint.
    pub url: Uri,
    /// tollgate's client id at the provider (HTTP Basic).
    pub client_id: String,
    /// Its client secret.
    pub client_secret: Secret,
    /// Longest time an answer is reused (never beyond the token's `exp`).
    pub cache: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
    /// The certificate authorities the endpoint is checked against.
    pub roots: crate::TrustRoots,
}

impl fmt::Debug for IntrospectionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntrospectionConfig")
            .field("url", &self.url)
            .field("client_id", &self.client_id)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

/// Default and longest reuse of an introspection answer: a revoked opaque token stays usable
/// at most this long.
const DEFAULT_CACHE: u64 = 60;
const MAX_CACHE: u64 = 3600;

/// Validates `introspection_*`; `None` when `introspection_url` is not set (and then no other
/// `introspection_*` key may be).
pub fn load(raw: &RawIssuer) -> Result<Option<IntrospectionConfig>, Invalid> {
    let Some(url) = &raw.introspection_url else {
        let stray = raw.introspection_client_id.is_some()
            || raw.introspection_client_secret.is_some()
            || raw.introspection_client_secret_file.is_some()
            || raw.introspection_cache.is_some();
        return match stray {
            true => Err(Invalid::new(
                "introspection_url",
                "the other introspection_* settings need introspection_url",
            )),
            false => Ok(None),
        };
    };
    let uri = super::remote_url("introspection_url", url, raw.allow_insecure_http)?;
    let client_id = raw
        .introspection_client_id
        .clone()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            Invalid::new("introspection_client_id", "required with introspection_url")
        })?;
    let client_secret = match (
        &raw.introspection_client_secret,
        &raw.introspection_client_secret_file,
    ) {
        (Some(secret), None) if !secret.is_empty() => Secret::new(secret.as_bytes().to_vec()),
        (None, Some(path)) => Secret::new(
            super::key_material::read_secret_file(path)
                .map_err(|e| Invalid::new("introspection_client_secret_file", e))?,
        ),
        _ => {
            return Err(Invalid::new(
                "introspection_client_secret",
                "set one of introspection_client_secret or introspection_client_secret_file",
            ));
        }
    };
    let cache = raw
        .introspection_cache
        .map_or(Duration::from_secs(DEFAULT_CACHE), |d| d.0);
    if cache > Duration::from_secs(MAX_CACHE) {
        return Err(Invalid::new(
            "introspection_cache",
            "at most 1h: a revoked token stays usable as long as its answer is reused",
        ));
    }
    Ok(Some(IntrospectionConfig {
        url: uri,
        client_id,
        client_secret,
        cache,
        timeout: raw.jwks_timeout.map_or(Duration::from_secs(5), |d| d.0),
        roots: crate::TrustRoots::load(raw.jwks_ca_file.as_deref())
            .map_err(|e| Invalid::new("jwks_ca_file", e))?,
    }))
}

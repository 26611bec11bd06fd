//! An issuer's remote key set (`jwks_url`, or OIDC discovery): where and how often to fetch it.

use std::time::Duration;

use http::Uri;

use super::{RawIssuer, duration_or, remote_url, uses_discovery};
use crate::Invalid;

/// Where and how often to fetch a JWKS document.
#[derive(Debug, Clone)]
pub struct JwksConfig {
    /// Document URL.
    pub url: Uri,
    /// Refresh period.
    pub refresh: Duration,
    /// Per-fetch timeout.
    pub timeout: Duration,
    /// Least time between fetches triggered by unknown key ids.
    pub min_refresh_interval: Duration,
    /// The certificate authorities the JWKS server is checked against.
    pub roots: crate::TrustRoots,
    /// With OIDC discovery, `url` is the discovery document's, whose `issuer` must equal
    /// this exactly (the mix-up defence) and whose `jwks_uri` gives the key set.
    pub discovery: Option<String>,
}

/// Checks `jwks_url` (no credentials, http(s), encrypted unless allowed) and loads
/// `jwks_ca_file`, which means nothing without it.
pub(super) fn load_jwks(raw: &RawIssuer) -> Result<Option<JwksConfig>, Invalid> {
    let (key, url, discovery) = match (&raw.jwks_url, uses_discovery(raw)) {
        (Some(_), true) => {
            return Err(Invalid::new(
                "discovery",
                "set either jwks_url or discovery: discovery finds the key set itself",
            ));
        }
        (Some(url), false) => ("jwks_url", url.clone(), None),
        (None, true) => {
            let url = raw.discovery_url.clone().unwrap_or_else(|| {
                format!(
                    "{}/.well-known/openid-configuration",
                    raw.issuer.trim_end_matches('/')
                )
            });
            let key = if raw.discovery_url.is_some() {
                "discovery_url"
            } else {
                "issuer"
            };
            (key, url, Some(raw.issuer.clone()))
        }
        (None, false) if raw.jwks_ca_file.is_some() => {
            return Err(Invalid::new(
                "jwks_ca_file",
                "has no effect without jwks_url or discovery",
            ));
        }
        (None, false) => return Ok(None),
    };
    let uri = remote_url(key, &url, raw.allow_insecure_http)?;
    Ok(Some(JwksConfig {
        roots: crate::TrustRoots::load(raw.jwks_ca_file.as_deref())
            .map_err(|e| Invalid::new("jwks_ca_file", e))?,
        url: uri,
        refresh: duration_or(raw.jwks_refresh, 300),
        timeout: duration_or(raw.jwks_timeout, 5),
        min_refresh_interval: duration_or(raw.jwks_min_refresh_interval, 10),
        discovery,
    }))
}

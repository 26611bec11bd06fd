//! `[identity]`: the claims forwarded as headers and the verified-token cache, as written and
//! validated.

use http::HeaderName;
use serde::Deserialize;

use super::error::{ConfigError, invalid};

/// `[identity]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIdentity {
    /// Extra claims to forward: claim path (dots for nesting) to header name. Arrays are
    /// joined with commas. Default: none.
    #[serde(default)]
    pub claim_headers: std::collections::BTreeMap<String, String>,
    /// Largest verified-token cache, in tokens. Default 10000; 0 disables it.
    #[serde(default = "default_token_cache_size")]
    pub token_cache_size: usize,
}

fn default_token_cache_size() -> usize {
    10_000
}

// Written out: a derived Default would give a cache size of 0 when `[identity]` is absent.
impl Default for RawIdentity {
    fn default() -> Self {
        Self {
            claim_headers: Default::default(),
            token_cache_size: default_token_cache_size(),
        }
    }
}

/// Identity header settings.
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    /// Extra claims to forward: claim path segments and the header to put them in.
    pub claim_headers: Vec<(Vec<String>, HeaderName)>,
    /// Verified-token cache capacity (0: no cache).
    pub token_cache_size: usize,
    /// The claims routes' `claims` rules name (as written, and as path segments).
    pub rule_claims: Vec<(String, Vec<String>)>,
}

/// Checks `[identity]`: each extra claim header is a valid name that carries no framing or
/// routing meaning.
pub(super) fn validate_identity(
    raw: &RawIdentity,
    file: &str,
) -> Result<IdentityConfig, ConfigError> {
    let mut claim_headers = Vec::new();
    for (claim, header) in &raw.claim_headers {
        let key = format!("identity.claim_headers.{claim}");
        let name = HeaderName::from_bytes(header.trim().as_bytes())
            .map_err(|_| invalid(file, &key, format!("invalid header name {header:?}")))?;
        let path: Vec<String> = claim.split('.').map(str::to_owned).collect();
        if path.iter().any(String::is_empty) {
            return Err(invalid(file, &key, "claim path has an empty segment"));
        }
        // Headers with framing or routing meaning can never carry a claim.
        const RESERVED: [&str; 6] = [
            "authorization",
            "connection",
            "content-length",
            "cookie",
            "host",
            "transfer-encoding",
        ];
        if RESERVED.contains(&name.as_str())
            || tollgate_http::identity::is_assertion_header(name.as_str())
        {
            return Err(invalid(
                file,
                &key,
                format!("{header:?} cannot carry a claim"),
            ));
        }
        claim_headers.push((path, name));
    }
    Ok(IdentityConfig {
        claim_headers,
        token_cache_size: raw.token_cache_size,
        rule_claims: Vec::new(),
    })
}

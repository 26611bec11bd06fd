//! `[tokens]`: which issuer `tollgate token issue` signs with and for which services, as written
//! and validated.

use serde::Deserialize;

use super::error::{ConfigError, invalid};
use super::issuers::{IssuerConfig, RawIssuer};

/// `[tokens]`: what `tollgate token issue` signs with and for whom.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTokens {
    /// The `issuer` value of the `[[issuers]]` entry that signs. Default: the first issuer
    /// with a `secret`, `secret_file` or `signing_key`.
    pub issuer: Option<String>,
    /// The service registry: `token issue --all` mints one token for each. Default: none.
    #[serde(default)]
    pub services: Vec<String>,
}

/// Service token tooling settings.
#[derive(Debug, Clone, Default)]
pub struct TokensConfig {
    /// Index into [`Config::issuers`](crate::Config::issuers) of the signing issuer, if any
    /// issuer can sign.
    pub signing_issuer: Option<usize>,
    /// Services `token issue --all` mints tokens for.
    pub services: Vec<String>,
}

/// Checks `[tokens]`: resolves the signing issuer (the named one, else the first that can
/// sign) and, from it, which issuers vouch for services when they do not say.
pub(super) fn validate_tokens(
    raw: &RawTokens,
    raw_issuers: &[RawIssuer],
    issuers: &mut [IssuerConfig],
    file: &str,
) -> Result<TokensConfig, ConfigError> {
    let signing_issuer = match &raw.issuer {
        Some(name) => {
            let index = issuers.iter().position(|i| &i.issuer == name);
            Some(index.ok_or_else(|| {
                invalid(
                    file,
                    "tokens.issuer",
                    format!("no [[issuers]] entry has issuer = {name:?}"),
                )
            })?)
        }
        None => issuers.iter().position(|i| i.can_sign()),
    };
    let single = issuers.len() == 1;
    for (i, issuer) in issuers.iter_mut().enumerate() {
        issuer.service_tokens = raw_issuers[i]
            .service_tokens
            .unwrap_or(single || Some(i) == signing_issuer);
    }
    Ok(TokensConfig {
        signing_issuer,
        services: raw.services.clone(),
    })
}

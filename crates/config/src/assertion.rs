//! `[assertion]`: the key that signs identity assertions, as written, and loaded once, here.

use std::sync::Arc;

use serde::Deserialize;

use super::Invalid;
use super::values::HumanDuration;
use crate::signer::{
    ALGORITHMS, AssertionSigner, DEFAULT_ISSUER, DEFAULT_KID, DEFAULT_TTL, MAX_TTL,
};

/// `[assertion]`: the signed, request-bound identity assertion sent to upstreams.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAssertion {
    /// PKCS#8 PEM private key (`tollgate keys generate` writes one).
    pub key_file: String,
    /// `EdDSA` (Ed25519, the cheapest to sign), `ES256` or `RS256`; must match the key.
    pub algorithm: String,
    /// The `kid` header, as published in the admin JWKS. Default `"tollgate-assertion"`.
    pub kid: Option<String>,
    /// The `iss` claim. Default `"tollgate"`.
    pub issuer: Option<String>,
    /// Lifetime of one assertion, more than 0 and at most 5m. Default `"60s"`.
    pub ttl: Option<HumanDuration>,
}

/// Validates `[assertion]`; error keys are relative to the section.
pub fn validate_assertion(raw: &RawAssertion) -> Result<Arc<AssertionSigner>, Invalid> {
    let algorithm = ALGORITHMS
        .into_iter()
        .find(|a| format!("{a:?}") == raw.algorithm)
        .ok_or_else(|| {
            Invalid::new(
                "algorithm",
                format!(
                    "expected \"EdDSA\" (recommended), \"ES256\" or \"RS256\", got {:?}: an \
                     assertion is verified with a public key, so that no upstream can mint one",
                    raw.algorithm
                ),
            )
        })?;
    let ttl = raw.ttl.map_or(DEFAULT_TTL, |t| t.0);
    if ttl.is_zero() {
        return Err(Invalid::new("ttl", "must be more than 0s"));
    }
    if ttl.as_secs() == 0 {
        return Err(Invalid::new(
            "ttl",
            "must be at least 1s (exp counts whole seconds)",
        ));
    }
    if ttl > MAX_TTL {
        return Err(Invalid::new(
            "ttl",
            format!(
                "must be at most 5m (an assertion is for one request), got {}",
                humantime::format_duration(ttl)
            ),
        ));
    }
    let kid = raw.kid.clone().unwrap_or_else(|| DEFAULT_KID.to_owned());
    let issuer = raw
        .issuer
        .clone()
        .unwrap_or_else(|| DEFAULT_ISSUER.to_owned());
    for (key, value) in [("kid", &kid), ("issuer", &issuer)] {
        if value.is_empty() || value.trim() != value || value.chars().any(char::is_control) {
            return Err(Invalid::new(
                key,
                "must be non-empty, without surrounding spaces or control characters",
            ));
        }
    }
    let path = &raw.key_file;
    let pem = std::fs::read(path)
        .map_err(|e| Invalid::new("key_file", format!("cannot read {path:?}: {e}")))?;
    let signer = AssertionSigner::load(&pem, path, algorithm, kid, issuer, ttl)
        .map_err(|e| Invalid::new("key_file", e.to_string()))?;
    Ok(Arc::new(signer))
}

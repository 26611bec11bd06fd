//! `[[issuers]]`: who may sign tokens, as written and validated; algorithms, secrets and keys
//! are loaded once, here.

pub mod introspection;
mod jwks;
mod key_material;

use std::time::Duration;

use http::Uri;
use jsonwebtoken::Algorithm;
use serde::Deserialize;

use super::Invalid;
use super::env::Env;
use super::values::{HumanDuration, Secret, SecretText};
use crate::keys::{self, VerifyKey};
pub use jwks::JwksConfig;
use jwks::load_jwks;
pub use key_material::{
    KidSecret, MIN_SECRET_BYTES, RawPublicKey, RawSecret, RawSigningKey, SigningKeyConfig,
};
use key_material::{load_kid_secrets, load_public_keys, load_secret, load_signing_keys};

/// The HMAC secret the default config falls back to when `TOLLGATE_JWT_SECRET` is unset.
pub const DEVELOPMENT_SECRET: &str = "tollgate-development-secret-do-not-use-in-production";

/// `[[issuers]]`: who may sign tokens, and with which keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIssuer {
    /// Name for logs and metrics. Default: the `issuer` value.
    pub name: Option<String>,
    /// The `iss` claim tokens of this issuer carry. Required.
    pub issuer: String,
    /// Accepted `aud` values; when set, tokens must carry one of them. Default: none checked.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Allowed algorithms, e.g. `["HS256"]` or `["RS256", "ES256"]`. Required, except with
    /// `discovery`, where the default is every asymmetric algorithm (narrowed at run time to
    /// those the provider's document lists).
    #[serde(default)]
    pub algorithms: Vec<String>,
    /// Fetch `{issuer}/.well-known/openid-configuration` (OIDC discovery) for the key set's
    /// URL and the algorithms, and refresh it like the key set. Default false.
    #[serde(default)]
    pub discovery: bool,
    /// The discovery document's URL when it is not under the issuer. Implies `discovery`.
    pub discovery_url: Option<String>,
    /// How a token's type is known: `"tollgate"` (its `type` claim, `access` or `service`,
    /// with `is_service` agreeing: tollgate's own tokens) or `"standard"` (OAuth/OIDC access
    /// tokens: no `type` needed; a client-credentials token is a service when the issuer may
    /// vouch for services). Default: `"standard"` with `jwks_url`, `discovery` or
    /// `introspection_url`, else
    /// `"tollgate"`.
    pub token_types: Option<String>,
    /// Dotted path of the claim holding the caller's roles (an array or a string), e.g.
    /// `"realm_access.roles"`, `"roles"`, `"https://example.com/roles"` (quote a key that has
    /// dots: `'"https://example.com/roles"'`). Default: the `role` claim only.
    pub roles_claim: Option<String>,
    /// RFC 7662 introspection endpoint for opaque (non-JWT) tokens. Default: none (an opaque
    /// token is refused as malformed).
    pub introspection_url: Option<String>,
    /// tollgate's client id at the introspection endpoint (HTTP Basic).
    pub introspection_client_id: Option<String>,
    /// Its client secret, usually `"${SOME_VAR}"`.
    pub introspection_client_secret: Option<SecretText>,
    /// A file holding the client secret.
    pub introspection_client_secret_file: Option<String>,
    /// Longest time an introspection answer is reused, never beyond the token's `exp`.
    /// Default `"60s"`, at most `"1h"`.
    pub introspection_cache: Option<HumanDuration>,
    /// Clock skew allowed on `exp` and `nbf`. Default `"30s"`.
    pub leeway: Option<HumanDuration>,
    /// HMAC secret (at least 32 bytes), usually `"${SOME_VAR}"`.
    pub secret: Option<SecretText>,
    /// File holding the HMAC secret (trailing newline ignored).
    pub secret_file: Option<String>,
    /// PEM public keys (RSA, EC or Ed25519).
    #[serde(default)]
    pub public_keys: Vec<RawPublicKey>,
    /// JWKS document URL, fetched at startup and refreshed.
    pub jwks_url: Option<String>,
    /// PEM bundle of the certificate authorities the JWKS server's certificate is checked
    /// against, instead of the public web roots (a private CA). Default: public roots.
    pub jwks_ca_file: Option<String>,
    /// Accept a plain `http://` `jwks_url` to a host that is not loopback. Default false.
    #[serde(default)]
    pub allow_insecure_http: bool,
    /// JWKS refresh period. Default `"5m"`.
    pub jwks_refresh: Option<HumanDuration>,
    /// JWKS fetch timeout. Default `"5s"`.
    pub jwks_timeout: Option<HumanDuration>,
    /// Least time between two fetches triggered by unknown key ids. Default `"10s"`.
    pub jwks_min_refresh_interval: Option<HumanDuration>,
    /// Also take tokens from this cookie. Default: no.
    pub from_cookie: Option<String>,
    /// Also take tokens from this query parameter. Default: no.
    pub from_query: Option<String>,
    /// Private key used by `tollgate token issue`; its public half is also accepted.
    pub signing_key: Option<RawSigningKey>,
    /// Several private keys, for rotation: each is published and accepted; the one with the
    /// latest `active_from` already reached signs. Default: none.
    #[serde(default)]
    pub signing_keys: Vec<RawSigningKey>,
    /// Several HMAC secrets with key ids, for rotation: each is accepted (by `kid`); the one
    /// with the latest `active_from` already reached signs. Default: none.
    #[serde(default)]
    pub secrets: Vec<RawSecret>,
    /// Longest token lifetime accepted, per token type: `exp - iat`, or `exp - now` for a
    /// token without `iat`. Default `{ access = "24h", service = "400d" }`.
    #[serde(default)]
    pub max_lifetime: RawMaxLifetime,
    /// Whether tokens of this issuer may carry a service identity (`type = "service"`).
    /// Default: true for the `[tokens]` signing issuer and for a config's only issuer, false
    /// for every other issuer (a user IdP must not be able to vouch for `orders`).
    pub service_tokens: Option<bool>,
}

/// `max_lifetime` of an issuer.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMaxLifetime {
    /// User access tokens. Default `"24h"`.
    pub access: Option<HumanDuration>,
    /// Service tokens. Default `"400d"` (room for the 365-day tokens `token issue` mints).
    pub service: Option<HumanDuration>,
}

/// A validated issuer.
#[derive(Debug, Clone)]
pub struct IssuerConfig {
    /// Name for logs and metrics.
    pub name: String,
    /// Required `iss` value.
    pub issuer: String,
    /// Accepted audiences (empty: `aud` not checked).
    pub audiences: Vec<String>,
    /// Allowed algorithms.
    pub algorithms: Vec<Algorithm>,
    /// Allowed clock skew.
    pub leeway: Duration,
    /// Longest accepted lifetime of an access token.
    pub max_access_lifetime: Duration,
    /// Longest accepted lifetime of a service token.
    pub max_service_lifetime: Duration,
    /// HMAC secret, if any.
    pub secret: Option<Secret>,
    /// Static verification keys (PEM public keys and the HMAC secret).
    pub keys: Vec<VerifyKey>,
    /// Remote key set, if any.
    pub jwks: Option<JwksConfig>,
    /// Cookie carrying tokens, if enabled.
    pub from_cookie: Option<String>,
    /// Query parameter carrying tokens, if enabled.
    pub from_query: Option<String>,
    /// Private keys `tollgate token issue` signs with (`signing_key` and `signing_keys`), all
    /// published and accepted; [`IssuerConfig::signing_key_at`] picks the one that signs.
    pub signing_keys: Vec<SigningKeyConfig>,
    /// HMAC secrets with key ids (`secrets`), all accepted; the active one signs.
    pub kid_secrets: Vec<KidSecret>,
    /// Whether this issuer may vouch for service identities (resolved with `[tokens]`).
    pub service_tokens: bool,
    /// How a token's type is known.
    pub token_types: TokenTypes,
    /// Where the caller's roles are (path segments), besides `role`.
    pub roles_claim: Option<Vec<String>>,
    /// RFC 7662 introspection for opaque tokens, if configured.
    pub introspection: Option<introspection::IntrospectionConfig>,
    /// Identity of this issuer's settings and key material, for reloads.
    pub fingerprint: super::Fingerprint,
}

/// How an issuer's tokens say whether they are a user's or a service's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenTypes {
    /// tollgate's own convention: `type` is `access` or `service`, `is_service` agrees.
    Tollgate,
    /// OAuth/OIDC access tokens: no `type` needed (one that is present still follows
    /// tollgate's rules); a client-credentials token is a service's.
    Standard,
}

impl TokenTypes {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenTypes::Tollgate => "tollgate",
            TokenTypes::Standard => "standard",
        }
    }
}

/// The entry with the latest `active_from` not after `now` (an entry without one counts as
/// active since forever); the newest wins a tie, being listed later.
fn active_at<T>(
    entries: &[T],
    active_from: impl Fn(&T) -> Option<std::time::SystemTime>,
    now: std::time::SystemTime,
) -> Option<&T> {
    entries
        .iter()
        .filter(|e| active_from(e).is_none_or(|t| t <= now))
        .max_by_key(|e| active_from(e))
}

impl IssuerConfig {
    /// The private key that signs at `now`, if the issuer has any.
    pub fn signing_key_at(&self, now: std::time::SystemTime) -> Option<&SigningKeyConfig> {
        active_at(&self.signing_keys, |k| k.active_from, now)
    }

    /// The kid-tagged HMAC secret that signs at `now`, if the issuer has any.
    pub fn secret_at(&self, now: std::time::SystemTime) -> Option<&KidSecret> {
        active_at(&self.kid_secrets, |s| s.active_from, now)
    }

    /// Whether the issuer has anything to sign tokens with.
    pub fn can_sign(&self) -> bool {
        self.secret.is_some() || !self.signing_keys.is_empty() || !self.kid_secrets.is_empty()
    }

    /// Whether this issuer still uses the built-in development secret.
    pub fn uses_development_secret(&self) -> bool {
        self.secret
            .as_ref()
            .is_some_and(|s| s.expose() == DEVELOPMENT_SECRET.as_bytes())
    }
}

/// Default longest access-token lifetime: a day, longer than any IdP's access tokens.
const DEFAULT_MAX_ACCESS_LIFETIME: u64 = 24 * 3600;
/// Default longest service-token lifetime: 400 days, room for the 365-day tokens that
/// `tollgate token issue` mints.
const DEFAULT_MAX_SERVICE_LIFETIME: u64 = 400 * 24 * 3600;

fn duration_or(value: Option<HumanDuration>, default_secs: u64) -> Duration {
    value.map_or(Duration::from_secs(default_secs), |d| d.0)
}

/// Validates one `[[issuers]]` entry; error keys are relative to the entry.
pub fn validate_issuer(raw: &RawIssuer, env: &Env) -> Result<IssuerConfig, Invalid> {
    let _ = env;
    check_names(raw)?;
    let algorithms = parse_algorithms(raw)?;
    let mut keys = Vec::new();
    let secret = load_secret(raw, &algorithms, &mut keys)?;
    load_public_keys(raw, &algorithms, &mut keys)?;
    let signing_keys = load_signing_keys(raw, &mut keys)?;
    let kid_secrets = load_kid_secrets(raw, &algorithms, &mut keys)?;
    let jwks = load_jwks(raw)?;
    if keys.is_empty() && jwks.is_none() && raw.introspection_url.is_none() {
        return Err(Invalid::new(
            "issuer",
            "no keys: set secret, secret_file, secrets, public_keys, signing_key(s), jwks_url, discovery or introspection_url",
        ));
    }
    check_token_sources(raw)?;
    let fingerprint = fingerprint(raw, secret.as_ref(), &signing_keys, &kid_secrets);
    Ok(IssuerConfig {
        name: raw.name.clone().unwrap_or_else(|| raw.issuer.clone()),
        issuer: raw.issuer.clone(),
        audiences: raw.audiences.clone(),
        algorithms,
        leeway: duration_or(raw.leeway, 30),
        max_access_lifetime: duration_or(raw.max_lifetime.access, DEFAULT_MAX_ACCESS_LIFETIME),
        max_service_lifetime: duration_or(raw.max_lifetime.service, DEFAULT_MAX_SERVICE_LIFETIME),
        secret,
        keys,
        jwks,
        from_cookie: raw.from_cookie.clone(),
        from_query: raw.from_query.clone(),
        signing_keys,
        kid_secrets,
        // Resolved once the signing issuer is known; see `validate`.
        service_tokens: raw.service_tokens.unwrap_or(false),
        token_types: token_types(raw)?,
        introspection: introspection::load(raw)?,
        roles_claim: raw
            .roles_claim
            .as_deref()
            .map(crate::claims::claim_path)
            .transpose()
            .map_err(|e| Invalid::new("roles_claim", e))?,
        fingerprint,
    })
}

/// Checks `issuer` and the name, which is sent to upstreams in `x-user-issuer`.
fn check_names(raw: &RawIssuer) -> Result<(), Invalid> {
    if raw.issuer.trim().is_empty() {
        return Err(Invalid::new("issuer", "must not be empty"));
    }
    let name = raw.name.as_deref().unwrap_or(&raw.issuer);
    if http::HeaderValue::from_str(name).is_err() || name.trim() != name {
        return Err(Invalid::new(
            if raw.name.is_some() { "name" } else { "issuer" },
            "must be printable ASCII without surrounding spaces (it is sent as x-user-issuer)",
        ));
    }
    Ok(())
}

/// Parses `algorithms`: at least one, each known and not `none`.
fn parse_algorithms(raw: &RawIssuer) -> Result<Vec<Algorithm>, Invalid> {
    if raw.algorithms.is_empty() && uses_discovery(raw) {
        return Ok(DISCOVERY_ALGORITHMS.to_vec());
    }
    if raw.algorithms.is_empty() && raw.introspection_url.is_some() {
        // Opaque tokens only: no JWT of this issuer is accepted.
        return Ok(Vec::new());
    }
    if raw.algorithms.is_empty() {
        return Err(Invalid::new("algorithms", "list at least one algorithm"));
    }
    raw.algorithms
        .iter()
        .enumerate()
        .map(|(i, a)| {
            keys::parse_algorithm(a).map_err(|e| Invalid::new(format!("algorithms[{i}]"), e))
        })
        .collect()
}

/// The default allow-list of an issuer found by discovery: every asymmetric algorithm (the
/// provider's document narrows it); never an HMAC one, whose key a provider cannot publish.
const DISCOVERY_ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

fn uses_discovery(raw: &RawIssuer) -> bool {
    raw.discovery || raw.discovery_url.is_some()
}

/// `token_types`, or its default: standard for a remote key set or introspection (an IdP),
/// tollgate's own convention for local keys.
fn token_types(raw: &RawIssuer) -> Result<TokenTypes, Invalid> {
    match raw.token_types.as_deref() {
        Some("tollgate") => Ok(TokenTypes::Tollgate),
        Some("standard") => Ok(TokenTypes::Standard),
        Some(other) => Err(Invalid::new(
            "token_types",
            format!("unknown {other:?}: use \"tollgate\" or \"standard\""),
        )),
        None if raw.jwks_url.is_some()
            || uses_discovery(raw)
            || raw.introspection_url.is_some() =>
        {
            Ok(TokenTypes::Standard)
        }
        None => Ok(TokenTypes::Tollgate),
    }
}

/// Checks a key set or discovery URL: http(s) with a host, no credentials in it, and TLS
/// unless it is loopback or `allow_insecure_http` says otherwise.
fn remote_url(key: &str, url: &str, allow_insecure_http: bool) -> Result<Uri, Invalid> {
    if super::has_userinfo(url) {
        return Err(Invalid::new(key, super::USERINFO_REFUSED));
    }
    let uri: Uri = url
        .parse()
        .map_err(|e| Invalid::new(key, format!("invalid URL {url:?}: {e}")))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.authority().is_none() {
        return Err(Invalid::new(
            key,
            format!("invalid URL {url:?}: need http(s)://host"),
        ));
    }
    super::outbound::check_transport(&uri, allow_insecure_http)
        .map_err(|e| Invalid::new(key, e))?;
    Ok(uri)
}

/// Checks that `from_cookie` and `from_query`, when set, name something.
fn check_token_sources(raw: &RawIssuer) -> Result<(), Invalid> {
    for (key, value) in [
        ("from_cookie", &raw.from_cookie),
        ("from_query", &raw.from_query),
    ] {
        if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
            return Err(Invalid::new(key, "must not be empty"));
        }
    }
    Ok(())
}

/// The issuer's settings and every secret and key file it was built from, hashed, so that a
/// reload can tell whether its caches may be kept.
fn fingerprint(
    raw: &RawIssuer,
    secret: Option<&Secret>,
    signing_keys: &[SigningKeyConfig],
    kid_secrets: &[KidSecret],
) -> super::Fingerprint {
    let mut material: Vec<Vec<u8>> = vec![format!("{raw:?}").into_bytes()];
    if let Some(secret) = secret {
        material.push(secret.expose().to_vec());
    }
    for pk in &raw.public_keys {
        if let Some(path) = &pk.pem_file {
            material.push(std::fs::read(path).unwrap_or_default());
        }
    }
    for sk in signing_keys {
        material.push(sk.pem.expose().to_vec());
    }
    for ks in kid_secrets {
        material.push(ks.secret.expose().to_vec());
    }
    if let Some(path) = &raw.jwks_ca_file {
        material.push(std::fs::read(path).unwrap_or_default());
    }
    super::Fingerprint::of(&material.iter().map(Vec::as_slice).collect::<Vec<_>>())
}

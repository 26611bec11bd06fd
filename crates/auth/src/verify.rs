//! Token verification: pre-parse, choose the issuer by `iss`, check the algorithm against its
//! allow-list, find the key by `kid`, verify with `jsonwebtoken`, then build the [`Identity`].

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::{HeaderName, HeaderValue};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::events::AuthEvents;
use super::extract::TokenSources;
use super::introspection::Introspector;
use super::jwks::JwksSource;
use super::keys::VerifyKey;
use crate::claims::{claim_text, grants, lookup, optional_scalar, optional_text, token_kind};
use tollgate_config::{IdentityConfig, IssuerConfig};
use tollgate_http::identity::{
    Identity, TokenKind, X_SERVICE_NAME, X_TENANT_ID, X_USER_EMAIL, X_USER_ID, X_USER_ISSUER,
    X_USER_ROLE, X_USER_TYPE,
};

/// Longest token accepted; anything larger is refused before decoding.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Why a request is not authenticated. The text is the short reason shown to clients: it
/// never contains key material or the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credential was presented.
    #[error("token missing")]
    Missing,
    /// The `Authorization` header could not be read.
    #[error("malformed authorization header")]
    MalformedHeader,
    /// Not a compact JWS (three base64url parts with JSON header and payload).
    #[error("malformed token")]
    Malformed,
    /// Over `MAX_TOKEN_BYTES`.
    #[error("token too large")]
    TooLarge,
    /// An opaque token its issuer's introspection endpoint calls inactive (RFC 7662).
    #[error("token not active")]
    Inactive,
    /// The introspection endpoint gave no answer (down, failing, or its breaker open).
    #[error("token introspection unavailable")]
    IntrospectionUnavailable,
    /// `alg` is not in the issuer's allow-list (or is `none`).
    #[error("algorithm not allowed")]
    AlgorithmNotAllowed,
    /// `crit` lists extensions tollgate does not implement (RFC 7515 §4.1.11).
    #[error("unsupported critical header")]
    UnsupportedCritical,
    /// `typ` says this is not an access token JWT.
    #[error("unsupported token typ")]
    UnsupportedTyp,
    /// `iss` missing or not configured.
    #[error("issuer not accepted")]
    IssuerNotAccepted,
    /// `aud` missing or not accepted.
    #[error("audience not accepted")]
    AudienceNotAccepted,
    /// No key with the token's `kid`.
    #[error("unknown key id")]
    UnknownKeyId,
    /// No key verifies the signature.
    #[error("signature invalid")]
    SignatureInvalid,
    /// `exp` is past (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    #[error("token not yet valid")]
    NotYetValid,
    /// A required claim is absent.
    #[error("missing claim {0}")]
    MissingClaim(String),
    /// A claim has the wrong type or cannot be a header value.
    #[error("invalid claim {0}")]
    InvalidClaim(String),
    /// `type` is not `access` or `service`, or contradicts `is_service`.
    #[error("token type not accepted")]
    TokenTypeNotAccepted,
    /// `iat` is in the future (beyond the leeway).
    #[error("token issued in the future")]
    IssuedInFuture,
    /// `exp - iat` (or `exp - now` without `iat`) exceeds the issuer's `max_lifetime`.
    #[error("token lifetime exceeds the issuer's maximum")]
    LifetimeTooLong,
    /// A service token from an issuer not allowed to vouch for services (`service_tokens`).
    #[error("issuer may not issue service tokens")]
    ServiceIssuerNotAllowed,
    /// The token's `jti`, or its service before it was issued, is revoked.
    #[error("token revoked")]
    Revoked,
    /// The route authenticates with a client certificate and the connection has none.
    #[error("client certificate required")]
    CertificateRequired,
    /// The client certificate is valid but `[server.tls] client_services` maps it to no
    /// service.
    #[error("client certificate not registered for a service")]
    CertificateNotRegistered,
}

impl AuthError {
    /// The token check this refusal failed, as `tollgate explain` names it (`None`: not a
    /// check of the token itself, e.g. no token or no client certificate).
    pub fn check(&self) -> Option<&'static str> {
        Some(match self {
            AuthError::Malformed | AuthError::TooLarge => "structure and size",
            AuthError::IssuerNotAccepted => "issuer (iss)",
            AuthError::AlgorithmNotAllowed => "algorithm allow-list",
            AuthError::UnsupportedCritical => "critical headers (crit)",
            AuthError::UnsupportedTyp => "token typ",
            AuthError::UnknownKeyId => "key (kid)",
            AuthError::SignatureInvalid => "signature",
            AuthError::Expired | AuthError::NotYetValid => "expiry and not-before (exp, nbf)",
            AuthError::AudienceNotAccepted => "audience (aud)",
            AuthError::TokenTypeNotAccepted | AuthError::ServiceIssuerNotAllowed => {
                "token type (type, is_service)"
            }
            AuthError::MissingClaim(_) | AuthError::InvalidClaim(_) => "claims",
            AuthError::IssuedInFuture | AuthError::LifetimeTooLong => {
                "issued-at and lifetime (iat)"
            }
            AuthError::Revoked => "revocation",
            AuthError::Inactive | AuthError::IntrospectionUnavailable => "introspection",
            AuthError::Missing
            | AuthError::MalformedHeader
            | AuthError::CertificateRequired
            | AuthError::CertificateNotRegistered => return None,
        })
    }

    /// A bounded label for metrics and audit: `missing`, `expired` or `invalid`.
    pub fn kind(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing",
            AuthError::Expired => "expired",
            AuthError::CertificateRequired => "certificate_missing",
            AuthError::IntrospectionUnavailable => "introspection_unavailable",
            _ => "invalid",
        }
    }
}

/// An issuer's keys, for the console: names and algorithms, never key material.
#[derive(Debug, Clone)]
pub struct KeySummary {
    /// The issuer's name.
    pub issuer: String,
    /// Each key's `kid` and algorithm (or family).
    pub keys: Vec<(Option<String>, String)>,
    /// Its JWKS URL, when its keys come from one.
    pub jwks_url: Option<String>,
}

#[derive(Deserialize)]
struct PreHeader {
    alg: String,
    kid: Option<String>,
    typ: Option<String>,
    crit: Option<Value>,
}

#[derive(Deserialize)]
struct PrePayload {
    iss: Option<Value>,
    exp: Option<Value>,
    nbf: Option<Value>,
}

struct IssuerVerifier {
    config: IssuerConfig,
    /// `x-user-issuer`, built once: every identity of this issuer shares its bytes.
    header: HeaderValue,
    // One per allowed algorithm: jsonwebtoken requires every algorithm of a Validation to be
    // of the key's family, and pinning the token's own algorithm is the strictest choice.
    validations: Vec<(Algorithm, Validation)>,
    jwks: Option<Arc<JwksSource>>,
    introspector: Option<Arc<Introspector>>,
}

#[derive(Clone)]
struct Cached {
    identity: Arc<Identity>,
    issuer: usize,
    generation: u64,
}

/// A verifier per issuer; issuers whose settings and keys are unchanged from `previous` keep
/// their JWKS source (and the keys it fetched).
fn issuer_verifiers(
    issuers: &[IssuerConfig],
    events: &Arc<dyn AuthEvents>,
    previous: Option<&Verifier>,
) -> Vec<IssuerVerifier> {
    let unchanged = |config: &IssuerConfig| {
        previous.and_then(|p| {
            p.issuers
                .iter()
                .find(|old| old.config.fingerprint == config.fingerprint)
        })
    };
    issuers
        .iter()
        .map(|config| IssuerVerifier {
            // Checked at config load: the name is a valid header value.
            header: HeaderValue::from_str(&config.name)
                .unwrap_or_else(|_| HeaderValue::from_static("-")),
            validations: config
                .algorithms
                .iter()
                .map(|alg| (*alg, validation_for(config, *alg)))
                .collect(),
            jwks: match unchanged(config) {
                Some(old) => old.jwks.clone(),
                None => config
                    .jwks
                    .clone()
                    .map(|j| Arc::new(JwksSource::new(config.name.clone(), j, events.clone()))),
            },
            introspector: match unchanged(config) {
                Some(old) => old.introspector.clone(),
                None => config
                    .introspection
                    .clone()
                    .map(|i| Arc::new(Introspector::new(&config.issuer, i))),
            },
            config: config.clone(),
        })
        .collect()
}

/// The verified-token cache: the previous one when no issuer moved and its size is unchanged
/// (cached entries point at issuers by position), else a new one (none at size 0).
fn token_cache(
    issuers: &[IssuerVerifier],
    identity: &IdentityConfig,
    previous: Option<&Verifier>,
) -> Option<Arc<quick_cache::sync::Cache<String, Cached>>> {
    let same_issuers = previous.is_some_and(|p| {
        p.issuers.len() == issuers.len()
            && p.issuers
                .iter()
                .zip(issuers)
                .all(|(a, b)| a.config.fingerprint == b.config.fingerprint)
            && p.claim_headers == identity.claim_headers
            && p.rule_claims == identity.rule_claims
    });
    match previous.and_then(|p| p.cache.clone()) {
        Some(cache) if same_issuers && cache.capacity() == identity.token_cache_size as u64 => {
            Some(cache)
        }
        _ => (identity.token_cache_size > 0)
            .then(|| Arc::new(quick_cache::sync::Cache::new(identity.token_cache_size))),
    }
}

/// Why a token was not accepted: invalid, or valid but revoked (its holder is known, so the
/// attempt can be counted against its service and audited).
#[derive(Debug, Clone)]
pub enum Rejected {
    /// Not a valid token.
    Invalid(AuthError),
    /// A valid token on the revocation list.
    Revoked(Arc<Identity>),
}

impl Rejected {
    /// The refusal's reason.
    pub fn error(self) -> AuthError {
        match self {
            Rejected::Invalid(e) => e,
            Rejected::Revoked(_) => AuthError::Revoked,
        }
    }
}

impl From<AuthError> for Rejected {
    fn from(e: AuthError) -> Self {
        Rejected::Invalid(e)
    }
}

/// Verifies tokens against the configured issuers, with a bounded cache of verified tokens.
pub struct Verifier {
    issuers: Vec<IssuerVerifier>,
    sources: TokenSources,
    claim_headers: Vec<(Vec<String>, HeaderName)>,
    claim_header_names: Vec<HeaderName>,
    rule_claims: Vec<(String, Vec<String>)>,
    cache: Option<Arc<quick_cache::sync::Cache<String, Cached>>>,
    revocations: Arc<tollgate_state::revocation::Revocations>,
    events: Arc<dyn AuthEvents>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field(
                "issuers",
                &self
                    .issuers
                    .iter()
                    .map(|i| &i.config.name)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Builds the verifier; JWKS sources are created but not fetched (see [`Verifier::start`]).
    pub fn new(
        issuers: &[IssuerConfig],
        identity: &IdentityConfig,
        events: Arc<dyn AuthEvents>,
    ) -> Self {
        Self::reusing(
            issuers,
            identity,
            tollgate_state::revocation::Revocations::none(),
            events,
            None,
        )
    }

    /// The verifier for `config`'s issuers and identity settings, enforcing the revocation list
    /// of its state store (a tool or an embedding service, not a reloading gateway).
    pub fn for_config(config: &tollgate_config::Config, events: Arc<dyn AuthEvents>) -> Self {
        let revocations =
            tollgate_state::revocation::Revocations::from_config(&config.state, events.clone());
        Self::reusing(&config.issuers, &config.identity, revocations, events, None)
    }

    /// Like [`Verifier::new`], keeping the JWKS sources of issuers whose settings and keys are
    /// unchanged from `previous`, and its verified-token cache when no issuer changed.
    pub fn reusing(
        issuers: &[IssuerConfig],
        identity: &IdentityConfig,
        revocations: Arc<tollgate_state::revocation::Revocations>,
        events: Arc<dyn AuthEvents>,
        previous: Option<&Verifier>,
    ) -> Self {
        let issuers = issuer_verifiers(issuers, &events, previous);
        let sources = TokenSources {
            cookies: issuers
                .iter()
                .filter_map(|i| i.config.from_cookie.clone())
                .collect(),
            queries: issuers
                .iter()
                .filter_map(|i| i.config.from_query.clone())
                .collect(),
        };
        let cache = token_cache(&issuers, identity, previous);
        Self {
            issuers,
            sources,
            claim_header_names: identity
                .claim_headers
                .iter()
                .map(|(_, h)| h.clone())
                .collect(),
            claim_headers: identity.claim_headers.clone(),
            rule_claims: identity.rule_claims.clone(),
            cache,
            revocations,
            events,
        }
    }

    /// Starts fetching JWKS key sets in the background; the listener does not wait for them.
    pub fn start(&self) {
        self.revocations.start();
        for issuer in &self.issuers {
            if let Some(jwks) = &issuer.jwks {
                jwks.spawn_refresher();
            }
        }
    }

    /// Refuses a revoked token.
    fn refuse_revoked(&self, identity: &Identity) -> Result<(), AuthError> {
        self.revocations
            .check(identity)
            .map_err(|_| AuthError::Revoked)
    }

    /// Each issuer's keys as the console shows them: (issuer name, the keys' `kid` and
    /// family, the JWKS source if any). Key material is never part of it.
    pub fn key_summaries(&self) -> Vec<KeySummary> {
        self.issuers
            .iter()
            .map(|issuer| {
                let describe = |k: &tollgate_config::keys::VerifyKey| {
                    (
                        k.kid.clone(),
                        match (k.algorithm, k.family) {
                            (Some(a), _) => format!("{a:?}"),
                            (None, tollgate_config::keys::Family::Hmac) => "HMAC secret".to_owned(),
                            (None, family) => format!("{family:?}"),
                        },
                    )
                };
                // Secrets are among the configured keys, as HMAC keys.
                let mut keys: Vec<(Option<String>, String)> =
                    issuer.config.keys.iter().map(describe).collect();
                if let Some(jwks) = &issuer.jwks {
                    keys.extend(jwks.keys().iter().map(describe));
                }
                KeySummary {
                    issuer: issuer.config.name.clone(),
                    keys,
                    jwks_url: issuer.config.jwks.as_ref().map(|j| j.url.to_string()),
                }
            })
            .collect()
    }

    /// The revocation list this verifier enforces.
    pub fn revocations(&self) -> &Arc<tollgate_state::revocation::Revocations> {
        &self.revocations
    }

    /// How many verified tokens are cached.
    pub fn cached_tokens(&self) -> usize {
        self.cache.as_ref().map_or(0, |c| c.len())
    }

    /// Where tokens may be found.
    pub fn sources(&self) -> &TokenSources {
        &self.sources
    }

    /// Configured claim header names (stripped from clients like the built-in ones).
    pub fn claim_header_names(&self) -> &[HeaderName] {
        &self.claim_header_names
    }

    /// Verifies every presented credential; all must be valid. The identity is the first's.
    /// `checked` turns true when a token was not in the verified-token cache and was checked
    /// now (signature, claims or introspection), valid or not.
    pub async fn verify_all(
        &self,
        tokens: &[&str],
        checked: &mut bool,
    ) -> Result<Arc<Identity>, Rejected> {
        let (first, rest) = tokens.split_first().ok_or(AuthError::Missing)?;
        let identity = self.verify_revealing(first, checked).await?;
        for token in rest {
            self.verify_revealing(token, checked).await?;
        }
        Ok(identity)
    }

    /// Verifies one token.
    pub async fn verify(&self, token: &str) -> Result<Arc<Identity>, AuthError> {
        self.verify_revealing(token, &mut false)
            .await
            .map_err(Rejected::error)
    }

    /// Verifies one token; a revoked one names its holder.
    async fn verify_revealing(
        &self,
        token: &str,
        checked: &mut bool,
    ) -> Result<Arc<Identity>, Rejected> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::TooLarge.into());
        }
        let now = jsonwebtoken::get_current_timestamp();
        if let Some(hit) = self.cached(token, now) {
            // Revocation is checked on every use, cached or not: it takes effect at once.
            return match self.refuse_revoked(&hit) {
                Ok(()) => Ok(hit),
                Err(_) => Err(Rejected::Revoked(hit)),
            };
        }
        *checked = true;
        if token.bytes().filter(|b| *b == b'.').count() != 2 {
            return self.introspect(token, now).await;
        }
        let (header, iss) = pre_parse(token)?;
        let (index, issuer) = self
            .issuers
            .iter()
            .enumerate()
            .find(|(_, i)| i.config.issuer == iss)
            .ok_or(AuthError::IssuerNotAccepted)?;
        let (alg, validation) = check_header(&header, issuer)?;
        if issuer
            .jwks
            .as_ref()
            .is_some_and(|j| !j.allows_algorithm(alg))
        {
            return Err(AuthError::AlgorithmNotAllowed.into());
        }
        let generation = issuer.jwks.as_ref().map_or(0, |j| j.generation());
        let claims = self
            .verify_signature(issuer, validation, token, alg, header.kid.as_deref())
            .await?;
        let identity = self.build_identity(&claims, issuer)?;
        check_lifetime(&claims, identity.kind, &issuer.config, now)?;
        let identity = Arc::new(identity);
        if self.refuse_revoked(&identity).is_err() {
            return Err(Rejected::Revoked(identity));
        }
        self.remember(token, &identity, index, generation, now);
        Ok(identity)
    }

    /// An opaque token (not a compact JWS): asked about at the first issuer with an
    /// introspection endpoint, and judged like a JWT's claims (type, lifetime, grants, the
    /// revocation list). Without such an issuer it is malformed, as before.
    async fn introspect(&self, token: &str, now: u64) -> Result<Arc<Identity>, Rejected> {
        let found = self
            .issuers
            .iter()
            .find_map(|i| Some((i, i.introspector.as_ref()?)));
        let Some((issuer, introspector)) = found else {
            return Err(AuthError::Malformed.into());
        };
        // Boxed: rare next to JWTs, and its future is large.
        let claims = Box::pin(introspector.claims(token, now)).await?;
        if !issuer.config.audiences.is_empty() && !audience_accepted(&claims, &issuer.config) {
            return Err(AuthError::AudienceNotAccepted.into());
        }
        let identity = Arc::new(self.build_identity(&claims, issuer)?);
        if self.refuse_revoked(&identity).is_err() {
            return Err(Rejected::Revoked(identity));
        }
        Ok(identity)
    }

    /// Keeps a newly verified token for its later uses, and reports a service token's expiry
    /// once per token (later uses hit the cache): the earliest expiry per service feeds the
    /// "service token expiring" alert.
    fn remember(
        &self,
        token: &str,
        identity: &Arc<Identity>,
        issuer: usize,
        generation: u64,
        now: u64,
    ) {
        if let Some(service) = &identity.service {
            self.events
                .service_token_verified(service, identity.expires_at);
        }
        if let Some(cache) = &self.cache
            && identity.expires_at > now
        {
            cache.insert(
                token.to_owned(),
                Cached {
                    identity: identity.clone(),
                    issuer,
                    generation,
                },
            );
        }
    }

    fn cached(&self, token: &str, now: u64) -> Option<Arc<Identity>> {
        let hit = self.cache.as_ref()?.get(token)?;
        let issuer = self.issuers.get(hit.issuer)?;
        let current = issuer.jwks.as_ref().map_or(0, |j| j.generation());
        // An entry never outlives the token's exp, nor a change of the issuer's key set, nor
        // (after a reload moved `[tokens].issuer`) the issuer's right to vouch for services.
        let allowed = hit.identity.kind != TokenKind::Service || issuer.config.service_tokens;
        (hit.identity.expires_at > now && hit.generation == current && allowed)
            .then_some(hit.identity)
    }

    async fn verify_signature(
        &self,
        issuer: &IssuerVerifier,
        validation: &Validation,
        token: &str,
        alg: Algorithm,
        kid: Option<&str>,
    ) -> Result<Map<String, Value>, AuthError> {
        let mut refreshed = false;
        loop {
            let jwks_keys = issuer.jwks.as_ref().map(|j| j.keys());
            let candidates = candidate_keys(
                &issuer.config.keys,
                jwks_keys.as_ref().map_or(&[][..], |k| k.as_slice()),
                alg,
                kid,
            );
            if candidates.is_empty() {
                match (&issuer.jwks, refreshed, kid) {
                    (Some(jwks), false, _) => {
                        drop(jwks_keys);
                        // Boxed: a JWKS fetch is rare and its future is large.
                        Box::pin(jwks.refresh_for_unknown_kid()).await;
                        refreshed = true;
                        continue;
                    }
                    (_, _, Some(_)) => return Err(AuthError::UnknownKeyId),
                    (_, _, None) => return Err(AuthError::SignatureInvalid),
                }
            }
            for key in candidates {
                match jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, validation) {
                    Ok(data) => return Ok(data.claims),
                    Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => continue,
                    Err(e) => return Err(map_jwt_error(e.kind())),
                }
            }
            return Err(AuthError::SignatureInvalid);
        }
    }

    fn build_identity(
        &self,
        claims: &Map<String, Value>,
        issuer: &IssuerVerifier,
    ) -> Result<Identity, AuthError> {
        let (kind, service) = token_kind(claims, &issuer.config)?;
        let grants = grants(claims, &issuer.config, &self.rule_claims)?;
        // A standard client-credentials token may have no subject: the client is the caller.
        // tollgate's own tokens (with `type`) must name one.
        let standard_service = service.as_ref().filter(|_| !claims.contains_key("type"));
        let subject = match optional_scalar(claims, "user_id")? {
            Some(id) => id,
            None => optional_scalar(claims, "sub")?
                .or_else(|| standard_service.cloned())
                .ok_or_else(|| AuthError::MissingClaim("sub".into()))?,
        };
        let email = optional_text(claims, "email")?;
        let role = optional_text(claims, "role")?;
        let tenant = optional_scalar(claims, "tenant_id")?;
        let expires_at = claims.get("exp").and_then(Value::as_f64).unwrap_or(0.0) as u64;
        let token_id = claims.get("jti").and_then(Value::as_str).map(str::to_owned);
        let issued_at = claims.get("iat").and_then(Value::as_f64).map(|t| t as u64);

        let headers = self.identity_headers(
            claims,
            issuer,
            kind,
            IdentityFields {
                subject: &subject,
                email: email.as_deref(),
                role: role.as_deref(),
                roles: &grants.roles,
                tenant: tenant.as_deref(),
                service: service.as_deref(),
            },
        )?;
        Ok(Identity {
            kind,
            issuer: issuer.config.name.clone(),
            subject,
            role,
            service,
            expires_at,
            token_id,
            issued_at,
            headers,
            grants,
        })
    }

    /// The identity headers for a verified caller: the built-in ones, then the configured
    /// claim headers (a value that is no valid header refuses the token).
    fn identity_headers(
        &self,
        claims: &Map<String, Value>,
        issuer: &IssuerVerifier,
        kind: TokenKind,
        fields: IdentityFields<'_>,
    ) -> Result<Vec<(HeaderName, HeaderValue)>, AuthError> {
        let mut headers = Vec::with_capacity(7 + self.claim_headers.len());
        headers.push((X_USER_ID.clone(), header_value("user_id", fields.subject)?));
        if let Some(email) = fields.email {
            headers.push((X_USER_EMAIL.clone(), header_value("email", email)?));
        }
        if let Some(role) = fields.role {
            headers.push((X_USER_ROLE.clone(), header_value("role", role)?));
        } else if !fields.roles.is_empty() {
            // Roles from `roles_claim`, comma-joined like an array claim header; a role that
            // holds a comma or padding would blur the list, so it invalidates the token.
            let list = Value::Array(fields.roles.iter().cloned().map(Value::String).collect());
            let text = claim_text(&list).ok_or_else(|| AuthError::InvalidClaim("roles".into()))?;
            headers.push((X_USER_ROLE.clone(), header_value("roles", &text)?));
        }
        headers.push((X_USER_TYPE.clone(), HeaderValue::from_static(kind.as_str())));
        headers.push((X_USER_ISSUER.clone(), issuer.header.clone()));
        if let Some(tenant) = fields.tenant {
            headers.push((X_TENANT_ID.clone(), header_value("tenant_id", tenant)?));
        }
        if let Some(service) = fields.service {
            headers.push((X_SERVICE_NAME.clone(), header_value("service", service)?));
        }
        for (path, name) in &self.claim_headers {
            if let Some(value) = lookup(claims, path) {
                let claim = path.join(".");
                let text =
                    claim_text(value).ok_or_else(|| AuthError::InvalidClaim(claim.clone()))?;
                headers.push((name.clone(), header_value(&claim, &text)?));
            }
        }
        Ok(headers)
    }
}

/// The claims that become built-in identity headers.
struct IdentityFields<'a> {
    subject: &'a str,
    email: Option<&'a str>,
    role: Option<&'a str>,
    roles: &'a [String],
    tenant: Option<&'a str>,
    service: Option<&'a str>,
}

/// Whether an introspection answer's `aud` (a string or an array) names one of the issuer's
/// audiences.
fn audience_accepted(claims: &Map<String, Value>, issuer: &IssuerConfig) -> bool {
    let accepted = |aud: &Value| {
        aud.as_str()
            .is_some_and(|a| issuer.audiences.iter().any(|x| x == a))
    };
    match claims.get("aud") {
        Some(Value::Array(items)) => items.iter().any(accepted),
        Some(aud) => accepted(aud),
        None => false,
    }
}

/// The issuer's lifetime policy: `iat` no later than now (plus leeway), and `exp - iat` (or
/// `exp - now` for a token without `iat`) within `max_lifetime` for the token's type. A token
/// valid for a century is refused, however well signed.
fn check_lifetime(
    claims: &Map<String, Value>,
    kind: TokenKind,
    issuer: &IssuerConfig,
    now: u64,
) -> Result<(), AuthError> {
    let exp = claims.get("exp").and_then(Value::as_f64).unwrap_or(0.0);
    let iat = match claims.get("iat") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_f64(),
        Some(_) => return Err(AuthError::InvalidClaim("iat".into())),
    };
    let now = now as f64;
    if iat.is_some_and(|iat| iat > now + issuer.leeway.as_secs_f64()) {
        return Err(AuthError::IssuedInFuture);
    }
    let max = match kind {
        TokenKind::Access => issuer.max_access_lifetime,
        TokenKind::Service => issuer.max_service_lifetime,
    };
    if exp - iat.unwrap_or(now) > max.as_secs_f64() {
        return Err(AuthError::LifetimeTooLong);
    }
    Ok(())
}

fn validation_for(config: &IssuerConfig, alg: Algorithm) -> Validation {
    let mut validation = Validation::new(alg);
    validation.leeway = config.leeway.as_secs();
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.set_issuer(&[&config.issuer]);
    let mut required = vec!["exp", "iss"];
    if config.audiences.is_empty() {
        validation.validate_aud = false;
    } else {
        validation.set_audience(&config.audiences);
        required.push("aud");
    }
    validation.set_required_spec_claims(&required);
    validation
}

/// Splits and decodes the header and the `iss` claim without trusting either.
/// The header's algorithm, if the issuer allows it, with its validation; a token with `crit`
/// or a `typ` other than a JWT's is refused (RFC 7515 §4.1.11, RFC 9068 §2.1).
fn check_header<'a>(
    header: &PreHeader,
    issuer: &'a IssuerVerifier,
) -> Result<(Algorithm, &'a Validation), AuthError> {
    let alg: Algorithm = header
        .alg
        .parse()
        .map_err(|_| AuthError::AlgorithmNotAllowed)?;
    let validation = issuer
        .validations
        .iter()
        .find_map(|(allowed, v)| (*allowed == alg).then_some(v))
        .ok_or(AuthError::AlgorithmNotAllowed)?;
    if header.crit.is_some() {
        return Err(AuthError::UnsupportedCritical);
    }
    if let Some(typ) = &header.typ
        && !["jwt", "at+jwt", "application/jwt", "application/at+jwt"]
            .iter()
            .any(|t| typ.eq_ignore_ascii_case(t))
    {
        return Err(AuthError::UnsupportedTyp);
    }
    Ok((alg, validation))
}

fn pre_parse(token: &str) -> Result<(PreHeader, String), AuthError> {
    let valid_chars = token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !valid_chars {
        return Err(AuthError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed);
    };
    if signature.is_empty() {
        return Err(AuthError::SignatureInvalid);
    }
    let header: PreHeader = decode_json(header)?;
    let payload: PrePayload = decode_json(payload)?;
    // jsonwebtoken reports an exp it cannot read as a time (a string, a negative number,
    // 1e300) as missing; say what is really wrong.
    let is_time = |v: &Value| {
        v.as_f64()
            .is_some_and(|t| t.is_finite() && (0.0..=u64::MAX as f64).contains(&t))
    };
    for (name, value) in [("exp", &payload.exp), ("nbf", &payload.nbf)] {
        if value.as_ref().is_some_and(|v| !v.is_null() && !is_time(v)) {
            return Err(AuthError::InvalidClaim(name.to_owned()));
        }
    }
    match payload.iss {
        Some(Value::String(iss)) => Ok((header, iss)),
        _ => Err(AuthError::IssuerNotAccepted),
    }
}

fn decode_json<T: for<'de> Deserialize<'de>>(part: &str) -> Result<T, AuthError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| AuthError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| AuthError::Malformed)
}

/// Keys that may verify a token: those with its `kid`, else kid-less keys; all of the
/// algorithm's family.
fn candidate_keys<'a>(
    configured: &'a [VerifyKey],
    fetched: &'a [VerifyKey],
    alg: Algorithm,
    kid: Option<&str>,
) -> Vec<&'a VerifyKey> {
    let usable = || {
        configured
            .iter()
            .chain(fetched)
            .filter(move |k| k.accepts(alg))
    };
    match kid {
        Some(kid) => {
            let exact: Vec<_> = usable().filter(|k| k.kid.as_deref() == Some(kid)).collect();
            if exact.is_empty() {
                usable().filter(|k| k.kid.is_none()).collect()
            } else {
                exact
            }
        }
        None => usable().collect(),
    }
}

fn map_jwt_error(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidIssuer => AuthError::IssuerNotAccepted,
        ErrorKind::InvalidAudience => AuthError::AudienceNotAccepted,
        ErrorKind::InvalidSignature => AuthError::SignatureInvalid,
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => AuthError::AlgorithmNotAllowed,
        ErrorKind::MissingRequiredClaim(claim) => AuthError::MissingClaim(claim.clone()),
        ErrorKind::InvalidClaimFormat(claim) => AuthError::InvalidClaim(claim.clone()),
        _ => AuthError::Malformed,
    }
}

/// A claim as a header value: printable ASCII only, so a claim can never split or corrupt a
/// header (CR, LF, NUL and non-ASCII make the token invalid), and no leading or trailing
/// whitespace, which upstreams trim (`"billing "` would pass as `billing`).
fn header_value(claim: &str, text: &str) -> Result<HeaderValue, AuthError> {
    if !text.bytes().all(|b| (0x20..0x7f).contains(&b)) || text.trim() != text {
        return Err(AuthError::InvalidClaim(claim.to_owned()));
    }
    HeaderValue::from_str(text).map_err(|_| AuthError::InvalidClaim(claim.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_config::{Config, Env};

    const SECRET: &str = "unit-test-secret-that-is-long-enough!!";

    fn verifier(extra: &str) -> Verifier {
        let toml = format!(
            "[[issuers]]\nissuer = \"t\"\nalgorithms = [\"HS256\"]\nsecret = \"{SECRET}\"\n{extra}"
        );
        let config =
            Config::from_toml(&toml, "t.toml", &Env::from_map::<_, String, String>([])).unwrap();
        Verifier::new(&config.issuers, &config.identity, std::sync::Arc::new(()))
    }

    fn token(exp: u64) -> String {
        let claims = serde_json::json!({"iss": "t", "sub": "u", "type": "access", "exp": exp});
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn verified_tokens_are_cached_by_default_until_exp() {
        let v = verifier("");
        let now = jsonwebtoken::get_current_timestamp();
        let t = token(now + 600);
        assert_eq!(v.verify(&t).await.unwrap().subject, "u");
        assert_eq!(
            v.cached_tokens(),
            1,
            "cache on without an [identity] section"
        );
        assert!(v.cached(&t, now).is_some());
        assert!(
            v.cached(&t, now + 600).is_none(),
            "an entry never outlives exp"
        );
        assert!(v.verify(&t).await.is_ok());
        assert_eq!(v.cached_tokens(), 1);
    }

    #[tokio::test]
    async fn cache_can_be_disabled_and_failures_are_not_cached() {
        let v = verifier("[identity]\ntoken_cache_size = 0\n");
        let now = jsonwebtoken::get_current_timestamp();
        assert!(v.verify(&token(now + 600)).await.is_ok());
        assert_eq!(v.cached_tokens(), 0);
        let v = verifier("");
        assert_eq!(
            v.verify(&token(now - 600)).await.unwrap_err(),
            AuthError::Expired
        );
        assert_eq!(v.cached_tokens(), 0);
    }
}

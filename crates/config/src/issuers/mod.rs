//! Validation of `[[issuers]]`: algorithms, secrets and keys are loaded once, here.

pub mod introspection;

use std::fmt;
use std::time::Duration;

use http::Uri;
use jsonwebtoken::{Algorithm, DecodingKey};

use super::Invalid;
use super::env::Env;
use super::raw::{HumanDuration, RawIssuer, RawSigningKey};
use crate::keys::{self, Family, VerifyKey};

/// The shortest HMAC secret accepted (RFC 7518 §3.2: at least the hash size).
pub const MIN_SECRET_BYTES: usize = 32;

/// The HMAC secret the default config falls back to when `TOLLGATE_JWT_SECRET` is unset.
pub const DEVELOPMENT_SECRET: &str = "tollgate-development-secret-do-not-use-in-production";

/// Bytes that must not be shown: `Debug` prints `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps secret bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The secret bytes; callers must not log them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
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

/// An HMAC secret with a key id, for rotation.
#[derive(Debug, Clone)]
pub struct KidSecret {
    /// Key id.
    pub kid: String,
    /// The secret.
    pub secret: Secret,
    /// When it starts signing.
    pub active_from: Option<std::time::SystemTime>,
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
    pub roots: super::TrustRoots,
    /// With OIDC discovery, `url` is the discovery document's, whose `issuer` must equal
    /// this exactly (the mix-up defence) and whose `jwks_uri` gives the key set.
    pub discovery: Option<String>,
}

/// A private signing key, loaded.
#[derive(Clone)]
pub struct SigningKeyConfig {
    /// Algorithm tokens are signed with.
    pub algorithm: Algorithm,
    /// `kid` header value.
    pub kid: Option<String>,
    /// The PEM text of the private key.
    pub pem: Secret,
    /// Where it was read from.
    pub file: String,
    /// When it starts signing (until then: published and accepted only).
    pub active_from: Option<std::time::SystemTime>,
}

impl fmt::Debug for SigningKeyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeyConfig")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .field("file", &self.file)
            .finish_non_exhaustive()
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

/// Whether one of `algorithms` is of `family`.
fn wants(algorithms: &[Algorithm], family: Family) -> bool {
    algorithms.iter().any(|a| Family::of(*a) == Some(family))
}

/// Reads a secret file, without the one line ending an editor adds.
fn read_secret_file(path: &str) -> Result<Vec<u8>, String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read {path:?}: {e}"))?;
    let trimmed = text.strip_suffix(b"\n").unwrap_or(&text);
    Ok(trimmed.strip_suffix(b"\r").unwrap_or(trimmed).to_vec())
}

/// Checks that an HMAC secret is long enough (reported at `length_key`) and that an HS
/// algorithm is allowed to use it (reported at `algorithm_key`).
fn check_hmac_secret(
    secret: &Secret,
    algorithms: &[Algorithm],
    length_key: &str,
    algorithm_key: &str,
) -> Result<(), Invalid> {
    if secret.expose().len() < MIN_SECRET_BYTES {
        return Err(Invalid::new(
            length_key,
            format!(
                "HMAC secret is {} bytes; at least {MIN_SECRET_BYTES} are required",
                secret.expose().len()
            ),
        ));
    }
    if !wants(algorithms, Family::Hmac) {
        return Err(Invalid::new(
            algorithm_key,
            "a secret needs an HS256/384/512 algorithm",
        ));
    }
    Ok(())
}

/// Loads `secret` or `secret_file` and adds it to `keys`; HS algorithms need it unless
/// `secrets` is set.
fn load_secret(
    raw: &RawIssuer,
    algorithms: &[Algorithm],
    keys: &mut Vec<VerifyKey>,
) -> Result<Option<Secret>, Invalid> {
    let secret = match (&raw.secret, &raw.secret_file) {
        (Some(_), Some(_)) => {
            return Err(Invalid::new(
                "secret_file",
                "set either secret or secret_file",
            ));
        }
        (Some(s), None) => Secret::new(s.as_bytes().to_vec()),
        (None, Some(path)) => {
            Secret::new(read_secret_file(path).map_err(|e| Invalid::new("secret_file", e))?)
        }
        (None, None) => {
            if wants(algorithms, Family::Hmac) && raw.secrets.is_empty() {
                return Err(Invalid::new(
                    "secret",
                    "HS algorithms need a secret, secret_file or secrets",
                ));
            }
            return Ok(None);
        }
    };
    let length_key = if raw.secret.is_some() {
        "secret"
    } else {
        "secret_file"
    };
    check_hmac_secret(&secret, algorithms, length_key, "secret")?;
    keys.push(VerifyKey {
        kid: None,
        family: Family::Hmac,
        algorithm: None,
        key: DecodingKey::from_secret(secret.expose()),
    });
    Ok(Some(secret))
}

/// Loads `public_keys` (inline PEM or files) into `keys`, each usable with `algorithms`.
fn load_public_keys(
    raw: &RawIssuer,
    algorithms: &[Algorithm],
    keys: &mut Vec<VerifyKey>,
) -> Result<(), Invalid> {
    for (i, pk) in raw.public_keys.iter().enumerate() {
        let key = format!("public_keys[{i}]");
        let pem = match (&pk.pem, &pk.pem_file) {
            (Some(pem), None) => pem.as_bytes().to_vec(),
            (None, Some(path)) => std::fs::read(path).map_err(|e| {
                Invalid::new(
                    format!("{key}.pem_file"),
                    format!("cannot read {path:?}: {e}"),
                )
            })?,
            _ => return Err(Invalid::new(&key, "set exactly one of pem or pem_file")),
        };
        let mut verify = keys::from_pem(&pem).map_err(|e| Invalid::new(&key, e))?;
        keys::usable_with(&verify, algorithms).map_err(|e| Invalid::new(&key, e))?;
        verify.kid = pk.kid.clone();
        keys.push(verify);
    }
    Ok(())
}

/// Loads `signing_key` and `signing_keys` (which must name their `kid`), adding their public
/// halves to `keys`.
fn load_signing_keys(
    raw: &RawIssuer,
    keys: &mut Vec<VerifyKey>,
) -> Result<Vec<SigningKeyConfig>, Invalid> {
    let mut signing_keys = Vec::new();
    if let Some(sk) = &raw.signing_key {
        signing_keys.push(load_signing_key(sk, keys).map_err(|e| e.under("signing_key"))?);
    }
    for (i, sk) in raw.signing_keys.iter().enumerate() {
        let loaded =
            load_signing_key(sk, keys).map_err(|e| e.under(&format!("signing_keys[{i}]")))?;
        if loaded.kid.is_none() {
            return Err(Invalid::new(
                format!("signing_keys[{i}].kid"),
                "required: tokens name the key that signed them",
            ));
        }
        signing_keys.push(loaded);
    }
    Ok(signing_keys)
}

/// Loads the kid-tagged HMAC secrets (`secrets`), adding each to `keys`.
fn load_kid_secrets(
    raw: &RawIssuer,
    algorithms: &[Algorithm],
    keys: &mut Vec<VerifyKey>,
) -> Result<Vec<KidSecret>, Invalid> {
    let mut kid_secrets = Vec::new();
    for (i, rs) in raw.secrets.iter().enumerate() {
        let key = format!("secrets[{i}]");
        let secret = match (&rs.secret, &rs.secret_file) {
            (Some(s), None) => Secret::new(s.as_bytes().to_vec()),
            (None, Some(path)) => Secret::new(
                read_secret_file(path)
                    .map_err(|e| Invalid::new(format!("{key}.secret_file"), e))?,
            ),
            _ => {
                return Err(Invalid::new(
                    &key,
                    "set exactly one of secret or secret_file",
                ));
            }
        };
        check_hmac_secret(&secret, algorithms, &key, &key)?;
        keys.push(VerifyKey {
            kid: Some(rs.kid.clone()),
            family: Family::Hmac,
            algorithm: None,
            key: DecodingKey::from_secret(secret.expose()),
        });
        kid_secrets.push(KidSecret {
            kid: rs.kid.clone(),
            secret,
            active_from: parse_active_from(rs.active_from.as_deref())
                .map_err(|e| Invalid::new(format!("{key}.active_from"), e))?,
        });
    }
    Ok(kid_secrets)
}

/// Checks `jwks_url` (no credentials, http(s), encrypted unless allowed) and loads
/// `jwks_ca_file`, which means nothing without it.
fn load_jwks(raw: &RawIssuer) -> Result<Option<JwksConfig>, Invalid> {
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
        roots: super::TrustRoots::load(raw.jwks_ca_file.as_deref())
            .map_err(|e| Invalid::new("jwks_ca_file", e))?,
        url: uri,
        refresh: duration_or(raw.jwks_refresh, 300),
        timeout: duration_or(raw.jwks_timeout, 5),
        min_refresh_interval: duration_or(raw.jwks_min_refresh_interval, 10),
        discovery,
    }))
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

/// Loads the private key and adds its public half to the issuer's verification keys.
fn load_signing_key(
    raw: &RawSigningKey,
    keys: &mut Vec<VerifyKey>,
) -> Result<SigningKeyConfig, Invalid> {
    let algorithm =
        keys::parse_algorithm(&raw.algorithm).map_err(|e| Invalid::new("algorithm", e))?;
    let path = &raw.private_key_file;
    let pem = std::fs::read(path)
        .map_err(|e| Invalid::new("private_key_file", format!("cannot read {path:?}: {e}")))?;
    let encoding = match Family::of(algorithm) {
        Some(Family::Rsa) => jsonwebtoken::EncodingKey::from_rsa_pem(&pem),
        Some(Family::Ec) => jsonwebtoken::EncodingKey::from_ec_pem(&pem),
        Some(Family::Ed) => jsonwebtoken::EncodingKey::from_ed_pem(&pem),
        Some(Family::Hmac) | None => {
            return Err(Invalid::new(
                "algorithm",
                "HMAC issuers sign with their secret; signing_key is for private keys",
            ));
        }
    }
    .map_err(|e| {
        Invalid::new(
            "private_key_file",
            format!("{path:?}: not a {algorithm:?} private key: {e}"),
        )
    })?;
    let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&encoding, algorithm)
        .map_err(|e| Invalid::new("private_key_file", format!("{path:?}: {e}")))?;
    let mut verify = keys::from_jwk(&jwk)
        .map_err(|e| Invalid::new("private_key_file", format!("{path:?}: {e}")))?;
    verify.kid = raw.kid.clone();
    verify.algorithm = Some(algorithm);
    keys.push(verify);
    Ok(SigningKeyConfig {
        algorithm,
        kid: raw.kid.clone(),
        pem: Secret::new(pem),
        file: path.clone(),
        active_from: parse_active_from(raw.active_from.as_deref())
            .map_err(|e| Invalid::new("active_from", e))?,
    })
}

/// `active_from`: an RFC 3339 time.
fn parse_active_from(text: Option<&str>) -> Result<Option<std::time::SystemTime>, String> {
    text.map(|t| {
        humantime::parse_rfc3339_weak(t)
            .map_err(|e| format!("{t:?} is not an RFC 3339 time like 2026-01-15T00:00:00Z: {e}"))
    })
    .transpose()
}

//! Minting and inspecting tokens: `tollgate token issue`, `issue-access` and `verify`.
//!
//! Minted tokens carry exactly the claims the gateway's verifier ([`crate::auth::verify`])
//! reads: service tokens `type = "service"` with `is_service = true`, user access tokens
//! `type = "access"`. They are signed with the `[tokens]` issuer's signing key, or its HMAC
//! secret, and inspected with the same [`Verifier`] the gateway runs.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::keys::Family;
use crate::auth::{AuthError, Verifier};
use crate::config::{Config, IssuerConfig};
use crate::identity::{Identity, TokenKind};
use crate::keygen::{self, KeygenError};
use tollgate_http::BoxFuture;

mod output;

pub use output::{OutputFormat, SecretMeta, in_words, render, rfc3339, variable_name};

/// Default lifetime of a service token.
pub const DEFAULT_SERVICE_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

/// Default lifetime of a user access token.
pub const DEFAULT_ACCESS_TTL: Duration = Duration::from_secs(15 * 60);

/// Default `role` of a service token.
pub const DEFAULT_SERVICE_ROLE: &str = "admin";

/// Domain of the `email` claim of service tokens: `<service>@internal.service`.
pub const SERVICE_EMAIL_DOMAIN: &str = "internal.service";

/// Prefix of the variable (and Kubernetes Secret key) holding a service's token.
pub const VARIABLE_PREFIX: &str = "SERVICE_TOKEN_";

/// The latest expiry that RFC 3339 can write: 9999-12-31T23:59:59Z.
const MAX_EXPIRY: u64 = 253_402_300_799;

/// Why a token could not be minted or printed.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// No `[[issuers]]` entry has a secret or signing key.
    #[error(
        "no issuer can sign: give an [[issuers]] entry a secret, secret_file or signing_key (and name it in [tokens] issuer)"
    )]
    NoSigningIssuer,
    /// The `[tokens]` issuer has neither a signing key nor a secret.
    #[error("issuer {0:?} has no secret or signing_key to sign with")]
    NoSigningMaterial(String),
    /// The signing key's algorithm is not in the issuer's allow-list, so the gateway would
    /// refuse every token it signs.
    #[error("issuer {issuer:?}: signing_key algorithm {algorithm:?} is not in its algorithms")]
    AlgorithmNotAllowed {
        /// The issuer.
        issuer: String,
        /// The signing key's algorithm.
        algorithm: Algorithm,
    },
    /// The issuer has a secret but no HS algorithm.
    #[error("issuer {0:?} has a secret but no HS256/384/512 algorithm to sign with")]
    NoHmacAlgorithm(String),
    /// The signing key could not be loaded.
    #[error(transparent)]
    Key(#[from] KeygenError),
    /// Signing failed.
    #[error("cannot sign the token: {0}")]
    Sign(#[source] jsonwebtoken::errors::Error),
    /// `--all` with an empty service registry.
    #[error("--all: the config lists no services; add [tokens] services = [\"...\"]")]
    NoServices,
    /// A service name tollgate cannot turn into a variable name.
    #[error("invalid service name {0:?}: use ASCII letters, digits, '-' and '_'")]
    InvalidServiceName(String),
    /// Two services would share one variable.
    #[error("services {first:?} and {second:?} both map to {variable}")]
    DuplicateVariable {
        /// The first service.
        first: String,
        /// The second service.
        second: String,
        /// The variable they share.
        variable: String,
    },
    /// A claim value the gateway could not turn into an identity header.
    #[error("invalid {claim} {value:?}: {reason}")]
    InvalidClaim {
        /// The claim.
        claim: &'static str,
        /// Its value.
        value: String,
        /// Why.
        reason: &'static str,
    },
    /// A TTL under one second or past the year 9999.
    #[error("invalid ttl: {0}")]
    InvalidTtl(&'static str),
    /// A Kubernetes object name or namespace that Kubernetes would refuse.
    #[error("invalid {what} {value:?}: {rule}")]
    InvalidKubernetesName {
        /// `--secret-name` or `--namespace`.
        what: &'static str,
        /// The value.
        value: String,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// Not one of `text`, `json`, `env`, `k8s-secret`.
    #[error("unknown format {0:?}: use text, json, env or k8s-secret")]
    UnknownFormat(String),
}

/// A key ready to sign tokens for one issuer.
pub struct Signer {
    issuer: String,
    algorithm: Algorithm,
    kid: Option<String>,
    key: EncodingKey,
}

/// Claims of a service token, exactly as `tollgate token issue` writes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceClaims {
    /// The service name.
    pub sub: String,
    /// The service name.
    pub user_id: String,
    /// The service name.
    pub service: String,
    /// Always `service`.
    #[serde(rename = "type")]
    pub token_type: String,
    /// Always true.
    pub is_service: bool,
    /// Role (default `admin`).
    pub role: String,
    /// `<service>@internal.service`.
    pub email: String,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// The issuer.
    pub iss: String,
    /// Random token id (UUID v4).
    pub jti: String,
}

/// Claims of a user access token, as `tollgate token issue-access` writes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user id.
    pub sub: String,
    /// The user id.
    pub user_id: String,
    /// The user's email, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The user's role, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The user's tenant, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// Always `access`.
    #[serde(rename = "type")]
    pub token_type: String,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// The issuer.
    pub iss: String,
    /// Random token id (UUID v4).
    pub jti: String,
}

/// Who a user access token is for.
#[derive(Debug, Clone, Default)]
pub struct AccessSubject {
    /// `sub` and `user_id`.
    pub user_id: String,
    /// `email`.
    pub email: Option<String>,
    /// `role`.
    pub role: Option<String>,
    /// `tenant_id`.
    pub tenant_id: Option<String>,
}

/// A minted token.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The service name (for access tokens, the user id).
    pub name: String,
    /// The compact JWS.
    pub token: String,
    /// Expiry, seconds since the epoch.
    pub expires_at: u64,
    /// The `iss` claim.
    pub issuer: String,
}

/// What `token verify` found.
#[derive(Debug)]
pub struct Inspection {
    /// The decoded header, if the token has one; shown even when the token is invalid.
    pub header: Option<Value>,
    /// The decoded claims, if the token has them; shown even when the token is invalid.
    pub claims: Option<Value>,
    /// The verifier's answer.
    pub verdict: Result<Arc<Identity>, AuthError>,
}

impl std::fmt::Debug for Signer {
    // The key never goes to logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("issuer", &self.issuer)
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// The signer of the config's `[tokens]` issuer.
    pub fn from_config(config: &Config) -> Result<Self, TokenError> {
        let issuer = config
            .tokens
            .signing_issuer
            .and_then(|i| config.issuers.get(i))
            .ok_or(TokenError::NoSigningIssuer)?;
        Self::for_issuer(issuer)
    }

    /// Signs with the issuer's private key active now if it has one, else with its HMAC secret
    /// active now (`secrets`, then `secret`) and the first HS algorithm it allows.
    pub fn for_issuer(issuer: &IssuerConfig) -> Result<Self, TokenError> {
        let now = std::time::SystemTime::now();
        let hmac = issuer
            .secret_at(now)
            .map(|s| (Some(s.kid.clone()), &s.secret))
            .or_else(|| issuer.secret.as_ref().map(|s| (None, s)));
        let hmac_algorithm = || {
            issuer
                .algorithms
                .iter()
                .copied()
                .find(|a| Family::of(*a) == Some(Family::Hmac))
                .ok_or_else(|| TokenError::NoHmacAlgorithm(issuer.issuer.clone()))
        };
        let (algorithm, kid, key) = match (issuer.signing_key_at(now), hmac) {
            (Some(signing), _) if !issuer.algorithms.contains(&signing.algorithm) => {
                return Err(TokenError::AlgorithmNotAllowed {
                    issuer: issuer.issuer.clone(),
                    algorithm: signing.algorithm,
                });
            }
            (Some(signing), _) => (
                signing.algorithm,
                signing.kid.clone(),
                keygen::encoding_key(signing)?,
            ),
            (None, Some((kid, secret))) => (
                hmac_algorithm()?,
                kid,
                EncodingKey::from_secret(secret.expose()),
            ),
            (None, None) => return Err(TokenError::NoSigningMaterial(issuer.issuer.clone())),
        };
        Ok(Self {
            issuer: issuer.issuer.clone(),
            algorithm,
            kid,
            key,
        })
    }

    /// The `iss` value of the tokens this signer mints.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The signing algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Signs `claims`, with `kid` in the header when the key has one.
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, TokenError> {
        let mut header = Header::new(self.algorithm);
        header.kid = self.kid.clone();
        jsonwebtoken::encode(&header, claims, &self.key).map_err(TokenError::Sign)
    }
}

impl Inspection {
    /// Whether the gateway would accept the token.
    pub fn is_valid(&self) -> bool {
        self.verdict.is_ok()
    }

    /// Header and claims as pretty JSON (marked unverified when the token is invalid), or an
    /// empty string for a token that is not a JWT.
    pub fn details(&self) -> String {
        let note = if self.is_valid() { "" } else { " (unverified)" };
        let mut out = String::new();
        for (title, part) in [("header", &self.header), ("claims", &self.claims)] {
            if let Some(value) = part {
                let pretty = serde_json::to_string_pretty(value).unwrap_or_default();
                let _ = writeln!(out, "{title}{note}:\n{pretty}");
            }
        }
        out
    }

    /// One line: `valid, service token for orders, expires in 364 days`, or
    /// `invalid: token expired (expired 3 minutes ago)`.
    pub fn summary(&self, now: u64) -> String {
        match &self.verdict {
            Ok(identity) => {
                let who = match (identity.kind, &identity.service) {
                    (TokenKind::Service, Some(service)) => format!("service token for {service}"),
                    (TokenKind::Service, None) => "service token".to_owned(),
                    (TokenKind::Access, _) => format!("access token for user {}", identity.subject),
                };
                let when = match identity.expires_at.checked_sub(now) {
                    Some(left) if left > 0 => format!("expires in {}", in_words(left)),
                    _ => "expired, accepted within the issuer's leeway".to_owned(),
                };
                format!("valid, {who}, {when}")
            }
            Err(error) => match self.detail(error, now) {
                Some(detail) => format!("invalid: {error} ({detail})"),
                None => format!("invalid: {error}"),
            },
        }
    }

    fn detail(&self, error: &AuthError, now: u64) -> Option<String> {
        let claim = |name: &str| self.claims.as_ref().and_then(|c| c.get(name));
        let header = |name: &str| self.header.as_ref().and_then(|h| h.get(name));
        match error {
            AuthError::Expired => {
                let exp = claim("exp")?.as_u64()?;
                Some(format!("expired {} ago", in_words(now.saturating_sub(exp))))
            }
            AuthError::NotYetValid => {
                let nbf = claim("nbf")?.as_u64()?;
                Some(format!("valid in {}", in_words(nbf.saturating_sub(now))))
            }
            AuthError::IssuerNotAccepted => Some(match claim("iss") {
                Some(iss) => format!("iss {iss}"),
                None => "no iss claim".to_owned(),
            }),
            AuthError::UnknownKeyId => Some(format!("kid {}", header("kid")?)),
            AuthError::AlgorithmNotAllowed => Some(format!("alg {}", header("alg")?)),
            _ => None,
        }
    }
}

pub use tollgate_state::clock::now;

/// Mints a service token for `service`.
pub fn issue_service_token(
    signer: &Signer,
    service: &str,
    role: &str,
    ttl: Duration,
    now: u64,
) -> Result<IssuedToken, TokenError> {
    check_service_name(service)?;
    check_header_text("role", role)?;
    let exp = expiry(now, ttl)?;
    let claims = ServiceClaims {
        sub: service.to_owned(),
        user_id: service.to_owned(),
        service: service.to_owned(),
        token_type: TokenKind::Service.as_str().to_owned(),
        is_service: true,
        role: role.to_owned(),
        email: format!("{service}@{SERVICE_EMAIL_DOMAIN}"),
        iat: now,
        exp,
        iss: signer.issuer.clone(),
        jti: uuid::Uuid::new_v4().to_string(),
    };
    Ok(IssuedToken {
        name: service.to_owned(),
        token: signer.sign(&claims)?,
        expires_at: exp,
        issuer: signer.issuer.clone(),
    })
}

/// Mints one service token per service, refusing names that would share a variable.
pub fn issue_service_tokens(
    signer: &Signer,
    services: &[String],
    role: &str,
    ttl: Duration,
    now: u64,
) -> Result<Vec<IssuedToken>, TokenError> {
    for (i, service) in services.iter().enumerate() {
        check_service_name(service)?;
        let variable = variable_name(service);
        if let Some(first) = services[..i].iter().find(|s| variable_name(s) == variable) {
            return Err(TokenError::DuplicateVariable {
                first: first.clone(),
                second: service.clone(),
                variable,
            });
        }
    }
    services
        .iter()
        .map(|service| issue_service_token(signer, service, role, ttl, now))
        .collect()
}

/// Mints a user access token.
pub fn issue_access_token(
    signer: &Signer,
    subject: &AccessSubject,
    ttl: Duration,
    now: u64,
) -> Result<IssuedToken, TokenError> {
    if subject.user_id.is_empty() {
        return Err(TokenError::InvalidClaim {
            claim: "user_id",
            value: String::new(),
            reason: "must not be empty",
        });
    }
    check_header_text("user_id", &subject.user_id)?;
    for (claim, value) in [
        ("email", &subject.email),
        ("role", &subject.role),
        ("tenant_id", &subject.tenant_id),
    ] {
        if let Some(value) = value {
            check_header_text(claim, value)?;
        }
    }
    let exp = expiry(now, ttl)?;
    let claims = AccessClaims {
        sub: subject.user_id.clone(),
        user_id: subject.user_id.clone(),
        email: subject.email.clone(),
        role: subject.role.clone(),
        tenant_id: subject.tenant_id.clone(),
        token_type: TokenKind::Access.as_str().to_owned(),
        iat: now,
        exp,
        iss: signer.issuer.clone(),
        jti: uuid::Uuid::new_v4().to_string(),
    };
    Ok(IssuedToken {
        name: subject.user_id.clone(),
        token: signer.sign(&claims)?,
        expires_at: exp,
        issuer: signer.issuer.clone(),
    })
}

/// Verifies `token` with the gateway's own [`Verifier`] for `config`. Issuers with a
/// `jwks_url` fetch their key set on demand, so they need the network.
#[inline(never)]
pub fn inspect<'a>(config: &'a Config, token: &'a str) -> BoxFuture<'a, Inspection> {
    Box::pin(async move {
        // The config's revocation list too: a revoked token is reported as such.
        let verifier = Verifier::for_config(config, std::sync::Arc::new(()));
        verifier.revocations().read_once().await;
        let verdict = verifier.verify(token).await;
        let mut parts = token.split('.');
        let header = parts.next().and_then(decode_part);
        let claims = parts.next().and_then(decode_part);
        Inspection {
            header,
            claims,
            verdict,
        }
    })
}

fn expiry(now: u64, ttl: Duration) -> Result<u64, TokenError> {
    if ttl.as_secs() == 0 {
        return Err(TokenError::InvalidTtl("must be at least 1s"));
    }
    now.checked_add(ttl.as_secs())
        .filter(|exp| *exp <= MAX_EXPIRY)
        .ok_or(TokenError::InvalidTtl("expires after the year 9999"))
}

fn check_service_name(service: &str) -> Result<(), TokenError> {
    let valid = !service.is_empty()
        && service
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(TokenError::InvalidServiceName(service.to_owned()))
    }
}

/// The gateway turns these claims into headers and refuses anything but printable ASCII.
fn check_header_text(claim: &'static str, value: &str) -> Result<(), TokenError> {
    if value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        Ok(())
    } else {
        Err(TokenError::InvalidClaim {
            claim,
            value: value.to_owned(),
            reason: "use printable ASCII only",
        })
    }
}

fn decode_part(part: &str) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    serde_json::from_slice::<Value>(&bytes)
        .ok()
        .filter(Value::is_object)
}

#[cfg(test)]
mod tests {
    use super::output::check_kubernetes_name;
    use super::*;
    use crate::config::{Env, IdentityConfig};

    fn hmac_issuer() -> IssuerConfig {
        let toml = r#"
[[issuers]]
issuer = "https://t.test"
algorithms = ["RS256", "HS384"]
secret = "unit-test-secret-that-is-long-enough-for-hmac"
"#;
        let config = Config::from_toml(
            toml,
            "t.toml",
            &Env::from_map(Vec::<(String, String)>::new()),
        )
        .unwrap();
        config.issuers[0].clone()
    }

    fn decode(token: &str) -> Value {
        decode_part(token.split('.').nth(1).unwrap()).unwrap()
    }

    #[test]
    fn service_token_has_exactly_the_documented_claims() {
        let signer = Signer::for_issuer(&hmac_issuer()).unwrap();
        assert_eq!(signer.algorithm(), Algorithm::HS384);
        let issued =
            issue_service_token(&signer, "orders", "admin", DEFAULT_SERVICE_TTL, 1000).unwrap();
        let claims = decode(&issued.token);
        let mut keys: Vec<_> = claims.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "email",
                "exp",
                "iat",
                "is_service",
                "iss",
                "jti",
                "role",
                "service",
                "sub",
                "type",
                "user_id"
            ]
        );
        assert_eq!(claims["email"], "orders@internal.service");
        assert_eq!(claims["exp"], 1000 + 365 * 86_400);
        assert!(uuid::Uuid::parse_str(claims["jti"].as_str().unwrap()).is_ok());
    }

    #[test]
    fn access_token_verifies_with_the_gateway_verifier() {
        let issuer = hmac_issuer();
        let signer = Signer::for_issuer(&issuer).unwrap();
        let subject = AccessSubject {
            user_id: "42".into(),
            tenant_id: Some("t-1".into()),
            ..AccessSubject::default()
        };
        let issued = issue_access_token(&signer, &subject, DEFAULT_ACCESS_TTL, now()).unwrap();
        assert!(decode(&issued.token).get("email").is_none());
        let identity = IdentityConfig {
            claim_headers: Vec::new(),
            token_cache_size: 0,
            rule_claims: Vec::new(),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let verified = runtime
            .block_on(
                Verifier::new(&[issuer], &identity, std::sync::Arc::new(())).verify(&issued.token),
            )
            .unwrap();
        assert_eq!(verified.kind, TokenKind::Access);
        assert_eq!(verified.subject, "42");
    }

    #[test]
    fn names_that_would_collide_or_break_headers_are_refused() {
        let signer = Signer::for_issuer(&hmac_issuer()).unwrap();
        let services = ["a-b".to_owned(), "a_b".to_owned()];
        assert!(matches!(
            issue_service_tokens(&signer, &services, "admin", DEFAULT_SERVICE_TTL, 0),
            Err(TokenError::DuplicateVariable { .. })
        ));
        for bad in ["", "a b", "a.b", "é"] {
            assert!(check_service_name(bad).is_err(), "{bad:?}");
        }
        assert!(issue_service_token(&signer, "x", "ad\nmin", DEFAULT_SERVICE_TTL, 0).is_err());
        assert!(issue_service_token(&signer, "x", "admin", Duration::from_millis(10), 0).is_err());
        assert_eq!(variable_name("billing-api"), "SERVICE_TOKEN_BILLING_API");
    }

    #[test]
    fn a_signing_key_outside_the_allow_list_is_refused() {
        let toml = format!(
            "[[issuers]]\nissuer = \"i\"\nalgorithms = [\"ES384\"]\nsigning_key = {{ private_key_file = \"{}/tests/fixtures/keys/ec256.key\", algorithm = \"ES256\" }}\n",
            env!("CARGO_MANIFEST_DIR")
        );
        let env = Env::from_map(Vec::<(String, String)>::new());
        let config = Config::from_toml(&toml, "t.toml", &env).unwrap();
        assert!(matches!(
            Signer::from_config(&config),
            Err(TokenError::AlgorithmNotAllowed { .. })
        ));
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(in_words(1), "1 second");
        assert_eq!(in_words(180), "3 minutes");
        assert_eq!(in_words(15 * 60), "15 minutes");
        assert_eq!(in_words(364 * 86_400 + 5), "364 days");
        assert_eq!(in_words(15 * 60 - 1), "15 minutes");
        assert_eq!(in_words(365 * 86_400 - 1), "365 days");
        assert_eq!(in_words(2 * 3_600 - 1), "2 hours");
        assert_eq!(in_words(30 * 3_600), "30 hours");
        assert_eq!(in_words(45), "45 seconds");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn kubernetes_names_are_checked() {
        assert!(check_kubernetes_name("n", "tollgate-service-tokens", 253, true).is_ok());
        assert!(check_kubernetes_name("n", "a.b", 63, false).is_err());
        assert!(check_kubernetes_name("n", "Upper", 63, false).is_err());
        assert!(check_kubernetes_name("n", "-a", 63, false).is_err());
        assert!(check_kubernetes_name("n", "", 63, false).is_err());
    }
}

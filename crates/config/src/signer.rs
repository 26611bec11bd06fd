//! The identity assertion: a short-lived JWT, signed per request, that binds the caller's
//! identity to the request tollgate forwarded (method, path, host, request id).
//!
//! Identity headers are only as trustworthy as the network: anything that reaches an upstream
//! without passing through tollgate can set `x-user-id` too. An upstream that verifies
//! `x-tollgate-assertion` with the public key published at the admin
//! `/.well-known/jwks.json`, and compares `htm`/`htu`/`host` with the request it actually
//! received, accepts only identities tollgate vouched for, for this very request.
//!
//! The key is loaded and checked once, when the config is validated ([`AssertionSigner::load`]).
//! Per request, the claims are serialised from borrowed data straight into the token's text
//! (one allocation), and signed once; the header segment is rendered at load. The key is read
//! with `jsonwebtoken`'s `EncodingKey` and kept parsed: `jsonwebtoken`'s own signing parses the
//! PKCS#8 key again on every call (for Ed25519 it also re-derives the public key, about the
//! cost of a second signature). Each algorithm signs with the fastest implementation at hand
//! (`benches/hot_path.rs`, per assertion, on a 2-core EPYC): Ed25519 with `ed25519-dalek`
//! (26 µs; `ring` 31 µs, `jsonwebtoken::encode` 38–47 µs), P-256 with `ring` (19–20 µs;
//! RustCrypto's `p256` 200 µs), RSA-2048 with `ring` (0.6–0.7 ms; through `jsonwebtoken`
//! 2.1 ms).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::write::EncoderStringWriter;
use http::header::{HeaderName, HeaderValue};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde::Serialize;

use tollgate_http::identity::Identity;

/// `x-tollgate-assertion`: the header that carries the assertion upstream.
pub static X_TOLLGATE_ASSERTION: HeaderName = HeaderName::from_static("x-tollgate-assertion");

/// The JWS `typ` (RFC 8725 §3.11 explicit typing): an assertion is never mistaken for an
/// access token, nor the other way round.
pub const TYP: &str = "tollgate-assertion+jwt";

/// Default `kid`.
pub const DEFAULT_KID: &str = "tollgate-assertion";

/// Default `iss`.
pub const DEFAULT_ISSUER: &str = "tollgate";

/// Default lifetime.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);

/// Longest lifetime: an assertion is for one request, not a session.
pub const MAX_TTL: Duration = Duration::from_secs(300);

/// The algorithms an assertion may be signed with: asymmetric, so that any service can verify
/// it without being able to mint one.
pub const ALGORITHMS: [Algorithm; 3] = [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256];

/// Why the assertion key could not be loaded, or an assertion signed.
#[derive(Debug, thiserror::Error)]
pub enum AssertionError {
    /// The key file holds another kind of key than `algorithm` names.
    #[error("{path:?} holds {found} key, but algorithm = \"{algorithm:?}\"")]
    KeyMismatch {
        /// The key file.
        path: String,
        /// What it holds.
        found: &'static str,
        /// The configured algorithm.
        algorithm: Algorithm,
    },
    /// The key file holds no private key tollgate can sign with.
    #[error(
        "{path:?}: not a PKCS#8 PEM private key for EdDSA (Ed25519), ES256 (P-256) or RS256 \
         (`tollgate keys generate --alg EdDSA` writes one)"
    )]
    NotAKey {
        /// The key file.
        path: String,
    },
    /// The key breaks a key rule (RSA under 2048 bits, ...).
    #[error("{path:?}: {reason}")]
    Refused {
        /// The key file.
        path: String,
        /// The rule it breaks.
        reason: String,
    },
    /// The claims could not be serialised.
    #[error("cannot serialise the assertion's claims: {0}")]
    Claims(#[source] std::io::Error),
    /// The signature could not be computed.
    #[error("cannot sign the assertion: {0}")]
    Sign(String),
}

/// The claims of one assertion, borrowed from the request being forwarded.
#[derive(Debug, Serialize)]
pub struct Claims<'a> {
    /// `[assertion] issuer`.
    pub iss: &'a str,
    /// Signed at, seconds since the epoch.
    pub iat: u64,
    /// `iat` + `[assertion] ttl`.
    pub exp: u64,
    /// The request id sent as `x-request-id`.
    pub rid: &'a str,
    /// The method sent upstream.
    pub htm: &'a str,
    /// The path sent upstream (after `strip_prefix`/`rewrite`, with the upstream's base path),
    /// without the query.
    pub htu: &'a str,
    /// The `Host` sent upstream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<&'a str>,
    /// `access`, `service` or `anonymous` (a public route without a valid token).
    pub user_type: &'static str,
    /// The user id (`x-user-id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<&'a str>,
    /// The name of the issuer that vouched for the caller (`x-user-issuer`): `(user_issuer,
    /// sub)` is the unique key of a caller, `sub` alone is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_issuer: Option<&'a str>,
    /// The service name of a service token (`x-service-name`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub svc: Option<&'a str>,
    /// The caller's role (`x-user-role`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'a str>,
    /// The tenant sent as `x-tenant-id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<&'a str>,
}

/// The request an assertion is bound to, as forwarded.
#[derive(Debug, Clone, Copy)]
pub struct Bound<'a> {
    /// The request id.
    pub rid: &'a str,
    /// The method.
    pub method: &'a str,
    /// The path, without the query.
    pub path: &'a str,
    /// The `Host` header sent upstream.
    pub host: Option<&'a str>,
    /// The `x-tenant-id` sent upstream.
    pub tenant: Option<&'a str>,
}

/// A loaded private key.
enum Key {
    Ed25519(ed25519_dalek::SigningKey),
    P256(ring::signature::EcdsaKeyPair),
    Rsa(ring::signature::RsaKeyPair),
}

/// Signs assertions with the `[assertion]` key. `Debug` never shows the key.
pub struct AssertionSigner {
    key: Key,
    rng: ring::rand::SystemRandom,
    algorithm: Algorithm,
    kid: String,
    issuer: String,
    ttl_secs: u64,
    /// `base64url(header) + "."`, rendered once.
    header_segment: String,
    /// The public half, for the admin JWKS.
    jwk: Jwk,
}

impl fmt::Debug for AssertionSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssertionSigner")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .field("ttl_secs", &self.ttl_secs)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct JwsHeader<'a> {
    alg: Algorithm,
    kid: &'a str,
    typ: &'static str,
}

/// What a PEM private key is, judged by which loader accepts it.
fn key_kind(pem: &[u8]) -> Option<(Algorithm, &'static str)> {
    use ed25519_dalek::pkcs8::DecodePrivateKey;
    let text = std::str::from_utf8(pem).ok()?;
    if ed25519_dalek::SigningKey::from_pkcs8_pem(text).is_ok() {
        Some((Algorithm::EdDSA, "an Ed25519"))
    } else if p256::SecretKey::from_pkcs8_pem(text).is_ok() {
        Some((Algorithm::ES256, "a P-256"))
    } else if EncodingKey::from_rsa_pem(pem).is_ok() {
        Some((Algorithm::RS256, "an RSA"))
    } else if EncodingKey::from_ec_pem(pem).is_ok() {
        // P-384 and other curves: never one of `ALGORITHMS`, so always a mismatch.
        Some((Algorithm::ES384, "another EC (not P-256)"))
    } else {
        None
    }
}

/// The error for a file that holds no key tollgate can sign with.
fn not_a_key(path: &str) -> AssertionError {
    AssertionError::NotAKey {
        path: path.to_owned(),
    }
}

/// The error for a key that breaks a key rule.
fn refused(path: &str, reason: String) -> AssertionError {
    AssertionError::Refused {
        path: path.to_owned(),
        reason,
    }
}

/// Checks that `pem` holds a private key of the kind `algorithm` signs with, so that a
/// mismatch is reported as one rather than as an unreadable key.
fn check_key_kind(pem: &[u8], path: &str, algorithm: Algorithm) -> Result<(), AssertionError> {
    let (found, found_name) = key_kind(pem).ok_or_else(|| not_a_key(path))?;
    if found != algorithm {
        return Err(AssertionError::KeyMismatch {
            path: path.to_owned(),
            found: found_name,
            algorithm,
        });
    }
    Ok(())
}

/// Parses the key for signing, with the DER `jsonwebtoken` extracted (PKCS#8 for Ed25519 and
/// EC, PKCS#1 for RSA), which the public JWK is derived from.
fn parse_key(
    pem: &[u8],
    path: &str,
    algorithm: Algorithm,
    rng: &ring::rand::SystemRandom,
) -> Result<(Key, EncodingKey), AssertionError> {
    use ring::signature::RsaKeyPair;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
    match algorithm {
        Algorithm::EdDSA => {
            let encoding = EncodingKey::from_ed_pem(pem).map_err(|_| not_a_key(path))?;
            let pair = {
                use ed25519_dalek::pkcs8::DecodePrivateKey;
                ed25519_dalek::SigningKey::from_pkcs8_der(encoding.as_bytes())
                    .map_err(|e| refused(path, e.to_string()))?
            };
            Ok((Key::Ed25519(pair), encoding))
        }
        Algorithm::ES256 => {
            let encoding = EncodingKey::from_ec_pem(pem).map_err(|_| not_a_key(path))?;
            let pair = EcdsaKeyPair::from_pkcs8(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                encoding.as_bytes(),
                rng,
            )
            .map_err(|e| refused(path, e.to_string()))?;
            Ok((Key::P256(pair), encoding))
        }
        Algorithm::RS256 => {
            let encoding = EncodingKey::from_rsa_pem(pem).map_err(|_| not_a_key(path))?;
            let pair = RsaKeyPair::from_der(encoding.as_bytes())
                .or_else(|_| RsaKeyPair::from_pkcs8(encoding.as_bytes()))
                .map_err(|e| refused(path, e.to_string()))?;
            Ok((Key::Rsa(pair), encoding))
        }
        _ => Err(not_a_key(path)),
    }
}

/// `base64url(header) + "."`: the JWS header is the same for every assertion.
fn header_segment(algorithm: Algorithm, kid: &str) -> Result<String, serde_json::Error> {
    let header = serde_json::to_vec(&JwsHeader {
        alg: algorithm,
        kid,
        typ: TYP,
    })?;
    let mut segment = URL_SAFE_NO_PAD.encode(header);
    segment.push('.');
    Ok(segment)
}

impl AssertionSigner {
    /// Loads `pem` (read from `path`) for `algorithm`, checking that the key is of that kind
    /// and passes the key rules; renders the JWS header and the public JWK.
    pub fn load(
        pem: &[u8],
        path: &str,
        algorithm: Algorithm,
        kid: String,
        issuer: String,
        ttl: Duration,
    ) -> Result<Self, AssertionError> {
        check_key_kind(pem, path, algorithm)?;
        let rng = ring::rand::SystemRandom::new();
        let (key, encoding) = parse_key(pem, path, algorithm, &rng)?;
        let jwk = crate::keygen::public_jwk(&encoding, algorithm, Some(&kid))
            .map_err(|e| refused(path, e.to_string()))?;
        // The key rules every configured key is held to (RSA size and exponent, curves).
        crate::keys::from_jwk(&jwk).map_err(|e| refused(path, e.to_string()))?;
        let header_segment =
            header_segment(algorithm, &kid).map_err(|e| refused(path, e.to_string()))?;
        Ok(Self {
            key,
            rng,
            algorithm,
            kid,
            issuer,
            ttl_secs: ttl.as_secs(),
            header_segment,
            jwk,
        })
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The `kid`.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The `iss` claim.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The lifetime of one assertion, in seconds.
    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }

    /// The public key, as published in the admin JWKS (`kid`, `alg`, `use: sig`).
    pub fn public_jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// The claims for `identity` (or an anonymous caller) on the request `bound`, at `now`.
    pub fn claims<'a>(
        &'a self,
        identity: Option<&'a Identity>,
        bound: Bound<'a>,
        now: SystemTime,
    ) -> Claims<'a> {
        let iat = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Claims {
            iss: &self.issuer,
            iat,
            exp: iat.saturating_add(self.ttl_secs),
            rid: bound.rid,
            htm: bound.method,
            htu: bound.path,
            host: bound.host,
            user_type: identity.map_or("anonymous", |i| i.kind.as_str()),
            sub: identity.map(|i| i.subject.as_str()),
            user_issuer: identity.map(|i| i.issuer.as_str()),
            svc: identity.and_then(|i| i.service.as_deref()),
            role: identity.and_then(|i| i.role.as_deref()),
            tenant: bound.tenant,
        }
    }

    /// The compact JWS of `claims`, as a header value.
    pub fn sign(&self, claims: &Claims<'_>) -> Result<HeaderValue, AssertionError> {
        // Header, claims and signature: the claims are usually under 400 bytes.
        let mut token = String::with_capacity(self.header_segment.len() + 768);
        token.push_str(&self.header_segment);
        let mut writer = EncoderStringWriter::from_consumer(&mut token, &URL_SAFE_NO_PAD);
        serde_json::to_writer(&mut writer, claims).map_err(|e| AssertionError::Claims(e.into()))?;
        writer.into_inner();
        let failed = |e: ring::error::Unspecified| AssertionError::Sign(e.to_string());
        let message = token.as_bytes();
        let mut rsa = Vec::new();
        let signature = match &self.key {
            Key::Ed25519(key) => {
                use ed25519_dalek::Signer;
                let signature = key.sign(message).to_bytes();
                return finish(token, &signature);
            }
            Key::P256(key) => key.sign(&self.rng, message).map_err(failed)?,
            Key::Rsa(key) => {
                rsa.resize(key.public().modulus_len(), 0);
                key.sign(
                    &ring::signature::RSA_PKCS1_SHA256,
                    &self.rng,
                    message,
                    &mut rsa,
                )
                .map_err(failed)?;
                return finish(token, &rsa);
            }
        };
        finish(token, signature.as_ref())
    }
}

/// Appends `.signature` and makes the header value.
fn finish(mut token: String, signature: &[u8]) -> Result<HeaderValue, AssertionError> {
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut token);
    // base64url and dots only: always a valid header value.
    HeaderValue::try_from(token).map_err(|e| AssertionError::Sign(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};
    use tollgate_http::identity::TokenKind;

    fn fixture(name: &str) -> (Vec<u8>, String) {
        let path = format!(
            "{}/../../tests/fixtures/keys/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        (std::fs::read(&path).unwrap(), path)
    }

    fn signer(name: &str, alg: Algorithm) -> Result<AssertionSigner, AssertionError> {
        let (pem, path) = fixture(name);
        AssertionSigner::load(
            &pem,
            &path,
            alg,
            "k1".into(),
            "tollgate".into(),
            DEFAULT_TTL,
        )
    }

    fn caller() -> Identity {
        Identity {
            kind: TokenKind::Service,
            issuer: "tollgate".into(),
            subject: "orders".into(),
            role: Some("admin".into()),
            service: Some("orders".into()),
            expires_at: 0,
            token_id: None,
            issued_at: None,
            headers: Vec::new(),
            grants: Default::default(),
        }
    }

    #[test]
    fn assertion_of_each_algorithm_verifies_with_jsonwebtoken() {
        for (file, alg) in [
            ("ed25519.key", Algorithm::EdDSA),
            ("ec256.key", Algorithm::ES256),
            ("rsa.key", Algorithm::RS256),
        ] {
            let signer = signer(file, alg).unwrap();
            let identity = caller();
            let bound = Bound {
                rid: "rid-1",
                method: "POST",
                path: "/v1/orders",
                host: Some("orders:8080"),
                tenant: Some("t-1"),
            };
            let claims = signer.claims(Some(&identity), bound, SystemTime::now());
            let token = signer.sign(&claims).unwrap();
            let token = token.to_str().unwrap();
            let header = jsonwebtoken::decode_header(token).unwrap();
            assert_eq!(header.alg, alg);
            assert_eq!(header.kid.as_deref(), Some("k1"));
            assert_eq!(header.typ.as_deref(), Some(TYP));
            let key = DecodingKey::from_jwk(signer.public_jwk()).unwrap();
            let mut validation = Validation::new(alg);
            validation.set_issuer(&["tollgate"]);
            let data = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
                .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
            let c = data.claims;
            assert_eq!(c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(), 60);
            for (claim, want) in [
                ("iss", "tollgate"),
                ("rid", "rid-1"),
                ("htm", "POST"),
                ("htu", "/v1/orders"),
                ("host", "orders:8080"),
                ("user_type", "service"),
                ("sub", "orders"),
                ("user_issuer", "tollgate"),
                ("svc", "orders"),
                ("role", "admin"),
                ("tenant", "t-1"),
            ] {
                assert_eq!(c[claim], want, "{alg:?} {claim}");
            }
        }
    }

    #[test]
    fn anonymous_assertion_names_no_one() {
        let signer = signer("ed25519.key", Algorithm::EdDSA).unwrap();
        let bound = Bound {
            rid: "r",
            method: "GET",
            path: "/",
            host: None,
            tenant: None,
        };
        let claims = serde_json::to_value(signer.claims(None, bound, SystemTime::now())).unwrap();
        let keys: Vec<&str> = claims
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(claims["user_type"], "anonymous");
        for absent in ["sub", "user_issuer", "svc", "role", "tenant", "host"] {
            assert!(!keys.contains(&absent), "{absent}: {claims}");
        }
    }

    #[test]
    fn a_key_of_another_kind_is_refused_with_its_path() {
        let err = signer("ec256.key", Algorithm::EdDSA)
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with("ec256.key\" holds a P-256 key, but algorithm = \"EdDSA\""),
            "{err}"
        );
        let err = signer("ed25519.key", Algorithm::RS256)
            .unwrap_err()
            .to_string();
        assert!(err.contains("holds an Ed25519 key"), "{err}");
        let err = signer("ec384.key", Algorithm::ES256)
            .unwrap_err()
            .to_string();
        assert!(err.contains("holds another EC (not P-256) key"), "{err}");
        let err = signer("ed25519.pub.pem", Algorithm::EdDSA)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a PKCS#8 PEM private key"), "{err}");
    }

    #[test]
    fn debug_never_shows_the_key() {
        let (pem, _) = fixture("ed25519.key");
        let signer = signer("ed25519.key", Algorithm::EdDSA).unwrap();
        let shown = format!("{signer:?}");
        let body: String = String::from_utf8(pem)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        assert!(!shown.contains(&body), "{shown}");
        assert!(!shown.contains("secret"), "{shown}");
    }
}

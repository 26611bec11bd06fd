//! An issuer's key material: its HMAC secrets, PEM public keys and private signing keys, as
//! written and loaded.

use std::fmt;

use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use super::RawIssuer;
use crate::Invalid;
use crate::keys::{self, Family, VerifyKey};
use crate::values::{Secret, SecretText};

/// The shortest HMAC secret accepted (RFC 7518 §3.2: at least the hash size).
pub const MIN_SECRET_BYTES: usize = 32;

/// A PEM public key of an issuer.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPublicKey {
    /// Key id matched against the token's `kid`. Default: matches tokens without a `kid`.
    pub kid: Option<String>,
    /// The PEM text.
    pub pem: Option<String>,
    /// A file holding the PEM text.
    pub pem_file: Option<String>,
}

/// The private key `tollgate token issue` signs with.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSigningKey {
    /// PKCS#8 PEM private key file (RSA, EC P-256/P-384 or Ed25519).
    pub private_key_file: String,
    /// Algorithm: RS256/384/512, PS256/384/512, ES256/384 or EdDSA.
    pub algorithm: String,
    /// Key id written in the token header.
    pub kid: Option<String>,
    /// When it starts signing (RFC 3339, e.g. `"2026-01-15T00:00:00Z"`); until then it is only
    /// published and accepted. Default: at once.
    pub active_from: Option<String>,
}

/// One of an issuer's HMAC secrets (`secrets = [...]`), for rotating them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSecret {
    /// Key id written in the token header and matched against it. Required.
    pub kid: String,
    /// The secret (at least 32 bytes), usually `"${SOME_VAR}"`.
    pub secret: Option<SecretText>,
    /// File holding the secret (trailing newline ignored).
    pub secret_file: Option<String>,
    /// When it starts signing (RFC 3339); until then it is only accepted. Default: at once.
    pub active_from: Option<String>,
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

/// Whether one of `algorithms` is of `family`.
fn wants(algorithms: &[Algorithm], family: Family) -> bool {
    algorithms.iter().any(|a| Family::of(*a) == Some(family))
}

/// Reads a secret file, without the one line ending an editor adds.
pub(super) fn read_secret_file(path: &str) -> Result<Vec<u8>, String> {
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
pub(super) fn load_secret(
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
pub(super) fn load_public_keys(
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
pub(super) fn load_signing_keys(
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
pub(super) fn load_kid_secrets(
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

//! Verification keys: PEM public keys, HMAC secrets and JWKS entries, with their algorithm family.

use std::fmt;

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};

/// Algorithm families a key can belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// HS256/384/512.
    Hmac,
    /// RS256/384/512 and PS256/384/512.
    Rsa,
    /// ES256/384.
    Ec,
    /// EdDSA (Ed25519).
    Ed,
}

impl Family {
    /// The family an algorithm belongs to; `None` for algorithms tollgate does not know.
    pub fn of(alg: Algorithm) -> Option<Self> {
        Some(match alg {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => Family::Hmac,
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => Family::Rsa,
            Algorithm::ES256 | Algorithm::ES384 => Family::Ec,
            Algorithm::EdDSA => Family::Ed,
            _ => return None,
        })
    }
}

/// A key that verifies token signatures.
#[derive(Clone)]
pub struct VerifyKey {
    /// Matched against the token's `kid`; `None` matches tokens without one.
    pub kid: Option<String>,
    /// Which algorithms the key can verify.
    pub family: Family,
    /// The one algorithm the key is for, when its source says so (JWKS `alg`).
    pub algorithm: Option<Algorithm>,
    /// The key itself.
    pub key: DecodingKey,
}

impl fmt::Debug for VerifyKey {
    // Key material never goes to logs, even public keys: only what identifies the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyKey")
            .field("kid", &self.kid)
            .field("family", &self.family)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl VerifyKey {
    /// Whether this key may verify a token signed with `alg`.
    pub fn accepts(&self, alg: Algorithm) -> bool {
        Family::of(alg) == Some(self.family) && self.algorithm.is_none_or(|a| a == alg)
    }
}

/// Parses an algorithm name, refusing `none` and anything unknown.
pub fn parse_algorithm(name: &str) -> Result<Algorithm, String> {
    name.parse::<Algorithm>()
        .ok()
        .filter(|alg| Family::of(*alg).is_some())
        .ok_or_else(|| format!("unsupported algorithm {name:?}"))
}

/// Loads a PEM public key (SPKI or PKCS#1 RSA, EC, Ed25519), detecting its type.
pub fn from_pem(pem: &[u8]) -> Result<(Family, DecodingKey), String> {
    if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
        return Ok((Family::Rsa, key));
    }
    if let Ok(key) = DecodingKey::from_ec_pem(pem) {
        return Ok((Family::Ec, key));
    }
    if let Ok(key) = DecodingKey::from_ed_pem(pem) {
        return Ok((Family::Ed, key));
    }
    Err("not a PEM RSA, EC or Ed25519 public key".to_owned())
}

/// Converts one JWKS entry; `None` for key types tollgate does not verify with (and for
/// symmetric keys, which have no place in a published key set).
pub fn from_jwk(jwk: &Jwk) -> Option<VerifyKey> {
    let family = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Family::Rsa,
        AlgorithmParameters::EllipticCurve(_) => Family::Ec,
        AlgorithmParameters::OctetKeyPair(_) => Family::Ed,
        _ => return None,
    };
    let algorithm = match jwk.common.key_algorithm {
        None => None,
        Some(alg) => Some(key_algorithm(alg)?),
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(VerifyKey {
        kid: jwk.common.key_id.clone(),
        family,
        algorithm,
        key,
    })
}

fn key_algorithm(alg: KeyAlgorithm) -> Option<Algorithm> {
    Some(match alg {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_and_unknown_algorithms_are_refused() {
        assert!(parse_algorithm("none").is_err());
        assert!(parse_algorithm("HS1").is_err());
        assert_eq!(parse_algorithm("ES256").unwrap(), Algorithm::ES256);
    }

    #[test]
    fn pem_type_is_detected() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keys/");
        for (file, family) in [
            ("rsa.pub.pem", Family::Rsa),
            ("ec256.pub.pem", Family::Ec),
            ("ed25519.pub.pem", Family::Ed),
        ] {
            let pem = std::fs::read(format!("{dir}{file}")).unwrap();
            assert_eq!(from_pem(&pem).unwrap().0, family, "{file}");
        }
        assert!(from_pem(b"not a key").is_err());
    }

    #[test]
    fn family_and_declared_algorithm_limit_a_key() {
        let key = VerifyKey {
            kid: None,
            family: Family::Rsa,
            algorithm: Some(Algorithm::RS256),
            key: DecodingKey::from_secret(b"x"),
        };
        assert!(key.accepts(Algorithm::RS256));
        assert!(!key.accepts(Algorithm::PS256));
        assert!(!key.accepts(Algorithm::HS256));
        assert!(!format!("{key:?}").contains("key:"));
    }
}

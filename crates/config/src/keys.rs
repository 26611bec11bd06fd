//! Verification keys: PEM public keys, HMAC secrets and JWKS entries, with their algorithm family.

use std::fmt;

use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind};
use rsa::pkcs1::der::Decode;

/// The smallest RSA modulus accepted (NIST SP 800-131A: 1024-bit RSA is disallowed).
pub const MIN_RSA_BITS: usize = 2048;
/// The only RSA public exponent accepted: what every IdP and key generator uses; small
/// exponents such as 3 are the classic precondition of signature-forgery attacks.
const RSA_EXPONENT: [u8; 3] = [0x01, 0x00, 0x01];

/// Why a key is refused: too weak, meant for something other than signatures, or unable
/// to verify the algorithm it claims.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRefusal {
    /// A key type tollgate does not verify with (symmetric JWKs, X25519, unknown types).
    #[error("{0} keys are not accepted for signatures")]
    Unsupported(&'static str),
    /// `use` is not `sig`.
    #[error("\"use\" is {0:?}; only \"sig\" keys verify signatures")]
    NotForSignatures(String),
    /// `key_ops` is present but lacks `verify`.
    #[error("\"key_ops\" does not include \"verify\"")]
    NoVerifyOperation,
    /// RSA modulus under [`MIN_RSA_BITS`].
    #[error("RSA modulus is {0} bits; at least {MIN_RSA_BITS} are required")]
    WeakRsa(usize),
    /// RSA exponent other than 65537.
    #[error("RSA public exponent must be 65537")]
    RsaExponent,
    /// An EC or OKP curve tollgate cannot verify with.
    #[error("unsupported curve {0}")]
    UnsupportedCurve(String),
    /// The key's curve and its declared (or allowed) algorithm disagree.
    #[error("a {curve} key cannot verify {alg:?}")]
    CurveMismatch {
        /// The key's curve.
        curve: &'static str,
        /// The algorithm it was declared or configured for.
        alg: Algorithm,
    },
    /// Not decodable.
    #[error("malformed key: {0}")]
    Malformed(String),
}

impl KeyRefusal {
    /// A short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            KeyRefusal::Unsupported(_) => "unsupported",
            KeyRefusal::NotForSignatures(_) => "not_for_signatures",
            KeyRefusal::NoVerifyOperation => "no_verify_operation",
            KeyRefusal::WeakRsa(_) => "weak_rsa",
            KeyRefusal::RsaExponent => "rsa_exponent",
            KeyRefusal::UnsupportedCurve(_) => "unsupported_curve",
            KeyRefusal::CurveMismatch { .. } => "curve_mismatch",
            KeyRefusal::Malformed(_) => "malformed",
        }
    }
}

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

/// Loads a PEM public key (SPKI or PKCS#1 RSA, EC, Ed25519), detecting its type and holding
/// it to the key rules: the returned key is limited to the one algorithm its curve implies.
pub fn from_pem(pem: &[u8]) -> Result<VerifyKey, String> {
    let (family, key) = if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
        (Family::Rsa, key)
    } else if let Ok(key) = DecodingKey::from_ec_pem(pem) {
        (Family::Ec, key)
    } else if let Ok(key) = DecodingKey::from_ed_pem(pem) {
        (Family::Ed, key)
    } else {
        return Err("not a PEM RSA, EC or Ed25519 public key".to_owned());
    };
    let curve = check_strength(family, &key).map_err(|e| e.to_string())?;
    Ok(VerifyKey {
        kid: None,
        family,
        algorithm: curve.map(|(_, alg)| alg),
        key,
    })
}

/// Refuses weak RSA keys and unknown curves; for EC and OKP keys returns the curve's name
/// and the one algorithm it verifies.
fn check_strength(
    family: Family,
    key: &DecodingKey,
) -> Result<Option<(&'static str, Algorithm)>, KeyRefusal> {
    match (family, key.kind()) {
        (Family::Rsa, DecodingKeyKind::RsaModulusExponent { n, e }) => {
            check_rsa(n, e).map(|()| None)
        }
        (Family::Rsa, DecodingKeyKind::SecretOrDer(der)) => {
            let parsed = rsa::pkcs1::RsaPublicKey::from_der(der)
                .map_err(|e| KeyRefusal::Malformed(e.to_string()))?;
            check_rsa(parsed.modulus.as_bytes(), parsed.public_exponent.as_bytes()).map(|()| None)
        }
        // An uncompressed SEC1 point: 0x04 || x || y; its length names the curve.
        (Family::Ec, DecodingKeyKind::SecretOrDer(point)) => match point.len() {
            65 => Ok(Some(("P-256", Algorithm::ES256))),
            97 => Ok(Some(("P-384", Algorithm::ES384))),
            133 => Err(KeyRefusal::UnsupportedCurve("P-521".into())),
            n => Err(KeyRefusal::Malformed(format!("EC point of {n} bytes"))),
        },
        (Family::Ed, DecodingKeyKind::SecretOrDer(x)) if x.len() == 32 => {
            Ok(Some(("Ed25519", Algorithm::EdDSA)))
        }
        (Family::Ed, _) => Err(KeyRefusal::UnsupportedCurve("other than Ed25519".into())),
        _ => Err(KeyRefusal::Unsupported("this kind of")),
    }
}

fn check_rsa(modulus: &[u8], exponent: &[u8]) -> Result<(), KeyRefusal> {
    let significant = |b: &[u8]| {
        let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
        b[start..].to_vec()
    };
    let n = significant(modulus);
    let bits = n
        .first()
        .map_or(0, |top| n.len() * 8 - top.leading_zeros() as usize);
    if bits < MIN_RSA_BITS {
        return Err(KeyRefusal::WeakRsa(bits));
    }
    if significant(exponent) != RSA_EXPONENT {
        return Err(KeyRefusal::RsaExponent);
    }
    Ok(())
}

/// Converts one JWKS entry, refusing keys that are not for signatures, too weak, or whose
/// curve and `alg` disagree (symmetric keys have no place in a published key set).
pub fn from_jwk(jwk: &Jwk) -> Result<VerifyKey, KeyRefusal> {
    let family = jwk_family(jwk)?;
    check_signature_use(jwk)?;
    let declared = declared_algorithm(jwk, family)?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| KeyRefusal::Malformed(e.to_string()))?;
    let curve = check_strength(family, &key)?;
    check_curve(jwk, curve)?;
    let algorithm = match (curve, declared) {
        (Some((curve, implied)), Some(alg)) if alg != implied => {
            return Err(KeyRefusal::CurveMismatch { curve, alg });
        }
        (Some((_, implied)), _) => Some(implied),
        (None, declared) => declared,
    };
    Ok(VerifyKey {
        kid: jwk.common.key_id.clone(),
        family,
        algorithm,
        key,
    })
}

/// The family of a JWK's key type; symmetric and unknown types are refused.
fn jwk_family(jwk: &Jwk) -> Result<Family, KeyRefusal> {
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Ok(Family::Rsa),
        AlgorithmParameters::EllipticCurve(_) => Ok(Family::Ec),
        AlgorithmParameters::OctetKeyPair(_) => Ok(Family::Ed),
        AlgorithmParameters::OctetKey(_) => Err(KeyRefusal::Unsupported("symmetric (oct)")),
        _ => Err(KeyRefusal::Unsupported("unknown")),
    }
}

/// Refuses a JWK whose `use` or `key_ops` say it is not for verifying signatures.
fn check_signature_use(jwk: &Jwk) -> Result<(), KeyRefusal> {
    match &jwk.common.public_key_use {
        None | Some(PublicKeyUse::Signature) => {}
        Some(PublicKeyUse::Encryption) => return Err(KeyRefusal::NotForSignatures("enc".into())),
        Some(PublicKeyUse::Other(other)) => {
            return Err(KeyRefusal::NotForSignatures(other.clone()));
        }
    }
    if let Some(ops) = &jwk.common.key_operations
        && !ops.iter().any(|op| matches!(op, KeyOperations::Verify))
    {
        return Err(KeyRefusal::NoVerifyOperation);
    }
    Ok(())
}

/// The JWK's `alg`, when it declares one, which must be of the key's `family`.
fn declared_algorithm(jwk: &Jwk, family: Family) -> Result<Option<Algorithm>, KeyRefusal> {
    let Some(alg) = jwk.common.key_algorithm else {
        return Ok(None);
    };
    let alg = key_algorithm(alg).ok_or(KeyRefusal::Unsupported("this algorithm's"))?;
    if Family::of(alg) != Some(family) {
        return Err(KeyRefusal::Malformed(format!(
            "a {family:?} key declared for {alg:?}"
        )));
    }
    Ok(Some(alg))
}

/// Refuses an OKP key on another curve than Ed25519, and an EC key whose `crv` names another
/// curve than its coordinates (`curve`, as [`check_strength`] found it) are on.
fn check_curve(jwk: &Jwk, curve: Option<(&'static str, Algorithm)>) -> Result<(), KeyRefusal> {
    if let AlgorithmParameters::OctetKeyPair(params) = &jwk.algorithm
        && params.curve != EllipticCurve::Ed25519
    {
        return Err(KeyRefusal::UnsupportedCurve(format!("{:?}", params.curve)));
    }
    if let AlgorithmParameters::EllipticCurve(params) = &jwk.algorithm {
        let named = match params.curve {
            EllipticCurve::P256 => "P-256",
            EllipticCurve::P384 => "P-384",
            EllipticCurve::P521 => "P-521",
            _ => "another curve",
        };
        if curve.is_some_and(|(actual, _)| actual != named) {
            return Err(KeyRefusal::Malformed(format!(
                "crv {named} but coordinates of another curve"
            )));
        }
    }
    Ok(())
}

/// Checks a configured key against the issuer's allowed algorithms: an EC key must be
/// allowed the one algorithm its curve verifies.
pub fn usable_with(key: &VerifyKey, allowed: &[Algorithm]) -> Result<(), String> {
    if allowed.iter().any(|a| key.accepts(*a)) {
        return Ok(());
    }
    Err(match key.algorithm {
        Some(alg) => format!("a key for {alg:?}, which is not in algorithms"),
        None => format!(
            "a {:?} key but no {:?} algorithm is allowed",
            key.family, key.family
        ),
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
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/keys/");
        for (file, family, algorithm) in [
            ("rsa.pub.pem", Family::Rsa, None),
            ("ec256.pub.pem", Family::Ec, Some(Algorithm::ES256)),
            ("ec384.pub.pem", Family::Ec, Some(Algorithm::ES384)),
            ("ed25519.pub.pem", Family::Ed, Some(Algorithm::EdDSA)),
        ] {
            let pem = std::fs::read(format!("{dir}{file}")).unwrap();
            let key = from_pem(&pem).unwrap();
            assert_eq!((key.family, key.algorithm), (family, algorithm), "{file}");
        }
        assert!(from_pem(b"not a key").is_err());
    }

    #[test]
    fn rsa_size_counts_significant_bits_and_exponent_must_be_65537() {
        let mut n = vec![0u8; 1];
        n.extend([0x80u8; 256]); // 2048 bits behind a leading zero byte
        assert_eq!(check_rsa(&n, &[1, 0, 1]), Ok(()));
        assert_eq!(check_rsa(&n, &[0, 1, 0, 1]), Ok(()));
        assert_eq!(check_rsa(&n, &[3]), Err(KeyRefusal::RsaExponent));
        n[1] = 0x7f; // top bit clear: 2047 bits
        assert_eq!(check_rsa(&n, &[1, 0, 1]), Err(KeyRefusal::WeakRsa(2047)));
        assert_eq!(check_rsa(&[], &[1, 0, 1]), Err(KeyRefusal::WeakRsa(0)));
    }

    #[test]
    fn jwk_use_key_ops_and_curve_are_enforced() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/keys/");
        let pem = std::fs::read(format!("{dir}ec256.key")).unwrap();
        let encoding = jsonwebtoken::EncodingKey::from_ec_pem(&pem).unwrap();
        let base = Jwk::from_encoding_key(&encoding, Algorithm::ES256).unwrap();
        assert_eq!(from_jwk(&base).unwrap().algorithm, Some(Algorithm::ES256));
        let mut no_alg = base.clone();
        no_alg.common.key_algorithm = None;
        // Without `alg` the curve decides: a P-256 key verifies ES256 only.
        let key = from_jwk(&no_alg).unwrap();
        assert!(key.accepts(Algorithm::ES256) && !key.accepts(Algorithm::ES384));
        let mut enc = base.clone();
        enc.common.public_key_use = Some(PublicKeyUse::Encryption);
        assert_eq!(from_jwk(&enc).unwrap_err().reason(), "not_for_signatures");
        let mut sign_only = base.clone();
        sign_only.common.key_operations = Some(vec![KeyOperations::Sign]);
        assert_eq!(
            from_jwk(&sign_only).unwrap_err().reason(),
            "no_verify_operation"
        );
        let mut verify = base.clone();
        verify.common.key_operations = Some(vec![KeyOperations::Sign, KeyOperations::Verify]);
        assert!(from_jwk(&verify).is_ok());
        let mut wrong_alg = base.clone();
        wrong_alg.common.key_algorithm = Some(KeyAlgorithm::ES384);
        assert_eq!(from_jwk(&wrong_alg).unwrap_err().reason(), "curve_mismatch");
        let mut wrong_crv = base;
        if let AlgorithmParameters::EllipticCurve(p) = &mut wrong_crv.algorithm {
            p.curve = EllipticCurve::P384;
        }
        assert_eq!(from_jwk(&wrong_crv).unwrap_err().reason(), "malformed");
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

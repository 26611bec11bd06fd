//! Signing keys: generating them for `tollgate keys generate`, loading a configured one to
//! sign with, and publishing the public halves as a JWKS document (RFC 7517 §5) on the admin
//! listener.
//!
//! Private keys are written as PKCS#8 PEM (what `signing_key.private_key_file` loads), public
//! keys as SPKI PEM. HMAC secrets are never published.

use std::fmt;
use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey};
use rand::RngCore;
use rand::rngs::OsRng;
use tracing::warn;

use crate::keys::Family;
use crate::{IssuerConfig, Secret, SigningKeyConfig};

/// Bytes of a generated HMAC secret: 384 bits, above the hash size RFC 7518 §3.2 requires.
pub const HMAC_SECRET_BYTES: usize = 48;

/// RSA modulus size in bits (RFC 7518 §3.3: at least 2048).
pub const RSA_BITS: usize = 2048;

/// Mode of files holding private keys and secrets.
const PRIVATE_MODE: u32 = 0o600;

/// Mode of public key files.
const PUBLIC_MODE: u32 = 0o644;

/// Algorithms `tollgate keys generate` makes keys for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// An HMAC-SHA256 secret.
    Hs256,
    /// An RSA 2048-bit key for RS256.
    Rs256,
    /// A P-256 key for ES256.
    Es256,
    /// An Ed25519 key for EdDSA.
    EdDsa,
}

/// Why a key could not be generated, loaded or published.
#[derive(Debug, thiserror::Error)]
pub enum KeygenError {
    /// Not one of HS256, RS256, ES256, EdDSA.
    #[error("unsupported algorithm {0:?}: use HS256, RS256, ES256 or EdDSA")]
    UnsupportedAlgorithm(String),
    /// `--kid` was given for an HMAC secret.
    #[error("--kid does not apply to HS256: tollgate matches HMAC secrets without a key id")]
    KidWithSecret,
    /// An HMAC secret was asked for the identity assertion.
    #[error(
        "the identity assertion needs a private key (EdDSA, ES256 or RS256): upstreams verify it with the public key, and a shared secret would let them forge it"
    )]
    SecretForAssertion,
    /// A file to be written already exists.
    #[error("{}: already exists; refusing to overwrite a key (choose another --out)", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// The output directory is not valid UTF-8, so it cannot be written into a config.
    #[error("{}: path is not valid UTF-8", path.display())]
    NonUtf8Path {
        /// The path.
        path: PathBuf,
    },
    /// The output directory could not be created or resolved.
    #[error("{}: cannot create directory: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("{}: cannot write: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Key generation or PEM encoding failed.
    #[error("cannot generate the {alg} key: {source}")]
    Generate {
        /// The algorithm.
        alg: KeyAlgorithm,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A private key could not be loaded, or its public JWK derived.
    #[error("signing key {file}: {source}")]
    Key {
        /// Where the key came from.
        file: String,
        /// Why.
        #[source]
        source: jsonwebtoken::errors::Error,
    },
}

/// One file written by [`generate`].
#[derive(Debug, Clone)]
pub struct WrittenFile {
    /// Absolute path.
    pub path: PathBuf,
    /// What it holds, for the operator.
    pub description: &'static str,
    /// Whether it holds private material (written with mode 0600).
    pub private: bool,
}

/// What a generated key is for: signing tokens (`[[issuers]]`) or the identity assertion
/// (`[assertion]`); it decides the config printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyUse {
    /// An issuer's signing key (or HMAC secret).
    #[default]
    Issuer,
    /// The key that signs the identity assertion.
    Assertion,
}

impl FromStr for KeyUse {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "issuer" => Ok(KeyUse::Issuer),
            "assertion" => Ok(KeyUse::Assertion),
            other => Err(format!("{other:?}: use issuer or assertion")),
        }
    }
}

/// What [`generate`] wrote, and the config that uses it.
#[derive(Debug, Clone)]
pub struct GeneratedKey {
    /// The algorithm.
    pub algorithm: KeyAlgorithm,
    /// The key id: the one given, else the key's RFC 7638 thumbprint; `None` for a secret.
    pub kid: Option<String>,
    /// Files written, private first.
    pub files: Vec<WrittenFile>,
    /// The `[[issuers]]` entry or the `[assertion]` section that uses the new key.
    pub config_snippet: String,
}

/// Private and public PEM of a freshly generated key pair.
struct KeyPair {
    private_pem: Secret,
    public_pem: String,
}

impl KeyAlgorithm {
    /// The JWT algorithm tokens are signed with.
    pub fn jwt_algorithm(self) -> Algorithm {
        match self {
            KeyAlgorithm::Hs256 => Algorithm::HS256,
            KeyAlgorithm::Rs256 => Algorithm::RS256,
            KeyAlgorithm::Es256 => Algorithm::ES256,
            KeyAlgorithm::EdDsa => Algorithm::EdDSA,
        }
    }

    /// The name as written in configs: `HS256`, `RS256`, `ES256`, `EdDSA`.
    pub fn name(self) -> &'static str {
        match self {
            KeyAlgorithm::Hs256 => "HS256",
            KeyAlgorithm::Rs256 => "RS256",
            KeyAlgorithm::Es256 => "ES256",
            KeyAlgorithm::EdDsa => "EdDSA",
        }
    }

    /// Stem of the file names written for this algorithm.
    fn file_stem(self) -> &'static str {
        match self {
            KeyAlgorithm::Hs256 => "hs256",
            KeyAlgorithm::Rs256 => "rs256",
            KeyAlgorithm::Es256 => "es256",
            KeyAlgorithm::EdDsa => "ed25519",
        }
    }

    /// The files `generate` writes in `dir`: (name, description, private).
    fn files(self) -> Vec<(String, &'static str, bool)> {
        let stem = self.file_stem();
        match self {
            KeyAlgorithm::Hs256 => vec![(format!("{stem}.secret"), "HMAC secret", true)],
            _ => vec![
                (format!("{stem}.key"), "private key, PKCS#8 PEM", true),
                (format!("{stem}.pub.pem"), "public key, SPKI PEM", false),
                ("jwks.json".to_owned(), "public key set, JWKS", false),
            ],
        }
    }
}

impl FromStr for KeyAlgorithm {
    type Err = KeygenError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            KeyAlgorithm::Hs256,
            KeyAlgorithm::Rs256,
            KeyAlgorithm::Es256,
            KeyAlgorithm::EdDsa,
        ]
        .into_iter()
        .find(|a| a.name().eq_ignore_ascii_case(s))
        .ok_or_else(|| KeygenError::UnsupportedAlgorithm(s.to_owned()))
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Generates a key for `alg` and `key_use` into `dir` (created with mode 0700 if missing).
/// Refuses to overwrite any file, checking all of them before writing the first. A key pair
/// always gets a key id (the RFC 7638 thumbprint unless `kid` names one), in its JWKS and in
/// the config, so that verifiers that pick keys by `kid` find it.
pub fn generate(
    alg: KeyAlgorithm,
    dir: &Path,
    kid: Option<&str>,
    key_use: KeyUse,
) -> Result<GeneratedKey, KeygenError> {
    if alg == KeyAlgorithm::Hs256 && kid.is_some() {
        return Err(KeygenError::KidWithSecret);
    }
    if alg == KeyAlgorithm::Hs256 && key_use == KeyUse::Assertion {
        return Err(KeygenError::SecretForAssertion);
    }
    let (dir, planned) = plan(alg, dir)?;
    let (contents, kid) = match alg {
        KeyAlgorithm::Hs256 => (vec![random_secret()], None),
        KeyAlgorithm::Rs256 => pair_files(alg, rsa_pair, kid)?,
        KeyAlgorithm::Es256 => pair_files(alg, p256_pair, kid)?,
        KeyAlgorithm::EdDsa => pair_files(alg, ed25519_pair, kid)?,
    };
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|source| KeygenError::CreateDir {
            path: dir.clone(),
            source,
        })?;
    for (file, content) in planned.iter().zip(&contents) {
        let mode = if file.private {
            PRIVATE_MODE
        } else {
            PUBLIC_MODE
        };
        write_new(&file.path, content.expose(), mode)?;
    }
    Ok(GeneratedKey {
        algorithm: alg,
        config_snippet: config_snippet(alg, &planned[0].path, kid.as_deref(), key_use),
        kid,
        files: planned,
    })
}

/// The absolute directory and the files `alg` writes there, none of which may exist yet.
fn plan(alg: KeyAlgorithm, dir: &Path) -> Result<(PathBuf, Vec<WrittenFile>), KeygenError> {
    let dir = std::path::absolute(dir).map_err(|source| KeygenError::CreateDir {
        path: dir.to_owned(),
        source,
    })?;
    if dir.to_str().is_none() {
        return Err(KeygenError::NonUtf8Path { path: dir });
    }
    let planned: Vec<WrittenFile> = alg
        .files()
        .into_iter()
        .map(|(name, description, private)| WrittenFile {
            path: dir.join(name),
            description,
            private,
        })
        .collect();
    if let Some(existing) = planned.iter().find(|f| f.path.symlink_metadata().is_ok()) {
        return Err(KeygenError::Exists {
            path: existing.path.clone(),
        });
    }
    Ok((dir, planned))
}

/// Loads a configured signing key as a `jsonwebtoken` key.
pub fn encoding_key(signing: &SigningKeyConfig) -> Result<EncodingKey, KeygenError> {
    let pem = signing.pem.expose();
    match Family::of(signing.algorithm) {
        Some(Family::Rsa) => EncodingKey::from_rsa_pem(pem),
        Some(Family::Ec) => EncodingKey::from_ec_pem(pem),
        Some(Family::Ed) => EncodingKey::from_ed_pem(pem),
        Some(Family::Hmac) | None => Err(ErrorKind::InvalidAlgorithm.into()),
    }
    .map_err(|source| KeygenError::Key {
        file: signing.file.clone(),
        source,
    })
}

/// The public JWK of a private key: `alg`, `use: sig` and `kid` set.
pub fn public_jwk(
    key: &EncodingKey,
    alg: Algorithm,
    kid: Option<&str>,
) -> Result<Jwk, jsonwebtoken::errors::Error> {
    let mut jwk = Jwk::from_encoding_key(key, alg)?;
    jwk.common.key_id = kid.map(str::to_owned);
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    Ok(jwk)
}

/// The JWKS document the admin listener serves at `/.well-known/jwks.json`: the public keys
/// of all the issuers' signing keys and of the identity assertion's key (its public JWK),
/// never HMAC secrets.
/// `None` when no such key is configured.
pub fn published_jwks(issuers: &[IssuerConfig], assertion: Option<&Jwk>) -> Option<Bytes> {
    let mut keys: Vec<Jwk> = issuers
        .iter()
        // Every signing key, the ones not yet signing included: verifiers learn a new key
        // before the first token it signs reaches them.
        .flat_map(|issuer| issuer.signing_keys.iter())
        .filter_map(|signing| {
            let jwk = encoding_key(signing).and_then(|key| {
                public_jwk(&key, signing.algorithm, signing.kid.as_deref()).map_err(|source| {
                    KeygenError::Key {
                        file: signing.file.clone(),
                        source,
                    }
                })
            });
            // Config loading derived the same JWK already, so this is not expected to fail.
            jwk.inspect_err(|e| warn!(error = %e, "signing key not published"))
                .ok()
        })
        .collect();
    keys.extend(assertion.cloned());
    if keys.is_empty() {
        return None;
    }
    serde_json::to_vec(&JwkSet { keys })
        .inspect_err(|e| warn!(error = %e, "cannot render the JWKS document"))
        .ok()
        .map(Bytes::from)
}

/// A new HMAC secret as text: 48 random bytes from the OS, base64url (64 characters).
pub fn new_secret_text() -> String {
    String::from_utf8_lossy(random_secret().expose()).into_owned()
}

/// 48 random bytes from the OS, base64url without padding: 64 printable characters.
fn random_secret() -> Secret {
    let mut bytes = [0u8; HMAC_SECRET_BYTES];
    OsRng.fill_bytes(&mut bytes);
    Secret::new(URL_SAFE_NO_PAD.encode(bytes).into_bytes())
}

/// Generates a key pair and renders its three files (private PEM, public PEM, JWKS), with its
/// key id: `kid`, else the public key's RFC 7638 SHA-256 thumbprint.
fn pair_files(
    alg: KeyAlgorithm,
    make: fn() -> GenerateResult,
    kid: Option<&str>,
) -> Result<(Vec<Secret>, Option<String>), KeygenError> {
    let pair = make().map_err(|source| KeygenError::Generate { alg, source })?;
    let key_error = |source| KeygenError::Key {
        file: GENERATED.to_owned(),
        source,
    };
    let signing = SigningKeyConfig {
        algorithm: alg.jwt_algorithm(),
        kid: None,
        pem: pair.private_pem.clone(),
        file: GENERATED.to_owned(),
        active_from: None,
    };
    let mut jwk =
        public_jwk(&encoding_key(&signing)?, alg.jwt_algorithm(), None).map_err(key_error)?;
    // RFC 7638 hashes the key's required members only, so the kid set below does not change it.
    let kid = match kid {
        Some(kid) => kid.to_owned(),
        None => jwk
            .thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
            .map_err(key_error)?,
    };
    jwk.common.key_id = Some(kid.clone());
    let mut jwks = serde_json::to_string_pretty(&JwkSet { keys: vec![jwk] })
        .map_err(|e| key_error(e.into()))?;
    jwks.push('\n');
    let files = vec![
        pair.private_pem,
        Secret::new(pair.public_pem.into_bytes()),
        Secret::new(jwks.into_bytes()),
    ];
    Ok((files, Some(kid)))
}

/// What the generated key is called in errors (it has no file yet).
const GENERATED: &str = "(generated)";

type GenerateResult = Result<KeyPair, Box<dyn std::error::Error + Send + Sync>>;

fn rsa_pair() -> GenerateResult {
    use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let key = rsa::RsaPrivateKey::new(&mut OsRng, RSA_BITS)?;
    let private = key.to_pkcs8_pem(LineEnding::LF)?;
    Ok(KeyPair {
        private_pem: Secret::new(private.as_bytes().to_vec()),
        public_pem: key.to_public_key().to_public_key_pem(LineEnding::LF)?,
    })
}

fn p256_pair() -> GenerateResult {
    use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let key = p256::SecretKey::random(&mut OsRng);
    let private = key.to_pkcs8_pem(LineEnding::LF)?;
    Ok(KeyPair {
        private_pem: Secret::new(private.as_bytes().to_vec()),
        public_pem: key.public_key().to_public_key_pem(LineEnding::LF)?,
    })
}

fn ed25519_pair() -> GenerateResult {
    use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey, KeypairBytes};
    use p256::pkcs8::LineEnding;
    let mut secret_key = [0u8; ed25519_dalek::SECRET_KEY_LENGTH];
    OsRng.fill_bytes(&mut secret_key);
    let public = ed25519_dalek::SigningKey::from_bytes(&secret_key).verifying_key();
    // PKCS#8 v1 (RFC 8410 §7, no embedded public key): what OpenSSL writes and what
    // jsonwebtoken's Ed25519 loader expects.
    let private = KeypairBytes {
        secret_key,
        public_key: None,
    }
    .to_pkcs8_pem(LineEnding::LF)?;
    Ok(KeyPair {
        private_pem: Secret::new(private.as_bytes().to_vec()),
        public_pem: public.to_public_key_pem(LineEnding::LF)?,
    })
}

fn write_new(path: &Path, content: &[u8], mode: u32) -> Result<(), KeygenError> {
    let write_error = |source| KeygenError::Write {
        path: path.to_owned(),
        source,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => KeygenError::Exists {
                path: path.to_owned(),
            },
            _ => write_error(e),
        })?;
    file.write_all(content)
        .and_then(|()| file.sync_all())
        .map_err(write_error)
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

fn config_snippet(
    alg: KeyAlgorithm,
    private_file: &Path,
    kid: Option<&str>,
    key_use: KeyUse,
) -> String {
    let file = toml_string(&private_file.to_string_lossy());
    if key_use == KeyUse::Assertion {
        let kid = kid.map_or_else(String::new, |k| format!("kid = {}\n", toml_string(k)));
        return format!("[assertion]\nkey_file = {file}\nalgorithm = \"{alg}\"\n{kid}");
    }
    let key = match alg {
        KeyAlgorithm::Hs256 => format!("secret_file = {file}"),
        _ => {
            let kid = kid.map_or_else(String::new, |k| format!(", kid = {}", toml_string(k)));
            format!("signing_key = {{ private_key_file = {file}, algorithm = \"{alg}\"{kid} }}")
        }
    };
    format!("[[issuers]]\nissuer = \"tollgate\"\nalgorithms = [\"{alg}\"]\n{key}\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn algorithm_names_parse_case_insensitively() {
        assert_eq!(
            "eddsa".parse::<KeyAlgorithm>().unwrap(),
            KeyAlgorithm::EdDsa
        );
        assert_eq!(
            "RS256".parse::<KeyAlgorithm>().unwrap(),
            KeyAlgorithm::Rs256
        );
        assert!("HS512".parse::<KeyAlgorithm>().is_err());
    }

    #[test]
    fn hmac_secret_is_private_printable_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("keys");
        let generated = generate(KeyAlgorithm::Hs256, &out, None, KeyUse::Issuer).unwrap();
        let path = &generated.files[0].path;
        let secret = std::fs::read_to_string(path).unwrap();
        assert_eq!(secret.len(), 64);
        assert!(!secret.contains('\n'));
        let mode = std::fs::metadata(path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!generated.config_snippet.contains(&secret));
        assert!(matches!(
            generate(KeyAlgorithm::Hs256, &out, None, KeyUse::Issuer),
            Err(KeygenError::Exists { .. })
        ));
        assert!(matches!(
            generate(KeyAlgorithm::Hs256, dir.path(), Some("k"), KeyUse::Issuer),
            Err(KeygenError::KidWithSecret)
        ));
    }

    #[test]
    fn ed25519_key_is_pkcs8_v1_and_has_a_jwk() {
        let pair = ed25519_pair().unwrap();
        let key = EncodingKey::from_ed_pem(pair.private_pem.expose()).unwrap();
        let jwk = public_jwk(&key, Algorithm::EdDSA, Some("ed")).unwrap();
        assert_eq!(jwk.common.key_id.as_deref(), Some("ed"));
        assert!(pair.public_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
    }

    #[test]
    fn snippet_quotes_paths_and_kid() {
        let snippet = config_snippet(
            KeyAlgorithm::Es256,
            Path::new("/k/a \"b\"/es256.key"),
            Some("k1"),
            KeyUse::Issuer,
        );
        let parsed: toml::Table = snippet.parse().unwrap();
        let issuer = &parsed["issuers"][0];
        assert_eq!(
            issuer["signing_key"]["private_key_file"].as_str(),
            Some("/k/a \"b\"/es256.key")
        );
        assert_eq!(issuer["signing_key"]["kid"].as_str(), Some("k1"));
    }
}

//! `[server.tls]`: TLS listeners, their certificates (chosen by SNI) and client certificates.
//!
//! Everything is loaded and checked here, once, at config load (`tollgate check` reports a
//! key that does not match its certificate with both paths); the running listener reloads the
//! same files when they change (see `crate::server::tls`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use serde::Deserialize;

use super::Invalid;

/// `[server.tls]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// TLS listeners. Default: none.
    #[serde(default)]
    pub listen: Vec<String>,
    /// Certificate chains and keys (PEM); the first also answers clients that send no SNI or
    /// a name no certificate has.
    #[serde(default)]
    pub certificates: Vec<RawCertificate>,
    /// `"none"` (default), `"request"` (verified when sent) or `"require"`.
    #[serde(default = "default_client_auth")]
    pub client_auth: String,
    /// PEM bundle of the CAs client certificates must chain to.
    pub client_ca_file: Option<String>,
    /// Service name → the certificate identities that are that service: a URI SAN such as
    /// `spiffe://cluster.local/ns/orders/sa/orders`, or `dns:<name>` for a DNS SAN.
    #[serde(default)]
    pub client_services: BTreeMap<String, Vec<String>>,
    /// Whether a returning client may resume its session from a ticket. Default: yes, unless
    /// client certificates are asked for.
    pub session_tickets: Option<bool>,
}

fn default_client_auth() -> String {
    "none".to_owned()
}

/// One `certificates` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCertificate {
    /// The chain, leaf first.
    pub cert_file: String,
    /// Its private key (PKCS#8, PKCS#1 or SEC1; RSA, ECDSA or Ed25519).
    pub key_file: String,
}

/// Whether clients present certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// Never asked for.
    None,
    /// Asked for; a client without one still connects, one with a bad one does not.
    Request,
    /// Required: the handshake fails without a valid one.
    Require,
}

/// A certificate and key pair's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateFiles {
    /// The chain.
    pub cert_file: String,
    /// The key.
    pub key_file: String,
}

/// Validated `[server.tls]`.
#[derive(Clone)]
pub struct TlsConfig {
    /// TLS listeners.
    pub listen: Vec<SocketAddr>,
    /// The certificates, as files (the listener reloads them when they change).
    pub certificates: Vec<CertificateFiles>,
    /// Client certificates.
    pub client_auth: ClientAuth,
    /// The client CA bundle, when client certificates are asked for.
    pub client_roots: Option<Arc<rustls::RootCertStore>>,
    /// The client CA bundle's path.
    pub client_ca_file: Option<String>,
    /// Certificate identity (`spiffe://…` or `dns:…`) → service name.
    pub client_services: BTreeMap<String, String>,
    /// Returning clients resume their session from a stateless ticket (no certificate, no
    /// signature). Off means a full handshake, and a fresh certificate check, every time.
    pub session_tickets: bool,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("listen", &self.listen)
            .field("certificates", &self.certificates)
            .field("client_auth", &self.client_auth)
            .field("client_ca_file", &self.client_ca_file)
            .field("client_services", &self.client_services)
            .field("session_tickets", &self.session_tickets)
            .finish()
    }
}

impl PartialEq for TlsConfig {
    fn eq(&self, other: &Self) -> bool {
        format!("{self:?}") == format!("{other:?}")
    }
}

/// Why a certificate could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    /// The chain file.
    #[error("cert_file {path}: {reason}")]
    Chain {
        /// Its path.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The key file.
    #[error("key_file {path}: {reason}")]
    Key {
        /// Its path.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// Loads a chain and its key, checking that the key is the leaf's.
pub fn load_certified_key(files: &CertificateFiles) -> Result<CertifiedKey, CertificateError> {
    let chain_error = |reason: String| CertificateError::Chain {
        path: files.cert_file.clone(),
        reason,
    };
    let key_error = |reason: String| CertificateError::Key {
        path: files.key_file.clone(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(&files.cert_file)
        .map_err(|e| chain_error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| chain_error(format!("not a PEM certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(chain_error("holds no PEM certificate".into()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key_file)
        .map_err(|e| key_error(format!("not a PEM private key: {e}")))?;
    let provider = rustls::crypto::ring::default_provider();
    CertifiedKey::from_der(chain, key, &provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => key_error(format!(
            "is not the key of the certificate in {}",
            files.cert_file
        )),
        other => key_error(other.to_string()),
    })
}

/// Validates `[server.tls]`; errors name the whole key (`server.tls.certificates[0].key_file`).
pub fn validate(raw: &RawTls) -> Result<Option<TlsConfig>, Invalid> {
    if raw.listen.is_empty() {
        if !raw.certificates.is_empty() {
            return Err(Invalid::new(
                "server.tls.listen",
                "certificates are configured but no TLS listener uses them",
            ));
        }
        return Ok(None);
    }
    let listen = parse_listen(raw)?;
    let certificates = load_certificates(raw)?;
    let client_auth = parse_client_auth(raw)?;
    let client_roots = load_client_roots(raw, client_auth)?;
    let client_services = parse_client_services(raw, client_auth)?;
    Ok(Some(TlsConfig {
        listen,
        certificates,
        client_auth,
        client_roots,
        client_ca_file: raw.client_ca_file.clone(),
        client_services,
        // A resumed session keeps the certificate it was opened with, unchecked, for the
        // ticket's lifetime; where certificates are identities, every connection shows one.
        session_tickets: raw
            .session_tickets
            .unwrap_or(client_auth == ClientAuth::None),
    }))
}

/// Parses the TLS listeners' addresses.
fn parse_listen(raw: &RawTls) -> Result<Vec<SocketAddr>, Invalid> {
    let mut listen = Vec::with_capacity(raw.listen.len());
    for (i, addr) in raw.listen.iter().enumerate() {
        listen.push(addr.trim().parse().map_err(|e| {
            Invalid::new(
                format!("server.tls.listen[{i}]"),
                format!("invalid socket address {addr:?}: {e}"),
            )
        })?);
    }
    Ok(listen)
}

/// Loads each certificate once, so that a bad file or a key of another certificate is reported
/// now rather than at the first handshake.
fn load_certificates(raw: &RawTls) -> Result<Vec<CertificateFiles>, Invalid> {
    if raw.certificates.is_empty() {
        return Err(Invalid::new(
            "server.tls.certificates",
            "a TLS listener needs at least one certificate",
        ));
    }
    let mut certificates = Vec::with_capacity(raw.certificates.len());
    for (i, c) in raw.certificates.iter().enumerate() {
        let files = CertificateFiles {
            cert_file: c.cert_file.clone(),
            key_file: c.key_file.clone(),
        };
        load_certified_key(&files).map_err(|e| {
            let key = match e {
                CertificateError::Chain { .. } => "cert_file",
                CertificateError::Key { .. } => "key_file",
            };
            Invalid::new(format!("server.tls.certificates[{i}].{key}"), e.to_string())
        })?;
        certificates.push(files);
    }
    Ok(certificates)
}

/// Parses `client_auth`.
fn parse_client_auth(raw: &RawTls) -> Result<ClientAuth, Invalid> {
    match raw.client_auth.as_str() {
        "none" => Ok(ClientAuth::None),
        "request" => Ok(ClientAuth::Request),
        "require" => Ok(ClientAuth::Require),
        other => Err(Invalid::new(
            "server.tls.client_auth",
            format!("expected \"none\", \"request\" or \"require\", got {other:?}"),
        )),
    }
}

/// Loads `client_ca_file`, which client certificates need and which means nothing without
/// them.
fn load_client_roots(
    raw: &RawTls,
    client_auth: ClientAuth,
) -> Result<Option<Arc<rustls::RootCertStore>>, Invalid> {
    match (client_auth, raw.client_ca_file.as_deref()) {
        (ClientAuth::None, Some(_)) => Err(Invalid::new(
            "server.tls.client_ca_file",
            "set client_auth = \"request\" or \"require\" to use it",
        )),
        (ClientAuth::None, None) => Ok(None),
        (_, None) => Err(Invalid::new(
            "server.tls.client_ca_file",
            "client certificates need the CA bundle they are verified against",
        )),
        (_, Some(path)) => {
            let roots = super::roots::TrustRoots::load(Some(path))
                .map_err(|e| Invalid::new("server.tls.client_ca_file", e))?;
            let mut store = rustls::RootCertStore::empty();
            store.add_parsable_certificates(
                roots.certificates.iter().flat_map(|c| c.iter().cloned()),
            );
            Ok(Some(Arc::new(store)))
        }
    }
}

/// Inverts `client_services` into identity → service, refusing malformed identities and one
/// identity claimed by two services.
fn parse_client_services(
    raw: &RawTls,
    client_auth: ClientAuth,
) -> Result<BTreeMap<String, String>, Invalid> {
    if client_auth == ClientAuth::None && !raw.client_services.is_empty() {
        return Err(Invalid::new(
            "server.tls.client_services",
            "set client_auth = \"request\" or \"require\" to identify services by certificate",
        ));
    }
    let mut client_services = BTreeMap::new();
    for (service, ids) in &raw.client_services {
        for id in ids {
            let valid = id
                .strip_prefix("spiffe://")
                .is_some_and(|rest| rest.contains('/'))
                || id.strip_prefix("dns:").is_some_and(|name| !name.is_empty());
            if !valid {
                return Err(Invalid::new(
                    format!("server.tls.client_services.{service}"),
                    format!("{id:?} is neither spiffe://<trust domain>/<path> nor dns:<name>"),
                ));
            }
            if let Some(other) = client_services.insert(id.clone(), service.clone()) {
                return Err(Invalid::new(
                    format!("server.tls.client_services.{service}"),
                    format!("{id:?} is already service {other:?}"),
                ));
            }
        }
    }
    Ok(client_services)
}

//! TLS termination: certificates chosen by SNI and reloaded when their files change, client
//! certificates verified against the configured CA, and what a verified client certificate
//! says about its holder.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;
use tracing::{error, info};

use tollgate_config::tls::{ClientAuth, TlsConfig, load_certified_key};

/// How often certificate files are checked for a change (cert-manager and Kubernetes Secret
/// mounts replace them by a symlink swap).
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// The certificates in force, by the names they are valid for.
#[derive(Debug)]
struct Loaded {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// `*.example.com` certificates, by `example.com`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
}

/// Picks a certificate by SNI; swapped whole on reload, so a handshake sees one set or the
/// other.
#[derive(Debug)]
pub struct Certificates {
    loaded: ArcSwap<Loaded>,
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let loaded = self.loaded.load();
        let Some(name) = hello.server_name() else {
            return Some(loaded.default.clone());
        };
        let name = name.to_ascii_lowercase();
        let found = loaded.exact.get(&name).or_else(|| {
            name.split_once('.')
                .and_then(|(_, parent)| loaded.wildcard.get(parent))
        });
        Some(found.unwrap_or(&loaded.default).clone())
    }
}

/// The DNS names in a certificate's SANs (its CN when it has none).
fn names(key: &CertifiedKey) -> Vec<String> {
    let Some(der) = key.cert.first() else {
        return Vec::new();
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der.as_ref()) else {
        return Vec::new();
    };
    let mut names: Vec<String> = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_ascii_lowercase()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    if names.is_empty() {
        names.extend(
            cert.subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok())
                .map(str::to_ascii_lowercase),
        );
    }
    names
}

fn load(config: &TlsConfig) -> Result<Loaded, String> {
    let mut keys = Vec::with_capacity(config.certificates.len());
    for files in &config.certificates {
        keys.push(Arc::new(
            load_certified_key(files).map_err(|e| e.to_string())?,
        ));
    }
    let mut loaded = Loaded {
        exact: HashMap::new(),
        wildcard: HashMap::new(),
        default: keys.first().cloned().ok_or("no certificate")?,
    };
    // The first certificate listed wins a name two of them hold.
    for key in &keys {
        for name in names(key) {
            match name.strip_prefix("*.") {
                Some(parent) => loaded.wildcard.entry(parent.to_owned()),
                None => loaded.exact.entry(name),
            }
            .or_insert_with(|| key.clone());
        }
    }
    Ok(loaded)
}

impl Certificates {
    /// Loads `config`'s certificates (checked at config load, so this fails only if a file
    /// changed since).
    pub fn new(config: &TlsConfig) -> Result<Arc<Self>, String> {
        Ok(Arc::new(Self {
            loaded: ArcSwap::from_pointee(load(config)?),
        }))
    }

    /// Reloads the files whenever one changes, until the last reference is dropped. A set
    /// that does not load is refused with a logged error; the previous one keeps serving.
    pub fn watch(self: &Arc<Self>, config: TlsConfig, metrics: Arc<crate::metrics::Metrics>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let stamps = |config: &TlsConfig| {
                config
                    .certificates
                    .iter()
                    .flat_map(|c| [&c.cert_file, &c.key_file])
                    .map(|path| tollgate_config::file_stamp(std::path::Path::new(path)))
                    .collect::<Vec<_>>()
            };
            let mut last = stamps(&config);
            loop {
                tokio::time::sleep(RELOAD_INTERVAL).await;
                let Some(this) = weak.upgrade() else { return };
                let now = stamps(&config);
                if now == last {
                    continue;
                }
                // A writer may be between the certificate and the key: a set that does not
                // load now is tried again at the next change or tick.
                match load(&config) {
                    Ok(loaded) => {
                        last = now;
                        this.loaded.store(Arc::new(loaded));
                        metrics.record_tls_reload(true);
                        info!("TLS certificates reloaded");
                    }
                    Err(e) => {
                        last = now;
                        metrics.record_tls_reload(false);
                        error!(error = %e, "TLS certificates not reloaded; the previous ones keep serving");
                    }
                }
            }
        });
    }
}

/// The acceptor of every TLS listener: TLS 1.2 and 1.3 with rustls' default (modern) cipher
/// suites, ALPN `h2` and `http/1.1`, client certificates and session resumption as configured.
pub fn acceptor(
    config: &TlsConfig,
    certificates: Arc<Certificates>,
) -> Result<TlsAcceptor, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?;
    let builder = match (&config.client_roots, config.client_auth) {
        (Some(roots), ClientAuth::Request | ClientAuth::Require) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider);
            let verifier = if config.client_auth == ClientAuth::Request {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| e.to_string())?)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut server = builder.with_cert_resolver(certificates);
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    if config.session_tickets {
        // Stateless tickets (keys in memory, rotated every 6 hours, each valid 12): unlike
        // rustls' default single-use cache of 256 sessions, a client that offers one ticket
        // on several connections (OpenSSL does) resumes on each.
        server.ticketer = rustls::crypto::ring::Ticketer::new().map_err(|e| e.to_string())?;
    } else {
        server.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        server.send_tls13_tickets = 0;
    }
    Ok(TlsAcceptor::from(Arc::new(server)))
}

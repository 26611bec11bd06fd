//! A TLS front for the plain test servers: a private CA generated per test (rcgen), a leaf
//! certificate for 127.0.0.1 and localhost, and a terminator that pipes to a plain backend.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, SanType};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, pki_types::PrivateKeyDer};

/// A private CA (generated per test) and a leaf certificate for 127.0.0.1 and localhost, in
/// PEM files, for servers the tests start.
pub struct TestCerts {
    /// The CA certificate.
    pub ca_file: PathBuf,
    /// The leaf certificate.
    pub cert_file: PathBuf,
    /// The leaf's private key.
    pub key_file: PathBuf,
    leaf: rcgen::Certificate,
    leaf_key: KeyPair,
    ca: CertifiedIssuer<'static, KeyPair>,
    dir: tempfile::TempDir,
}

impl TestCerts {
    /// Generates a CA and a leaf it signs.
    pub fn generate() -> Self {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "tollgate test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let mut leaf_params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        leaf_params
            .subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = leaf_params.signed_by(&leaf_key, &ca).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, text: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        Self {
            ca_file: file("ca.pem", ca.pem()),
            cert_file: file("leaf.pem", leaf.pem()),
            key_file: file("leaf.key", leaf_key.serialize_pem()),
            leaf,
            leaf_key,
            ca,
            dir,
        }
    }

    /// Another certificate the same CA signs, written as `<stem>.pem` and `<stem>.key`: for
    /// `dns` names (and 127.0.0.1 with `localhost`), with the PEM private key `key` (a fresh P-256 key when
    /// `None`), a URI SAN when `uri` is given (a SPIFFE ID), valid for `days` from now.
    pub fn issue(
        &self,
        stem: &str,
        dns: &[&str],
        uri: Option<&str>,
        key: Option<&str>,
    ) -> (PathBuf, PathBuf) {
        let mut params =
            CertificateParams::new(dns.iter().map(|d| d.to_string()).collect::<Vec<_>>()).unwrap();
        if dns.contains(&"localhost") {
            params
                .subject_alt_names
                .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        }
        // Several URI SANs: separated by spaces.
        for uri in uri.into_iter().flat_map(|u| u.split(' ')) {
            params.subject_alt_names.push(SanType::URI(
                rcgen::string::Ia5String::try_from(uri).unwrap(),
            ));
        }
        params
            .distinguished_name
            .push(DnType::CommonName, dns.first().copied().unwrap_or(stem));
        let key = match key {
            Some(pem) => KeyPair::from_pem(pem).unwrap(),
            None => KeyPair::generate().unwrap(),
        };
        let cert = params.signed_by(&key, &self.ca).unwrap();
        let (cert_file, key_file) = (
            self.dir.path().join(format!("{stem}.pem")),
            self.dir.path().join(format!("{stem}.key")),
        );
        std::fs::write(&cert_file, cert.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        (cert_file, key_file)
    }
}

/// `https://127.0.0.1:port` in front of a plain HTTP backend.
pub struct TlsFront {
    /// Where TLS is served.
    pub addr: SocketAddr,
    /// The PEM file of the private CA that signed the server certificate.
    pub ca_file: PathBuf,
    _certs: TestCerts,
}

impl TlsFront {
    /// Terminates TLS on a new port and forwards each connection to `backend`.
    pub async fn start(backend: SocketAddr) -> Self {
        let certs = TestCerts::generate();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![certs.leaf.der().clone()],
            PrivateKeyDer::try_from(certs.leaf_key.serialize_der()).unwrap(),
        )
        .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A client that refuses the certificate ends the handshake: nothing to do.
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    if let Ok(mut plain) = TcpStream::connect(backend).await {
                        let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                    }
                });
            }
        });
        Self {
            addr,
            ca_file: certs.ca_file.clone(),
            _certs: certs,
        }
    }

    /// `https://127.0.0.1:port{path}`
    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }
}

/// A client configuration trusting `ca_file` and presenting `identity` (certificate and key
/// files) when given; it keeps the session tickets servers send, so a second connection made
/// with the same configuration offers one.
pub fn client_config(
    ca_file: &std::path::Path,
    identity: Option<(&std::path::Path, &std::path::Path)>,
) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    Arc::new(match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_file_iter(cert)
                    .unwrap()
                    .map(Result::unwrap)
                    .collect(),
                PrivateKeyDer::from_pem_file(key).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    })
}

/// A TLS connection to `addr` (SNI `localhost`) made with `config`; the handshake's error
/// otherwise.
pub async fn connect_with(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())
}

/// A TLS connection to `addr` (SNI `localhost`), trusting `ca_file` and presenting `identity`
/// (certificate and key files) when given; the handshake's error otherwise.
pub async fn tls_connect(
    addr: SocketAddr,
    ca_file: &std::path::Path,
    identity: Option<(&std::path::Path, &std::path::Path)>,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    connect_with(addr, client_config(ca_file, identity)).await
}

/// GET `path` over TLS to `addr` (SNI `localhost`), trusting `ca_file` and presenting
/// `identity` (certificate and key files) when given; (status, body) or the connection's error.
pub async fn tls_get(
    addr: SocketAddr,
    ca_file: &std::path::Path,
    identity: Option<(&std::path::Path, &std::path::Path)>,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<(u16, String), String> {
    get_on(tls_connect(addr, ca_file, identity).await?, path, headers).await
}

/// GET `path` (Host `localhost`) with `headers` over the HTTP/1.1 connection `tls`; (status,
/// body) or the connection's error.
pub async fn get_on(
    tls: tokio_rustls::client::TlsStream<TcpStream>,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<(u16, String), String> {
    use http_body_util::BodyExt;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let mut request = http::Request::get(path).header("host", "localhost");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = sender
        .send_request(
            request
                .body(http_body_util::Full::new(bytes::Bytes::new()))
                .unwrap(),
        )
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

//! tollgate's outbound HTTP clients, built in one place from the config's TLS settings: the
//! upstream client, JWKS fetches and vendor logins differ only in their body type and roots.
#![forbid(unsafe_code)]

pub mod fetch;

use std::sync::Arc;
use std::time::Duration;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tollgate_config::{TrustRoots, UpstreamTls};

/// How long an idle connection is kept (checked when connections are taken or returned).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// TCP connect deadline (both upstream clients); the route timeout still bounds the whole
/// exchange.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Builds an outbound client: keep-alive pool, TLS with webpki roots. The proxy, JWKS fetches
/// and vendor logins each get one, differing only in body type.
pub fn build_client<B>() -> Client<HttpsConnector<HttpConnector>, B>
where
    B: http_body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<tollgate_http::BoxError>,
{
    build_client_trusting(&TrustRoots::default())
}

/// Like [`build_client`], trusting `roots` (a private CA's bundle replaces the public roots).
pub fn build_client_trusting<B>(roots: &TrustRoots) -> Client<HttpsConnector<HttpConnector>, B>
where
    B: http_body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<tollgate_http::BoxError>,
{
    build_client_with(&UpstreamTls {
        roots: roots.clone(),
        client_certificate: None,
        server_name: None,
        insecure_skip_verify: false,
    })
}

/// Like [`build_client`], connecting as `tls` says: its roots, client certificate and
/// server name.
pub fn build_client_with<B>(tls: &UpstreamTls) -> Client<HttpsConnector<HttpConnector>, B>
where
    B: http_body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<tollgate_http::BoxError>,
{
    build_client_speaking(tls, true)
}

/// Like [`build_client_with`], offering HTTP/1.1 only: for a route that forwards the client's
/// host, which HTTP/2 would have to carry in `:authority`, where the connection's own
/// authority goes (one authority per hop, RFC 9113 §8.3.1).
pub fn build_client_http1_with<B>(tls: &UpstreamTls) -> Client<HttpsConnector<HttpConnector>, B>
where
    B: http_body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<tollgate_http::BoxError>,
{
    build_client_speaking(tls, false)
}

fn build_client_speaking<B>(
    tls: &UpstreamTls,
    http2: bool,
) -> Client<HttpsConnector<HttpConnector>, B>
where
    B: http_body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<tollgate_http::BoxError>,
{
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    let builder =
        hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls_client_config(tls));
    let builder = builder.https_or_http();
    let builder = match &tls.server_name {
        Some(name) => builder
            .with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name.clone())),
        None => builder,
    };
    let https = match http2 {
        true => builder.enable_http1().enable_http2().wrap_connector(http),
        false => builder.enable_http1().wrap_connector(http),
    };
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(IDLE_TIMEOUT)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(https)
}

/// A client speaking HTTP/2 with prior knowledge (h2c) to plain-HTTP servers: gRPC upstreams
/// and `upstream_protocol = "h2c"` routes. Requests to one authority share one connection.
pub fn build_h2c_client<B>(connect_timeout: Duration) -> Client<HttpConnector, B>
where
    B: http_body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<tollgate_http::BoxError>,
{
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .pool_idle_timeout(IDLE_TIMEOUT)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(http)
}

/// The rustls side of [`build_client_with`].
fn tls_client_config(tls: &UpstreamTls) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut store = rustls::RootCertStore::empty();
    match &tls.roots.certificates {
        // Checked at config load: every certificate of the bundle is a usable anchor.
        Some(certificates) => {
            store.add_parsable_certificates(certificates.iter().cloned());
        }
        None => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    // Unreachable with ring's default provider; refusing every certificate is the fallback,
    // never the public roots or no verification.
    let Ok(builder) = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
    else {
        return rustls::ClientConfig::builder()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
    };
    let builder = if tls.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
    } else {
        builder.with_root_certificates(store)
    };
    match &tls.client_certificate {
        Some(certified) => {
            builder.with_client_cert_resolver(Arc::new(FixedClientCertificate(certified.clone())))
        }
        None => builder.with_no_client_auth(),
    }
}

/// Presents the configured certificate to every upstream that asks.
#[derive(Debug)]
struct FixedClientCertificate(Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for FixedClientCertificate {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// `insecure_skip_verify` (loopback upstreams only, checked at config load): any certificate
/// passes, signatures are still checked so the session is at least with the key's holder.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

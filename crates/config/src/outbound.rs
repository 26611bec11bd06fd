//! Outbound connections tollgate makes on its own behalf (JWKS fetches, vendor logins) and to
//! upstreams: which URLs may be plain HTTP, and how a route's upstream TLS is set up.

use std::net::IpAddr;
use std::sync::Arc;

use http::Uri;

use super::roots::TrustRoots;

/// Refuses plain `http://` to anything but a loopback host unless `allow_insecure_http` says
/// so: JWKS keys and vendor passwords would be readable, and replaceable, on the path.
pub fn check_transport(uri: &Uri, allow_insecure_http: bool) -> Result<(), String> {
    if uri.scheme_str() != Some("http") || allow_insecure_http || is_loopback(uri) {
        return Ok(());
    }
    Err(format!(
        "plain http:// to {} sends it readable and forgeable on the network; use https:// \
         (with a ca_file for a private CA), or set allow_insecure_http = true",
        uri.host().unwrap_or_default()
    ))
}

fn is_loopback(uri: &Uri) -> bool {
    let host = uri.host().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `upstream_tls` of a route, as written.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstreamTls {
    /// PEM bundle of the CAs that sign the upstream's certificate (instead of the public
    /// roots).
    pub ca_file: Option<String>,
    /// Client certificate chain to present (mutual TLS).
    pub cert_file: Option<String>,
    /// Its private key.
    pub key_file: Option<String>,
    /// The name the upstream's certificate must hold, and the SNI sent (default: the URL's
    /// host).
    pub server_name: Option<String>,
    /// Accept any certificate: allowed only for a loopback upstream (a local development
    /// server with a self-signed certificate). Default false.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// How tollgate connects to one upstream over TLS.
#[derive(Clone, Default)]
pub struct UpstreamTls {
    /// The roots the upstream's certificate must chain to.
    pub roots: TrustRoots,
    /// The certificate presented to the upstream.
    pub client_certificate: Option<Arc<rustls::sign::CertifiedKey>>,
    /// Name checked and sent as SNI instead of the URL's host.
    pub server_name: Option<rustls::pki_types::ServerName<'static>>,
    /// Accept any certificate (loopback only).
    pub insecure_skip_verify: bool,
}

impl std::fmt::Debug for UpstreamTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamTls")
            .field("roots", &self.roots)
            .field("client_certificate", &self.client_certificate.is_some())
            .field("server_name", &self.server_name)
            .field("insecure_skip_verify", &self.insecure_skip_verify)
            .finish()
    }
}

impl UpstreamTls {
    /// Validates `raw` for the upstream `uri`; errors are `(key suffix, reason)`.
    pub fn load(raw: &RawUpstreamTls, uri: &Uri) -> Result<Self, (&'static str, String)> {
        if uri.scheme_str() != Some("https") {
            return Err(("", "applies to https:// upstreams only".to_owned()));
        }
        if raw.insecure_skip_verify && !is_loopback(uri) {
            return Err((
                ".insecure_skip_verify",
                format!(
                    "refused for {}: only a loopback upstream may skip certificate \
                     verification; give its CA in ca_file instead",
                    uri.host().unwrap_or_default()
                ),
            ));
        }
        if raw.insecure_skip_verify && raw.ca_file.is_some() {
            return Err((
                ".insecure_skip_verify",
                "and ca_file contradict each other: remove one".to_owned(),
            ));
        }
        let roots = TrustRoots::load(raw.ca_file.as_deref()).map_err(|e| (".ca_file", e))?;
        let client_certificate = match (&raw.cert_file, &raw.key_file) {
            (Some(cert_file), Some(key_file)) => Some(Arc::new(
                super::tls::load_certified_key(&super::tls::CertificateFiles {
                    cert_file: cert_file.clone(),
                    key_file: key_file.clone(),
                })
                .map_err(|e| match e {
                    super::tls::CertificateError::Chain { .. } => (".cert_file", e.to_string()),
                    super::tls::CertificateError::Key { .. } => (".key_file", e.to_string()),
                })?,
            )),
            (None, None) => None,
            (Some(_), None) => return Err((".key_file", "cert_file needs its key_file".into())),
            (None, Some(_)) => return Err((".cert_file", "key_file needs its cert_file".into())),
        };
        let server_name = raw
            .server_name
            .as_deref()
            .map(|name| {
                rustls::pki_types::ServerName::try_from(name.to_owned())
                    .map_err(|e| (".server_name", format!("{name:?}: {e}")))
            })
            .transpose()?;
        Ok(Self {
            roots,
            client_certificate,
            server_name,
            insecure_skip_verify: raw.insecure_skip_verify,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_for_loopback_unless_allowed() {
        for url in [
            "https://idp.example/jwks",
            "http://127.0.0.1:8080/x",
            "http://127.9.9.9/x",
            "http://[::1]:9/x",
            "http://localhost/x",
            "http://LOCALHOST:1/x",
        ] {
            assert!(
                check_transport(&url.parse().unwrap(), false).is_ok(),
                "{url}"
            );
        }
        for url in [
            "http://idp.example/jwks",
            "http://10.0.0.1/x",
            "http://[::2]/x",
            "http://localhost.evil.example/x",
            "http://127.0.0.1.nip.io/x",
        ] {
            let uri = url.parse().unwrap();
            let err = check_transport(&uri, false).unwrap_err();
            assert!(err.contains("allow_insecure_http"), "{url}: {err}");
            assert!(check_transport(&uri, true).is_ok(), "{url}");
        }
    }
}

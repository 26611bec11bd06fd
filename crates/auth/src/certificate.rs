//! A verified client certificate as an identity: its SPIFFE ID (URI SAN) or DNS names, mapped
//! to a service by `[server.tls] client_services`, become the same [`Identity`] a service
//! token would (`x-user-type: service`, `x-service-name: <name>`).

use std::collections::BTreeMap;
use std::sync::Arc;

use http::HeaderValue;

use tollgate_http::identity::{
    Identity, TokenKind, X_SERVICE_NAME, X_USER_ID, X_USER_ISSUER, X_USER_TYPE,
};

pub use tollgate_http::identity::CERTIFICATE_ISSUER;

/// What a client certificate the TLS handshake verified says; read once per connection.
#[derive(Debug, Clone)]
pub struct ClientCertificate {
    /// The first URI SAN starting `spiffe://`, if any.
    pub spiffe_id: Option<String>,
    /// The DNS SANs, lowercase.
    pub dns_names: Vec<String>,
    /// The identity of the service the config maps it to; `None`: not registered.
    pub identity: Option<Arc<Identity>>,
    /// The SHA-256 of the certificate's DER, lowercase hex (for `x-forwarded-client-cert`).
    pub sha256: Option<String>,
}

impl ClientCertificate {
    /// The certificate a client presented (already verified by the handshake), from its
    /// SPIFFE ID (first `spiffe://` URI SAN), DNS SANs and `notAfter` (seconds), mapped through
    /// `services` (`spiffe://…` or `dns:<name>` → service name). The SPIFFE ID is looked up
    /// first. Reading the names from the DER is the TLS listener's job, so this crate needs no
    /// X.509 parser.
    pub fn from_names(
        spiffe_id: Option<String>,
        dns_names: Vec<String>,
        expires_at: u64,
        services: &BTreeMap<String, String>,
    ) -> Self {
        let registered = spiffe_id
            .as_ref()
            .and_then(|id| Some((id.clone(), services.get(id)?)))
            .or_else(|| {
                dns_names.iter().find_map(|name| {
                    let id = format!("dns:{name}");
                    let service = services.get(&id)?;
                    Some((id, service))
                })
            });
        let identity = registered
            .and_then(|(subject, service)| service_identity(subject, service, expires_at))
            .map(Arc::new);
        Self {
            spiffe_id,
            dns_names,
            identity,
            sha256: None,
        }
    }

    /// The same, with the SHA-256 of its DER (lowercase hex).
    pub fn with_sha256(self, hex: String) -> Self {
        Self {
            sha256: Some(hex),
            ..self
        }
    }

    /// `x-forwarded-client-cert` in Envoy's format (`Hash=…;URI=…;DNS=…`), for routes that
    /// send the verified certificate's details: tollgate sets it, never a client. A DNS name
    /// with a character the format would need to quote is left out rather than quoted.
    pub fn forwarded_client_cert(&self) -> Option<HeaderValue> {
        let mut value = format!("Hash={}", self.sha256.as_deref()?);
        if let Some(uri) = &self.spiffe_id {
            value.push_str(";URI=");
            value.push_str(uri);
        }
        let plain = |name: &&String| {
            name.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'*'))
        };
        for name in self.dns_names.iter().filter(plain) {
            value.push_str(";DNS=");
            value.push_str(name);
        }
        HeaderValue::from_str(&value).ok()
    }
}

/// The identity of `service`, authenticated by the certificate named `subject`.
fn service_identity(subject: String, service: &str, expires_at: u64) -> Option<Identity> {
    let headers = vec![
        (X_USER_ID.clone(), HeaderValue::from_str(&subject).ok()?),
        (X_USER_TYPE.clone(), HeaderValue::from_static("service")),
        (
            X_USER_ISSUER.clone(),
            HeaderValue::from_static(CERTIFICATE_ISSUER),
        ),
        (X_SERVICE_NAME.clone(), HeaderValue::from_str(service).ok()?),
    ];
    Some(Identity {
        kind: TokenKind::Service,
        issuer: CERTIFICATE_ISSUER.to_owned(),
        subject,
        role: None,
        service: Some(service.to_owned()),
        expires_at,
        token_id: None,
        issued_at: None,
        headers,
        grants: Default::default(),
    })
}

//! A verified client certificate as an identity: its SPIFFE ID (URI SAN) or DNS names, mapped
//! to a service by `[server.tls] client_services`, become the same [`Identity`] a service
//! token would (`x-user-type: service`, `x-service-name: <name>`).

use std::collections::BTreeMap;
use std::sync::Arc;

use http::HeaderValue;

use crate::identity::{Identity, TokenKind, X_SERVICE_NAME, X_USER_ID, X_USER_ISSUER, X_USER_TYPE};

pub use crate::identity::CERTIFICATE_ISSUER;

/// What a client certificate the TLS handshake verified says; read once per connection.
#[derive(Debug, Clone)]
pub struct ClientCertificate {
    /// The first URI SAN starting `spiffe://`, if any.
    pub spiffe_id: Option<String>,
    /// The DNS SANs, lowercase.
    pub dns_names: Vec<String>,
    /// The identity of the service the config maps it to; `None`: not registered.
    pub identity: Option<Arc<Identity>>,
}

impl ClientCertificate {
    /// Reads the leaf a client presented (already verified by the handshake) and maps it
    /// through `services` (`spiffe://…` or `dns:<name>` → service name). The SPIFFE ID is
    /// looked up first.
    pub fn from_der(der: &[u8], services: &BTreeMap<String, String>) -> Option<Self> {
        use x509_parser::extensions::GeneralName;
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let mut spiffe_id = None;
        let mut dns_names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::URI(uri)
                        if uri.starts_with("spiffe://") && spiffe_id.is_none() =>
                    {
                        spiffe_id = Some((*uri).to_owned());
                    }
                    GeneralName::DNSName(name) => dns_names.push(name.to_ascii_lowercase()),
                    _ => {}
                }
            }
        }
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
        let expires_at = u64::try_from(cert.validity().not_after.timestamp()).unwrap_or(0);
        let identity = registered
            .and_then(|(subject, service)| service_identity(subject, service, expires_at))
            .map(Arc::new);
        Some(Self {
            spiffe_id,
            dns_names,
            identity,
        })
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
    })
}

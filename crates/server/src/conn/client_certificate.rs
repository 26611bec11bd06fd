//! A client certificate's names, read from the DER the TLS handshake verified, for the auth
//! core's [`ClientCertificate`] (which needs no X.509 parser of its own).

use std::collections::BTreeMap;

use tollgate_auth::certificate::ClientCertificate;

/// Reads the leaf a client presented and maps it through `services`; `None` if it does not
/// parse.
pub fn read(der: &[u8], services: &BTreeMap<String, String>) -> Option<ClientCertificate> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let mut spiffe_id = None;
    let mut dns_names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::URI(uri) if uri.starts_with("spiffe://") && spiffe_id.is_none() => {
                    spiffe_id = Some((*uri).to_owned());
                }
                GeneralName::DNSName(name) => dns_names.push(name.to_ascii_lowercase()),
                _ => {}
            }
        }
    }
    let expires_at = u64::try_from(cert.validity().not_after.timestamp()).unwrap_or(0);
    Some(ClientCertificate::from_names(
        spiffe_id, dns_names, expires_at, services,
    ))
}

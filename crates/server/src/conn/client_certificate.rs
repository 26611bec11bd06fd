//! A client certificate's names, read from the DER the TLS handshake verified, for the auth
//! core's [`ClientCertificate`] (which needs no X.509 parser of its own).

use std::collections::BTreeMap;

use tollgate_auth::certificate::ClientCertificate;

/// Reads the leaf a client presented and maps it through `services`; `None` if it does not
/// parse. A certificate that names its holder ambiguously names nobody: more than one SPIFFE
/// URI SAN (an X.509-SVID has exactly one), a SPIFFE ID that is not one (a port, a query, an
/// empty or dot segment), or a SAN extension that does not parse (e.g. twice present).
pub fn read(der: &[u8], services: &BTreeMap<String, String>) -> Option<ClientCertificate> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let expires_at = u64::try_from(cert.validity().not_after.timestamp()).unwrap_or(0);
    let nobody = || ClientCertificate::from_names(None, Vec::new(), expires_at, services);
    let mut spiffe_ids = Vec::new();
    let mut dns_names = Vec::new();
    match cert.subject_alternative_name() {
        Ok(Some(san)) => {
            for name in &san.value.general_names {
                match name {
                    GeneralName::URI(uri) if is_spiffe_scheme(uri) => spiffe_ids.push(*uri),
                    GeneralName::DNSName(name) => dns_names.push(name.to_ascii_lowercase()),
                    _ => {}
                }
            }
        }
        Ok(None) => {}
        Err(_) => return Some(nobody()),
    }
    let spiffe_id = match spiffe_ids.as_slice() {
        [] => None,
        [one] if is_spiffe_id(one) => Some((*one).to_owned()),
        _ => return Some(nobody()),
    };
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    Some(ClientCertificate::from_names(spiffe_id, dns_names, expires_at, services).with_sha256(hex))
}

/// Whether a URI is in the `spiffe` scheme, in any letter case (so `SPIFFE://` cannot slip
/// past the one-ID rule).
fn is_spiffe_scheme(uri: &str) -> bool {
    uri.get(..9)
        .is_some_and(|s| s.eq_ignore_ascii_case("spiffe://"))
}

/// A SPIFFE ID as the spec defines it: `spiffe://` in lower case, a trust domain of lower-case
/// letters, digits, `.`, `-` and `_`, and a path of non-empty segments that are not `.` or `..`,
/// of letters, digits, `.`, `-` and `_`; no port, user info, query or fragment.
fn is_spiffe_id(uri: &str) -> bool {
    let Some(rest) = uri.strip_prefix("spiffe://") else {
        return false;
    };
    let (domain, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let domain_ok = !domain.is_empty()
        && domain.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_')
        });
    let segment_ok = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    };
    domain_ok && (path.is_empty() || path[1..].split('/').all(segment_ok))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spiffe_ids_are_read_one_way() {
        for good in [
            "spiffe://cluster.local/ns/orders/sa/orders",
            "spiffe://example.org",
        ] {
            assert!(is_spiffe_id(good), "{good}");
        }
        for bad in [
            "SPIFFE://cluster.local/ns/a",
            "spiffe://Cluster.local/ns/a",
            "spiffe://cluster.local:8443/ns/a",
            "spiffe://user@cluster.local/ns/a",
            "spiffe://cluster.local/ns/a?x=1",
            "spiffe://cluster.local/ns/a#f",
            "spiffe://cluster.local/ns//a",
            "spiffe://cluster.local/ns/../admin",
            "spiffe://cluster.local/",
            "spiffe:///ns/a",
        ] {
            assert!(!is_spiffe_id(bad), "{bad}");
        }
        assert!(is_spiffe_scheme("SpIfFe://x"));
    }
}

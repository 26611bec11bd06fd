//! The certificate authorities an outbound TLS client trusts. Its own module because both the
//! outbound clients and the TLS listener (client certificates) load CA bundles.

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// The roots an outbound client trusts: the public web roots, or only a configured bundle.
#[derive(Clone, Default)]
pub struct TrustRoots {
    /// `None`: the public web roots; `Some`: only these certificates (a private CA).
    pub certificates: Option<Arc<Vec<CertificateDer<'static>>>>,
    /// The bundle's path, for messages.
    pub file: Option<String>,
}

impl std::fmt::Debug for TrustRoots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.file {
            Some(file) => write!(f, "TrustRoots({file})"),
            None => f.write_str("TrustRoots(public web roots)"),
        }
    }
}

impl TrustRoots {
    /// Loads a PEM bundle; it must hold at least one certificate.
    pub fn load(path: Option<&str>) -> Result<Self, String> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let certificates = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("cannot read {path:?}: {e}"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{path:?}: not a PEM certificate bundle: {e}"))?;
        if certificates.is_empty() {
            return Err(format!("{path:?} holds no PEM certificate"));
        }
        let mut store = rustls::RootCertStore::empty();
        let (_, refused) = store.add_parsable_certificates(certificates.iter().cloned());
        if refused > 0 {
            return Err(format!(
                "{path:?}: {refused} certificate(s) cannot be used as a trust anchor"
            ));
        }
        Ok(Self {
            certificates: Some(Arc::new(certificates)),
            file: Some(path.to_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_must_hold_usable_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let err = TrustRoots::load(empty.to_str()).unwrap_err();
        assert!(err.contains("no PEM certificate"), "{err}");
        assert!(TrustRoots::load(Some("/nonexistent/ca.pem")).is_err());
        assert!(TrustRoots::load(None).unwrap().certificates.is_none());
    }
}

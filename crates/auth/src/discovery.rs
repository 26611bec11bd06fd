//! OIDC discovery (OpenID Connect Discovery 1.0 §4): the provider's configuration document
//! gives the key set's URL and the signing algorithms. Its `issuer` must equal the configured
//! one exactly (§4.3), so a document served for another provider (the mix-up attack) is
//! refused rather than trusted.

use http::Uri;
use jsonwebtoken::Algorithm;
use serde::Deserialize;

/// What tollgate takes from a discovery document.
#[derive(Debug, Clone, PartialEq)]
pub struct Discovered {
    /// The key set's URL (`jwks_uri`).
    pub jwks_uri: Uri,
    /// `id_token_signing_alg_values_supported`, the algorithms tollgate knows among them
    /// (`None`: the document lists none, so only the configured allow-list applies).
    pub algorithms: Option<Vec<Algorithm>>,
}

#[derive(Deserialize)]
struct Document {
    issuer: String,
    jwks_uri: String,
    #[serde(default)]
    id_token_signing_alg_values_supported: Option<Vec<String>>,
}

/// Reads a discovery document fetched from `from` for `issuer`. A `jwks_uri` over plain http
/// is taken only when the document itself came over plain http from the same host (a
/// loopback or explicitly allowed provider), never as a downgrade from https.
pub fn read(body: &[u8], issuer: &str, from: &Uri) -> Result<Discovered, String> {
    let document: Document =
        serde_json::from_slice(body).map_err(|e| format!("not a discovery document: {e}"))?;
    if document.issuer != issuer {
        return Err(format!(
            "its issuer {:?} is not the configured {issuer:?} (refused: mix-up defence)",
            document.issuer
        ));
    }
    let jwks_uri: Uri = document
        .jwks_uri
        .parse()
        .map_err(|e| format!("jwks_uri {:?}: {e}", document.jwks_uri))?;
    let downgrade = jwks_uri.scheme_str() == Some("http")
        && (from.scheme_str() != Some("http") || jwks_uri.host() != from.host());
    if jwks_uri.authority().is_none()
        || !matches!(jwks_uri.scheme_str(), Some("http" | "https"))
        || downgrade
    {
        return Err(format!(
            "jwks_uri {:?} is not an https URL (or http on the document's own host)",
            document.jwks_uri
        ));
    }
    let algorithms = document
        .id_token_signing_alg_values_supported
        .map(|listed| {
            listed
                .iter()
                .filter_map(|a| a.parse::<Algorithm>().ok())
                .collect()
        });
    Ok(Discovered {
        jwks_uri,
        algorithms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(issuer: &str, jwks: &str) -> Vec<u8> {
        serde_json::json!({
            "issuer": issuer,
            "jwks_uri": jwks,
            "id_token_signing_alg_values_supported": ["RS256", "none", "ES256"]
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn the_issuer_must_match_exactly() {
        let from: Uri = "https://idp.example/.well-known/openid-configuration"
            .parse()
            .unwrap();
        let ok = read(
            &doc("https://idp.example", "https://idp.example/keys"),
            "https://idp.example",
            &from,
        )
        .unwrap();
        assert_eq!(ok.jwks_uri, "https://idp.example/keys");
        assert_eq!(
            ok.algorithms,
            Some(vec![Algorithm::RS256, Algorithm::ES256])
        );
        for other in [
            "https://idp.example/",
            "https://evil.example",
            "https://IDP.example",
        ] {
            let e = read(
                &doc(other, "https://idp.example/keys"),
                "https://idp.example",
                &from,
            );
            assert!(e.unwrap_err().contains("mix-up"), "{other}");
        }
    }

    #[test]
    fn a_key_set_over_http_only_from_an_http_document_on_its_host() {
        let https: Uri = "https://idp.example/.well-known/openid-configuration"
            .parse()
            .unwrap();
        let http: Uri = "http://127.0.0.1:8080/.well-known/openid-configuration"
            .parse()
            .unwrap();
        assert!(read(&doc("i", "http://idp.example/keys"), "i", &https).is_err());
        assert!(read(&doc("i", "http://127.0.0.1:8080/jwks"), "i", &http).is_ok());
        assert!(read(&doc("i", "http://10.0.0.1/jwks"), "i", &http).is_err());
        assert!(read(&doc("i", "file:///etc/passwd"), "i", &https).is_err());
        assert!(read(b"{}", "i", &https).is_err());
    }
}

//! The caller's identity, and the header rewrite that makes it trustworthy downstream: every
//! client-sent identity header is removed, then the verified ones are injected.

use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};

/// The issuer an identity from a client certificate names (`x-user-issuer`).
pub const CERTIFICATE_ISSUER: &str = "client-certificate";

/// `x-user-id`
pub static X_USER_ID: HeaderName = HeaderName::from_static("x-user-id");
/// `x-user-email`
pub static X_USER_EMAIL: HeaderName = HeaderName::from_static("x-user-email");
/// `x-user-role`
pub static X_USER_ROLE: HeaderName = HeaderName::from_static("x-user-role");
/// `x-user-type`: `access` or `service`.
pub static X_USER_TYPE: HeaderName = HeaderName::from_static("x-user-type");
/// `x-service-name`
pub static X_SERVICE_NAME: HeaderName = HeaderName::from_static("x-service-name");
/// `x-user-issuer`: the `name` of the issuer that vouched for the caller; `(issuer, user id)`
/// is the unique key of a caller, `user id` alone is not.
pub static X_USER_ISSUER: HeaderName = HeaderName::from_static("x-user-issuer");
/// `x-tenant-id`
pub static X_TENANT_ID: HeaderName = HeaderName::from_static("x-tenant-id");

/// Which kind of token the caller presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A user's access token.
    Access,
    /// A service's long-lived token.
    Service,
}

impl TokenKind {
    /// `access` or `service`, as in the `type` claim and `x-user-type`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Service => "service",
        }
    }
}

/// A verified caller, with the headers to inject already built and validated.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Token kind.
    pub kind: TokenKind,
    /// Name of the issuer that signed the token.
    pub issuer: String,
    /// User id (`user_id`, else `sub`).
    pub subject: String,
    /// The `role` claim.
    pub role: Option<String>,
    /// The `service` claim of service tokens.
    pub service: Option<String>,
    /// The token's `exp`, in seconds since the epoch.
    pub expires_at: u64,
    /// The token's `jti`, by which it can be revoked.
    pub token_id: Option<String>,
    /// The token's `iat`, in seconds since the epoch (a service revocation refuses tokens
    /// issued at or before it).
    pub issued_at: Option<u64>,
    /// Headers to inject, in order.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// What route rules check beyond the kind and role: scopes, roles, selected claims.
    pub grants: Grants,
}

/// The parts of a token that route rules (`scopes`, `roles`, `claims`) are judged on, read
/// once when the token is verified.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// OAuth scopes: `scope` (space-separated) or `scp` (array or string).
    pub scopes: Vec<String>,
    /// Roles from the issuer's `roles_claim` (e.g. `realm_access.roles`).
    pub roles: Vec<String>,
    /// The claims a route's `claims` rule names, by dotted path, as compact JSON.
    pub claims: Vec<(String, String)>,
}

impl Grants {
    /// Whether every one of `required` is among the scopes.
    pub fn has_scopes(&self, required: &[String]) -> bool {
        required.iter().all(|r| self.scopes.iter().any(|s| s == r))
    }

    /// The claim at `path` (dotted) as compact JSON, if the token had it.
    pub fn claim(&self, path: &str) -> Option<&str> {
        self.claims
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, v)| v.as_str())
    }
}

/// Whether `name` (lowercase, as `HeaderName` stores it) is an identity header: one of the
/// reserved namespaces or a configured claim header, with `_` and `-` treated alike because
/// several Python and PHP backends fold `_` into `-`.
pub fn is_identity_header(name: &str, configured: &[HeaderName]) -> bool {
    let name = name.as_bytes();
    let starts_with = |prefix: &&[u8]| {
        name.len() >= prefix.len() && same_folding_underscore(&name[..prefix.len()], prefix)
    };
    owned_family(name).iter().any(starts_with)
        || configured.iter().any(|c| {
            c.as_str().len() == name.len() && same_folding_underscore(name, c.as_str().as_bytes())
        })
}

/// The owned prefixes a header name could start with, chosen by its first bytes: every header
/// of every request and response passes here, and most (`content-type`, `x-forwarded-for`,
/// `x-request-id`) are dismissed after one or two comparisons, not eighteen.
///
/// Two families are owned. The gateway's namespaces (`x-user-`, `x-service-`, `x-tenant-`,
/// `x-tollgate-`; `x-tollgate-` holds what the gateway itself signs, `x-tollgate-assertion`,
/// which a client's copy must never reach an upstream as). And the client-certificate headers
/// TLS-terminating proxies set (nginx, HAProxy, Apache, Envoy, Traefik, IIS/ARR, AWS ALB,
/// RFC 9440): an upstream behind a TLS proxy trusts them as the verified certificate, so
/// tollgate, the TLS proxy here, owns them all; only tollgate sets `x-forwarded-client-cert`,
/// on routes that ask for it.
fn owned_family(name: &[u8]) -> &'static [&'static [u8]] {
    let lower = |i: usize| name.get(i).map(u8::to_ascii_lowercase);
    match (lower(0).as_ref(), lower(2)) {
        (Some(b's'), _) => &[b"ssl-client"],
        (Some(b'c'), _) => &[b"client-cert"],
        (Some(b'x'), Some(b'u')) => &[b"x-user-"],
        (Some(b'x'), Some(b's')) => &[b"x-service-", b"x-ssl-", b"x-spiffe"],
        (Some(b'x'), Some(b't')) => &[b"x-tenant-", b"x-tollgate-", b"x-tls-client-"],
        (Some(b'x'), Some(b'c')) => &[
            b"x-client-cert",
            b"x-client-verify",
            b"x-client-dn",
            b"x-client-s-dn",
            b"x-client-i-dn",
        ],
        (Some(b'x'), Some(b'a')) => &[b"x-arr-clientcert", b"x-amzn-mtls-clientcert"],
        (Some(b'x'), Some(b'f')) => &[b"x-forwarded-client-cert", b"x-forwarded-tls-client-cert"],
        _ => &[],
    }
}

/// Whether `name` is `x-tollgate-assertion` in any case, with `_` for `-`.
pub fn is_assertion_header(name: &str) -> bool {
    same_folding_underscore(name.as_bytes(), b"x-tollgate-assertion")
}

fn same_folding_underscore(a: &[u8], b: &[u8]) -> bool {
    let fold = |c: u8| {
        if c == b'_' {
            b'-'
        } else {
            c.to_ascii_lowercase()
        }
    };
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| fold(*x) == fold(*y))
}

/// Removes every identity header the client sent; returns how many names were removed.
pub fn strip(headers: &mut HeaderMap, configured: &[HeaderName]) -> usize {
    // Collect first: the map cannot be mutated while iterating. Most requests carry none, so
    // this allocates nothing on the common path.
    let spoofed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| is_identity_header(name.as_str(), configured))
        .cloned()
        .collect();
    for name in &spoofed {
        headers.remove(name);
    }
    spoofed.len()
}

/// Injects the verified identity's headers.
pub fn inject(headers: &mut HeaderMap, identity: &Identity) {
    for (name, value) in &identity.headers {
        headers.insert(name.clone(), value.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every owned prefix, as the two families are documented.
    const OWNED: [&[u8]; 18] = [
        b"x-user-",
        b"x-service-",
        b"x-tenant-",
        b"x-tollgate-",
        b"x-ssl-",
        b"ssl-client",
        b"x-client-cert",
        b"x-client-verify",
        b"x-client-dn",
        b"x-client-s-dn",
        b"x-client-i-dn",
        b"x-spiffe",
        b"x-arr-clientcert",
        b"x-forwarded-client-cert",
        b"x-forwarded-tls-client-cert",
        b"x-amzn-mtls-clientcert",
        b"client-cert",
        b"x-tls-client-",
    ];

    #[test]
    fn the_dispatch_finds_every_owned_prefix_in_any_case() {
        for prefix in OWNED {
            let text = std::str::from_utf8(prefix).unwrap();
            assert!(owned_family(prefix).contains(&prefix), "{text}");
            let upper = text.to_ascii_uppercase().replace('-', "_");
            assert!(owned_family(upper.as_bytes()).contains(&prefix), "{upper}");
            assert!(is_identity_header(&format!("{text}x"), &[]), "{text}");
        }
    }

    #[test]
    fn tls_proxy_certificate_headers_are_owned_in_every_spelling() {
        let owned = [
            "X-SSL-Client-Cert",
            "x-ssl-client-verify",
            "X_SSL_Client_S_DN",
            "SSL-Client-Cert",
            "ssl_client_verify",
            "X-Client-Cert",
            "x-client-certificate",
            "X-Client-Verify",
            "x-client-s-dn",
            "X-SPIFFE-ID",
            "x_spiffe_id",
            "X-ARR-ClientCert",
            "X-Forwarded-Client-Cert",
            "x-forwarded-tls-client-cert-info",
            "X-Amzn-Mtls-Clientcert-Subject",
            "Client-Cert",
            "client-cert-chain",
            "x-tls-client-intermediate",
        ];
        for name in owned {
            assert!(
                is_identity_header(&name.to_ascii_lowercase(), &[]),
                "{name}"
            );
        }
        for name in [
            "x-client-id",
            "x-request-id",
            "cookie",
            "content-type",
            "x-sslx",
            "cache-control",
        ] {
            assert!(!is_identity_header(name, &[]), "{name}");
        }
    }

    #[test]
    fn strips_every_spelling_of_identity_headers() {
        let mut h = HeaderMap::new();
        for name in [
            "x-user-id",
            "X-User-Email",
            "x_user_role",
            "x-user_type",
            "x-service-name",
            "x_service_name",
            "x-tenant-id",
            "x-tenant-anything",
            "x-org-id",
            "x_org_id",
            "x-userinfo",
            "x-tollgate-assertion",
            "X_Tollgate_Assertion",
            "x-tollgateway",
            "accept",
        ] {
            h.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_static("spoof"),
            );
        }
        h.append("x-user-id", HeaderValue::from_static("second"));
        let removed = strip(&mut h, &[HeaderName::from_static("x-org-id")]);
        let mut left: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        assert_eq!(left, ["accept", "x-tollgateway", "x-userinfo"]);
        assert_eq!(removed, 12);
    }

    #[test]
    fn injects_prebuilt_headers() {
        let identity = Identity {
            kind: TokenKind::Service,
            issuer: "t".into(),
            subject: "orders".into(),
            role: None,
            service: Some("orders".into()),
            expires_at: 0,
            token_id: None,
            issued_at: None,
            headers: vec![(X_SERVICE_NAME.clone(), HeaderValue::from_static("orders"))],
            grants: Default::default(),
        };
        let mut h = HeaderMap::new();
        inject(&mut h, &identity);
        assert_eq!(h["x-service-name"], "orders");
    }
}

//! Route policies: who may use a route once their token is verified.

use http::{HeaderMap, Method};

use tollgate_http::identity::{Identity, TokenKind};

/// Which callers a route admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Anyone; a valid token still yields identity headers.
    Public,
    /// Any valid access or service token.
    Authenticated,
    /// User access tokens only.
    Access,
    /// Service tokens only.
    Service,
}

impl Policy {
    /// The lowercase name used in config, logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Public => "public",
            Policy::Authenticated => "authenticated",
            Policy::Access => "access",
            Policy::Service => "service",
        }
    }
}

/// Which credentials a route authenticates callers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Credentials {
    /// A bearer token (the default; a client certificate is ignored).
    #[default]
    Token,
    /// A verified client certificate registered for a service; tokens are ignored.
    Certificate,
    /// A token when the request carries one, else a client certificate.
    TokenOrCertificate,
    /// Both: a service token and a client certificate of the same service.
    TokenAndCertificate,
}

impl Credentials {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Credentials::Token => "token",
            Credentials::Certificate => "certificate",
            Credentials::TokenOrCertificate => "token_or_certificate",
            Credentials::TokenAndCertificate => "token_and_certificate",
        }
    }
}

/// A route's complete access rule.
#[derive(Debug, Clone)]
pub struct RoutePolicy {
    /// The base policy.
    pub policy: Policy,
    /// With [`Policy::Service`]: the allowed service names (empty: any).
    pub services: Vec<String>,
    /// Allowed roles (empty: any).
    pub roles: Vec<String>,
    /// OAuth scopes the token must all carry (empty: none).
    pub scopes: Vec<String>,
    /// `scopes` space-separated, for the `scope` attribute of the challenge.
    pub scope_challenge: std::sync::Arc<str>,
    /// Allowed methods (empty: any).
    pub methods: Vec<Method>,
    /// Claims the token must carry with given values.
    pub claims: Vec<crate::claims::ClaimRule>,
    /// Let CORS preflights through without a token.
    pub allow_cors_preflight: bool,
    /// Forward the caller's `Authorization` header.
    pub forward_authorization: bool,
    /// Issuers (by name) whose tokens the route accepts (empty: any configured issuer).
    pub issuers: Vec<String>,
    /// Tokens, client certificates, or a combination.
    pub credentials: Credentials,
}

/// Why a verified caller may not use a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Forbidden {
    /// A user token on a service-only route.
    #[error("service token required")]
    ServiceTokenRequired,
    /// A service token on a user-only route.
    #[error("user access token required")]
    AccessTokenRequired,
    /// A service not in the route's list.
    #[error("service not allowed")]
    ServiceNotAllowed,
    /// A role not in the route's list.
    #[error("role not allowed")]
    RoleNotAllowed,
    /// A token without every scope the route requires.
    #[error("insufficient scope")]
    InsufficientScope,
    /// A method the route does not serve, asked about through forward-auth (where a proxy
    /// takes only 401 and 403 as answers: nginx turns any other status into a 500).
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// A required claim missing or with another value.
    #[error("claim not allowed")]
    ClaimNotAllowed,
    /// A token of an issuer the route does not trust.
    #[error("issuer not allowed on this route")]
    IssuerNotAllowed,
    /// The token and the client certificate name different services.
    #[error("token and client certificate name different services")]
    CertificateMismatch,
}

impl RoutePolicy {
    fn of(policy: Policy) -> Self {
        Self {
            policy,
            services: Vec::new(),
            roles: Vec::new(),
            scopes: Vec::new(),
            scope_challenge: "".into(),
            methods: Vec::new(),
            claims: Vec::new(),
            allow_cors_preflight: false,
            forward_authorization: false,
            issuers: Vec::new(),
            credentials: Credentials::Token,
        }
    }

    /// Anyone; a valid token still yields identity headers.
    pub fn public() -> Self {
        Self::of(Policy::Public)
    }

    /// Any valid access or service token.
    pub fn authenticated() -> Self {
        Self::of(Policy::Authenticated)
    }

    /// User access tokens only.
    pub fn access() -> Self {
        Self::of(Policy::Access)
    }

    /// Service tokens of these services only (none listed: any service).
    pub fn service<I: IntoIterator<Item = S>, S: Into<String>>(services: I) -> Self {
        Self {
            services: services.into_iter().map(Into::into).collect(),
            ..Self::of(Policy::Service)
        }
    }

    /// The caller's role must be one of `roles`.
    pub fn roles<I: IntoIterator<Item = S>, S: Into<String>>(mut self, roles: I) -> Self {
        self.roles = roles.into_iter().map(Into::into).collect();
        self
    }

    /// Only tokens of these issuers (by name).
    pub fn issuers<I: IntoIterator<Item = S>, S: Into<String>>(mut self, issuers: I) -> Self {
        self.issuers = issuers.into_iter().map(Into::into).collect();
        self
    }

    /// Pass the caller's `Authorization` header (and token cookies) on.
    pub fn forward_authorization(mut self) -> Self {
        self.forward_authorization = true;
        self
    }

    /// Whether the route needs a token at all.
    pub fn requires_token(&self) -> bool {
        self.policy != Policy::Public
    }

    /// Whether this request may skip authentication as a CORS preflight (browsers send no
    /// credentials on it: Fetch standard, CORS-preflight request). Only a real preflight
    /// qualifies: `OPTIONS`, no body, `Origin` and `Access-Control-Request-Method`; the core
    /// also removes method-override headers from it.
    pub fn is_exempt_preflight(&self, method: &Method, headers: &HeaderMap, no_body: bool) -> bool {
        self.allow_cors_preflight
            && no_body
            && method == Method::OPTIONS
            && headers.contains_key(http::header::ORIGIN)
            && headers.contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD)
    }

    /// Whether the route trusts the issuer that vouched for `identity`.
    pub fn accepts_issuer(&self, identity: &Identity) -> bool {
        // A certificate identity was admitted by the route's `authenticate_with`; `issuers`
        // is about tokens.
        self.issuers.is_empty()
            || self.issuers.contains(&identity.issuer)
            || (self.credentials != Credentials::Token
                && identity.issuer == tollgate_http::identity::CERTIFICATE_ISSUER)
    }

    /// Whether the caller has one of the route's roles: its `role` claim or one of the roles
    /// its issuer's `roles_claim` lists.
    fn admits_role(&self, identity: &Identity) -> bool {
        let allowed = |r: &str| self.roles.iter().any(|a| a == r);
        identity.role.as_deref().is_some_and(allowed)
            || identity.grants.roles.iter().any(|r| allowed(r))
    }

    /// Whether `method` is allowed on the route.
    pub fn allows_method(&self, method: &Method) -> bool {
        self.methods.is_empty() || self.methods.contains(method)
    }

    /// Judges a verified identity against the route.
    pub fn authorize(&self, identity: &Identity) -> Result<(), Forbidden> {
        if !self.accepts_issuer(identity) {
            return Err(Forbidden::IssuerNotAllowed);
        }
        match (self.policy, identity.kind) {
            (Policy::Service, TokenKind::Access) => return Err(Forbidden::ServiceTokenRequired),
            (Policy::Access, TokenKind::Service) => return Err(Forbidden::AccessTokenRequired),
            _ => {}
        }
        if self.policy == Policy::Service
            && !self.services.is_empty()
            && !identity
                .service
                .as_deref()
                .is_some_and(|s| self.services.iter().any(|allowed| allowed == s))
        {
            return Err(Forbidden::ServiceNotAllowed);
        }
        if !self.roles.is_empty() && !self.admits_role(identity) {
            return Err(Forbidden::RoleNotAllowed);
        }
        if !identity.grants.has_scopes(&self.scopes) {
            return Err(Forbidden::InsufficientScope);
        }
        if !self.claims.iter().all(|rule| claim_matches(identity, rule)) {
            return Err(Forbidden::ClaimNotAllowed);
        }
        Ok(())
    }
}

/// Whether the token's claim at `rule`'s path is the required value, or an array holding it.
fn claim_matches(identity: &Identity, rule: &crate::claims::ClaimRule) -> bool {
    identity.grants.claim(&rule.key).is_some_and(|value| {
        value == rule.expected
            || serde_json::from_str::<Vec<serde_json::Value>>(value)
                .is_ok_and(|items| items.contains(&rule.value))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(kind: TokenKind, service: Option<&str>, role: Option<&str>) -> Identity {
        Identity {
            kind,
            issuer: "t".into(),
            subject: "u1".into(),
            role: role.map(Into::into),
            service: service.map(Into::into),
            expires_at: u64::MAX,
            token_id: None,
            issued_at: None,
            headers: Vec::new(),
            grants: Default::default(),
        }
    }

    fn policy(policy: Policy, services: &[&str], roles: &[&str]) -> RoutePolicy {
        RoutePolicy {
            policy,
            services: services.iter().map(|s| s.to_string()).collect(),
            roles: roles.iter().map(|s| s.to_string()).collect(),
            scopes: Vec::new(),
            scope_challenge: "".into(),
            methods: Vec::new(),
            claims: Vec::new(),
            allow_cors_preflight: false,
            forward_authorization: false,
            issuers: Vec::new(),
            credentials: Default::default(),
        }
    }

    #[test]
    fn only_real_preflights_are_exempt() {
        let mut p = policy(Policy::Service, &[], &[]);
        p.allow_cors_preflight = true;
        let mut h = HeaderMap::new();
        h.insert("origin", "https://app.example".parse().unwrap());
        h.insert("access-control-request-method", "PUT".parse().unwrap());
        assert!(p.is_exempt_preflight(&Method::OPTIONS, &h, true));
        assert!(
            !p.is_exempt_preflight(&Method::OPTIONS, &h, false),
            "a body"
        );
        assert!(!p.is_exempt_preflight(&Method::DELETE, &h, true));
        h.remove("access-control-request-method");
        assert!(!p.is_exempt_preflight(&Method::OPTIONS, &h, true));
    }

    #[test]
    fn token_kinds_meet_policies() {
        let user = identity(TokenKind::Access, None, Some("admin"));
        let svc = identity(TokenKind::Service, Some("orders"), Some("admin"));
        let service_only = policy(Policy::Service, &[], &[]);
        assert_eq!(
            service_only.authorize(&user),
            Err(Forbidden::ServiceTokenRequired)
        );
        assert_eq!(service_only.authorize(&svc), Ok(()));
        let access_only = policy(Policy::Access, &[], &[]);
        assert_eq!(
            access_only.authorize(&svc),
            Err(Forbidden::AccessTokenRequired)
        );
        assert_eq!(access_only.authorize(&user), Ok(()));
        let any = policy(Policy::Authenticated, &[], &[]);
        assert!(any.authorize(&user).is_ok() && any.authorize(&svc).is_ok());
    }

    #[test]
    fn a_pinned_route_refuses_other_issuers() {
        let svc = identity(TokenKind::Service, Some("orders"), None);
        let mut pinned = policy(Policy::Service, &[], &[]);
        pinned.issuers = vec!["partner".into()];
        assert_eq!(pinned.authorize(&svc), Err(Forbidden::IssuerNotAllowed));
        pinned.issuers.push("t".into());
        assert_eq!(pinned.authorize(&svc), Ok(()));
    }

    #[test]
    fn service_and_role_lists_restrict() {
        let svc = identity(TokenKind::Service, Some("orders"), Some("reader"));
        assert_eq!(
            policy(Policy::Service, &["billing"], &[]).authorize(&svc),
            Err(Forbidden::ServiceNotAllowed)
        );
        assert_eq!(
            policy(Policy::Service, &["billing", "orders"], &[]).authorize(&svc),
            Ok(())
        );
        assert_eq!(
            policy(Policy::Authenticated, &[], &["admin"]).authorize(&svc),
            Err(Forbidden::RoleNotAllowed)
        );
        let no_role = identity(TokenKind::Access, None, None);
        assert_eq!(
            policy(Policy::Authenticated, &[], &["admin"]).authorize(&no_role),
            Err(Forbidden::RoleNotAllowed)
        );
    }
}

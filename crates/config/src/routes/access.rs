//! Who may use a route: its policy, credentials, scopes, methods, claim rules and issuers.

use super::{RawPolicy, RawRoute};
use crate::error::{ConfigError, invalid};
use crate::issuers::IssuerConfig;
use crate::policy::{Credentials, Policy, RoutePolicy};
use crate::tls::RawTls;

/// A route's claim rules, parsed.
pub(super) struct Rules {
    scopes: Vec<String>,
    methods: Vec<http::Method>,
    claims: Vec<crate::claims::ClaimRule>,
}

/// Who may use the route, as the policy layer reads it.
pub(super) fn route_policy(
    route: &RawRoute,
    credentials: Credentials,
    rules: Rules,
) -> RoutePolicy {
    RoutePolicy {
        scope_challenge: rules.scopes.join(" ").into(),
        scopes: rules.scopes,
        methods: rules.methods,
        claims: rules.claims,
        policy: match route.policy {
            RawPolicy::Public => Policy::Public,
            RawPolicy::Authenticated => Policy::Authenticated,
            RawPolicy::Access => Policy::Access,
            RawPolicy::Service => Policy::Service,
        },
        services: route.services.clone(),
        roles: route.roles.clone(),
        allow_cors_preflight: route.allow_cors_preflight,
        forward_authorization: route.forward_authorization,
        issuers: route.issuers.clone(),
        credentials,
    }
}

/// Parses `scopes`, `methods` and `claims`.
pub(super) fn parse_rules(route: &RawRoute, key: &str, file: &str) -> Result<Rules, ConfigError> {
    for (i, scope) in route.scopes.iter().enumerate() {
        // A scope token (RFC 6749 §3.3): printable ASCII without space, quote or backslash.
        if scope.is_empty()
            || !scope
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b) && b != b'\\')
        {
            return Err(invalid(
                file,
                &format!("{key}.scopes[{i}]"),
                "a scope is printable ASCII without spaces, quotes or backslashes",
            ));
        }
    }
    let methods = route
        .methods
        .iter()
        .enumerate()
        .map(|(i, m)| {
            m.parse::<http::Method>()
                .ok()
                .filter(|_| !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()))
                .ok_or_else(|| {
                    invalid(
                        file,
                        &format!("{key}.methods[{i}]"),
                        format!("{m:?} is not a method in upper case, e.g. \"GET\""),
                    )
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let claims = route
        .claims
        .iter()
        .map(|(path, value)| {
            crate::claims::claim_rule(path, value)
                .map_err(|e| invalid(file, &format!("{key}.claims.{path}"), e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Rules {
        scopes: route.scopes.clone(),
        methods,
        claims,
    })
}

/// Settings the policy would silently ignore are refused: a public route lets everyone in.
pub(super) fn refuse_ignored_by_public(
    route: &RawRoute,
    key: &str,
    file: &str,
) -> Result<(), ConfigError> {
    if route.policy != RawPolicy::Public {
        return Ok(());
    }
    for (name, set) in [
        ("roles", !route.roles.is_empty()),
        ("scopes", !route.scopes.is_empty()),
        ("claims", !route.claims.is_empty()),
        ("allow_cors_preflight", route.allow_cors_preflight),
    ] {
        if set {
            return Err(invalid(
                file,
                &format!("{key}.{name}"),
                "has no effect on a public route (anyone passes): remove it or choose another policy",
            ));
        }
    }
    Ok(())
}

/// Parses `authenticate_with`; client certificates need a service policy and a TLS listener
/// that asks for them.
pub(super) fn parse_credentials(
    route: &RawRoute,
    tls: &RawTls,
    key: &str,
    file: &str,
) -> Result<Credentials, ConfigError> {
    let credentials = match route.authenticate_with.as_deref().unwrap_or("token") {
        "token" => Credentials::Token,
        "certificate" => Credentials::Certificate,
        "token_or_certificate" => Credentials::TokenOrCertificate,
        "token_and_certificate" => Credentials::TokenAndCertificate,
        other => {
            return Err(invalid(
                file,
                &format!("{key}.authenticate_with"),
                format!(
                    "expected \"token\", \"certificate\", \"token_or_certificate\" or \
                     \"token_and_certificate\", got {other:?}"
                ),
            ));
        }
    };
    if credentials == Credentials::Token {
        return Ok(credentials);
    }
    // A certificate identifies a service: on a user-only or public route it would either
    // never pass or mean nothing.
    if !matches!(route.policy, RawPolicy::Service | RawPolicy::Authenticated) {
        return Err(invalid(
            file,
            &format!("{key}.authenticate_with"),
            "client certificates identify services: use policy = \"service\" or \"authenticated\"",
        ));
    }
    if tls.client_auth == "none" {
        return Err(invalid(
            file,
            &format!("{key}.authenticate_with"),
            "needs [server.tls] client_auth = \"request\" or \"require\" (and client_services)",
        ));
    }
    Ok(credentials)
}

/// Checks that every issuer the route names is an `[[issuers]]` entry.
pub(super) fn check_issuer_names(
    route: &RawRoute,
    issuers: &[IssuerConfig],
    key: &str,
    file: &str,
) -> Result<(), ConfigError> {
    for (i, name) in route.issuers.iter().enumerate() {
        // An issuer's name is its `name`, else its `issuer`, as written.
        let known = issuers.iter().any(|issuer| &issuer.name == name);
        if !known {
            return Err(invalid(
                file,
                &format!("{key}.issuers[{i}]"),
                format!("no [[issuers]] entry named {name:?}"),
            ));
        }
    }
    Ok(())
}

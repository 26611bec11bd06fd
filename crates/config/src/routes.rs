//! Validation of `[[routes]]`: each route on its own, then against the other sections (issuers,
//! providers, the assertion key) and the routes before it.

use std::sync::Arc;

use http::Uri;

use super::raw::{RawConfig, RawPolicy, RawRoute};
use super::{ConfigError, IssuerConfig, ProviderConfig, Route, Upstream, UpstreamTls, invalid};
use crate::policy::{Credentials, Policy, RoutePolicy};
use tollgate_http::path::normalize_path;
use tollgate_http::upgrade::{DEFAULT_UPGRADES, FORBIDDEN};

/// Checks every route, in file order, alone and against the validated sections it refers to;
/// `has_assertion` says whether `[assertion]` is configured.
pub(super) fn validate_routes(
    raw: &RawConfig,
    issuers: &[IssuerConfig],
    providers: &[ProviderConfig],
    has_assertion: bool,
    file: &str,
) -> Result<Vec<Arc<Route>>, ConfigError> {
    let mut routes: Vec<Arc<Route>> = Vec::with_capacity(raw.routes.len());
    for (i, raw_route) in raw.routes.iter().enumerate() {
        let key = format!("routes[{i}]");
        let mut route = validate_route(raw_route, raw, &key, file)?;
        route.index = i;
        attach_upstream_auth(&mut route, raw_route, providers, &key, file)?;
        check_identity_assertion(&route, has_assertion, &key, file)?;
        if route.policy.policy != Policy::Public && issuers.is_empty() {
            return Err(invalid(
                file,
                &format!("{key}.policy"),
                "a protected route needs at least one [[issuers]] entry (or policy = \"public\")",
            ));
        }
        refuse_duplicate(&routes, &route, &key, file)?;
        routes.push(Arc::new(route));
    }
    Ok(routes)
}

/// Resolves `upstream_auth` to its provider, refusing what would leak the vendor token or
/// forward the caller's.
fn attach_upstream_auth(
    route: &mut Route,
    raw_route: &RawRoute,
    providers: &[ProviderConfig],
    key: &str,
    file: &str,
) -> Result<(), ConfigError> {
    let Some(name) = &raw_route.upstream_auth else {
        return refuse_vendor_only_settings(raw_route, key, file);
    };
    let index = providers
        .iter()
        .position(|p| &p.name == name)
        .ok_or_else(|| {
            invalid(
                file,
                &format!("{key}.upstream_auth"),
                format!("no [[providers]] entry named {name:?}"),
            )
        })?;
    if route.policy.forward_authorization {
        return Err(invalid(
            file,
            &format!("{key}.forward_authorization"),
            "a route with upstream_auth never forwards the caller's Authorization",
        ));
    }
    if matches!(route.upstream, Upstream::Echo | Upstream::ForwardAuth) {
        // The echo answer shows the built upstream request to the caller; a forward-auth
        // route has no upstream to send a vendor token to.
        return Err(invalid(
            file,
            &format!("{key}.upstream_auth"),
            "needs an upstream URL (echo would show the vendor token to the caller)",
        ));
    }
    route.upstream_auth = Some(index);
    // A vendor is a third party: internal identity and addresses only on request.
    route.sends_identity = raw_route.send_identity;
    route.sends_forwarded = raw_route.send_forwarded;
    Ok(())
}

/// Refuses `send_identity` and `send_forwarded` on a route without `upstream_auth`, where they
/// would do nothing: such a route always sends both.
fn refuse_vendor_only_settings(
    raw_route: &RawRoute,
    key: &str,
    file: &str,
) -> Result<(), ConfigError> {
    for (set, name) in [
        (raw_route.send_identity, "send_identity"),
        (raw_route.send_forwarded, "send_forwarded"),
    ] {
        if set {
            return Err(invalid(
                file,
                &format!("{key}.{name}"),
                "only has an effect on an upstream_auth route (other routes always send it)",
            ));
        }
    }
    Ok(())
}

/// Checks that an `identity_assertion` route has a key to sign with and an upstream that
/// receives the identity without showing it to the caller.
fn check_identity_assertion(
    route: &Route,
    has_assertion: bool,
    key: &str,
    file: &str,
) -> Result<(), ConfigError> {
    if !route.identity_assertion {
        return Ok(());
    }
    let refusal = if !has_assertion {
        Some("needs an [assertion] section (the key that signs the assertion)")
    } else if matches!(route.upstream, Upstream::Echo) {
        Some("the echo upstream would show the assertion to the caller")
    } else if matches!(route.upstream, Upstream::ForwardAuth) {
        Some("a forward-auth route answers the auth question; it sends no request to sign")
    } else if !route.sends_identity {
        Some("an upstream_auth route sends the caller's identity only with send_identity = true")
    } else {
        None
    };
    match refusal {
        Some(reason) => Err(invalid(file, &format!("{key}.identity_assertion"), reason)),
        None => Ok(()),
    }
}

/// Refuses a route with the prefix and host, or the name, of an earlier one.
fn refuse_duplicate(
    routes: &[Arc<Route>],
    route: &Route,
    key: &str,
    file: &str,
) -> Result<(), ConfigError> {
    if routes
        .iter()
        .any(|r| r.prefix == route.prefix && r.host == route.host)
    {
        return Err(invalid(
            file,
            &format!("{key}.prefix"),
            format!("duplicate route for prefix {:?}", route.prefix),
        ));
    }
    if routes.iter().any(|r| r.name == route.name) {
        // Metrics, logs and the audit trail would merge two routes into one.
        return Err(invalid(
            file,
            &format!("{key}.name"),
            format!("duplicate route name {:?}", &*route.name),
        ));
    }
    Ok(())
}

/// Checks one route on its own; `raw` gives the defaults and the issuer names it may refer to.
fn validate_route(
    route: &RawRoute,
    raw: &RawConfig,
    key: &str,
    file: &str,
) -> Result<Route, ConfigError> {
    let prefix =
        clean_prefix(&route.prefix).map_err(|e| invalid(file, &format!("{key}.prefix"), e))?;
    let upstream = parse_upstream(&route.upstream)
        .map_err(|e| invalid(file, &format!("{key}.upstream"), e))?;
    let upstream_tls = parse_upstream_tls(route, key, file)?;
    let rewrite = parse_rewrite(route, key, file)?;
    refuse_ignored_by_public(route, key, file)?;
    let credentials = parse_credentials(route, raw, key, file)?;
    let rules = parse_rules(route, key, file)?;
    if !route.services.is_empty() && route.policy != RawPolicy::Service {
        return Err(invalid(
            file,
            &format!("{key}.services"),
            "services applies to policy = \"service\" only",
        ));
    }
    let host = parse_host(route, key, file)?;
    let upgrades = parse_upgrades(route, key, file)?;
    check_issuer_names(route, raw, key, file)?;
    let max_requests = match route.max_requests {
        Some(0) => {
            return Err(invalid(
                file,
                &format!("{key}.max_requests"),
                "must be greater than 0",
            ));
        }
        other => other,
    };
    Ok(Route {
        index: 0,
        name: route_name(route, host.as_deref(), &prefix),
        prefix,
        host,
        upstream,
        upstream_tls,
        rewrite,
        timeout: route.timeout.map_or(raw.limits.upstream_timeout.0, |t| t.0),
        max_body_bytes: route.max_body_bytes.unwrap_or(raw.limits.max_body_bytes),
        max_requests,
        preserve_host: route.preserve_host,
        upgrades,
        allow_token_cookie: route.allow_token_cookie,
        policy: route_policy(route, credentials, rules),
        upstream_auth: None,
        sends_identity: true,
        sends_forwarded: true,
        identity_assertion: route.identity_assertion,
        forward_client_cert: route.forward_client_cert,
    })
}

/// The route's name: the configured one, else the prefix, after the host on host-specific
/// routes, so that `/` for one host and `/` for any host are two names.
fn route_name(route: &RawRoute, host: Option<&str>, prefix: &str) -> Arc<str> {
    match &route.name {
        Some(name) => name.as_str().into(),
        None => format!(
            "{}{}",
            host.unwrap_or_default(),
            if prefix.is_empty() { "/" } else { prefix }
        )
        .into(),
    }
}

/// Who may use the route, as the policy layer reads it.
fn route_policy(route: &RawRoute, credentials: Credentials, rules: Rules) -> RoutePolicy {
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

/// Checks and loads `upstream_tls` (CA bundle, client certificate, server name).
fn parse_upstream_tls(
    route: &RawRoute,
    key: &str,
    file: &str,
) -> Result<Option<Arc<UpstreamTls>>, ConfigError> {
    let Some(raw_tls) = &route.upstream_tls else {
        return Ok(None);
    };
    // `parse_upstream` has refused every URL that does not parse; for `echo`, parsed or not,
    // `load` finds no https:// scheme and says so.
    let uri: Uri = route.upstream.parse().unwrap_or_default();
    let tls = UpstreamTls::load(raw_tls, &uri)
        .map_err(|(suffix, e)| invalid(file, &format!("{key}.upstream_tls{suffix}"), e))?;
    Ok(Some(Arc::new(tls)))
}

/// What replaces the prefix: `rewrite` (a clean prefix) or nothing (`strip_prefix`), not both.
fn parse_rewrite(route: &RawRoute, key: &str, file: &str) -> Result<Option<String>, ConfigError> {
    match (&route.rewrite, route.strip_prefix) {
        (Some(_), true) => Err(invalid(
            file,
            &format!("{key}.rewrite"),
            "use either strip_prefix or rewrite, not both",
        )),
        (Some(r), false) => {
            Ok(Some(clean_prefix(r).map_err(|e| {
                invalid(file, &format!("{key}.rewrite"), e)
            })?))
        }
        (None, true) => Ok(Some(String::new())),
        (None, false) => Ok(None),
    }
}

/// A route's claim rules, parsed.
struct Rules {
    scopes: Vec<String>,
    methods: Vec<http::Method>,
    claims: Vec<crate::claims::ClaimRule>,
}

/// Parses `scopes`, `methods` and `claims`.
fn parse_rules(route: &RawRoute, key: &str, file: &str) -> Result<Rules, ConfigError> {
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
fn refuse_ignored_by_public(route: &RawRoute, key: &str, file: &str) -> Result<(), ConfigError> {
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
fn parse_credentials(
    route: &RawRoute,
    raw: &RawConfig,
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
    if raw.server.tls.client_auth == "none" {
        return Err(invalid(
            file,
            &format!("{key}.authenticate_with"),
            "needs [server.tls] client_auth = \"request\" or \"require\" (and client_services)",
        ));
    }
    Ok(credentials)
}

/// The route's host, canonicalised like request hosts, so `Admin.Example.com.` in the file
/// still matches.
fn parse_host(route: &RawRoute, key: &str, file: &str) -> Result<Option<String>, ConfigError> {
    match route.host.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(h) => Ok(Some(
            tollgate_http::host::canonical(h, None)
                .map_err(|e| invalid(file, &format!("{key}.host"), e))?
                .name()
                .to_owned(),
        )),
    }
}

/// Checks that every issuer the route names is an `[[issuers]]` entry.
fn check_issuer_names(
    route: &RawRoute,
    raw: &RawConfig,
    key: &str,
    file: &str,
) -> Result<(), ConfigError> {
    for (i, name) in route.issuers.iter().enumerate() {
        let known = raw
            .issuers
            .iter()
            .any(|issuer| issuer.name.as_ref().unwrap_or(&issuer.issuer) == name);
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

/// A route's upgrade allow-list: protocol names (RFC 9110 §16.7 tokens), never `h2c`.
fn parse_upgrades(route: &RawRoute, key: &str, file: &str) -> Result<Vec<String>, ConfigError> {
    let Some(list) = &route.upgrades else {
        return Ok(DEFAULT_UPGRADES.iter().map(|p| (*p).to_owned()).collect());
    };
    list.iter()
        .enumerate()
        .map(|(i, protocol)| {
            let key = format!("{key}.upgrades[{i}]");
            let name = protocol.trim().to_ascii_lowercase();
            if FORBIDDEN.contains(&name.as_str()) {
                return Err(invalid(
                    file,
                    &key,
                    "h2c is never forwarded: an h2c tunnel would reach every path of the upstream",
                ));
            }
            let token = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !token {
                return Err(invalid(
                    file,
                    &key,
                    format!("{protocol:?} is not a protocol name"),
                ));
            }
            Ok(name)
        })
        .collect()
}

/// A prefix must be an absolute, already-normal path; stored without its trailing slash.
fn clean_prefix(prefix: &str) -> Result<String, String> {
    if !prefix.starts_with('/') {
        return Err(format!("must start with '/', got {prefix:?}"));
    }
    let normal = normalize_path(prefix).map_err(|e| format!("{prefix:?}: {e}"))?;
    if normal != prefix && normal.trim_end_matches('/') != prefix.trim_end_matches('/') {
        return Err(format!(
            "{prefix:?} is not a normalised path (did you mean {normal:?}?)"
        ));
    }
    Ok(normal.trim_end_matches('/').to_owned())
}

/// `echo`, or an `http(s)://host[:port][/base]` URL without credentials or query.
fn parse_upstream(url: &str) -> Result<Upstream, String> {
    if url == "echo" {
        return Ok(Upstream::Echo);
    }
    if url == "forward-auth" {
        return Ok(Upstream::ForwardAuth);
    }
    if super::has_userinfo(url) {
        return Err(super::USERINFO_REFUSED.to_owned());
    }
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("invalid URL {url:?}: {e}"))?;
    let scheme = uri
        .scheme()
        .filter(|s| s.as_str() == "http" || s.as_str() == "https")
        .ok_or_else(|| {
            format!("invalid URL {url:?}: scheme must be http or https (or use \"echo\" or \"forward-auth\")")
        })?
        .clone();
    let authority = uri
        .authority()
        .ok_or_else(|| format!("invalid URL {url:?}: no host"))?
        .clone();
    if uri.query().is_some() {
        return Err(format!(
            "invalid URL {url:?}: a query string is not allowed"
        ));
    }
    let default_port = if scheme == http::uri::Scheme::HTTPS {
        443
    } else {
        80
    };
    let host = match authority.port_u16() {
        Some(port) if port != default_port => format!("{}:{port}", authority.host()),
        _ => authority.host().to_owned(),
    };
    let host = http::HeaderValue::from_str(&host)
        .map_err(|e| format!("invalid URL {url:?}: host: {e}"))?;
    Ok(Upstream::Http {
        scheme,
        authority,
        base_path: uri.path().trim_end_matches('/').to_owned(),
        host,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_host_header_omits_only_the_default_port() {
        for (url, host) in [
            ("http://api.internal", "api.internal"),
            ("http://api.internal:80/x", "api.internal"),
            ("http://127.0.0.1:8080", "127.0.0.1:8080"),
            ("https://vendor.example:443", "vendor.example"),
            ("https://vendor.example:80", "vendor.example:80"),
            ("https://[::1]:8443/base", "[::1]:8443"),
        ] {
            let Ok(Upstream::Http { host: got, .. }) = parse_upstream(url) else {
                panic!("{url} parses");
            };
            assert_eq!(got, host, "{url}");
        }
    }
}

//! `[[routes]]`: each route as written and validated, on its own, then against the other
//! sections (issuers, providers, the assertion key) and the routes before it.

mod access;
mod rate;
mod upstream;

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::issuers::IssuerConfig;
use super::limits::RawLimits;
use super::providers::ProviderConfig;
use super::tls::RawTls;
use super::values::HumanDuration;
use super::{ConfigError, RawUpstreamTls, UpstreamTls, invalid};
use crate::policy::{Policy, RoutePolicy};
use access::{
    check_issuer_names, parse_credentials, parse_rules, refuse_ignored_by_public, route_policy,
};
pub use rate::{KeyBy, Rate, RateLimit, RawRateLimit};
use tollgate_http::path::normalize_path;
pub use upstream::{Upstream, UpstreamProtocol};
use upstream::{
    attach_upstream_auth, check_identity_assertion, check_upstream_protocol, parse_rewrite,
    parse_upgrades, parse_upstream, parse_upstream_tls,
};

/// `[[routes]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// Name used in logs and metrics; unique. Default: the prefix (after the host, on a
    /// host-specific route).
    pub name: Option<String>,
    /// Path prefix, segment-aware: `/api` matches `/api` and `/api/x`, not `/apix`.
    pub prefix: String,
    /// Only requests for this host (port ignored, any letter case). Default: any host.
    pub host: Option<String>,
    /// `http://` or `https://` URL (its path is prepended), or `echo` for the built-in echo.
    pub upstream: String,
    /// Remove the prefix before forwarding. Default false.
    #[serde(default)]
    pub strip_prefix: bool,
    /// Replace the prefix with this path before forwarding. Default: none.
    pub rewrite: Option<String>,
    /// Time to wait for the upstream's response head. Default: `limits.upstream_timeout`.
    pub timeout: Option<HumanDuration>,
    /// Largest request body in bytes. Default: `limits.max_body_bytes`.
    pub max_body_bytes: Option<u64>,
    /// Most requests of this route in flight at once, below the upstream's own cap; more get
    /// 503 at once. Default: only the upstream's `limits.upstream_max_requests`.
    pub max_requests: Option<usize>,
    /// Forward the client's `Host` (canonicalised) instead of the upstream's authority.
    /// Default false.
    #[serde(default)]
    pub preserve_host: bool,
    /// How a plain-HTTP (`http://`) upstream is spoken to: `"auto"` (HTTP/1.1, and HTTP/2
    /// with prior knowledge for gRPC calls) or `"h2c"` (HTTP/2 with prior knowledge for every
    /// request but upgrades). An `https://` upstream is offered HTTP/2 by ALPN. Default `"auto"`.
    #[serde(default)]
    pub upstream_protocol: UpstreamProtocol,
    /// Protocols a client may upgrade to on this route (`Connection: upgrade`). Others are
    /// dropped from the request; `h2c` is refused. Default `["websocket"]`; `[]` for none.
    pub upgrades: Option<Vec<String>>,
    /// `public`, `authenticated` (default), `access` (user tokens only) or `service`
    /// (service tokens only).
    #[serde(default)]
    pub policy: RawPolicy,
    /// With `policy = "service"`: only these service names. Default: any service.
    #[serde(default)]
    pub services: Vec<String>,
    /// The caller's role must be one of these. Default: any role.
    #[serde(default)]
    pub roles: Vec<String>,
    /// The token must carry every one of these OAuth scopes (`scope` or `scp`); otherwise
    /// 403 with `error="insufficient_scope"`. Default: none.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Only these methods; others get 405 with `Allow`. Default: any method.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Claims the token must carry with exactly these values, by dotted path, e.g.
    /// `{ tenant = "acme", email_verified = true }` (an array claim matches when it contains
    /// the value). Default: none.
    #[serde(default)]
    pub claims: std::collections::BTreeMap<String, toml::Value>,
    /// Let CORS preflight requests (`OPTIONS` with `Origin` and
    /// `Access-Control-Request-Method`, and no body) through without a token; method-override
    /// headers are removed from them. Default false.
    #[serde(default)]
    pub allow_cors_preflight: bool,
    /// Forward the caller's `Authorization` header. Default false (removed).
    #[serde(default)]
    pub forward_authorization: bool,
    /// Name of a `[[providers]]` entry whose bearer token replaces the caller's. Default: none.
    pub upstream_auth: Option<String>,
    /// Only tokens of these issuers (their `name`) are accepted here. Default: any issuer.
    #[serde(default)]
    pub issuers: Vec<String>,
    /// For an `https://` upstream: `{ ca_file, cert_file, key_file, server_name,
    /// insecure_skip_verify }` (a private CA, a client certificate for mutual TLS, the name its
    /// certificate holds). Default: the public roots, no client certificate.
    pub upstream_tls: Option<RawUpstreamTls>,
    /// `"token"` (default), `"certificate"` (a client certificate registered for a service
    /// in `[server.tls] client_services`), `"token_or_certificate"` (a token when the request
    /// has one, else the certificate) or `"token_and_certificate"` (both, of one service).
    pub authenticate_with: Option<String>,
    /// Let the upstream's `Set-Cookie` for a token cookie (an issuer's `from_cookie`) reach the
    /// client, e.g. on the login service's route. Default false (removed).
    #[serde(default)]
    pub allow_token_cookie: bool,
    /// On an `upstream_auth` (third-party) route: also send the caller's identity headers.
    /// Default false: a vendor gets no internal names, ids or e-mail addresses.
    #[serde(default)]
    pub send_identity: bool,
    /// On an `upstream_auth` (third-party) route: also send `X-Forwarded-*` and `X-Real-IP`.
    /// Default false: a vendor gets no internal addresses or host names.
    #[serde(default)]
    pub send_forwarded: bool,
    /// Send the verified client certificate's details in `x-forwarded-client-cert` (Envoy's
    /// format: `Hash=<sha256 of the DER>;URI=<SPIFFE ID>;DNS=<name>`). Only tollgate sets it: a
    /// client's copy is always removed. Default false.
    #[serde(default)]
    pub forward_client_cert: bool,
    /// Send `x-tollgate-assertion`, a signed, short-lived JWT bound to this request (method,
    /// path, host, request id) that carries the caller's identity. Needs `[assertion]`.
    /// Default false.
    #[serde(default)]
    pub identity_assertion: bool,
    /// A rate limit or quota: `{ rate = "100/s", burst = 20, by = "identity" }`; over it, 429.
    /// Default: none.
    pub rate_limit: Option<RawRateLimit>,
    /// Several limits, each applied (e.g. a rate per second and a daily quota).
    pub rate_limits: Option<Vec<RawRateLimit>>,
}

/// A route's access policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RawPolicy {
    /// No token needed; a valid one still yields identity headers.
    Public,
    /// Any valid access or service token.
    #[default]
    Authenticated,
    /// User access tokens only.
    Access,
    /// Service tokens only.
    Service,
}

/// One validated route.
#[derive(Debug, Clone)]
pub struct Route {
    /// Position in the config file's route list.
    pub index: usize,
    /// Name for logs and metrics (shared, so metric labels cost no allocation).
    pub name: Arc<str>,
    /// Normalised prefix without a trailing slash (`""` for the root).
    pub prefix: String,
    /// Lowercase host without port, if the route is host-specific.
    pub host: Option<String>,
    /// Where requests go.
    pub upstream: Upstream,
    /// How to connect to an `https://` upstream when not with the defaults (public roots, no
    /// client certificate).
    pub upstream_tls: Option<Arc<UpstreamTls>>,
    /// What replaces the matched prefix when forwarding (`None`: the path is kept).
    pub rewrite: Option<String>,
    /// Deadline for the upstream's response head.
    pub timeout: Duration,
    /// Largest request body.
    pub max_body_bytes: u64,
    /// Most requests of this route in flight (`None`: the upstream's cap only).
    pub max_requests: Option<usize>,
    /// Forward the client's canonical host.
    pub preserve_host: bool,
    /// How a plain-HTTP upstream is spoken to.
    pub upstream_protocol: UpstreamProtocol,
    /// Protocols clients may upgrade to, lower case (never `h2c`).
    pub upgrades: Vec<String>,
    /// The upstream may set token cookies on the client.
    pub allow_token_cookie: bool,
    /// Who may use the route.
    pub policy: RoutePolicy,
    /// Index into [`Config::providers`](crate::Config::providers) of the credential attached
    /// upstream, if any.
    pub upstream_auth: Option<usize>,
    /// Inject the caller's identity headers (off by default on third-party routes).
    pub sends_identity: bool,
    /// Set `X-Forwarded-*` and `X-Real-IP` (off by default on third-party routes).
    pub sends_forwarded: bool,
    /// Send the signed identity assertion (`x-tollgate-assertion`).
    pub identity_assertion: bool,
    /// Send `x-forwarded-client-cert` with the verified client certificate's details.
    pub forward_client_cert: bool,
    /// Rate limits and quotas, each applied.
    pub rate_limits: Vec<RateLimit>,
}

/// What a route refers to in the other sections: the defaults it falls back to, whether client
/// certificates are asked for, and the validated issuers and providers it may name.
pub(super) struct RouteContext<'a> {
    /// `[limits]`: the default timeout and body size.
    pub limits: &'a RawLimits,
    /// `[server.tls]`: whether client certificates are asked for.
    pub tls: &'a RawTls,
    /// The validated `[[issuers]]`.
    pub issuers: &'a [IssuerConfig],
    /// The validated `[[providers]]`.
    pub providers: &'a [ProviderConfig],
    /// Whether `[assertion]` is configured.
    pub has_assertion: bool,
}

/// Checks every route, in file order, alone and against the sections it refers to.
pub(super) fn validate_routes(
    raws: &[RawRoute],
    context: &RouteContext<'_>,
    file: &str,
) -> Result<Vec<Arc<Route>>, ConfigError> {
    let mut routes: Vec<Arc<Route>> = Vec::with_capacity(raws.len());
    for (i, raw_route) in raws.iter().enumerate() {
        let key = format!("routes[{i}]");
        let mut route = validate_route(raw_route, context, &key, file)?;
        route.index = i;
        attach_upstream_auth(&mut route, raw_route, context.providers, &key, file)?;
        check_identity_assertion(&route, context.has_assertion, &key, file)?;
        if route.policy.policy != Policy::Public && context.issuers.is_empty() {
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

/// Checks one route on its own; `context` gives the defaults and the issuer names it may refer
/// to.
fn validate_route(
    route: &RawRoute,
    context: &RouteContext<'_>,
    key: &str,
    file: &str,
) -> Result<Route, ConfigError> {
    let prefix =
        clean_prefix(&route.prefix).map_err(|e| invalid(file, &format!("{key}.prefix"), e))?;
    let upstream = parse_upstream(&route.upstream)
        .map_err(|e| invalid(file, &format!("{key}.upstream"), e))?;
    let upstream_tls = parse_upstream_tls(route, key, file)?;
    check_upstream_protocol(route, &upstream, key, file)?;
    let rewrite = parse_rewrite(route, key, file)?;
    refuse_ignored_by_public(route, key, file)?;
    let credentials = parse_credentials(route, context.tls, key, file)?;
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
    check_issuer_names(route, context.issuers, key, file)?;
    let rate_limits = rate::parse_rate_limits(route, key, file)?;
    let limits = context.limits;
    if route.max_requests == Some(0) {
        let reason = "must be greater than 0";
        return Err(invalid(file, &format!("{key}.max_requests"), reason));
    }
    Ok(Route {
        index: 0,
        name: route_name(route, host.as_deref(), &prefix),
        prefix,
        host,
        upstream,
        upstream_tls,
        rewrite,
        timeout: route.timeout.map_or(limits.upstream_timeout.0, |t| t.0),
        max_body_bytes: route.max_body_bytes.unwrap_or(limits.max_body_bytes),
        max_requests: route.max_requests,
        preserve_host: route.preserve_host,
        upstream_protocol: route.upstream_protocol,
        upgrades,
        allow_token_cookie: route.allow_token_cookie,
        policy: route_policy(route, credentials, rules),
        upstream_auth: None,
        sends_identity: true,
        sends_forwarded: true,
        identity_assertion: route.identity_assertion,
        forward_client_cert: route.forward_client_cert,
        rate_limits,
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

/// A prefix must be an absolute, already-normal path; stored without its trailing slash.
pub(super) fn clean_prefix(prefix: &str) -> Result<String, String> {
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

//! Turns the raw file into a typed [`Config`], once, reporting errors with their key path.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::Uri;

use super::assertion::validate_assertion;
use super::env::{Env, interpolate};
use super::issuers::validate_issuer;
use super::providers::validate_provider;
use super::raw::RawPolicy;
use super::raw::{RawConfig, RawRoute};
use super::{
    Config, ConfigError, IdentityConfig, Limits, LogConfig, LogFormat, Route, TokensConfig,
    Upstream,
};
use crate::policy::{Credentials, Policy, RoutePolicy};
use tollgate_http::forwarded::TrustedProxies;
use tollgate_http::path::normalize_path;
use tollgate_http::upgrade::{DEFAULT_UPGRADES, FORBIDDEN};

/// Hyper refuses smaller read buffers.
const MIN_HEADER_BYTES: usize = 8192;

/// Parses TOML, interpolates `${VAR}` in every string value and deserializes [`RawConfig`].
pub(super) fn parse_raw(text: &str, file: &str, env: &Env) -> Result<RawConfig, ConfigError> {
    let mut table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Syntax {
        file: file.to_owned(),
        message: e.to_string().trim().to_owned(),
    })?;
    for (key, value) in table.iter_mut() {
        interpolate_value(value, key.clone(), env, file)?;
    }
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| ConfigError::Invalid {
        file: file.to_owned(),
        key: e.path().to_string(),
        reason: e.inner().to_string(),
    })
}

fn interpolate_value(
    value: &mut toml::Value,
    key: String,
    env: &Env,
    file: &str,
) -> Result<(), ConfigError> {
    match value {
        toml::Value::String(s) => {
            *s = interpolate(s, env).map_err(|e| invalid(file, &key, e))?;
        }
        toml::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate_value(item, format!("{key}[{i}]"), env, file)?;
            }
        }
        toml::Value::Table(table) => {
            for (k, v) in table.iter_mut() {
                interpolate_value(v, format!("{key}.{k}"), env, file)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn invalid(file: &str, key: &str, reason: impl std::fmt::Display) -> ConfigError {
    ConfigError::Invalid {
        file: file.to_owned(),
        key: key.to_owned(),
        reason: reason.to_string(),
    }
}

/// Validates a raw config into the typed [`Config`].
pub fn validate(raw: RawConfig, file: &str, env: &Env) -> Result<Config, ConfigError> {
    let listen = raw
        .server
        .listen
        .iter()
        .enumerate()
        .map(|(i, addr)| {
            parse_addr(addr).map_err(|e| invalid(file, &format!("server.listen[{i}]"), e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let tls = super::tls::validate(&raw.server.tls).map_err(|(key, e)| invalid(file, &key, e))?;
    if listen.is_empty() && tls.is_none() {
        return Err(invalid(
            file,
            "server.listen",
            "at least one address is required (here or in server.tls.listen)",
        ));
    }
    let admin_listen = match raw.server.admin_listen.trim() {
        "" => None,
        addr => Some(parse_addr(addr).map_err(|e| invalid(file, "server.admin_listen", e))?),
    };

    let trusted_proxies = raw
        .server
        .trusted_proxies
        .iter()
        .enumerate()
        .map(|(i, net)| {
            parse_network(net)
                .map_err(|e| invalid(file, &format!("server.trusted_proxies[{i}]"), e))
        })
        .collect::<Result<Vec<_>, _>>()?;

    let l = &raw.limits;
    if l.max_header_bytes < MIN_HEADER_BYTES {
        return Err(invalid(
            file,
            "limits.max_header_bytes",
            format!("must be at least {MIN_HEADER_BYTES}"),
        ));
    }
    for (key, value) in [
        ("limits.max_headers", l.max_headers),
        ("limits.max_connections", l.max_connections),
        (
            "server.admin_max_connections",
            raw.server.admin_max_connections,
        ),
        ("limits.upstream_max_requests", l.upstream_max_requests),
        (
            "limits.upstream_max_connections",
            l.upstream_max_connections,
        ),
    ] {
        if value == 0 {
            return Err(invalid(file, key, "must be greater than 0"));
        }
    }
    let limits = Limits {
        max_header_bytes: l.max_header_bytes,
        max_headers: l.max_headers,
        max_uri_bytes: l.max_uri_bytes,
        header_read_timeout: l.header_read_timeout.0,
        body_read_timeout: l.body_read_timeout.0,
        idle_timeout: l.idle_timeout.0,
        max_connection_age: l.max_connection_age.0,
        max_concurrent_streams: l.max_concurrent_streams,
        max_connections_per_ip: l.max_connections_per_ip,
        max_connections: l.max_connections,
        upstream_max_requests: l.upstream_max_requests,
        upstream_max_connections: l.upstream_max_connections,
    };

    let format = match env
        .get("TOLLGATE_LOG_FORMAT")
        .unwrap_or_else(|| raw.log.format.clone())
        .as_str()
    {
        "text" => LogFormat::Text,
        "json" => LogFormat::Json,
        other => {
            return Err(invalid(
                file,
                "log.format",
                format!("expected \"text\" or \"json\", got {other:?}"),
            ));
        }
    };
    let log = LogConfig {
        format,
        level: raw.log.level.clone(),
    };

    let mut issuers = validate_sections(
        &raw.issuers,
        "issuers",
        "issuer",
        |raw| validate_issuer(raw, env),
        |issuer| &issuer.issuer,
        file,
    )?;
    let every_listener: Vec<SocketAddr> = listen
        .iter()
        .chain(tls.iter().flat_map(|t| t.listen.iter()))
        .copied()
        .collect();
    refuse_public_development_secret(&issuers, &every_listener, file)?;
    let identity = validate_identity(&raw, file)?;
    let providers = validate_sections(
        &raw.providers,
        "providers",
        "name",
        |raw| validate_provider(raw, env),
        |provider| &provider.name,
        file,
    )?;
    let signing_issuer =
        match &raw.tokens.issuer {
            Some(name) => Some(issuers.iter().position(|i| &i.issuer == name).ok_or_else(
                || {
                    invalid(
                        file,
                        "tokens.issuer",
                        format!("no [[issuers]] entry has issuer = {name:?}"),
                    )
                },
            )?),
            None => issuers.iter().position(|i| i.can_sign()),
        };
    let single = issuers.len() == 1;
    for (i, issuer) in issuers.iter_mut().enumerate() {
        issuer.service_tokens = raw.issuers[i]
            .service_tokens
            .unwrap_or(single || Some(i) == signing_issuer);
    }
    let tokens = TokensConfig {
        signing_issuer,
        services: raw.tokens.services.clone(),
    };
    let assertion = raw
        .assertion
        .as_ref()
        .map(|a| {
            validate_assertion(a)
                .map_err(|(key, reason)| invalid(file, &format!("assertion.{key}"), reason))
        })
        .transpose()?;

    let mut routes = Vec::with_capacity(raw.routes.len());
    for (i, route) in raw.routes.iter().enumerate() {
        let key = format!("routes[{i}]");
        let mut route = validate_route(route, &raw, &key, file)?;
        route.index = i;
        if let Some(name) = &raw.routes[i].upstream_auth {
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
            if matches!(route.upstream, Upstream::Echo) {
                // The echo answer shows the built upstream request to the caller.
                return Err(invalid(
                    file,
                    &format!("{key}.upstream_auth"),
                    "the echo upstream would show the vendor token to the caller",
                ));
            }
            route.upstream_auth = Some(index);
            // A vendor is a third party: internal identity and addresses only on request.
            route.sends_identity = raw.routes[i].send_identity;
            route.sends_forwarded = raw.routes[i].send_forwarded;
        } else {
            for (set, name) in [
                (raw.routes[i].send_identity, "send_identity"),
                (raw.routes[i].send_forwarded, "send_forwarded"),
            ] {
                if set {
                    return Err(invalid(
                        file,
                        &format!("{key}.{name}"),
                        "only has an effect on an upstream_auth route (other routes always send it)",
                    ));
                }
            }
        }
        if route.identity_assertion {
            let refusal = if assertion.is_none() {
                Some("needs an [assertion] section (the key that signs the assertion)")
            } else if matches!(route.upstream, Upstream::Echo) {
                Some("the echo upstream would show the assertion to the caller")
            } else if !route.sends_identity {
                Some(
                    "an upstream_auth route sends the caller's identity only with send_identity = true",
                )
            } else {
                None
            };
            if let Some(reason) = refusal {
                return Err(invalid(file, &format!("{key}.identity_assertion"), reason));
            }
        }
        if route.policy.policy != Policy::Public && issuers.is_empty() {
            return Err(invalid(
                file,
                &format!("{key}.policy"),
                "a protected route needs at least one [[issuers]] entry (or policy = \"public\")",
            ));
        }
        if routes
            .iter()
            .any(|r: &Arc<Route>| r.prefix == route.prefix && r.host == route.host)
        {
            return Err(invalid(
                file,
                &format!("{key}.prefix"),
                format!("duplicate route for prefix {:?}", route.prefix),
            ));
        }
        if routes.iter().any(|r: &Arc<Route>| r.name == route.name) {
            // Metrics, logs and the audit trail would merge two routes into one.
            return Err(invalid(
                file,
                &format!("{key}.name"),
                format!("duplicate route name {:?}", &*route.name),
            ));
        }
        routes.push(Arc::new(route));
    }

    Ok(Config {
        listen,
        admin_listen,
        tls,
        drain_timeout: raw.server.drain_timeout.0,
        trusted_proxies: TrustedProxies::new(trusted_proxies),
        admin_limits: super::AdminLimits {
            max_connections: raw.server.admin_max_connections,
            connection_timeout: raw.server.admin_connection_timeout.0,
        },
        limits,
        log,
        issuers,
        identity,
        providers,
        tokens,
        routes,
        state: validate_state(&raw.state, file)?,
        console: validate_console(&raw.admin, admin_listen, file)?,
        usage_flush_interval: positive(
            file,
            "state.usage_flush_interval",
            raw.state.usage_flush_interval.0,
        )?,
        assertion,
    })
}

fn validate_console(
    raw: &super::raw::RawAdmin,
    admin_listen: Option<SocketAddr>,
    file: &str,
) -> Result<super::ConsoleConfig, ConfigError> {
    if raw.recent_refusals > crate::MAX_RECENT_REFUSALS {
        return Err(invalid(
            file,
            "admin.recent_refusals",
            format!("at most {}", crate::MAX_RECENT_REFUSALS),
        ));
    }
    let token = raw
        .token
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    if let Some(token) = token
        && token.len() < 16
    {
        return Err(invalid(
            file,
            "admin.token",
            "at least 16 characters (e.g. `openssl rand -base64 24`)",
        ));
    }
    if raw.console && admin_listen.is_none() {
        return Err(invalid(
            file,
            "admin.console",
            "the console is served on the admin listener, and server.admin_listen is off",
        ));
    }
    if raw.console && token.is_none() && admin_listen.is_some_and(|a| !a.ip().is_loopback()) {
        return Err(invalid(
            file,
            "admin.token",
            "required when the console is on and server.admin_listen is not loopback",
        ));
    }
    Ok(super::ConsoleConfig {
        enabled: raw.console,
        token: token.map(|t| super::Secret::new(t.as_bytes().to_vec())),
        recent_refusals: if raw.console { raw.recent_refusals } else { 0 },
    })
}

/// `value`, refused when zero (an interval of nothing would spin).
fn positive(file: &str, key: &str, value: Duration) -> Result<Duration, ConfigError> {
    if value.is_zero() {
        return Err(invalid(file, key, "must be more than 0s"));
    }
    Ok(value)
}

/// Whether a `redis://` URL's host is this machine: `localhost` or a loopback address.
fn is_loopback_redis(url: &http::Uri) -> bool {
    let host = url.host().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Parses `redis://host[:port][/db]` (or `rediss://`) the way the Redis client will: a host is
/// required and the path, if any, is a database number.
fn parse_redis_url(url: &str) -> Result<http::Uri, String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("not a redis:// URL ({e}): {url:?}"))?;
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("no host in {url:?}"));
    }
    if uri.query().is_some() {
        return Err(format!("a query is not supported in {url:?}"));
    }
    let db = uri.path().trim_start_matches('/');
    if !db.is_empty() && db.parse::<u16>().is_err() {
        return Err(format!("the path must be a database number, got {db:?}"));
    }
    Ok(uri)
}

/// The shared vendor token's encryption key: 32 bytes, base64, inline or in a file.
fn state_encryption_key(
    raw: &super::raw::RawState,
    file: &str,
) -> Result<Option<super::Secret>, ConfigError> {
    use base64::Engine;
    let (key, text) = match (&raw.encryption_key, &raw.encryption_key_file) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                file,
                "state.encryption_key",
                "set encryption_key or encryption_key_file, not both",
            ));
        }
        (Some(text), None) => ("state.encryption_key", text.clone()),
        (None, Some(path)) => (
            "state.encryption_key_file",
            std::fs::read_to_string(path)
                .map_err(|e| invalid(file, "state.encryption_key_file", format!("{path}: {e}")))?,
        ),
        (None, None) => return Ok(None),
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()
        .filter(|b| b.len() == 32)
        .ok_or_else(|| {
            invalid(
                file,
                key,
                "need 32 random bytes in base64 (e.g. `openssl rand -base64 32`)",
            )
        })?;
    Ok(Some(super::Secret::new(bytes)))
}

fn validate_state(
    raw: &super::raw::RawState,
    file: &str,
) -> Result<super::StateConfig, ConfigError> {
    match raw.backend.as_str() {
        "file" => {
            if raw.url.is_some() || raw.password.is_some() {
                return Err(invalid(
                    file,
                    "state.url",
                    "url and password are for backend = \"redis\"",
                ));
            }
            if raw.path.trim().is_empty() {
                return Err(invalid(file, "state.path", "must not be empty"));
            }
            Ok(super::StateConfig::File {
                path: raw.path.clone().into(),
            })
        }
        "redis" => {
            let url = raw
                .url
                .as_deref()
                .filter(|u| !u.trim().is_empty())
                .ok_or_else(|| invalid(file, "state.url", "required for backend = \"redis\""))?;
            if super::has_userinfo(url) {
                return Err(invalid(
                    file,
                    "state.url",
                    "credentials in the URL are refused (they would be printed); use state.password",
                ));
            }
            let tls = url.starts_with("rediss://");
            if !tls && !url.starts_with("redis://") {
                return Err(invalid(
                    file,
                    "state.url",
                    format!("need redis://host:port/db or rediss://, got {url:?}"),
                ));
            }
            let parsed = parse_redis_url(url).map_err(|e| invalid(file, "state.url", e))?;
            if !tls && !raw.allow_plaintext && !is_loopback_redis(&parsed) {
                return Err(invalid(
                    file,
                    "state.url",
                    "plain redis:// to a host that is not loopback sends the password, the \
                     revocation list and the shared vendor token readable and forgeable on the \
                     network; use rediss:// (with ca_file for a private CA), or set \
                     state.allow_plaintext = true",
                ));
            }
            let ca_pem = match raw.ca_file.as_deref() {
                Some(_) if !tls => {
                    return Err(invalid(file, "state.ca_file", "is for rediss:// URLs"));
                }
                Some(path) => {
                    super::outbound::TrustRoots::load(Some(path))
                        .map_err(|e| invalid(file, "state.ca_file", e))?;
                    Some(
                        std::fs::read_to_string(path)
                            .map_err(|e| invalid(file, "state.ca_file", format!("{path}: {e}")))?,
                    )
                }
                None => None,
            };
            let encryption_key = state_encryption_key(raw, file)?;
            Ok(super::StateConfig::Redis {
                url: url.to_owned(),
                password: raw
                    .password
                    .as_ref()
                    .map(|p| super::Secret::new(p.as_bytes().to_vec())),
                ca_pem,
                encryption_key,
                key_prefix: raw.key_prefix.clone(),
            })
        }
        other => Err(invalid(
            file,
            "state.backend",
            format!("expected \"file\" or \"redis\", got {other:?}"),
        )),
    }
}

fn validate_identity(raw: &RawConfig, file: &str) -> Result<IdentityConfig, ConfigError> {
    let mut claim_headers = Vec::new();
    for (claim, header) in &raw.identity.claim_headers {
        let key = format!("identity.claim_headers.{claim}");
        let name = http::HeaderName::from_bytes(header.trim().as_bytes())
            .map_err(|_| invalid(file, &key, format!("invalid header name {header:?}")))?;
        let path: Vec<String> = claim.split('.').map(str::to_owned).collect();
        if path.iter().any(String::is_empty) {
            return Err(invalid(file, &key, "claim path has an empty segment"));
        }
        // Headers with framing or routing meaning can never carry a claim.
        const RESERVED: [&str; 6] = [
            "authorization",
            "connection",
            "content-length",
            "cookie",
            "host",
            "transfer-encoding",
        ];
        if RESERVED.contains(&name.as_str())
            || tollgate_http::identity::is_assertion_header(name.as_str())
        {
            return Err(invalid(
                file,
                &key,
                format!("{header:?} cannot carry a claim"),
            ));
        }
        claim_headers.push((path, name));
    }
    Ok(IdentityConfig {
        claim_headers,
        token_cache_size: raw.identity.token_cache_size,
    })
}

/// Validates each `[[section]]` entry, naming errors `section[i].key`, and refuses two entries
/// with the same `unique` value.
fn validate_sections<R, T>(
    raws: &[R],
    section: &str,
    unique: &str,
    validate: impl Fn(&R) -> Result<T, (String, String)>,
    key_of: impl Fn(&T) -> &String,
    file: &str,
) -> Result<Vec<T>, ConfigError> {
    let mut valid: Vec<T> = Vec::with_capacity(raws.len());
    for (i, raw) in raws.iter().enumerate() {
        let item = validate(raw)
            .map_err(|(key, reason)| invalid(file, &format!("{section}[{i}].{key}"), reason))?;
        if valid.iter().any(|other| key_of(other) == key_of(&item)) {
            return Err(invalid(
                file,
                &format!("{section}[{i}].{unique}"),
                format!("duplicate {unique} {:?}", key_of(&item)),
            ));
        }
        valid.push(item);
    }
    Ok(valid)
}

/// The built-in development secret is printed in the README: anyone can sign tokens with it.
/// It is accepted only while every data listener is on a loopback address (a laptop); on any
/// other address (a container's `0.0.0.0`) the config is refused, by `serve` and `check` alike.
fn refuse_public_development_secret(
    issuers: &[super::IssuerConfig],
    listen: &[SocketAddr],
    file: &str,
) -> Result<(), ConfigError> {
    let Some(i) = issuers.iter().position(|i| i.uses_development_secret()) else {
        return Ok(());
    };
    match listen
        .iter()
        .enumerate()
        .find(|(_, a)| !a.ip().is_loopback())
    {
        Some((j, addr)) => Err(invalid(
            file,
            &format!("issuers[{i}].secret"),
            format!(
                "the built-in development secret is public and only allowed on loopback \
                 listeners, but server.listen[{j}] is {addr}: set TOLLGATE_JWT_SECRET \
                 (at least 32 random bytes, e.g. `tollgate keys generate --alg HS256`) \
                 or this issuer's secret_file"
            ),
        )),
        None => Ok(()),
    }
}

/// A CIDR network (`10.0.0.0/8`, `fd00::/8`) or a single address.
fn parse_network(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map(|net| net.trunc())
        .map_err(|_| format!("{text:?} is not an IP network (a.b.c.d/n) or address"))
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

fn parse_addr(addr: &str) -> Result<SocketAddr, String> {
    addr.trim()
        .parse()
        .map_err(|e| format!("invalid socket address {addr:?}: {e}"))
}

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
    let upstream_tls = match &route.upstream_tls {
        None => None,
        Some(raw_tls) => {
            let uri: http::Uri = route.upstream.parse().unwrap_or_default();
            Some(Arc::new(super::UpstreamTls::load(raw_tls, &uri).map_err(
                |(suffix, e)| invalid(file, &format!("{key}.upstream_tls{suffix}"), e),
            )?))
        }
    };
    let rewrite = match (&route.rewrite, route.strip_prefix) {
        (Some(_), true) => {
            return Err(invalid(
                file,
                &format!("{key}.rewrite"),
                "use either strip_prefix or rewrite, not both",
            ));
        }
        (Some(r), false) => {
            Some(clean_prefix(r).map_err(|e| invalid(file, &format!("{key}.rewrite"), e))?)
        }
        (None, true) => Some(String::new()),
        (None, false) => None,
    };
    // Settings the policy would silently ignore are refused: a public route lets everyone in.
    if route.policy == RawPolicy::Public {
        for (name, set) in [
            ("roles", !route.roles.is_empty()),
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
    }
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
    if credentials != Credentials::Token {
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
    }
    if !route.services.is_empty() && route.policy != RawPolicy::Service {
        return Err(invalid(
            file,
            &format!("{key}.services"),
            "services applies to policy = \"service\" only",
        ));
    }
    // Canonicalised like request hosts, so `Admin.Example.com.` in the file still matches.
    let host = match route.host.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(h) => Some(
            tollgate_http::host::canonical(h, None)
                .map_err(|e| invalid(file, &format!("{key}.host"), e))?
                .name()
                .to_owned(),
        ),
    };
    let upgrades = parse_upgrades(route, key, file)?;
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
    Ok(Route {
        index: 0,
        // Default: the prefix, after the host on host-specific routes, so that `/` for one host
        // and `/` for any host are two names.
        name: match (&route.name, &host) {
            (Some(name), _) => name.as_str().into(),
            (None, host) => format!(
                "{}{}",
                host.as_deref().unwrap_or_default(),
                if prefix.is_empty() { "/" } else { &prefix }
            )
            .into(),
        },
        prefix,
        host,
        upstream,
        upstream_tls,
        rewrite,
        timeout: route.timeout.map_or(raw.limits.upstream_timeout.0, |t| t.0),
        max_body_bytes: route.max_body_bytes.unwrap_or(raw.limits.max_body_bytes),
        max_requests: match route.max_requests {
            Some(0) => {
                return Err(invalid(
                    file,
                    &format!("{key}.max_requests"),
                    "must be greater than 0",
                ));
            }
            other => other,
        },
        preserve_host: route.preserve_host,
        upgrades,
        allow_token_cookie: route.allow_token_cookie,
        policy: RoutePolicy {
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
        },
        upstream_auth: None,
        sends_identity: true,
        sends_forwarded: true,
        identity_assertion: route.identity_assertion,
    })
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

fn parse_upstream(url: &str) -> Result<Upstream, String> {
    if url == "echo" {
        return Ok(Upstream::Echo);
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
            format!("invalid URL {url:?}: scheme must be http or https (or use \"echo\")")
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

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(
            text,
            "t.toml",
            &Env::from_map([("UP", "http://127.0.0.1:9")]),
        )
    }

    #[test]
    fn a_shared_store_off_this_machine_must_be_encrypted_or_say_it_need_not() {
        let state = |extra: &str| load(&format!("[state]\nbackend = \"redis\"\n{extra}"));
        let error = |extra: &str| state(extra).unwrap_err().to_string();
        assert!(
            error("url = \"redis://redis.internal:6379/0\"")
                .contains("t.toml: state.url: plain redis:// to a host that is not loopback")
        );
        for fine in [
            "url = \"redis://127.0.0.1:6379/0\"",
            "url = \"redis://localhost/0\"",
            "url = \"redis://redis.internal:6379/0\"\nallow_plaintext = true",
            "url = \"rediss://redis.internal:6380/0\"",
        ] {
            assert!(state(fine).is_ok(), "{fine}");
        }
        assert!(
            error("url = \"redis://127.0.0.1/0\"\nca_file = \"ca.pem\"")
                .contains("t.toml: state.ca_file: is for rediss:// URLs")
        );
        assert!(
            error("url = \"rediss://r:6380/0\"\nca_file = \"/nonexistent/ca.pem\"")
                .contains("t.toml: state.ca_file: cannot read \"/nonexistent/ca.pem\"")
        );
        assert!(
            error("url = \"redis://127.0.0.1/0\"\nencryption_key = \"c2hvcnQ=\"")
                .contains("t.toml: state.encryption_key: need 32 random bytes in base64")
        );
        let key = "url = \"redis://127.0.0.1/0\"\nencryption_key = \"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"";
        let Ok(Config {
            state: super::super::StateConfig::Redis { encryption_key, .. },
            ..
        }) = state(key)
        else {
            panic!("a 32-byte key loads");
        };
        assert_eq!(encryption_key.unwrap().expose().len(), 32);
        assert!(!format!("{:?}", state(key).unwrap().state).contains("AAECAwQF"));
    }

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

    #[test]
    fn defaults_apply() {
        let c = load(
            "[[routes]]\nprefix = \"/api/\"\nupstream = \"${UP}/base/\"\npolicy = \"public\"\n",
        )
        .unwrap();
        assert_eq!(c.listen, vec!["127.0.0.1:8080".parse().unwrap()]);
        assert_eq!(c.admin_listen, Some("127.0.0.1:9901".parse().unwrap()));
        let r = &c.routes[0];
        assert_eq!(r.prefix, "/api");
        assert_eq!(&*r.name, "/api");
        assert!(matches!(&r.upstream, Upstream::Http { base_path, .. } if base_path == "/base"));
        assert_eq!(r.max_body_bytes, 10 * 1024 * 1024);
    }

    #[test]
    fn errors_name_the_key() {
        let text = "[[routes]]\nprefix = \"/a\"\nupstream = \"echo\"\npolicy = \"public\"\n[[routes]]\nprefix = \"/b\"\nupstream = \"htp:/x\"\npolicy = \"public\"\n";
        let err = load(text).unwrap_err().to_string();
        assert!(
            err.starts_with("t.toml: routes[1].upstream: invalid URL \"htp:/x\""),
            "{err}"
        );
        let err = load("[server]\nlisen = []\n").unwrap_err().to_string();
        assert!(
            err.contains("server") && err.contains("unknown field `lisen`"),
            "{err}"
        );
        let err = load("[limits]\nheader_read_timeout = \"ten\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("limits.header_read_timeout"), "{err}");
        // A duration so long that "now + it" would overflow the clock (and panic) is refused.
        let err = load("[limits]\nbody_read_timeout = \"500000000years\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("limits.body_read_timeout") && err.contains("longer than 100 years"),
            "{err}"
        );
        let err =
            load("[[routes]]\nprefix = \"/a\"\nupstream = \"${MISSING}\"\npolicy = \"public\"\n")
                .unwrap_err()
                .to_string();
        assert_eq!(
            err,
            "t.toml: routes[0].upstream: environment variable MISSING is not set"
        );
        let err =
            load("[[routes]]\nprefix = \"/a/../b\"\nupstream = \"echo\"\npolicy = \"public\"\n")
                .unwrap_err()
                .to_string();
        assert!(err.contains("routes[0].prefix"), "{err}");
    }

    #[test]
    fn request_integrity_keys_are_checked_with_their_key_path() {
        let route = |extra: &str| {
            format!(
                "[[routes]]\nprefix = \"/a\"\nupstream = \"${{UP}}\"\npolicy = \"public\"\n{extra}\n"
            )
        };
        let cases = [
            (
                route("upgrades = [\"websocket\", \"H2C\"]"),
                "t.toml: routes[0].upgrades[1]: h2c is never forwarded",
            ),
            (
                route("upgrades = [\"web socket\"]"),
                "t.toml: routes[0].upgrades[0]: \"web socket\" is not a protocol name",
            ),
            (
                route("host = \"x@admin.example.com\""),
                "t.toml: routes[0].host: userinfo in host",
            ),
            (
                "[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"10.0.0.0/33\"]\n".to_owned(),
                "t.toml: server.trusted_proxies[1]: \"10.0.0.0/33\" is not an IP network",
            ),
            (
                "[[providers]]\nname = \"v\"\nkind = \"login\"\nauth_url = \"http://127.0.0.1:9\"\nemail = \"a@b.c\"\npassword = \"p\"\n[[routes]]\nprefix = \"/a\"\nupstream = \"echo\"\npolicy = \"public\"\nupstream_auth = \"v\"\n".to_owned(),
                "t.toml: routes[0].upstream_auth: the echo upstream would show the vendor token",
            ),
        ];
        for (text, want) in cases {
            let err = load(&text).unwrap_err().to_string();
            assert!(err.starts_with(want), "{err}");
        }
        let c = load(&format!(
            "[server]\ntrusted_proxies = [\"10.1.2.3/8\", \"192.0.2.1\"]\n{}",
            route("host = \"Admin.Example.COM.\"")
        ))
        .unwrap();
        assert_eq!(c.routes[0].host.as_deref(), Some("admin.example.com"));
        assert_eq!(c.routes[0].upgrades, ["websocket"]);
        assert!(c.trusted_proxies.contains("10.200.0.1".parse().unwrap()));
        assert!(c.trusted_proxies.contains("192.0.2.1".parse().unwrap()));
        assert!(!c.trusted_proxies.contains("192.0.2.2".parse().unwrap()));
    }

    #[test]
    fn settings_that_would_do_nothing_or_leak_are_refused() {
        let route = |extra: &str| {
            format!(
                "[[routes]]\nprefix = \"/a\"\nupstream = \"${{UP}}\"\npolicy = \"public\"\n{extra}\n"
            )
        };
        let cases = [
            (route("roles = [\"admin\"]"), "t.toml: routes[0].roles: has no effect on a public route"),
            (route("allow_cors_preflight = true"), "t.toml: routes[0].allow_cors_preflight: has no effect"),
            (
                format!("{}[[routes]]\nname = \"/a\"\nprefix = \"/b\"\nupstream = \"echo\"\npolicy = \"public\"\n", route("")),
                "t.toml: routes[1].name: duplicate route name \"/a\"",
            ),
            (
                "[[routes]]\nprefix = \"/a\"\nupstream = \"http://user:hunter2@up.internal\"\npolicy = \"public\"\n".to_owned(),
                "t.toml: routes[0].upstream: credentials in the URL",
            ),
            (
                "[[issuers]]\nissuer = \"i\"\nalgorithms = [\"RS256\"]\njwks_url = \"https://u:hunter2@idp.example/jwks\"\n".to_owned(),
                "t.toml: issuers[0].jwks_url: credentials in the URL",
            ),
            (
                "[[providers]]\nname = \"v\"\nkind = \"login\"\nauth_url = \"https://u:hunter2@auth.example/login\"\nemail = \"a@b.c\"\npassword = \"p\"\n".to_owned(),
                "t.toml: providers[0].auth_url: credentials in the URL",
            ),
        ];
        for (text, want) in cases {
            let err = load(&text).unwrap_err().to_string();
            assert!(err.starts_with(want), "{err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn duplicate_prefixes_are_refused() {
        let text = "[[routes]]\nprefix = \"/a\"\nupstream = \"echo\"\npolicy = \"public\"\n[[routes]]\nprefix = \"/a/\"\nupstream = \"echo\"\npolicy = \"public\"\n";
        assert!(
            load(text)
                .unwrap_err()
                .to_string()
                .contains("duplicate route")
        );
    }
}

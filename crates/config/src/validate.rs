//! Turns the raw file into a typed [`Config`], once, reporting errors with their key path.
//!
//! Each section's own checks live with the section; this module runs them in order and does
//! what spans sections.

use std::net::SocketAddr;
use std::sync::Arc;

use super::admin::validate_console;
use super::assertion::validate_assertion;
use super::env::{Env, interpolate};
use super::error::positive;
use super::identity::validate_identity;
use super::issuers::validate_issuer;
use super::limits::validate_limits;
use super::listeners::{
    admin_limits, validate_admin_listen, validate_listeners, validate_trusted_proxies,
};
use super::log::validate_log;
use super::providers::validate_provider;
use super::raw::RawConfig;
use super::routes::{RouteContext, validate_routes};
use super::signer::AssertionSigner;
use super::state::validate_state;
use super::telemetry::validate_telemetry;
use super::tls::TlsConfig;
use super::tokens::validate_tokens;
use super::{Config, ConfigError, Invalid, IssuerConfig, ProviderConfig, Route, invalid};
use tollgate_http::forwarded::TrustedProxies;

/// Parses TOML, interpolates `${VAR}` in every string value and deserializes [`RawConfig`].
pub(super) fn parse_raw(text: &str, file: &str, env: &Env) -> Result<RawConfig, ConfigError> {
    raw_from_table(super::error::parse_table(text, file)?, file, env)
}

/// Interpolates `${VAR}` in every string value of `table` and deserializes [`RawConfig`].
pub(super) fn raw_from_table(
    mut table: toml::Table,
    file: &str,
    env: &Env,
) -> Result<RawConfig, ConfigError> {
    for (key, value) in table.iter_mut() {
        interpolate_value(value, key.clone(), env, file)?;
    }
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| ConfigError::Invalid {
        file: file.to_owned(),
        key: e.path().to_string(),
        reason: e.inner().to_string(),
    })
}

/// Interpolates `${VAR}` in `value` and every string under it; `key` is its path, for errors.
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

/// Validates a raw config into the typed [`Config`]. Sections are checked one after the other,
/// each after those it refers to; this order decides which error is reported first.
pub fn validate(raw: RawConfig, file: &str, env: &Env) -> Result<Config, ConfigError> {
    let (listen, tls) = validate_listeners(&raw.server, file)?;
    let admin_listen = validate_admin_listen(&raw.server, file)?;
    let trusted_proxies = validate_trusted_proxies(&raw.server, file)?;
    let limits = validate_limits(&raw.limits, raw.server.admin_max_connections, file)?;
    let log = validate_log(&raw.log, env, file)?;
    let mut issuers = validate_issuers(&raw, env, file)?;
    refuse_public_development_secret(&issuers, &every_listener(&listen, tls.as_ref()), file)?;
    let mut identity = validate_identity(&raw.identity, file)?;
    let providers = validate_providers(&raw, env, file)?;
    let tokens = validate_tokens(&raw.tokens, &raw.issuers, &mut issuers, file)?;
    let assertion = validate_assertion_section(&raw, file)?;
    let context = RouteContext {
        limits: &raw.limits,
        tls: &raw.server.tls,
        issuers: &issuers,
        providers: &providers,
        has_assertion: assertion.is_some(),
    };
    let routes = validate_routes(&raw.routes, &context, file)?;
    identity.rule_claims = rule_claims(&routes);
    Ok(Config {
        listen,
        admin_listen,
        tls,
        drain_timeout: raw.server.drain_timeout.0,
        trusted_proxies: TrustedProxies::new(trusted_proxies),
        admin_limits: admin_limits(&raw.server),
        limits,
        log,
        issuers,
        identity,
        providers,
        tokens,
        routes,
        // Field order is check order: state, then the console, then the flush interval.
        state: validate_state(&raw.state, file)?,
        console: validate_console(&raw.admin, admin_listen, file)?,
        usage_flush_interval: positive(
            file,
            "state.usage_flush_interval",
            raw.state.usage_flush_interval.0,
        )?,
        assertion,
        telemetry: validate_telemetry(&raw.telemetry, file)?,
    })
}

/// Every data listener, plain and TLS.
fn every_listener(listen: &[SocketAddr], tls: Option<&TlsConfig>) -> Vec<SocketAddr> {
    listen
        .iter()
        .chain(tls.iter().flat_map(|t| t.listen.iter()))
        .copied()
        .collect()
}

/// Checks each `[[issuers]]` entry; two entries may not share an `issuer`.
fn validate_issuers(
    raw: &RawConfig,
    env: &Env,
    file: &str,
) -> Result<Vec<IssuerConfig>, ConfigError> {
    validate_sections(
        &raw.issuers,
        "issuers",
        "issuer",
        |raw| validate_issuer(raw, env),
        |issuer| &issuer.issuer,
        file,
    )
}

/// Checks each `[[providers]]` entry; two entries may not share a `name`.
fn validate_providers(
    raw: &RawConfig,
    env: &Env,
    file: &str,
) -> Result<Vec<ProviderConfig>, ConfigError> {
    validate_sections(
        &raw.providers,
        "providers",
        "name",
        |raw| validate_provider(raw, env),
        |provider| &provider.name,
        file,
    )
}

/// Checks and loads `[assertion]`, when present.
fn validate_assertion_section(
    raw: &RawConfig,
    file: &str,
) -> Result<Option<Arc<AssertionSigner>>, ConfigError> {
    raw.assertion
        .as_ref()
        .map(|a| validate_assertion(a).map_err(|e| e.under("assertion").in_file(file)))
        .transpose()
}

/// Every claim some route's `claims` rule names, once: the verifier reads these into each
/// identity.
fn rule_claims(routes: &[Arc<Route>]) -> Vec<(String, Vec<String>)> {
    let mut all: Vec<(String, Vec<String>)> = Vec::new();
    for rule in routes.iter().flat_map(|r| &r.policy.claims) {
        if !all.iter().any(|(key, _)| *key == rule.key) {
            all.push((rule.key.clone(), rule.path.clone()));
        }
    }
    all
}

/// Validates each `[[section]]` entry, naming errors `section[i].key`, and refuses two entries
/// with the same `unique` value.
fn validate_sections<R, T>(
    raws: &[R],
    section: &str,
    unique: &str,
    validate: impl Fn(&R) -> Result<T, Invalid>,
    key_of: impl Fn(&T) -> &String,
    file: &str,
) -> Result<Vec<T>, ConfigError> {
    let mut valid: Vec<T> = Vec::with_capacity(raws.len());
    for (i, raw) in raws.iter().enumerate() {
        let item = validate(raw).map_err(|e| e.under(&format!("{section}[{i}]")).in_file(file))?;
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
    issuers: &[IssuerConfig],
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Upstream;

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(
            text,
            "t.toml",
            &Env::from_map([("UP", "http://127.0.0.1:9")]),
        )
    }

    #[test]
    fn no_secret_of_the_file_shows_in_debug() {
        let secrets = [
            "admin-token-secret-1",
            "redis-password-secret-2",
            "c3RhdGUta2V5LXNlY3JldC0z",
            "introspection-secret-4",
            "issuer-secret-5-at-least-32-bytes-long",
            "rotated-secret-6-at-least-32-bytes-long",
            "vendor-password-secret-7",
            "client-secret-8",
        ];
        let text = format!(
            "[admin]\ntoken = \"{}\"\n[state]\npassword = \"{}\"\nencryption_key = \"{}\"\n\
             [[issuers]]\nissuer = \"a\"\nintrospection_client_secret = \"{}\"\nsecret = \"{}\"\n\
             [[issuers.secrets]]\nkid = \"k\"\nsecret = \"{}\"\n\
             [[providers]]\nname = \"v\"\nkind = \"login\"\npassword = \"{}\"\n\
             [[providers]]\nname = \"o\"\nkind = \"client_credentials\"\nclient_secret = \"{}\"\n",
            secrets[0],
            secrets[1],
            secrets[2],
            secrets[3],
            secrets[4],
            secrets[5],
            secrets[6],
            secrets[7],
        );
        let raw = parse_raw(&text, "t.toml", &Env::from_map([("UNUSED", "")])).unwrap();
        let debug = format!("{raw:?}");
        assert!(debug.contains("<redacted>"), "{debug}");
        for secret in secrets {
            assert!(!debug.contains(secret), "{secret} in {debug}");
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
                "t.toml: routes[0].upstream_auth: needs an upstream URL (echo would show the vendor token",
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

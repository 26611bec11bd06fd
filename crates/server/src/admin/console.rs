//! The admin console: a read-only page on the admin listener (`/console`, off unless
//! `[admin] console = true`) showing routes, issuers and keys, upstream credential providers,
//! service tokens in use, live traffic and the last refusals, with a form that runs
//! `tollgate explain`. Plain HTML, CSS and JavaScript embedded in the binary: no CDN, no build
//! step, no framework (the page is a few tables that refresh; a framework would outweigh it).
//!
//! With `[admin] token` set, every console request needs it (HTTP Basic, any user name: the
//! browser asks once and sends it with each fetch). Responses are `no-store` and carry a
//! strict Content-Security-Policy; the explain form's POST needs a custom header, which a
//! cross-site form cannot send.

use std::time::SystemTime;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};

use super::endpoints::AdminState;
use crate::gateway::Gateway;
use crate::outbound::body::{ResponseBody, full};
use tollgate_config::Config;
use tollgate_core::credentials::ProviderState;

const INDEX: &str = include_str!("console/index.html");
const SCRIPT: &str = include_str!("console/app.js");
const STYLE: &str = include_str!("console/style.css");

/// The largest explain form accepted.
const MAX_FORM_BYTES: usize = 64 * 1024;

fn respond_with(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<ResponseBody> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    response
}

fn error(status: StatusCode, message: &str) -> Response<ResponseBody> {
    respond_with(
        status,
        "application/json",
        json!({ "error": message }).to_string(),
    )
}

/// Whether `request` carries the admin credential (always, when none is configured).
fn authorized<B>(config: &Config, request: &Request<B>) -> bool {
    use base64::Engine;
    let Some(token) = &config.console.token else {
        return true;
    };
    let presented = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|pair| {
            let colon = pair.iter().position(|b| *b == b':')?;
            Some(pair[colon + 1..].to_vec())
        });
    presented.is_some_and(|p| constant_time_eq(&p, token.expose()))
}

/// Compares without returning early, so the time taken says nothing about the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, byte) in b.iter().enumerate() {
        diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ byte);
    }
    diff == 0
}

/// Whether the request names the console by an address or a name it answers to: an IP
/// literal, `localhost`, or one of `[admin] hosts`, in `Host` (or the HTTP/2 authority) and in
/// `Origin` when present. A page of another site that rebinds its own name to this address
/// sends that name, so it is refused whether or not a credential is configured.
fn host_allowed(headers: &http::HeaderMap, uri: &http::Uri, names: &[String]) -> bool {
    let allowed = |host: &str| {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        host.parse::<std::net::IpAddr>().is_ok() || host == "localhost" || names.contains(&host)
    };
    let host = match headers.get(http::header::HOST) {
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.parse::<http::uri::Authority>().ok()),
        None => uri.authority().cloned(),
    };
    let Some(host) = host else {
        return false;
    };
    if !allowed(host.host().trim_start_matches('[').trim_end_matches(']')) {
        return false;
    }
    match headers.get(http::header::ORIGIN) {
        None => true,
        Some(origin) => origin
            .to_str()
            .ok()
            .and_then(|o| o.parse::<http::Uri>().ok())
            .and_then(|o| {
                o.host()
                    .map(|h| allowed(h.trim_start_matches('[').trim_end_matches(']')))
            })
            .unwrap_or(false),
    }
}

/// Whether `request` is for the console.
pub fn is_console(path: &str) -> bool {
    path == "/console" || path.starts_with("/console/")
}

/// Answers a console request.
pub async fn respond<B>(state: &AdminState, request: Request<B>) -> Response<ResponseBody>
where
    B: http_body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let Some(gateway) = state.gateway() else {
        return error(StatusCode::NOT_FOUND, "not found");
    };
    let config = gateway.config().clone();
    if !config.console.enabled {
        return error(StatusCode::NOT_FOUND, "not found");
    }
    if !host_allowed(request.headers(), request.uri(), &config.console.hosts) {
        return error(StatusCode::FORBIDDEN, "host not allowed");
    }
    if !authorized(&config, &request) {
        let mut response = error(StatusCode::UNAUTHORIZED, "admin credential required");
        response.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Basic realm="tollgate console", charset="UTF-8""#),
        );
        return response;
    }
    match (request.method(), request.uri().path()) {
        (&Method::GET, "/console" | "/console/") => {
            respond_with(StatusCode::OK, "text/html; charset=utf-8", INDEX)
        }
        (&Method::GET, "/console/app.js") => {
            respond_with(StatusCode::OK, "text/javascript; charset=utf-8", SCRIPT)
        }
        (&Method::GET, "/console/style.css") => {
            respond_with(StatusCode::OK, "text/css; charset=utf-8", STYLE)
        }
        (&Method::GET, "/console/api/overview") => respond_with(
            StatusCode::OK,
            "application/json",
            overview(&gateway, &config).await.to_string(),
        ),
        (&Method::POST, "/console/api/explain") => explain(&config, request).await,
        _ => error(StatusCode::NOT_FOUND, "not found"),
    }
}

async fn explain<B>(config: &Config, request: Request<B>) -> Response<ResponseBody>
where
    B: http_body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    // A cross-site form cannot set this header: the form's POST comes from the page itself.
    if request.headers().get("x-tollgate-console").is_none() {
        return error(StatusCode::FORBIDDEN, "missing x-tollgate-console header");
    }
    let limited = http_body_util::Limited::new(request.into_body(), MAX_FORM_BYTES);
    let Ok(body) = limited.collect().await else {
        return error(StatusCode::PAYLOAD_TOO_LARGE, "form too large");
    };
    let Ok(form) = serde_json::from_slice::<Value>(&body.to_bytes()) else {
        return error(StatusCode::BAD_REQUEST, "expected a JSON form");
    };
    let text = |key: &str| form[key].as_str().unwrap_or_default().trim().to_owned();
    let mut headers: Vec<String> = text("headers")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    let token = text("token");
    if !token.is_empty() {
        headers.push(format!("Authorization: Bearer {token}"));
    }
    let method = match text("method") {
        m if m.is_empty() => "GET".to_owned(),
        m => m,
    };
    let peer = text("peer")
        .parse()
        .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
    match crate::explain::explain(config, &method, &text("target"), &headers, peer, None).await {
        Ok(explanation) => respond_with(
            StatusCode::OK,
            "application/json",
            serde_json::to_string(&explanation).unwrap_or_default(),
        ),
        Err(e) => error(StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

fn unix(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Everything the console's panels show except live traffic (read from `/metrics`).
async fn overview(gateway: &Gateway, config: &Config) -> Value {
    let now = tollgate_state::clock::now();
    let routes = routes(config);
    let issuers = issuers(gateway, config);
    let providers = providers(gateway);
    // The store may be Redis: a console that cannot read it says so instead of failing.
    let (service_tokens, usage_error) = match service_tokens(config, now).await {
        Ok(rows) => (rows, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    json!({
        "now": now,
        "routes": routes,
        "issuers": issuers,
        "providers": providers,
        "service_tokens": service_tokens,
        "service_tokens_error": usage_error,
        "expiring_soon_secs": tollgate_state::usage::report::EXPIRING_SOON_SECS,
        "refusals": gateway.refusals().newest_first(),
        "limited": gateway.limited().top(20),
    })
}

/// The routes panel: each route as configured, in config order.
fn routes(config: &Config) -> Vec<Value> {
    config
        .routes
        .iter()
        .map(|r| {
            json!({
                "name": &*r.name,
                "prefix": if r.prefix.is_empty() { "/" } else { &r.prefix },
                "host": r.host,
                "policy": r.policy.policy.as_str(),
                "services": r.policy.services,
                "roles": r.policy.roles,
                "credentials": r.policy.credentials.as_str(),
                "upstream": r.upstream.to_string(),
                "vendor_credential": r.upstream_auth.and_then(|i| config.providers.get(i)).map(|p| p.name.clone()),
            })
        })
        .collect()
}

/// The issuers panel: each issuer with the keys it verifies with now and its last JWKS fetch.
fn issuers(gateway: &Gateway, config: &Config) -> Vec<Value> {
    let metrics = gateway.metrics();
    gateway
        .verifier()
        .key_summaries()
        .into_iter()
        .zip(&config.issuers)
        .map(|(summary, issuer)| {
            json!({
                "name": summary.issuer,
                "iss": issuer.issuer,
                "algorithms": issuer.algorithms.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>(),
                "keys": summary.keys.iter().map(|(kid, alg)| json!({"kid": kid, "algorithm": alg})).collect::<Vec<_>>(),
                "jwks_url": summary.jwks_url,
                "jwks_last_success": metrics.jwks_last_success(&summary.issuer).map(unix),
            })
        })
        .collect()
}

/// The providers panel: each vendor credential cache and the state of its token.
fn providers(gateway: &Gateway) -> Vec<Value> {
    gateway
        .providers()
        .all()
        .iter()
        .map(|cache| {
            let (state, expires_at, error) = match cache.state() {
                ProviderState::Valid(at) => ("valid", Some(unix(at)), None),
                ProviderState::Failed(reason) => ("failed", None, Some(reason)),
                ProviderState::Empty => ("empty", None, None),
            };
            json!({
                "name": cache.name(),
                "state": state,
                "expires_at": expires_at,
                "error": error,
                "required": cache.config().required,
            })
        })
        .collect()
}

async fn service_tokens(
    config: &Config,
    now: u64,
) -> Result<Vec<tollgate_state::usage::ServiceUsage>, tollgate_state::revocation::store::StoreError>
{
    let seen = tollgate_state::usage::read(&config.state, now).await?;
    let revocations = tollgate_state::revocation::list(&config.state)
        .await?
        .revocations;
    Ok(tollgate_state::usage::report(
        &config.tokens.services,
        &seen,
        &revocations,
        now,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_credential_comparison_needs_every_byte() {
        assert!(constant_time_eq(b"0123456789abcdef", b"0123456789abcdef"));
        assert!(!constant_time_eq(b"0123456789abcdeX", b"0123456789abcdef"));
        assert!(!constant_time_eq(b"0123456789abcde", b"0123456789abcdef"));
        assert!(!constant_time_eq(b"0123456789abcdef0", b"0123456789abcdef"));
        assert!(!constant_time_eq(b"", b"0123456789abcdef"));
    }
}

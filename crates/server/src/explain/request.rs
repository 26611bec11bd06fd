//! The request being explained: built from the command line's method, target and headers, then
//! its first steps, the path and the route it matches.

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue, Method, Request};

use tollgate_config::Config;
use tollgate_core::error::GatewayError;
use tollgate_core::routing::RouteTable;
use tollgate_core::{Core, Trace};

use super::{ExplainError, Step, said};

/// The request `method target` with `headers`, carrying the identity of the client certificate
/// at `client_certificate` as a verified TLS handshake would.
pub(super) fn build(
    config: &Config,
    method: &str,
    target: &str,
    headers: &[String],
    client_certificate: Option<&std::path::Path>,
) -> Result<Request<http_body_util::Empty<bytes::Bytes>>, ExplainError> {
    let headers = with_host(headers);
    let mut request = Request::builder()
        .method(
            Method::from_bytes(method.as_bytes())
                .map_err(|e| ExplainError::Request(e.to_string()))?,
        )
        .uri(target);
    for header in &headers {
        let (name, value) = parse_header(header)?;
        request = request.header(name, value);
    }
    let mut request = request
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|e| ExplainError::Request(e.to_string()))?;
    if let Some(path) = client_certificate {
        request
            .extensions_mut()
            .insert(std::sync::Arc::new(read_certificate(config, path)?));
    }
    Ok(request)
}

/// `headers`, with a `Host` added when they have none.
fn with_host(headers: &[String]) -> Vec<String> {
    let mut headers = headers.to_vec();
    // Every HTTP/1.1 client sends a Host (curl does); a request without one is refused.
    if !headers.iter().any(|h| {
        h.split(':')
            .next()
            .is_some_and(|n| n.trim().eq_ignore_ascii_case("host"))
    }) {
        headers.push("Host: localhost".to_owned());
    }
    headers
}

/// The name and value of a `Name: value` header from the command line.
fn parse_header(header: &str) -> Result<(HeaderName, HeaderValue), ExplainError> {
    let (name, value) = header
        .split_once(':')
        .ok_or_else(|| ExplainError::Header(header.to_owned()))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| ExplainError::Header(header.to_owned()))?;
    let value =
        HeaderValue::from_str(value.trim()).map_err(|_| ExplainError::Header(header.to_owned()))?;
    Ok((name, value))
}

/// The identity a TLS client presenting the certificate at `path` (a PEM file: the leaf, then
/// any intermediates) would have, after the same verification the TLS listener makes: a
/// certificate the handshake would refuse, or a config whose listeners ask for none, is an
/// error, not an identity.
fn read_certificate(
    config: &Config,
    path: &std::path::Path,
) -> Result<tollgate_auth::certificate::ClientCertificate, ExplainError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let failed =
        |reason: String| ExplainError::Certificate(format!("{}: {reason}", path.display()));
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| failed(e.to_string()))?;
    let Some((leaf, intermediates)) = chain.split_first() else {
        return Err(failed("no certificate in the file".into()));
    };
    let tls = config.tls.as_ref();
    let roots = tls
        .filter(|t| t.client_auth != tollgate_config::tls::ClientAuth::None)
        .and_then(|t| t.client_roots.clone())
        .ok_or_else(|| {
            failed("no listener of this config asks for client certificates (a client's would be ignored)".into())
        })?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider)
        .build()
        .map_err(|e| failed(e.to_string()))?;
    verifier
        .verify_client_cert(leaf, intermediates, rustls::pki_types::UnixTime::now())
        .map_err(|e| {
            failed(format!(
                "the TLS listener would refuse it at the handshake: {e}"
            ))
        })?;
    let services = tls.map(|t| t.client_services.clone()).unwrap_or_default();
    crate::conn::client_certificate::read(leaf.as_ref(), &services)
        .ok_or_else(|| failed("not an X.509 certificate".into()))
}

/// The first step: the request as given, with the Host it was explained with.
pub(super) fn request_step(method: &str, target: &str, headers: &HeaderMap) -> Step {
    Step {
        step: "request".into(),
        result: "info",
        detail: format!(
            "{method} {target}{}",
            headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(|h| format!(" (Host: {h})"))
                .unwrap_or_default()
        ),
    }
}

/// The path as the gateway normalises it, or the host or path refusal that stopped it.
pub(super) fn explain_path(
    steps: &mut Vec<Step>,
    trace: &Trace,
    path: &str,
    error: Option<&GatewayError>,
) {
    let (result, detail) = match (&trace.path, error) {
        (Some(normal), _) if normal == path => ("ok", normal.clone()),
        (Some(normal), _) => ("ok", format!("{path} is read as {normal}")),
        (None, Some(e @ (GatewayError::BadPath(_) | GatewayError::UriTooLong(_)))) => {
            ("failed", said(e))
        }
        (None, Some(e @ GatewayError::BadHost(_))) => {
            steps.push(Step {
                step: "host".into(),
                result: "failed",
                detail: said(e),
            });
            return;
        }
        (None, _) => ("not reached", String::new()),
    };
    steps.push(Step {
        step: "path".into(),
        result,
        detail,
    });
}

/// Route matching: every route in matching order, and why each one was or was not taken.
pub(super) fn explain_route(
    steps: &mut Vec<Step>,
    core: &Core,
    trace: &Trace,
    headers: &HeaderMap,
    error: Option<&GatewayError>,
) {
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| tollgate_core::host::canonical(h, None).ok())
        .map(|h| h.name().to_owned());
    let Some(path) = &trace.path else {
        return;
    };
    let matched = trace.route.as_ref();
    for route in core.routes().routes() {
        let is_it = matched.is_some_and(|m| Arc::ptr_eq(m, route));
        let detail = match RouteTable::mismatch(route, host.as_deref(), path) {
            _ if is_it => matched_route(route),
            Some(why) => format!("not this one: {why}"),
            None => "matches too, but a route listed earlier won".to_owned(),
        };
        steps.push(Step {
            step: format!("route {}", route.name),
            result: if is_it { "ok" } else { "info" },
            detail,
        });
    }
    if matched.is_none()
        && let Some(e @ GatewayError::NoRoute) = error
    {
        steps.push(Step {
            step: "route".into(),
            result: "failed",
            detail: said(e),
        });
    }
}

/// What the matched route is: where it applies, its policy and its upstream.
fn matched_route(route: &tollgate_config::Route) -> String {
    format!(
        "matched: prefix {}{}, policy {}, upstream {}",
        if route.prefix.is_empty() {
            "/"
        } else {
            &route.prefix
        },
        route
            .host
            .as_deref()
            .map(|h| format!(" on host {h}"))
            .unwrap_or_default(),
        route.policy.policy.as_str(),
        route.upstream
    )
}

/// The route's rate limits that would apply to this caller: each one's rate and what it keys
/// the caller by. The allowance left is not shown: it lives in the running gateways (or Redis),
/// not in the config being explained.
pub(super) fn explain_limits(steps: &mut Vec<Step>, trace: &Trace) {
    let Some(note) = &trace.limits else {
        return;
    };
    for (name, rate, class) in &note.checked {
        steps.push(Step {
            step: format!("rate limit {name}"),
            result: "info",
            detail: format!("{rate} per {class}; over it, 429 rate_limited"),
        });
    }
}

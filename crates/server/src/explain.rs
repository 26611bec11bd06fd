//! `tollgate explain`: why a request would be allowed or refused, step by step, from the real
//! decision core run offline (nothing is sent; a vendor credential is not fetched).
//!
//! The verdict and the upstream request are the core's own ([`Core::decide_offline`]); the
//! steps around them (route matching, the token's claims and each verification check) explain
//! them. Secret values (tokens, cookies, the vendor credential, the identity assertion) are
//! masked in everything printed.

use std::net::IpAddr;
use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue, Method, Request};
use serde::Serialize;
use serde_json::Value;

use tollgate_auth::Refusal;
use tollgate_config::Config;
use tollgate_core::error::GatewayError;
use tollgate_core::forwarded::ClientIp;
use tollgate_core::routing::RouteTable;
use tollgate_core::{Core, Trace};

/// One step of the explanation.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// What was checked.
    pub step: String,
    /// `ok`, `failed`, `not reached` or `info`.
    pub result: &'static str,
    /// What was found.
    pub detail: String,
}

/// A header of the upstream request, and how it came to be.
#[derive(Debug, Clone, Serialize)]
pub struct SentHeader {
    /// Its name.
    pub name: String,
    /// Its value, masked when it is a secret.
    pub value: String,
    /// `kept` (as the client sent it), `set` (added or replaced by tollgate).
    pub origin: &'static str,
}

/// The request tollgate would send upstream.
#[derive(Debug, Clone, Serialize)]
pub struct WouldSend {
    /// Method and target.
    pub request_line: String,
    /// Every header, in order.
    pub headers: Vec<SentHeader>,
    /// Client headers that were removed.
    pub removed: Vec<String>,
    /// What is added when sending and not shown above (a vendor credential).
    pub note: Option<String>,
}

/// The whole explanation.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// `allowed` or `refused`.
    pub verdict: &'static str,
    /// The answer a refused request gets: status, error and reason.
    pub refusal: Option<Value>,
    /// The steps, in the order the gateway takes them.
    pub steps: Vec<Step>,
    /// The upstream request, when allowed.
    pub would_send: Option<WouldSend>,
}

impl Explanation {
    /// Whether the request would be forwarded.
    pub fn allowed(&self) -> bool {
        self.verdict == "allowed"
    }
}

/// Why `explain` could not run.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    /// A header given on the command line is not `Name: value`.
    #[error("header {0:?} is not `Name: value`")]
    Header(String),
    /// The method or target could not be parsed.
    #[error("not a request: {0}")]
    Request(String),
    /// The client certificate file could not be read.
    #[error("client certificate: {0}")]
    Certificate(String),
}

/// Explains `method target` with `headers` from `peer`, under `config`; with
/// `client_certificate` (a PEM file), as if the TLS handshake had verified that certificate.
pub async fn explain(
    config: &Config,
    method: &str,
    target: &str,
    headers: &[String],
    peer: IpAddr,
    client_certificate: Option<&std::path::Path>,
) -> Result<Explanation, ExplainError> {
    let mut headers = headers.to_vec();
    // Every HTTP/1.1 client sends a Host (curl does); a request without one is refused.
    if !headers.iter().any(|h| {
        h.split(':')
            .next()
            .is_some_and(|n| n.trim().eq_ignore_ascii_case("host"))
    }) {
        headers.push("Host: localhost".to_owned());
    }
    let mut request = Request::builder()
        .method(
            Method::from_bytes(method.as_bytes())
                .map_err(|e| ExplainError::Request(e.to_string()))?,
        )
        .uri(target);
    for header in &headers {
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| ExplainError::Header(header.clone()))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| ExplainError::Header(header.clone()))?;
        let value = HeaderValue::from_str(value.trim())
            .map_err(|_| ExplainError::Header(header.clone()))?;
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
    let client_headers = request.headers().clone();
    let (path, query) = (
        request.uri().path().to_owned(),
        request.uri().query().map(str::to_owned),
    );

    // No observer: explaining a request records nothing (no metrics, audit or usage).
    let core = Core::new(config, Arc::new(()), None);
    core.verifier().revocations().read_once().await;
    let mut trace = Trace::default();
    let decided = core
        .decide_offline(request, &ClientIp::new(peer), &mut trace)
        .await;

    let mut steps = Vec::new();
    steps.push(Step {
        step: "request".into(),
        result: "info",
        detail: format!(
            "{method} {target}{}",
            client_headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(|h| format!(" (Host: {h})"))
                .unwrap_or_default()
        ),
    });
    let error = decided.as_ref().err();
    explain_path(&mut steps, &trace, &path, error);
    explain_route(&mut steps, &core, &trace, &client_headers, error);
    if let Some(route) = &trace.route {
        explain_token(
            &mut steps,
            config,
            &core,
            route,
            &client_headers,
            query.as_deref(),
            error,
        );
    }
    match decided {
        Ok((decision, upstream)) => {
            steps.push(Step {
                step: "policy".into(),
                result: "ok",
                detail: match &decision.identity {
                    Some(identity) => format!(
                        "policy {} allows this {} token ({})",
                        decision.route.policy.policy.as_str(),
                        identity.kind.as_str(),
                        identity.service.as_deref().map_or_else(
                            || format!("user {}", identity.subject),
                            |s| format!("service {s}")
                        )
                    ),
                    None => format!(
                        "{} route: no identity needed",
                        decision.route.policy.policy.as_str()
                    ),
                },
            });
            let note = decision.route.upstream_auth.map(|i| {
                format!(
                    "authorization: Bearer <{} token, fetched when sending>",
                    config
                        .providers
                        .get(i)
                        .map_or("vendor", |p| p.name.as_str())
                )
            });
            Ok(Explanation {
                verdict: "allowed",
                refusal: None,
                steps,
                would_send: Some(would_send(&client_headers, &upstream, note)),
            })
        }
        Err(error) => {
            if let GatewayError::Refused(Refusal::Forbidden(_)) = &error {
                steps.push(Step {
                    step: "policy".into(),
                    result: "failed",
                    detail: said(&error),
                });
            }
            // A refusal no step above accounts for (a declared body over the limit, a token
            // the route does not take at all) is named on its own.
            if !steps.iter().any(|s| s.result == "failed") {
                steps.push(Step {
                    step: match &error {
                        GatewayError::BodyTooLarge { .. } => "body size".into(),
                        _ => "credentials".into(),
                    },
                    result: "failed",
                    detail: said(&error),
                });
            }
            let (status, message) = error.status_and_message();
            let response = crate::outbound::body::error_response(&error, "-");
            let reason = response
                .headers()
                .get(http::header::WWW_AUTHENTICATE)
                .map(|c| c.to_str().unwrap_or_default().to_owned());
            let body = refusal_body(response).await;
            Ok(Explanation {
                verdict: "refused",
                refusal: Some(serde_json::json!({
                    "status": status.as_u16(),
                    "error": message,
                    "reason": body.get("reason").cloned().unwrap_or(Value::Null),
                    "www_authenticate": reason,
                })),
                steps,
                would_send: None,
            })
        }
    }
}

/// The identity a TLS client presenting the certificate at `path` would have.
fn read_certificate(
    config: &Config,
    path: &std::path::Path,
) -> Result<tollgate_auth::certificate::ClientCertificate, ExplainError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let leaf = CertificateDer::from_pem_file(path)
        .map_err(|e| ExplainError::Certificate(format!("{}: {e}", path.display())))?;
    let services = config
        .tls
        .as_ref()
        .map(|t| t.client_services.clone())
        .unwrap_or_default();
    crate::conn::client_certificate::read(leaf.as_ref(), &services).ok_or_else(|| {
        ExplainError::Certificate(format!("{}: not an X.509 certificate", path.display()))
    })
}

async fn refusal_body(response: http::Response<crate::outbound::body::ResponseBody>) -> Value {
    use http_body_util::BodyExt;
    match response.into_body().collect().await {
        Ok(body) => serde_json::from_slice(&body.to_bytes()).unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

/// What the client is told: the error and its reason, as in the answer's body.
fn said(error: &GatewayError) -> String {
    let (_, message) = error.status_and_message();
    match error.reason() {
        Some(reason) => format!("{message}: {reason}"),
        None => message.to_owned(),
    }
}

fn explain_path(steps: &mut Vec<Step>, trace: &Trace, path: &str, error: Option<&GatewayError>) {
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

fn explain_route(
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
            _ if is_it => format!(
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
            ),
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

/// The checks of a token, in the verifier's order ([`AuthError::check`] names the one each
/// refusal failed).
const CHECKS: [&str; 13] = [
    "structure and size",
    "issuer (iss)",
    "algorithm allow-list",
    "critical headers (crit)",
    "token typ",
    "key (kid)",
    "signature",
    "expiry and not-before (exp, nbf)",
    "audience (aud)",
    "token type (type, is_service)",
    "claims",
    "issued-at and lifetime (iat)",
    "revocation",
];

fn explain_token(
    steps: &mut Vec<Step>,
    config: &Config,
    core: &Core,
    route: &tollgate_config::Route,
    headers: &HeaderMap,
    query: Option<&str>,
    error: Option<&GatewayError>,
) {
    let sources = core.verifier().sources();
    let tokens = tollgate_auth::extract::extract(headers, query, sources).unwrap_or_default();
    let source = if headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().len() > 7 && v.trim()[..7].eq_ignore_ascii_case("bearer "))
    {
        "the Authorization header"
    } else if sources.cookies.iter().any(|c| {
        headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(';').any(|p| p.trim().starts_with(&format!("{c}="))))
    }) {
        "a token cookie"
    } else {
        "the query"
    };
    let Some(token) = tokens.first() else {
        let detail = match error {
            Some(GatewayError::Refused(Refusal::Unauthenticated(e))) => e.to_string(),
            _ if !route.policy.requires_token() => "none; this route is public".to_owned(),
            _ => "none".to_owned(),
        };
        let result = if matches!(
            error,
            Some(GatewayError::Refused(Refusal::Unauthenticated(_)))
        ) {
            "failed"
        } else {
            "info"
        };
        steps.push(Step {
            step: "token".into(),
            result,
            detail,
        });
        return;
    };
    steps.push(Step {
        step: "token".into(),
        result: "info",
        detail: format!("from {source}: {}", mask_token(token)),
    });
    let decode = |part: Option<&str>| -> Option<Value> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part?)
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    };
    let mut parts = token.split('.');
    let (header, claims) = (decode(parts.next()), decode(parts.next()));
    let now = tollgate_state::clock::now();
    let when = |name: &str| -> Option<String> {
        let t = claims.as_ref()?.get(name)?.as_f64()? as i64;
        let delta = t - now as i64;
        let at =
            std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(t.max(0) as u64))?;
        let relative =
            humantime::format_duration(std::time::Duration::from_secs(delta.unsigned_abs()));
        Some(format!(
            "{name} {} ({})",
            humantime::format_rfc3339_seconds(at),
            if delta == 0 {
                "now".to_owned()
            } else if delta > 0 {
                format!("in {relative}")
            } else {
                format!("{relative} ago")
            }
        ))
    };
    let iss = claims
        .as_ref()
        .and_then(|c| c.get("iss"))
        .and_then(Value::as_str)
        .unwrap_or("-");
    let issuer = config.issuers.iter().find(|i| i.issuer == iss);
    let alg = header
        .as_ref()
        .and_then(|h| h.get("alg"))
        .and_then(Value::as_str)
        .unwrap_or("-");
    let details: [String; 13] = [
        format!("{} bytes", token.len()),
        match issuer {
            Some(issuer) => format!("{iss}: issuer {}", issuer.name),
            None => format!("{iss}: no configured issuer"),
        },
        format!(
            "{alg}; the issuer allows {}",
            issuer.map_or("-".to_owned(), |i| {
                i.algorithms
                    .iter()
                    .map(|a| format!("{a:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
        ),
        header
            .as_ref()
            .and_then(|h| h.get("crit"))
            .map_or("none".to_owned(), Value::to_string),
        header
            .as_ref()
            .and_then(|h| h.get("typ"))
            .and_then(Value::as_str)
            .unwrap_or("none")
            .to_owned(),
        header
            .as_ref()
            .and_then(|h| h.get("kid"))
            .and_then(Value::as_str)
            .unwrap_or("none")
            .to_owned(),
        format!("{alg} signature"),
        [when("exp"), when("nbf")]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", "),
        claims
            .as_ref()
            .and_then(|c| c.get("aud"))
            .map_or("none".to_owned(), Value::to_string),
        claims
            .as_ref()
            .and_then(|c| c.get("type"))
            .map_or("none".to_owned(), Value::to_string),
        ["user_id", "sub", "service", "role"]
            .iter()
            .filter_map(|name| {
                let value = claims.as_ref()?.get(*name)?;
                Some(format!("{name} {value}"))
            })
            .collect::<Vec<_>>()
            .join(", "),
        when("iat").unwrap_or_else(|| "no iat".to_owned()),
        claims
            .as_ref()
            .and_then(|c| c.get("jti"))
            .and_then(Value::as_str)
            .map_or("no jti".to_owned(), |j| format!("jti {j}")),
    ];
    let failed_at = match error {
        Some(GatewayError::Refused(Refusal::Unauthenticated(e))) => e
            .check()
            .and_then(|check| CHECKS.iter().position(|c| *c == check)),
        _ => None,
    };
    let refusal = match error {
        Some(GatewayError::Refused(Refusal::Unauthenticated(e))) => e.to_string(),
        _ => String::new(),
    };
    let verified = !matches!(
        error,
        Some(GatewayError::Refused(Refusal::Unauthenticated(_)))
    );
    for (i, (check, detail)) in CHECKS.iter().zip(details).enumerate() {
        let (result, detail) = match failed_at {
            Some(at) if i == at => ("failed", format!("{refusal}; {detail}")),
            Some(at) if i > at => ("not reached", detail),
            _ if verified || failed_at.is_some() => ("ok", detail),
            _ => ("not reached", detail),
        };
        steps.push(Step {
            step: format!("check {check}"),
            result,
            detail: detail.trim_end_matches("; ").to_owned(),
        });
    }
}

/// `eyJhbGci…(412 bytes)`: enough to recognise a token, never enough to use it.
fn mask_token(token: &str) -> String {
    format!("{}…({} bytes)", &token[..token.len().min(8)], token.len())
}

/// Header values never printed as they are.
fn masked(name: &str, value: &str) -> String {
    match name {
        "authorization" | "proxy-authorization" => match value.split_once(' ') {
            Some((scheme, credential)) => format!("{scheme} {}", mask_token(credential)),
            None => "****".to_owned(),
        },
        "cookie" => value
            .split(';')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) => format!("{}=****", name.trim()),
                None => "****".to_owned(),
            })
            .collect::<Vec<_>>()
            .join("; "),
        "x-tollgate-assertion" => mask_token(value),
        _ => value.to_owned(),
    }
}

fn would_send<B>(client: &HeaderMap, upstream: &Request<B>, note: Option<String>) -> WouldSend {
    let headers = upstream
        .headers()
        .iter()
        .map(|(name, value)| {
            let text = String::from_utf8_lossy(value.as_bytes());
            let kept = client.get_all(name).iter().any(|v| v == value);
            SentHeader {
                name: name.as_str().to_owned(),
                value: masked(name.as_str(), &text),
                origin: if kept { "kept" } else { "set" },
            }
        })
        .collect();
    let mut removed: Vec<String> = client
        .keys()
        .filter(|name| !upstream.headers().contains_key(*name))
        .map(|name| name.as_str().to_owned())
        .collect();
    removed.dedup();
    WouldSend {
        request_line: format!("{} {}", upstream.method(), upstream.uri()),
        headers,
        removed,
        note,
    }
}

/// The explanation as text, one line per step.
pub fn render_text(explanation: &Explanation) -> String {
    let mut out = String::new();
    for step in &explanation.steps {
        let mark = match step.result {
            "ok" => "ok  ",
            "failed" => "FAIL",
            "not reached" => " -- ",
            _ => "    ",
        };
        out.push_str(&format!("{mark} {:<40} {}\n", step.step, step.detail));
    }
    match (&explanation.refusal, &explanation.would_send) {
        (Some(refusal), _) => {
            out.push_str(&format!(
                "\nrefused: {} {}{}\n",
                refusal["status"],
                refusal["error"].as_str().unwrap_or_default(),
                refusal["reason"]
                    .as_str()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            ));
        }
        (None, Some(send)) => {
            out.push_str(&format!(
                "\nallowed; would send:\n  {}\n",
                send.request_line
            ));
            for header in &send.headers {
                out.push_str(&format!(
                    "  {}: {}{}\n",
                    header.name,
                    header.value,
                    if header.origin == "set" {
                        "   (set by tollgate)"
                    } else {
                        ""
                    }
                ));
            }
            if let Some(note) = &send.note {
                out.push_str(&format!("  {note}   (added when sending)\n"));
            }
            if !send.removed.is_empty() {
                out.push_str(&format!("  removed: {}\n", send.removed.join(", ")));
            }
        }
        (None, None) => {}
    }
    out
}

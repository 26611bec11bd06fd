//! `tollgate explain`: why a request would be allowed or refused, step by step, from the real
//! decision core run offline (nothing is sent; a vendor credential is not fetched).
//!
//! The verdict and the upstream request are the core's own ([`Core::decide_offline`]); the
//! steps around them (route matching, the token's claims and each verification check) explain
//! them. Secret values (tokens, cookies, the vendor credential, the identity assertion) are
//! masked in everything printed.
//!
//! `request` builds the request and explains its path and route, `token` the token and
//! its checks, `upstream` what would be sent; this module runs the core and gives the verdict.

mod request;
mod token;
mod upstream;

use std::net::IpAddr;
use std::sync::Arc;

use http::{HeaderMap, Request};
use serde::Serialize;
use serde_json::Value;

use tollgate_auth::Refusal;
use tollgate_auth::policy::Forbidden;
use tollgate_config::Config;
use tollgate_core::error::GatewayError;
use tollgate_core::forwarded::ClientIp;
use tollgate_core::{Core, Decision, Trace};
use tollgate_http::BoxFuture;

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
#[inline(never)]
pub fn explain<'a>(
    config: &'a Config,
    method: &'a str,
    target: &'a str,
    headers: &'a [String],
    peer: IpAddr,
    client_certificate: Option<&'a std::path::Path>,
) -> BoxFuture<'a, Result<Explanation, ExplainError>> {
    Box::pin(async move {
        let request = request::build(config, method, target, headers, client_certificate)?;
        let client_headers = request.headers().clone();
        let (path, query) = (
            request.uri().path().to_owned(),
            request.uri().query().map(str::to_owned),
        );

        // No observer: explaining a request records nothing (no metrics, audit or usage).
        let core = Core::new(config, Arc::new(()), None);
        core.verifier().revocations().read_once().await;
        let mut trace = Trace::default();
        // A client certificate means a TLS connection: the request is built as the TLS
        // listener builds it (`x-forwarded-proto: https`, `Forwarded: proto=https`).
        let client = match client_certificate {
            Some(_) => ClientIp::new(peer).over_tls(),
            None => ClientIp::new(peer),
        };
        let decided = core.decide_offline(request, &client, &mut trace).await;

        let mut steps = vec![request::request_step(method, target, &client_headers)];
        let error = decided.as_ref().err();
        request::explain_path(&mut steps, &trace, &path, error);
        request::explain_route(&mut steps, &core, &trace, &client_headers, error);
        if let Some(route) = &trace.route {
            let (headers, query) = (&client_headers, query.as_deref());
            token::explain_token(&mut steps, config, &core, route, headers, query, error);
        }
        request::explain_limits(&mut steps, &trace);
        Ok(match decided {
            Ok((decision, upstream)) => {
                allowed(config, steps, &decision, &client_headers, &upstream)
            }
            Err(error) => refused(steps, error).await,
        })
    })
}

/// The explanation of a request the core would forward: the policy that let it through and
/// the request that would go upstream.
fn allowed<B>(
    config: &Config,
    mut steps: Vec<Step>,
    decision: &Decision,
    client_headers: &HeaderMap,
    upstream: &Request<B>,
) -> Explanation {
    steps.push(Step {
        step: "policy".into(),
        result: "ok",
        detail: policy_allows(decision),
    });
    steps.extend(rule_steps(&decision.route.policy, upstream.method()));
    // The vendor token is only fetched when sending, so explain can only name its provider.
    let note = decision.route.upstream_auth.map(|i| {
        format!(
            "authorization: Bearer <{} token, fetched when sending>",
            config
                .providers
                .get(i)
                .map_or("vendor", |p| p.name.as_str())
        )
    });
    Explanation {
        verdict: "allowed",
        refusal: None,
        steps,
        would_send: Some(upstream::would_send(client_headers, upstream, note)),
    }
}

/// One passed step per rule the route sets (methods, roles, scopes, claims), saying what met it.
fn rule_steps(policy: &tollgate_auth::policy::RoutePolicy, method: &http::Method) -> Vec<Step> {
    let joined = |items: &[String]| items.join(", ");
    let mut steps = Vec::new();
    let mut passed = |step: &str, detail: String| {
        steps.push(Step {
            step: step.into(),
            result: "ok",
            detail,
        })
    };
    if !policy.methods.is_empty() {
        let allowed: Vec<String> = policy.methods.iter().map(|m| m.to_string()).collect();
        passed(
            "methods",
            format!("{method} is one of {}", joined(&allowed)),
        );
    }
    if !policy.roles.is_empty() {
        passed(
            "roles",
            format!("the caller has one of {}", joined(&policy.roles)),
        );
    }
    if !policy.scopes.is_empty() {
        passed(
            "scopes",
            format!("the token has {}", joined(&policy.scopes)),
        );
    }
    for rule in &policy.claims {
        passed("claims", format!("{} is {}", rule.key, rule.expected));
    }
    steps
}

/// Who the policy let through: the caller named by their token, or nobody on a public route.
fn policy_allows(decision: &Decision) -> String {
    match &decision.identity {
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
    }
}

/// The explanation of a refused request: the step that failed, and the answer the client gets.
async fn refused(mut steps: Vec<Step>, error: GatewayError) -> Explanation {
    push_refusal_step(&mut steps, &error);
    let (status, message) = error.status_and_message();
    // The answer the gateway itself would give, so that explain and the gateway cannot differ.
    let response = crate::outbound::body::error_response(&error, "-");
    let reason = response
        .headers()
        .get(http::header::WWW_AUTHENTICATE)
        .map(|c| c.to_str().unwrap_or_default().to_owned());
    let body = refusal_body(response).await;
    Explanation {
        verdict: "refused",
        refusal: Some(serde_json::json!({
            "status": status.as_u16(),
            "error": message,
            "reason": body.get("reason").cloned().unwrap_or(Value::Null),
            "www_authenticate": reason,
        })),
        steps,
        would_send: None,
    }
}

/// Names the step that refused the request, so that exactly one step reads `failed`.
fn push_refusal_step(steps: &mut Vec<Step>, error: &GatewayError) {
    let failed_step = match error {
        GatewayError::Refused(Refusal::Forbidden(Forbidden::RoleNotAllowed)) => Some("roles"),
        GatewayError::Refused(Refusal::Forbidden(Forbidden::ClaimNotAllowed)) => Some("claims"),
        GatewayError::Refused(Refusal::Forbidden(Forbidden::MethodNotAllowed))
        | GatewayError::Refused(Refusal::MethodNotAllowed(_)) => Some("methods"),
        GatewayError::Refused(Refusal::InsufficientScope(_)) => Some("scopes"),
        GatewayError::Refused(Refusal::Forbidden(_)) => Some("policy"),
        _ => None,
    };
    if let Some(step) = failed_step {
        steps.push(Step {
            step: step.into(),
            result: "failed",
            detail: said(error),
        });
    }
    // A refusal no step above accounts for (a declared body over the limit, a token
    // the route does not take at all) is named on its own.
    if !steps.iter().any(|s| s.result == "failed") {
        steps.push(Step {
            step: match error {
                GatewayError::BodyTooLarge { .. } => "body size".into(),
                _ => "credentials".into(),
            },
            result: "failed",
            detail: said(error),
        });
    }
}

/// The JSON body of the gateway's refusal (`null` when it is not JSON).
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
        (None, Some(send)) => render_would_send(&mut out, send),
        (None, None) => {}
    }
    out
}

/// The upstream request as text, each header marked when tollgate set it.
fn render_would_send(out: &mut String, send: &WouldSend) {
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

//! The audit trail: one structured event on the `audit` target per decision on a service-only
//! route and per denied request. Never the token.

use http::Method;

use tollgate_auth::Refusal;
use tollgate_auth::policy::Policy;
use tollgate_config::Route;
use tollgate_http::identity::Identity;

use crate::telemetry::AuditLine;

/// What the request looked like when the decision was made.
pub struct AuditContext<'a> {
    /// The request id.
    pub request_id: &'a str,
    /// The id an untrusted client sent, recorded apart from ours.
    pub client_request_id: Option<&'a str>,
    /// The matched route.
    pub route: &'a Route,
    /// The request method.
    pub method: &'a Method,
    /// The normalised path.
    pub path: &'a str,
}

/// Records an authentication/authorization decision when the audit trail wants it.
pub fn record(ctx: &AuditContext<'_>, identity: Option<&Identity>, refusal: Option<&Refusal>) {
    let denied = refusal.is_some();
    if (!denied && ctx.route.policy.policy != Policy::Service) || !AuditLine::enabled() {
        return;
    }
    let reason = match refusal {
        None => String::new(),
        Some(refusal) => refusal.reason(),
    };
    AuditLine {
        request_id: ctx.request_id,
        client_request_id: ctx.client_request_id,
        route: &ctx.route.name,
        policy: ctx.route.policy.policy.as_str(),
        method: ctx.method.as_str(),
        path: ctx.path,
        decision: if denied { "deny" } else { "allow" },
        reason: &reason,
        service: identity.and_then(|i| i.service.as_deref()),
        user_id: identity.map(|i| i.subject.as_str()),
        token_type: identity.map(|i| i.kind.as_str()),
    }
    .log();
}

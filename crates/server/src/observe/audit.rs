//! The audit trail: one structured event on the `audit` target per decision on a service-only
//! route and per denied request. Never the token.

use tollgate_auth::Refusal;
use tollgate_auth::policy::Policy;
use tollgate_config::Route;
use tollgate_http::identity::Identity;

use super::Outcome;
use crate::telemetry::AuditLine;

/// Records the decision on `outcome`'s request (matched to `route`, request id `rid`) when the
/// audit trail wants it. The request's fields are read only then: most allowed requests on
/// user routes are not audited.
pub fn record(
    outcome: &Outcome<'_>,
    rid: &str,
    route: &Route,
    identity: Option<&Identity>,
    refusal: Option<&Refusal>,
) {
    let denied = refusal.is_some();
    if (!denied && route.policy.policy != Policy::Service) || !AuditLine::enabled() {
        return;
    }
    let reason = match refusal {
        None => String::new(),
        Some(refusal) => refusal.reason(),
    };
    let trace = outcome.trace;
    AuditLine {
        request_id: rid,
        client_request_id: trace
            .client_request_id
            .as_ref()
            .and_then(|v| v.to_str().ok()),
        route: &route.name,
        policy: route.policy.policy.as_str(),
        method: outcome.method.as_str(),
        path: trace.path.as_deref().unwrap_or("-"),
        decision: if denied { "deny" } else { "allow" },
        reason: &reason,
        service: identity.and_then(|i| i.service.as_deref()),
        user_id: identity.map(|i| i.subject.as_str()),
        token_type: identity.map(|i| i.kind.as_str()),
    }
    .log();
}

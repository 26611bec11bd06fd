//! The observer phase: once a request is answered, one [`Outcome`] feeds every observer —
//! metrics, the audit trail, the service-token usage log, the console's refusal ring and the
//! access log. The decision recorded nothing while it decided, so `tollgate explain` (which
//! runs the same decision and observes nothing) leaves no trace in any of them.

pub mod audit;
pub mod limited;
pub mod refusals;

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use tracing::{debug, warn};

use crate::metrics::{AuthLabels, Metrics, RouteHandles, UpstreamErrorLabels};
use crate::observe::limited::LimitedCallers;
use crate::observe::refusals::Refusals;
use crate::telemetry::AccessLine;
use tollgate_auth::{AuthError, Refusal};
use tollgate_config::Config;
use tollgate_core::error::GatewayError;
use tollgate_core::{AuthOutcome, Trace};
use tollgate_state::usage::UsageLog;

/// Everything the observers learn about one answered request.
pub struct Outcome<'a> {
    /// What the core filled in (request id, client, path, route, authentication).
    pub trace: &'a Trace,
    /// The client's method.
    pub method: &'a Method,
    /// The status answered.
    pub status: u16,
    /// Why the request failed, if it did.
    pub error: Option<&'a GatewayError>,
    /// From the request's arrival to its response head.
    pub elapsed: Duration,
    /// How long the upstream took to answer, if it was asked.
    pub upstream: Option<Duration>,
    /// The response body's size, when known.
    pub bytes_out: Option<u64>,
    /// The OpenTelemetry trace id, when traces are on.
    pub trace_id: Option<&'a str>,
    /// The trace id again when the trace is recorded (sampled): the latency exemplar.
    pub sampled_trace: Option<&'a str>,
}

/// The observers of one gateway generation.
#[derive(Debug)]
pub struct Observers {
    /// The metrics registry (shared across reloads).
    pub metrics: Arc<Metrics>,
    /// Per-route metric handles, indexed by `Route::index`.
    pub route_metrics: Vec<RouteHandles>,
    /// Which service tokens were seen.
    pub usage: Arc<UsageLog>,
    /// The last refusals, for the console.
    pub refusals: Arc<Refusals>,
    /// The callers most often rate limited, for the console.
    pub limited: Arc<LimitedCallers>,
}

/// The route label of requests no route matched.
static NO_ROUTE: std::sync::LazyLock<Arc<str>> = std::sync::LazyLock::new(|| Arc::from("-"));

impl Observers {
    /// The observers for `config`, keeping from `previous` the refusal ring (if its size is
    /// unchanged) and the usage log (if its store is): what was seen but not yet written
    /// survives a reload, like the revocation list.
    pub fn reusing(config: &Config, metrics: Arc<Metrics>, previous: Option<&Observers>) -> Self {
        Self {
            refusals: match previous.map(|p| &p.refusals) {
                Some(kept) if kept.capacity() == config.console.recent_refusals => kept.clone(),
                _ => Arc::new(Refusals::new(config.console.recent_refusals)),
            },
            usage: match previous.map(|p| &p.usage) {
                Some(kept) if kept.serves(&config.state, config.usage_flush_interval) => {
                    kept.clone()
                }
                _ => UsageLog::new(&config.state, config.usage_flush_interval),
            },
            limited: match previous.map(|p| &p.limited) {
                Some(kept) if kept.is_on() == config.console.enabled => kept.clone(),
                _ => Arc::new(LimitedCallers::new(config.console.enabled)),
            },
            route_metrics: config
                .routes
                .iter()
                .map(|r| metrics.route_handles(&r.name))
                .collect(),
            metrics,
        }
    }

    /// Feeds `outcome` to every observer.
    pub fn observe(&self, outcome: &Outcome<'_>) {
        let trace = outcome.trace;
        let rid = trace.request_id.to_str().unwrap_or_default();
        if let Some(auth) = &trace.auth {
            self.authentication(outcome, auth, rid);
        }
        if let Some(error) = outcome.error {
            self.failure(outcome, error, rid);
        }
        if let (Some(limits), Some(route)) = (&trace.limits, &trace.route) {
            self.metrics.record_limits(route, limits);
            if let Some((limit, by)) = &limits.refused_by {
                let caller = trace.auth.as_ref().and_then(|a| a.caller.as_deref());
                let client = trace.client.as_ref().and_then(|c| c.to_str().ok());
                let place = (&route.name, limit, *by);
                self.limited
                    .record(place, caller, client.unwrap_or("-"), rid);
            }
        }
        let route_label = trace.route.as_ref().map_or(&*NO_ROUTE, |r| &r.name);
        let handles = trace
            .route
            .as_ref()
            .and_then(|r| self.route_metrics.get(r.index));
        self.metrics.record_request(
            route_label,
            handles,
            outcome.method,
            outcome.status,
            outcome.elapsed,
            outcome.sampled_trace,
        );
        if let (Some(upstream), Some(handles)) = (outcome.upstream, handles) {
            handles.upstream.observe(upstream.as_secs_f64());
        }
        access_log(outcome, rid);
    }

    /// The authentication counters, the service's use of its token and the audit trail.
    fn authentication(&self, outcome: &Outcome<'_>, auth: &AuthOutcome, rid: &str) {
        let Some(route) = &outcome.trace.route else {
            return;
        };
        let result = match &auth.refusal {
            None => "allowed",
            Some(Refusal::Forbidden(_) | Refusal::InsufficientScope(_)) => "forbidden",
            Some(Refusal::MethodNotAllowed(_)) => "method_not_allowed",
            Some(Refusal::Unauthenticated(e)) => e.kind(),
        };
        let caller = auth.caller.as_deref();
        if let Some(caller) = caller
            && let Some(service) = caller.service.as_deref()
        {
            if let Some(Refusal::Unauthenticated(AuthError::Revoked)) = &auth.refusal {
                // The alert on a revoked service token still in use reads this count.
                self.metrics.record_service_request(service, "revoked");
            } else {
                let now = self.metrics.record_service_request(service, result);
                self.usage.seen(caller, now);
            }
        }
        // An unauthenticated request has no token type, even when a revoked token named one.
        let token_type = match (&auth.refusal, caller) {
            (Some(Refusal::Unauthenticated(_)), _) | (_, None) => "none",
            (_, Some(caller)) => caller.kind.as_str(),
        };
        let counter = || {
            self.metrics
                .auth_decisions
                .get_or_create(&AuthLabels {
                    route: route.name.clone(),
                    result,
                    token_type,
                })
                .clone()
        };
        match self.route_metrics.get(route.index) {
            Some(handles) => handles.auth_decisions.inc(&(result, token_type), counter),
            None => {
                counter().inc();
            }
        }
        audit::record(outcome, rid, route, caller, auth.refusal.as_ref());
    }

    /// Upstream failure counters, the log line and the console's refusal ring.
    fn failure(&self, outcome: &Outcome<'_>, error: &GatewayError, rid: &str) {
        let route = outcome.trace.route.as_deref();
        if let (Some(kind), Some(route)) = (error.upstream_kind(), route) {
            self.metrics
                .upstream_errors
                .get_or_create(&UpstreamErrorLabels {
                    route: route.name.clone(),
                    kind,
                })
                .inc();
        }
        if error.status_and_message().0.is_server_error() {
            warn!(request_id = rid, error = %error, "request failed");
        } else {
            debug!(request_id = rid, error = %error, "request refused");
        }
        self.refusals.record(error, route.map(|r| &*r.name), rid);
    }
}

/// One line per request on the `access` target.
fn access_log(outcome: &Outcome<'_>, rid: &str) {
    // Checked before the fields are gathered: at `warn` the line costs nothing.
    if !AccessLine::enabled() {
        return;
    }
    let trace = outcome.trace;
    AccessLine {
        request_id: rid,
        client: trace.client.as_ref().and_then(|v| v.to_str().ok()),
        client_request_id: trace
            .client_request_id
            .as_ref()
            .and_then(|v| v.to_str().ok()),
        method: outcome.method.as_str(),
        path: trace.path.as_deref().unwrap_or("-"),
        route: trace.route.as_deref().map_or("-", |r| &*r.name),
        status: outcome.status,
        duration_us: outcome.elapsed.as_micros() as u64,
        upstream_us: outcome.upstream.map(|d| d.as_micros() as u64),
        bytes_out: outcome.bytes_out,
        trace_id: outcome.trace_id,
    }
    .log();
}

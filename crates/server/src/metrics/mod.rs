//! Prometheus metrics (prometheus-client): the registry and typed handles for every series.
//! Label sets are bounded: route names, methods from a fixed list, status codes, issuer,
//! provider and service names from the config or from verified tokens; never raw paths, user
//! ids or tokens.
//!
//! `labels` holds the label sets, `register` the families and their help texts, `record`
//! what the gateway counts per request and per connection, `services` the bounded service
//! label, `events` what the verifier, the vendor credentials and the state stores report.

mod declare;
mod events;
mod found;
mod labels;
mod record;
mod register;
mod services;

use std::sync::atomic::AtomicU64;
use std::time::SystemTime;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub use labels::{
    AuthLabels, IssuerLabel, IssuerReason, KindLabel, MethodLabel, NameResult, ProtocolLabel,
    ProviderLabel, ProviderReason, RateLimitLabels, ReasonLabel, RequestLabels, ResultLabel,
    RouteLabel, ServiceLabel, ServiceResult, ServiceSeen, TraceExemplar, UpstreamErrorLabels,
};
pub use record::ConnectionGuard;

/// A latency histogram whose buckets keep the trace of their last sampled request
/// (OpenMetrics exemplars; the classic text format leaves them out).
pub type LatencyWithExemplars = HistogramWithExemplars<TraceExemplar>;
use found::Found;
use services::ServiceRegistry;

/// A route's series, resolved once when the gateway is built (the histograms) or when first
/// used (the counters) so that requests skip the label lookup (a hash and a lock) for them.
#[derive(Clone, Debug)]
pub struct RouteHandles {
    /// `request_duration_seconds{route}`, with the trace of a sampled request as exemplar
    pub duration: LatencyWithExemplars,
    /// `upstream_duration_seconds{route}`
    pub upstream: Histogram,
    /// `requests_total{route}` by method and status.
    pub requests: Found<(MethodLabel, u16)>,
    /// `auth_decisions_total{route}` by result and token type.
    pub auth_decisions: Found<(&'static str, &'static str)>,
}

/// Every metric tollgate exports.
pub struct Metrics {
    registry: Registry,
    /// Requests by route, method, status.
    pub requests: Family<RequestLabels, Counter>,
    /// Request duration by route; exemplars name sampled traces.
    pub request_duration: Family<RouteLabel, LatencyWithExemplars>,
    /// Upstream response-head duration by route.
    pub upstream_duration: Family<RouteLabel, Histogram>,
    /// Requests being handled.
    pub in_flight: Gauge,
    /// Requests whose handling panicked (answered 500): each one is a bug to report.
    pub request_panics: Counter,
    /// Requests made with a valid service token, by service and result.
    pub service_requests: Family<ServiceResult, Counter>,
    /// When each service last presented a valid token (unix seconds).
    pub service_last_seen: Family<ServiceSeen, Gauge>,
    /// The service registry bounding the `service` label (`[tokens] services`), and `other`.
    service_registry: std::sync::RwLock<ServiceRegistry>,
    /// Revocations (tokens and services) the gateway enforces.
    pub revocations_in_force: Gauge,
    /// Times the revocation list could not be read (the previous one stayed in force).
    pub revocation_load_failures: Counter,
    /// Stored revocation entries skipped in the last list read because they were unreadable.
    pub revocation_entries_unreadable: Gauge,
    /// 1 while the shared state store answers, 0 while it does not.
    pub state_store_up: Gauge,
    /// Open client connections by protocol (counted from their first request).
    pub connections: Family<ProtocolLabel, Gauge>,
    /// Idle HTTP/1 connections whose buffers have been freed while they wait.
    pub connections_parked: Gauge,
    /// Client connections the gateway closed, by reason: `idle`, `max_age`,
    /// `client_ip_limit`.
    pub connections_closed: Family<ReasonLabel, Counter>,
    /// TLS certificate reloads, by result.
    pub tls_reloads: Family<ResultLabel, Counter>,
    /// Completed TLS handshakes, by kind: `full` or `resumed`.
    pub tls_handshakes: Family<KindLabel, Counter>,
    /// Authentication decisions.
    pub auth_decisions: Family<AuthLabels, Counter>,
    /// JWKS fetches by issuer and result.
    pub jwks_fetches: Family<NameResult, Counter>,
    /// JWKS keys skipped at load, by issuer and reason (weak, not for signatures, ...).
    pub jwks_keys_refused: Family<IssuerReason, Counter>,
    /// Seconds since each issuer's key set was last fetched successfully.
    pub jwks_age: Family<IssuerLabel, Gauge<f64, AtomicU64>>,
    /// Earliest expiry seen per service presenting a valid token.
    pub service_token_expiry: Family<ServiceLabel, Gauge>,
    /// Vendor logins by provider and result.
    pub upstream_logins: Family<NameResult, Counter>,
    /// Vendor logins by provider and why they happened.
    pub upstream_login_reasons: Family<ProviderReason, Counter>,
    /// Logins a vendor `401` would have caused within `relogin_interval`, not made.
    pub upstream_logins_suppressed: Family<ProviderLabel, Counter>,
    /// Vendor login duration by provider.
    pub upstream_login_duration: Family<ProviderLabel, Histogram>,
    /// Each provider's current token expiry.
    pub upstream_token_expiry: Family<ProviderLabel, Gauge>,
    /// Upstream failures by route and kind.
    pub upstream_errors: Family<UpstreamErrorLabels, Counter>,
    /// Requests refused by a rate limit.
    pub rate_limited: Family<RateLimitLabels, Counter>,
    /// Requests whose limits each replica kept on its own share because Redis failed.
    pub rate_limit_fallbacks: Family<RouteLabel, Counter>,
    /// 1 while the fleet's limits are kept in Redis, 0 while each replica keeps its share.
    pub rate_limits_shared_up: Gauge,
    jwks_last_success: std::sync::Mutex<Vec<(String, SystemTime)>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric, in the format the scraper asked for: OpenMetrics when its `Accept` names
    /// `application/openmetrics-text` (as Prometheus does), else the classic text format 0.0.4
    /// that every other scraper parses. Returns the body and its content type.
    pub fn render_for(&self, accept: Option<&str>) -> (String, &'static str) {
        let openmetrics = self.render();
        if accept.is_some_and(|a| {
            a.to_ascii_lowercase()
                .contains("application/openmetrics-text")
        }) {
            return (openmetrics, OPENMETRICS_CONTENT_TYPE);
        }
        (to_text_format(&openmetrics), TEXT_CONTENT_TYPE)
    }

    /// The OpenMetrics exposition of every metric.
    pub fn render(&self) -> String {
        if let Ok(last) = self.jwks_last_success.lock() {
            for (issuer, at) in last.iter() {
                let age = at.elapsed().map_or(0.0, |d| d.as_secs_f64());
                self.jwks_age
                    .get_or_create(&IssuerLabel {
                        issuer: issuer.clone(),
                    })
                    .set(age);
            }
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// `Content-Type` of the OpenMetrics exposition.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// `Content-Type` of the classic Prometheus text exposition.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Rewrites prometheus-client's OpenMetrics text as text format 0.0.4: a counter family is
/// named after its samples (`x_total`, so its HELP and TYPE apply to them), and the
/// OpenMetrics-only `# UNIT` and `# EOF` lines go.
fn to_text_format(openmetrics: &str) -> String {
    let lines: Vec<&str> = openmetrics.lines().collect();
    let mut out = String::with_capacity(openmetrics.len() + 256);
    for (i, line) in lines.iter().enumerate() {
        if *line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let counter_family = |l: &str| {
            l.strip_prefix("# TYPE ")
                .and_then(|rest| rest.strip_suffix(" counter"))
                .map(str::to_owned)
        };
        // HELP precedes TYPE: look at the TYPE line that follows this HELP line.
        let family = if line.starts_with("# HELP ") {
            lines.get(i + 1).and_then(|next| counter_family(next))
        } else {
            counter_family(line)
        };
        // An exemplar (` # {trace_id="..."} 0.0123`) is OpenMetrics only.
        let line = line.split_once(" # {").map_or(*line, |(sample, _)| sample);
        match family {
            Some(name) if !name.ends_with("_total") => {
                let prefix = if line.starts_with("# HELP ") {
                    "# HELP "
                } else {
                    "# TYPE "
                };
                out.push_str(prefix);
                out.push_str(&name);
                out.push_str("_total");
                out.push_str(&line[prefix.len() + name.len()..]);
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_labels_are_bounded_by_the_registry() {
        let metrics = Metrics::new();
        metrics.set_service_registry(&["orders".to_owned()]);
        metrics.record_service_request("orders", "allowed");
        for i in 0..50 {
            metrics.record_service_request(&format!("made-up-{i}"), "forbidden");
        }
        let text = metrics.render();
        assert!(
            text.contains(
                r#"tollgate_service_requests_total{service="orders",result="allowed"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"tollgate_service_requests_total{service="other",result="forbidden"} 50"#
            ),
            "{text}"
        );
        assert!(
            !text.contains("made-up"),
            "a caller cannot grow the label set"
        );
    }
}

//! Building the registry: every family with its name and help text, under the `tollgate`
//! prefix. prometheus-client writes families in the order they were registered, so the helpers
//! below run in exposition order and each registers a run of related families.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::Metrics;
use super::services::ServiceRegistry;

/// The buckets of every duration histogram.
/// 100 µs … ~13 s
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.0001, 2.5, 14)
}

fn latency_histogram() -> Histogram {
    Histogram::new(latency_buckets())
}

fn latency_with_exemplars() -> super::LatencyWithExemplars {
    super::LatencyWithExemplars::new(latency_buckets())
}

impl Metrics {
    /// A fresh registry with every metric registered under the `tollgate` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tollgate");
        let mut metrics = Self::unregistered();
        // Changing this order changes the order of the exposition that scrapers see.
        metrics.register_requests(&mut registry);
        metrics.register_services(&mut registry);
        metrics.register_state(&mut registry);
        metrics.register_request_health(&mut registry);
        metrics.register_connections(&mut registry);
        metrics.register_auth(&mut registry);
        metrics.register_upstream(&mut registry);
        metrics.register_rate_limits(&mut registry);
        metrics.registry = registry;
        metrics
    }

    /// Every series at zero, none of them registered yet.
    fn unregistered() -> Self {
        Self {
            requests: Family::default(),
            request_duration: Family::new_with_constructor(latency_with_exemplars),
            upstream_duration: Family::new_with_constructor(latency_histogram),
            in_flight: Gauge::default(),
            request_panics: Counter::default(),
            service_requests: Family::default(),
            service_last_seen: Family::default(),
            service_registry: std::sync::RwLock::new(ServiceRegistry::default()),
            revocations_in_force: Gauge::default(),
            revocation_load_failures: Counter::default(),
            revocation_entries_unreadable: Gauge::default(),
            state_store_up: {
                // Up until the store is first found unreachable.
                let up = Gauge::default();
                up.set(1);
                up
            },
            connections: Family::default(),
            connections_parked: Gauge::default(),
            tls_handshakes: Family::default(),
            connections_closed: Family::default(),
            tls_reloads: Family::default(),
            auth_decisions: Family::default(),
            jwks_fetches: Family::default(),
            jwks_keys_refused: Family::default(),
            jwks_age: Family::default(),
            service_token_expiry: Family::default(),
            upstream_logins: Family::default(),
            upstream_login_reasons: Family::default(),
            upstream_logins_suppressed: Family::default(),
            upstream_login_duration: Family::new_with_constructor(latency_histogram),
            upstream_token_expiry: Family::default(),
            upstream_errors: Family::default(),
            rate_limited: Family::default(),
            rate_limit_fallbacks: Family::default(),
            rate_limits_shared_up: {
                let up = Gauge::default();
                up.set(1);
                up
            },
            jwks_last_success: std::sync::Mutex::new(Vec::new()),
            registry: Registry::default(),
        }
    }

    /// Requests by route, method and status, and their durations.
    fn register_requests(&self, registry: &mut Registry) {
        registry.register(
            "requests",
            "Requests by route, method and status",
            self.requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Request duration by route",
            self.request_duration.clone(),
        );
        registry.register(
            "upstream_duration_seconds",
            "Time to the upstream's response head, by route",
            self.upstream_duration.clone(),
        );
    }

    /// Requests made with service tokens, by service of the registry.
    fn register_services(&self, registry: &mut Registry) {
        registry.register(
            "service_requests",
            "Requests with a valid service token by service (registry, else other) and result",
            self.service_requests.clone(),
        );
        registry.register(
            "service_last_seen_timestamp_seconds",
            "When each service last presented a valid token",
            self.service_last_seen.clone(),
        );
    }

    /// The shared state store and the revocations read from it.
    fn register_state(&self, registry: &mut Registry) {
        registry.register(
            "revocations_in_force",
            "Revoked tokens and services the gateway refuses",
            self.revocations_in_force.clone(),
        );
        registry.register(
            "revocation_load_failures",
            "Times the revocation list could not be read; the previous one stayed in force",
            self.revocation_load_failures.clone(),
        );
        registry.register(
            "revocation_entries_unreadable",
            "Stored revocation entries skipped in the last list read because they could not be read (`tollgate token revoked` names them)",
            self.revocation_entries_unreadable.clone(),
        );
        registry.register(
            "state_store_up",
            "1 while the state store (revocations) answers; while 0 the last list read stays in force",
            self.state_store_up.clone(),
        );
    }

    /// Requests being handled, and those whose handling panicked.
    fn register_request_health(&self, registry: &mut Registry) {
        registry.register(
            "request_panics",
            "Requests whose handling panicked and were answered 500 (each one is a bug)",
            self.request_panics.clone(),
        );
        registry.register(
            "requests_in_flight",
            "Requests being handled",
            self.in_flight.clone(),
        );
        registry.register(
            "log_lines_dropped",
            "Access and audit log lines dropped because stderr was not read fast enough (the writer holds at most 4 MiB)",
            crate::telemetry::writer::DROPPED.clone(),
        );
    }

    /// Client connections and the TLS certificates they are served with.
    fn register_connections(&self, registry: &mut Registry) {
        registry.register(
            "connections_open",
            "Open client connections by protocol",
            self.connections.clone(),
        );
        registry.register(
            "connections_closed",
            "Client connections the gateway closed, by reason (idle, max_age, client_ip_limit, tls_handshake)",
            self.connections_closed.clone(),
        );
        registry.register(
            "tls_reloads",
            "TLS certificate reloads after their files changed, by result (a failed one keeps the previous certificates)",
            self.tls_reloads.clone(),
        );
        registry.register(
            "tls_handshakes",
            "Completed TLS handshakes, by kind (full, or resumed from a session ticket)",
            self.tls_handshakes.clone(),
        );
        registry.register(
            "connections_parked",
            "Idle HTTP/1 keep-alive connections holding no buffers while they wait",
            self.connections_parked.clone(),
        );
    }

    /// Authentication: the decisions, the issuers' key sets (JWKS) and the service tokens.
    fn register_auth(&self, registry: &mut Registry) {
        registry.register(
            "auth_decisions",
            "Authentication decisions by route, result and token type",
            self.auth_decisions.clone(),
        );
        registry.register(
            "jwks_fetches",
            "JWKS fetches by issuer and result",
            self.jwks_fetches.clone(),
        );
        registry.register(
            "jwks_keys_refused",
            "JWKS keys skipped at load by issuer and reason: weak, not for signatures, wrong curve",
            self.jwks_keys_refused.clone(),
        );
        registry.register(
            "jwks_age_seconds",
            "Seconds since the issuer's key set was last fetched",
            self.jwks_age.clone(),
        );
        registry.register(
            "service_token_expiry_timestamp_seconds",
            "Earliest expiry (unix seconds) of the valid tokens each service presented",
            self.service_token_expiry.clone(),
        );
    }

    /// The upstream side: vendor logins, the vendor tokens they got, and upstream failures.
    fn register_upstream(&self, registry: &mut Registry) {
        registry.register(
            "upstream_logins",
            "Vendor logins by provider and result",
            self.upstream_logins.clone(),
        );
        registry.register(
            "upstream_login_reasons",
            "Vendor logins by provider and reason: initial, refresh, rejected_by_upstream",
            self.upstream_login_reasons.clone(),
        );
        registry.register(
            "upstream_logins_suppressed",
            "Re-logins a vendor 401 asked for within relogin_interval, not made",
            self.upstream_logins_suppressed.clone(),
        );
        registry.register(
            "upstream_login_duration_seconds",
            "Vendor login duration by provider",
            self.upstream_login_duration.clone(),
        );
        registry.register(
            "upstream_token_expiry_timestamp_seconds",
            "Expiry (unix seconds) of each provider's current token",
            self.upstream_token_expiry.clone(),
        );
        registry.register(
            "upstream_errors",
            "Upstream failures by route and kind",
            self.upstream_errors.clone(),
        );
    }

    /// Rate limits: refusals by limit, and the Redis fallback.
    fn register_rate_limits(&self, registry: &mut Registry) {
        registry.register(
            "rate_limited",
            "Requests refused by a rate limit, by route, limit and what it keys callers by",
            self.rate_limited.clone(),
        );
        registry.register(
            "rate_limit_fallbacks",
            "Requests whose limits this replica kept on its own share because Redis failed",
            self.rate_limit_fallbacks.clone(),
        );
        registry.register(
            "rate_limits_shared_up",
            "1 while the fleet's rate limits are kept in Redis, 0 while each replica keeps its share",
            self.rate_limits_shared_up.clone(),
        );
    }
}

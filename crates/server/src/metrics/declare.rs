//! Series whose labels the config fixes, created at zero when a gateway is built: a Prometheus
//! family shows nothing until its first sample, so a dashboard would show "no data" and an
//! alert on `rate(...) > 0` could not tell a healthy gateway from a missing one.

use tollgate_config::Config;

use super::{
    AuthLabels, KindLabel, Metrics, NameResult, ProtocolLabel, ProviderLabel, RateLimitLabels,
    ReasonLabel, ResultLabel, RouteLabel, UpstreamErrorLabels,
};

/// Why the gateway closes a client connection (`connections_closed_total{reason}`).
const CLOSE_REASONS: [&str; 4] = ["idle", "max_age", "client_ip_limit", "tls_handshake"];
/// The kinds of `upstream_errors_total`.
const UPSTREAM_ERRORS: [&str; 4] = ["connect", "timeout", "reset", "overloaded"];
/// `success` and `failure`.
const RESULTS: [&str; 2] = ["success", "failure"];

impl Metrics {
    /// Creates at zero every series whose labels `config` fixes: per route, its allowed
    /// decisions and its upstream error kinds; per JWKS issuer, its fetches; per provider, its
    /// logins; the connection protocols and close reasons; TLS reloads when there is TLS.
    /// Series already there keep their values (a reload declares again).
    pub fn declare(&self, config: &Config) {
        for route in &config.routes {
            for token_type in ["access", "service", "none"] {
                let _ = self.auth_decisions.get_or_create(&AuthLabels {
                    route: route.name.clone(),
                    result: "allowed",
                    token_type,
                });
            }
            self.declare_limits(route);
            for kind in UPSTREAM_ERRORS {
                let _ = self.upstream_errors.get_or_create(&UpstreamErrorLabels {
                    route: route.name.clone(),
                    kind,
                });
            }
        }
        for issuer in config.issuers.iter().filter(|i| i.jwks.is_some()) {
            for result in RESULTS {
                let name = issuer.name.clone();
                let _ = self
                    .jwks_fetches
                    .get_or_create(&NameResult { name, result });
            }
        }
        for provider in &config.providers {
            for result in RESULTS {
                let name = provider.name.clone();
                let _ = self
                    .upstream_logins
                    .get_or_create(&NameResult { name, result });
            }
            let provider = provider.name.clone();
            let _ = self
                .upstream_logins_suppressed
                .get_or_create(&ProviderLabel { provider });
        }
        for protocol in ["http1", "http2"] {
            let _ = self.connections.get_or_create(&ProtocolLabel { protocol });
        }
        for reason in CLOSE_REASONS {
            let _ = self
                .connections_closed
                .get_or_create(&ReasonLabel { reason });
        }
        if config.tls.is_some() {
            for result in RESULTS {
                let _ = self.tls_reloads.get_or_create(&ResultLabel { result });
            }
            for kind in ["full", "resumed"] {
                let _ = self.tls_handshakes.get_or_create(&KindLabel { kind });
            }
        }
    }

    /// A route's rate limit refusals and Redis fallbacks, at zero.
    fn declare_limits(&self, route: &tollgate_config::Route) {
        for limit in &route.rate_limits {
            let _ = self.rate_limited.get_or_create(&RateLimitLabels {
                route: route.name.clone(),
                limit: limit.name.clone(),
                by: limit.by.as_str(),
            });
        }
        if !route.rate_limits.is_empty() {
            let _ = self.rate_limit_fallbacks.get_or_create(&RouteLabel {
                route: route.name.clone(),
            });
        }
    }
}

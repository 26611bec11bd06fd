//! What the gateway records as it serves: requests, connections, TLS reloads, and the
//! background work behind them (key set fetches, vendor logins).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::found::Found;
use super::{
    KindLabel, MethodLabel, Metrics, NameResult, ProtocolLabel, ProviderLabel, RateLimitLabels,
    ReasonLabel, RequestLabels, ResultLabel, RouteHandles, RouteLabel, TraceExemplar,
};
use tollgate_core::trace::LimitNote;
use tollgate_state::ratelimit::Keeper;

impl Metrics {
    /// What a route's rate limits did to one request: the refusal, and whether Redis failed
    /// them (only a refusal or a fallback is counted: nothing is recorded for a plain pass).
    pub fn record_limits(&self, route: &tollgate_config::Route, limits: &LimitNote) {
        if let Some((limit, by)) = &limits.refused_by {
            self.rate_limited
                .get_or_create(&RateLimitLabels {
                    route: route.name.clone(),
                    limit: limit.clone(),
                    by: by.as_str(),
                })
                .inc();
        }
        if limits.keeper == Keeper::Fallback {
            self.rate_limit_fallbacks
                .get_or_create(&RouteLabel {
                    route: route.name.clone(),
                })
                .inc();
        }
    }

    /// The histograms of `route`.
    pub fn route_handles(&self, route: &Arc<str>) -> RouteHandles {
        let label = RouteLabel {
            route: route.clone(),
        };
        RouteHandles {
            duration: self.request_duration.get_or_create(&label).clone(),
            upstream: self.upstream_duration.get_or_create(&label).clone(),
            requests: Found::default(),
            auth_decisions: Found::default(),
        }
    }

    /// Records one finished request (`handles`: the route's, when a route matched).
    pub fn record_request(
        &self,
        route: &Arc<str>,
        handles: Option<&RouteHandles>,
        method: &http::Method,
        status: u16,
        duration: Duration,
        exemplar: Option<&str>,
    ) {
        let exemplar = exemplar.map(|trace_id| TraceExemplar {
            trace_id: trace_id.to_owned(),
        });
        let method = MethodLabel::from(method);
        let counter = || {
            self.requests
                .get_or_create(&RequestLabels {
                    route: route.clone(),
                    method,
                    status,
                })
                .clone()
        };
        match handles {
            Some(handles) => {
                handles.requests.inc(&(method, status), counter);
                handles
                    .duration
                    .observe(duration.as_secs_f64(), exemplar, None);
            }
            None => {
                counter().inc();
                self.request_duration
                    .get_or_create(&RouteLabel {
                        route: route.clone(),
                    })
                    .observe(duration.as_secs_f64(), exemplar, None);
            }
        }
    }

    /// Counts a TLS certificate reload.
    pub fn record_tls_reload(&self, ok: bool) {
        self.tls_reloads
            .get_or_create(&ResultLabel {
                result: if ok { "success" } else { "failure" },
            })
            .inc();
    }

    /// Counts a completed TLS handshake.
    pub fn record_tls_handshake(&self, resumed: bool) {
        self.tls_handshakes
            .get_or_create(&KindLabel {
                kind: if resumed { "resumed" } else { "full" },
            })
            .inc();
    }

    /// Counts a client connection the gateway closed.
    pub fn connection_closed(&self, reason: &'static str) {
        self.connections_closed
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// Records a JWKS fetch.
    pub fn record_jwks_fetch(&self, issuer: &str, ok: bool) {
        self.jwks_fetches
            .get_or_create(&NameResult {
                name: issuer.to_owned(),
                result: if ok { "success" } else { "failure" },
            })
            .inc();
        if ok && let Ok(mut last) = self.jwks_last_success.lock() {
            match last.iter_mut().find(|(name, _)| name == issuer) {
                Some(entry) => entry.1 = SystemTime::now(),
                None => last.push((issuer.to_owned(), SystemTime::now())),
            }
        }
    }

    /// When `issuer`'s key set was last fetched successfully.
    pub fn jwks_last_success(&self, issuer: &str) -> Option<SystemTime> {
        let last = self.jwks_last_success.lock().ok()?;
        last.iter()
            .find(|(name, _)| name == issuer)
            .map(|(_, at)| *at)
    }

    /// Records a vendor login attempt.
    pub fn record_login(&self, provider: &str, ok: bool, duration: Duration) {
        self.upstream_logins
            .get_or_create(&NameResult {
                name: provider.to_owned(),
                result: if ok { "success" } else { "failure" },
            })
            .inc();
        self.upstream_login_duration
            .get_or_create(&ProviderLabel {
                provider: provider.to_owned(),
            })
            .observe(duration.as_secs_f64());
    }

    /// Records a provider's current token expiry.
    pub fn record_token_expiry(&self, provider: &str, expires_at: SystemTime) {
        let secs = expires_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.upstream_token_expiry
            .get_or_create(&ProviderLabel {
                provider: provider.to_owned(),
            })
            .set(i64::try_from(secs).unwrap_or(i64::MAX));
    }
}

/// Counts a connection under its protocol from its first request until it closes.
pub struct ConnectionGuard {
    metrics: Arc<Metrics>,
    protocol: std::sync::OnceLock<&'static str>,
}

impl ConnectionGuard {
    /// A guard that counts nothing until [`ConnectionGuard::observe`].
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            metrics,
            protocol: std::sync::OnceLock::new(),
        }
    }

    /// Notes the connection's protocol from a request's version (first call counts).
    pub fn observe(&self, version: http::Version) {
        if self.protocol.get().is_some() {
            return;
        }
        let protocol = if version == http::Version::HTTP_2 {
            "http2"
        } else {
            "http1"
        };
        if self.protocol.set(protocol).is_ok() {
            self.metrics
                .connections
                .get_or_create(&ProtocolLabel { protocol })
                .inc();
        }
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        if let Some(protocol) = self.protocol.get() {
            self.metrics
                .connections
                .get_or_create(&ProtocolLabel { protocol })
                .dec();
        }
    }
}

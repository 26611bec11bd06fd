//! Prometheus metrics (prometheus-client): the registry and typed handles for every series.
//! Label sets are bounded: route names, methods from a fixed list, status codes, issuer,
//! provider and service names from the config or from verified tokens; never raw paths, user
//! ids or tokens.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// HTTP methods as a bounded label.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(clippy::upper_case_acronyms)]
pub enum MethodLabel {
    /// GET
    GET,
    /// HEAD
    HEAD,
    /// POST
    POST,
    /// PUT
    PUT,
    /// PATCH
    PATCH,
    /// DELETE
    DELETE,
    /// OPTIONS
    OPTIONS,
    /// Anything else.
    OTHER,
}

impl From<&http::Method> for MethodLabel {
    fn from(method: &http::Method) -> Self {
        match *method {
            http::Method::GET => Self::GET,
            http::Method::HEAD => Self::HEAD,
            http::Method::POST => Self::POST,
            http::Method::PUT => Self::PUT,
            http::Method::PATCH => Self::PATCH,
            http::Method::DELETE => Self::DELETE,
            http::Method::OPTIONS => Self::OPTIONS,
            _ => Self::OTHER,
        }
    }
}

/// `route`, `method`, `status`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Route name (`-` when none matched).
    pub route: Arc<str>,
    /// Method.
    pub method: MethodLabel,
    /// Status code.
    pub status: u16,
}

/// `route`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    /// Route name.
    pub route: Arc<str>,
}

/// `protocol`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProtocolLabel {
    /// `http1` or `http2`.
    pub protocol: &'static str,
}

/// `route`, `result`, `token_type`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AuthLabels {
    /// Route name.
    pub route: Arc<str>,
    /// `allowed`, `missing`, `invalid`, `expired` or `forbidden`.
    pub result: &'static str,
    /// `access`, `service` or `none`.
    pub token_type: &'static str,
}

/// A name (issuer, provider, service) and a result.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NameResult {
    /// The name.
    pub name: String,
    /// `success` or `failure`.
    pub result: &'static str,
}

/// `issuer`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IssuerLabel {
    /// Issuer name.
    pub issuer: String,
}

/// `provider`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderLabel {
    /// Provider name.
    pub provider: String,
}

/// `reason`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// Why.
    pub reason: &'static str,
}

/// `result`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// `success` or `failure`.
    pub result: &'static str,
}

impl Metrics {
    /// Counts a TLS certificate reload.
    pub fn record_tls_reload(&self, ok: bool) {
        self.tls_reloads
            .get_or_create(&ResultLabel {
                result: if ok { "success" } else { "failure" },
            })
            .inc();
    }

    /// Counts a client connection the gateway closed.
    pub fn connection_closed(&self, reason: &'static str) {
        self.connections_closed
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }
}

/// `provider`, `reason`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderReason {
    /// Provider name.
    pub provider: String,
    /// `initial`, `refresh` or `rejected_by_upstream`.
    pub reason: &'static str,
}

/// `issuer`, `reason`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IssuerReason {
    /// Issuer name.
    pub issuer: String,
    /// Why (see [`tollgate_auth::keys::KeyRefusal::reason`]).
    pub reason: &'static str,
}

/// `service`, `result`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceResult {
    /// A service of the registry (`[tokens] services`), or `other` (shared: no allocation).
    pub service: Arc<str>,
    /// `allowed`, `forbidden` or `revoked`.
    pub result: &'static str,
}

/// `service`, from the registry.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceSeen {
    /// A service of the registry, or `other`.
    pub service: Arc<str>,
}

/// `service`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceLabel {
    /// Service name from a verified service token.
    pub service: String,
}

/// `route`, `kind`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamErrorLabels {
    /// Route name.
    pub route: Arc<str>,
    /// `connect`, `timeout` or `reset`.
    pub kind: &'static str,
}

/// A route's histograms, resolved once when the gateway is built so that requests skip the
/// label lookup (a hash and a lock) for them.
#[derive(Clone, Debug)]
pub struct RouteHandles {
    /// `request_duration_seconds{route}`
    pub duration: Histogram,
    /// `upstream_duration_seconds{route}`
    pub upstream: Histogram,
}

/// Every metric tollgate exports.
pub struct Metrics {
    registry: Registry,
    /// Requests by route, method, status.
    pub requests: Family<RequestLabels, Counter>,
    /// Request duration by route.
    pub request_duration: Family<RouteLabel, Histogram>,
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
    jwks_last_success: std::sync::Mutex<Vec<(String, SystemTime)>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn latency_histogram() -> Histogram {
    // 100 µs … ~13 s
    Histogram::new(exponential_buckets(0.0001, 2.5, 14))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered under the `tollgate` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tollgate");
        let m = Self {
            requests: Family::default(),
            request_duration: Family::new_with_constructor(latency_histogram),
            upstream_duration: Family::new_with_constructor(latency_histogram),
            in_flight: Gauge::default(),
            request_panics: Counter::default(),
            service_requests: Family::default(),
            service_last_seen: Family::default(),
            service_registry: std::sync::RwLock::new(ServiceRegistry::default()),
            revocations_in_force: Gauge::default(),
            revocation_load_failures: Counter::default(),
            state_store_up: {
                let up = Gauge::default();
                up.set(1);
                up
            },
            connections: Family::default(),
            connections_parked: Gauge::default(),
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
            jwks_last_success: std::sync::Mutex::new(Vec::new()),
            registry: Registry::default(),
        };
        registry.register(
            "requests",
            "Requests by route, method and status",
            m.requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Request duration by route",
            m.request_duration.clone(),
        );
        registry.register(
            "upstream_duration_seconds",
            "Time to the upstream's response head, by route",
            m.upstream_duration.clone(),
        );
        registry.register(
            "service_requests",
            "Requests with a valid service token by service (registry, else other) and result",
            m.service_requests.clone(),
        );
        registry.register(
            "service_last_seen_timestamp_seconds",
            "When each service last presented a valid token",
            m.service_last_seen.clone(),
        );
        registry.register(
            "revocations_in_force",
            "Revoked tokens and services the gateway refuses",
            m.revocations_in_force.clone(),
        );
        registry.register(
            "revocation_load_failures",
            "Times the revocation list could not be read; the previous one stayed in force",
            m.revocation_load_failures.clone(),
        );
        registry.register(
            "state_store_up",
            "1 while the state store (revocations) answers; while 0 the last list read stays in force",
            m.state_store_up.clone(),
        );
        registry.register(
            "request_panics",
            "Requests whose handling panicked and were answered 500 (each one is a bug)",
            m.request_panics.clone(),
        );
        registry.register(
            "requests_in_flight",
            "Requests being handled",
            m.in_flight.clone(),
        );
        registry.register(
            "connections_open",
            "Open client connections by protocol",
            m.connections.clone(),
        );
        registry.register(
            "connections_closed",
            "Client connections the gateway closed, by reason (idle, max_age, client_ip_limit, tls_handshake)",
            m.connections_closed.clone(),
        );
        registry.register(
            "tls_reloads",
            "TLS certificate reloads after their files changed, by result (a failed one keeps the previous certificates)",
            m.tls_reloads.clone(),
        );
        registry.register(
            "connections_parked",
            "Idle HTTP/1 keep-alive connections holding no buffers while they wait",
            m.connections_parked.clone(),
        );
        registry.register(
            "auth_decisions",
            "Authentication decisions by route, result and token type",
            m.auth_decisions.clone(),
        );
        registry.register(
            "jwks_fetches",
            "JWKS fetches by issuer and result",
            m.jwks_fetches.clone(),
        );
        registry.register(
            "jwks_keys_refused",
            "JWKS keys skipped at load by issuer and reason: weak, not for signatures, wrong curve",
            m.jwks_keys_refused.clone(),
        );
        registry.register(
            "jwks_age_seconds",
            "Seconds since the issuer's key set was last fetched",
            m.jwks_age.clone(),
        );
        registry.register(
            "service_token_expiry_timestamp_seconds",
            "Earliest expiry (unix seconds) of the valid tokens each service presented",
            m.service_token_expiry.clone(),
        );
        registry.register(
            "upstream_logins",
            "Vendor logins by provider and result",
            m.upstream_logins.clone(),
        );
        registry.register(
            "upstream_login_reasons",
            "Vendor logins by provider and reason: initial, refresh, rejected_by_upstream",
            m.upstream_login_reasons.clone(),
        );
        registry.register(
            "upstream_logins_suppressed",
            "Re-logins a vendor 401 asked for within relogin_interval, not made",
            m.upstream_logins_suppressed.clone(),
        );
        registry.register(
            "upstream_login_duration_seconds",
            "Vendor login duration by provider",
            m.upstream_login_duration.clone(),
        );
        registry.register(
            "upstream_token_expiry_timestamp_seconds",
            "Expiry (unix seconds) of each provider's current token",
            m.upstream_token_expiry.clone(),
        );
        registry.register(
            "upstream_errors",
            "Upstream failures by route and kind",
            m.upstream_errors.clone(),
        );
        Self { registry, ..m }
    }

    /// The histograms of `route`.
    pub fn route_handles(&self, route: &Arc<str>) -> RouteHandles {
        let label = RouteLabel {
            route: route.clone(),
        };
        RouteHandles {
            duration: self.request_duration.get_or_create(&label).clone(),
            upstream: self.upstream_duration.get_or_create(&label).clone(),
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
    ) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.clone(),
                method: method.into(),
                status,
            })
            .inc();
        match handles {
            Some(handles) => handles.duration.observe(duration.as_secs_f64()),
            None => self
                .request_duration
                .get_or_create(&RouteLabel {
                    route: route.clone(),
                })
                .observe(duration.as_secs_f64()),
        }
    }

    /// Sets the service registry that bounds the `service` label (a reload may change it).
    /// Each service's series are resolved here, once, so a request only finds its handles.
    pub fn set_service_registry(&self, services: &[String]) {
        let handles = |service: &str| self.service_handles(service);
        let registry = ServiceRegistry {
            services: services
                .iter()
                .map(|s| (Arc::<str>::from(s.as_str()), handles(s)))
                .collect(),
            other: Some(handles("other")),
        };
        if let Ok(mut current) = self.service_registry.write() {
            *current = registry;
        }
    }

    fn service_handles(&self, service: &str) -> ServiceHandles {
        let service: Arc<str> = Arc::from(service);
        let counter = |result: &'static str| {
            self.service_requests
                .get_or_create(&ServiceResult {
                    service: service.clone(),
                    result,
                })
                .clone()
        };
        ServiceHandles {
            allowed: counter("allowed"),
            forbidden: counter("forbidden"),
            revoked: counter("revoked"),
            last_seen: self
                .service_last_seen
                .get_or_create(&ServiceSeen {
                    service: service.clone(),
                })
                .clone(),
        }
    }

    /// Counts a request made with `service`'s valid token; services outside the registry are
    /// counted as `other`, so no caller can grow the label set. Returns the time it recorded
    /// (seconds since the epoch), for the usage log.
    pub fn record_service_request(&self, service: &str, result: &'static str) -> u64 {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let Ok(registry) = self.service_registry.read() else {
            return now;
        };
        let found = registry
            .services
            .iter()
            .find(|(name, _)| &**name == service)
            .map(|(_, handles)| handles);
        let handles = match (found, &registry.other) {
            (Some(handles), _) | (None, Some(handles)) => handles,
            (None, None) => {
                drop(registry);
                self.set_service_registry(&[]);
                return self.record_service_request(service, result);
            }
        };
        match result {
            "revoked" => {
                handles.revoked.inc();
                return now;
            }
            "allowed" => handles.allowed.inc(),
            _ => handles.forbidden.inc(),
        };
        handles
            .last_seen
            .set(i64::try_from(now).unwrap_or(i64::MAX));
        now
    }

    /// Records a service token's expiry, keeping the earliest seen.
    pub fn record_service_token(&self, service: &str, expires_at: u64) {
        let gauge = self.service_token_expiry.get_or_create(&ServiceLabel {
            service: service.to_owned(),
        });
        let expires_at = i64::try_from(expires_at).unwrap_or(i64::MAX);
        let current = gauge.get();
        if current == 0 || expires_at < current {
            gauge.set(expires_at);
        }
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

/// A service's series, resolved once.
#[derive(Debug)]
struct ServiceHandles {
    allowed: Counter,
    forbidden: Counter,
    revoked: Counter,
    last_seen: Gauge,
}

/// The services that get their own label (`[tokens] services`), and `other` for the rest
/// (`None` until the registry is first set).
#[derive(Debug, Default)]
struct ServiceRegistry {
    services: Vec<(Arc<str>, ServiceHandles)>,
    other: Option<ServiceHandles>,
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

/// The verifier's background events.
impl tollgate_auth::AuthEvents for Metrics {
    fn jwks_fetched(&self, issuer: &str, ok: bool) {
        self.record_jwks_fetch(issuer, ok);
    }

    fn jwks_key_refused(&self, issuer: &str, reason: &'static str) {
        self.jwks_keys_refused
            .get_or_create(&IssuerReason {
                issuer: issuer.to_owned(),
                reason,
            })
            .inc();
    }

    fn service_token_verified(&self, service: &str, expires_at: u64) {
        self.record_service_token(service, expires_at);
    }
}

/// The vendor credential caches' events.
impl tollgate_core::credentials::events::CredentialEvents for Metrics {
    fn login_started(&self, provider: &str, reason: &'static str) {
        self.upstream_login_reasons
            .get_or_create(&ProviderReason {
                provider: provider.to_owned(),
                reason,
            })
            .inc();
    }

    fn login_finished(&self, provider: &str, ok: bool, duration: Duration) {
        self.record_login(provider, ok, duration);
    }

    fn login_suppressed(&self, provider: &str) {
        self.upstream_logins_suppressed
            .get_or_create(&ProviderLabel {
                provider: provider.to_owned(),
            })
            .inc();
    }

    fn token_obtained(&self, provider: &str, expires_at: SystemTime) {
        self.record_token_expiry(provider, expires_at);
    }
}

/// The state stores' background events, as gauges and counters.
impl tollgate_state::events::StateEvents for Metrics {
    fn store_reachable(&self, up: bool) {
        self.state_store_up.set(i64::from(up));
    }

    fn revocations_loaded(&self, in_force: usize) {
        self.revocations_in_force
            .set(i64::try_from(in_force).unwrap_or(i64::MAX));
    }

    fn revocation_load_failed(&self) {
        self.revocation_load_failures.inc();
    }
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

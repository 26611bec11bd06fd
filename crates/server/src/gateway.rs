//! The gateway: the socket-free [`Core`] decides and builds the upstream request, the
//! [`Forwarder`] sends it, then one [`Outcome`] feeds the observers.
//!
//! ```text
//! Core::decide → Forwarder::send (echo | HTTP/1 pool | TLS client → tunnel) → observe(Outcome)
//! ```
//!
//! The forwarder takes the built request and the decision only; the client's request is
//! consumed by the core, so no transport can take its own view of it.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Request, Response};

use crate::conn::activity::ClientUpgrade;
use crate::conn::body::ClientBody;
use crate::metrics::Metrics;
use crate::observe::{Observers, Outcome};
use crate::otel::{RequestSpan, Tracing, UpstreamSpan};
use crate::outbound::body::ResponseBody;
use crate::outbound::forwarder::Forwarder;
use tollgate_auth::Verifier;
use tollgate_config::Config;
use tollgate_config::Upstream;
use tollgate_core::credentials::Providers;
use tollgate_core::error::AnswerIds;
use tollgate_core::forwarded::ClientIp;
use tollgate_core::{Core, GatewayError, Trace};
use tollgate_http::request_id::X_REQUEST_ID;
use tollgate_state::usage::UsageLog;

/// `RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers): the limits that apply.
static RATELIMIT_POLICY: http::HeaderName = http::HeaderName::from_static("ratelimit-policy");
/// `RateLimit`: what is left of each.
static RATELIMIT: http::HeaderName = http::HeaderName::from_static("ratelimit");

/// The gateway's request handler, shared by every connection.
#[derive(Debug)]
pub struct Gateway {
    core: Core,
    /// Every route's transport.
    forwarder: Forwarder,
    /// Metrics, audit, usage, the refusal ring and the access log, fed once per request.
    observers: Observers,
    /// The config this gateway serves (the console shows it and explains with it).
    config: Arc<Config>,
    /// OpenTelemetry traces, when `[telemetry]` turns them on.
    tracing: Option<Arc<Tracing>>,
}

/// Counts a request as in flight until dropped, also when the client goes away mid-request.
struct InFlight(prometheus_client::metrics::gauge::Gauge);

impl InFlight {
    fn enter(gauge: &prometheus_client::metrics::gauge::Gauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Gateway {
    /// Builds the handler for a validated config.
    pub fn new(config: &Config, metrics: Arc<Metrics>) -> Self {
        Self::reusing(config, metrics, None)
    }

    /// Builds the handler for a reloaded config, keeping from `previous` the upstream
    /// connection pool and the caches of unchanged issuers and providers.
    pub fn reusing(config: &Config, metrics: Arc<Metrics>, previous: Option<&Gateway>) -> Self {
        metrics.set_service_registry(&config.tokens.services);
        metrics.declare(config);
        Self {
            core: Core::new(config, metrics.clone(), previous.map(|p| &p.core)),
            forwarder: Forwarder::reusing(config, previous.map(|p| &p.forwarder)),
            observers: Observers::reusing(config, metrics, previous.map(|p| &p.observers)),
            config: Arc::new(config.clone()),
            tracing: Tracing::reusing(
                config.telemetry.as_ref(),
                previous.and_then(|p| p.tracing.as_ref()),
            ),
        }
    }

    /// The tracer, when traces are on.
    pub fn tracing(&self) -> Option<&Arc<Tracing>> {
        self.tracing.as_ref()
    }

    /// The config this gateway serves.
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// The last refusals.
    pub fn refusals(&self) -> &crate::observe::refusals::Refusals {
        &self.observers.refusals
    }

    /// The callers most often rate limited.
    pub fn limited(&self) -> &crate::observe::limited::LimitedCallers {
        &self.observers.limited
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.observers.metrics
    }

    /// Which service tokens were seen.
    pub fn usage(&self) -> &Arc<UsageLog> {
        &self.observers.usage
    }

    /// The upstream credential providers.
    pub fn providers(&self) -> &Providers {
        self.core.providers()
    }

    /// The token verifier.
    pub fn verifier(&self) -> &Verifier {
        self.core.verifier()
    }

    /// Starts the background work (see [`Core::start`]) and the usage log's writer.
    pub fn start(&self) {
        self.core.start();
        self.observers.usage.start();
    }

    /// The decision core.
    pub fn core(&self) -> &Core {
        &self.core
    }

    /// Handles one request from `peer`; never fails: errors become JSON responses.
    pub async fn handle(
        self: Arc<Self>,
        request: Request<ClientBody>,
        peer: ClientIp,
    ) -> Result<Response<ResponseBody>, Infallible> {
        let started = Instant::now();
        let _in_flight = InFlight::enter(&self.observers.metrics.in_flight);
        let method = request.method().clone();
        // The client's socket hand-off, for the tunnel if the core allows an upgrade.
        let mut request = request;
        let client_upgrade = request.extensions_mut().remove::<ClientUpgrade>();
        let span = self.tracing.as_ref().map(|t| t.start(request.headers()));
        let mut trace = Trace::default();
        // The send is awaited here, not in a helper: an async helper taking the request would
        // hold it a second time in this future, which hyper moves once per request.
        let result = match self.core.decide(request, &peer, &mut trace).await {
            Ok((decision, mut upstream)) => {
                let allow_token_cookie = decision.route.allow_token_cookie;
                // A forward-auth answer is tollgate's own and is its identity headers; an
                // upstream's answer may never carry any.
                let own_answer = matches!(decision.route.upstream, Upstream::ForwardAuth);
                let exchange = self.exchange_span(span.as_ref(), &decision, &mut upstream);
                let sent = self
                    .forwarder
                    .send(decision, upstream, client_upgrade)
                    .await;
                if let Some(exchange) = exchange {
                    let status = sent.as_ref().ok().map(|(r, _)| r.status().as_u16());
                    exchange.finish(status, sent.as_ref().err());
                }
                sent.map(|sent| self.filtered(sent, own_answer, allow_token_cookie))
            }
            Err(refusal) => Err(refusal),
        };
        Ok(self.conclude(result, &trace, &method, started, span.as_ref()))
    }

    /// The upstream exchange's span, when traces are on and there is an upstream; its context
    /// goes into the upstream request's headers.
    #[inline]
    fn exchange_span(
        &self,
        span: Option<&RequestSpan>,
        decision: &tollgate_core::Decision,
        upstream: &mut Request<ClientBody>,
    ) -> Option<UpstreamSpan> {
        match (&self.tracing, span, &decision.route.upstream) {
            (Some(tracing), Some(span), Upstream::Http { .. }) => {
                let method = upstream.method().clone();
                Some(tracing.upstream(span, &method, upstream.headers_mut()))
            }
            _ => None,
        }
    }

    /// The response without what the upstream may not say to the client (identity headers,
    /// token cookies unless allowed); tollgate's own forward-auth answer is left as it is.
    #[inline]
    fn filtered(
        &self,
        (mut response, upstream_time): (Response<ResponseBody>, Option<Duration>),
        own_answer: bool,
        allow_token_cookie: bool,
    ) -> (Response<ResponseBody>, Option<Duration>) {
        if !own_answer {
            tollgate_core::response::filter(
                response.headers_mut(),
                self.core.verifier().claim_header_names(),
                self.core.verifier().sources(),
                allow_token_cookie,
            );
        }
        (response, upstream_time)
    }

    /// The answer to send (the upstream's, or the error's in JSON or gRPC form) with its
    /// request id; the observers and the request's span hear the outcome once.
    #[inline]
    fn conclude(
        &self,
        result: Result<(Response<ResponseBody>, Option<Duration>), GatewayError>,
        trace: &Trace,
        method: &http::Method,
        started: Instant,
        span: Option<&RequestSpan>,
    ) -> Response<ResponseBody> {
        let trace_id = span.map(RequestSpan::trace_id);
        let (mut response, upstream_time, error) = match result {
            Ok((response, upstream_time)) => (response, upstream_time, None),
            Err(error) => {
                let ids = AnswerIds {
                    request_id: trace.request_id.to_str().unwrap_or_default(),
                    trace_id,
                };
                let response = crate::outbound::body::error_response_for(&error, ids, trace.grpc);
                (response, None, Some(error))
            }
        };
        response
            .headers_mut()
            .insert(X_REQUEST_ID.clone(), trace.request_id.clone());
        if let Some((policy, state)) = trace.limits.as_ref().and_then(|l| l.headers.clone()) {
            let headers = response.headers_mut();
            headers.insert(RATELIMIT_POLICY.clone(), policy);
            headers.insert(RATELIMIT.clone(), state);
        }
        let outcome = Outcome {
            trace,
            method,
            status: response.status().as_u16(),
            error: error.as_ref(),
            elapsed: started.elapsed(),
            upstream: upstream_time,
            bytes_out: http_body::Body::size_hint(response.body()).exact(),
            trace_id,
            sampled_trace: span.and_then(RequestSpan::sampled_trace_id),
        };
        self.observers.observe(&outcome);
        if let (Some(span), Some(tracing)) = (span, &self.tracing) {
            span.finish(tracing, &outcome);
        }
        response
    }
}

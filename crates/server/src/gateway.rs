//! The gateway: the socket-free [`Core`] decides and builds the upstream request; this module
//! hands that request to one transport, then feeds the [`Outcome`] to the observers.
//!
//! ```text
//! Core::decide → echo | HTTP/1 pool | TLS client (→ upgrade tunnel) → observe(Outcome)
//! ```
//!
//! The transports take the built request and the [`Decision`] only; the client's request is
//! consumed by the core, so no transport can take its own view of it.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Request, Response};
use http_body_util::{Either, Limited};

use crate::conn::activity::ClientUpgrade;
use crate::conn::body::ClientBody;
use crate::metrics::Metrics;
use crate::observe::{Observers, Outcome};
use crate::outbound::body::{RequestBody, ResponseBody};
use crate::outbound::forward::{self, Tunnel, UpstreamClient, Via};
use crate::outbound::limit::Limit;
use tollgate_auth::Verifier;
use tollgate_config::{Config, Upstream};
use tollgate_core::credentials::Providers;
use tollgate_core::error::GatewayError;
use tollgate_core::forwarded::ClientIp;
use tollgate_core::{Core, Decision, Trace};
use tollgate_http::request_id::X_REQUEST_ID;
use tollgate_state::usage::UsageLog;

/// The gateway's request handler, shared by every connection.
#[derive(Debug)]
pub struct Gateway {
    core: Core,
    client: UpstreamClient,
    /// How each route reaches its upstream, indexed by [`Route::index`].
    vias: Vec<Option<Via>>,
    /// Each route's own in-flight limit, if it sets `max_requests`.
    route_limits: Vec<Option<Arc<Limit>>>,
    /// Metrics, audit, usage, the refusal ring and the access log, fed once per request.
    observers: Observers,
    /// The config this gateway serves (the console shows it and explains with it).
    config: Arc<Config>,
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
        let client = previous.map_or_else(forward::build_client, |p| p.client.clone());
        Self {
            core: Core::new(config, metrics.clone(), previous.map(|p| &p.core)),
            vias: forward::route_vias(
                &config.routes,
                &client,
                &config.limits,
                previous.map_or(&[], |p| &p.vias),
            ),
            route_limits: config
                .routes
                .iter()
                .map(|r| r.max_requests.map(Limit::new))
                .collect(),
            client,
            observers: Observers {
                refusals: match previous.map(|p| &p.observers.refusals) {
                    Some(kept) if kept.capacity() == config.console.recent_refusals => kept.clone(),
                    _ => Arc::new(crate::observe::refusals::Refusals::new(
                        config.console.recent_refusals,
                    )),
                },
                // Like the revocation list: what was seen but not written yet survives a
                // reload.
                usage: match previous.map(|p| &p.observers.usage) {
                    Some(kept) if kept.serves(&config.state, config.usage_flush_interval) => {
                        kept.clone()
                    }
                    _ => UsageLog::new(&config.state, config.usage_flush_interval),
                },
                route_metrics: config
                    .routes
                    .iter()
                    .map(|r| metrics.route_handles(&r.name))
                    .collect(),
                metrics,
            },
            config: Arc::new(config.clone()),
        }
    }

    /// The config this gateway serves.
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// The last refusals.
    pub fn refusals(&self) -> &crate::observe::refusals::Refusals {
        &self.observers.refusals
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
        let mut trace = Trace::default();
        let mut upstream_time = None;
        let result = match self.core.decide(request, &peer, &mut trace).await {
            Ok((decision, upstream)) => {
                self.transport(decision, upstream, client_upgrade, &mut upstream_time)
                    .await
            }
            Err(refusal) => Err(refusal),
        };
        let (mut response, error) = match result {
            Ok(response) => (response, None),
            Err(error) => {
                let rid = trace.request_id.to_str().unwrap_or_default();
                let response = crate::outbound::body::error_response(&error, rid);
                (response, Some(error))
            }
        };
        response
            .headers_mut()
            .insert(X_REQUEST_ID.clone(), trace.request_id.clone());
        self.observers.observe(&Outcome {
            trace: &trace,
            method: &method,
            status: response.status().as_u16(),
            error: error.as_ref(),
            elapsed: started.elapsed(),
            upstream: upstream_time,
            bytes_out: http_body::Body::size_hint(response.body()).exact(),
        });
        Ok(response)
    }

    /// Sends the built upstream request by the route's transport. Nothing here reads the
    /// client's request: it was consumed by the core.
    async fn transport(
        &self,
        decision: Decision,
        upstream: Request<ClientBody>,
        client_upgrade: Option<ClientUpgrade>,
        upstream_time: &mut Option<Duration>,
    ) -> Result<Response<ResponseBody>, GatewayError> {
        let Decision {
            route,
            upgrade,
            credential,
            ..
        } = decision;
        let upgrade = upgrade.map(|protocols| Tunnel {
            protocols,
            client: client_upgrade,
        });
        if let Upstream::Echo = route.upstream {
            return Ok(crate::echo::respond(&upstream));
        }
        let via = self
            .vias
            .get(route.index)
            .and_then(Option::as_ref)
            .ok_or(GatewayError::Internal("route has no upstream connection"))?;
        let route_permit = match self.route_limits.get(route.index).and_then(Option::as_ref) {
            Some(limit) => Some(limit.acquire("route requests in flight")?),
            None => None,
        };
        let (mut response, elapsed) = match &credential {
            // Boxed: the vendor path's future is large and would otherwise inflate every
            // request's future (moved into hyper's dispatcher once per request).
            Some(attached) => {
                Box::pin(crate::outbound::vendor::forward_with_credential(
                    via, attached, upstream, &route, upgrade,
                ))
                .await?
            }
            None => {
                let limit = usize::try_from(route.max_body_bytes).unwrap_or(usize::MAX);
                let request: Request<RequestBody> =
                    upstream.map(|body| Either::Left(Limited::new(body, limit)));
                forward::exchange(via, request, route.timeout, upgrade, route.max_body_bytes)
                    .await?
            }
        };
        tollgate_core::response::filter(
            response.headers_mut(),
            self.core.verifier().claim_header_names(),
            self.core.verifier().sources(),
            route.allow_token_cookie,
        );
        if let (Some(permit), Either::Left(body)) = (route_permit, response.body_mut()) {
            body.watcher_mut().hold(permit);
        }
        *upstream_time = Some(elapsed);
        Ok(response)
    }
}

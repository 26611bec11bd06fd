//! The request pipeline: one function per stage, run in a fixed order for every request.
//!
//! ```text
//! request id → normalise path → route → body limit → [authenticate → authorize → identity]
//!            → header hygiene → forward (or echo) → access log
//! ```
//!
//! Stages are plain functions over the request rather than a stack of boxed tower layers: the
//! order is visible in one place, decisions pass as typed values instead of re-parsed
//! headers, and the hot path pays for no per-layer boxing.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{AUTHORIZATION, CONTENT_LENGTH, HOST};
use http::request::Parts;
use http::{HeaderValue, Request, Response, Version};
use http_body_util::{Either, Limited};
use tracing::{debug, info, warn};

use crate::audit::{self, AuditContext};
use crate::auth::extract::{self, TokenSources};
use crate::auth::{AuthError, Verifier};
use crate::body::{ClientBody, RequestBody, ResponseBody};
use crate::config::{Config, Route, Upstream};
use crate::error::GatewayError;
use crate::identity::{self, Identity};
use crate::metrics::{AuthLabels, Metrics, RouteHandles, UpstreamErrorLabels};
use crate::proxy::forward::{self, UpstreamClient, Via};
use crate::proxy::headers::{self, ClientIp};
use crate::request_id::{self, X_REQUEST_ID};
use crate::routing::{RouteTable, forward_path, normalize_path};
use crate::server::activity::ClientUpgrade;
use crate::upstream_auth::{self, Providers};

/// The gateway's request handler, shared by every connection.
#[derive(Debug)]
pub struct Gateway {
    routes: RouteTable,
    max_uri_bytes: usize,
    verifier: Verifier,
    providers: Providers,
    client: UpstreamClient,
    /// How each route reaches its upstream, indexed by [`Route::index`].
    vias: Vec<Option<Via>>,
    metrics: Arc<Metrics>,
    /// Per-route metric handles, indexed by [`Route::index`].
    route_metrics: Vec<RouteHandles>,
}

/// The route label of requests no route matched.
static NO_ROUTE: std::sync::LazyLock<Arc<str>> = std::sync::LazyLock::new(|| Arc::from("-"));

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

/// What the access log reports beyond the request line.
#[derive(Default)]
struct Outcome {
    // The normalised path: never the query, which may carry credentials.
    path: Option<String>,
    route: Option<Arc<Route>>,
    upstream_time: Option<Duration>,
}

impl Gateway {
    /// Builds the handler for a validated config.
    pub fn new(config: &Config, metrics: Arc<Metrics>) -> Self {
        Self::reusing(config, metrics, None)
    }

    /// Builds the handler for a reloaded config, keeping from `previous` the upstream
    /// connection pool and the caches of unchanged issuers and providers.
    pub fn reusing(config: &Config, metrics: Arc<Metrics>, previous: Option<&Gateway>) -> Self {
        let client = previous.map_or_else(forward::build_client, |p| p.client.clone());
        Self {
            routes: RouteTable::new(&config.routes),
            max_uri_bytes: config.limits.max_uri_bytes,
            verifier: Verifier::reusing(
                &config.issuers,
                &config.identity,
                metrics.clone(),
                previous.map(|p| &p.verifier),
            ),
            providers: Providers::reusing(
                &config.providers,
                &metrics,
                previous.map(|p| &p.providers),
            ),
            vias: forward::route_vias(&config.routes, &client, previous.map_or(&[], |p| &p.vias)),
            client,
            route_metrics: config
                .routes
                .iter()
                .map(|r| metrics.route_handles(&r.name))
                .collect(),
            metrics,
        }
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The upstream credential providers.
    pub fn providers(&self) -> &Providers {
        &self.providers
    }

    /// The token verifier.
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// Handles one request from `client`; never fails: errors become JSON responses.
    pub async fn handle(
        self: Arc<Self>,
        mut request: Request<ClientBody>,
        client: ClientIp,
    ) -> Result<Response<ResponseBody>, Infallible> {
        let started = Instant::now();
        let _in_flight = InFlight::enter(&self.metrics.in_flight);
        let request_id = request_id::ensure(request.headers_mut());
        let method = request.method().clone();
        let mut outcome = Outcome::default();
        let rid = request_id.to_str().unwrap_or_default();
        let mut response = match self
            .process(request, &client, &request_id, &mut outcome)
            .await
        {
            Ok(response) => response,
            Err(error) => {
                if let (Some(kind), Some(route)) = (error.upstream_kind(), &outcome.route) {
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
                error.into_response(rid)
            }
        };
        response
            .headers_mut()
            .insert(X_REQUEST_ID.clone(), request_id.clone());
        let route_label = outcome.route.as_ref().map_or(&*NO_ROUTE, |r| &r.name);
        let handles = outcome
            .route
            .as_ref()
            .and_then(|r| self.route_metrics.get(r.index));
        self.metrics.record_request(
            route_label,
            handles,
            &method,
            response.status().as_u16(),
            started.elapsed(),
        );
        if let (Some(upstream_time), Some(handles)) = (outcome.upstream_time, handles) {
            handles.upstream.observe(upstream_time.as_secs_f64());
        }
        info!(
            target: "access",
            request_id = rid,
            method = %method,
            path = outcome.path.as_deref().unwrap_or("-"),
            route = outcome.route.as_deref().map_or("-", |r| &*r.name),
            status = response.status().as_u16(),
            duration_us = started.elapsed().as_micros() as u64,
            upstream_us = outcome.upstream_time.map(|d| d.as_micros() as u64),
            bytes_out = http_body::Body::size_hint(response.body()).exact(),
        );
        Ok(response)
    }

    async fn process(
        &self,
        request: Request<ClientBody>,
        client: &ClientIp,
        request_id: &HeaderValue,
        outcome: &mut Outcome,
    ) -> Result<Response<ResponseBody>, GatewayError> {
        let (mut parts, body) = request.into_parts();
        check_framing(&parts, self.max_uri_bytes)?;
        // Kept in the outcome for the access log; borrowed from there for the rest.
        let path: &str = outcome
            .path
            .insert(normalize_path(parts.uri.path())?.into_owned());
        let host = request_host(&parts);
        let route = self
            .routes
            .find(host.as_ref().and_then(|h| h.to_str().ok()), path)
            .ok_or(GatewayError::NoRoute)?
            .clone();
        outcome.route = Some(route.clone());
        check_declared_length(&parts, route.max_body_bytes)?;
        let audit = AuditContext {
            request_id: request_id.to_str().unwrap_or_default(),
            route: &route,
            method: &parts.method,
            path,
        };
        // Decided on the normalised path, before any header is touched or byte forwarded.
        let identity = self.authenticate(&parts, &route, &audit).await?;

        let upgrade = match parts.version {
            Version::HTTP_11 => headers::requested_upgrade(&parts.headers),
            _ => None,
        };
        // Hop-by-hop first: a `Connection: x-user-id` must not remove what is injected below.
        headers::remove_hop_by_hop(&mut parts.headers);
        // The id travels upstream even if the client listed it in `Connection`.
        parts
            .headers
            .insert(X_REQUEST_ID.clone(), request_id.clone());
        identity::strip(&mut parts.headers, self.verifier.claim_header_names());
        let query = if route.policy.forward_authorization {
            parts.uri.query().map(str::to_owned)
        } else {
            remove_credentials(&mut parts, self.verifier.sources())
        };
        if let Some(identity) = &identity {
            identity::inject(&mut parts.headers, identity);
        }
        headers::set_forwarded(&mut parts.headers, client, host.as_ref());

        let target = forward_path(&route, path);
        match &route.upstream {
            Upstream::Echo => Ok(crate::echo::respond(
                &parts.method,
                &target,
                query.as_deref(),
                &parts.headers,
            )),
            Upstream::Http {
                scheme,
                authority,
                base_path,
                ..
            } => {
                let uri = forward::upstream_uri(
                    scheme,
                    authority,
                    base_path,
                    &target,
                    parts.uri.query(),
                )?;
                let client_upgrade = match upgrade {
                    Some(protocol) => {
                        headers::set_upgrade(&mut parts.headers, protocol);
                        parts.extensions.remove::<ClientUpgrade>()
                    }
                    None => None,
                };
                self.send(
                    parts,
                    body,
                    uri,
                    &route,
                    host,
                    client_upgrade,
                    &mut outcome.upstream_time,
                )
                .await
            }
        }
    }

    /// Verifies the caller and applies the route's policy; `None` when the request goes on
    /// without an identity (public routes, exempt preflights).
    async fn authenticate(
        &self,
        parts: &Parts,
        route: &Route,
        audit: &AuditContext<'_>,
    ) -> Result<Option<Arc<Identity>>, GatewayError> {
        let policy = &route.policy;
        if policy.is_exempt_preflight(&parts.method, &parts.headers) {
            return Ok(None);
        }
        let verified =
            match extract::extract(&parts.headers, parts.uri.query(), self.verifier.sources()) {
                Err(_) => Err(AuthError::MalformedHeader),
                Ok(tokens) if tokens.is_empty() => Err(AuthError::Missing),
                Ok(tokens) => self.verifier.verify_all(&tokens).await,
            };
        let (decision, caller) = match verified {
            Ok(identity) if policy.requires_token() => match policy.authorize(&identity) {
                Ok(()) => (Ok(()), Some(identity)),
                Err(forbidden) => (Err(GatewayError::Forbidden(forbidden)), Some(identity)),
            },
            Ok(identity) => (Ok(()), Some(identity)),
            // Public routes: a bad token only means no identity headers.
            Err(_) if !policy.requires_token() => (Ok(()), None),
            Err(e) => (Err(GatewayError::Unauthenticated(e)), None),
        };
        let result = match &decision {
            Ok(()) => "allowed",
            Err(GatewayError::Forbidden(_)) => "forbidden",
            Err(GatewayError::Unauthenticated(e)) => e.kind(),
            Err(_) => "invalid",
        };
        self.metrics
            .auth_decisions
            .get_or_create(&AuthLabels {
                route: route.name.clone(),
                result,
                token_type: caller.as_ref().map_or("none", |c| c.kind.as_str()),
            })
            .inc();
        audit::record(audit, caller.as_deref(), decision.as_ref().copied());
        decision.map(|()| caller)
    }

    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        mut parts: Parts,
        body: ClientBody,
        uri: http::Uri,
        route: &Route,
        host: Option<HeaderValue>,
        client_upgrade: Option<ClientUpgrade>,
        upstream_time_out: &mut Option<Duration>,
    ) -> Result<Response<ResponseBody>, GatewayError> {
        parts.uri = uri;
        forward::set_host(&mut parts.headers, route, host);
        let via = self
            .vias
            .get(route.index)
            .and_then(Option::as_ref)
            .ok_or(GatewayError::Internal("route has no upstream connection"))?;
        let (response, upstream_time) =
            match route.upstream_auth.and_then(|i| self.providers.get(i)) {
                // Boxed: the vendor path's future is large and would otherwise inflate every
                // request's future (moved into hyper's dispatcher once per request).
                Some(credential) => {
                    Box::pin(upstream_auth::forward_with_credential(
                        via,
                        credential,
                        parts,
                        body,
                        route,
                        client_upgrade,
                    ))
                    .await?
                }
                None => {
                    let limit = usize::try_from(route.max_body_bytes).unwrap_or(usize::MAX);
                    let body: RequestBody = Either::Left(Limited::new(body, limit));
                    forward::exchange(
                        via,
                        Request::from_parts(parts, body),
                        route.timeout,
                        client_upgrade,
                        route.max_body_bytes,
                    )
                    .await?
                }
            };
        *upstream_time_out = Some(upstream_time);
        Ok(response)
    }
}

/// The host the client asked for: the absolute-form or HTTP/2 authority, else `Host`
/// (RFC 9112 §3.2.2: the target's authority wins over the header).
fn request_host(parts: &Parts) -> Option<HeaderValue> {
    match parts.uri.authority() {
        Some(authority) => HeaderValue::from_str(authority.as_str()).ok(),
        None => parts.headers.get(HOST).cloned(),
    }
}

/// Removes the caller's credentials (Authorization, token cookies); returns the query without
/// token parameters. Internal credentials never reach an upstream unless the route says so.
fn remove_credentials(parts: &mut Parts, sources: &TokenSources) -> Option<String> {
    parts.headers.remove(AUTHORIZATION);
    extract::remove_token_cookies(&mut parts.headers, sources);
    parts
        .uri
        .query()
        .and_then(|q| extract::query_without_tokens(q, sources))
}

/// Refuses a request target over the limit with 414. (`Content-Length` with
/// `Transfer-Encoding` never gets here ambiguous: hyper frames such a request by its chunked
/// encoding alone, drops the length and closes the connection after answering, RFC 9112 §6.3.)
fn check_framing(parts: &Parts, max_uri_bytes: usize) -> Result<(), GatewayError> {
    let target = parts.uri.path_and_query().map_or(0, |pq| pq.as_str().len());
    if target > max_uri_bytes {
        return Err(GatewayError::UriTooLong(max_uri_bytes));
    }
    Ok(())
}

/// Refuses a declared body over the limit before anything is sent upstream.
fn check_declared_length(parts: &Parts, limit: u64) -> Result<(), GatewayError> {
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(length) if length > limit => Err(GatewayError::BodyTooLarge { limit }),
        _ => Ok(()),
    }
}

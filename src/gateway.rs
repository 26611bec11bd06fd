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
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{CONTENT_LENGTH, HOST};
use http::request::Parts;
use http::{HeaderValue, Request, Response, Version};
use http_body_util::{Either, Limited};
use hyper::body::Incoming;
use tracing::{debug, info, warn};

use crate::body::{RequestBody, ResponseBody};
use crate::config::{Config, Route, Upstream};
use crate::error::GatewayError;
use crate::proxy::forward::{self, UpstreamClient};
use crate::proxy::headers;
use crate::request_id::{self, X_REQUEST_ID};
use crate::routing::{RouteTable, forward_path, normalize_path};

/// The gateway's request handler, shared by every connection.
#[derive(Debug)]
pub struct Gateway {
    routes: RouteTable,
    client: UpstreamClient,
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
    pub fn new(config: &Config) -> Self {
        Self {
            routes: RouteTable::new(&config.routes),
            client: forward::build_client(),
        }
    }

    /// The routes in matching order.
    pub fn routes(&self) -> &RouteTable {
        &self.routes
    }

    /// Handles one request from `remote`; never fails: errors become JSON responses.
    pub async fn handle(
        self: Arc<Self>,
        mut request: Request<Incoming>,
        remote: SocketAddr,
    ) -> Result<Response<ResponseBody>, Infallible> {
        let started = Instant::now();
        let request_id = request_id::ensure(request.headers_mut());
        let method = request.method().clone();
        let mut outcome = Outcome::default();
        let mut response = match self.process(request, remote, &mut outcome).await {
            Ok(response) => response,
            Err(error) => {
                let rid = request_id.to_str().unwrap_or_default();
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
        info!(
            target: "access",
            request_id = request_id.to_str().unwrap_or_default(),
            method = %method,
            path = outcome.path.as_deref().unwrap_or("-"),
            route = outcome.route.as_deref().map_or("-", |r| r.name.as_str()),
            status = response.status().as_u16(),
            duration_us = started.elapsed().as_micros() as u64,
            upstream_us = outcome.upstream_time.map(|d| d.as_micros() as u64),
            bytes_out = http_body::Body::size_hint(response.body()).exact(),
        );
        Ok(response)
    }

    async fn process(
        &self,
        request: Request<Incoming>,
        remote: SocketAddr,
        outcome: &mut Outcome,
    ) -> Result<Response<ResponseBody>, GatewayError> {
        let (mut parts, body) = request.into_parts();
        let path = normalize_path(parts.uri.path())?.into_owned();
        outcome.path = Some(path.clone());
        let host = request_host(&parts);
        let route = self
            .routes
            .find(host.as_ref().and_then(|h| h.to_str().ok()), &path)
            .ok_or(GatewayError::NoRoute)?
            .clone();
        outcome.route = Some(route.clone());
        check_declared_length(&parts, route.max_body_bytes)?;

        let upgrade = match parts.version {
            Version::HTTP_11 => headers::requested_upgrade(&parts.headers),
            _ => None,
        };
        headers::remove_hop_by_hop(&mut parts.headers);
        headers::set_forwarded(&mut parts.headers, remote.ip(), host.as_ref());

        let target = forward_path(&route, &path);
        match &route.upstream {
            Upstream::Echo => Ok(crate::echo::respond(
                &parts.method,
                &target,
                parts.uri.query(),
                &parts.headers,
            )),
            Upstream::Http {
                scheme,
                authority,
                base_path,
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
                        parts.extensions.remove::<hyper::upgrade::OnUpgrade>()
                    }
                    None => None,
                };
                self.send(parts, body, uri, &route, host, client_upgrade, outcome)
                    .await
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        mut parts: Parts,
        body: Incoming,
        uri: http::Uri,
        route: &Route,
        host: Option<HeaderValue>,
        client_upgrade: Option<hyper::upgrade::OnUpgrade>,
        outcome: &mut Outcome,
    ) -> Result<Response<ResponseBody>, GatewayError> {
        parts.uri = uri;
        let limit = usize::try_from(route.max_body_bytes).unwrap_or(usize::MAX);
        let body: RequestBody = Either::Left(Limited::new(body, limit));
        let mut request = Request::from_parts(parts, body);
        forward::set_host(&mut request, route.preserve_host, host);
        let (response, upstream_time) = forward::exchange(
            &self.client,
            request,
            route.timeout,
            client_upgrade,
            route.max_body_bytes,
        )
        .await?;
        outcome.upstream_time = Some(upstream_time);
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

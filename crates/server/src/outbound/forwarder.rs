//! The one way out: a [`Forwarder`] sends the request the core built by the route's transport
//! (the built-in echo, the pooled HTTP/1 connections, the TLS client with its upgrade tunnel)
//! and, on a vendor route, replays it once after a vendor `401`.

use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use http_body_util::{Either, Limited};
use tollgate_config::{Config, Upstream};
use tollgate_core::error::GatewayError;
use tollgate_core::{Attached, Decision};

use super::body::{RequestBody, ResponseBody};
use super::forward::{self, Leg, Tunnel, UpstreamClient, Via};
use super::limit::Limit;
use crate::conn::activity::ClientUpgrade;
use crate::conn::body::ClientBody;
use crate::conn::timer::RecyclingTimer;

/// Every route's way to its upstream, under one config.
#[derive(Debug)]
pub struct Forwarder {
    client: UpstreamClient,
    /// How each route reaches its upstream, indexed by `Route::index`.
    vias: Vec<Option<Via>>,
    /// Each route's own in-flight limit, if it sets `max_requests`.
    route_limits: Vec<Option<Arc<Limit>>>,
    /// The configured claim headers, which a forward-auth answer carries too.
    claim_headers: Vec<http::HeaderName>,
    /// The upstream exchanges' deadlines (one per request, recycled).
    deadlines: RecyclingTimer,
}

impl Forwarder {
    /// The transports for `config`'s routes, keeping from `previous` the upstream client and
    /// the pools (connections and all) of upstreams it already reached.
    pub fn reusing(config: &Config, previous: Option<&Forwarder>) -> Self {
        let client = previous.map_or_else(forward::build_client, |p| p.client.clone());
        Self {
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
            claim_headers: config
                .identity
                .claim_headers
                .iter()
                .map(|(_, h)| h.clone())
                .collect(),
            client,
            deadlines: previous.map(|p| p.deadlines.clone()).unwrap_or_default(),
        }
    }

    /// Sends the built upstream request by the route's transport and returns the response
    /// with the time the upstream took (`None` for the built-in echo). Nothing here reads the client's request: the core
    /// consumed it. `client_upgrade` is the client's socket, for a tunnel the core allowed.
    pub async fn send(
        &self,
        decision: Decision,
        upstream: Request<ClientBody>,
        client_upgrade: Option<ClientUpgrade>,
    ) -> Result<(Response<ResponseBody>, Option<Duration>), GatewayError> {
        let Decision {
            route,
            upgrade,
            credential,
            timeout,
            http2,
            ..
        } = decision;
        match route.upstream {
            Upstream::Echo => return Ok((super::echo::respond(&upstream), None)),
            Upstream::ForwardAuth => {
                return Ok((
                    super::forward_auth::allow(&upstream, &self.claim_headers),
                    None,
                ));
            }
            Upstream::Http { .. } => {}
        }
        let via = self
            .vias
            .get(route.index)
            .and_then(Option::as_ref)
            .ok_or(GatewayError::Internal("route has no upstream connection"))?;
        let over_http2;
        let via = match via {
            Via::Pool(pool) if http2 => {
                over_http2 = Via::Http2(pool.clone());
                &over_http2
            }
            via => via,
        };
        let leg = Leg {
            via,
            deadlines: &self.deadlines,
            timeout,
            body_limit: route.max_body_bytes,
        };
        let route_permit = match self.route_limits.get(route.index).and_then(Option::as_ref) {
            Some(limit) => Some(limit.acquire("route requests in flight")?),
            None => None,
        };
        let tunnel = upgrade.map(|protocols| Tunnel {
            protocols,
            client: client_upgrade,
        });
        let (mut response, elapsed) = exchange(leg, credential, upstream, tunnel).await?;
        if let (Some(permit), Either::Left(body)) = (route_permit, response.body_mut()) {
            body.watcher_mut().hold(permit);
        }
        Ok((response, Some(elapsed)))
    }
}

/// The exchange itself: with the vendor's credential (and its replay), or plain.
async fn exchange(
    leg: Leg<'_>,
    credential: Option<Attached>,
    upstream: Request<ClientBody>,
    tunnel: Option<Tunnel>,
) -> Result<(Response<ResponseBody>, Duration), GatewayError> {
    match &credential {
        // Boxed: the vendor path's future is large and would otherwise inflate every
        // request's future (moved into hyper's dispatcher once per request).
        Some(attached) => {
            Box::pin(super::vendor::forward_with_credential(
                leg, attached, upstream, tunnel,
            ))
            .await
        }
        None => {
            let limit = usize::try_from(leg.body_limit).unwrap_or(usize::MAX);
            let request: Request<RequestBody> =
                upstream.map(|body| Either::Left(Limited::new(body, limit)));
            forward::exchange(leg, request, tunnel).await
        }
    }
}

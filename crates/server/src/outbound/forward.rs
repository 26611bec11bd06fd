//! Forwarding to upstreams: the pooled client, URI construction, the exchange and upgrades.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use http::uri::{Authority, Scheme};
use http::{Request, Response, StatusCode};
use http_body_util::{Either, LengthLimitError};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tracing::debug;

pub use tollgate_client::{
    build_client, build_client_http1_with, build_client_trusting, build_client_with,
};

use super::limit::Limit;
use super::pool::{Http1Pool, ReturnToPool};
use crate::conn::activity::ClientUpgrade;
use crate::conn::body::{ClientBodyError, Watched};
use crate::conn::timer::{RecyclingTimer, deadline_after};
use crate::outbound::body::{RequestBody, ResponseBody};
use tollgate_config::{Limits, Route, Upstream};
use tollgate_core::error::GatewayError;
use tollgate_core::upgrade;
use tollgate_http::hop::remove_hop_by_hop;

/// An allowed upgrade on its way: the protocols forwarded and the client's socket hand-off.
#[derive(Debug)]
pub struct Tunnel {
    /// The `Upgrade` value sent upstream (allowed protocols only).
    pub protocols: http::HeaderValue,
    /// Yields the client's socket once the `101` is written; absent in-process.
    pub client: Option<ClientUpgrade>,
}

/// The pooled HTTP/1.1 + HTTP/2 (over TLS, by ALPN) client shared by the TLS routes.
pub type UpstreamClient = Client<HttpsConnector<HttpConnector>, RequestBody>;

/// How a route reaches its upstream.
#[derive(Debug, Clone)]
pub enum Via {
    /// A plain-HTTP upstream, through the pool of connections to it.
    Pool(Arc<Http1Pool>),
    /// The same upstream over HTTP/2 with prior knowledge (chosen per request: gRPC calls and
    /// `h2c` routes).
    Http2(Arc<Http1Pool>),
    /// A TLS upstream, through the shared client, with the upstream's in-flight limit (which
    /// also bounds its connections: each request in flight holds at most one).
    Client(Box<UpstreamClient>, Arc<Limit>),
}

/// How each route reaches its upstream, indexed like the routes (`None` for `echo`). Pools of
/// upstreams that `previous` already reached are kept, connections and all.
pub fn route_vias(
    routes: &[Arc<Route>],
    client: &UpstreamClient,
    limits: &Limits,
    previous: &[Option<Via>],
) -> Vec<Option<Via>> {
    let mut tls_limits: Vec<(Authority, Arc<Limit>)> = Vec::new();
    let mut pools: Vec<Arc<Http1Pool>> = previous
        .iter()
        .filter_map(|via| match via {
            Some(Via::Pool(pool)) => Some(pool.clone()),
            _ => None,
        })
        .collect();
    routes
        .iter()
        .map(|route| match &route.upstream {
            Upstream::Echo | Upstream::ForwardAuth => None,
            Upstream::Http {
                scheme, authority, ..
            } if *scheme == Scheme::HTTP => {
                let pool = match pools.iter().find(|p| p.authority() == authority) {
                    Some(pool) => pool.clone(),
                    None => {
                        let pool = Http1Pool::new(authority, limits);
                        pools.push(pool.clone());
                        pool
                    }
                };
                Some(Via::Pool(pool))
            }
            Upstream::Http { authority, .. } => {
                // A route with its own TLS settings gets its own client (and connections), and so
                // does one that forwards the client's host: HTTP/1.1 only, so the host travels
                // once, in `Host`.
                let client = match (&route.upstream_tls, route.preserve_host) {
                    (tls, true) => build_client_http1_with(&tls.clone().unwrap_or_default()),
                    (Some(tls), false) => build_client_with(tls),
                    (None, false) => client.clone(),
                };
                let limit = match tls_limits.iter().find(|(a, _)| a == authority) {
                    Some((_, limit)) => limit.clone(),
                    None => {
                        let limit = Limit::new(limits.upstream_max_requests);
                        tls_limits.push((authority.clone(), limit.clone()));
                        limit
                    }
                };
                Some(Via::Client(Box::new(client), limit))
            }
        })
        .collect()
}

/// One exchange's way and bounds: the transport, how long the upstream has to answer (and
/// may stay silent inside its body), and the route's body limit.
#[derive(Debug, Clone, Copy)]
pub struct Leg<'a> {
    /// The transport.
    pub via: &'a Via,
    /// Where the deadline's timer comes from.
    pub deadlines: &'a RecyclingTimer,
    /// The decision's timeout (the route's, or a gRPC call's shorter deadline).
    pub timeout: Duration,
    /// The route's `max_body_bytes`.
    pub body_limit: u64,
}

/// Sends the built upstream request and waits at most the leg's timeout for the response
/// head. A `101` becomes a tunnel only when it switches to a protocol the core allowed and
/// forwarded; any other `101` is the upstream's error.
pub async fn exchange(
    leg: Leg<'_>,
    request: Request<RequestBody>,
    upgrade: Option<Tunnel>,
) -> Result<(Response<ResponseBody>, Duration), GatewayError> {
    let Leg {
        via,
        deadlines,
        timeout,
        body_limit,
    } = leg;
    let started = Instant::now();
    let mut expiry = deadlines.lease(deadline_after(started, timeout));
    // Matched in place rather than in a helper: each async layer costs every request a poll
    // and a move of the request.
    let sent = async {
        match via {
            Via::Pool(pool) => pool.send(request, body_limit).await,
            Via::Http2(pool) => pool.send_http2(request, body_limit).await,
            Via::Client(client, limit) => send_by_client(client, limit, request, body_limit).await,
        }
    };
    let mut sent = std::pin::pin!(sent);
    let result = std::future::poll_fn(|cx| match sent.as_mut().poll(cx) {
        Poll::Ready(result) => Poll::Ready(Some(result)),
        Poll::Pending => Pin::new(&mut expiry).poll(cx).map(|()| None),
    })
    .await;
    let upstream_time = started.elapsed();
    let mut response = match result {
        None => return Err(GatewayError::UpstreamTimeout(timeout)),
        Some(result) => result?,
    };
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        return switched(response, upgrade, upstream_time);
    }
    remove_hop_by_hop(response.headers_mut());
    let (parts, body) = response.into_parts();
    // The route's timeout also bounds each silence inside the response body: a stalled
    // upstream ends the response (and frees its connection) instead of holding it forever.
    Ok((
        Response::from_parts(parts, Either::Left(body.idle_timeout(timeout))),
        upstream_time,
    ))
}

/// Sends `request` on one of hyper-util's pooled clients (the TLS client, or a plain
/// upstream's HTTP/2 one), within the upstream's limit of requests in flight; the response
/// keeps its permit until its body (and trailers) end.
pub(super) async fn send_by_client<C>(
    client: &Client<C, RequestBody>,
    limit: &Arc<Limit>,
    request: Request<RequestBody>,
    body_limit: u64,
) -> Result<Response<super::pool::UpstreamBody>, GatewayError>
where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
{
    let permit = limit.acquire("upstream requests in flight")?;
    match client.request(request).await {
        Ok(response) => Ok(response.map(|body| Watched::new(body, ReturnToPool::holding(permit)))),
        Err(e) => Err(classify(Box::new(e), body_limit)),
    }
}

/// A `101`: a tunnel when it switches to a protocol the core allowed and forwarded (the
/// client's socket and the upstream's are joined in a task of their own), else the upstream's
/// error.
fn switched(
    mut response: Response<super::pool::UpstreamBody>,
    upgrade: Option<Tunnel>,
    upstream_time: Duration,
) -> Result<(Response<ResponseBody>, Duration), GatewayError> {
    let agreed = upgrade.and_then(|u| {
        upgrade::upstream_agreed(response.headers(), &u.protocols)
            .then_some(u.client)
            .flatten()
    });
    let Some(client_side) = agreed else {
        return Err(GatewayError::UpstreamFailed(
            "upstream switched to a protocol that was not requested".into(),
        ));
    };
    let upstream_side = hyper::upgrade::on(&mut response);
    tokio::spawn(tunnel(client_side, upstream_side));
    let (parts, body) = response.into_parts();
    // Connection and Upgrade stay: they are what a 101 means.
    Ok((
        Response::from_parts(parts, Either::Left(body)),
        upstream_time,
    ))
}

async fn tunnel(client: ClientUpgrade, upstream: hyper::upgrade::OnUpgrade) {
    let (client, upstream) = match tokio::join!(client.socket(), upstream) {
        (Some(client), Ok(upstream)) => (client, upstream),
        (None, _) => {
            debug!("upgrade failed: the client connection ended first");
            return;
        }
        (_, Err(e)) => {
            debug!(error = %e, "upgrade failed");
            return;
        }
    };
    let (mut client, mut upstream) = (client, TokioIo::new(upstream));
    match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        Ok((up, down)) => debug!(bytes_up = up, bytes_down = down, "tunnel closed"),
        Err(e) => debug!(error = %e, "tunnel closed with error"),
    }
}

/// Sorts a failed exchange: the client's body over the route's limit (413) or broken (400) is
/// the client's fault; a failed connect is 502 `connect`; anything else failed upstream. One
/// function for both upstream clients.
pub fn classify(error: tollgate_core::error::BoxError, body_limit: u64) -> GatewayError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&*error);
    let mut connect = false;
    while let Some(e) = source {
        if e.is::<LengthLimitError>() {
            return GatewayError::BodyTooLarge { limit: body_limit };
        }
        if let Some(ClientBodyError(body)) = e.downcast_ref::<ClientBodyError>() {
            if let crate::conn::body::BodyError::Stalled(after) = body {
                return GatewayError::RequestBodyTimeout(*after);
            }
            return GatewayError::ClientBody(error);
        }
        if let Some(client) = e.downcast_ref::<hyper_util::client::legacy::Error>() {
            connect |= client.is_connect();
        }
        source = e.source();
    }
    if connect {
        GatewayError::UpstreamConnect(error)
    } else {
        GatewayError::UpstreamFailed(error)
    }
}

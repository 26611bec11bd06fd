//! Forwarding to upstreams: the pooled client, URI construction, the exchange and upgrades.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::HOST;
use http::uri::{Authority, Scheme};
use http::{HeaderValue, Request, Response, StatusCode, Uri, Version};
use http_body_util::{Either, LengthLimitError};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tracing::debug;

use super::headers::remove_hop_by_hop;
use super::pool::{self, Http1Pool, ReturnToPool};
use crate::body::{RequestBody, ResponseBody, Watched};
use crate::config::{Route, Upstream};
use crate::error::GatewayError;
use crate::server::activity::ClientUpgrade;

/// The pooled HTTP/1.1 + HTTP/2 (over TLS, by ALPN) client shared by the TLS routes.
pub type UpstreamClient = Client<HttpsConnector<HttpConnector>, RequestBody>;

/// How a route reaches its upstream.
#[derive(Debug, Clone)]
pub enum Via {
    /// A plain-HTTP upstream, through the pool of connections to it.
    Pool(Arc<Http1Pool>),
    /// A TLS upstream, through the shared client.
    Client(Box<UpstreamClient>),
}

/// How each route reaches its upstream, indexed like the routes (`None` for `echo`). Pools of
/// upstreams that `previous` already reached are kept, connections and all.
pub fn route_vias(
    routes: &[Arc<Route>],
    client: &UpstreamClient,
    previous: &[Option<Via>],
) -> Vec<Option<Via>> {
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
            Upstream::Echo => None,
            Upstream::Http {
                scheme, authority, ..
            } if *scheme == Scheme::HTTP => {
                let pool = match pools.iter().find(|p| p.authority() == authority) {
                    Some(pool) => pool.clone(),
                    None => {
                        let pool = Http1Pool::new(authority);
                        pools.push(pool.clone());
                        pool
                    }
                };
                Some(Via::Pool(pool))
            }
            Upstream::Http { .. } => Some(Via::Client(Box::new(client.clone()))),
        })
        .collect()
}

/// Builds an outbound client: keep-alive pool, TLS with webpki roots. The proxy, JWKS fetches
/// and vendor logins each get one, differing only in body type.
pub fn build_client<B>() -> Client<HttpsConnector<HttpConnector>, B>
where
    B: http_body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<crate::error::BoxError>,
{
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(pool::CONNECT_TIMEOUT));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(pool::IDLE_TIMEOUT)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(https)
}

/// The upstream URI: scheme and authority of the upstream, its base path, the forwarded path
/// and the original query.
pub fn upstream_uri(
    scheme: &Scheme,
    authority: &Authority,
    base_path: &str,
    path: &str,
    query: Option<&str>,
) -> Result<Uri, GatewayError> {
    let mut pq =
        String::with_capacity(base_path.len() + path.len() + query.map_or(0, |q| q.len() + 1));
    pq.push_str(base_path);
    pq.push_str(path);
    if let Some(query) = query {
        pq.push('?');
        pq.push_str(query);
    }
    Uri::builder()
        .scheme(scheme.clone())
        .authority(authority.clone())
        .path_and_query(pq)
        .build()
        .map_err(|_| GatewayError::BadRequest("request target cannot be forwarded"))
}

/// Sets the `Host` the upstream sees: the client's when the route preserves it, else the
/// upstream's own.
pub fn set_host(headers: &mut http::HeaderMap, route: &Route, client_host: Option<HeaderValue>) {
    match (client_host, &route.upstream) {
        (Some(host), _) if route.preserve_host => {
            headers.insert(HOST, host);
        }
        (_, Upstream::Http { host, .. }) => {
            headers.insert(HOST, host.clone());
        }
        (_, Upstream::Echo) => {
            headers.remove(HOST);
        }
    }
}

/// Sends the request and waits at most `timeout` for the response head. Upgrades the
/// connection into a tunnel when both sides agree on it.
pub async fn exchange(
    via: &Via,
    mut request: Request<RequestBody>,
    timeout: Duration,
    client_upgrade: Option<ClientUpgrade>,
    body_limit: u64,
) -> Result<(Response<ResponseBody>, Duration), GatewayError> {
    // The client negotiates the upstream protocol itself (ALPN for TLS, HTTP/1.1 otherwise).
    *request.version_mut() = Version::HTTP_11;
    let started = Instant::now();
    let sent = async {
        match via {
            Via::Pool(pool) => pool.send(request, body_limit).await,
            Via::Client(client) => match client.request(request).await {
                Ok(response) => Ok(response.map(|body| Watched::new(body, ReturnToPool::none()))),
                Err(e) => Err(classify(e, body_limit)),
            },
        }
    };
    let result = tokio::time::timeout(timeout, sent).await;
    let upstream_time = started.elapsed();
    let mut response = match result {
        Err(_) => return Err(GatewayError::UpstreamTimeout(timeout)),
        Ok(result) => result?,
    };
    match client_upgrade {
        Some(client_side) if response.status() == StatusCode::SWITCHING_PROTOCOLS => {
            let upstream_side = hyper::upgrade::on(&mut response);
            tokio::spawn(tunnel(client_side, upstream_side));
            let (parts, body) = response.into_parts();
            // Connection and Upgrade stay: they are what a 101 means.
            Ok((
                Response::from_parts(parts, Either::Left(body)),
                upstream_time,
            ))
        }
        _ => {
            remove_hop_by_hop(response.headers_mut());
            let (parts, body) = response.into_parts();
            Ok((
                Response::from_parts(parts, Either::Left(body)),
                upstream_time,
            ))
        }
    }
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

fn classify(error: hyper_util::client::legacy::Error, body_limit: u64) -> GatewayError {
    if exceeded_body_limit(&error) {
        GatewayError::BodyTooLarge { limit: body_limit }
    } else if error.is_connect() {
        GatewayError::UpstreamConnect(Box::new(error))
    } else {
        GatewayError::UpstreamFailed(Box::new(error))
    }
}

/// Whether a failed exchange failed because the client's body grew past the route's limit:
/// then it is the client's fault (413), not the upstream's.
pub fn exceeded_body_limit(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(e) = source {
        if e.is::<LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_uri_with_base_and_query() {
        let uri = upstream_uri(
            &Scheme::HTTP,
            &"127.0.0.1:9".parse().unwrap(),
            "/base",
            "/x/y",
            Some("a=1&b"),
        )
        .unwrap();
        assert_eq!(uri.to_string(), "http://127.0.0.1:9/base/x/y?a=1&b");
    }
}

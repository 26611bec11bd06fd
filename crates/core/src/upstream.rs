//! The upstream request the core builds: its target, its transport (HTTP/2 with prior
//! knowledge, a gRPC deadline), and the request itself.

use std::time::Duration;

use http::header::HeaderValue;
use http::request::Parts;
use http::{Request, Uri, Version};
use tollgate_auth::extract;
use tollgate_config::{Route, Upstream, UpstreamProtocol};
use tollgate_http::grpc;

use crate::error::GatewayError;
use crate::rewrite;
use crate::routing::forward_path;

/// How the request travels upstream: a gRPC call's deadline, and whether it goes over HTTP/2
/// with prior knowledge to a plain-HTTP upstream (gRPC needs it; an `h2c` route asks for it;
/// an upgrade cannot have it).
pub(crate) fn transport(
    grpc: bool,
    route: &Route,
    headers: &http::HeaderMap,
    upgrade: &Option<HeaderValue>,
) -> (Option<Duration>, bool) {
    let timeout = grpc.then(|| call_timeout(headers, route.timeout));
    let http2 = upgrade.is_none() && (grpc || route.upstream_protocol == UpstreamProtocol::H2c);
    (timeout, http2)
}

/// A gRPC call's deadline: its `grpc-timeout`, bounded by the route's timeout (also when it
/// sent none, or one that does not parse, which the spec reads as no deadline).
fn call_timeout(headers: &http::HeaderMap, route_timeout: Duration) -> Duration {
    headers
        .get(&grpc::GRPC_TIMEOUT)
        .and_then(grpc::parse_timeout)
        .map_or(route_timeout, |asked| asked.min(route_timeout))
}

/// The upstream request: the client's method and body, the built target and headers.
pub(crate) fn upstream_request<B>(parts: Parts, body: B, target: Uri) -> Request<B> {
    let mut upstream = Request::new(body);
    *upstream.method_mut() = parts.method;
    *upstream.uri_mut() = target;
    // The upstream client negotiates its own protocol (ALPN for TLS, HTTP/1.1 otherwise).
    *upstream.version_mut() = Version::HTTP_11;
    *upstream.headers_mut() = parts.headers;
    upstream
}

/// The upstream target: the route's upstream, its base path, the normalised (and rewritten)
/// path, and the query without credentials. Origin form for echo.
pub(crate) fn upstream_target(
    route: &Route,
    path: &str,
    uri: &Uri,
    sources: &extract::TokenSources,
) -> Result<Uri, GatewayError> {
    let path = forward_path(route, path);
    let query = rewrite::upstream_query(uri.query(), route, sources);
    let (scheme, authority, base_path) = match &route.upstream {
        Upstream::Http {
            scheme,
            authority,
            base_path,
            ..
        } => (Some(scheme), Some(authority), base_path.as_str()),
        Upstream::Echo | Upstream::ForwardAuth => (None, None, ""),
    };
    let mut pq = String::with_capacity(
        base_path.len() + path.len() + query.as_ref().map_or(0, |q| q.len() + 1),
    );
    pq.push_str(base_path);
    pq.push_str(&path);
    if let Some(query) = query {
        pq.push('?');
        pq.push_str(&query);
    }
    let mut builder = Uri::builder();
    if let (Some(scheme), Some(authority)) = (scheme, authority) {
        builder = builder.scheme(scheme.clone()).authority(authority.clone());
    }
    builder
        .path_and_query(pq)
        .build()
        .map_err(|_| GatewayError::BadRequest("request target cannot be forwarded"))
}

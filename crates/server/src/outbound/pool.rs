//! Keep-alive HTTP/1.1 connections to one plain-HTTP upstream.
//!
//! hyper-util's pooled client hashes the upstream authority (SipHash, byte by byte) on every
//! checkout and return, and spawns a task per request to notice when the connection is free
//! again: together 15% of the instructions tollgate spent on a proxied request (callgrind).
//! Here each route holds its upstream's pool directly, and a connection goes back to it the
//! moment the response body ends. TLS upstreams keep hyper-util's client (ALPN, HTTP/2), and
//! so do requests to this upstream over HTTP/2 with prior knowledge (gRPC, `h2c` routes), which
//! all share one multiplexed connection.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use http::uri::Authority;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tracing::debug;

use bytes::Bytes;
use http_body::Body as _;
use http_body_util::{Either, Full};

use super::limit::{Limit, Permit};
use super::unacked::{self, Unacked};
use crate::conn::body::{EndWatcher, Watched};
use crate::outbound::body::RequestBody;
use tollgate_config::Limits;
use tollgate_core::error::GatewayError;

pub use tollgate_client::{CONNECT_TIMEOUT, IDLE_TIMEOUT};

/// Most idle connections kept per upstream; more are closed when returned.
const MAX_IDLE: usize = 1024;

/// The idle connections to one upstream.
pub struct Http1Pool {
    authority: Authority,
    host: String,
    port: u16,
    idle: Mutex<Vec<Idle>>,
    /// Requests in flight, up to `limits.upstream_max_requests`.
    requests: Arc<Limit>,
    /// Connections open (idle ones included), up to `limits.upstream_max_connections`.
    connections: Arc<Limit>,
    /// Longest wait for a new connection (`limits.upstream_connect_timeout`).
    connect_timeout: std::time::Duration,
    /// The same upstream over HTTP/2 with prior knowledge (connects on first use).
    h2c: Client<HttpConnector, RequestBody>,
}

impl std::fmt::Debug for Http1Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Http1Pool({}:{})", self.host, self.port)
    }
}

struct Idle {
    sender: http1::SendRequest<RequestBody>,
    since: Instant,
}

impl Http1Pool {
    /// A pool for `authority` (port 80 when it names none) within `limits`.
    pub fn new(authority: &Authority, limits: &Limits) -> Arc<Self> {
        Arc::new(Self {
            authority: authority.clone(),
            host: authority.host().trim_matches(['[', ']']).to_owned(),
            port: authority.port_u16().unwrap_or(80),
            idle: Mutex::new(Vec::new()),
            requests: Limit::new(limits.upstream_max_requests),
            connections: Limit::new(limits.upstream_max_connections),
            connect_timeout: limits.upstream_connect_timeout,
            h2c: tollgate_client::build_h2c_client(limits.upstream_connect_timeout),
        })
    }

    /// Connections open to the upstream now.
    pub fn open_connections(&self) -> usize {
        self.connections.in_use()
    }

    /// The upstream this pool connects to.
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// Sends `request` on an idle connection or a new one; the connection returns to the pool
    /// when the response body has been read to its end.
    pub async fn send(
        self: &Arc<Self>,
        mut request: Request<RequestBody>,
        body_limit: u64,
    ) -> Result<Response<UpstreamBody>, GatewayError> {
        *request.uri_mut() = origin_form(request.uri())?;
        let permit = self.requests.acquire("upstream requests in flight")?;
        // A refused or timed-out connect sent nothing: an idempotent request may try once more
        // (a restarting upstream, a full listen backlog), another must not be repeated.
        let idempotent = request.method().is_idempotent();
        let mut connect_retries = usize::from(idempotent);
        // The same holds for a bodiless request the upstream's kernel never acknowledged on
        // a new connection (see `unacked`): it can be rebuilt from its head and sent again.
        let bound = idempotent && request.body().is_end_stream();
        let mut resends = usize::from(bound);
        loop {
            let (mut sender, fresh) = match self.checkout() {
                Some(sender) => (sender, None),
                None => match self.connect(bound).await {
                    Ok((sender, armed)) => (sender, Some(armed)),
                    Err(error) if connect_retries > 0 => {
                        connect_retries -= 1;
                        debug!(pool = ?self, error = %error, "upstream connect failed; trying once more");
                        continue;
                    }
                    Err(error) => return Err(error),
                },
            };
            // A returned connection is ready once its task has seen the response end, or
            // fails here if the upstream has closed it meanwhile.
            if fresh.is_none() && sender.ready().await.is_err() {
                continue;
            }
            let armed = fresh == Some(true);
            let again = (armed && resends > 0).then(|| head_of(&request));
            let mut error = match sender.try_send_request(request).await {
                Ok(response) => return Ok(self.track(response, sender, permit)),
                Err(error) => error,
            };
            let unsent = error.take_message();
            let error = error.into_error();
            request = match (unsent, again) {
                // The upstream closed a kept-alive connection before it took the request:
                // nothing was sent, so it goes again on a fresh connection.
                (Some(unsent), _) if fresh.is_none() => unsent,
                (_, Some(head)) if unacked::timed_out(&error) => {
                    resends -= 1;
                    head
                }
                _ if armed && unacked::timed_out(&error) => {
                    return Err(GatewayError::UpstreamConnect(Box::new(error)));
                }
                _ => return Err(super::forward::classify(Box::new(error), body_limit)),
            };
            debug!(pool = ?self, error = %error, "the upstream did not take the request; sending it again");
        }
    }

    /// Sends `request` over HTTP/2 with prior knowledge, within the same limit of requests in
    /// flight.
    pub async fn send_http2(
        &self,
        request: Request<RequestBody>,
        body_limit: u64,
    ) -> Result<Response<UpstreamBody>, GatewayError> {
        super::forward::send_by_client(&self.h2c, &self.requests, request, body_limit).await
    }

    fn checkout(&self) -> Option<http1::SendRequest<RequestBody>> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        // Newest first: the most recently used connection is the least likely to be closed.
        while let Some(entry) = idle.pop() {
            if !entry.sender.is_closed() && entry.since.elapsed() < IDLE_TIMEOUT {
                return Some(entry.sender);
            }
            // Closed by the upstream, or idle too long: dropping it closes the connection.
        }
        None
    }

    fn put(&self, sender: http1::SendRequest<RequestBody>) {
        if sender.is_closed() {
            return;
        }
        let now = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        // The oldest are at the front: drop those past their time.
        let stale = idle
            .iter()
            .take_while(|e| now.duration_since(e.since) >= IDLE_TIMEOUT)
            .count();
        idle.drain(..stale);
        if idle.len() < MAX_IDLE {
            idle.push(Idle { sender, since: now });
        }
    }

    /// A new connection, and whether its first request is bounded by the connect timeout
    /// until the upstream answers (`bound_first`, on platforms with `TCP_USER_TIMEOUT`).
    async fn connect(
        &self,
        bound_first: bool,
    ) -> Result<(http1::SendRequest<RequestBody>, bool), GatewayError> {
        // Held by the connection's task: given back when the connection closes.
        let permit = self.connections.acquire("upstream connections")?;
        let connecting = TcpStream::connect((self.host.as_str(), self.port));
        let stream = match tokio::time::timeout(self.connect_timeout, connecting).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(GatewayError::UpstreamConnect(Box::new(e))),
            Err(_) => {
                return Err(GatewayError::UpstreamConnect(
                    format!("connect timed out after {:?}", self.connect_timeout).into(),
                ));
            }
        };
        let _ = stream.set_nodelay(true);
        let stream = Unacked::new(stream, bound_first.then_some(self.connect_timeout));
        let armed = stream.armed();
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| GatewayError::UpstreamConnect(Box::new(e)))?;
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = connection.with_upgrades().await {
                debug!(error = %e, "upstream connection ended with error");
            }
        });
        Ok((sender, armed))
    }

    fn track(
        self: &Arc<Self>,
        response: Response<Incoming>,
        sender: http1::SendRequest<RequestBody>,
        permit: Permit,
    ) -> Response<UpstreamBody> {
        // After a 101 the connection is the tunnel's.
        let reusable = response.status() != StatusCode::SWITCHING_PROTOCOLS;
        let reuse = ReturnToPool {
            connection: reusable.then(|| (self.clone(), sender)),
            permits: [Some(permit), None],
        };
        response.map(|body| Watched::new(body, reuse))
    }
}

/// Origin form (`/path?query`) on a direct connection, as RFC 9112 §3.2.1 asks.
fn origin_form(uri: &http::Uri) -> Result<http::Uri, GatewayError> {
    let mut origin = http::uri::Parts::default();
    origin.path_and_query = uri.path_and_query().cloned();
    http::Uri::from_parts(origin)
        .map_err(|_| GatewayError::Internal("upstream path could not be rebuilt"))
}

/// A bodiless request's head again, for a second attempt.
fn head_of(request: &Request<RequestBody>) -> Request<RequestBody> {
    let mut again = Request::new(Either::Right(Full::new(Bytes::new())));
    *again.method_mut() = request.method().clone();
    *again.uri_mut() = request.uri().clone();
    *again.version_mut() = request.version();
    *again.headers_mut() = request.headers().clone();
    again
}

/// A response body from an upstream; a pooled connection goes back to its pool when the body
/// has been read to its end, and is closed when the body is dropped before.
pub type UpstreamBody = Watched<ReturnToPool>;

/// The connection a response arrived on, returned to its pool once the body has ended, and
/// the request's limit permits, given back then (or when the body is dropped).
pub struct ReturnToPool {
    connection: Option<(Arc<Http1Pool>, http1::SendRequest<RequestBody>)>,
    permits: [Option<Permit>; 2],
}

impl ReturnToPool {
    /// For a body whose connection is not tollgate's to reuse (hyper-util's client pools it).
    pub fn holding(permit: Permit) -> Self {
        Self {
            connection: None,
            permits: [Some(permit), None],
        }
    }

    /// Keeps `permit` until the body ends (a route's own limit, on top of the upstream's).
    pub fn hold(&mut self, permit: Permit) {
        if let Some(slot) = self.permits.iter_mut().find(|p| p.is_none()) {
            *slot = Some(permit);
        }
    }
}

impl EndWatcher for ReturnToPool {
    fn ended(&mut self) {
        if let Some((pool, sender)) = self.connection.take() {
            pool.put(sender);
        }
        self.permits = [None, None];
    }

    fn failed(&mut self) {
        self.connection = None;
        self.permits = [None, None];
    }
}

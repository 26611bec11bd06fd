//! One client connection from accept to close: its first bytes tell HTTP/2 (prior knowledge)
//! from HTTP/1.1 (served, and parked when idle, in the sibling `http1` module); the
//! per-connection request handler; HTTP/2 with its idle and age limits.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::rt::bounds::Http2ServerConnExec;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::AsyncReadExt;
use tokio::sync::watch;
use tracing::debug;

use super::limits::Held;
use super::lot::Lot;
use crate::conn::activity::{Activity, ClientIo};
use crate::conn::body::{ClientBody, RequestProgress, ServedBody};
use crate::conn::stream::ClientStream;
use crate::conn::timer::RecyclingTimer;
use crate::gateway::Gateway;
use crate::metrics::{ConnectionGuard, Metrics};
use crate::outbound::body::ResponseBody;
use tollgate_auth::certificate::ClientCertificate;
use tollgate_config::Limits;
use tollgate_core::forwarded::ClientIp;

/// How long an HTTP/1 connection goes without a new request before its buffers are freed.
pub const PARK_AFTER: Duration = Duration::from_secs(1);

/// The first bytes of every HTTP/2 prior-knowledge connection.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The HTTP settings shared by every data connection, and the lot its idle ones park in.
pub struct Protocols {
    pub(super) http1: http1::Builder,
    http2: http2::Builder<TokioExecutor>,
    header_read_timeout: Duration,
    body_read_timeout: Duration,
    idle_timeout: Duration,
    max_age: Duration,
    max_connections_per_ip: usize,
    /// Where idle plain HTTP/1.1 connections wait; without one, each waits in its task.
    pub(super) lot: Option<Lot>,
}

impl Protocols {
    /// HTTP/1.1 and HTTP/2 servers configured from the listener limits; idle plain HTTP/1.1
    /// connections park in `lot`.
    pub fn new(limits: &Limits, lot: Option<Lot>) -> Self {
        let mut http1 = http1::Builder::new();
        http1
            .timer(RecyclingTimer::default())
            // hyper arms this timer whenever it waits for a request head, so it also closes
            // keep-alive connections idle for longer than this.
            .header_read_timeout(limits.header_read_timeout)
            .max_buf_size(limits.max_header_bytes)
            .max_headers(limits.max_headers);
        let mut http2 = http2::Builder::new(TokioExecutor::new());
        http2
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
            .keep_alive_interval(Some(limits.idle_timeout))
            .max_concurrent_streams(Some(limits.max_concurrent_streams));
        Self {
            http1,
            http2,
            header_read_timeout: limits.header_read_timeout,
            body_read_timeout: limits.body_read_timeout,
            idle_timeout: limits.idle_timeout,
            max_age: limits.max_connection_age,
            max_connections_per_ip: limits.max_connections_per_ip,
            lot,
        }
    }

    /// How long a client may take to send a request head (and to complete a TLS handshake).
    pub fn header_read_timeout(&self) -> Duration {
        self.header_read_timeout
    }

    /// Most connections from one client address.
    pub fn max_connections_per_ip(&self) -> usize {
        self.max_connections_per_ip
    }
}

/// A connection as accepted (and, over TLS, handshaken).
pub struct Accepted {
    /// The client's byte stream.
    pub stream: ClientStream,
    /// The client's address.
    pub remote: SocketAddr,
    /// The client certificate, when one identified a service.
    pub certificate: Option<Arc<ClientCertificate>>,
    /// Its places under the connection limits.
    pub held: Held,
}

/// Serves one accepted connection until it closes, or until `stop` turns true and its
/// requests in flight have been answered.
pub async fn serve(
    accepted: Accepted,
    current: Arc<ArcSwap<Gateway>>,
    protocols: Arc<Protocols>,
    mut stop: watch::Receiver<bool>,
) {
    let Accepted {
        mut stream,
        remote,
        certificate,
        held,
    } = accepted;
    let accepted = tokio::time::Instant::now();
    let activity = Arc::new(Activity::default());
    let metrics = current.load().metrics().clone();
    let client = match &stream {
        ClientStream::Plain(_) => ClientIp::new(remote.ip()),
        ClientStream::Tls(_) => ClientIp::new(remote.ip()).over_tls(),
    };
    let service = service(
        current,
        &metrics,
        &activity,
        certificate,
        client,
        protocols.body_read_timeout,
    );

    // A connection costs no HTTP state until its first bytes arrive.
    let deadline = protocols.header_read_timeout;
    let Some(first) = first_bytes(&mut stream, remote, deadline, &mut stop).await else {
        return;
    };
    let connection = Connection {
        expires: deadline_at(accepted, &protocols),
        protocols,
        activity,
        metrics,
        remote,
        _held: held,
    };
    if first.as_ref() == H2_PREFACE {
        // Boxed: an HTTP/1 connection's task, parked most of its life, is not sized for HTTP/2.
        Box::pin(connection.serve_http2(stream, first, service, stop)).await;
    } else {
        connection.serve_http1(stream, first, service, stop).await;
    }
}

/// The connection's request handler: each request is counted, tracked for parking, given the
/// client certificate, and handled by the gateway current when it arrived.
fn service(
    current: Arc<ArcSwap<Gateway>>,
    metrics: &Arc<Metrics>,
    activity: &Arc<Activity>,
    certificate: Option<Arc<ClientCertificate>>,
    client: ClientIp,
    body_read_timeout: Duration,
) -> impl hyper::service::HttpService<
    Incoming,
    ResBody = ServedBody<ResponseBody>,
    Error = std::convert::Infallible,
    Future: Send + Unpin + 'static,
> + Send
+ Unpin
+ 'static {
    let counted = Arc::new(ConnectionGuard::new(metrics.clone()));
    let tracked = activity.clone();
    service_fn(move |request: hyper::Request<Incoming>| {
        counted.observe(request.version());
        tracked.request_started();
        let progress = RequestProgress::new(tracked.busy());
        let mut request = request.map(|body| ClientBody::new(body, progress, body_read_timeout));
        if let Some(certificate) = &certificate {
            request.extensions_mut().insert(certificate.clone());
        }
        if request.version() == http::Version::HTTP_11
            && request.headers().contains_key(http::header::UPGRADE)
        {
            let upgrade = tracked.expect_upgrade();
            request.extensions_mut().insert(upgrade);
        }
        let busy = tracked.busy();
        // Each request runs under the config current when it arrived, to its end, even if
        // a reload swaps the gateway meanwhile. Boxed: hyper keeps a slot the size of this
        // future in every connection.
        let gateway = current.load_full();
        let client = client.clone();
        Box::pin(async move {
            let metrics = gateway.metrics().clone();
            let handling = std::pin::pin!(gateway.handle(request, client));
            let response = super::backstop::answer_panics(handling, &metrics).await;
            Ok::<_, std::convert::Infallible>(response.map(|body| ServedBody::new(body, busy)))
        })
    })
}

/// The connection's first bytes, enough to tell HTTP/2 from HTTP/1; `None` when the client
/// closes, fails or stays silent past `deadline` first, or when `stop` comes first.
async fn first_bytes(
    stream: &mut ClientStream,
    remote: SocketAddr,
    deadline: Duration,
    stop: &mut watch::Receiver<bool>,
) -> Option<Bytes> {
    let first = tokio::select! {
        first = tokio::time::timeout(deadline, read_preface(stream)) => first,
        _ = stop.wait_for(|s| *s) => return None,
    };
    match first {
        Ok(Ok(Some(first))) => Some(first),
        Ok(Ok(None)) => None,
        Ok(Err(e)) => {
            debug!(%remote, error = %e, "connection failed before its first request");
            None
        }
        Err(_) => {
            debug!(%remote, "no request within the header read timeout");
            None
        }
    }
}

/// One accepted connection and what its driver needs.
pub(super) struct Connection {
    pub(super) protocols: Arc<Protocols>,
    pub(super) activity: Arc<Activity>,
    pub(super) metrics: Arc<Metrics>,
    /// When the connection reaches `max_connection_age`.
    pub(super) expires: tokio::time::Instant,
    pub(super) remote: SocketAddr,
    /// Given back when the connection closes, in its task or in the lot.
    _held: Held,
}

impl Connection {
    /// Serves HTTP/2 until the connection closes, or until a drain, `max_connection_age`, or
    /// `idle_timeout` without a stream sends GOAWAY: streams in flight finish, no new ones start.
    async fn serve_http2<S>(
        self,
        stream: ClientStream,
        first: Bytes,
        service: S,
        mut stop: watch::Receiver<bool>,
    ) where
        S: hyper::service::HttpService<Incoming, ResBody = ServedBody<ResponseBody>>,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        TokioExecutor: Http2ServerConnExec<S::Future, ServedBody<ResponseBody>>,
    {
        let io = TokioIo::new(ClientIo::new(stream, first, self.activity.clone()));
        // Boxed: kept inline, hyper's HTTP/2 state would size every connection's task.
        let mut connection = Box::pin(self.protocols.http2.serve_connection(io, service));
        let result = match self.watch_http2(connection.as_mut(), &mut stop).await {
            Some(result) => result,
            None => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        if let Err(e) = result {
            debug!(remote = %self.remote, error = %e, "connection ended with error");
        }
    }

    /// Runs an HTTP/2 connection until it ends (`Some`), or until it should be asked to end
    /// (`None`). Without the idle check, a client that opens connections and only answers
    /// PINGs holds its slots.
    async fn watch_http2<F>(
        &self,
        mut connection: std::pin::Pin<&mut F>,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<hyper::Result<()>>
    where
        F: std::future::Future<Output = hyper::Result<()>>,
    {
        let activity = &self.activity;
        let (mut seen, mut last_active) = (activity.requests(), tokio::time::Instant::now());
        // One timer, checked every second, for both limits: a branch per limit would be
        // polled on every wake-up of a busy connection.
        let tick = tokio::time::sleep(PARK_AFTER);
        let mut tick = std::pin::pin!(tick);
        loop {
            tokio::select! {
                result = connection.as_mut() => return Some(result),
                _ = stop.wait_for(|s| *s) => return None,
                _ = tick.as_mut() => {
                    let now = tokio::time::Instant::now();
                    if now >= self.expires {
                        self.metrics.connection_closed("max_age");
                        return None;
                    }
                    let requests = activity.requests();
                    if requests != seen || !activity.nothing_open() {
                        (seen, last_active) = (requests, now);
                    } else if now.duration_since(last_active) >= self.protocols.idle_timeout {
                        self.metrics.connection_closed("idle");
                        return None;
                    }
                    tick.as_mut().reset(now + PARK_AFTER);
                }
            }
        }
    }
}

/// When a connection accepted at `accepted` reaches `max_connection_age`.
fn deadline_at(accepted: tokio::time::Instant, protocols: &Protocols) -> tokio::time::Instant {
    accepted
        .checked_add(protocols.max_age)
        .unwrap_or_else(|| accepted + Duration::from_secs(100 * 365 * 86_400))
}

/// Reads until the bytes can no longer be the HTTP/2 preface, or are all of it. `None` when
/// the client closes without sending anything.
async fn read_preface(stream: &mut ClientStream) -> std::io::Result<Option<Bytes>> {
    let mut buf = [0u8; H2_PREFACE.len()];
    let mut len = 0;
    loop {
        let n = stream.read(&mut buf[len..]).await?;
        if n == 0 {
            return Ok((len > 0).then(|| Bytes::copy_from_slice(&buf[..len])));
        }
        len += n;
        if len == buf.len() || buf[..len] != H2_PREFACE[..len] {
            return Ok(Some(Bytes::copy_from_slice(&buf[..len])));
        }
    }
}

//! One client connection from accept to close: HTTP/2 (prior knowledge) or HTTP/1.1, and for
//! HTTP/1.1 the parking of idle keep-alive connections.
//!
//! hyper keeps an 8 KiB read and an 8 KiB write buffer for every HTTP/1 connection, idle or
//! not: 160 MiB for 10,000 idle keep-alive clients. Like nginx and HAProxy, tollgate frees
//! them while a connection waits: after [`PARK_AFTER`] without a request, and only when the
//! connection's [`Activity`] proves it stands between two requests, hyper is asked to close
//! the connection without touching the socket, hands the socket back with any bytes it had
//! read, and the socket waits for its next request: a plain one in the [`Lot`], its task
//! ended, holding nothing but what serving it again needs; over TLS, in its own task with
//! rustls' session beside it (its keys and a 4 KiB record buffer).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::{Bytes, BytesMut};
use hyper::body::Incoming;
use hyper::rt::bounds::Http2ServerConnExec;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tracing::debug;

use super::limits::Held;
use super::lot::{Closed, Lot, Resume};
use crate::conn::activity::{Activity, ClientIo};
use crate::conn::body::{ClientBody, RequestProgress, ServedBody};
use crate::conn::stream::ClientStream;
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
    http1: http1::Builder,
    http2: http2::Builder<TokioExecutor>,
    header_read_timeout: Duration,
    body_read_timeout: Duration,
    idle_timeout: Duration,
    max_age: Duration,
    max_connections_per_ip: usize,
    /// Where idle plain HTTP/1.1 connections wait; without one, each waits in its task.
    lot: Option<Lot>,
}

impl Protocols {
    /// HTTP/1.1 and HTTP/2 servers configured from the listener limits; idle plain HTTP/1.1
    /// connections park in `lot`.
    pub fn new(limits: &Limits, lot: Option<Lot>) -> Self {
        let mut http1 = http1::Builder::new();
        http1
            .timer(TokioTimer::new())
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

/// What woke the HTTP/1 driver.
enum Event {
    Done(hyper::Result<()>),
    Tick,
    Stop,
}

/// How one hyper HTTP/1 connection ended.
struct Driven {
    /// hyper's result.
    result: hyper::Result<()>,
    /// The request count when hyper was asked to close for parking, if it was.
    parking: Option<u64>,
    /// Whether the connection is closing for good (a drain or `max_connection_age`).
    stopping: bool,
}

/// The request counts by which the HTTP/1 driver tells an idle connection from a busy one.
struct Idle {
    /// Requests before this hyper connection started.
    at_start: u64,
    /// Requests at the last park tick.
    seen: u64,
}

impl Idle {
    /// Bookkeeping for a hyper connection started after `requests` requests.
    fn new(requests: u64) -> Self {
        Self {
            at_start: requests,
            seen: requests,
        }
    }

    /// On a park tick: the request count to park at when the connection has stood between
    /// two requests since the last tick; else `None`, the count noted for the next tick.
    fn check(&mut self, activity: &Activity) -> Option<u64> {
        let requests = activity.requests();
        // Parked only after a request: a client that never completes a head is
        // left to hyper's header read timeout, which parking would restart.
        if requests != self.at_start && requests == self.seen && activity.is_between_requests() {
            return Some(requests);
        }
        self.seen = requests;
        None
    }
}

/// One accepted connection and what its driver needs.
struct Connection {
    protocols: Arc<Protocols>,
    activity: Arc<Activity>,
    metrics: Arc<Metrics>,
    /// When the connection reaches `max_connection_age`.
    expires: tokio::time::Instant,
    remote: SocketAddr,
    /// Given back when the connection closes, in its task or in the lot.
    _held: Held,
}

/// The service an HTTP/1 connection runs, which moves with it between tasks and into the lot.
trait Http1Service:
    hyper::service::HttpService<Incoming, ResBody = ServedBody<ResponseBody>> + Unpin + Send + 'static
{
}

impl<T> Http1Service for T where
    T: hyper::service::HttpService<Incoming, ResBody = ServedBody<ResponseBody>>
        + Unpin
        + Send
        + 'static
{
}

/// An idle HTTP/1.1 connection in the lot: everything its task held but the socket.
struct ParkedHttp1<S> {
    connection: Connection,
    service: S,
    stop: watch::Receiver<bool>,
}

impl<S> Resume for ParkedHttp1<S>
where
    S: Http1Service,
    S::Future: Unpin + Send,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn resume(self: Box<Self>, stream: tokio::net::TcpStream) {
        let Self {
            connection,
            service,
            stop,
        } = *self;
        connection.metrics.connections_parked.dec();
        let stream = ClientStream::Plain(stream);
        tokio::spawn(connection.serve_http1(stream, Bytes::new(), service, stop));
    }

    fn closed(self: Box<Self>, why: Closed) {
        let metrics = &self.connection.metrics;
        metrics.connections_parked.dec();
        if why == Closed::Deadline && tokio::time::Instant::now() >= self.connection.expires {
            metrics.connection_closed("max_age");
        }
    }
}

/// hyper's HTTP/1 connection over a client socket.
type Http1Connection<S> = http1::Connection<TokioIo<ClientIo>, S>;

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

    /// Serves HTTP/1.1 on `stream`, parking the socket whenever it goes idle.
    ///
    /// The serving is boxed and the parking is not: a task is allocated at the size of its
    /// largest state, and a parked connection then holds a task the size of this loop (the
    /// socket, the service and a wait on readiness) instead of one sized for hyper's driver.
    ///
    /// Not an `async fn`: one moves its arguments into locals of its own, so its future holds
    /// them twice; the block below keeps them where it captured them.
    #[allow(clippy::manual_async_fn)]
    fn serve_http1<S>(
        self,
        mut stream: ClientStream,
        mut replay: Bytes,
        mut service: S,
        mut stop: watch::Receiver<bool>,
    ) -> impl Future<Output = ()> + Send
    where
        S: Http1Service,
        S::Future: Unpin + Send,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        async move {
            loop {
                let served =
                    Box::pin(self.serve_http1_until_idle(stream, replay, service, &mut stop));
                let Some((socket, handler)) = served.await else {
                    return;
                };
                (stream, service, replay) = (socket, handler, Bytes::new());
                stream = match (stream, self.protocols.lot.clone()) {
                    (ClientStream::Plain(tcp), Some(lot)) => {
                        // The task ends here; the lot starts another when a request comes.
                        self.metrics.connections_parked.inc();
                        let deadline = self.park_deadline();
                        let parked = Box::new(ParkedHttp1 {
                            connection: self,
                            service,
                            stop,
                        });
                        lot.park(tcp, deadline, parked);
                        return;
                    }
                    (stream, _) => stream,
                };
                if !self.park(&stream, &mut stop).await {
                    let _ = stream.shutdown().await;
                    return;
                }
            }
        }
    }

    /// When a parked connection is closed: at the header read timeout from now, or at
    /// `max_connection_age` if that comes first.
    fn park_deadline(&self) -> tokio::time::Instant {
        let timeout = tokio::time::Instant::now() + self.protocols.header_read_timeout;
        timeout.min(self.expires)
    }

    /// Serves HTTP/1.1 on `stream` until the connection closes (`None`) or goes idle between
    /// two requests; then hands back the socket and the service for parking.
    async fn serve_http1_until_idle<S>(
        &self,
        mut stream: ClientStream,
        mut replay: Bytes,
        mut service: S,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<(ClientStream, S)>
    where
        S: Http1Service,
        S::Future: Unpin + Send,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (activity, remote) = (&self.activity, self.remote);
        loop {
            let io = TokioIo::new(ClientIo::new(stream, replay, activity.clone()));
            // Boxed so that the socket, once handed back, is not kept beside hyper's state.
            let mut connection = Box::new(self.protocols.http1.serve_connection(io, service));
            let driven = self.drive_http1(&mut connection, stop).await;
            if let Err(e) = driven.result {
                debug!(%remote, error = %e, "connection ended with error");
                return None;
            }
            let parts = connection.into_parts();
            service = parts.service;
            let (socket, unread) = parts.io.into_inner().into_parts();
            stream = socket;
            replay = join(parts.read_buf, unread);

            // A 101 was written: the socket now belongs to the tunnel.
            match activity.hand_over(ClientIo::new(stream, replay, activity.clone())) {
                Ok(()) => return None,
                Err(io) => (stream, replay) = io.into_parts(),
            }

            // hyper closed for a reason of its own (`Connection: close`, end of input, a drain),
            // or a request slipped in while it was being asked to park.
            let parked = driven.parking.is_some_and(|requests| {
                requests == activity.requests() && activity.is_between_requests()
            });
            if !parked || driven.stopping {
                let _ = stream.shutdown().await;
                return None;
            }
            if replay.is_empty() {
                return Some((stream, service));
            }
            // The next request has begun arriving: serve it without waiting.
        }
    }

    /// Drives one hyper HTTP/1 connection until it closes, asking it to close when the socket
    /// should park, when `stop` turns true, or at `max_connection_age`.
    async fn drive_http1<S>(
        &self,
        connection: &mut Http1Connection<S>,
        stop: &mut watch::Receiver<bool>,
    ) -> Driven
    where
        S: Http1Service,
        S::Future: Unpin + Send,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let mut idle = Idle::new(self.activity.requests());
        let mut parking = None;
        let mut stopping = false;
        let tick = tokio::time::sleep(PARK_AFTER);
        let mut tick = std::pin::pin!(tick);
        let result = loop {
            let event = {
                let done = std::future::poll_fn(|cx| connection.poll_without_shutdown(cx));
                tokio::select! {
                    biased;
                    result = done => Event::Done(result),
                    _ = stop.wait_for(|s| *s), if !stopping => Event::Stop,
                    _ = tick.as_mut(), if parking.is_none() && !stopping => Event::Tick,
                }
            };
            match event {
                Event::Done(result) => break result,
                Event::Stop => {
                    stopping = true;
                    std::pin::Pin::new(&mut *connection).graceful_shutdown();
                }
                // Checked on the park tick rather than by a timer of its own: a branch more
                // in this select would be polled on every wake-up of a busy connection.
                Event::Tick if tokio::time::Instant::now() >= self.expires => {
                    // The request in flight, if any, finishes with `Connection: close`.
                    self.metrics.connection_closed("max_age");
                    stopping = true;
                    std::pin::Pin::new(&mut *connection).graceful_shutdown();
                }
                Event::Tick => match idle.check(&self.activity) {
                    Some(requests) => {
                        parking = Some(requests);
                        // Between two requests hyper closes at once and, through
                        // `poll_without_shutdown`, leaves the socket open.
                        std::pin::Pin::new(&mut *connection).graceful_shutdown();
                    }
                    None => tick
                        .as_mut()
                        .reset(tokio::time::Instant::now() + PARK_AFTER),
                },
            }
        };
        Driven {
            result,
            parking,
            stopping,
        }
    }

    /// Waits, holding nothing but the socket, for the next request to begin arriving; `false`
    /// when it does not within the header read timeout, by `max_connection_age`, or before a
    /// drain.
    ///
    /// Polled by hand rather than through `select!` and `readable()`: this wait is what every
    /// parked connection's task is sized by, and the socket's own reader slot holds the waker.
    async fn park(&self, stream: &ClientStream, stop: &mut watch::Receiver<bool>) -> bool {
        let parked = &self.metrics.connections_parked;
        parked.inc();
        // One timer for both limits.
        let wake = self.park_deadline();
        let mut sleep = std::pin::pin!(tokio::time::sleep_until(wake));
        let mut stopped = std::pin::pin!(stop.wait_for(|s| *s));
        let woke = std::future::poll_fn(|cx| {
            if let Poll::Ready(readable) = stream.poll_read_ready(cx) {
                return Poll::Ready(readable.is_ok());
            }
            if sleep.as_mut().poll(cx).is_ready() {
                if wake == self.expires {
                    self.metrics.connection_closed("max_age");
                }
                return Poll::Ready(false);
            }
            match stopped.as_mut().poll(cx) {
                Poll::Ready(_) => Poll::Ready(false),
                Poll::Pending => Poll::Pending,
            }
        })
        .await;
        parked.dec();
        woke
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

/// The bytes hyper had read, then those it had not yet taken from the replay, in a buffer of
/// their own: `read` shares hyper's 8 KiB read buffer even when empty, and keeping it would
/// keep that buffer alive while the connection is parked.
fn join(read: Bytes, unread: Bytes) -> Bytes {
    if read.is_empty() && unread.is_empty() {
        return Bytes::new();
    }
    let mut joined = BytesMut::with_capacity(read.len() + unread.len());
    joined.extend_from_slice(&read);
    joined.extend_from_slice(&unread);
    joined.freeze()
}

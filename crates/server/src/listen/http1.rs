//! HTTP/1.1 on one client connection, and the parking of idle keep-alive connections.
//!
//! hyper keeps an 8 KiB read and an 8 KiB write buffer for every HTTP/1 connection, idle or
//! not: 160 MiB for 10,000 idle keep-alive clients. Like nginx and HAProxy, tollgate frees
//! them while a connection waits: after [`PARK_AFTER`] without a request, and only when the
//! connection's [`Activity`] proves it stands between two requests, hyper is asked to close
//! the connection without touching the socket, hands the socket back with any bytes it had
//! read, and the socket waits for its next request: a plain one in the
//! [lot](super::lot::Lot), its task ended, holding nothing but what serving it again needs;
//! over TLS, in its own task with rustls' session beside it (its keys and a 4 KiB record
//! buffer).

use std::future::Future;
use std::task::Poll;

use bytes::{Bytes, BytesMut};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;
use tracing::debug;

use super::connection::{Connection, PARK_AFTER};
use super::lot::{Closed, Resume};
use crate::conn::activity::{Activity, ClientIo};
use crate::conn::body::ServedBody;
use crate::conn::stream::ClientStream;
use crate::outbound::body::ResponseBody;

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

/// The service an HTTP/1 connection runs, which moves with it between tasks and into the lot.
pub(super) trait Http1Service:
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
        self.connection.metrics.connections_parked.dec();
        if why == Closed::Deadline {
            self.connection.count_if_aged();
        }
    }
}

/// hyper's HTTP/1 connection over a client socket.
type Http1Connection<S> = http1::Connection<TokioIo<ClientIo>, S>;

impl Connection {
    /// Serves HTTP/1.1 on `stream`, parking the socket whenever it goes idle.
    ///
    /// The serving is boxed and the parking is not: a task is allocated at the size of its
    /// largest state, and a parked connection then holds a task the size of this loop (the
    /// socket, the service and a wait on readiness) instead of one sized for hyper's driver.
    ///
    /// Not an `async fn`: one moves its arguments into locals of its own, so its future holds
    /// them twice; the block below keeps them where it captured them.
    #[allow(clippy::manual_async_fn)]
    pub(super) fn serve_http1<S>(
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

    /// After a parked connection's deadline: counts it closed for `max_age` when that limit,
    /// rather than the header read timeout, is what ran out. One rule for both places a
    /// connection parks (its task and the lot).
    fn count_if_aged(&self) {
        if tokio::time::Instant::now() >= self.expires {
            self.metrics.connection_closed("max_age");
        }
    }

    /// When a parked connection is closed: at the header read timeout from now, or at
    /// `max_connection_age` if that comes first.
    fn park_deadline(&self) -> tokio::time::Instant {
        let timeout = tokio::time::Instant::now() + self.protocols.header_read_timeout();
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
        let mut sleep = std::pin::pin!(tokio::time::sleep_until(self.park_deadline()));
        let mut stopped = std::pin::pin!(stop.wait_for(|s| *s));
        let woke = std::future::poll_fn(|cx| {
            if let Poll::Ready(readable) = stream.poll_read_ready(cx) {
                return Poll::Ready(readable.is_ok());
            }
            if sleep.as_mut().poll(cx).is_ready() {
                self.count_if_aged();
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

//! The client side's body types: the request body streamed from the client (with its idle
//! deadline and progress), a streamed body watched to its end, and the response on its way out.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use super::activity::Busy;

/// What a [`Watched`] body reports to.
pub trait EndWatcher: Unpin {
    /// The body has been read to its end (also called at once for an empty body).
    fn ended(&mut self);
    /// The body failed mid-stream.
    fn failed(&mut self) {}
}

/// Why a streamed body failed.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The peer's framing was broken, or the connection ended mid-body.
    #[error("{0}")]
    Read(#[source] hyper::Error),
    /// The peer sent nothing for this long in the middle of the body.
    #[error("no body data for {0:?}")]
    Stalled(Duration),
}

/// A deadline between two pieces of a body, armed only while the body waits on its peer:
/// a body that arrives without waiting never allocates a timer.
struct IdleDeadline {
    after: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    armed: bool,
}

impl IdleDeadline {
    /// Ready once the peer has been silent for `after` since the body last made progress.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.armed {
            let at = tokio::time::Instant::now() + self.after;
            match &mut self.timer {
                Some(timer) => timer.as_mut().reset(at),
                None => self.timer = Some(Box::pin(tokio::time::sleep_until(at))),
            }
            self.armed = true;
        }
        self.timer
            .as_mut()
            .is_some_and(|timer| timer.as_mut().poll(cx).is_ready())
    }
}

/// A body streamed from a peer that tells its watcher when it has been read to its end.
pub struct Watched<W: EndWatcher> {
    inner: Incoming,
    watcher: W,
    idle: Option<IdleDeadline>,
}

impl<W: EndWatcher> Watched<W> {
    /// Wraps `inner`; an empty body counts as ended at once.
    pub fn new(inner: Incoming, mut watcher: W) -> Self {
        if inner.is_end_stream() {
            watcher.ended();
        }
        Self {
            inner,
            watcher,
            idle: None,
        }
    }

    /// Fails the body with [`BodyError::Stalled`] when the peer sends nothing for `after` in
    /// the middle of it, which frees whatever waits on it (a buffer, a connection, a permit).
    pub fn idle_timeout(mut self, after: Duration) -> Self {
        self.idle = Some(IdleDeadline {
            after,
            timer: None,
            armed: false,
        });
        self
    }
}

impl<W: EndWatcher> Watched<W> {
    /// The watcher, to hand it more to release when the body ends.
    pub fn watcher_mut(&mut self) -> &mut W {
        &mut self.watcher
    }
}

impl<W: EndWatcher> Body for Watched<W> {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        let frame = Pin::new(&mut this.inner).poll_frame(cx);
        match &frame {
            Poll::Ready(None) => this.watcher.ended(),
            // The last frame of a body of known length: hyper may not poll again.
            Poll::Ready(Some(Ok(_))) if this.inner.is_end_stream() => this.watcher.ended(),
            Poll::Ready(Some(Err(_))) => this.watcher.failed(),
            Poll::Pending => {
                if let Some(idle) = &mut this.idle
                    && idle.poll_expired(cx)
                {
                    this.watcher.failed();
                    return Poll::Ready(Some(Err(BodyError::Stalled(idle.after))));
                }
                return Poll::Pending;
            }
            _ => {}
        }
        if let Some(idle) = &mut this.idle {
            idle.armed = false;
        }
        frame.map_err(BodyError::Read)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A client's request body, which keeps its connection busy until read to the end or dropped.
/// Its errors are [`ClientBodyError`], so a client's bad framing is never blamed on an upstream.
pub struct ClientBody(Watched<RequestProgress>);

impl ClientBody {
    /// Wraps the body hyper read from a client, failing it when the client stops sending for
    /// `idle` mid-body.
    pub fn new(inner: Incoming, progress: RequestProgress, idle: Duration) -> Self {
        Self(Watched::new(inner, progress).idle_timeout(idle))
    }
}

/// The client's request body failed: malformed chunked framing, the client went away before
/// sending all of it, or it stopped sending.
#[derive(Debug, thiserror::Error)]
#[error("client request body: {0}")]
pub struct ClientBodyError(#[source] pub BodyError);

impl Body for ClientBody {
    type Data = Bytes;
    type Error = ClientBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ClientBodyError>>> {
        Pin::new(&mut self.get_mut().0)
            .poll_frame(cx)
            .map(|frame| frame.map(|f| f.map_err(ClientBodyError)))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.0.size_hint()
    }
}

/// Whether a request body was read to its end, for the connection it arrived on.
pub struct RequestProgress {
    busy: Busy,
    ended: bool,
}

impl RequestProgress {
    /// Keeps `busy` until the body is dropped.
    pub fn new(busy: Busy) -> Self {
        Self { busy, ended: false }
    }
}

impl EndWatcher for RequestProgress {
    fn ended(&mut self) {
        self.ended = true;
    }
}

impl Drop for RequestProgress {
    fn drop(&mut self) {
        if !self.ended {
            self.busy.request_abandoned();
        }
    }
}

/// A response on its way to the client, which keeps its connection busy until dropped.
pub struct ServedBody<B> {
    inner: B,
    _busy: Busy,
}

impl<B> ServedBody<B> {
    /// Wraps a response body; `busy` is released when hyper drops it.
    pub fn new(inner: B, busy: Busy) -> Self {
        Self { inner, _busy: busy }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for ServedBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

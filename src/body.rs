//! Body types of the data path: streamed from the peer, or produced by the gateway.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{Either, Full, Limited};
use hyper::body::Incoming;

use crate::proxy::pool::UpstreamBody;
use crate::server::activity::{self, Busy};

/// What the gateway sends to clients: an upstream's streamed body or one it produced.
pub type ResponseBody = Either<UpstreamBody, Full<Bytes>>;

/// What the gateway sends upstream: the client's streamed body under the route's limit.
pub type RequestBody = Either<Limited<ClientBody>, Full<Bytes>>;

/// A complete body from bytes.
pub fn full(bytes: impl Into<Bytes>) -> ResponseBody {
    Either::Right(Full::new(bytes.into()))
}

/// A client's request body, which keeps its connection busy until read to the end or dropped.
pub struct ClientBody {
    inner: Incoming,
    busy: Option<Busy>,
    ended: bool,
}

impl ClientBody {
    /// Wraps a request body; `busy` is released when the body ends or is dropped.
    pub fn new(inner: Incoming, busy: Option<Busy>) -> Self {
        Self {
            inner,
            busy,
            ended: false,
        }
    }
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let frame = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(None) = frame {
            this.ended = true;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for ClientBody {
    fn drop(&mut self) {
        if let Some(busy) = &self.busy
            && !self.ended
            && !self.inner.is_end_stream()
        {
            activity::mark_unclean(busy.activity());
        }
    }
}

/// A response on its way to the client, which keeps its connection busy until dropped.
pub struct ServedBody {
    inner: ResponseBody,
    _busy: Option<Busy>,
}

impl ServedBody {
    /// Wraps a response body; `busy` is released when hyper drops it.
    pub fn new(inner: ResponseBody, busy: Option<Busy>) -> Self {
        Self { inner, _busy: busy }
    }
}

impl Body for ServedBody {
    type Data = Bytes;
    type Error = <ResponseBody as Body>::Error;

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

//! Body types of the data path: streamed from the peer, or produced by the gateway.

use bytes::Bytes;
use http_body_util::{Either, Full, Limited};
use hyper::body::Incoming;

/// What the gateway sends to clients: an upstream's streamed body or one it produced.
pub type ResponseBody = Either<Incoming, Full<Bytes>>;

/// What the gateway sends upstream: the client's streamed body under the route's limit.
pub type RequestBody = Either<Limited<Incoming>, Full<Bytes>>;

/// A complete body from bytes.
pub fn full(bytes: impl Into<Bytes>) -> ResponseBody {
    Either::Right(Full::new(bytes.into()))
}

//! The bodies the outbound side produces and sends: an upstream's streamed response, one the
//! gateway made, and the client's body under the route's limit.

use bytes::Bytes;
use http_body_util::{Either, Full, Limited};

use super::pool::UpstreamBody;
use crate::conn::body::ClientBody;

/// What the gateway sends to clients: an upstream's streamed body or one it produced.
pub type ResponseBody = Either<UpstreamBody, Full<Bytes>>;

/// What the gateway sends upstream: the client's streamed body under the route's limit.
pub type RequestBody = Either<Limited<ClientBody>, Full<Bytes>>;

/// A complete body from bytes.
pub fn full(bytes: impl Into<Bytes>) -> ResponseBody {
    Either::Right(Full::new(bytes.into()))
}

/// The gateway's JSON answer for `error` (the core's one table).
pub fn error_response(
    error: &tollgate_core::GatewayError,
    request_id: &str,
) -> http::Response<ResponseBody> {
    error.to_response_with(request_id.into(), full)
}

/// The gateway's answer for `error` naming `ids`, or for a client that made a gRPC call
/// (`grpc`), which reads a `grpc-status` instead of the JSON answer.
pub fn error_response_for(
    error: &tollgate_core::GatewayError,
    ids: tollgate_core::error::AnswerIds<'_>,
    grpc: bool,
) -> http::Response<ResponseBody> {
    match grpc {
        true => error.to_grpc_response_with(full),
        false => error.to_response_with(ids, full),
    }
}

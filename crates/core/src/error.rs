//! `GatewayError` and the one table that maps it to a status and a JSON body.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};

use tollgate_auth::Refusal;
pub use tollgate_auth::refusal::{AnswerIds, json_error_with};
use tollgate_http::grpc;
use tollgate_http::host::HostError;
use tollgate_http::path::PathError;

pub use tollgate_http::BoxError;

/// Whole seconds, rounded up: a client told 0 would retry at once.
pub fn seconds_up(d: std::time::Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Everything that can stop a request inside the gateway.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// No route matches the host and path.
    #[error("no route")]
    NoRoute,
    /// The request path is malformed or dangerous.
    #[error("invalid path: {0}")]
    BadPath(#[from] PathError),
    /// The request's authority is missing, repeated or malformed.
    #[error("invalid host: {0}")]
    BadHost(#[from] HostError),
    /// The request is malformed in another way.
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// The client's body broke off or was malformed while it was being forwarded.
    #[error("client body failed: {0}")]
    ClientBody(#[source] BoxError),
    /// The client stopped sending its body (`limits.body_read_timeout` of silence), or did
    /// not finish the part the gateway must hold within the route's timeout.
    #[error("request body timed out after {0:?}")]
    RequestBodyTimeout(std::time::Duration),
    /// The request target is longer than `limits.max_uri_bytes`.
    #[error("request target longer than {0} bytes")]
    UriTooLong(usize),
    /// The declared or streamed body exceeds the route's limit.
    #[error("request body larger than {limit} bytes")]
    BodyTooLarge {
        /// The route's limit.
        limit: u64,
    },
    /// The auth core refused: no valid credential (401) or the policy's no (403).
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The route's upstream credential could not be obtained.
    #[error("upstream credentials unavailable: {0}")]
    CredentialsUnavailable(#[source] crate::credentials::CredentialError),
    /// The upstream could not be reached (refused, DNS, TLS).
    #[error("upstream connect failed: {0}")]
    UpstreamConnect(#[source] BoxError),
    /// The upstream accepted but failed (reset, malformed response).
    #[error("upstream failed: {0}")]
    UpstreamFailed(#[source] BoxError),
    /// An upstream or route is at its limit of requests in flight or connections open: refused
    /// at once rather than queued.
    #[error("upstream overloaded: {what} at the limit of {limit}")]
    UpstreamOverloaded {
        /// What is at its limit.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// The upstream sent no response head within the route's timeout.
    #[error("upstream timed out after {0:?}")]
    UpstreamTimeout(std::time::Duration),
    /// A rate limit or quota of the route is spent for this caller.
    #[error("rate limited by {limit}; retry after {retry_after:?}")]
    RateLimited {
        /// The limit's name.
        limit: std::sync::Arc<str>,
        /// Until one more request would be allowed.
        retry_after: std::time::Duration,
    },
    /// A bug: something that should not happen.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl GatewayError {
    /// Status and the stable, client-facing error text. The one place errors become answers.
    pub fn status_and_message(&self) -> (StatusCode, &'static str) {
        match self {
            GatewayError::NoRoute => (StatusCode::NOT_FOUND, "no route"),
            GatewayError::BadPath(_) => (StatusCode::BAD_REQUEST, "invalid path"),
            GatewayError::BadHost(_) => (StatusCode::BAD_REQUEST, "invalid host"),
            GatewayError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad request"),
            GatewayError::ClientBody(_) => (StatusCode::BAD_REQUEST, "bad request"),
            GatewayError::RequestBodyTimeout(_) => {
                (StatusCode::REQUEST_TIMEOUT, "request body timed out")
            }
            GatewayError::UriTooLong(_) => (StatusCode::URI_TOO_LONG, "request target too long"),
            GatewayError::BodyTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "request body too large")
            }
            GatewayError::Refused(refusal) => refusal.status_and_message(),
            GatewayError::CredentialsUnavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "upstream credentials unavailable",
            ),
            GatewayError::UpstreamConnect(_) => (StatusCode::BAD_GATEWAY, "upstream unavailable"),
            GatewayError::UpstreamFailed(_) => (StatusCode::BAD_GATEWAY, "upstream failed"),
            GatewayError::UpstreamTimeout(_) => (StatusCode::GATEWAY_TIMEOUT, "upstream timed out"),
            GatewayError::UpstreamOverloaded { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "upstream_overloaded")
            }
            GatewayError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            GatewayError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
        }
    }

    /// The `kind` label of upstream failures, for metrics.
    pub fn upstream_kind(&self) -> Option<&'static str> {
        match self {
            GatewayError::UpstreamConnect(_) => Some("connect"),
            GatewayError::UpstreamTimeout(_) => Some("timeout"),
            GatewayError::UpstreamFailed(_) => Some("reset"),
            GatewayError::UpstreamOverloaded { .. } => Some("overloaded"),
            _ => None,
        }
    }

    /// A short reason safe to show the client, where one adds to the message.
    pub fn reason(&self) -> Option<String> {
        match self {
            GatewayError::BadPath(e) => Some(e.to_string()),
            GatewayError::BadHost(e) => Some(e.to_string()),
            GatewayError::BadRequest(r) => Some((*r).to_owned()),
            GatewayError::ClientBody(_) => Some("request body malformed or incomplete".to_owned()),
            GatewayError::RequestBodyTimeout(after) => Some(format!(
                "no complete body within {}",
                humantime::format_duration(*after)
            )),
            GatewayError::BodyTooLarge { limit } => Some(format!("limit is {limit} bytes")),
            GatewayError::Refused(refusal) => Some(refusal.reason()),
            GatewayError::CredentialsUnavailable(e) => Some(e.to_string()),
            GatewayError::UriTooLong(limit) => Some(format!("limit is {limit} bytes")),
            GatewayError::UpstreamOverloaded { what, limit } => {
                Some(format!("{what} at the limit of {limit}"))
            }
            GatewayError::RateLimited { limit, retry_after } => Some(format!(
                "limit {limit}; retry in {} s",
                seconds_up(*retry_after).max(1)
            )),
            GatewayError::NoRoute
            | GatewayError::UpstreamConnect(_)
            | GatewayError::UpstreamFailed(_)
            | GatewayError::UpstreamTimeout(_)
            | GatewayError::Internal(_) => None,
        }
    }

    /// The JSON response for this error, its body made by `body` (so an embedding service
    /// answers with its own body type, byte for byte what the gateway sends).
    pub fn to_response_with<B>(
        &self,
        ids: AnswerIds<'_>,
        body: impl FnOnce(Bytes) -> B,
    ) -> Response<B> {
        let (status, message) = self.status_and_message();
        let mut response = json_error_with(status, message, self.reason().as_deref(), ids, body);
        self.add_headers(response.headers_mut());
        response
    }

    /// The answer for a client that made a gRPC call, which reads no HTTP status or JSON: a
    /// trailers-only response (HTTP 200, no body) whose `grpc-status` is the code the status
    /// maps to and whose `grpc-message` is the message and the reason.
    pub fn to_grpc_response_with<B>(&self, body: impl FnOnce(Bytes) -> B) -> Response<B> {
        let (status, message) = self.status_and_message();
        let text = match self.reason() {
            Some(reason) => format!("{message}: {reason}"),
            None => message.to_owned(),
        };
        let mut response = Response::new(body(Bytes::new()));
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert(
            grpc::GRPC_STATUS.clone(),
            grpc::Code::for_status(status).header_value(),
        );
        headers.insert(grpc::GRPC_MESSAGE.clone(), grpc::message_value(&text));
        self.add_headers(headers);
        response
    }

    /// What an answer carries besides its body: `Retry-After` when capacity is short, and a
    /// refusal's own headers (`WWW-Authenticate`).
    fn add_headers(&self, headers: &mut http::HeaderMap) {
        if let GatewayError::UpstreamOverloaded { .. } = self {
            // Capacity frees as soon as requests in flight finish.
            headers.insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let GatewayError::RateLimited { retry_after, .. } = self {
            headers.insert(
                http::header::RETRY_AFTER,
                HeaderValue::from(seconds_up(*retry_after).max(1)),
            );
        }
        if let GatewayError::Refused(refusal) = self {
            refusal.add_headers(headers);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn body_is_json_with_request_id() {
        let response = GatewayError::BodyTooLarge { limit: 10 }
            .to_response_with("rid-1".into(), http_body_util::Full::new);
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error"], "request body too large");
        assert_eq!(json["reason"], "limit is 10 bytes");
        assert_eq!(json["request_id"], "rid-1");
    }

    #[tokio::test]
    async fn a_grpc_answer_is_trailers_only_with_the_code_and_reason() {
        let response = GatewayError::BodyTooLarge { limit: 10 }
            .to_grpc_response_with(http_body_util::Full::new);
        assert_eq!(response.status(), StatusCode::OK);
        let h = response.headers();
        assert_eq!(h["content-type"], "application/grpc");
        assert_eq!(h["grpc-status"], "8");
        assert_eq!(
            h["grpc-message"],
            "request body too large: limit is 10 bytes"
        );
        assert!(http_body::Body::is_end_stream(response.body()));
    }
}

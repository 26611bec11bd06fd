//! The auth core's refusals and the one table that turns them into answers: `401` with a
//! `WWW-Authenticate` challenge, or `403` (RFC 6750 §3). The gateway's own error table defers
//! to it, so the gateway and an embedding service answer byte for byte alike.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use http::{Response, StatusCode};
use serde::Serialize;

use crate::AuthError;
use crate::policy::Forbidden;

/// Why the auth core refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No valid credential for a protected route.
    #[error("unauthenticated: {0}")]
    Unauthenticated(#[source] AuthError),
    /// A valid credential that the route's policy refuses.
    #[error("forbidden: {0}")]
    Forbidden(#[source] Forbidden),
    /// A valid token without the scopes the route requires (space-separated).
    #[error("forbidden: insufficient scope (needs {0})")]
    InsufficientScope(std::sync::Arc<str>),
    /// A method the route does not serve; the allowed ones, comma-separated.
    #[error("method not allowed (allowed: {0})")]
    MethodNotAllowed(std::sync::Arc<str>),
}

impl Refusal {
    /// Status and the stable, client-facing error text.
    pub fn status_and_message(&self) -> (StatusCode, &'static str) {
        match self {
            // Not the caller's fault: the provider that vouches for opaque tokens is down.
            Refusal::Unauthenticated(AuthError::IntrospectionUnavailable) => {
                (StatusCode::SERVICE_UNAVAILABLE, "service unavailable")
            }
            Refusal::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Refusal::Forbidden(_) | Refusal::InsufficientScope(_) => {
                (StatusCode::FORBIDDEN, "forbidden")
            }
            Refusal::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
        }
    }

    /// The short reason shown to the client.
    pub fn reason(&self) -> String {
        match self {
            Refusal::Unauthenticated(e) => e.to_string(),
            Refusal::Forbidden(e) => e.to_string(),
            Refusal::InsufficientScope(_) => Forbidden::InsufficientScope.to_string(),
            Refusal::MethodNotAllowed(_) => "method not allowed on this route".to_owned(),
        }
    }

    /// The `WWW-Authenticate` challenge (RFC 6750 §3).
    pub fn challenge(&self) -> String {
        match self {
            Refusal::Unauthenticated(AuthError::Missing) => r#"Bearer realm="tollgate""#.to_owned(),
            Refusal::Unauthenticated(AuthError::MalformedHeader) => format!(
                r#"Bearer realm="tollgate", error="invalid_request", error_description="{}""#,
                AuthError::MalformedHeader
            ),
            Refusal::Unauthenticated(e) => format!(
                r#"Bearer realm="tollgate", error="invalid_token", error_description="{e}""#
            ),
            Refusal::Forbidden(e) => format!(
                r#"Bearer realm="tollgate", error="insufficient_scope", error_description="{e}""#
            ),
            Refusal::InsufficientScope(scope) => format!(
                r#"Bearer realm="tollgate", error="insufficient_scope", error_description="insufficient scope", scope="{scope}""#
            ),
            Refusal::MethodNotAllowed(_) => String::new(),
        }
    }

    /// The headers the answer carries besides its body: `Allow` for a 405 (RFC 9110 §15.5.6),
    /// else the `WWW-Authenticate` challenge.
    pub fn add_headers(&self, headers: &mut http::HeaderMap) {
        if let Refusal::MethodNotAllowed(allowed) = self {
            if let Ok(allow) = HeaderValue::from_str(allowed) {
                headers.insert(http::header::ALLOW, allow);
            }
        } else if let Ok(challenge) = HeaderValue::from_str(&self.challenge()) {
            headers.insert(WWW_AUTHENTICATE, challenge);
        }
    }

    /// The JSON answer, its body made by `body` (an embedding service's own body type).
    pub fn into_response_with<B>(
        self,
        request_id: &str,
        body: impl FnOnce(Bytes) -> B,
    ) -> Response<B> {
        let (status, message) = self.status_and_message();
        let mut response = json_error_with(
            status,
            message,
            Some(&self.reason()),
            request_id.into(),
            body,
        );
        self.add_headers(response.headers_mut());
        response
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace_id: Option<&'a str>,
}

/// The ids an error answer names: the request's, and its trace's when traces are on.
#[derive(Debug, Clone, Copy)]
pub struct AnswerIds<'a> {
    /// The gateway's request id.
    pub request_id: &'a str,
    /// The OpenTelemetry trace id.
    pub trace_id: Option<&'a str>,
}

impl<'a> From<&'a str> for AnswerIds<'a> {
    fn from(request_id: &'a str) -> Self {
        Self {
            request_id,
            trace_id: None,
        }
    }
}

/// A JSON error response `{"error", "reason"?, "request_id", "trace_id"?}`, the body made by
/// `body`.
pub fn json_error_with<B>(
    status: StatusCode,
    error: &str,
    reason: Option<&str>,
    ids: AnswerIds<'_>,
    body: impl FnOnce(Bytes) -> B,
) -> Response<B> {
    let json = serde_json::to_vec(&ErrorBody {
        error,
        reason,
        request_id: ids.request_id,
        trace_id: ids.trace_id,
    })
    .unwrap_or_else(|_| b"{\"error\":\"internal error\"}".to_vec());
    let mut response = Response::new(body(Bytes::from(json)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

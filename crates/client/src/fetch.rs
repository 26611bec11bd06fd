//! The client for tollgate's own small exchanges (JWKS and discovery documents, vendor logins,
//! health probes): one concrete client and one non-generic `fetch`, so the HTTP and TLS stack is
//! compiled once for all of them instead of once per caller crate and body type.

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http::response::Parts;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use tollgate_config::TrustRoots;
use tollgate_http::BoxError;
use tollgate_http::BoxFuture;

/// The client every small exchange uses.
pub type FetchClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Why an exchange gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Connect, TLS or protocol failure.
    #[error("unreachable: {0}")]
    Unreachable(#[source] BoxError),
    /// No whole answer within the deadline.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The body broke off or passed the size limit.
    #[error("invalid body: {0}")]
    Body(#[source] BoxError),
}

/// A client trusting `roots` (a private CA's bundle replaces the public roots).
pub fn fetch_client(roots: &TrustRoots) -> FetchClient {
    crate::build_client_trusting(roots)
}

/// Sends `request` and reads the answer's head and at most `max_bytes` of its body, all within
/// `timeout`. Any status is an answer: the caller decides which ones it accepts.
#[inline(never)]
pub fn fetch<'a>(
    client: &'a FetchClient,
    request: Request<Full<Bytes>>,
    timeout: Duration,
    max_bytes: usize,
) -> BoxFuture<'a, Result<(Parts, Bytes), FetchError>> {
    Box::pin(async move {
        let exchange = async {
            let response = client
                .request(request)
                .await
                .map_err(|e| FetchError::Unreachable(Box::new(e)))?;
            let (head, body) = response.into_parts();
            let body = Limited::new(body, max_bytes)
                .collect()
                .await
                .map_err(FetchError::Body)?;
            Ok((head, body.to_bytes()))
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| FetchError::Timeout(timeout))?
    })
}

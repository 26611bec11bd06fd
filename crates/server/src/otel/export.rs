//! The OTLP exporter's HTTP client: tollgate's own hyper client, on the tokio runtime.
//!
//! The SDK's batch processor exports from a thread of its own, outside the runtime, so each
//! export is spawned onto the runtime and awaited from there.

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use opentelemetry_http::{HttpClient, HttpError};

/// The largest collector answer read (its answer is a short status message).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Sends OTLP requests with the public roots (a collector behind a private CA is not yet
/// configurable).
#[derive(Debug)]
pub struct OtlpClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    runtime: tokio::runtime::Handle,
}

impl OtlpClient {
    /// A client on the current runtime. Panics outside one (only `Tracing::reusing` calls it,
    /// from the gateway's start-up inside the runtime).
    pub fn new() -> Self {
        Self {
            client: tollgate_client::build_client(),
            runtime: tokio::runtime::Handle::current(),
        }
    }
}

#[async_trait::async_trait]
impl HttpClient for OtlpClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let exchange = async move {
            let response = client.request(request.map(Full::new)).await?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_ANSWER_BYTES).collect().await?;
            Ok::<_, HttpError>(Response::from_parts(parts, body.to_bytes()))
        };
        self.runtime.spawn(exchange).await?
    }
}

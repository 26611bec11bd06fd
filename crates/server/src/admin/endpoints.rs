//! The admin listener, apart from the data path: liveness, readiness (with each upstream
//! credential provider's state), Prometheus metrics and the signing keys' public JWKS.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use bytes::Bytes;
use futures_util::FutureExt;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tracing::debug;

use crate::conn::accept::accept_loop;
use crate::outbound::body::{ResponseBody, full};
use arc_swap::ArcSwap;
use tollgate_client::fetch;
use tollgate_config::{AdminLimits, Limits};

use crate::gateway::Gateway;
use tollgate_core::credentials::ProviderState;
use tollgate_http::BoxFuture;

/// Process-wide state the admin endpoints report.
#[derive(Debug, Default)]
pub struct AdminState {
    draining: AtomicBool,
    /// `/.well-known/jwks.json`, rendered once at startup; `None`: no signing key, 404.
    jwks: arc_swap::ArcSwapOption<Bytes>,
    gateway: Option<Arc<ArcSwap<Gateway>>>,
}

impl AdminState {
    /// State that serves `jwks` (see [`tollgate_config::keygen::published_jwks`]) as the key set.
    pub fn with_jwks(jwks: Option<Bytes>) -> Self {
        Self {
            jwks: arc_swap::ArcSwapOption::from(jwks.map(Arc::new)),
            ..Self::default()
        }
    }

    /// Reports on the current gateway: its metrics (`/metrics`) and providers (`/readyz`).
    pub fn with_gateway(mut self, gateway: Arc<ArcSwap<Gateway>>) -> Self {
        self.gateway = Some(gateway);
        self
    }

    /// Replaces the published key set (after a reload).
    pub fn set_jwks(&self, jwks: Option<Bytes>) {
        self.jwks.store(jwks.map(Arc::new));
    }

    /// Marks the gateway as draining: `/readyz` answers 503 from now on.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// The gateway currently serving, if this state reports on one.
    pub fn gateway(&self) -> Option<Arc<Gateway>> {
        self.gateway.as_ref().map(|g| g.load_full())
    }

    /// Whether shutdown has begun.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}

fn json(status: StatusCode, body: impl Into<Bytes>) -> Response<ResponseBody> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

// RFC 7517 §8.5: the JWK Set media type. Public keys only, so caches may keep it a while.
fn jwks_response(body: Bytes) -> Response<ResponseBody> {
    let mut response = Response::new(full(body));
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/jwk-set+json"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("max-age=300"));
    response
}

/// `/readyz`: 503 while draining, while a `required` provider has no valid token, or until the
/// revocation list has been read once; the body lists every provider's state and whether the
/// state store answers.
fn readiness(state: &AdminState) -> Response<ResponseBody> {
    let mut ready = !state.is_draining();
    let mut providers = serde_json::Map::new();
    let gateway = state.gateway.as_ref().map(|g| g.load_full());
    let caches = gateway.as_ref().map_or(&[][..], |g| g.providers().all());
    for cache in caches {
        let entry = match cache.state() {
            ProviderState::Valid(expires_at) => serde_json::json!({
                "state": "valid",
                "expires_in_secs": expires_at
                    .duration_since(SystemTime::now())
                    .map_or(0, |d| d.as_secs()),
            }),
            ProviderState::Failed(reason) => {
                serde_json::json!({"state": "failed", "error": reason})
            }
            ProviderState::Empty => serde_json::json!({"state": "empty"}),
        };
        if cache.config().required && entry["state"] != "valid" {
            ready = false;
        }
        providers.insert(cache.name().to_owned(), entry);
    }
    let mut waiting = (!ready).then_some("waiting for upstream credentials");
    // An unreachable store is reported, not a reason to turn unready: the last list read stays
    // in force, and taking every replica out of rotation would be the bigger outage. A replica
    // that has never read the list would let revoked tokens in, so it waits.
    let revocations = gateway.as_ref().map(|g| g.verifier().revocations());
    let state_store = revocations.and_then(|r| Some((r.store()?, r.store_up(), r.loaded())));
    if let Some((_, _, false)) = state_store {
        ready = false;
        waiting = Some("waiting for the revocation list");
    }
    let status = match (state.is_draining(), waiting) {
        (true, _) => "draining",
        (false, None) => "ready",
        (false, Some(reason)) => reason,
    };
    let mut body = serde_json::json!({ "status": status });
    if !providers.is_empty() {
        body["providers"] = serde_json::Value::Object(providers);
    }
    if let Some((store, reachable, loaded)) = state_store {
        body["state_store"] = serde_json::json!({
            "store": store,
            "reachable": reachable,
            "revocations_loaded": loaded,
        });
    }
    if let Some(limits) = gateway.as_deref().and_then(rate_limits_status) {
        body["rate_limits"] = limits;
    }
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json(code, body.to_string())
}

/// Where the fleet's rate limits are kept, when in Redis. Like the state store, Redis down is
/// reported and not a reason to turn unready: each replica enforces its share meanwhile.
fn rate_limits_status(gateway: &crate::gateway::Gateway) -> Option<serde_json::Value> {
    let shared = gateway.core().limiter().shared_up()?;
    Some(serde_json::json!({
        "kept_in": if shared { "redis" } else { "local share (redis unreachable)" },
    }))
}

/// Answers one admin request.
pub fn respond<B>(state: &AdminState, request: &Request<B>) -> Response<ResponseBody> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return json(
            StatusCode::METHOD_NOT_ALLOWED,
            r#"{"error":"method not allowed"}"#,
        );
    }
    match request.uri().path() {
        "/healthz" => json(StatusCode::OK, r#"{"status":"ok"}"#),
        "/readyz" => readiness(state),
        "/metrics" => match &state.gateway {
            Some(gateway) => {
                let gateway = gateway.load();
                let metrics = gateway.metrics().clone();
                // Read when scraped, from what /readyz reads: set from request outcomes, a
                // success reported after a concurrent failure could leave it 1 while Redis is down.
                if let Some(up) = gateway.core().limiter().shared_up() {
                    metrics.rate_limits_shared_up.set(i64::from(up));
                }
                let accept = request
                    .headers()
                    .get(http::header::ACCEPT)
                    .and_then(|a| a.to_str().ok());
                let (body, content_type) = metrics.render_for(accept);
                let mut response = Response::new(full(body));
                response
                    .headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
                response
                    .headers_mut()
                    .insert(http::header::VARY, HeaderValue::from_static("accept"));
                response
            }
            None => json(StatusCode::NOT_FOUND, r#"{"error":"not found"}"#),
        },
        "/.well-known/jwks.json" => match state.jwks.load_full() {
            Some(jwks) => jwks_response((*jwks).clone()),
            None => json(StatusCode::NOT_FOUND, r#"{"error":"no signing key"}"#),
        },
        _ => json(StatusCode::NOT_FOUND, r#"{"error":"not found"}"#),
    }
}

/// How long a probe waits for the whole answer.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Probes a health endpoint: `Ok` when it answers 200 within 3 seconds.
#[inline(never)]
pub fn probe<'a>(url: &'a str) -> BoxFuture<'a, Result<(), String>> {
    Box::pin(async move {
        let uri: http::Uri = url.parse().map_err(|e| format!("invalid URL: {e}"))?;
        let client = fetch::fetch_client(&Default::default());
        let request = Request::get(uri)
            .body(Default::default())
            .map_err(|e| format!("invalid URL: {e}"))?;
        let (response, _) = fetch::fetch(&client, request, PROBE_TIMEOUT, 64 * 1024)
            .await
            .map_err(|e| e.to_string())?;
        match response.status {
            StatusCode::OK => Ok(()),
            status => Err(format!("answered {status}")),
        }
    })
}

/// Serves the admin endpoints until `stop`, under the same discipline as the data listener
/// (the one accept loop: a connection cap and a pause after failed accepts) plus a deadline per
/// connection. Without them, idle admin connections could take every descriptor and stop the
/// data port.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AdminState>,
    (limits, data): (AdminLimits, Limits),
    stop: watch::Receiver<bool>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The data listener's request-head limits hold here too: a stalled or oversized head is
    // cut off the same way on either port.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(data.header_read_timeout.min(limits.connection_timeout))
        .max_buf_size(data.max_header_bytes)
        .max_headers(data.max_headers);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(data.max_header_bytes).unwrap_or(u32::MAX));
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let deadline = limits.connection_timeout;
    accept_loop("admin", listener, connections, stop, |stream, _, permit| {
        let state = state.clone();
        let service = service_fn(move |request: Request<Incoming>| {
            let state = state.clone();
            async move {
                let response = if super::console::is_console(request.uri().path()) {
                    super::console::respond(&state, request).await
                } else {
                    respond(&state, &request)
                };
                Ok::<_, Infallible>(response)
            }
        });
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let served = async move {
            match tokio::time::timeout(deadline, connection).await {
                Ok(Err(e)) => debug!(error = %e, "admin connection ended with error"),
                Err(_) => debug!("admin connection closed at its deadline"),
                Ok(Ok(())) => {}
            }
        };
        // `map` keeps the permit beside the future: an async block awaiting a captured future
        // stores it twice.
        Some(served.map(move |()| drop(permit)))
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_follows_draining() {
        let state = AdminState::default();
        let get = |path: &str| Request::get(path).body(()).unwrap();
        assert_eq!(respond(&state, &get("/readyz")).status(), StatusCode::OK);
        assert_eq!(respond(&state, &get("/healthz")).status(), StatusCode::OK);
        state.start_draining();
        assert_eq!(
            respond(&state, &get("/readyz")).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(respond(&state, &get("/healthz")).status(), StatusCode::OK);
        assert_eq!(
            respond(&state, &get("/nope")).status(),
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn jwks_is_served_only_when_configured() {
        let get = Request::get("/.well-known/jwks.json").body(()).unwrap();
        let none = AdminState::default();
        assert_eq!(respond(&none, &get).status(), StatusCode::NOT_FOUND);
        let some = AdminState::with_jwks(Some(Bytes::from_static(br#"{"keys":[]}"#)));
        let response = respond(&some, &get);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/jwk-set+json");
    }
}

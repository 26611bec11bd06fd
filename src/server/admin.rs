//! The admin listener: liveness and readiness, apart from the data path.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::debug;

use crate::body::{ResponseBody, full};

/// Process-wide state the admin endpoints report.
#[derive(Debug, Default)]
pub struct AdminState {
    draining: AtomicBool,
}

impl AdminState {
    /// Marks the gateway as draining: `/readyz` answers 503 from now on.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Whether shutdown has begun.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}

fn json(status: StatusCode, body: &'static str) -> Response<ResponseBody> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
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
        "/readyz" if state.is_draining() => {
            json(StatusCode::SERVICE_UNAVAILABLE, r#"{"status":"draining"}"#)
        }
        "/readyz" => json(StatusCode::OK, r#"{"status":"ready"}"#),
        _ => json(StatusCode::NOT_FOUND, r#"{"error":"not found"}"#),
    }
}

/// Serves admin requests until `stop` turns true.
pub async fn serve(listener: TcpListener, state: Arc<AdminState>, mut stop: watch::Receiver<bool>) {
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => break,
        };
        let Ok((stream, _)) = accepted else {
            continue;
        };
        let state = state.clone();
        let service = service_fn(move |request: Request<Incoming>| {
            let response = respond(&state, &request);
            async move { Ok::<_, Infallible>(response) }
        });
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                debug!(error = %e, "admin connection ended with error");
            }
        });
    }
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
}

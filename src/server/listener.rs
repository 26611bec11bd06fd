//! The data listener: accept loop, per-connection limits, HTTP/1.1 + h2c, graceful drain.

use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tracing::{debug, warn};

use crate::config::Limits;
use arc_swap::ArcSwap;

use crate::gateway::Gateway;
use crate::metrics::ConnectionGuard;

/// Pause after a failed accept (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(50);

/// The HTTP server settings shared by every data connection.
pub fn connection_builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // hyper arms this timer whenever it waits for a request head, so it also closes
        // keep-alive connections idle for longer than this.
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes)
        .max_headers(limits.max_headers);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(Some(limits.idle_timeout))
        .max_concurrent_streams(Some(256));
    builder
}

/// Accepts connections until `stop` turns true; each connection is watched for graceful drain.
pub async fn accept_loop(
    listener: TcpListener,
    current: Arc<ArcSwap<Gateway>>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    graceful: Arc<GracefulShutdown>,
    connections: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = stop.wait_for(|s| *s) => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => break,
        };
        let (stream, remote) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let current = current.clone();
        let counted = Arc::new(ConnectionGuard::new(current.load().metrics().clone()));
        let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            counted.observe(request.version());
            // Each request runs under the config current when it arrived, to its end, even if
            // a reload swaps the gateway meanwhile. Boxed: hyper keeps a slot the size of this
            // future in every connection, idle or not (3 KB of ~21 KB per idle connection).
            Box::pin(current.load_full().handle(request, remote))
        });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = connection.await {
                debug!(%remote, error = %e, "connection ended with error");
            }
        });
    }
}

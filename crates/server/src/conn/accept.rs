//! The one accept loop every listener runs (data, TLS, admin): a connection limit, a pause
//! after a failed accept, and a stop signal.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;
use tracing::warn;

/// Pause after a failed accept (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// Least time between two warnings about failed accepts.
const ACCEPT_WARN_EVERY: Duration = Duration::from_secs(10);

/// Accepts on `listener` until `stop` turns true. Each accepted stream takes a permit from
/// `connections` (waiting while none is free, so the kernel's backlog holds the rest) and is
/// handed with it to `serve`, which returns the connection's task or `None` to close it at
/// once; whatever serves the connection holds the permit until it closes, so draining can
/// wait for every permit to come back.
pub async fn accept_loop<S, F>(
    name: &'static str,
    listener: TcpListener,
    connections: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
    mut serve: S,
) where
    S: FnMut(TcpStream, SocketAddr, OwnedSemaphorePermit) -> Option<F>,
    F: Future<Output = ()> + Send + 'static,
{
    let mut warned = None;
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
                accept_failed(name, &e, &mut warned).await;
                continue;
            }
        };
        if let Some(connection) = serve(stream, remote, permit) {
            tokio::spawn(connection);
        }
    }
}

/// After a failed accept (EMFILE, ENFILE, ...): warn at most every `ACCEPT_WARN_EVERY`, then
/// pause, so a process out of descriptors keeps serving the connections it has instead of
/// spinning a CPU on the listener.
async fn accept_failed(name: &'static str, error: &std::io::Error, warned: &mut Option<Instant>) {
    if warned.is_none_or(|at| at.elapsed() >= ACCEPT_WARN_EVERY) {
        warn!(listener = name, error = %error, "accept failed; pausing");
        *warned = Some(Instant::now());
    }
    tokio::time::sleep(ACCEPT_BACKOFF).await;
}
